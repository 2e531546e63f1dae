"""The incremental protocol (issue 13): tasks from activities, exemplar buffers, forgetting, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tascond_cli.cli import app
from tascond_cli.data import open_dataset
from tascond_cli.errors import DataError
from tascond_cli.evaluate.incremental import (
    BREAKFAST_ORDER,
    activity_of,
    evaluate_incremental,
    exemplar_buffer,
    forgetting,
    make_tasks,
)
from tascond_cli.evaluate.metrics import METRIC_NAMES
from tascond_cli.evaluate.train import TrainConfig

from conftest import make_activity_dataset, make_tiny_dataset

runner = CliRunner()
SMALL = TrainConfig(epochs=2, num_stages=2, num_layers=2, num_f_maps=8)


@pytest.fixture(scope="module")
def activities(tmp_path_factory) -> Path:
    return make_activity_dataset(tmp_path_factory.mktemp("inc") / "acts")


@pytest.mark.parametrize(
    "name, activity",
    [("P03_cam01_P03_cereals", "cereals"), ("P54_webcam02_P54_scrambledegg", "scrambledegg"),
     ("S1_Cheese_C1", "Cheese"), ("S4_CofHoney_C1", "CofHoney"), ("rgb-01-1", None), ("vid00", None)],
)  # fmt: skip
def test_activity_of(name, activity):
    assert activity_of(name) == activity


def test_tasks_follow_the_order_and_group(activities):
    data = open_dataset(activities)
    assert make_tasks(data) == [["coffee"], ["juice"], ["tea"]]  # not Breakfast's ten: alphabetical
    assert make_tasks(data, order=["tea", "coffee", "juice"]) == [["tea"], ["coffee"], ["juice"]]
    assert make_tasks(data, tasks=2) == [["coffee", "juice"], ["tea"]]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"tasks": 4}, "from 2 to 3"), ({"tasks": 1}, "from 2 to 3"), ({"order": ["tea", "coffee"]}, "'juice'"),
     ({"order": ["tea", "coffee", "juice", "milk"]}, "'milk'"), ({"order": ["tea", "tea", "coffee", "juice"]}, "twice")],
)  # fmt: skip
def test_bad_tasks_are_refused(activities, kwargs, fragment):
    with pytest.raises(DataError, match=fragment):
        make_tasks(open_dataset(activities), **kwargs)


def test_names_without_activities_are_refused(tmp_path):
    data = open_dataset(make_tiny_dataset(tmp_path / "tiny"))
    with pytest.raises(DataError, match="no activity in its name"):
        make_tasks(data)


def test_breakfast_order_is_ten_activities():
    assert len(BREAKFAST_ORDER) == len(set(BREAKFAST_ORDER)) == 10


def test_exemplar_buffer_fills_the_budget_with_real_frames():
    rng = np.random.default_rng(0)
    videos = [(rng.random((4, t)).astype(np.float32), np.arange(t) % 3) for t in (10, 20, 30)]
    budget = 2 * 4 * 35  # 35 frames at float16
    buffer, used = exemplar_buffer(videos, budget, seed=1)
    assert used == budget == sum(2 * 4 * x.shape[1] for x, _ in buffer)
    for x, y in buffer:  # every stored frame is a real frame, rounded to float16
        assert x.dtype == np.float32 and len(y) == x.shape[1]
        src = next(v for v in videos if any(np.allclose(x[:, 0], v[0][:, c], atol=1e-3) for c in range(v[0].shape[1])))
        start = next(c for c in range(src[0].shape[1]) if np.allclose(x[:, 0], src[0][:, c], atol=1e-3))
        np.testing.assert_array_equal(x, src[0][:, start : start + x.shape[1]].astype(np.float16).astype(np.float32))
        np.testing.assert_array_equal(y, src[1][start : start + x.shape[1]])
    again, _ = exemplar_buffer(videos, budget, seed=1)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(buffer, again))
    small, used = exemplar_buffer(videos, 2 * 4 * 5, seed=1)  # less than any video: one clip of 5 frames
    assert used == 40 and len(small) == 1 and small[0][0].shape == (4, 5)
    assert exemplar_buffer(videos, 7, seed=1) == ([], 0)


def test_forgetting_is_best_minus_last():
    def s(v):
        return dict.fromkeys(METRIC_NAMES, float(v))

    curve = [{"seen": s(80), 0: s(80)}, {"seen": s(60), 0: s(50), 1: s(70)}, {"seen": s(40), 0: s(20), 1: s(60), 2: s(40)}]
    assert forgetting(curve) == dict.fromkeys(METRIC_NAMES, ((80 - 20) + (70 - 60)) / 2)


def test_the_protocol_end_to_end(activities):
    data = open_dataset(activities)
    report = evaluate_incremental(data, SMALL, seeds=1, keep_predictions=True)
    assert report.tasks == [["coffee"], ["juice"], ["tea"]]
    assert report.train_counts == [3, 3, 3] and report.test_counts == [2, 2, 2]
    by = {r.name: r for r in report.results}
    assert list(by) == ["none", "exemplar", "archive", "full"]
    assert by["none"].buffer_bytes == [0, 0]
    frames = [sum(v.num_frames for v in data.train if v.name.endswith(a)) for a in ("coffee", "juice")]
    assert by["full"].buffer_bytes == [4 * data.dim * f for f in frames]
    assert all(0 < e <= a for e, a in zip(by["exemplar"].buffer_bytes, by["archive"].buffer_bytes))
    # the first task sees no replay: every source starts from the same model and data
    firsts = [r.curves[0][0] for r in report.results]
    assert all(f == firsts[0] for f in firsts)
    for r in report.results:
        curve = r.curves[0]
        assert len(curve) == 3 and [sorted(k for k in step if k != "seen") for step in curve] == [[0], [0, 1], [0, 1, 2]]
        assert r.final["mean"] == curve[-1]["seen"]
        assert r.average["mean"]["acc"] == pytest.approx(np.mean([step["seen"]["acc"] for step in curve]))
        assert len(r.predictions[0]) == len(data.test)
    json.dumps(report.to_dict())  # serialisable


def test_the_protocol_is_deterministic(activities):
    data = open_dataset(activities)
    a = evaluate_incremental(data, SMALL, replays=("exemplar",), tasks=2, seeds=1).to_dict()
    b = evaluate_incremental(data, SMALL, replays=("exemplar",), tasks=2, seeds=1).to_dict()
    assert a == b


def test_cli_incremental_json_and_outputs(activities, tmp_path):
    args = ["evaluate", "--data", str(activities), "--model", "mstcn", "--protocol", "incremental", "--epochs", "1",
            "--seeds", "1", "--stages", "2", "--layers", "2", "--f-maps", "8", "--device", "cpu",
            "--replay", "none", "--replay", "full", "--task-order", "tea,juice,coffee"]  # fmt: skip
    result = runner.invoke(app, [*args, "--json", "--plot", str(tmp_path / "plots"),
                                 "--save-predictions", str(tmp_path / "preds")])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["protocol"] == "incremental" and report["tasks"] == [["tea"], ["juice"], ["coffee"]]
    assert [r["name"] for r in report["results"]] == ["none", "full"]
    assert sorted(p.name for p in (tmp_path / "preds").iterdir()) == ["full", "none"]
    assert len(list((tmp_path / "preds" / "full" / "seed0").iterdir())) == 6
    assert len(list((tmp_path / "plots").glob("*.png"))) == 6
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "incremental, 3 tasks" in table.stdout and "full" in table.stdout


@pytest.mark.parametrize(
    "extra, fragment",
    [(["--tasks", "2"], "--tasks goes with --protocol incremental"),
     (["--replay", "none"], "--replay goes with --protocol incremental"),
     (["--protocol", "incremental", "--train", "x"], "--train goes with --protocol standard"),
     (["--protocol", "incremental", "--tasks", "5"], "from 2 to 3"),
     (["--protocol", "incremental", "--task-order", "tea,milk"], "'milk'")],
)  # fmt: skip
def test_cli_incremental_errors(activities, extra, fragment):
    result = runner.invoke(app, ["evaluate", "--data", str(activities), "--model", "mstcn", "--epochs", "1", *extra])
    assert result.exit_code != 0
    assert fragment in result.output
    assert "Traceback" not in result.output
