"""What tests/test_distributed_condense.py runs in each process, alone or as a rank under ``torchrun``.

    python tests/distributed_worker.py DATA OUT

It saves the codes of a fixed prior to OUT/codes.npy (and the error to OUT/error.npy); each rank says in
OUT/gather-RANK.txt whether gather_arrays gave it every one of a set of varied arrays exactly, and writes
in OUT/prior-RANK.txt the SHA-256 of the prior the ranks then train together (DistributedDataParallel).

The prior is trained before the process group is joined, so every rank (and a lone process) holds the
same one; then the inversion runs sharded over the ranks and rank 0 alone saves what it gathered.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

from tascond_cli.condense import InvertConfig, PriorConfig, invert_segments, train_prior
from tascond_cli.data import open_dataset
from tascond_cli.distributed import finish, gather_arrays, init, joined
from tascond_cli.methods._generator import collect_segments

PRIOR = PriorConfig(latent=4, hidden=16, layers=2, embed=4, fourier=2, steps=30, batch=64, lr=3e-3)
INVERT = InvertConfig(max_iters=25, patience=4, chunk_frames=2, batch_frames=40, seed=3)
"""Subsampled frames (the per-segment random numbers matter) and several batches (the ranks share them)."""


def fixed_inversion(data: Path) -> tuple[np.ndarray, float, int]:
    """Train the prior in this process alone, then invert every training segment (sharded when a process
    group is up): the codes, the error and the number of segments."""
    dataset = open_dataset(data)
    prior = train_prior(dataset.train, dataset.num_classes, PRIOR)  # before init: the same on every rank
    segments, labels, _ = collect_segments(dataset.train)
    init()
    inversion = invert_segments(prior, segments, labels, 4, INVERT)
    return inversion.codes, inversion.error, len(segments)


def items(n: int) -> list[np.ndarray]:
    """``n`` arrays of varied dtypes and shapes (empty ones too), the same on every rank."""
    rng = np.random.default_rng(7)
    kinds = ("float16", "float32", "float64", "int8", "int64", "uint16")
    out = []
    for i in range(n):
        shape = [(int(rng.integers(0, 5)), 3), (int(rng.integers(0, 9)),), (0, 2)][i % 3]
        out.append((rng.normal(size=shape) * 50).astype(kinds[i % len(kinds)]))
    return out


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    data, out = Path(argv[0]), Path(argv[1])
    codes, error, n_segments = fixed_inversion(data)
    w = joined()
    if w.main:
        np.save(out / "codes.npy", codes)
        np.save(out / "error.npy", np.array([error, n_segments]))
    expected = items(11)
    got = gather_arrays({i: a for i, a in enumerate(expected) if i % w.size == w.rank}, len(expected))
    same = all(g.dtype == e.dtype and g.shape == e.shape and np.array_equal(g, e) for g, e in zip(got, expected))
    (out / f"gather-{w.rank}.txt").write_text(f"{w.size} {int(same)}")  # every rank checks
    dataset = open_dataset(data)
    prior = train_prior(dataset.train, dataset.num_classes, PRIOR)  # now the ranks train it together
    digest = hashlib.sha256(b"".join(t.numpy().tobytes() for t in prior.state_dict().values()))
    (out / f"prior-{w.rank}.txt").write_text(digest.hexdigest())
    finish()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
