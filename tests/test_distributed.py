"""torchrun: two CPU ranks (gloo) give the same evaluate report as one process, written once (issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tascond_cli.distributed import World, sum_tensor, world

from conftest import make_tiny_dataset

ARGS = ["evaluate", "--model", "mstcn", "--epochs", "2", "--seeds", "3", "--stages", "2", "--layers", "2",
        "--f-maps", "8", "--device", "cpu", "--json"]  # fmt: skip


def test_world_without_torchrun(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert world() == World(0, 1, 0) and world().main
    import torch

    t = torch.arange(3)
    assert sum_tensor(t) is t


def test_each_run_goes_to_exactly_one_rank():
    runs = 7
    taken = sorted(i for rank in range(3) for i in World(rank, 3).mine(runs))
    assert taken == list(range(runs))
    assert list(World(1, 3).mine(runs)) == [1, 4]


def _tascond(args, env_extra=None, torchrun=False, timeout=240):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    prefix = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
              "-m", "tascond_cli"] if torchrun else [sys.executable, "-m", "tascond_cli"]  # fmt: skip
    return subprocess.run([*prefix, *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_two_ranks_give_the_one_process_report(tmp_path):
    data = make_tiny_dataset(tmp_path / "tiny", n_train=4, n_test=3)
    one = _tascond([*ARGS, "--data", str(data), "--save-predictions", str(tmp_path / "p1")])
    assert one.returncode == 0, one.stderr
    two = _tascond([*ARGS, "--data", str(data), "--save-predictions", str(tmp_path / "p2")], torchrun=True)
    if two.returncode != 0 and ("Address" in two.stderr or "socket" in two.stderr.lower()):
        pytest.skip(f"no local rendezvous for torchrun here: {two.stderr.strip().splitlines()[-1]}")
    assert two.returncode == 0, two.stderr
    assert json.loads(two.stdout) == json.loads(one.stdout)  # printed once, by rank 0, and identical
    assert "Traceback" not in two.stderr
    files1 = sorted(p.relative_to(tmp_path / "p1") for p in (tmp_path / "p1").rglob("*.txt"))
    files2 = sorted(p.relative_to(tmp_path / "p2") for p in (tmp_path / "p2").rglob("*.txt"))
    assert files1 == files2 and len(files1) == 3 * 3
    for rel in files1:
        assert (tmp_path / "p1" / rel).read_text() == (tmp_path / "p2" / rel).read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_two_ranks_share_the_incremental_runs(tmp_path):
    from conftest import make_activity_dataset

    data = make_activity_dataset(tmp_path / "acts")
    args = ["evaluate", "--model", "mstcn", "--protocol", "incremental", "--epochs", "1", "--seeds", "2",
            "--stages", "2", "--layers", "2", "--f-maps", "8", "--device", "cpu", "--json", "--data", str(data),
            "--replay", "none", "--replay", "exemplar"]  # fmt: skip
    one = _tascond(args)
    assert one.returncode == 0, one.stderr
    two = _tascond(args, torchrun=True)
    if two.returncode != 0 and ("Address" in two.stderr or "socket" in two.stderr.lower()):
        pytest.skip(f"no local rendezvous for torchrun here: {two.stderr.strip().splitlines()[-1]}")
    assert two.returncode == 0, two.stderr
    assert json.loads(two.stdout) == json.loads(one.stdout)


@pytest.mark.parametrize(
    "env, fragment",
    [({"WORLD_SIZE": "2", "RANK": "1"}, "tascond info runs as one process: start it without torchrun"),
     ({"WORLD_SIZE": "two"}, "WORLD_SIZE must be an integer")],
)  # fmt: skip
def test_one_process_commands_refuse_torchrun(tmp_path, monkeypatch, env, fragment):
    from typer.testing import CliRunner

    from tascond_cli.cli import app

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["info", str(make_tiny_dataset(tmp_path / "tiny"))])
    assert result.exit_code == 2 and fragment in result.output
    assert "Traceback" not in result.output
