"""Regenerate ``golden-v1.tcd``, the reference archive of format 1.0 (docs/format.md).

    python3 tests/data/make_golden.py            # rewrite tests/data/golden-v1.tcd
    python3 tests/data/make_golden.py --stdout   # write the bytes to stdout instead

The output is deterministic: rerunning this script must give identical bytes (with
the same h5py/HDF5/zstd versions). The expected content is spelled out, independently
of this script, in ``tests/test_archive.py``; never change this script's content for
format 1.0, only add new golden files for new versions.
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


def main(argv: list[str]) -> int:
    if argv == ["--stdout"]:
        sys.stdout.buffer.write(golden_bytes())
        sys.stdout.buffer.flush()
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    size = write_archive(golden_archive(), GOLDEN, level=LEVEL, overwrite=True, writer_version=WRITER_VERSION)
    print(f"wrote {GOLDEN} ({size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
