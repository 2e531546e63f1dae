"""``tascond baseline``: every comparison method writes an archive that restores, reads and evaluates."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tascond_cli.archive import archive_bytes, read_archive, write_archive
from tascond_cli.cli import app
from tascond_cli.cli.options import parse_ips
from tascond_cli.data import open_dataset
from tascond_cli.evaluate.protocol import above_floor
from tascond_cli.methods import BASELINES, Config, condense_dataset, make_baseline, train_generator
from tascond_cli.restore import ArchiveDecoder, restore_archive

from conftest import make_tiny_dataset

runner = CliRunner()
GEN = Config(device="cpu").with_(generator__steps=30, inversion__iters=5, generator__hidden=32, generator__latent=8)
CONFIG = GEN


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("bl") / "data", n_train=6, n_test=2, dim=8, seed=4)


@pytest.fixture(scope="module")
def archives(data):
    return {m: make_baseline(m, data, CONFIG).archive for m in BASELINES}


def originals(data, names):
    ds = open_dataset(data)
    by_name = {v.name: v for v in ds.train}
    return [by_name[n] for n in names]


def test_mean_restores_each_segments_exact_mean(data, archives):
    decoder = ArchiveDecoder(archives["mean"])
    assert len(decoder) == 6  # every video by default
    for i, video in enumerate(originals(data, decoder.names)):
        x, y = decoder[i]
        np.testing.assert_array_equal(y, video.labels)
        real = np.asarray(video.features(), dtype=np.float32)
        for seg in video.segments():
            expected = real[:, seg.start : seg.end].astype(np.float64).mean(1).astype(np.float32)
            np.testing.assert_array_equal(x[:, seg.start : seg.end], np.repeat(expected[:, None], seg.end - seg.start, 1))


def test_coreset_restores_real_frames_only_nearest_the_mean(data, archives):
    decoder = ArchiveDecoder(archives["coreset"])
    for i, video in enumerate(originals(data, decoder.names)):
        x, _ = decoder[i]
        real = np.asarray(video.features(), dtype=np.float32)
        for seg in video.segments():
            part = real[:, seg.start : seg.end]
            frame = x[:, seg.start]
            assert (x[:, seg.start : seg.end] == frame[:, None]).all()
            matches = (part == frame[:, None]).all(0)
            assert matches.any(), "a coreset frame must be a real frame of its segment"
            dist = np.square(part.astype(np.float64) - part.astype(np.float64).mean(1, keepdims=True)).sum(0)
            assert dist[np.argmax(matches)] == pytest.approx(dist.min())


def test_fp16_restores_originals_within_float16_rounding(data, archives):
    decoder = ArchiveDecoder(archives["fp16"])
    assert archives["fp16"].codes.dtype == np.float16
    for i, video in enumerate(originals(data, decoder.names)):
        x, _ = decoder[i]
        real = np.asarray(video.features(), dtype=np.float32)
        np.testing.assert_array_equal(x, real.astype(np.float16).astype(np.float32))
        np.testing.assert_allclose(x, real, rtol=2**-11, atol=2**-24)


def test_pca_with_full_rank_recovers_and_low_rank_is_the_best_projection(data):
    full = make_baseline("pca", data, Config().with_(storage__pca_dim=64)).archive
    assert full.code_dim == 8 and full.decoder_kind == "linear"  # capped at D
    decoder = ArchiveDecoder(full)
    video = originals(data, decoder.names)[0]
    np.testing.assert_allclose(decoder[0][0], video.features(), atol=2e-2)
    low = make_baseline("pca", data, Config().with_(storage__pca_dim=2))
    comp = low.archive.decoder_weights["components"].astype(np.float64)
    assert comp.shape == (2, 8)
    np.testing.assert_allclose(comp @ comp.T, np.eye(2), atol=2e-3)
    assert 0 < low.error < 1 and low.error > make_baseline("pca", data, Config().with_(storage__pca_dim=4)).error


def test_blind_restores_zeros_over_the_real_structure(data, archives):
    a = archives["blind"]
    assert a.decoder_kind == "zeros" and a.num_codes == 0
    decoder = ArchiveDecoder(a)
    for i, video in enumerate(originals(data, decoder.names)):
        x, y = decoder[i]
        assert x.shape == video.features().shape and not x.any()
        np.testing.assert_array_equal(y, video.labels)


def test_generator_baselines(data, archives):
    tca, enc, rnd = archives["tca"], archives["encoded"], archives["random"]
    assert tca.decoder_kind == "random" and tca.num_codes == 0 and tca.settings["method"] == "tca"
    assert enc.settings["invert_iters"] == 0 and enc.decoder_kind == "generator"
    assert rnd.settings["sampling"] == "random" and rnd.settings["method"] == "random"
    for a in (tca, enc, rnd):
        # ratio 0.5 by default, as condense; the other half by structure (tca: random codes for all)
        assert a.num_videos == 6 and a.settings["ratio"] == 0.5 and a.settings["others"] == "borrow"
        decoder = ArchiveDecoder(a)
        x, y = decoder[0]
        assert x.shape == (8, y.shape[0]) and np.isfinite(x).all()
    assert (enc.segment_sources >= 0).any() and (rnd.segment_sources >= 0).any() and tca.segment_sources is None
    drop = GEN.with_(sampling__others="drop")
    assert make_baseline("encoded", data, drop).archive.num_videos == 3
    # tca draws fresh codes: not what the encoder would give
    assert not np.allclose(ArchiveDecoder(tca)[0][0], ArchiveDecoder(enc)[0][0])


def test_shared_generator_gives_the_same_archive(data):
    prior = train_generator(open_dataset(data, parts=("train",)), GEN)
    for method in ("encoded", "tca"):
        shared = make_baseline(method, data, CONFIG, prior=prior).archive
        assert archive_bytes(shared) == archive_bytes(make_baseline(method, data, CONFIG).archive)
    with pytest.raises(Exception, match="latent"):
        condense_dataset(data, Config(device="cpu").with_(generator__latent=4, generator__steps=1), prior=prior)


def test_one_code_per_frame(data):
    assert parse_ips("frame") is None and parse_ips("3") == 3
    result = condense_dataset(data, GEN.with_(generator__ips=None, sampling__ratio=1.0))
    a = result.archive
    assert a.settings["ips"] == "frame" and a.num_codes == a.total_frames
    assert np.array_equal(a.segment_code_counts, a.segment_lengths)
    enc = make_baseline("encoded", data, GEN.with_(generator__ips=None, sampling__ratio=1.0))
    assert enc.archive.num_codes == enc.archive.total_frames
    x, y = ArchiveDecoder(a)[0]
    assert x.shape[1] == y.shape[0]


def test_every_baseline_is_deterministic_and_round_trips(data, archives, tmp_path):
    for method in ("mean", "coreset", "fp16", "pca", "blind"):
        again = make_baseline(method, data, CONFIG).archive
        assert archive_bytes(again) == archive_bytes(archives[method]), method
    for method, archive in archives.items():
        path = tmp_path / f"{method}.tcd"
        write_archive(archive, path)
        back = read_archive(path)
        assert back.settings["method"] == method
        summary = restore_archive(back, tmp_path / method)
        restored = open_dataset(tmp_path / method, parts=("train",))
        assert summary.videos == len(restored.train) == archive.num_videos


def test_above_floor():
    o = {"acc": 80.0, "edit": 70.0, "f1@10": 60.0, "f1@25": 50.0, "f1@50": 40.0}
    b = {"acc": 20.0, "edit": 70.0, "f1@10": 30.0, "f1@25": 20.0, "f1@50": 10.0}
    s = {"acc": 50.0, "edit": 60.0, "f1@10": 60.0, "f1@25": 35.0, "f1@50": 10.0}
    r = above_floor(s, o, b)
    assert r["acc"] == pytest.approx(50.0) and np.isnan(r["edit"]) and r["f1@10"] == pytest.approx(100.0)
    assert r["avg"] == pytest.approx((50 + 100 + 50 + 0) / 4)


def test_cli_baseline_and_evaluate_with_floor(data, tmp_path):
    paths = {}
    for method in ("mean", "blind"):
        paths[method] = tmp_path / f"{method}.tcd"
        result = runner.invoke(app, ["baseline", method, str(data), "-o", str(paths[method]), "--json"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["method"] == method and summary["bytes"] == paths[method].stat().st_size
    result = runner.invoke(app, ["info", str(paths["mean"]), "--json"])
    assert result.exit_code == 0 and "mean" in result.stdout
    result = runner.invoke(
        app,
        ["evaluate", "--model", "mstcn", "--data", str(data), "--train", str(paths["mean"]), "--train",
         str(paths["blind"]), "--seeds", "1", "--epochs", "1", "--stages", "1", "--layers", "2", "--f-maps", "8",
         "--device", "cpu", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["floor"] == "blind.tcd"
    for r in report["results"]:
        assert set(r["above_floor"]) == {"acc", "edit", "f1@10", "f1@25", "f1@50", "avg"}


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["bogus"], "METHOD"),
        (["mean", "--ratio", "0"], "--ratio"),
        (["mean", "--code-dtype", "int8"], "--code-dtype"),
        (["fp16", "--code-dtype", "float32"], "fp16"),
        (["tca", "--ips", "frame"], "frame"),
        (["encoded", "--ips", "0"], "--ips"),
        (["mean", "--sampling", "best"], "sampling"),
    ],
)
def test_cli_baseline_bad_inputs(data, tmp_path, args, fragment):
    out = tmp_path / "x.tcd"
    method, *rest = args
    result = runner.invoke(app, ["baseline", method, str(data), "-o", str(out), *rest])
    assert result.exit_code != 0
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_cli_baseline_refuses_to_overwrite(data, tmp_path):
    out = tmp_path / "x.tcd"
    out.write_bytes(b"keep")
    result = runner.invoke(app, ["baseline", "mean", str(data), "-o", str(out)])
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert out.read_bytes() == b"keep"


def test_cli_one_code_per_frame(data, tmp_path):
    out = tmp_path / "frame.tcd"
    result = runner.invoke(
        app, ["baseline", "encoded", str(data), "-o", str(out), "--ips", "frame", "--ratio", "1", "--steps", "5",
              "--hidden", "16", "--latent", "4", "--device", "cpu", "--json"],
    )
    assert result.exit_code == 0, result.output
    archive = read_archive(out)
    assert archive.settings["ips"] == "frame" and archive.num_codes == archive.total_frames
