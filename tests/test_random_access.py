"""Format 1.4 (docs/format.md 2.2): the chunked container, random access (open_archive, restore --video,
ArchiveDataset[i]) and the streaming writer."""

from __future__ import annotations

import io
import pickle
import struct

import h5py
import numpy as np
import pytest
import zstandard
from typer.testing import CliRunner

from tascond_cli.archive import (
    CHUNKED_MIN_BYTES,
    DECODER_KINDS,
    HEADER_SIZE,
    Archive,
    ArchiveError,
    LazyArchive,
    LazyCodes,
    archive_bytes,
    open_archive,
    read_archive,
    read_version,
    wrap_payload,
    wrap_payload_chunked,
    write_archive,
)
from tascond_cli.archive import chunked as chunked_mod
from tascond_cli.archive import validate as validate_mod
from tascond_cli.archive import writer as writer_mod
from tascond_cli.archive.chunked import ENTRY, INDEX_HEAD, index_size
from tascond_cli.cli import app
from tascond_cli.restore import ArchiveDataset, ArchiveDecoder, restore_archive

from test_archive import DATA, make_archive

SMALL = 4096  # the smallest chunk size: tiny archives get several chunks


def big_archive(videos: int = 12, frames: int = 300, dim: int = 32, seed: int = 0) -> Archive:
    """An fp16-like ``identity`` archive: one code per frame, ``videos`` videos of 3 segments."""
    rng = np.random.default_rng(seed)
    lengths = np.full(3 * videos, frames // 3, dtype=np.int64)
    return Archive(
        settings={"method": "fp16", "dim": dim},
        class_names=["a", "b", "c"],
        video_names=[f"v{i:03d}" for i in range(videos)],
        video_segments=np.arange(0, 3 * videos + 1, 3, dtype=np.int64),
        segment_labels=(np.arange(3 * videos) % 3).astype(np.int32),
        segment_lengths=lengths,
        segment_codes=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        codes=rng.standard_normal((int(lengths.sum()), dim)).astype(np.float16),
        decoder_kind="identity",
    )


def chunked(archive: Archive, chunk_size: int = SMALL) -> bytes:
    return archive_bytes(archive, chunked=True, chunk_size=chunk_size, level=3)


def payload(data: bytes) -> bytes:
    """The HDF5 payload of a chunked archive's bytes."""
    return bytes(read_archive_payload(data))


def read_archive_payload(data: bytes) -> bytearray:
    from tascond_cli.archive.container import ByteSource, read_container

    return read_container(ByteSource(io.BytesIO(data).read, len(data)), 2**40)[1]


def expect(data: bytes, fragment: str) -> None:
    """Both readers refuse ``data`` in one line containing ``fragment``."""
    for read in (read_archive, open_archive):
        with pytest.raises(ArchiveError) as info:
            read(data, name="x.tcd")
        message = str(info.value)
        assert "\n" not in message and message.startswith("x.tcd: ") and fragment in message, message


# ------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", sorted(DECODER_KINDS))
def test_chunked_round_trip_equals_the_eager_read(kind: str) -> None:
    archive = make_archive(kind)
    data = archive_bytes(archive, chunked=True, chunk_size=SMALL)
    assert read_version(data) == (1, 4)
    assert read_archive(data) == archive
    opened = open_archive(data)
    assert opened == archive and opened.num_videos == archive.num_videos
    assert isinstance(opened, LazyArchive)
    assert isinstance(opened.codes, LazyCodes) == DECODER_KINDS[kind].stores_codes  # no codes: in memory
    for i in range(archive.num_videos):
        eager, lazy = archive.video(i), opened.video(i)
        assert np.array_equal(eager.codes, lazy.codes) and eager.codes.dtype == lazy.codes.dtype
        assert np.array_equal(eager.code_counts, lazy.code_counts)


def test_the_chunked_payload_is_the_single_frame_payload() -> None:
    archive = big_archive(videos=3)
    single, many = archive_bytes(archive, chunked=False), chunked(archive)
    assert read_version(single) == (1, 0) and read_version(many) == (1, 4)
    one = zstandard.ZstdDecompressor().decompress(single[HEADER_SIZE:])
    with h5py.File(io.BytesIO(payload(many)), "r") as f:
        assert f.attrs["format_version"] == "1.4"
    with h5py.File(io.BytesIO(one), "r") as f:
        assert f.attrs["format_version"] == "1.0"
    assert len(payload(many)) == len(one)  # the same layout; only the version attribute differs


def test_lazy_restore_equals_the_eager_restore(tmp_path) -> None:
    archive = big_archive(videos=5)
    data = chunked(archive)
    (tmp_path / "a.tcd").write_bytes(data)
    eager, lazy = ArchiveDecoder(read_archive(data)), ArchiveDecoder(open_archive(tmp_path / "a.tcd"))
    for i in range(archive.num_videos):
        assert np.array_equal(eager.features(i), lazy.features(i))
        assert np.array_equal(eager.labels(i), lazy.labels(i))
    ds = ArchiveDataset(tmp_path / "a.tcd")
    assert isinstance(ds.archive, LazyArchive)
    x, y = ds[3]
    assert np.array_equal(x.numpy(), eager.features(3)) and np.array_equal(y.numpy(), eager.labels(3))
    ds.archive.close()


def test_shared_codes_read_lazily() -> None:
    """Segments that reuse another video's codes read them from wherever they lie."""
    archive = make_archive("generator")
    sources = np.full(archive.num_segments, -1, dtype=np.int64)
    last = archive.num_segments - 1
    counts = np.diff(archive.segment_codes).copy()
    sources[last], counts[last] = 0, 0  # the last segment reuses the first one's codes
    archive.segment_sources = sources
    archive.segment_codes = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    archive.codes = archive.codes[: int(counts.sum())]
    opened = open_archive(chunked(archive))
    for i in range(archive.num_videos):
        assert np.array_equal(opened.video(i).codes, archive.video(i).codes)


def test_lazy_codes_index_like_an_array() -> None:
    archive = big_archive(videos=2, frames=30)
    codes = open_archive(chunked(archive)).codes
    assert isinstance(codes, LazyCodes) and codes.shape == archive.codes.shape
    want = archive.codes
    for key in (slice(3, 17), slice(None), slice(5, 2), slice(1, 40, 7), 4, -1, np.array([9, 2, 2, 40, 3]),
                np.arange(want.shape[0]) % 2 == 0):
        assert np.array_equal(codes[key], want[key]), key
    assert np.array_equal(np.asarray(codes), want)
    with pytest.raises(IndexError):
        codes[want.shape[0]]


# ------------------------------------------------------------------------------- older versions


@pytest.mark.parametrize("name", ["golden-v1.tcd", "golden-v1.1.tcd", "golden-v1.0-random.tcd", "golden-v1.0-linear.tcd"])
def test_single_frame_archives_open_whole(name: str) -> None:
    path = DATA / name
    opened = open_archive(path)
    assert not isinstance(opened, LazyArchive) and opened == read_archive(path)
    assert open_archive(path.read_bytes()) == read_archive(path)


def test_lowrank_dct_archive_of_1_3_still_reads() -> None:
    archive = make_archive("lowrank")
    archive.decoder_config = {**archive.decoder_config, "interp": "dct"}
    counts = np.diff(archive.segment_codes)
    archive.decoder_weights["frequencies"] = np.concatenate([np.arange(c) for c in counts]).astype(np.uint16)
    data = archive_bytes(archive)
    assert read_version(data) == (1, 3) and read_archive(data) == archive == open_archive(data)
    many = chunked(archive)
    assert read_version(many) == (1, 4) and open_archive(many) == archive


def test_small_archives_keep_their_version_and_bytes() -> None:
    """Below CHUNKED_MIN_BYTES of arrays an archive is one frame, as 1.0 to 1.3 writers wrote it."""
    archive = make_archive("identity")
    data = archive_bytes(archive)
    assert read_version(data) == (1, 0) and data[HEADER_SIZE : HEADER_SIZE + 4] == b"\x28\xb5\x2f\xfd"
    assert data == archive_bytes(archive, chunked=False)


def test_large_archives_are_chunked_by_default(monkeypatch) -> None:
    archive = big_archive(videos=2)
    assert writer_mod.array_bytes(archive) < CHUNKED_MIN_BYTES
    assert read_version(archive_bytes(archive, level=1)) == (1, 0)
    monkeypatch.setattr(writer_mod, "CHUNKED_MIN_BYTES", writer_mod.array_bytes(archive))
    data = archive_bytes(archive, level=1)
    assert read_version(data) == (1, 4)
    assert struct.unpack_from("<I", data, HEADER_SIZE)[0] == 2**20  # the default chunk size


def test_a_single_frame_of_a_later_version_still_reads() -> None:
    """From 1.4 the bytes after the header say which layout follows: a zstd frame, or an index."""
    archive = make_archive()
    one = zstandard.ZstdDecompressor().decompress(archive_bytes(archive)[HEADER_SIZE:])
    assert read_archive(wrap_payload(one, version=(1, 5))) == archive
    assert open_archive(wrap_payload(one, version=(1, 5))) == archive
    assert read_archive(wrap_payload_chunked(one, version=(1, 5), chunk_size=SMALL)) == archive
    with pytest.raises(ArchiveError, match="not a zstd frame"):  # a 1.3 header: always one frame
        read_archive(wrap_payload_chunked(one, version=(1, 3), chunk_size=SMALL))


# ------------------------------------------------------------------------------- hostile files


def _index_entry(data: bytes, i: int) -> int:
    return HEADER_SIZE + INDEX_HEAD.size + ENTRY.itemsize * i


def _fix_crc(data: bytearray) -> bytearray:
    """Recompute the index's CRC (so that a lie inside the index reaches the entry checks)."""
    count = struct.unpack_from("<I", data, HEADER_SIZE + 4)[0]
    end = HEADER_SIZE + index_size(count) - 4
    struct.pack_into("<I", data, end, chunked_mod.crc32(bytes(data[HEADER_SIZE:end]), chunked_mod.crc32(bytes(data[:HEADER_SIZE]))))
    return data


@pytest.fixture(scope="module")
def good() -> bytes:
    return chunked(big_archive(videos=3))


def test_corrupt_chunk_is_refused(good: bytes) -> None:
    data = bytearray(good)
    data[-100] ^= 0x10
    expect(bytes(data), "chunk")
    expect(bytes(data), "is corrupt (its checksum does not match)")


def test_corrupt_chunk_is_refused_when_a_video_reads_it(good: bytes) -> None:
    """A lazily opened archive finds a bad chunk of codes when a video needs it, not before."""
    opened = open_archive(good)
    first = opened.chunks_read
    data = bytearray(good)
    start = int(opened.reader.index.offsets[2])  # a chunk of codes, not read to open the archive
    data[start + 20] ^= 0x01
    bad = open_archive(bytes(data))
    assert bad.chunks_read == first
    with pytest.raises(ArchiveError, match="chunk 2 is corrupt"):
        for i in range(bad.num_videos):
            bad.video(i)


def test_truncated_index_and_chunks(good: bytes) -> None:
    count = struct.unpack_from("<I", good, HEADER_SIZE + 4)[0]
    for keep in (HEADER_SIZE + 2, HEADER_SIZE + 10, HEADER_SIZE + index_size(count) - 1, len(good) - 1):
        expect(good[:keep], "truncated")
    expect(good + b"\0", "1 bytes of trailing data")


def test_corrupt_index_is_refused(good: bytes) -> None:
    data = bytearray(good)
    data[_index_entry(good, 1) + 9] ^= 0x01  # a compressed size, CRC left as it was
    expect(bytes(data), "index is corrupt (its checksum does not match)")
    data = bytearray(good)
    data[20] ^= 0x01  # the header's Z, covered by the index's CRC (and by the file's size)
    expect(bytes(data), "")


@pytest.mark.parametrize("field,value,fragment", [
    ("chunk_size", 5000, "not a power of two"),
    ("chunk_size", 2**30, "not a power of two"),
    ("count", 2, "chunks, "),
    ("count", 2**32 - 1, "chunks, "),
    ("zsize", 2**63, "compressed bytes for"),
    ("zsize", 0, "compressed bytes for"),
    ("usize", SMALL + 1, "declares"),
    ("offset", 0, "is at offset"),
])
def test_lying_index_is_refused(good: bytes, field: str, value: int, fragment: str) -> None:
    data = bytearray(good)
    if field in ("chunk_size", "count"):
        struct.pack_into("<I", data, HEADER_SIZE + (0 if field == "chunk_size" else 4), value)
    else:
        entry = _index_entry(good, 1)
        where, fmt = {"offset": (0, "<Q"), "zsize": (8, "<Q"), "usize": (16, "<I")}[field]
        struct.pack_into(fmt, data, entry + where, value)
    expect(bytes(_fix_crc(data) if field not in ("chunk_size", "count") else data), fragment)


def test_lying_header_sizes_are_refused(good: bytes) -> None:
    data = bytearray(good)
    struct.pack_into("<Q", data, 12, 2**40)  # U: over the limit
    expect(bytes(data), "over the limit")
    struct.pack_into("<Q", data, 12, 1024 * (len(good) - HEADER_SIZE) + 2**21)  # U: a bomb
    expect(bytes(data), "decompression bomb")
    data = bytearray(good)
    struct.pack_into("<Q", data, 12, struct.unpack_from("<Q", good, 12)[0] + 1)  # U one more: the index disagrees
    expect(bytes(data), "index is corrupt")


def test_chunk_frame_must_match_its_entry() -> None:
    """A chunk whose frame does not record its size, or has no checksum, is refused though its CRC is right."""
    archive = big_archive(videos=2, frames=30)
    one = zstandard.ZstdDecompressor().decompress(archive_bytes(archive, chunked=False)[HEADER_SIZE:])
    good = wrap_payload_chunked(one, chunk_size=SMALL, level=1)
    data = bytearray(good)
    entry = _index_entry(good, 0)
    offset, zsize = struct.unpack_from("<QQ", data, entry)
    frame = zstandard.ZstdCompressor(level=1, write_checksum=False).compress(one[:SMALL])
    data[offset : offset + zsize] = frame
    count = struct.unpack_from("<I", data, HEADER_SIZE + 4)[0]
    shift = len(frame) - zsize
    for i in range(count):  # rewrite the index for the new frame's size
        e = _index_entry(good, i)
        o, z, u, c = struct.unpack_from("<QQII", data, e)
        if i == 0:
            z, c = len(frame), chunked_mod.crc32(frame)
        else:
            o += shift
        struct.pack_into("<QQII", data, e, o, z, u, c)
    struct.pack_into("<Q", data, 20, struct.unpack_from("<Q", data, 20)[0] + shift)
    expect(bytes(_fix_crc(data)), "must record 4096 bytes and a checksum")


def test_bad_codes_are_found_when_their_video_is_read() -> None:
    """NaN codes in one video: the eager read refuses the archive; the lazy open reads the other videos
    and refuses that one."""
    archive = big_archive(videos=3, frames=30)
    body = bytearray(payload(chunked(archive)))
    with h5py.File(io.BytesIO(bytes(body)), "r") as f:
        at = f["codes"].id.get_offset()
    row = int(archive.segment_codes[archive.video_segments[2]])  # video 2's first code
    struct.pack_into("<H", body, at + row * archive.code_dim * 2, 0x7E00)  # float16 NaN
    data = wrap_payload_chunked(bytes(body), chunk_size=SMALL, version=(1, 4))
    with pytest.raises(ArchiveError, match="non-finite"):
        read_archive(data)
    opened = open_archive(data, name="x.tcd")
    opened.video(0), opened.video(1)
    with pytest.raises(ArchiveError, match="video 'v002' holds a non-finite value"):
        opened.video(2)


def test_huge_codes_break_the_bound_when_read() -> None:
    archive = make_archive("linear")
    archive.codes = archive.codes.astype(np.float32)
    archive.codes[-1] = 1e30  # the last video's codes
    archive.decoder_weights["components"] = np.full_like(archive.decoder_weights["components"], 100.0)
    with pytest.raises(ArchiveError, match="magnitude"):
        archive_bytes(archive)
    bio = io.BytesIO(payload(chunked(make_archive("linear", code_dtype=np.float32))))
    with h5py.File(bio, "r+") as f:
        f["codes"][-1] = 1e30
        f["decoder/weights/components"][...] = 100.0
    data = wrap_payload_chunked(bio.getvalue(), chunk_size=SMALL)
    with pytest.raises(ArchiveError, match="magnitude"):
        read_archive(data)
    opened = open_archive(data)
    opened.video(0)
    with pytest.raises(ArchiveError, match="of video 'ünï' could reach a magnitude"):
        opened.video(2)


# ------------------------------------------------------------------------------- what is read


def test_a_lazy_open_touches_few_chunks(tmp_path) -> None:
    archive = big_archive(videos=40, frames=300, dim=32)  # 768 KB of codes: about 190 chunks of 4 KiB
    path = tmp_path / "a.tcd"
    path.write_bytes(chunked(archive))
    opened = open_archive(path)
    count = opened.reader.index.count
    assert count > 150
    assert opened.chunks_read <= 6, opened.chunks_read  # superblock, object headers, names, offsets, decoder
    before = opened.chunks_read
    entry = opened.video(20)  # 300 frames x 32 x 2 bytes = 19,200 bytes: 5 or 6 chunks
    assert np.array_equal(entry.codes, archive.video(20).codes)
    assert opened.chunks_read - before <= 6
    opened.video(20)
    assert opened.chunks_read - before <= 6  # cached
    opened.close()


def test_pickled_lazy_archive_opens_again(tmp_path) -> None:
    path = tmp_path / "a.tcd"
    path.write_bytes(chunked(big_archive(videos=3)))
    opened = open_archive(path)
    again = pickle.loads(pickle.dumps(opened))
    assert isinstance(again, LazyArchive) and again == opened
    ds = pickle.loads(pickle.dumps(ArchiveDataset(path)))
    assert np.array_equal(ds[1][0].numpy(), ArchiveDecoder(opened).features(1))


def test_chunked_archive_reads_from_a_stream() -> None:
    archive = big_archive(videos=3)
    data = chunked(archive)

    class Pipe:
        def __init__(self) -> None:
            self.buf = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self.buf.read(min(n, 1000) if n and n > 0 else -1)

    assert read_archive(Pipe()) == archive
    assert open_archive(Pipe()) == archive
    bad = Pipe()
    bad.buf = io.BytesIO(data + b"x")
    with pytest.raises(ArchiveError, match="trailing data"):
        read_archive(bad)


# ------------------------------------------------------------------------------- the writer


def test_bytes_are_deterministic(tmp_path) -> None:
    archive = big_archive(videos=4)
    data = chunked(archive)
    assert data == chunked(archive) == chunked(read_archive(data))
    assert write_archive(archive, tmp_path / "a.tcd", chunked=True, chunk_size=SMALL, level=3) == len(data)
    assert (tmp_path / "a.tcd").read_bytes() == data
    sink = io.BytesIO()
    assert write_archive(archive, sink, chunked=True, chunk_size=SMALL, level=3) == len(data)
    assert sink.getvalue() == data


class _Watched(np.memmap):
    """A memmap that records how many rows each read of it takes."""

    reads: list[int] = []

    def __getitem__(self, key):
        out = super().__getitem__(key)
        if isinstance(key, slice):
            _Watched.reads.append(np.shape(out)[0] if np.ndim(out) else 1)
        return out

    def __array__(self, *args, **kwargs):  # np.asarray(whole): what the writer must never do
        raise AssertionError("the whole memmap was read")


def test_memmap_codes_are_written_in_slices(tmp_path, monkeypatch) -> None:
    archive = big_archive(videos=6)
    codes = archive.codes
    store = np.memmap(tmp_path / "codes.f16", dtype=codes.dtype, mode="w+", shape=codes.shape)
    store[:] = codes
    store.flush()
    watched = _Watched(tmp_path / "codes.f16", dtype=codes.dtype, mode="r", shape=codes.shape)
    monkeypatch.setattr(writer_mod, "SLICE_BYTES", 4096)
    monkeypatch.setattr(validate_mod, "CHECK_BYTES", 4096)
    _Watched.reads = []
    on_disk = Archive(**{**{f: getattr(archive, f) for f in archive.__dataclass_fields__}, "codes": watched})
    data = archive_bytes(on_disk, chunked=True, chunk_size=SMALL, level=3)
    rows = 4096 // (codes.shape[1] * 2)
    assert _Watched.reads and max(_Watched.reads) <= rows < codes.shape[0]
    assert data == chunked(archive)  # the same bytes as from memory


# ------------------------------------------------------------------------------- the CLI


runner = CliRunner()


def test_restore_video(tmp_path) -> None:
    archive = big_archive(videos=5)
    path = tmp_path / "a.tcd"
    path.write_bytes(chunked(archive))
    out = tmp_path / "out"
    result = runner.invoke(app, ["restore", str(path), "-o", str(out), "--video", "v003,v001", "--video", "v003"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "features").iterdir()) == ["v001.npy", "v003.npy"]
    eager = ArchiveDecoder(archive)
    assert np.array_equal(np.load(out / "features" / "v003.npy"), eager.features(3))
    assert (out / "splits" / "train.split1.bundle").read_text().split() == ["v003.txt", "v001.txt"]


def test_restore_unknown_video_is_one_line(tmp_path) -> None:
    path = tmp_path / "a.tcd"
    path.write_bytes(chunked(big_archive(videos=2)))
    result = runner.invoke(app, ["restore", str(path), "-o", str(tmp_path / "out"), "--video", "nope"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "no video named 'nope'" in lines[0] and str(path) in lines[0], result.output
    assert not (tmp_path / "out").exists()


def test_restore_video_from_a_corrupt_chunk_is_one_line(tmp_path, good: bytes) -> None:
    data = bytearray(good)
    data[-50] ^= 0x04
    path = tmp_path / "bad.tcd"
    path.write_bytes(bytes(data))
    result = runner.invoke(app, ["restore", str(path), "-o", str(tmp_path / "out"), "--video", "v002"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "is corrupt" in lines[0] and str(path) in lines[0], result.output
    assert not (tmp_path / "out").exists()


def test_restore_video_of_a_single_frame_archive(tmp_path) -> None:
    archive = make_archive("identity")
    path = tmp_path / "a.tcd"
    write_archive(archive, path)
    result = runner.invoke(app, ["restore", str(path), "-o", str(tmp_path / "out"), "--video", "vid two"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "out" / "features").iterdir()] == ["vid two.npy"]


def test_restore_archive_refuses_unknown_names_before_work(tmp_path) -> None:
    with pytest.raises(ArchiveError, match="no video named 'x'"):
        restore_archive(make_archive("identity"), tmp_path / "out", videos=["P01_cam01", "x"])
    assert not (tmp_path / "out").exists()


def test_storage_breakdown_compresses_codes_in_slices(tmp_path, monkeypatch) -> None:
    """The codes' compressed size, computed a slice at a time, is the size of one frame of all of them."""
    from tascond_cli.archive import storage
    from tascond_cli.archive.container import compress

    archive = big_archive(videos=3)
    whole = len(compress(archive.codes.astype("<f2").tobytes(), 19))
    monkeypatch.setattr(storage, "SLICE_BYTES", 4096)
    assert storage._codes_compressed(archive.codes, 19) == whole
    parts = storage.storage_breakdown(archive)
    assert parts["codes"]["compressed"] == whole and parts["codes"]["raw"] == archive.codes.nbytes


def test_storage_breakdown_samples_large_codes(monkeypatch) -> None:
    """Codes over SAMPLE_BYTES: the compressed size of evenly spaced runs, scaled; close to the whole's,
    and computed from no more than the sample's rows."""
    from tascond_cli.archive import storage
    from tascond_cli.archive.container import compress

    archive = big_archive(videos=3)
    codes = archive.codes
    whole = len(compress(codes.astype("<f2").tobytes(), 19))
    monkeypatch.setattr(storage, "SAMPLE_BYTES", codes.nbytes // 8)
    read: list[int] = []
    real = storage.le

    def counting(a, *args):
        read.append(np.asarray(a).shape[0])
        return real(a, *args)

    monkeypatch.setattr(storage, "le", counting)
    estimate = storage._codes_compressed(codes, 19)
    assert 0 < sum(read) <= codes.shape[0] // 8 + storage.SAMPLE_SLICES
    assert abs(estimate - whole) <= 0.15 * whole, (estimate, whole)


def test_info_shows_the_container(tmp_path) -> None:
    path = tmp_path / "a.tcd"
    path.write_bytes(chunked(big_archive(videos=3)))
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0 and "chunks of 4 KiB (random access)" in result.output, result.output
    result = runner.invoke(app, ["info", str(path), "--json"])
    import json

    layout = json.loads(result.stdout)["container"]
    assert layout["layout"] == "chunked" and layout["chunk_size"] == SMALL and layout["chunks"] > 1
    write_archive(make_archive("identity"), tmp_path / "b.tcd")
    assert json.loads(runner.invoke(app, ["info", str(tmp_path / "b.tcd"), "--json"]).stdout)["container"] == {
        "layout": "single frame"}
