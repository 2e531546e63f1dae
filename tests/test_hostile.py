"""Hostile archives (issue 11): the parsing watchdog, the declared limits, finite and bounded decoders,
and restore's checks of its output and of free disk space."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zstandard

from tascond_cli.archive import Archive, ArchiveError, archive_bytes, read_archive, wrap_payload, write_archive
from tascond_cli.archive import guard
from tascond_cli.archive.constants import (
    HEADER,
    MAX_DIM,
    MAX_EXPANSION,
    MAX_FEATURE_MAGNITUDE,
    MAX_PAYLOAD_RATIO,
    MAX_VIDEO_FRAMES,
    MAX_VIDEO_VALUES,
    PAYLOAD_SLACK,
)
from tascond_cli.chunks import offsets_from_counts
from tascond_cli.errors import TascondError
from tascond_cli.restore import ArchiveDecoder, restore_archive, restore_bytes

from test_archive import make_archive, payload_of

needs_fork = pytest.mark.skipif(not guard.CAN_FORK, reason="the watchdog needs os.fork")


# --------------------------------------------------------------------------- the watchdog


def _fields() -> dict:
    return {
        "text": "é ünïcode",
        "names": ["a", "b c", ""],
        "nothing": None,
        "ints": np.arange(5, dtype=">i4"),
        "codes": np.arange(6, dtype=np.int8).reshape(2, 3),
        "weights": {"w": np.ones((2, 2), np.float16), "s": np.array(3.5, np.float32)},
    }


def test_encoding_round_trips_in_native_order() -> None:
    out = guard.decode(guard.encode(_fields()))
    assert out["text"] == "é ünïcode" and out["names"] == ["a", "b c", ""] and out["nothing"] is None
    assert out["ints"].dtype == np.dtype("=i4") and out["ints"].tolist() == [0, 1, 2, 3, 4]
    assert out["codes"].dtype == np.int8 and out["codes"].shape == (2, 3)
    assert out["weights"]["w"].dtype == np.float16 and out["weights"]["s"].shape == ()


@pytest.mark.parametrize("cut", [1, 9, 30])
def test_encoding_refuses_inconsistent_sizes(cut: int) -> None:
    msg = guard.encode(_fields())
    with pytest.raises((ValueError, UnicodeDecodeError)):
        guard.decode(msg[:-cut])
    with pytest.raises(ValueError):
        guard.decode(msg + b"\0")


def test_encoding_refuses_unknown_dtypes() -> None:
    msg = guard.encode({"x": np.zeros(2, np.float32)}).replace(b'"<f4"', b'"|O8"')
    with pytest.raises(ValueError):
        guard.decode(msg)


def _hangs(payload: bytes) -> dict:
    while True:
        time.sleep(1)


def _crashes(payload: bytes) -> dict:
    os.kill(os.getpid(), signal.SIGSEGV)
    return {}


def _eats_memory(payload: bytes) -> dict:
    return {"x": np.ones(2**40, dtype=np.uint8)}


def _refuses(payload: bytes) -> dict:
    raise ArchiveError("/settings: broken")


def _echo(payload: bytes) -> dict:
    return {"n": np.frombuffer(payload, np.uint8).copy(), "s": "ok"}


@needs_fork
def test_a_parse_that_hangs_is_refused_in_time() -> None:
    t0 = time.monotonic()
    with pytest.raises(ArchiveError, match="did not parse within 1 s"):
        guard.guarded_extract(_hangs, b"x", timeout=1)
    assert time.monotonic() - t0 < 5


@needs_fork
def test_a_parser_crash_is_a_refusal() -> None:
    with pytest.raises(ArchiveError, match="crashed with signal"):
        guard.guarded_extract(_crashes, b"x")


@needs_fork
def test_a_parse_out_of_memory_is_a_refusal() -> None:
    with pytest.raises(ArchiveError, match="ran out of memory"):
        guard.guarded_extract(_eats_memory, b"x")


@needs_fork
def test_child_errors_and_values_come_back() -> None:
    with pytest.raises(ArchiveError, match="^/settings: broken$"):
        guard.guarded_extract(_refuses, b"x")
    out = guard.guarded_extract(_echo, b"\x01\x02\x03")
    assert out["n"].tolist() == [1, 2, 3] and out["s"] == "ok"


def test_parse_deadline_grows_with_the_payload() -> None:
    assert guard.parse_deadline(0) == guard.PARSE_SECONDS_BASE
    assert guard.parse_deadline(100 * 2**20) == pytest.approx(guard.PARSE_SECONDS_BASE + 100 * guard.PARSE_SECONDS_PER_MIB)


@needs_fork
def test_reader_uses_the_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    """read_archive's HDF5 parse runs in the child: a hang there is a timed refusal naming the file."""
    import tascond_cli.archive.reader as reader

    monkeypatch.setattr(reader, "_extract", _hangs)
    data = archive_bytes(make_archive("linear"))
    t0 = time.monotonic()
    with pytest.raises(ArchiveError, match=r"^x\.tcd: the HDF5 content did not parse within 1 s"):
        read_archive(data, name="x.tcd", parse_timeout=1)
    assert time.monotonic() - t0 < 5


# --------------------------------------------------------------------------- declared limits


def _zeros_archive(dim: int, lengths: list[list[int]]) -> Archive:
    counts = [len(v) for v in lengths]
    flat = np.array([n for v in lengths for n in v], dtype=np.int64)
    return Archive(
        settings={"method": "zeros", "dim": dim},
        class_names=["a"],
        video_names=[f"v{i}" for i in range(len(lengths))],
        video_segments=offsets_from_counts(counts),
        segment_labels=np.zeros(flat.shape[0], np.int32),
        segment_lengths=flat,
        segment_codes=np.zeros(flat.shape[0] + 1, np.int64),
        codes=np.zeros((0, 0), np.float16),
        decoder_kind="zeros",
    )


def _rewrap(archive: Archive) -> bytes:
    """Archive bytes without the writer's checks (the payload of a valid archive, edited)."""
    import io

    import h5py

    good = archive_bytes(_zeros_archive(4, [[3]]))
    bio = io.BytesIO(payload_of(good))
    with h5py.File(bio, "r+") as f:
        for path in ("/settings", "/segments/lengths", "/videos/frames", "/videos/names", "/videos/segment_offsets",
                     "/segments/labels", "/segments/code_offsets"):
            del f[path]
        import json

        f.create_dataset("/settings", data=json.dumps(archive.settings), dtype=h5py.string_dtype())
        f.create_dataset("/segments/lengths", data=archive.segment_lengths)
        f.create_dataset("/videos/frames", data=archive.video_frames)
        f.create_dataset("/videos/names", data=archive.video_names, dtype=h5py.string_dtype())
        f.create_dataset("/videos/segment_offsets", data=archive.video_segments)
        f.create_dataset("/segments/labels", data=archive.segment_labels)
        f.create_dataset("/segments/code_offsets", data=archive.segment_codes)
    return wrap_payload(bio.getvalue())


def test_dimension_limit() -> None:
    with pytest.raises(ArchiveError, match=f"'dim' is {MAX_DIM + 1}, more than the limit of {MAX_DIM}"):
        _zeros_archive(MAX_DIM + 1, [[3]]).validate()
    with pytest.raises(ArchiveError, match="more than the limit"):
        read_archive(_rewrap(_zeros_archive(10**12, [[3]])))
    _zeros_archive(MAX_DIM, [[3]]).validate()


def test_frames_per_video_limit() -> None:
    with pytest.raises(ArchiveError, match=f"'v0' has {MAX_VIDEO_FRAMES + 1} frames, more than the limit"):
        _zeros_archive(1, [[MAX_VIDEO_FRAMES, 1]]).validate()
    _zeros_archive(1, [[MAX_VIDEO_FRAMES - 1, 1]]).validate()


def test_values_per_video_limit() -> None:
    frames = MAX_VIDEO_VALUES // 1024 + 1
    with pytest.raises(ArchiveError, match="limit of .* values per video"):
        _zeros_archive(1024, [[frames]]).validate()
    _zeros_archive(1024, [[frames - 1]]).validate()


def test_length_bomb_is_refused() -> None:
    """Consistent lengths of 2**31 - 1 (each one allowed for a segment) are far over a video's limit."""
    with pytest.raises(ArchiveError, match="frames in all, the limit is"):
        read_archive(_rewrap(_zeros_archive(4, [[2**31 - 1] * 3])), name="bomb.tcd")
    with pytest.raises(ArchiveError, match="^bomb.tcd: .* more than the limit of"):
        read_archive(_rewrap(_zeros_archive(4, [[2**31 - 1]])), name="bomb.tcd")


def test_expansion_limit_and_its_override() -> None:
    archive = _zeros_archive(4096, [[200_000]] * 20)  # 13 GB of float32 from a few KB
    data = archive_bytes(archive)
    restored = 4 * 4096 * 200_000 * 20
    assert restored > MAX_EXPANSION * len(data)
    msg = str(pytest.raises(ArchiveError, read_archive, data, name="z.tcd").value)
    assert msg.startswith("z.tcd: restores to") and "--max-restore-bytes" in msg
    assert read_archive(data, max_restore_bytes=restored) == archive
    with pytest.raises(ArchiveError, match="more than the limit of 100"):
        read_archive(archive_bytes(make_archive("linear")), max_restore_bytes=100)


def test_zstd_bomb_is_refused_before_decompressing() -> None:
    usize = 64 * 2**20
    frame = zstandard.ZstdCompressor(write_checksum=True, write_content_size=True).compress(b"\0" * usize)
    assert usize > MAX_PAYLOAD_RATIO * len(frame) + PAYLOAD_SLACK
    data = HEADER.pack(b"\x89TCD\r\n\x1a\n", 1, 0, usize, len(frame)) + frame
    with pytest.raises(ArchiveError, match="decompression bomb"):
        read_archive(data)


def test_own_archives_are_far_below_the_payload_ratio() -> None:
    for kind in ("linear", "lowrank", "generator", "zeros", "identity"):
        data = archive_bytes(make_archive(kind))
        _, _, _, usize, zsize = HEADER.unpack(data[: HEADER.size])
        assert usize <= MAX_PAYLOAD_RATIO * zsize + PAYLOAD_SLACK


# --------------------------------------------------------------------------- finite, bounded decoders


def _with_weight(kind: str, name: str, edit) -> Archive:
    a = make_archive(kind)
    weights = dict(a.decoder_weights)
    weights[name] = edit(weights[name].copy())
    return dataclasses.replace(a, decoder_weights=weights)


def _set_inf(w: np.ndarray) -> np.ndarray:
    w.flat[0] = np.inf
    return w


@pytest.mark.parametrize("kind,name", [("linear", "mean"), ("linear", "components"), ("lowrank", "mean"),
                                       ("generator", "net.0.weight"), ("generator", "net.0.bias")])
def test_non_finite_weights_are_refused_on_write_and_read(kind: str, name: str, tmp_path: Path) -> None:
    bad = _with_weight(kind, name, _set_inf)
    with pytest.raises(ArchiveError, match=f"/decoder/weights/{name}: holds a non-finite value"):
        write_archive(bad, tmp_path / "x.tcd")
    assert not (tmp_path / "x.tcd").exists()
    import io

    import h5py

    bio = io.BytesIO(payload_of(archive_bytes(make_archive(kind))))
    with h5py.File(bio, "r+") as f:
        f[f"/decoder/weights/{name}"][...] = bad.decoder_weights[name]
    with pytest.raises(ArchiveError, match="non-finite"):
        read_archive(wrap_payload(bio.getvalue()))


@pytest.mark.parametrize("kind", ["linear", "lowrank"])
def test_finite_but_overflowing_weights_are_refused(kind: str) -> None:
    bad = _with_weight(kind, "components", lambda w: w * np.float32(1e36))
    with pytest.raises(ArchiveError, match="restored features could reach a magnitude of .* over the limit"):
        bad.validate()


def test_identity_codes_bound() -> None:
    a = make_archive("identity", code_dtype=np.float32)
    codes = a.codes.copy()
    codes[0, 0] = 3e38
    with pytest.raises(ArchiveError, match="over the limit"):
        dataclasses.replace(a, codes=codes).validate()


def test_declared_bounds_hold_for_restores() -> None:
    for kind in ("linear", "lowrank", "identity", "zeros"):
        a = make_archive(kind).validate()
        from tascond_cli.archive import get_decoder_kind

        bound = get_decoder_kind(kind).output_bound(a)
        assert bound is not None and bound <= MAX_FEATURE_MAGNITUDE
        dec = ArchiveDecoder(a)
        for i in range(len(dec)):
            assert np.abs(dec.features(i)).max(initial=0) <= bound * (1 + 1e-5) + 1e-6


def test_generator_whose_output_overflows_is_refused_at_bind() -> None:
    """Finite float32 weights scaled by 1e30: the network's output overflows; binding decodes a sample."""
    a = read_archive(Path(__file__).parent / "data" / "golden-v1.0-random.tcd")
    ArchiveDecoder(a)  # the archive as written binds
    weights = {k: v * np.float32(1e30) if v.dtype == np.float32 else v for k, v in a.decoder_weights.items()}
    bad = dataclasses.replace(a, decoder_weights=weights).validate()  # finite: the reader cannot tell
    with pytest.raises(ArchiveError, match="network's output is not finite"):
        ArchiveDecoder(bad)


def test_restore_refuses_non_finite_output_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = make_archive("linear").validate()
    dec = ArchiveDecoder(a)
    monkeypatch.setattr(type(dec._bound), "features", lambda self, i: np.full((a.dim, 3), np.nan, np.float32))
    with pytest.raises(ArchiveError, match="restores to non-finite values"):
        restore_archive(a, tmp_path / "out")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- disk space


def test_restore_checks_free_space_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    a = make_archive("linear").validate()
    need = restore_bytes(a, range(a.num_videos))
    assert need >= 4 * a.dim * a.total_frames
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, need - 1))
    with pytest.raises(TascondError, match=f"restoring needs {need:,} bytes, only {need - 1:,} are free"):
        restore_archive(a, tmp_path / "out")
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, need))
    restore_archive(a, tmp_path / "out")


# --------------------------------------------------------------------------- the CLI


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tascond_cli", *args], capture_output=True, text=True, timeout=timeout)


def test_cli_max_restore_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.tcd"
    write_archive(make_archive("linear"), path)
    run = _cli("restore", str(path), "-o", str(tmp_path / "out"), "--max-restore-bytes", "100")
    assert run.returncode != 0 and "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "--max-restore-bytes" in lines[0], run.stderr
    assert not (tmp_path / "out").exists()
    run = _cli("restore", str(path), "-o", str(tmp_path / "out"), "--max-restore-bytes", "nonsense")
    assert run.returncode != 0 and "max_restore_bytes" in run.stderr and "Traceback" not in run.stderr
    run = _cli("restore", str(path), "-o", str(tmp_path / "out"), "--max-restore-bytes", "1MB")
    assert run.returncode == 0, run.stderr


def test_deeply_nested_settings_json_is_a_clean_refusal() -> None:
    from tascond_cli.archive.encoding import parse_json_object

    with pytest.raises(ArchiveError, match="/settings: JSON nested too deeply"):
        parse_json_object("[" * 100_000, "/settings")


@pytest.mark.parametrize("seed", ["linear", -1, 1.5, True])
def test_a_residual_model_needs_an_integer_seed_on_read(seed) -> None:
    """Found by the fuzzer: a generator archive with a residual model and settings seed 'linear' read
    fine and failed inside restore with a ValueError."""
    a = read_archive(Path(__file__).parent / "data" / "golden-v1.1.tcd")
    weights = dict(a.decoder_weights, **{"residual.std": np.ones(a.dim, np.float16)})
    good = dataclasses.replace(a, decoder_weights=weights, decoder_config={**a.decoder_config, "residual_rho": 0.5})
    good.validate()
    bad = dataclasses.replace(good, settings={**good.settings, "seed": seed})
    with pytest.raises(ArchiveError, match="seed must be an integer >= 0 for the residual noise"):
        bad.validate()


@pytest.mark.parametrize("ips", [2**63, 2**31])
def test_a_random_archive_with_a_huge_ips_is_refused_at_bind(ips) -> None:
    """Found by the fuzzer: ips 2**63 overflowed inside the chunk rule with an OverflowError."""
    a = read_archive(Path(__file__).parent / "data" / "golden-v1.0-random.tcd")
    bad = dataclasses.replace(a, settings={**a.settings, "ips": ips}).validate()
    with pytest.raises(ArchiveError, match="needs an integer ips from 1 to 2147483647"):
        ArchiveDecoder(bad)
