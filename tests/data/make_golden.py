"""Regenerate the golden archives of tests/data (docs/format.md, section 8).

    python3 tests/data/make_golden.py                 # write the golden files that are missing;
                                                      # check the others byte for byte (never rewritten)
    python3 tests/data/make_golden.py --stdout        # golden-v1.tcd's bytes to stdout
    python3 tests/data/make_golden.py --stdout NAME   # the bytes of golden file NAME to stdout
    python3 tests/data/make_golden.py --reference     # write golden-restore.json/.npz if missing

The golden files:

- ``golden-v1.tcd`` (format 1.0): the container and every field; its ``generator`` decoder is a
  placeholder that no tascond network matches, so it reads but does not restore.
- ``golden-v1.1.tcd`` (format 1.1): a tiny real ``generator`` archive (D=16, latent 4, hidden 16,
  three videos, the third stored by its structure alone and borrowing codes through
  ``/segments/code_source``), with chunk and log-length inputs and a residual model.
- ``golden-v1.0-random.tcd`` (1.0): a ``random`` (TCA) archive: gelu, linear output, no Fourier
  features, float32 weights.
- ``golden-v1.0-linear.tcd`` (1.0): a ``linear`` (PCA) archive.

The weights and codes are drawn from fixed seeds with numpy (not trained): what is pinned is how
an archive decodes, not how good it is. ``tests/data/golden-restore.json`` holds what each one
restores to (per video: shape and SHA-256 of the float32 features, computed by ``tascond_cli.restore``
on the CPU), ``golden-restore.npz`` the features themselves (``tests/test_golden.py``). They were
made once, like the archives, with ``--reference``, which never overwrites them.

The output is deterministic: rerunning this script must give identical bytes (with the same
h5py/HDF5/zstd versions). The expected content of golden-v1.tcd is spelled out, independently of
this script, in ``tests/test_archive.py``. A golden file, once committed, is NEVER regenerated
or changed (not even if this script's output drifts with new library versions): every future
reader must read it and restore it to the stored checksums. Only a new format version adds new
golden files, with new functions here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tascond_cli.archive import Archive, archive_bytes, codes_per_segment, offsets_from_counts, write_archive

GOLDEN = Path(__file__).with_name("golden-v1.tcd")
WRITER_VERSION = "0.1.0"  # pinned, so a new tascond release does not change the golden bytes
LEVEL = 19


def golden_archive() -> Archive:
    """3 classes, 2 videos, 6 segments, 2 codes per segment (K=2), a generator decoder."""
    lengths = np.array([4, 7, 1, 5, 6, 3], dtype=np.int64)
    counts = codes_per_segment(lengths, 2)  # [2, 2, 1, 2, 2, 2]
    n = int(counts.sum())
    return Archive(
        settings={
            "method": "golden",
            "dim": 4,
            "ips": 2,
            "latent": 3,
            "seed": 7,
            "split": 1,
            "dataset": "tiny",
            "sample_rate": 1,
            "tascond_version": WRITER_VERSION,
            "reconstruction_error": 0.125,
        },
        class_names=["background", "take", "pour"],
        video_names=["vid00", "vid01"],
        video_segments=np.array([0, 4, 6], dtype=np.int64),
        segment_labels=np.array([0, 1, 2, 0, 2, 1], dtype=np.int32),
        segment_lengths=lengths,
        segment_codes=offsets_from_counts(counts),
        codes=(np.arange(n * 3, dtype=np.float16).reshape(n, 3) / np.float16(8) - np.float16(2)),
        decoder_kind="generator",
        decoder_config={"hidden": 5, "layers": 2, "activation": "relu"},
        decoder_weights={
            "net.0.weight": (np.arange(15, dtype=np.float32).reshape(5, 3) / 16).astype(np.float32),
            "net.0.bias": np.array([0.5, -0.5, 0.25, -0.25, 0.0], dtype=np.float16),
            "net.2.weight": (np.arange(20, dtype=np.float32).reshape(4, 5) - 10).astype(np.float32),
            "norm.num_batches_tracked": np.array(3, dtype=np.int64),
        },
    )


def golden_bytes() -> bytes:
    return archive_bytes(golden_archive(), level=LEVEL, writer_version=WRITER_VERSION)


def _net_weights(rng: np.random.Generator, cfg: dict, n_in: int, dtype: type) -> dict[str, np.ndarray]:
    """Weights of a ``tascond-mlp-v1`` network (docs/format.md, section 6.2), drawn from ``rng``."""
    w = {"embed.weight": rng.standard_normal((cfg["num_classes"], cfg["embed"]))}
    width = n_in
    for i in range(cfg["layers"]):
        w[f"net.{2 * i}.weight"] = rng.standard_normal((cfg["hidden"], width)) / np.sqrt(width)
        w[f"net.{2 * i}.bias"] = 0.1 * rng.standard_normal(cfg["hidden"])
        width = cfg["hidden"]
    w[f"net.{2 * cfg['layers']}.weight"] = rng.standard_normal((cfg["dim"], width)) / np.sqrt(width)
    w[f"net.{2 * cfg['layers']}.bias"] = 0.1 * rng.standard_normal(cfg["dim"])
    w["mean"] = rng.uniform(-0.2, 0.8, cfg["dim"])
    w["std"] = rng.uniform(0.1, 0.5, cfg["dim"])
    return {k: v.astype(dtype) for k, v in w.items()}


def golden_v11_archive() -> Archive:
    """Format 1.1: a tiny ``tascond`` generator archive whose third video borrows codes.

    Videos vid00 and vid01 own their codes (ips 3); vid02 is stored by its structure alone:
    segment 7 (class 0, 2 frames) reuses segment 0's 3 codes (as 2), segment 8 (class 1) reuses
    segment 1, segment 9 (class 3, which no kept video shows) owns 3 codes, segment 10 (class 2,
    3 frames) reuses segment 4 (4 frames; nearer on a log scale than segment 2's 2 frames).
    """
    rng = np.random.default_rng(20261202)
    cfg = {"arch": "tascond-mlp-v1", "dim": 16, "num_classes": 4, "latent": 4, "hidden": 16, "layers": 2,
           "embed": 4, "fourier": 2, "length_input": True, "chunk_input": True, "output": "relu",
           "activation": "silu"}
    n_in = 4 + 4 + (1 + 2 * 2 + 1) + 3  # code, class embedding, c features + log L, u features
    weights = _net_weights(rng, cfg, n_in, np.float16)
    weights["residual.std"] = rng.uniform(0.01, 0.1, 16).astype(np.float16)
    lengths = np.array([5, 9, 2, 7, 4, 1, 6, 2, 12, 5, 3], dtype=np.int64)
    sources = np.array([-1, -1, -1, -1, -1, -1, -1, 0, 1, -1, 4], dtype=np.int64)
    counts = np.where(sources < 0, codes_per_segment(lengths, 3), 0)  # [3,3,2,3,3,1,3,0,0,3,0]
    n = int(counts.sum())
    return Archive(
        settings={
            "method": "tascond", "dim": 16, "ips": 3, "latent": 4, "hidden": 16, "seed": 11, "split": 1,
            "dataset": "golden", "others": "borrow", "borrowing_segments": 3, "residual": True,
            "code_dtype": "float16", "weight_dtype": "float16", "sample_rate": 1,
            "tascond_version": WRITER_VERSION,
        },
        class_names=["background", "take", "pour", "stir"],
        video_names=["vid00", "vid01", "vid02"],
        video_segments=np.array([0, 3, 7, 11], dtype=np.int64),
        segment_labels=np.array([0, 1, 2, 0, 2, 1, 0, 0, 1, 3, 2], dtype=np.int32),
        segment_lengths=lengths,
        segment_codes=offsets_from_counts(counts),
        codes=rng.standard_normal((n, 4)).astype(np.float16),
        decoder_kind="generator",
        decoder_config={**cfg, "residual_rho": 0.6},
        decoder_weights=weights,
        segment_sources=sources,
    )


def golden_random_archive() -> Archive:
    """Format 1.0: a ``tca`` archive (decoder kind ``random``): no codes, ips 2, seed 5."""
    rng = np.random.default_rng(20261203)
    cfg = {"arch": "tascond-mlp-v1", "dim": 8, "num_classes": 3, "latent": 3, "hidden": 8, "layers": 1,
           "embed": 2, "fourier": 0, "length_input": False, "chunk_input": False, "output": "linear",
           "activation": "gelu"}
    lengths = np.array([3, 6, 1, 4, 5], dtype=np.int64)
    return Archive(
        settings={"method": "tca", "dim": 8, "ips": 2, "latent": 3, "seed": 5, "split": 1, "dataset": "golden",
                  "weight_dtype": "float32", "sample_rate": 1, "tascond_version": WRITER_VERSION},
        class_names=["background", "take", "pour"],
        video_names=["vid00", "vid01"],
        video_segments=np.array([0, 3, 5], dtype=np.int64),
        segment_labels=np.array([0, 1, 2, 2, 0], dtype=np.int32),
        segment_lengths=lengths,
        segment_codes=np.zeros(6, dtype=np.int64),
        codes=np.zeros((0, 3), dtype=np.float16),
        decoder_kind="random",
        decoder_config=cfg,
        decoder_weights=_net_weights(rng, cfg, 3 + 2 + 1, np.float32),
    )


def golden_linear_archive() -> Archive:
    """Format 1.0: a ``pca`` archive (decoder kind ``linear``): one 3-d code per frame, D=6."""
    rng = np.random.default_rng(20261204)
    lengths = np.array([4, 2, 3], dtype=np.int64)
    return Archive(
        settings={"method": "pca", "dim": 6, "pca_dim": 3, "seed": 0, "split": 1, "dataset": "golden",
                  "code_dtype": "float16", "sample_rate": 1, "tascond_version": WRITER_VERSION},
        class_names=["background", "take"],
        video_names=["vid00", "vid01"],
        video_segments=np.array([0, 2, 3], dtype=np.int64),
        segment_labels=np.array([0, 1, 0], dtype=np.int32),
        segment_lengths=lengths,
        segment_codes=offsets_from_counts(lengths),
        codes=rng.standard_normal((int(lengths.sum()), 3)).astype(np.float16),
        decoder_kind="linear",
        decoder_config={"pca_dim": 3},
        decoder_weights={"components": rng.standard_normal((3, 6)).astype(np.float16),
                         "mean": rng.uniform(0.0, 1.0, 6).astype(np.float16)},
    )


GOLDEN_FILES = {
    "golden-v1.tcd": golden_archive,
    "golden-v1.1.tcd": golden_v11_archive,
    "golden-v1.0-random.tcd": golden_random_archive,
    "golden-v1.0-linear.tcd": golden_linear_archive,
}
"""Every golden file, by name, and the function that builds its content."""


def bytes_of(name: str) -> bytes:
    """The bytes this script makes for golden file ``name``."""
    return archive_bytes(GOLDEN_FILES[name](), level=LEVEL, writer_version=WRITER_VERSION)


REFERENCE = GOLDEN.with_name("golden-restore.json")
REFERENCE_VALUES = GOLDEN.with_name("golden-restore.npz")


def sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def features_sha256(x: np.ndarray) -> str:
    """The checksum of restored features: SHA-256 of the float32 little-endian bytes, (D, T) row-major."""
    return sha256(np.ascontiguousarray(x, dtype="<f4").tobytes())


def labels_sha256(y: np.ndarray) -> str:
    """The checksum of restored frame labels: SHA-256 of the int64 little-endian bytes."""
    return sha256(np.ascontiguousarray(y, dtype="<i8").tobytes())


def reference_restore() -> tuple[dict, dict[str, np.ndarray]]:
    """What tascond restores every golden file to, on the CPU: (the JSON record, the feature arrays)."""
    import h5py
    import torch
    import zstandard

    from tascond_cli.archive import ArchiveError, read_archive
    from tascond_cli.restore import ArchiveDecoder

    record: dict = {
        "about": "What tascond restores each golden archive to on the CPU (tests/test_golden.py). sha256: of the "
                 "restored features as float32 little-endian bytes, shape (D, T), row-major; labels_sha256: of "
                 "the frame labels as int64 little-endian. Made once by tests/data/make_golden.py --reference; "
                 "never regenerated.",
        "made_with": {"numpy": np.__version__, "torch": torch.__version__, "h5py": h5py.__version__,
                      "zstandard": zstandard.__version__, "device": "cpu"},
        "archives": {},
    }
    values: dict[str, np.ndarray] = {}
    for name in GOLDEN_FILES:
        path = GOLDEN.with_name(name)
        entry: dict = {"file_sha256": sha256(path.read_bytes())}
        archive = read_archive(path)
        try:
            decoder = ArchiveDecoder(archive, "cpu")
        except ArchiveError as exc:
            entry.update(restores=False, error=str(exc))
        else:
            entry["videos"] = {}
            for i, video in enumerate(archive.video_names):
                x, y = decoder[i]
                entry["videos"][video] = {"shape": list(x.shape), "sha256": features_sha256(x),
                                          "labels_sha256": labels_sha256(y)}
                values[f"{name}/{video}"] = x
        record["archives"][name] = entry
    return record, values


def write_reference() -> int:
    import json

    if REFERENCE.exists() or REFERENCE_VALUES.exists():
        print(f"{REFERENCE} or {REFERENCE_VALUES} exists: never rewritten (delete both by hand only for a new "
              "format version)", file=sys.stderr)
        return 1
    record, values = reference_restore()
    REFERENCE.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    np.savez(REFERENCE_VALUES, **values)
    print(f"wrote {REFERENCE} and {REFERENCE_VALUES}")
    return 0


def main(argv: list[str]) -> int:
    if argv == ["--reference"]:
        return write_reference()
    if argv[:1] == ["--stdout"] and len(argv) <= 2:
        name = argv[1] if len(argv) == 2 else GOLDEN.name
        if name not in GOLDEN_FILES:
            print(f"no golden file {name!r}; known: {', '.join(GOLDEN_FILES)}", file=sys.stderr)
            return 2
        sys.stdout.buffer.write(bytes_of(name))
        sys.stdout.buffer.flush()
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    status = 0
    for name in GOLDEN_FILES:
        path = GOLDEN.with_name(name)
        data = bytes_of(name)
        if not path.exists():
            path.write_bytes(data)
            print(f"wrote {path} ({len(data)} bytes)")
        elif path.read_bytes() == data:
            print(f"{path}: identical")
        else:  # never overwrite a committed golden file
            print(f"{path}: DIFFERS from what this script makes now (left unchanged)", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
