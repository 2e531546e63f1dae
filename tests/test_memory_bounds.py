"""Memory that does not grow with the dataset (issue 12): what the generator methods keep mapped while
they invert, and how much of an archive ``tascond restore`` reads at a time."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import make_tiny_dataset
from tascond_cli.archive import LazyCodes
from tascond_cli.cli import app
from tascond_cli.condense.invert import InvertConfig, invert_segments
from tascond_cli.condense.prior import PriorConfig, train_prior
from tascond_cli.data import open_dataset
from tascond_cli.data.model import Video
from tascond_cli.methods._generator import SegmentViews, collect_segments
from tascond_cli.restore import ArchiveDecoder

from test_random_access import big_archive, chunked

needs_proc = pytest.mark.skipif(not Path("/proc/self/maps").is_file() or sys.platform != "linux",
                                reason="counts mappings through /proc/self/maps")


def mapped(folder: Path) -> int:
    """Memory mappings of files under ``folder`` this process holds now."""
    prefix = str(folder.resolve())
    with open("/proc/self/maps", encoding="utf-8") as f:
        return sum(1 for line in f if line.rstrip().split(" ")[-1].startswith(prefix))


@needs_proc
def test_generator_segments_are_mapped_one_at_a_time(tmp_path, monkeypatch) -> None:
    root = make_tiny_dataset(tmp_path / "data", n_train=6, dim=8)
    videos = open_dataset(root, parts=("train",)).train
    features = root / "features"
    segments, labels, per_video = collect_segments(videos)
    assert isinstance(segments, SegmentViews) and sum(per_video) == len(segments) == len(labels)
    assert mapped(features) == 0  # collecting reads the labels alone
    assert np.array_equal(segments.lengths, [s.shape[1] for s in segments])
    prior = train_prior(videos, 4, PriorConfig(latent=4, hidden=16, layers=2, embed=4, fourier=2, steps=3, batch=32))

    seen, after_batch = [], []
    original = Video.features

    def counting(self, sample_rate: int = 1):
        seen.append(mapped(features))  # before this segment is mapped: what earlier ones left mapped
        return original(self, sample_rate)

    monkeypatch.setattr(Video, "features", counting)
    config = InvertConfig(max_iters=3, batch_frames=64)
    lazy = invert_segments(prior, segments, labels, 2, config, on_batch=lambda _: after_batch.append(mapped(features)))
    monkeypatch.undo()
    assert seen and max(seen) <= 1, seen  # the segment being copied, never the ones before it
    assert len(after_batch) > 2 and max(after_batch) == 0
    assert mapped(features) == 0
    held = [np.array(s) for s in segments]  # the same frames, in memory: the same codes and error
    eager = invert_segments(prior, held, labels, 2, config)
    assert np.array_equal(lazy.codes, eager.codes) and lazy.error == eager.error


def test_segment_views_slice_lazily(tmp_path) -> None:
    root = make_tiny_dataset(tmp_path / "data", n_train=2, dim=8)
    video = open_dataset(root, parts=("train",)).train[0]
    views = SegmentViews([(video, 0, 5), (video, 5, 9), (video, 9, 10)])
    part = views[1:]
    assert isinstance(part, SegmentViews) and len(part) == 2 and list(part.lengths) == [4, 1]
    assert np.array_equal(part[0], video.features()[:, 5:9])


@needs_proc
def test_restore_reads_a_chunked_archive_video_by_video(tmp_path, monkeypatch) -> None:
    archive = big_archive(videos=6, frames=300, dim=32)
    path = tmp_path / "a.tcd"
    path.write_bytes(chunked(archive))
    reads = []
    rows = LazyCodes.rows

    def counting(self, start: int, stop: int) -> np.ndarray:
        reads.append(stop - start)
        return rows(self, start, stop)

    monkeypatch.setattr(LazyCodes, "rows", counting)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["restore", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    per_video = int(np.diff(archive.segment_codes[archive.video_segments]).max())
    assert reads and max(reads) <= per_video < archive.codes.shape[0]  # never every code at once
    eager = ArchiveDecoder(archive)
    for i, name in enumerate(archive.video_names):
        assert np.array_equal(np.load(out / "features" / f"{name}.npy"), eager.features(i))
