"""condense -> archive -> restore / on-the-fly dataset / evaluate, end to end on tiny data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tascond_cli.archive import ArchiveError, read_archive, write_archive
from tascond_cli.cli import app
from tascond_cli.data import open_dataset
from tascond_cli.methods import Config, condense_dataset
from tascond_cli.restore import ArchiveDataset, ArchiveDecoder, restore_archive

from conftest import make_tiny_dataset

runner = CliRunner()
FAST = ["--method", "tascond", "--steps", "30", "--invert-iters", "10", "--hidden", "32", "--latent", "8", "--device", "cpu"]
FAST_CONFIG = Config(device="cpu").with_(generator__steps=30, inversion__iters=10, generator__hidden=32, generator__latent=8)


@pytest.fixture(scope="module")
def condensed(tmp_path_factory):
    root = tmp_path_factory.mktemp("condense")
    data = make_tiny_dataset(root / "data", n_train=6, n_test=2, dim=8, seed=3)
    result = condense_dataset(data, FAST_CONFIG)
    path = root / "tiny.tcd"
    write_archive(result.archive, path)
    return data, path, result


def test_restore_gives_back_exact_structure(condensed, tmp_path):
    data, path, result = condensed
    original = open_dataset(data)
    archive = read_archive(path)
    # ratio 0.5 of 6: 3 kept with codes, 3 by their structure, reusing kept codes
    assert result.kept_videos == 3 and result.borrowing_videos == 3 and archive.num_videos == 6
    assert sorted(archive.video_names) == sorted(v.name for v in original.train)
    out = tmp_path / "restored"
    summary = restore_archive(archive, out)
    assert summary.videos == 6 and summary.frames == archive.total_frames
    restored = open_dataset(out, parts=("train",))
    assert (out / "mapping.txt").read_bytes() == (data / "mapping.txt").read_bytes()
    assert [v.name for v in restored.train] == archive.video_names
    by_name = {v.name: v for v in original.train}
    for video in restored.train:
        real = by_name[video.name]
        assert np.array_equal(video.labels, real.labels)
        assert (out / "groundTruth" / f"{video.name}.txt").read_bytes() == (
            data / "groundTruth" / f"{video.name}.txt"
        ).read_bytes()
        x = np.load(out / "features" / f"{video.name}.npy")
        assert x.dtype == np.float32 and x.shape == real.features().shape
        assert np.isfinite(x).all() and x.min() >= 0
    assert (out / "splits" / "train.split1.bundle").read_text().split() == [f"{n}.txt" for n in archive.video_names]


def make_drifting_dataset(root: Path, n_train: int = 4, dim: int = 8, seed: int = 0) -> Path:
    """Videos whose segments drift linearly in time (per action): a segment's mean misses the drift,
    codes per chunk (or a decoder that knows the position in the segment) follow it."""
    from tascond_cli.data import ClassMapping, DatasetWriter

    from conftest import TINY_CLASSES

    rng = np.random.default_rng(seed)
    level = rng.random((len(TINY_CLASSES), dim)) + 1.0
    slope = 2 * rng.normal(size=(len(TINY_CLASSES), dim))
    names = [f"vid{i:02d}" for i in range(n_train + 1)]
    with DatasetWriter(root) as w:
        w.write_mapping(ClassMapping(TINY_CLASSES))
        for name in names:
            parts, labels = [], []
            for c in [0, *rng.permutation([1, 2, 3])]:
                length = int(rng.integers(20, 40))
                ramp = np.linspace(-1, 1, length)[None]
                parts.append(level[c][:, None] + slope[c][:, None] * ramp + 0.02 * rng.normal(size=(dim, length)))
                labels += [TINY_CLASSES[c]] * length
            w.write_video(name, np.maximum(np.concatenate(parts, 1), 0).astype(np.float32), labels)
        w.write_bundle("train.split1.bundle", names[:n_train])
        w.write_bundle("test.split1.bundle", names[n_train:])
    return root


def test_inversion_beats_mean_reconstruction(condensed, tmp_path):
    from tascond_cli.methods import make_baseline

    data, path, result = condensed
    assert 0 <= result.error < 1.0
    assert read_archive(path).settings["reconstruction_error"] == pytest.approx(result.error, abs=1e-6)
    # on features that change within segments, our codes explain far more than each segment's mean
    drifting = make_drifting_dataset(tmp_path / "drift")
    config = FAST_CONFIG.with_(sampling__ratio=1.0, generator__steps=300, generator__batch=64, inversion__iters=30)
    ours = condense_dataset(drifting, config)
    mean = make_baseline("mean", drifting, config)
    assert ours.archive.video_names == mean.archive.video_names  # the same videos, the same frames
    assert mean.error > 0.5 and ours.error < 0.5 * mean.error, (ours.error, mean.error)


def test_same_seed_same_archive_bytes(condensed, tmp_path):
    data, path, _ = condensed
    again = condense_dataset(data, FAST_CONFIG)
    write_archive(again.archive, tmp_path / "again.tcd")
    assert (tmp_path / "again.tcd").read_bytes() == path.read_bytes()
    other = condense_dataset(data, FAST_CONFIG.with_(seed=1))
    write_archive(other.archive, tmp_path / "other.tcd")
    assert (tmp_path / "other.tcd").read_bytes() != path.read_bytes()


def test_restore_is_deterministic_and_matches_dataset(condensed, tmp_path):
    _, path, _ = condensed
    archive = read_archive(path)
    restore_archive(archive, tmp_path / "a")
    restore_archive(archive, tmp_path / "b")
    ds = ArchiveDataset(path)
    assert len(ds) == archive.num_videos and ds.dim == 8 and ds.num_classes == 4
    for i, name in enumerate(archive.video_names):
        a = (tmp_path / "a" / "features" / f"{name}.npy").read_bytes()
        assert a == (tmp_path / "b" / "features" / f"{name}.npy").read_bytes()
        x, y = ds[i]
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert np.array_equal(x.numpy(), np.load(tmp_path / "a" / "features" / f"{name}.npy"))
    loader = torch.utils.data.DataLoader(ds, batch_size=None, shuffle=False)
    assert sum(1 for _ in loader) == len(ds)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_borrowing_segments_reuse_the_nearest_kept_segment_of_their_action(condensed):
    _, path, result = condensed
    a = read_archive(path)
    kept_segments = int(a.video_segments[result.kept_videos])
    sources = a.segment_sources
    assert sources is not None and (sources[:kept_segments] == -1).all()
    borrowing = np.flatnonzero(sources >= 0)
    assert borrowing.size and (borrowing >= kept_segments).all() and (sources[borrowing] < kept_segments).all()
    assert a.settings["borrowing_segments"] == borrowing.size
    for s in borrowing:
        donor = sources[s]
        assert a.segment_labels[donor] == a.segment_labels[s]
        same = np.flatnonzero(a.segment_labels[:kept_segments] == a.segment_labels[s])
        gaps = np.abs(np.log(a.segment_lengths[same]) - np.log(a.segment_lengths[s]))
        assert abs(np.log(a.segment_lengths[donor]) - np.log(a.segment_lengths[s])) == gaps.min()
    # stored codes: only the kept videos' (and orphans'); the borrowing videos cost structure only
    assert a.num_codes == int(a.segment_code_counts.sum()) < sum(len(a.segment_code_rows(s)) for s in range(a.num_segments))


def test_others_drop_keeps_only_the_sampled_videos(tiny):
    drop = condense_dataset(tiny, FAST_CONFIG.with_(sampling__others="drop"))
    assert drop.archive.num_videos == 2 and drop.borrowing_videos == 0 and drop.archive.segment_sources is None
    borrow = condense_dataset(tiny, FAST_CONFIG)
    assert borrow.archive.num_videos == 4 and borrow.archive.video_names[:2] == drop.archive.video_names
    np.testing.assert_array_equal(borrow.archive.codes[: drop.archive.num_codes], drop.archive.codes)


def test_random_sampling_keeps_other_videos(tiny):
    fps = condense_dataset(tiny, FAST_CONFIG).archive.video_names
    rnd = condense_dataset(tiny, FAST_CONFIG.with_(sampling__strategy="random", seed=5))
    assert rnd.kept_videos == 2 and sorted(rnd.archive.video_names) == sorted(fps)
    assert rnd.archive.settings["sampling"] == "random"


def test_cli_condense_restore_info(tmp_path):
    data = make_tiny_dataset(tmp_path / "data", n_train=4, n_test=2, dim=8, seed=1)
    arch = tmp_path / "a.tcd"
    result = runner.invoke(app, ["condense", str(data), "-o", str(arch), *FAST, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["kept_videos"] == 2 and summary["borrowing_videos"] == 2
    assert summary["bytes"] == arch.stat().st_size
    assert set(summary["storage"]) == {"codes", "structure", "decoder", "metadata"}
    assert sum(summary["storage"].values()) == summary["bytes"] and summary["format_version"] == "1.1"
    # refuses to overwrite without --force, before doing any work
    again = runner.invoke(app, ["condense", str(data), "-o", str(arch), *FAST])
    assert again.exit_code == 1 and "already exists" in again.stderr
    info = runner.invoke(app, ["info", str(arch), "--json"])
    assert info.exit_code == 0, info.output
    facts = json.loads(info.stdout)
    assert facts["videos"] == 4 and facts["method"] == "tascond" and facts["feature_dim"] == 8
    assert facts["sharing_segments"] > 0 and facts["format_version"] == "1.1"
    assert sum(facts["storage"].values()) == arch.stat().st_size
    assert runner.invoke(app, ["info", str(arch)]).exit_code == 0
    # default output folder: the archive's name without .tcd
    restored = runner.invoke(app, ["restore", str(arch), "--json"])
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.stdout)["videos"] == 4 and (tmp_path / "a" / "mapping.txt").is_file()
    assert runner.invoke(app, ["info", str(tmp_path / "a")]).exit_code == 0
    name = read_archive(arch).video_names[0]
    one = runner.invoke(app, ["restore", str(arch), "-o", str(tmp_path / "one"), "--video", name])
    assert one.exit_code == 0 and sorted(p.stem for p in (tmp_path / "one" / "features").iterdir()) == [name]
    bad = runner.invoke(app, ["restore", str(arch), "-o", str(tmp_path / "two"), "--video", "nope"])
    assert bad.exit_code == 1 and "nope" in bad.stderr and not (tmp_path / "two").exists()


def test_cli_pipes_stdout_to_stdin(tmp_path):
    data = make_tiny_dataset(tmp_path / "data", n_train=2, n_test=1, dim=4, seed=2)
    exe = [sys.executable, "-m", "tascond_cli"]
    made = subprocess.run([*exe, "condense", str(data), "-o", "-", *FAST], capture_output=True, check=True)
    assert made.stdout[:4] == b"\x89TCD"
    restored = subprocess.run(
        [*exe, "restore", "-", "-o", str(tmp_path / "r"), "--json"], input=made.stdout, capture_output=True
    )
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["videos"] == 2  # 1 kept, 1 by its structure


def test_evaluate_trains_on_archive(condensed, tmp_path):
    data, path, _ = condensed
    result = runner.invoke(
        app,
        ["evaluate", "--model", "mstcn", "--data", str(data), "--train", str(path), "--seeds", "1", "--epochs", "1",
         "--stages", "1", "--layers", "2", "--f-maps", "8", "--device", "cpu", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    names = [r["name"] for r in report["results"]]
    assert names == ["original", path.name]
    assert report["results"][1]["storage_bytes"] == path.stat().st_size


@pytest.mark.parametrize(
    "content, fragment",
    [(b"not an archive at all, just text", "not a tascond archive"), (b"", "")],
)
def test_bad_archives_are_one_line(tmp_path, content, fragment):
    bad = tmp_path / "bad.tcd"
    bad.write_bytes(content)
    for args in (["restore", str(bad), "-o", str(tmp_path / "out")], ["info", str(bad)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert result.stderr.count("\n") == 1 and "error:" in result.stderr and str(bad) in result.stderr
        assert fragment in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_restore_on_an_absent_gpu_is_one_line(condensed, tmp_path):
    _, path, _ = condensed
    result = runner.invoke(app, ["restore", str(path), "-o", str(tmp_path / "out"), "--device", "cuda:7"])
    assert result.exit_code == 1 and "CUDA is not available" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_archive_and_folder(tmp_path, tiny):
    result = runner.invoke(app, ["restore", str(tmp_path / "nope.tcd")])
    assert result.exit_code == 1 and "no such archive" in result.stderr
    result = runner.invoke(app, ["restore", str(tiny), "-o", str(tmp_path / "x")])
    assert result.exit_code == 1 and "is a folder" in result.stderr


def test_condense_bad_inputs(tmp_path, tiny):
    result = runner.invoke(app, ["condense", str(tmp_path / "nope"), "-o", str(tmp_path / "a.tcd")])
    assert result.exit_code == 1 and "nope" in result.stderr
    gen = ["--method", "tascond"]
    result = runner.invoke(app, ["condense", str(tiny), "-o", str(tmp_path / "a.tcd"), *gen, "--ratio", "0"])
    assert result.exit_code == 1 and "--ratio" in result.stderr
    result = runner.invoke(app, ["condense", str(tiny), "-o", str(tmp_path / "a.tcd"), *gen, "--sampling", "best"])
    assert result.exit_code == 1 and "sampling" in result.stderr
    result = runner.invoke(app, ["condense", str(tiny), "-o", str(tmp_path / "a.tcd"), *gen, "--device", "cuda:7"])
    assert result.exit_code == 1 and "cuda" in result.stderr.lower()
    result = runner.invoke(app, ["condense", str(tiny), "-o", str(tmp_path / "a.tcd"), "--method", "bogus"])
    assert result.exit_code == 1 and "--method" in result.stderr
    assert not (tmp_path / "a.tcd").exists()


def test_decoder_rejects_mismatched_weights(condensed):
    _, path, _ = condensed
    archive = read_archive(path)
    name = sorted(archive.decoder_weights)[0]
    archive.decoder_weights[name] = archive.decoder_weights[name].reshape(-1)[:1].copy()
    with pytest.raises(ArchiveError, match="/decoder"):
        ArchiveDecoder(archive)


@pytest.fixture(scope="module")
def residual_archive(condensed):
    return condense_dataset(condensed[0], FAST_CONFIG.with_(storage__residual=True)).archive


def test_residual_model_is_stored_and_restored_deterministically(condensed, residual_archive):
    archive = residual_archive
    assert "residual.std" in archive.decoder_weights and 0 <= archive.decoder_config["residual_rho"] < 1
    assert archive.decoder_weights["residual.std"].shape == (8,)
    plain = read_archive(condensed[1])  # residual is off by default
    assert "residual.std" not in plain.decoder_weights and "residual_rho" not in plain.decoder_config
    noisy, smooth = ArchiveDecoder(archive), ArchiveDecoder(plain)
    x, y = noisy[0], smooth[0]
    assert x[0].shape == y[0].shape and np.array_equal(x[1], y[1])
    assert np.array_equal(x[0], ArchiveDecoder(archive)[0][0])  # seeded: the same every time
    assert x[0].min() >= 0
    # same codes and decoder: the residual only adds variation within chunks
    assert not np.array_equal(x[0], y[0])
    # it survives the file format
    assert ArchiveDecoder(read_archive(archive_bytes_of(archive))).residual is not None


def archive_bytes_of(archive):
    from tascond_cli.archive import archive_bytes

    return archive_bytes(archive)


def test_ar1_noise_statistics():
    from tascond_cli.archive.decoders.generator import ar1_noise

    e = ar1_noise(np.random.default_rng(0), (64, 4000), 0.8)
    assert e.dtype == np.float32 and abs(e.std() - 1) < 0.05
    lag1 = (e[:, 1:] * e[:, :-1]).mean() / (e * e).mean()
    assert abs(lag1 - 0.8) < 0.03
    w = ar1_noise(np.random.default_rng(0), (4, 10), 0.0)
    assert w.shape == (4, 10)


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda a: a.decoder_config.pop("residual_rho"), "must come together"),
        (lambda a: a.decoder_config.__setitem__("residual_rho", 1.5), "residual_rho"),
        (lambda a: a.decoder_weights.__setitem__("residual.std", np.ones(3, np.float16)), "residual.std"),
        (lambda a: a.decoder_weights.__setitem__("residual.std", -np.ones(8, np.float16)), ">= 0"),
    ],
)
def test_bad_residual_model_is_refused(residual_archive, change, fragment):
    archive = read_archive(archive_bytes_of(residual_archive))
    change(archive)
    with pytest.raises(ArchiveError, match=fragment):
        ArchiveDecoder(archive)


def test_restored_folder_loads_in_independent_reader(condensed, tmp_path):
    """The MS-TCN reference loader's logic, written from the layout alone, reads the restored train split."""
    _, path, _ = condensed
    out = tmp_path / "r"
    restore_archive(read_archive(path), out)
    actions = {}
    for line in (out / "mapping.txt").read_text().split("\n")[:-1]:
        idx, name = line.split()
        actions[name] = int(idx)
    vids = (out / "splits" / "train.split1.bundle").read_text().split("\n")[:-1]
    assert len(vids) == 6  # 3 kept, 3 by their structure
    for vid in vids:
        features = np.load(out / "features" / (vid.split(".")[0] + ".npy"))
        content = (out / "groundTruth" / vid).read_text().split("\n")[:-1]
        classes = np.array([actions[c] for c in content[: features.shape[1]]])
        assert features.ndim == 2 and features.shape[1] == len(content) == len(classes)


def test_borrow_sources_rule():
    from tascond_cli.methods import borrow_sources

    labels, lengths = np.array([0, 1, 1, 1]), np.array([5, 4, 16, 4])
    got = borrow_sources(labels, lengths, np.array([1, 1, 2, 0]), np.array([8, 5, 3, 50]))
    # 8 frames: log-gap to 4 and to 16 is equal -> lowest index (1); 5 -> 4 (index 1); 2 unseen -> -1
    np.testing.assert_array_equal(got, [1, 1, -1, 0])


def test_segments_of_an_action_no_kept_video_shows_get_their_own_codes(tmp_path):
    from tascond_cli.data import ClassMapping, DatasetWriter

    rng = np.random.default_rng(0)
    with DatasetWriter(tmp_path / "d") as w:
        w.write_mapping(ClassMapping(("background", "take", "pour")))
        w.write_video("a", rng.random((4, 30), dtype=np.float32), ["background"] * 10 + ["take"] * 20)
        w.write_video("b", rng.random((4, 30), dtype=np.float32), ["background"] * 12 + ["pour"] * 18)
        w.write_video("t", rng.random((4, 30), dtype=np.float32), ["background"] * 15 + ["take"] * 15)
        w.write_bundle("train.split1.bundle", ["a", "b"])
        w.write_bundle("test.split1.bundle", ["t"])
    result = condense_dataset(tmp_path / "d", FAST_CONFIG.with_(generator__ips=4))
    a = result.archive
    assert result.kept_videos == 1 and a.num_videos == 2
    # the other video's background borrows; its action, unseen in the kept video, owns 4 codes
    np.testing.assert_array_equal(a.segment_sources, [-1, -1, 0, -1])
    np.testing.assert_array_equal(a.segment_code_counts, [4, 4, 0, 4])
    restored = ArchiveDecoder(a)
    x, y = restored[1]
    assert x.shape == (4, 30) and np.isfinite(x).all()


def test_condense_leaves_the_global_rngs_alone(tiny):
    """A library call must not reseed the caller's torch or numpy RNG (the archive depends on config.seed only)."""
    torch.manual_seed(1234)
    np.random.seed(1234)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    fast = FAST_CONFIG.with_(generator__steps=5, inversion__iters=2)
    first = condense_dataset(tiny, fast).archive
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]
    torch.manual_seed(99)  # another global state: the same archive
    assert archive_bytes_of(condense_dataset(tiny, fast).archive) == archive_bytes_of(first)
