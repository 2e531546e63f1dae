"""Synthetic datasets: layout, determinism, --labels-from fidelity, and the properties the features promise."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tascond_cli.cli import app
from tascond_cli.data import open_dataset, segments_of
from tascond_cli.errors import DataError, TascondError
from tascond_cli.synth import BACKGROUND_NAMES, PROFILES, FeatureModel, SynthConfig, profile_labels, synthesize
from tascond_cli.synth.grammar import atoms, expand, parse_grammar
from tascond_cli.synth.labels import population
from tascond_cli.synth.profiles import PROFILE_TABLES

runner = CliRunner()


# --------------------------------------------------------------------------- profile tables and grammars


def test_profile_vocabulary_and_background():
    labels = profile_labels("breakfast", "coffee", 0, "P03_cam01")
    assert labels[0] == "SIL" and labels[-1] == "SIL" and len(set(labels)) >= 3
    gtea = profile_labels("gtea", "Coffee", 0, "S1_Coffee_C1")
    assert "background" in gtea


@pytest.mark.parametrize("name", PROFILES)
def test_profile_tables_are_consistent(name):
    prof = PROFILE_TABLES[name]
    classes = set(prof.classes)
    assert len(classes) == len(prof.classes), "class names must be unique"
    assert set(prof.durations) == classes, "every class needs a median duration, and only classes have one"
    assert all(d > 0 for d in prof.durations.values())
    backgrounds = {
        bg[0] for bg in (prof.start_background, prof.end_background, prof.between_background) if bg is not None
    }
    assert backgrounds <= classes & BACKGROUND_NAMES
    steps: set[str] = set()
    for activity, text in prof.grammars.items():
        found = atoms(parse_grammar(text))
        assert found <= classes, f"{name}/{activity}: steps outside the vocabulary: {sorted(found - classes)}"
        steps |= found
    assert classes == steps | backgrounds, f"{name}: classes no grammar can produce: {classes - steps - backgrounds}"
    recs = population(name)
    assert {r.activity for r in recs} == set(prof.grammars)
    assert len({r.name for r in recs}) == len(recs)
    assert {r.group for r in recs} == set(range(1, prof.n_splits + 1))
    if prof.default_videos is not None:
        for part, n in zip(("train", "test"), prof.default_videos):
            for k in range(1, prof.n_splits + 1):
                assert n <= sum((r.group == k) == (part == "test") for r in recs)


def test_profile_sizes_match_the_real_datasets():
    assert PROFILES == ("breakfast", "50salads", "gtea")
    assert [len(PROFILE_TABLES[p].classes) for p in PROFILES] == [48, 19, 11]
    assert [len(PROFILE_TABLES[p].grammars) for p in PROFILES] == [10, 1, 7]
    breakfast = population("breakfast")
    assert len(breakfast) == 1664 and len({r.key for r in breakfast}) == 506  # camera views share a key
    assert len(population("50salads")) == 50 and len(population("gtea")) == 28


@pytest.mark.parametrize(
    "name, digest", [("breakfast", "5aaabb2ed9bf36c4"), ("50salads", "534f1259e8917d70"), ("gtea", "c692070142b6ad11")]
)
def test_profile_labels_are_pinned(name, digest):
    """The label draws are part of the output: a refactor that reorders them changes every dataset."""
    recs = population(name)
    h = hashlib.sha256()
    for r in recs[:: max(1, len(recs) // 20)]:
        h.update("\n".join(profile_labels(name, r.activity, 0, r.key)).encode() + b"\0")
    assert h.hexdigest()[:16] == digest


def _draws(grammar: str, n: int = 200) -> list[list[str]]:
    node = parse_grammar(grammar)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        steps: list[str] = []
        expand(node, rng, steps)
        out.append(steps)
    return out


def test_grammar_language():
    assert _draws("a b c", 3) == [["a", "b", "c"]] * 3
    assert _draws("a b?0 c?1", 5) == [["a", "c"]] * 5
    assert _draws("(a b)+1", 2) == [["a", "b"] * 4] * 2  # repeated up to 3 more times
    assert {tuple(d) for d in _draws("{a b c}")} == {
        ("a", "b", "c"), ("a", "c", "b"), ("b", "a", "c"), ("b", "c", "a"), ("c", "a", "b"), ("c", "b", "a")
    }
    assert {tuple(d) for d in _draws("x [a|b c|] y")} == {("x", "a", "y"), ("x", "b", "c", "y"), ("x", "y")}
    optional = _draws("a?0.3", 2000)
    assert 0.25 < sum(map(len, optional)) / 2000 < 0.35
    assert atoms(parse_grammar("a [b|(c d)?0.5] {e f}+0.2")) == {"a", "b", "c", "d", "e", "f"}


@pytest.mark.parametrize("bad", ["a (b c", "a {b", "[a|b", "?0.5 a", "a ) b", "a $ b"])
def test_grammar_errors(bad):
    with pytest.raises(ValueError):
        parse_grammar(bad)


# --------------------------------------------------------------------------- datasets


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def independent_reader(root: Path, split: int = 1) -> dict[str, tuple[np.ndarray, list[str]]]:
    """A minimal MS-TCN loader written from the layout description alone (not tascond's data layer)."""
    actions = {}
    for line in (root / "mapping.txt").read_text().splitlines():
        idx, name = line.split()
        actions[name] = int(idx)
    out = {}
    for part in ("train", "test"):
        for vid in (root / "splits" / f"{part}.split{split}.bundle").read_text().split("\n"):
            if not vid:
                continue
            stem = vid.split(".")[0]
            features = np.load(root / "features" / f"{stem}.npy")
            content = (root / "groundTruth" / f"{stem}.txt").read_text().split("\n")[:-1]
            classes = np.array([actions[c] for c in content[: features.shape[1]]])
            assert features.ndim == 2 and features.dtype == np.float32
            assert classes.shape[0] == features.shape[1]
            out[stem] = (features, content)
    return out


@pytest.mark.parametrize("profile", ["breakfast", "50salads", "gtea"])
def test_profiles_load_in_independent_reader(tmp_path, profile):
    out = tmp_path / profile
    summary = synthesize(out, SynthConfig(profile=profile, videos=2, dim=16, subsample=8, seed=1))
    videos = independent_reader(out)
    assert len(videos) == summary.train + summary.test == 4
    ds = open_dataset(out)
    assert ds.dim == 16 and len(ds.train) == 2 and len(ds.test) == 2
    for features, _ in videos.values():
        assert np.all(features >= 0) and np.isfinite(features).all()


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    cfg = SynthConfig(profile="gtea", videos=2, dim=8, subsample=4, seed=3)
    synthesize(tmp_path / "a", cfg)
    synthesize(tmp_path / "b", cfg)
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")
    synthesize(tmp_path / "c", SynthConfig(profile="gtea", videos=2, dim=8, subsample=4, seed=4))
    assert _tree_digest(tmp_path / "a") != _tree_digest(tmp_path / "c")


def test_refuses_existing_output_unless_forced(tmp_path):
    cfg = SynthConfig(profile="gtea", videos=1, dim=4, subsample=8)
    synthesize(tmp_path / "d", cfg)
    with pytest.raises(TascondError, match="exists"):
        synthesize(tmp_path / "d", cfg)
    synthesize(tmp_path / "d", cfg, overwrite=True)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(profile="kinetics"), "unknown profile"),
        (dict(videos=0), "videos"),
        (dict(subsample=0), "subsample"),
        (dict(dim=0), "dimension"),
        (dict(split=9), "split"),
        (dict(model=FeatureModel(confuse_prob=2.0)), "confuse_prob"),
    ],
)
def test_bad_options(tmp_path, kwargs, fragment):
    with pytest.raises(TascondError, match=fragment):
        synthesize(tmp_path / "x", SynthConfig(**kwargs))
    assert not (tmp_path / "x").exists()


def test_labels_from_real_data_is_byte_for_byte(tmp_path, realdata):
    src = realdata / "gtea"
    out = tmp_path / "gtea"
    summary = synthesize(out, SynthConfig(labels_from=src, dim=8, seed=0))
    assert (out / "mapping.txt").read_bytes() == (src / "mapping.txt").read_bytes()
    for gt in sorted((src / "groundTruth").glob("*.txt")):
        assert (out / "groundTruth" / gt.name).read_bytes() == gt.read_bytes()
    for bundle in sorted((src / "splits").glob("*.bundle")):
        assert (out / "splits" / bundle.name).read_bytes() == bundle.read_bytes()
    assert summary.videos == len(list((src / "groundTruth").glob("*.txt")))
    independent_reader(out)


def test_labels_from_sample_and_subsample(tmp_path, realdata):
    src = realdata / "breakfast"
    out = tmp_path / "bf"
    summary = synthesize(out, SynthConfig(labels_from=src, videos=3, subsample=4, dim=8, seed=0))
    assert summary.train == 3 and summary.test == 3
    ds = open_dataset(out)
    assert len(ds.train) == 3 and len(ds.test) == 3
    for video in ds.videos():
        real = (src / "groundTruth" / f"{video.name}.txt").read_text().split("\n")
        real = [x for x in real if x]
        ours = (out / "groundTruth" / f"{video.name}.txt").read_text().split("\n")
        assert [x for x in ours if x] == real[::4]
        assert video.feature_shape == (8, len(real[::4]))
    # the kept videos are a reproducible sample of the real split
    again = synthesize(tmp_path / "bf2", SynthConfig(labels_from=src, videos=3, subsample=4, dim=8, seed=0))
    assert again.frames == summary.frames
    assert _tree_digest(out) == _tree_digest(tmp_path / "bf2")


def test_labels_from_bad_source(tmp_path):
    with pytest.raises(DataError, match="no such dataset folder"):
        synthesize(tmp_path / "o", SynthConfig(labels_from=tmp_path / "nope"))
    src = tmp_path / "src"
    (src / "groundTruth").mkdir(parents=True)
    (src / "splits").mkdir()
    (src / "mapping.txt").write_text("0 a\n1 b\n")
    (src / "groundTruth" / "v.txt").write_text("a\nc\n")
    (src / "splits" / "train.split1.bundle").write_text("v.txt\n")
    (src / "splits" / "test.split1.bundle").write_text("v.txt\n")
    with pytest.raises(DataError, match=r"v\.txt:2: label 'c' is not in mapping"):
        synthesize(tmp_path / "o", SynthConfig(labels_from=src, dim=4))
    assert not (tmp_path / "o").exists()


def test_cli_matches_the_library(tmp_path):
    """``tascond synth`` makes what synthesize makes with the same options (its defaults are SynthConfig's)."""
    out = tmp_path / "cli"
    args = ["synth", str(out), "--profile", "gtea", "--videos", "1", "--subsample", "8", "--dim", "4", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    lib = synthesize(tmp_path / "lib", SynthConfig(profile="gtea", videos=1, subsample=8, dim=4))
    assert _tree_digest(out) == _tree_digest(tmp_path / "lib")
    assert {k: v for k, v in summary.items() if k != "out"} == {
        "source": "profile gtea", "videos": 2, "train": 1, "test": 1, "frames": lib.frames, "classes": 11,
        "dim": 4, "splits": list(lib.splits), "bytes": lib.bytes,
    }
    assert runner.invoke(app, args).exit_code != 0  # OUT exists
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    bad = runner.invoke(app, ["synth", str(tmp_path / "x"), "--profile", "kinetics"])
    assert bad.exit_code == 2 and not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- features


def _phase_means(features: np.ndarray, labels: np.ndarray, min_len: int = 30):
    """For long segments: mean feature of the first, middle and last fifth, and the segment mean."""
    rows = []
    for seg in segments_of(labels):
        if seg.length < min_len:
            continue
        x = features[:, seg.start : seg.end]
        fifth = seg.length // 5
        rows.append(
            (
                seg.label,
                x[:, :fifth].mean(1),
                x[:, 2 * fifth : 3 * fifth].mean(1),
                x[:, -fifth:].mean(1),
                x.mean(1),
            )
        )
    return rows


def test_features_have_the_promised_structure(tmp_path):
    out = tmp_path / "bf"
    synthesize(out, SynthConfig(profile="breakfast", videos=3, dim=64, subsample=2, seed=0))
    ds = open_dataset(out)
    video = ds.train[0]
    x = np.asarray(video.features())
    labels = video.labels
    # non-negative, partly sparse, smooth in time: neighbouring frames are much closer than distant ones
    assert x.min() >= 0 and 0.1 < (x > 0).mean() < 0.9
    near = np.linalg.norm(x[:, 1:] - x[:, :-1], axis=0).mean()
    far = np.linalg.norm(x[:, 200:] - x[:, :-200], axis=0).mean()
    assert near < 0.5 * far
    # start, middle and end of an action differ by more than frame noise, so the mean frame loses information
    rows = _phase_means(x, labels)
    assert rows
    for _, start, middle, end, mean in rows:
        scale = np.linalg.norm(mean)
        assert np.linalg.norm(start - end) > 0.1 * scale
        assert np.linalg.norm(start - middle) > 0.05 * scale
    # each video has its own style: the same action's mean differs between videos
    other = ds.train[1]
    y = np.asarray(other.features())
    shared = set(video.transcript()) & set(other.transcript())
    assert shared
    for c in shared:
        a = x[:, labels == c].mean(1)
        b = y[:, other.labels == c].mean(1)
        assert np.linalg.norm(a - b) > 0.05 * np.linalg.norm(a)
