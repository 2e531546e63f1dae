"""benchmarks/levers.py: its research codec (cpca-K-S) writes valid archives that restore what it claims."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tascond_cli.archive import read_archive, write_archive
from tascond_cli.data import open_dataset, segments_of
from tascond_cli.restore import ArchiveDecoder
from tascond_cli.synth import SynthConfig, synthesize

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def levers():
    sys.path.insert(0, str(BENCH))
    try:
        import levers as module
    finally:
        sys.path.pop(0)
    return module


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("lev") / "data"
    synthesize(root, SynthConfig(profile="gtea", videos=3, subsample=8, dim=12, seed=2))
    return open_dataset(root, parts=("train",))


def test_full_rank_one_frame_per_code_is_the_features(levers, dataset, tmp_path):
    """K = D and S = 1: every code is one frame in a complete basis, so restore gives the frames back."""
    archive = levers.chunk_pca_archive(dataset, k=dataset.dim, stride=1, dtype=np.float32)
    write_archive(archive, tmp_path / "a.tcd")
    decoder = ArchiveDecoder(read_archive(tmp_path / "a.tcd"))
    for i, video in enumerate(dataset.train):
        x, y = decoder[i]
        np.testing.assert_allclose(np.asarray(x), video.features(), atol=1e-4)
        assert np.array_equal(np.asarray(y), video.labels)


def test_chunks_hold_the_projected_chunk_means(levers, dataset):
    archive = levers.chunk_pca_archive(dataset, k=4, stride=5)
    video = dataset.train[0]
    lengths = np.array([s.end - s.start for s in segments_of(video.labels)])
    counts = np.diff(archive.segment_codes)[: lengths.size]
    assert np.array_equal(counts, np.maximum(1, np.round(lengths / 5)).astype(int))
    assert archive.code_dim == 4 and archive.decoder_kind == "linear"
    # the first chunk's code is its mean projected on the stored components
    comp = archive.decoder_weights["components"].astype(np.float64)
    mean = archive.decoder_weights["mean"].astype(np.float64)
    seg = segments_of(video.labels)[0]
    n = int(counts[0])
    hi = seg.start + (seg.end - seg.start) // n
    expect = (np.asarray(video.features()[:, seg.start : hi], dtype=np.float64).mean(1) - mean) @ comp.T
    np.testing.assert_allclose(archive.codes[0].astype(np.float64), expect, rtol=2e-2, atol=2e-2)
