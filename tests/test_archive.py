"""The .tcd archive format (docs/format.md): round trips, determinism, golden file, corruption."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import zstandard

from tascond_cli.archive import (
    DECODER_KINDS,
    BASE_VERSION,
    FORMAT_VERSION,
    SHARED_CODES_VERSION,
    VERSION_OF_KIND,
    HEADER_SIZE,
    MAGIC,
    Archive,
    ArchiveError,
    archive_bytes,
    codes_per_segment,
    frame_code_index,
    offsets_from_counts,
    read_archive,
    read_version,
    storage_breakdown,
    validate_archive,
    wrap_payload,
    write_archive,
)
from tascond_cli.errors import TascondError

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden-v1.tcd"


def _load_make_golden():
    spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- builders


def make_archive(kind: str = "generator", *, seed: int = 0, k: int = 3, dim: int = 6, code_dtype=np.float16) -> Archive:
    """A valid archive of 3 videos and 4 classes with decoder ``kind``."""
    rng = np.random.default_rng(seed)
    segs_per_video = [3, 1, 4]
    s = sum(segs_per_video)
    lengths = rng.integers(1, 9, size=s).astype(np.int64)
    lengths[0] = 1  # a segment shorter than k
    has_codes = DECODER_KINDS[kind].stores_codes
    counts = codes_per_segment(lengths, k) if has_codes else np.zeros(s, dtype=np.int64)
    n = int(counts.sum())
    d = {"identity": dim, "linear": 2}.get(kind, 5 if has_codes else 0)
    weights: dict[str, np.ndarray] = {}
    if kind in ("generator", "random"):
        weights = {
            "net.0.weight": rng.standard_normal((7, 5)).astype(np.float32),
            "net.0.bias": rng.standard_normal(7).astype(np.float16),
            "bn.num_batches_tracked": np.array(12, dtype=np.int64),
        }
    elif kind in ("linear", "lowrank"):
        weights = {
            "components": rng.standard_normal((d, dim)).astype(np.float32),
            "mean": rng.standard_normal(dim).astype(np.float32),
        }
    config = {"layers": 2, "kind": kind}
    if kind == "lowrank":  # a strict config: exactly the kind's keys (docs/format.md 6.7)
        config = {"code_dim": d, "interp": "linear", "floor": None}
    return Archive(
        settings={"method": f"test-{kind}", "dim": dim, "seed": 3, "ips": k, "note": "é ünïcode"},
        class_names=["background", "take", "pour", "stir"],
        video_names=["P01_cam01", "vid two", "ünï"],
        video_segments=offsets_from_counts(segs_per_video),
        segment_labels=rng.integers(0, 4, size=s).astype(np.int32),
        segment_lengths=lengths,
        segment_codes=offsets_from_counts(counts),
        codes=rng.standard_normal((n, d)).astype(code_dtype),
        decoder_kind=kind,
        decoder_config=config,
        decoder_weights=weights,
    )


def payload_of(data: bytes) -> bytes:
    """The HDF5 payload inside archive bytes."""
    return zstandard.ZstdDecompressor().decompress(data[HEADER_SIZE:])


def mutated(edit: Callable[[h5py.File], None], archive: Archive | None = None) -> bytes:
    """Archive bytes whose HDF5 payload was edited with h5py (a bad archive the writer would refuse)."""
    bio = io.BytesIO(payload_of(archive_bytes(archive or make_archive())))
    with h5py.File(bio, "r+") as f:
        edit(f)
    return wrap_payload(bio.getvalue())


def replace(path: str, data) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        del f[path]
        f.create_dataset(path, data=data)

    return edit


def expect_error(data: bytes, *fragments: str, **kwargs) -> str:
    with pytest.raises(ArchiveError) as info:
        read_archive(data, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", sorted(DECODER_KINDS))
def test_round_trip_every_decoder_kind(kind: str, tmp_path: Path) -> None:
    archive = make_archive(kind)
    data = archive_bytes(archive)
    assert data[:8] == MAGIC
    back = read_archive(data)
    assert back == archive
    assert back.written_by
    # also through a path and a file object
    path = tmp_path / "a.tcd"
    assert write_archive(archive, path) == len(data)
    assert path.read_bytes() == data
    assert read_archive(path) == archive
    with open(path, "rb") as fh:
        assert read_archive(fh) == archive
    # a kind of 1.0 uses nothing of 1.1 or 1.2: a 1.0 reader reads it; a later kind is written with its version
    assert read_version(path) == archive.version == VERSION_OF_KIND.get(kind, BASE_VERSION)
    assert read_version(path) == ((1, 2) if kind == "lowrank" else (1, 0))
    from tascond_cli.archive.constants import CHUNKED_VERSION, VERSION_OF_WEIGHT

    assert max([*VERSION_OF_KIND.values(), *VERSION_OF_WEIGHT.values()]) == (1, 4)  # lowrank's split noise
    assert VERSION_OF_WEIGHT == {"frequencies": (1, 3), "residual.basis_std": (1, 4)}
    assert FORMAT_VERSION == CHUNKED_VERSION == (1, 4)  # the chunked container (tests/test_random_access.py)


def test_round_trip_keeps_types_and_helpers() -> None:
    archive = make_archive("generator", code_dtype=np.float32)
    back = read_archive(archive_bytes(archive))
    assert back.codes.dtype == np.float32
    assert back.segment_labels.dtype == np.int32
    assert back.segment_lengths.dtype == np.int64
    assert back.decoder_weights["net.0.bias"].dtype == np.float16
    assert back.decoder_weights["bn.num_batches_tracked"].shape == ()
    assert (back.num_videos, back.num_segments, back.num_classes, back.dim) == (3, 8, 4, 6)
    assert back.total_frames == int(archive.segment_lengths.sum())
    v = back.video(2)
    assert v.name == "ünï" and back.segments_of_video(2) == slice(4, 8)
    assert v.frames == back.video_frames[2]
    assert np.array_equal(v.frame_labels(), np.repeat(v.labels, v.lengths))
    rows = v.frame_code_rows()
    assert rows.shape == (v.frames,) and rows.max() == v.codes.shape[0] - 1
    assert back.video(-1).name == "ünï" and back.index_of("vid two") == 1
    with pytest.raises(IndexError):
        back.video(3)


def test_empty_archive_round_trips() -> None:
    archive = Archive(
        settings={"method": "none", "dim": 2},
        class_names=["a"],
        video_names=[],
        video_segments=np.zeros(1, np.int64),
        segment_labels=np.zeros(0, np.int32),
        segment_lengths=np.zeros(0, np.int64),
        segment_codes=np.zeros(1, np.int64),
        codes=np.zeros((0, 0), np.float16),
        decoder_kind="zeros",
    )
    assert read_archive(archive_bytes(archive)) == archive


def test_writer_refuses_inconsistent_archive(tmp_path: Path) -> None:
    archive = make_archive()
    archive.segment_labels = archive.segment_labels.copy()
    archive.segment_labels[0] = 9
    with pytest.raises(ArchiveError, match="cannot write archive: /segments/labels: label 9"):
        archive_bytes(archive)
    with pytest.raises(ArchiveError):
        write_archive(archive, tmp_path / "x.tcd")
    assert not list(tmp_path.iterdir())  # nothing left behind
    with pytest.raises(ValueError, match="level"):
        archive_bytes(make_archive(), level=0)


def test_write_path_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "a.tcd"
    write_archive(make_archive(), path)
    with pytest.raises(TascondError, match="already exists"):
        write_archive(make_archive(seed=1), path)
    write_archive(make_archive(seed=1), path, overwrite=True)
    assert read_archive(path) == make_archive(seed=1)


def test_write_to_non_seekable_stream() -> None:
    class Sink:
        def __init__(self) -> None:
            self.chunks: list[bytes] = []

        def write(self, b) -> int:  # writes at most 100 bytes at a time, like a raw pipe
            self.chunks.append(bytes(b[:100]))
            return min(len(b), 100)

    sink = Sink()
    n = write_archive(make_archive(), sink)
    assert b"".join(sink.chunks) == archive_bytes(make_archive()) and n == len(b"".join(sink.chunks))


# --------------------------------------------------------------------------- determinism


def test_bytes_are_deterministic_in_process() -> None:
    for kind in DECODER_KINDS:
        assert archive_bytes(make_archive(kind)) == archive_bytes(make_archive(kind))
    # a read archive rewrites to the same bytes
    data = archive_bytes(make_archive())
    assert archive_bytes(read_archive(data)) == data


def test_bytes_are_deterministic_across_processes() -> None:
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, str(DATA / "make_golden.py"), "--stdout"], capture_output=True, env=env, check=True, timeout=60
    ).stdout
    assert out == _load_make_golden().golden_bytes()


# --------------------------------------------------------------------------- golden file


def test_golden_file_content() -> None:
    data = GOLDEN.read_bytes()
    assert len(data) < 20_000
    assert data[:8] == b"\x89TCD\r\n\x1a\n"
    assert struct.unpack("<HH", data[8:12]) == (1, 0)
    a = read_archive(GOLDEN)
    assert a.written_by == "0.1.0"
    assert a.settings == {
        "dataset": "tiny",
        "dim": 4,
        "ips": 2,
        "latent": 3,
        "method": "golden",
        "reconstruction_error": 0.125,
        "sample_rate": 1,
        "seed": 7,
        "split": 1,
        "tascond_version": "0.1.0",
    }
    assert a.class_names == ["background", "take", "pour"]
    assert a.video_names == ["vid00", "vid01"]
    assert a.video_segments.tolist() == [0, 4, 6]
    assert a.video_frames.tolist() == [17, 9]
    assert a.segment_labels.tolist() == [0, 1, 2, 0, 2, 1]
    assert a.segment_lengths.tolist() == [4, 7, 1, 5, 6, 3]
    assert a.segment_codes.tolist() == [0, 2, 4, 5, 7, 9, 11]
    assert a.codes.dtype == np.float16 and a.codes.shape == (11, 3)
    assert a.codes.ravel().tolist() == [i / 8 - 2 for i in range(33)]
    assert a.decoder_kind == "generator"
    assert a.decoder_config == {"activation": "relu", "hidden": 5, "layers": 2}
    w = a.decoder_weights
    assert sorted(w) == ["net.0.bias", "net.0.weight", "net.2.weight", "norm.num_batches_tracked"]
    assert w["net.0.weight"].dtype == np.float32 and w["net.0.weight"].ravel().tolist() == [i / 16 for i in range(15)]
    assert w["net.0.bias"].dtype == np.float16 and w["net.0.bias"].tolist() == [0.5, -0.5, 0.25, -0.25, 0.0]
    assert w["net.2.weight"].shape == (4, 5) and w["net.2.weight"].ravel().tolist() == [i - 10 for i in range(20)]
    assert w["norm.num_batches_tracked"].dtype == np.int64 and w["norm.num_batches_tracked"].tolist() == 3


def test_golden_file_regenerates_identically() -> None:
    make_golden = _load_make_golden()
    assert make_golden.golden_archive() == read_archive(GOLDEN)
    assert make_golden.golden_bytes() == GOLDEN.read_bytes(), (
        "tests/data/make_golden.py no longer reproduces golden-v1.tcd byte for byte "
        "(a writer change, or new h5py/HDF5/zstd versions)"
    )


# --------------------------------------------------------------------------- streams


class ReadOnly:
    """A non-seekable stream: only read(), a few bytes at a time."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._buf.read(min(n, 13) if n >= 0 else 13)


def test_read_from_non_seekable_stream() -> None:
    data = archive_bytes(make_archive())
    assert read_archive(ReadOnly(data)) == make_archive()
    with pytest.raises(ArchiveError, match="^<in>: truncated"):
        read_archive(ReadOnly(data[:-3]), name="<in>")
    with pytest.raises(ArchiveError, match="trailing data"):
        read_archive(ReadOnly(data + b"x"))


def test_read_from_pipe() -> None:
    data = archive_bytes(make_archive("linear"))
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb") as out:
            out.write(data)

    thread = threading.Thread(target=feed)
    thread.start()
    with os.fdopen(r, "rb", buffering=0) as src:
        assert read_archive(src) == make_archive("linear")
    thread.join()


# --------------------------------------------------------------------------- container corruption


def test_wrong_magic() -> None:
    data = archive_bytes(make_archive())
    expect_error(b"PK\x03\x04" + data[4:], "not a tascond archive")
    expect_error(b"", "empty file, not a tascond archive")
    expect_error(b"hello world, this is not an archive", "not a tascond archive")


def test_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.tcd"
    path.write_bytes(b"nope")
    with pytest.raises(ArchiveError, match=f"^{path}: not a tascond archive"):
        read_archive(path)
    with pytest.raises(ArchiveError, match="missing.tcd: cannot read"):
        read_archive(tmp_path / "missing.tcd")


def test_newer_major_version_refused_newer_minor_read() -> None:
    payload = payload_of(archive_bytes(make_archive()))
    expect_error(
        wrap_payload(payload, version=(2, 3)), "archive format 2.3 is newer than this tascond supports (1.x)"
    )
    assert read_archive(wrap_payload(payload, version=(1, 7))) == make_archive()


def test_truncated() -> None:
    data = archive_bytes(make_archive())
    expect_error(data[:5], "truncated")
    expect_error(data[:20], "truncated")
    expect_error(data[:HEADER_SIZE], "truncated")
    expect_error(data[:-1], "truncated")


def test_trailing_bytes() -> None:
    expect_error(archive_bytes(make_archive()) + b"\0\0", "2 bytes of trailing data")


def test_flipped_byte_in_frame() -> None:
    data = bytearray(archive_bytes(make_archive()))
    for where in (len(data) // 2, len(data) - 2):  # inside the blocks, inside the checksum
        bad = bytearray(data)
        bad[where] ^= 0x10
        expect_error(bytes(bad), "corrupt compressed data")


def test_header_sizes_lying() -> None:
    data = archive_bytes(make_archive())
    _, major, minor, usize, zsize = struct.unpack("<8sHHQQ", data[:HEADER_SIZE])

    def with_sizes(u: int, z: int) -> bytes:
        return struct.pack("<8sHHQQ", MAGIC, major, minor, u, z) + data[HEADER_SIZE:]

    expect_error(with_sizes(usize + 1, zsize), f"header says {usize + 1} uncompressed bytes")
    expect_error(with_sizes(usize, zsize + 1), "truncated")
    expect_error(with_sizes(usize, zsize - 1), "trailing data")
    expect_error(with_sizes(10, zsize), "header is corrupt")


def test_uncompressed_size_over_limit() -> None:
    data = archive_bytes(make_archive())
    expect_error(data, "over the limit of 1000 bytes", max_bytes=1000)
    big = struct.pack("<8sHHQQ", MAGIC, 1, 0, 2**60, 10) + b"\0" * 10
    expect_error(big, "over the limit")


def test_frame_without_checksum_or_not_hdf5() -> None:
    payload = payload_of(archive_bytes(make_archive()))
    frame = zstandard.ZstdCompressor(write_checksum=False).compress(payload)
    expect_error(struct.pack("<8sHHQQ", MAGIC, 1, 0, len(payload), len(frame)) + frame, "no checksum")
    expect_error(wrap_payload(b"just some text, not HDF5"), "content is not an HDF5 file")
    garbage = payload[:64] + bytes(len(payload) - 64)
    expect_error(wrap_payload(garbage), "malformed HDF5 content")


# --------------------------------------------------------------------------- HDF5 content corruption


def test_missing_dataset() -> None:
    def drop(path: str) -> Callable[[h5py.File], None]:
        return lambda f: f.__delitem__(path)

    expect_error(mutated(drop("segments/labels")), "/segments/labels: missing")
    expect_error(mutated(drop("decoder")), "/decoder: missing")
    expect_error(mutated(drop("settings")), "/settings: missing")


def test_wrong_dtypes() -> None:
    a = make_archive()
    s = a.num_segments
    expect_error(mutated(replace("segments/labels", np.zeros(s, np.float64))), "/segments/labels: must be a 1-D integer")
    strings = np.array(["x"] * s, dtype=h5py.string_dtype())
    expect_error(mutated(replace("segments/labels", strings)), "/segments/labels: must be a 1-D integer")
    expect_error(mutated(replace("segments/lengths", np.ones((s, 1), np.int64))), "/segments/lengths: must be a 1-D")
    expect_error(mutated(replace("codes", a.codes.astype(np.float64))), "/codes: must be a 2-D float16, float32 or int8")
    expect_error(mutated(replace("codes", a.codes.astype(np.int16))), "/codes: must be a 2-D float16, float32 or int8")
    # int8 codes are lowrank's alone (docs/format.md 4.5): every other kind refuses them, naming itself
    int8 = np.clip(np.rint(a.codes), -127, 127).astype(np.int8)
    expect_error(mutated(replace("codes", int8)),
                 "/codes: dtype must be float16 or float32 for decoder kind 'generator', not int8")
    for kind in ("identity", "linear"):
        b = make_archive(kind)
        expect_error(mutated(replace("codes", b.codes.astype(np.int8)), b),
                     f"/codes: dtype must be float16 or float32 for decoder kind '{kind}', not int8")
    expect_error(mutated(replace("videos/names", np.arange(3))), "/videos/names: must be a 1-D array of variable-length")
    expect_error(mutated(replace("decoder/weights/net.0.bias", strings)), "net.0.bias: dtype object not allowed")
    expect_error(mutated(replace("decoder/weights/net.0.bias", np.ones(3, bool))), "net.0.bias: dtype bool not allowed")
    expect_error(mutated(replace("decoder/weights/net.0.bias", np.ones(3))), "dtype float64 not allowed")
    compound = np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")])
    expect_error(mutated(replace("decoder/weights/net.0.bias", compound)), "not allowed")


def test_other_integer_types_are_accepted() -> None:
    a = make_archive()
    data = mutated(replace("segments/lengths", a.segment_lengths.astype(">u2")))
    assert read_archive(data) == a


def test_offsets_non_monotone_or_out_of_range() -> None:
    a = make_archive()
    expect_error(mutated(replace("videos/segment_offsets", [0, 3, 2, 8])), "strictly increasing")
    expect_error(mutated(replace("videos/segment_offsets", [0, 3, 3, 8])), "strictly increasing")
    expect_error(mutated(replace("videos/segment_offsets", [1, 3, 4, 8])), "first offset is 1")
    expect_error(mutated(replace("videos/segment_offsets", [0, 3, 4, 9])), "last offset is 9, must be 8")
    expect_error(mutated(replace("videos/segment_offsets", [0, 3, 8])), "has 3 entries, expected 4")
    codes = a.segment_codes.copy()
    codes[2], codes[3] = codes[3], codes[2]
    expect_error(mutated(replace("segments/code_offsets", codes)), "/segments/code_offsets: offsets must be non-decreasing")
    codes = a.segment_codes.copy()
    codes[-1] += 1
    expect_error(mutated(replace("segments/code_offsets", codes)), "last offset")
    expect_error(mutated(replace("segments/code_offsets", np.array([2**64 - 1] * 9, np.uint64))), "too large")


def test_code_counts_outside_one_to_length() -> None:
    a = make_archive()  # segment 0 has 1 frame
    counts = np.diff(a.segment_codes)
    counts[0], counts[1] = 2, counts[1] - 1
    expect_error(mutated(replace("segments/code_offsets", offsets_from_counts(counts))), "segment 0 has 2 codes for 1 frames")
    counts = np.diff(a.segment_codes)
    counts[0], counts[1] = 0, counts[1] + 1
    expect_error(mutated(replace("segments/code_offsets", offsets_from_counts(counts))), "segment 0 has 0 codes")


def test_label_out_of_range() -> None:
    labels = make_archive().segment_labels.copy()
    labels[5] = 4
    expect_error(mutated(replace("segments/labels", labels)), "label 4 of segment 5 is outside [0, 4)")
    labels[5] = -1
    expect_error(mutated(replace("segments/labels", labels)), "label -1 of segment 5")


def test_lengths_sum_mismatch() -> None:
    a = make_archive()
    frames = a.video_frames.copy()
    frames[1] += 1
    expect_error(mutated(replace("videos/frames", frames)), "/videos/frames: video 'vid two' has", "add up to")
    lengths = a.segment_lengths.copy()
    lengths[3] = 0
    expect_error(mutated(replace("segments/lengths", lengths)), "segment 3 has 0 frames")
    lengths[3] = 2**40
    expect_error(mutated(replace("segments/lengths", lengths)), "segment 3 has 1099511627776 frames")


def test_nan_code() -> None:
    codes = make_archive().codes.copy()
    codes[4, 1] = np.nan
    expect_error(mutated(replace("codes", codes)), "/codes: code 4 holds a non-finite value")
    codes[4, 1] = np.inf
    expect_error(mutated(replace("codes", codes)), "code 4")


def test_bad_names() -> None:
    text = h5py.string_dtype()
    names = lambda *v: np.array(v, dtype=text)  # noqa: E731
    expect_error(mutated(replace("videos/names", names("a", "b", "a"))), "/videos/names: name 'a' appears twice")
    expect_error(mutated(replace("videos/names", names("a", "../x", "c"))), "'../x' (entry 1) contains a path separator")
    expect_error(mutated(replace("videos/names", names("a", "..", "c"))), "is not a file name")
    expect_error(mutated(replace("videos/names", names("a", "", "c"))), "is empty")
    expect_error(mutated(replace("videos/names", names("a", "b\nc", "c"))), "control character")
    expect_error(mutated(replace("classes/names", names("a", "b c", "d", "e"))), "'b c' (entry 1) contains whitespace")
    expect_error(mutated(replace("classes/names", names("a", "b", "a", "e"))), "/classes/names: name 'a' appears twice")
    bad_utf8 = np.array([b"a", b"\xff\xfe", b"c"], dtype=h5py.string_dtype("utf-8"))
    expect_error(mutated(replace("videos/names", bad_utf8)), "/videos/names: not valid UTF-8")


def test_bad_json_and_decoder_kind() -> None:
    text = h5py.string_dtype()
    expect_error(mutated(replace("settings", np.array("[1, 2]", dtype=text))), "/settings: must be a JSON object")
    expect_error(mutated(replace("settings", np.array("{", dtype=text))), "/settings: invalid JSON")
    expect_error(mutated(replace("settings", np.array('{"method": "x"}', dtype=text))), "'dim' must be a positive")
    expect_error(mutated(replace("settings", np.array('{"method":"x","dim":NaN}', dtype=text))), "invalid JSON")
    expect_error(mutated(replace("decoder/config", np.array("3", dtype=text))), "/decoder/config: must be a JSON")
    expect_error(mutated(replace("decoder/kind", np.array("hologram", dtype=text))), "unknown decoder kind 'hologram'")


def test_decoder_kind_requirements() -> None:
    identity = make_archive("identity")
    expect_error(mutated(replace("codes", identity.codes[:, :3]), identity), "identity decoder needs codes of dimension dim=6, not 3")
    linear = make_archive("linear")
    expect_error(mutated(replace("decoder/weights/mean", np.zeros(5, np.float32)), linear), "/mean: shape (5,), expected (6,)")
    expect_error(mutated(lambda f: f.__delitem__("decoder/weights/mean"), linear), "exactly 'components' and 'mean'")
    zeros = make_archive("zeros")
    expect_error(
        mutated(lambda f: (replace("codes", np.zeros((1, 2), np.float16))(f)), zeros),
        "decoder kind 'zeros' stores no codes",
    )
    generator = make_archive("generator")
    for name in list(generator.decoder_weights):
        generator.decoder_weights.pop(name)
    with pytest.raises(ArchiveError, match="decoder kind 'generator' needs weights"):
        validate_archive(generator)
    random = make_archive("random")
    random.settings = {"method": "r", "dim": 6}
    with pytest.raises(ArchiveError, match="random decoder needs an integer 'seed'"):
        archive_bytes(random)


def test_links_layout_and_declared_sizes() -> None:
    def soft(f: h5py.File) -> None:
        f["alias"] = f["codes"]
        del f["codes"]
        f["codes"] = h5py.SoftLink("/alias")

    expect_error(mutated(soft), "/codes: is a SoftLink")

    def external(f: h5py.File) -> None:
        del f["codes"]
        f["codes"] = h5py.ExternalLink("/etc/passwd", "/x")

    expect_error(mutated(external), "/codes: is a ExternalLink")

    def gzip(f: h5py.File) -> None:
        data = f["codes"][()]
        del f["codes"]
        f.create_dataset("codes", data=data, compression="gzip", chunks=True)

    expect_error(mutated(gzip), "/codes: only contiguous or compact")

    def huge(f: h5py.File) -> None:
        del f["segments/lengths"]
        f.create_dataset("segments/lengths", shape=(2**36,), dtype=np.int64)

    expect_error(mutated(huge), "/segments/lengths: declares", "more than the whole content")

    def unwritten(f: h5py.File) -> None:
        del f["segments/lengths"]
        f.create_dataset("segments/lengths", shape=(8,), dtype=np.int64)

    expect_error(mutated(unwritten), "/segments/lengths: has no data")


def test_unknown_objects_are_ignored() -> None:
    def extra(f: h5py.File) -> None:
        f.create_dataset("future/thing", data=np.arange(3))
        f.attrs["future"] = 1

    assert read_archive(mutated(extra)) == make_archive()


# --------------------------------------------------------------------------- storage breakdown


def test_storage_breakdown() -> None:
    archive = make_archive()
    total = len(archive_bytes(archive))
    b = storage_breakdown(archive)
    assert list(b) == ["codes", "structure", "decoder", "metadata", "total"]
    assert sum(b[k]["share"] for k in ("codes", "structure", "decoder", "metadata")) == total == b["total"]["share"]
    assert b["codes"]["raw"] == archive.codes.nbytes
    assert all(v["compressed"] > 0 for v in b.values())
    assert storage_breakdown(archive, total=10_000)["total"]["share"] == 10_000


# --------------------------------------------------------------------------- shared codes (format 1.1)


def sharing(archive: Archive, borrowers: dict[int, int]) -> Archive:
    """``archive`` with each segment in ``borrowers`` reusing the codes of its value instead of its own."""
    counts = archive.segment_code_counts.copy()
    keep = np.ones(archive.num_codes, dtype=bool)
    for s in borrowers:
        keep[archive.segment_codes[s] : archive.segment_codes[s + 1]] = False
        counts[s] = 0
    sources = np.full(archive.num_segments, -1, dtype=np.int64)
    for s, r in borrowers.items():
        sources[s] = r
    return dataclasses.replace(
        archive, segment_codes=offsets_from_counts(counts), codes=archive.codes[keep], segment_sources=sources
    )


def test_shared_codes_round_trip_as_version_1_1(tmp_path) -> None:
    base = make_archive("generator", k=8)
    base.segment_lengths[:] = [1, 8, 3, 8, 8, 2, 8, 8]
    base = dataclasses.replace(base, segment_codes=offsets_from_counts(codes_per_segment(base.segment_lengths, 8)),
                               codes=np.random.default_rng(1).standard_normal((int(codes_per_segment(base.segment_lengths, 8).sum()), 5)).astype(np.float16))
    shared = sharing(base, {2: 1, 5: 4, 7: 0})
    path = tmp_path / "s.tcd"
    write_archive(shared, path)
    assert read_version(path) == SHARED_CODES_VERSION == (1, 1)
    back = read_archive(path)
    assert back == shared and back.num_codes == base.num_codes - 3 - 2 - 8
    # segment 2 (3 frames) reuses segment 1's 8 codes: chunks use codes 0, 2, 5 of them
    np.testing.assert_array_equal(back.segment_code_rows(2), back.segment_code_rows(1)[[0, 2, 5]])
    # segment 7 (8 frames) reuses segment 0's single code
    np.testing.assert_array_equal(back.segment_code_rows(7), back.segment_code_rows(0))
    entry = back.video(0)  # segments 0, 1, 2
    np.testing.assert_array_equal(entry.code_counts, [1, 8, 3])
    np.testing.assert_array_equal(entry.codes[9:], back.codes[back.segment_code_rows(1)[[0, 2, 5]]])
    np.testing.assert_array_equal(frame_code_index(entry.lengths, entry.code_counts).max() + 1, 12)
    # no segment reusing anything: plain 1.0 again
    none = dataclasses.replace(base, segment_sources=np.full(base.num_segments, -1))
    assert read_version(archive_bytes(none)) == (1, 0) and read_archive(archive_bytes(none)).segment_sources is None


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda a: a.segment_sources.__setitem__(2, 99), "outside"),
        (lambda a: a.segment_sources.__setitem__(2, 5), "which owns no codes"),
        (lambda a: a.segment_sources.__setitem__(3, 1), "owns 8"),
    ],
)
def test_bad_shared_codes_are_refused(change, fragment) -> None:
    base = make_archive("generator", k=8)
    base.segment_lengths[:] = 8
    base = dataclasses.replace(base, segment_codes=offsets_from_counts(np.full(8, 8)),
                               codes=np.zeros((64, 5), dtype=np.float16))
    shared = sharing(base, {2: 1, 5: 4})
    change(shared)
    with pytest.raises(ArchiveError, match=fragment):
        archive_bytes(shared)
    with pytest.raises(ArchiveError, match="code_source"):  # and the reader, on a file the writer refused
        read_archive(mutated(replace("/segments/code_source", shared.segment_sources), sharing(base, {2: 1, 5: 4})))


def test_shared_codes_need_a_coded_kind_and_one_per_segment() -> None:
    zeros = make_archive("zeros")
    bad = dataclasses.replace(zeros, segment_sources=np.r_[1, np.full(zeros.num_segments - 1, -1)])
    with pytest.raises(ArchiveError, match="stores no codes"):
        archive_bytes(bad)
    gen = make_archive("generator")
    with pytest.raises(ArchiveError, match="one per segment"):
        archive_bytes(dataclasses.replace(gen, segment_sources=np.full(3, -1)))
