"""Scoring predictions and the training protocol, end to end through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tascond_cli.cli import app
from tascond_cli.data import open_dataset
from tascond_cli.evaluate.predictions import MSTCN_HEADER, format_prediction, parse_prediction, read_predictions
from tascond_cli.evaluate.protocol import retention
from tascond_cli.errors import DataError

from conftest import make_tiny_dataset

runner = CliRunner()
SMALL = ["--layers", "2", "--f-maps", "8", "--stages", "2", "--device", "cpu"]


def _write_gt_as_predictions(data, folder, fmt):
    folder.mkdir()
    ds = open_dataset(data, parts=("test",))
    for v in ds.test:
        if fmt == "mstcn":
            (folder / f"{v.name}.txt").write_text(format_prediction(v.labels, ds.mapping))
        else:
            (folder / v.name).write_text("".join(ds.mapping.names[i] + "\n" for i in v.labels))
    return ds


@pytest.mark.parametrize("fmt", ["mstcn", "lines"])
def test_perfect_predictions_score_100(tiny, tmp_path, fmt):
    _write_gt_as_predictions(tiny, tmp_path / "p", fmt)
    result = runner.invoke(app, ["evaluate", "--data", str(tiny), "--predictions", str(tmp_path / "p"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["background"] == ["background"]
    for m in ("acc", "edit", "f1@10", "f1@25", "f1@50"):
        assert data[m] == pytest.approx(100.0)


def test_parse_both_formats(tmp_path):
    (tmp_path / "a.txt").write_text(f"{MSTCN_HEADER}\nx x y\n")
    (tmp_path / "b.txt").write_text("x\nx\ny\n")
    assert parse_prediction(tmp_path / "a.txt") == parse_prediction(tmp_path / "b.txt") == ["x", "x", "y"]


def test_prediction_errors(tiny, tmp_path):
    ds = _write_gt_as_predictions(tiny, tmp_path / "p", "mstcn")
    victim = tmp_path / "p" / f"{ds.test[0].name}.txt"
    victim.write_text(f"{MSTCN_HEADER}\nbackground take\n")
    with pytest.raises(DataError, match="2 predicted frames, but the ground truth has"):
        read_predictions(tmp_path / "p", ds.test, ds.mapping)
    victim.write_text("fly\n" * 100)
    with pytest.raises(DataError, match="frame 1: label 'fly' is not in mapping.txt"):
        read_predictions(tmp_path / "p", ds.test, ds.mapping)
    victim.unlink()
    with pytest.raises(DataError, match="missing prediction for test video"):
        read_predictions(tmp_path / "p", ds.test, ds.mapping)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--predictions", "{tmp}/nope"], "no such predictions folder"),
        (["--predictions", "{tmp}/p", "--split", "2"], "test.split2.bundle"),
    ],
)
def test_evaluate_cli_errors(tiny, tmp_path, args, fragment):
    _write_gt_as_predictions(tiny, tmp_path / "p", "mstcn")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = runner.invoke(app, ["evaluate", "--data", str(tiny), *args])
    assert result.exit_code == 1 and fragment in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_prediction_is_one_line(tiny, tmp_path):
    ds = _write_gt_as_predictions(tiny, tmp_path / "p", "mstcn")
    (tmp_path / "p" / f"{ds.test[1].name}.txt").unlink()
    result = runner.invoke(app, ["evaluate", "--data", str(tiny), "--predictions", str(tmp_path / "p")])
    assert result.exit_code == 1 and "missing prediction" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_mode_is_required(tiny):
    result = runner.invoke(app, ["evaluate", "--data", str(tiny)])
    assert result.exit_code == 2 and "exactly one of" in result.stderr


def test_cuda_absent_is_clean_error(tiny):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    result = runner.invoke(app, ["evaluate", "--data", str(tiny), "--model", "mstcn", "--device", "cuda"])
    assert result.exit_code == 1 and "CUDA is not available" in result.stderr


def test_retention():
    orig = {"acc": 80.0, "edit": 50.0, "f1@10": 40.0, "f1@25": 20.0, "f1@50": 0.0}
    half = {k: v / 2 for k, v in orig.items()}
    r = retention(half, orig)
    assert r["acc"] == 50.0 and np.isnan(r["f1@50"]) and r["avg"] == 50.0


def test_train_and_score_cli(tmp_path):
    data = make_tiny_dataset(tmp_path / "data", n_train=3, n_test=2)
    other = make_tiny_dataset(tmp_path / "other", n_train=3, n_test=1, seed=7)
    # the other source lists its classes in another order: labels must be remapped by name
    (other / "mapping.txt").write_text("0 stir\n1 pour\n2 take\n3 background\n")
    args = ["evaluate", "--model", "mstcn", "--data", str(data), "--train", str(other), "--epochs", "2",
            "--seeds", "2", *SMALL]  # fmt: skip
    result = runner.invoke(
        app, [*args, "--json", "--save-predictions", str(tmp_path / "preds"), "--plot", str(tmp_path / "plots")]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["name"] for r in report["results"]] == ["original", "other"]
    assert report["seeds"] == [0, 1] and report["background"] == ["background"]
    for r in report["results"]:
        assert len(r["per_seed"]) == 2 and set(r["mean"]) == {"acc", "edit", "f1@10", "f1@25", "f1@50"}
        acc = [s["acc"] for s in r["per_seed"]]
        assert r["mean"]["acc"] == pytest.approx(np.mean(acc)) and r["std"]["acc"] == pytest.approx(np.std(acc))
        assert r["storage_bytes"] > 0
    assert report["results"][0]["retention"]["acc"] == pytest.approx(100.0)
    # saved predictions score the same through --predictions
    pred_dir = tmp_path / "preds" / "original" / "seed1"
    assert len(list(pred_dir.iterdir())) == 2
    rescored = runner.invoke(app, ["evaluate", "--data", str(data), "--predictions", str(pred_dir), "--json"])
    assert json.loads(rescored.stdout)["acc"] == pytest.approx(report["results"][0]["per_seed"][1]["acc"])
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["vid03.png", "vid04.png"]
    assert (tmp_path / "plots" / "vid03.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # outputs exist now: refused without --force, in one line
    again = runner.invoke(app, [*args, "--plot", str(tmp_path / "plots")])
    assert again.exit_code == 1 and "already exists" in again.stderr
    # the table form
    table = runner.invoke(app, [*args[:-len(SMALL)], *SMALL, "--seeds", "1"])
    assert table.exit_code == 0 and "original" in table.stdout and "retention" in table.stdout


def test_source_with_foreign_label_is_refused(tmp_path):
    data = make_tiny_dataset(tmp_path / "data", n_train=2, n_test=1)
    other = make_tiny_dataset(tmp_path / "other", n_train=2, n_test=1)
    (other / "mapping.txt").write_text("0 background\n1 take\n2 pour\n3 stir\n4 jump\n")
    (other / "groundTruth" / "vid00.txt").write_text("jump\n" * 3)
    result = runner.invoke(app, ["evaluate", "--model", "mstcn", "--data", str(data), "--train", str(other), *SMALL])
    assert result.exit_code == 1 and "'jump' is not in" in result.stderr
