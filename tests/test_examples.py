"""The examples and the demo run end to end on tiny data, so they never rot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tascond_cli.archive import write_archive
from tascond_cli.cli import app
from tascond_cli.methods import make_baseline

from conftest import make_tiny_dataset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(OMP_NUM_THREADS="1", EPOCHS="1", SEEDS="1")
    return env


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_pipeline_example(tmp_path):
    data = make_tiny_dataset(tmp_path / "data", n_train=4, n_test=2, dim=8, seed=5)
    work = tmp_path / "work"
    condense = ["--method", "tascond", "--steps", "20", "--hidden", "16", "--latent", "4", "--invert-iters", "3", "--device", "cpu"]
    proc = subprocess.run(
        ["bash", str(EXAMPLES / "pipeline.sh"), str(data), str(work), *condense],
        capture_output=True, text=True, env=_env(), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (work / "restored" / "features").iterdir())
    assert "ours.tcd:" in proc.stdout and "bytes" in proc.stdout
    report = json.loads((work / "evaluate.json").read_text())
    assert [r["name"] for r in report["results"]] == ["original", "ours.tcd", "mean.tcd", "blind.tcd"]
    lines = [line for line in proc.stdout.splitlines() if "retention" in line]
    assert len(lines) == 4 and lines[0].startswith("original")


def test_pipeline_example_usage(tmp_path):
    proc = subprocess.run(["bash", str(EXAMPLES / "pipeline.sh")], capture_output=True, text=True, env=_env())
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_train_from_archive_example(tmp_path):
    data = make_tiny_dataset(tmp_path / "data", n_train=3, n_test=1, dim=8, seed=6)
    archive = tmp_path / "mean.tcd"
    write_archive(make_baseline("mean", data).archive, archive)
    saved = tmp_path / "model.pt"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "train_from_archive.py"), str(archive), "--epochs", "2", "--device", "cpu",
         "--save", str(saved)],
        capture_output=True, text=True, env=_env(), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 videos, 8-d features, 4 classes" in proc.stdout
    assert proc.stdout.count("frame accuracy") == 2 and saved.stat().st_size > 0


def test_demo_runs_end_to_end(tmp_path):
    folder = tmp_path / "demo"
    args = ["demo", str(folder), "--videos", "3", "--dim", "8", "--epochs", "1", "--seeds", "1",
            "--device", "cpu"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["name"] for r in report["results"]] == ["original", "tascond (restored)", "mean", "blind"]
    assert report["floor"] == "blind"
    assert report["results"][1]["storage_bytes"] == (folder / "tascond.tcd").stat().st_size
    for name in ("data", "restored", "tascond.tcd", "mean.tcd", "blind.tcd"):
        assert (folder / name).exists()
    assert "$ tascond condense" in result.stderr
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "already exists" in again.stderr
    table = runner.invoke(app, [*args, "--force"])
    assert table.exit_code == 0 and "above blind" in table.stdout and "tascond (restored)" in table.stdout
