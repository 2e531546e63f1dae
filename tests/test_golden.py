"""Golden files for the present: every committed golden archive restores to what it restored to when made.

``tests/data/golden-restore.json`` records, per video of each golden archive (docs/format.md section 8),
the shape and SHA-256 of the features tascond restored on the CPU (float32 little-endian, (D, T)
row-major) and of the frame labels; ``golden-restore.npz`` holds those features. A change to a
decoder's numerics (a position feature, the chunk rule, code sharing, an RNG stream, the residual
model, a dtype) therefore cannot silently change what an old archive restores to.

Exact bytes or float32 rounding. The ``generator`` and ``random`` kinds are float32 matrix products
whose summation order is up to the BLAS kernel (format.md section 6.6): on the machine that made the
reference, restore's bytes do not depend on the thread count (checked with 1, 2 and 8 threads), but
they do change in the last bit with tascond's internal batch size (``batch_frames`` 1, 7 or 32768:
at most 1.2e-7 apart, features of order 1), which is the same kind of change another CPU's kernels
make. So each video must restore to the recorded bytes exactly, or, failing that, to values within
``atol = rtol = 1e-5`` of the recorded ones: 100x the observed kernel noise, 1000x below any real
decoding change (those move features by 1e-2 or more). Set ``TASCOND_GOLDEN_EXACT=1`` to demand the
exact bytes (meaningful on a platform where the reference was made). Labels are always exact.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from tascond_cli.archive import ArchiveError, read_archive, read_version
from tascond_cli.restore import ArchiveDecoder

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "golden-restore.json").read_text())
ARCHIVES = REFERENCE["archives"]
RESTORABLE = sorted(name for name, entry in ARCHIVES.items() if entry.get("restores", True))
ATOL = RTOL = 1e-5
EXACT = os.environ.get("TASCOND_GOLDEN_EXACT", "") not in ("", "0")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _features_sha256(x: np.ndarray) -> str:
    return _sha256(np.ascontiguousarray(x, dtype="<f4").tobytes())


def _make_golden():
    spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_golden_file_is_recorded() -> None:
    on_disk = sorted(p.name for p in DATA.glob("golden-*.tcd"))
    assert on_disk == sorted(ARCHIVES) == sorted(_make_golden().GOLDEN_FILES)
    assert {"golden-v1.tcd", "golden-v1.1.tcd"} <= set(ARCHIVES)
    assert read_version(DATA / "golden-v1.1.tcd") == (1, 1)


@pytest.mark.parametrize("name", sorted(ARCHIVES))
def test_golden_file_unchanged(name: str) -> None:
    """A committed golden file is never rewritten: its bytes are pinned by their checksum."""
    assert _sha256((DATA / name).read_bytes()) == ARCHIVES[name]["file_sha256"], (
        f"tests/data/{name} changed; golden files are never regenerated (docs/format.md section 8)"
    )


@pytest.mark.parametrize("name", sorted(set(ARCHIVES) - {"golden-v1.tcd"}))
def test_golden_file_regenerates_identically(name: str) -> None:
    """make_golden.py still makes the same bytes (golden-v1.tcd: tests/test_archive.py)."""
    mg = _make_golden()
    assert mg.GOLDEN_FILES[name]() == read_archive(DATA / name)
    assert mg.bytes_of(name) == (DATA / name).read_bytes(), (
        f"tests/data/make_golden.py no longer reproduces {name} byte for byte "
        "(a writer change, or new h5py/HDF5/zstd versions); the committed file stays as it is"
    )


def test_make_golden_never_overwrites(capsys: pytest.CaptureFixture[str]) -> None:
    """The script's default run only checks committed files, and --reference refuses to rewrite."""
    mg = _make_golden()
    assert mg.main([]) == 0
    out = capsys.readouterr().out
    assert "wrote" not in out and out.count("identical") == len(ARCHIVES)
    assert mg.main(["--reference"]) == 1
    assert "never rewritten" in capsys.readouterr().err


def test_reference_values_match_their_checksums() -> None:
    with np.load(DATA / "golden-restore.npz") as values:
        keys = sorted(values.files)
        assert keys == sorted(f"{n}/{v}" for n in RESTORABLE for v in ARCHIVES[n]["videos"])
        for key in keys:
            name, video = key.split("/")
            rec = ARCHIVES[name]["videos"][video]
            assert values[key].dtype == np.float32 and list(values[key].shape) == rec["shape"]
            assert _features_sha256(values[key]) == rec["sha256"], key


@pytest.mark.parametrize("name", RESTORABLE)
def test_golden_restores_to_reference(name: str) -> None:
    archive = read_archive(DATA / name)
    decoder = ArchiveDecoder(archive, "cpu")
    videos = ARCHIVES[name]["videos"]
    assert decoder.names == list(videos)
    inexact = []
    with np.load(DATA / "golden-restore.npz") as values:
        for i, video in enumerate(decoder.names):
            rec = videos[video]
            x, y = decoder[i]
            assert x.dtype == np.float32 and list(x.shape) == rec["shape"], video
            assert _sha256(np.ascontiguousarray(y, dtype="<i8").tobytes()) == rec["labels_sha256"], video
            if _features_sha256(x) == rec["sha256"]:
                continue
            ref = values[f"{name}/{video}"]
            diff = float(np.abs(x - ref).max())
            assert not EXACT, f"{name} {video}: restores to other bytes (max abs diff {diff:.3g}); exact required"
            np.testing.assert_allclose(x, ref, rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name} {video}: restores to other values than its reference")
            inexact.append(f"{video} ({diff:.2g})")
    if inexact:
        warnings.warn(f"{name}: within float32 rounding of the reference, not the same bytes: {', '.join(inexact)}")


def test_golden_v1_reads_but_does_not_restore() -> None:
    """golden-v1.tcd's generator config is a placeholder, not a tascond-mlp-v1 network (format.md section 8)."""
    assert ARCHIVES["golden-v1.tcd"]["restores"] is False
    archive = read_archive(DATA / "golden-v1.tcd")
    with pytest.raises(ArchiveError, match="/decoder"):
        ArchiveDecoder(archive, "cpu").features(0)
