"""The MS-TCN data layer: reading, structure, validation and atomic writing."""

from __future__ import annotations

import numpy as np
import pytest

from tascond_cli.data import (
    ClassMapping,
    DatasetWriter,
    Segment,
    available_splits,
    describe,
    open_dataset,
    segments_of,
    transcript_of,
)
from tascond_cli.errors import DataError


def test_segments_and_transcript():
    labels = np.array([3, 3, 1, 1, 1, 3, 0])
    assert segments_of(labels) == [Segment(3, 0, 2), Segment(1, 2, 3), Segment(3, 5, 1), Segment(0, 6, 1)]
    assert transcript_of(labels) == (3, 1, 3, 0)
    assert segments_of(np.array([], dtype=int)) == []
    assert sum(s.length for s in segments_of(labels)) == labels.size


def test_open_tiny_dataset(tiny):
    ds = open_dataset(tiny)
    assert ds.num_classes == 4 and ds.dim == 8
    assert [v.name for v in ds.train] == ["vid00", "vid01", "vid02", "vid03"]
    assert [v.name for v in ds.test] == ["vid04", "vid05"]
    v = ds.train[0]
    feats = v.features()
    assert isinstance(feats.base, np.memmap) or isinstance(feats, np.memmap)
    assert feats.shape == (8, v.num_frames)
    assert v.labels.dtype == np.int64 and v.labels.shape == (v.num_frames,)
    assert v.transcript()[0] == ds.mapping.index("background")
    assert ds.warnings == []
    ds.check_values()


def test_sample_rate(tiny):
    ds = open_dataset(tiny, sample_rate=2)
    v = ds.train[0]
    assert ds.sample_rate == 2
    assert v.features(2).shape[1] == (v.num_frames + 1) // 2
    np.testing.assert_array_equal(v.sampled_labels(2), v.labels[::2])
    np.testing.assert_array_equal(np.asarray(v.features(2)), np.load(v.feature_path)[:, ::2])


def test_labels_match_file_and_mapping(tiny):
    ds = open_dataset(tiny)
    v = ds.test[1]
    lines = (tiny / "groundTruth" / "vid05.txt").read_text().split("\n")[:-1]
    assert [ds.mapping.names[i] for i in v.labels] == lines


def test_length_mismatch_warns_and_uses_shorter(tiny):
    path = tiny / "groundTruth" / "vid00.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + ["stir"] * 7) + "\n")
    ds = open_dataset(tiny)
    v = ds.train[0]
    assert v.num_frames == len(lines)
    assert v.features().shape[1] == len(lines)
    assert len(ds.warnings) == 1 and "vid00" in ds.warnings[0] and "using the first" in ds.warnings[0]
    # fewer labels than features: features are cut
    path.write_text("\n".join(lines[:10]) + "\n")
    v = open_dataset(tiny).train[0]
    assert v.num_frames == 10 and v.features().shape == (8, 10)


def test_mapping_roundtrip(tmp_path):
    m = ClassMapping(("a", "b c", "d"))
    (tmp_path / "m.txt").write_text(m.to_text())
    assert ClassMapping.read(tmp_path / "m.txt") == m
    assert m.index("b c") == 1 and "d" in m and "x" not in m


def test_available_splits(tiny):
    assert available_splits(tiny) == [1]


def test_describe(tiny):
    s = describe(open_dataset(tiny))
    assert s["classes"] == 4 and s["feature_dim"] == 8 and s["feature_dtype"] == "float32"
    assert s["parts"]["train"]["videos"] == 4 and s["parts"]["test"]["videos"] == 2
    assert s["parts"]["train"]["segments_per_video"] == 4.0
    assert s["bytes_on_disk"] > s["parts"]["train"]["feature_bytes"] > 0


def test_writer_is_atomic(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with DatasetWriter(target) as w:
            w.write_mapping(ClassMapping(("a",)))
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_existing_unless_overwrite(tiny):
    from tascond_cli.errors import TascondError

    with pytest.raises(TascondError, match="already exists"):
        with DatasetWriter(tiny):
            pass
    with DatasetWriter(tiny, overwrite=True) as w:
        w.write_mapping(ClassMapping(("x",)))
    assert (tiny / "mapping.txt").read_text() == "0 x\n"
    assert not (tiny / "features" / "vid00.npy").exists()
    assert sorted(p.name for p in tiny.parent.iterdir()) == ["tiny"]


def test_writer_output_is_reference_format(tmp_path):
    root = tmp_path / "d"
    with DatasetWriter(root) as w:
        w.write_mapping(ClassMapping(("a", "b")))
        w.write_video("v", np.ones((3, 4)), ["a", "a", "b", "b"])
        w.write_bundle("train.split2.bundle", ["v"])
    assert (root / "mapping.txt").read_bytes() == b"0 a\n1 b\n"
    assert (root / "groundTruth" / "v.txt").read_bytes() == b"a\na\nb\nb\n"
    assert (root / "splits" / "train.split2.bundle").read_bytes() == b"v.txt\n"
    arr = np.load(root / "features" / "v.npy")
    assert arr.dtype == np.float32 and arr.shape == (3, 4)
    with pytest.raises(ValueError):
        with DatasetWriter(tmp_path / "e") as w:
            w.write_video("v", np.ones((3, 4)), ["a"])


# ----------------------------------------------------------------------------- bad inputs
# Each case breaks a valid dataset one way; the error must name the file and the problem.


def _rm(path):
    if path.is_dir():
        import shutil

        shutil.rmtree(path)
    else:
        path.unlink()


BAD_CASES = {
    "missing mapping": (lambda d: _rm(d / "mapping.txt"), "mapping.txt", "missing"),
    "missing splits folder": (lambda d: _rm(d / "splits"), "splits", "missing folder"),
    "missing groundTruth folder": (lambda d: _rm(d / "groundTruth"), "groundTruth", "missing folder"),
    "missing features folder": (lambda d: _rm(d / "features"), "features", "missing folder"),
    "missing bundle": (lambda d: _rm(d / "splits" / "test.split1.bundle"), "test.split1.bundle", "missing"),
    "empty bundle": (lambda d: (d / "splits" / "test.split1.bundle").write_text("\n"), "test.split1.bundle", "no videos"),
    "bundle with path": (
        lambda d: (d / "splits" / "test.split1.bundle").write_text("./data/groundTruth/vid04.txt\n"),
        "test.split1.bundle:1",
        "not a video file name",
    ),
    "bundle duplicate": (
        lambda d: (d / "splits" / "test.split1.bundle").write_text("vid04.txt\nvid04.txt\n"),
        "test.split1.bundle:2",
        "listed twice",
    ),
    "entry without groundTruth": (lambda d: _rm(d / "groundTruth" / "vid04.txt"), "vid04.txt", "missing"),
    "entry without features": (lambda d: _rm(d / "features" / "vid05.npy"), "vid05.npy", "missing"),
    "label not in mapping": (
        lambda d: (d / "groundTruth" / "vid01.txt").write_text("take\ntake\njump\n"),
        "vid01.txt:3",
        "'jump' is not in mapping.txt",
    ),
    "empty video labels": (lambda d: (d / "groundTruth" / "vid01.txt").write_text(""), "vid01.txt", "empty video"),
    "empty video features": (
        lambda d: np.save(d / "features" / "vid01.npy", np.zeros((8, 0), np.float32)),
        "vid01.npy",
        "empty features",
    ),
    "1-D features": (lambda d: np.save(d / "features" / "vid01.npy", np.zeros(50, np.float32)), "vid01.npy", "2-D"),
    "3-D features": (
        lambda d: np.save(d / "features" / "vid01.npy", np.zeros((2, 8, 50), np.float32)),
        "vid01.npy",
        "2-D",
    ),
    "wrong feature dim": (
        lambda d: np.save(d / "features" / "vid03.npy", np.zeros((9, 50), np.float32)),
        "vid03.npy",
        "dimension 9 differs",
    ),
    "string features": (
        lambda d: np.save(d / "features" / "vid01.npy", np.full((8, 50), "a")),
        "vid01.npy",
        "numeric",
    ),
    "object features": (
        lambda d: np.save(d / "features" / "vid01.npy", np.empty((8, 50), object), allow_pickle=True),
        "vid01.npy",
        "numeric",
    ),
    "not npy": (lambda d: (d / "features" / "vid01.npy").write_bytes(b"hello"), "vid01.npy", "not a readable .npy"),
    "truncated npy": (
        lambda d: (d / "features" / "vid01.npy").write_bytes((d / "features" / "vid01.npy").read_bytes()[:300]),
        "vid01.npy",
        "truncated",
    ),
    "bad mapping line": (lambda d: (d / "mapping.txt").write_text("0 a\nb\n"), "mapping.txt:2", "expected"),
    "mapping gap": (lambda d: (d / "mapping.txt").write_text("0 a\n2 b\n"), "mapping.txt", "without gaps"),
    "mapping duplicate name": (lambda d: (d / "mapping.txt").write_text("0 a\n1 a\n"), "mapping.txt", "twice"),
    "labels not utf-8": (lambda d: (d / "groundTruth" / "vid01.txt").write_bytes(b"\xff\xfe"), "vid01.txt", "UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_dataset_is_refused_clearly(tiny, case):
    breaker, where, what = BAD_CASES[case]
    breaker(tiny)
    with pytest.raises(DataError) as info:
        open_dataset(tiny)
    message = str(info.value)
    assert where in message and what in message
    assert "\n" not in message


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="no such dataset folder"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        open_dataset(tmp_path / "file")


def test_missing_split_names_the_available_ones(tiny):
    with pytest.raises(DataError, match=r"train.split3.bundle: missing \(splits here: 1\)"):
        open_dataset(tiny, split=3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features(tiny, bad):
    arr = np.load(tiny / "features" / "vid02.npy")
    arr[3, 17] = bad
    np.save(tiny / "features" / "vid02.npy", arr)
    ds = open_dataset(tiny)  # header checks pass: values are not scanned by default
    with pytest.raises(DataError, match=r"vid02.npy: non-finite value .* channel 3, frame 17"):
        ds.check_values()
    with pytest.raises(DataError, match="vid02.npy"):
        open_dataset(tiny, check_values=True)


def test_real_features_open(realdata):
    ds = open_dataset(realdata / "breakfast_fv64_coffee", check_values=True)
    assert ds.dim == 64 and len(ds.train) == 4 and [v.name for v in ds.test] == ["P03_cam01_P03_coffee"]
    assert ds.warnings == []
    assert ds.mapping.names[0] == "SIL"


def test_real_label_layouts_parse(realdata):
    """Every real bundle, mapping and label file parses (features aside)."""
    from tascond_cli.data import read_bundle, read_label_names

    for name, n_videos, n_classes in (("breakfast", 1712, 48), ("50salads", 50, 19), ("gtea", 28, 11)):
        root = realdata / name
        mapping = ClassMapping.read(root / "mapping.txt")
        assert len(mapping) == n_classes
        videos = set()
        for k in available_splits(root):
            train = read_bundle(root / "splits" / f"train.split{k}.bundle")
            test = read_bundle(root / "splits" / f"test.split{k}.bundle")
            assert not set(train) & set(test)
            videos |= set(train) | set(test)
        assert len(videos) == n_videos
        for v in sorted(videos)[:40]:
            assert all(label in mapping for label in read_label_names(root / "groundTruth" / f"{v}.txt"))


def test_labels_only(tiny):
    import shutil

    shutil.rmtree(tiny / "features")
    ds = open_dataset(tiny, with_features=False, parts=("test",))
    assert [v.name for v in ds.test] == ["vid04", "vid05"] and ds.train == []
    assert ds.test[0].feature_path is None and ds.test[0].num_frames > 0
    with pytest.raises(DataError, match="without features"):
        ds.test[0].features()
    with pytest.raises(DataError, match="features: missing folder"):
        open_dataset(tiny)
