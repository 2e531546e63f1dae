"""Memory that does not grow with the dataset (issue 12): features are read one video at a time, and the
codes of ``fp16`` and ``pca`` (as big as the data) are built on disk, in an unnamed temporary file."""

from __future__ import annotations

import os
import tempfile
import weakref

import numpy as np
import pytest

from tascond_cli.archive import archive_bytes, read_archive, write_archive
from tascond_cli.data import FeatureSequence, Video, open_dataset
from tascond_cli.evaluate import TrainConfig
from tascond_cli.evaluate.protocol import evaluate_sources, original_source
from tascond_cli.methods import METHODS, Config, make_baseline
from tascond_cli.methods._base import report_to
from tascond_cli.methods._features import build_from_features
from tascond_cli.methods._ondisk import spill_codes

from conftest import make_tiny_dataset

N_VIDEOS = 8


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("mem") / "data", n_train=N_VIDEOS, n_test=N_VIDEOS, dim=8, seed=3)


class LiveFeatures:
    """Counts the feature arrays ``Video.features`` hands out that are still alive, and the most at once."""

    def __init__(self, monkeypatch) -> None:
        self.live = self.most = self.loads = 0
        original = Video.features

        def features(video, sample_rate=1):
            x = original(video, sample_rate)
            self.loads += 1
            self.live += 1
            self.most = max(self.most, self.live)
            weakref.finalize(x, self._dropped)
            return x

        monkeypatch.setattr(Video, "features", features)

    def _dropped(self) -> None:
        self.live -= 1


@pytest.mark.parametrize("method", ["mean", "coreset", "fp16", "pca", "blind"])
def test_feature_methods_hold_at_most_two_videos_at_once(data, method, monkeypatch):
    live = LiveFeatures(monkeypatch)
    make_baseline(method, data, Config(device="cpu"))
    assert live.loads >= N_VIDEOS  # every video read ...
    assert live.most <= 2  # ... but never more than the one being read and the one before it


def test_evaluate_reads_training_and_test_videos_one_at_a_time(data, monkeypatch):
    ds = open_dataset(data)
    live = LiveFeatures(monkeypatch)
    evaluate_sources(ds, [original_source(ds)], TrainConfig(epochs=1, num_stages=1, num_layers=2, num_f_maps=4), seeds=1)
    assert live.loads >= 2 * N_VIDEOS  # every training video once, every test video once
    assert live.most <= 2


def test_feature_sequence_maps_a_video_only_when_asked(data, monkeypatch):
    ds = open_dataset(data)
    live = LiveFeatures(monkeypatch)
    seq = FeatureSequence(ds.test, sample_rate=2)
    assert len(seq) == N_VIDEOS and live.loads == 0
    x = seq[1]
    assert live.loads == 1 and x.shape == (8, (ds.test[1].num_frames + 1) // 2)
    np.testing.assert_array_equal(x, ds.test[1].features()[:, ::2])
    assert len(seq[2:5]) == 3 and live.loads == 2  # a slice is another lazy sequence


def test_spill_codes_is_a_read_only_memmap_that_leaves_no_file(tmp_path):
    rng = np.random.default_rng(0)
    pieces = [rng.normal(size=(n, 5)).astype(np.float16) for n in (3, 0, 7, 1)]
    codes = spill_codes(iter(pieces), 5, np.float16, tmp_dir=str(tmp_path))
    assert isinstance(codes, np.memmap) and codes.shape == (11, 5) and codes.dtype == np.float16
    np.testing.assert_array_equal(codes, np.concatenate(pieces))
    assert not codes.flags.writeable
    assert os.listdir(tmp_path) == []  # unnamed from the start: nothing to clean up, even after a crash


def test_spill_codes_without_rows_and_of_the_wrong_width(tmp_path):
    empty = spill_codes([np.zeros((0, 4), np.float32)], 4, np.float32, tmp_dir=str(tmp_path))
    assert empty.shape == (0, 4) and empty.dtype == np.float32
    with pytest.raises(ValueError, match=r"expected \(n, 4\)"):
        spill_codes([np.zeros((2, 3), np.float32)], 4, np.float32, tmp_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_spill_codes_consumes_pieces_one_at_a_time(tmp_path):
    made = []

    def pieces():
        for i in range(4):
            made.append(i)
            piece = np.full((2, 3), i, dtype=np.float32)
            ref = weakref.ref(piece)
            yield piece
            del piece
            assert ref() is None  # written and dropped before the next piece is made

    codes = spill_codes(pieces(), 3, np.float32, tmp_dir=str(tmp_path))
    assert made == [0, 1, 2, 3] and codes[:, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


@pytest.mark.parametrize("method", ["fp16", "pca"])
def test_fp16_and_pca_codes_come_back_on_disk_with_the_same_bytes(data, method, tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    config = Config(device="cpu").with_(storage__pca_dim=4)
    result = make_baseline(method, data, config)
    assert isinstance(result.archive.codes, np.memmap)
    assert result.archive.num_codes == result.frames  # one code per frame
    assert os.listdir(scratch) == []  # the codes' file has no name in the temporary folder
    in_memory = build_from_features(METHODS[method], data, config.for_method(METHODS[method]), report_to(None))
    assert not isinstance(in_memory.archive.codes, np.memmap)
    assert archive_bytes(result.archive) == archive_bytes(in_memory.archive)  # the same archive, byte for byte
    assert result.error == in_memory.error
    write_archive(result.archive, tmp_path / "a.tcd")
    back = read_archive(tmp_path / "a.tcd")
    np.testing.assert_array_equal(np.asarray(back.codes), np.asarray(result.archive.codes))
    assert os.listdir(scratch) == []


def test_evaluate_reads_a_chunked_archive_video_by_video(data, tmp_path):
    from tascond_cli.archive import LazyArchive
    from tascond_cli.evaluate.protocol import archive_source

    wide = make_tiny_dataset(tmp_path / "wide", n_train=N_VIDEOS, n_test=1, dim=64, seed=5)
    ds = open_dataset(wide)
    result = make_baseline("fp16", wide, Config(device="cpu"))
    write_archive(result.archive, tmp_path / "fp16.tcd", chunked=True, chunk_size=4096)
    pairs = archive_source(tmp_path / "fp16.tcd", ds).videos
    archive = pairs.decoder.archive
    assert isinstance(archive, LazyArchive)  # opened for random access: the codes stay on disk
    code_chunks = archive.codes.nbytes // 4096
    assert code_chunks >= 8
    before = archive.reader.decompressed
    x, y = pairs[3]
    assert archive.reader.decompressed - before <= 3  # one video's chunks, not all the codes
    eager = read_archive(tmp_path / "fp16.tcd")
    entry = eager.video(3)
    np.testing.assert_array_equal(x, np.asarray(entry.codes, dtype=np.float32)[entry.frame_code_rows()].T)
    np.testing.assert_array_equal(y, entry.frame_labels())
