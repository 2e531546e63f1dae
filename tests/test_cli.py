"""The command-line tool: help, version, info, and clean failures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tascond_cli import __version__
from tascond_cli.cli import app

from test_data import BAD_CASES

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"tascond {__version__}"


def test_no_args_shows_help():
    result = runner.invoke(app, [])
    assert "Usage" in result.output and "info" in result.output and "synth" in result.output


KEY_FLAGS = {
    "demo": ["--videos", "--dim", "--epochs", "--seeds", "--device", "--seed", "--force", "--json"],
    "info": ["--split", "--json"],
    "synth": ["--profile", "--labels-from", "--videos", "--split", "--subsample", "--dim", "--seed", "--features", "--force", "--json"],
    "condense": ["--output", "--split", "--ips", "--ratio", "--sampling", "--others", "--latent", "--hidden", "--steps",
                 "--invert-iters", "--invert-frames", "--residual", "--device", "--seed", "--force", "--json"],
    "baseline": ["--output", "--split", "--ratio", "--sampling", "--code-dtype", "--pca-dim", "--ips", "--others",
                 "--latent", "--hidden", "--steps", "--invert-iters", "--device", "--seed", "--force", "--json"],
    "restore": ["--output", "--video", "--device", "--force", "--json"],
    "evaluate": ["--data", "--predictions", "--model", "--train", "--split", "--bg", "--seeds", "--seed", "--epochs",
                 "--lr", "--sample-rate", "--device", "--stages", "--layers", "--f-maps", "--save-predictions",
                 "--plot", "--force", "--json"],
}


def test_help_lists_every_command_in_its_panel():
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for panel in ("Start here", "Data", "Condensation", "Evaluation"):
        assert panel in result.stdout
    listed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ ") and len(line.split()) > 2}
    assert set(KEY_FLAGS) <= listed, listed


@pytest.mark.parametrize("command", sorted(KEY_FLAGS))
def test_command_help_shows_its_flags(command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout
    for flag in KEY_FLAGS[command]:
        assert flag in result.stdout, f"{command} --help lacks {flag}"


def test_info_table(tiny):
    result = runner.invoke(app, ["info", str(tiny)])
    assert result.exit_code == 0, result.output
    assert "4 classes" in result.stdout and "train" in result.stdout and "test" in result.stdout


def test_info_json_is_clean_stdout(tiny):
    result = runner.invoke(app, ["info", str(tiny), "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["parts"]["train"]["videos"] == 4 and data["feature_dim"] == 8
    assert result.stderr == ""


def test_info_warns_on_length_mismatch(tiny):
    path = tiny / "groundTruth" / "vid00.txt"
    path.write_text(path.read_text() + "stir\n")
    result = runner.invoke(app, ["info", str(tiny), "--json"])
    assert result.exit_code == 0
    assert "warning:" in result.stderr and "vid00" in result.stderr
    json.loads(result.stdout)


def _assert_clean_failure(result, *fragments):
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("case", sorted(set(BAD_CASES) - {"missing bundle"}))
def test_info_refuses_bad_dataset(tiny, case):
    breaker, where, what = BAD_CASES[case]
    breaker(tiny)
    _assert_clean_failure(runner.invoke(app, ["info", str(tiny)]), where, what)


def test_info_training_only_dataset(tiny):
    (tiny / "splits" / "test.split1.bundle").unlink()
    result = runner.invoke(app, ["info", str(tiny), "--json"])
    assert result.exit_code == 0, result.output
    assert "test.split1.bundle: missing" in result.stderr and "warning:" in result.stderr
    assert list(json.loads(result.stdout)["parts"]) == ["train"]
    (tiny / "splits" / "train.split1.bundle").unlink()
    _assert_clean_failure(runner.invoke(app, ["info", str(tiny)]), "train.split1.bundle", "missing")


def test_info_missing_folder(tmp_path):
    _assert_clean_failure(runner.invoke(app, ["info", str(tmp_path / "nope")]), "nope", "no such dataset folder")


def test_info_missing_split(tiny):
    _assert_clean_failure(runner.invoke(app, ["info", str(tiny), "--split", "2"]), "train.split2.bundle")


def test_usage_error_exits_2(tiny):
    result = runner.invoke(app, ["info", str(tiny), "--split", "0"])
    assert result.exit_code == 2


def test_console_script_runs(tiny):
    """The installed entry point behaves like the Typer app (real process, real exit code)."""
    proc = subprocess.run(
        [sys.executable, "-m", "tascond_cli", "info", str(tiny / "missing")], capture_output=True, text=True
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
