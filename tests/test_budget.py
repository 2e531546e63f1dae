"""``condense --budget``: sizes, the planner's estimate (an upper bound), its choices, the CLI's checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tascond_cli.archive import archive_bytes, read_archive
from tascond_cli.archive.writer import _payload
from tascond_cli.cli import app
from tascond_cli.methods import METHODS, Config, ConfigError, condense_dataset
from tascond_cli.methods import budget as budget_mod
from tascond_cli.methods.budget import KNOBS, estimate, ladder, parse_budget, plan_budget
from tascond_cli.methods._base import open_train

from conftest import make_tiny_dataset

runner = CliRunner()
FAST = ["--method", "tascond", "--steps", "5", "--invert-iters", "1", "--latent", "8", "--device", "cpu"]
BASE = Config(device="cpu").with_(generator__steps=5, inversion__iters=1, generator__latent=8)


def resolved(**fields) -> Config:
    return BASE.with_(**fields).for_method(METHODS["tascond"])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("budget") / "data", n_train=8, n_test=2, dim=8, seed=5)


# --------------------------------------------------------------------------- SIZE


@pytest.mark.parametrize("spec, size", [
    ("40MB", 40_000_000), ("512KB", 512_000), ("1.5GB", 1_500_000_000), ("512kb", 512_000),
    ("1KiB", 1024), ("2MiB", 2 * 2**20), ("1GiB", 2**30), ("123456", 123_456), ("100B", 100), ("40 MB", 40_000_000),
])
def test_parse_sizes(spec, size):
    assert parse_budget(spec).size == size and parse_budget(spec).bytes_for(10**12) == size


def test_parse_factor():
    b = parse_budget("500x")
    assert b.factor == 500 and b.size is None and b.bytes_for(1_000_000) == 2000
    assert parse_budget("2.5X").bytes_for(1000) == 400


@pytest.mark.parametrize("spec", ["", "MB", "40XB", "-5MB", "0", "0x", "0.5x", "abcx", "1e999x", "40 M B", "nan"])
def test_parse_bad(spec):
    with pytest.raises(ConfigError) as e:
        parse_budget(spec)
    assert e.value.field == "budget"


# --------------------------------------------------------------------------- the estimate


@pytest.mark.parametrize("fields", [
    {},
    {"sampling__ratio": 1.0, "generator__ips": 16, "storage__code_dtype": "float32"},
    {"sampling__ratio": 0.125, "generator__ips": 1, "generator__hidden": 64},
    {"generator__ips": None, "generator__hidden": 32, "storage__weight_dtype": "float32"},
    {"sampling__others": "drop", "storage__residual": True, "generator__hidden": 128},
])
def test_estimate_bounds_the_real_archive(data, fields):
    config = resolved(**fields)
    est = estimate(data, config)
    archive = condense_dataset(data, config).archive
    real = len(archive_bytes(archive))
    assert est["total"] >= real
    # not only thanks to zstd: the estimate bounds the uncompressed payload and the header as well
    assert est["total"] - est["compression"] >= len(_payload(archive, "0.1.0")) + 28
    assert est["codes"] == archive.codes.nbytes


def test_estimate_counts_decoder_parameters_exactly(data):
    config = resolved(generator__hidden=64)
    archive = condense_dataset(data, config).archive
    assert estimate(data, config)["decoder"] == sum(w.nbytes for w in archive.decoder_weights.values())


# --------------------------------------------------------------------------- the planner


def test_ladder_grows_code_bytes(data):
    plans = ladder(open_train(data, 1), resolved())
    codes = [e["codes"] for _, e in plans]
    assert codes == sorted(codes) and len(plans) > 5
    first, last = plans[0][0], plans[-1][0]
    assert (first.generator.hidden, first.generator.ips) == (64, 1)
    assert (last.sampling.ratio, last.generator.ips, last.storage.code_dtype) == (1.0, 16, "float32")


def test_bigger_budget_never_fewer_code_bytes(data):
    config = resolved()
    sizes = sorted({e["total"] for _, e in ladder(open_train(data, 1), config)})
    budgets = sorted({s + d for s in sizes for d in (-1, 0, 1)})
    chosen = []
    for b in budgets:
        try:
            chosen.append(plan_budget(data, config, str(b)))
        except ConfigError:
            assert not chosen  # only budgets below the smallest plan fail
    code_bytes = [p.estimate["codes"] for p in chosen]
    assert code_bytes == sorted(code_bytes) and len(set(code_bytes)) > 3
    assert all(p.estimate["total"] <= p.budget for p in chosen)


@pytest.mark.parametrize("keep", KNOBS)
def test_fixed_fields_never_change(data, keep):
    config = resolved(generator__hidden=256, generator__ips=4, storage__weight_dtype="float32")
    sizes = sorted({e["total"] for _, e in ladder(open_train(data, 1), config, fixed=[keep])})
    part, name = keep.split(".")
    for b in sizes:
        plan = plan_budget(data, config, str(b), fixed=[keep])
        assert getattr(getattr(plan.config, part), name) == getattr(getattr(config, part), name)
        assert keep in plan.record()["fixed"]


def test_impossible_budget_names_the_smallest_estimate(data):
    config = resolved()
    smallest = min(e["total"] for _, e in ladder(open_train(data, 1), config))
    with pytest.raises(ConfigError, match=f"estimated {smallest:,} bytes") as e:
        plan_budget(data, config, "1KB")
    assert e.value.field == "budget"
    with pytest.raises(ConfigError, match="cannot fix"):
        plan_budget(data, config, "1MB", fixed=["generator.latent"])


# --------------------------------------------------------------------------- the command


def test_cli_impossible_budget_errors_before_training(data, tmp_path, monkeypatch):
    import tascond_cli.methods._generator as gen

    def no_training(*_a, **_k):
        raise AssertionError("trained despite an impossible budget")

    monkeypatch.setattr(gen, "train_generator", no_training)
    out = tmp_path / "x.tcd"
    r = runner.invoke(app, ["condense", str(data), "-o", str(out), "--budget", "1KB", *FAST])
    assert r.exit_code == 1 and "--budget 1KB" in r.output and "smallest" in r.output
    assert "Traceback" not in r.output and not out.exists()
    r = runner.invoke(app, ["condense", str(data), "-o", str(out), "--budget", "100KB", "--hidden", "512", *FAST])
    assert r.exit_code == 1 and "with --hidden fixed" in " ".join(r.output.split()) and "hidden 512" in r.output
    r = runner.invoke(app, ["condense", str(data), "-o", str(out), "--budget", "40XB", *FAST])
    assert r.exit_code == 1 and "'40XB'" in r.output and len(r.output.strip().splitlines()) == 1
    r = runner.invoke(app, ["condense", str(data), "-o", str(out), "--budget-target", *FAST])
    assert r.exit_code == 1 and "--budget-target needs --budget" in r.output


def test_cli_json_reports_the_plan(data, tmp_path):
    out = tmp_path / "b.tcd"
    r = runner.invoke(app, ["condense", str(data), "-o", str(out), "--budget", "200KB", "--hidden", "128", "--json", *FAST])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    b = report["budget"]
    assert b["bytes"] == 200_000 and b["spec"] == "200KB" and report["bytes"] <= b["estimate"] <= 200_000
    assert b["chose"]["hidden"] == 128 and b["fixed"] == ["generator.hidden"]
    assert set(b["chose"]) == {"ratio", "kept_videos", "ips", "hidden", "code_dtype", "weight_dtype"}
    assert read_archive(out).settings["budget"] == b
    assert report["settings"]["hidden"] == 128 and report["settings"]["ips"] == b["chose"]["ips"]
    info = runner.invoke(app, ["info", str(out)])
    assert info.exit_code == 0 and 'budget={"bytes":200000,' in info.output and "decoder" in info.output


def test_cli_reports_the_plan_in_words(data, tmp_path):
    r = runner.invoke(app, ["condense", str(data), "-o", str(tmp_path / "c.tcd"), "--budget", "300KB", *FAST])
    assert r.exit_code == 0, r.output
    assert "budget 300KB (300.0 KB): chose ratio" in " ".join(r.output.split())
    r = runner.invoke(app, ["condense", str(data), "-o", str(tmp_path / "d.tcd"), "--budget", "5x", *FAST])
    assert r.exit_code == 1 and "--budget 5x" in r.output and "smallest" in r.output


def test_cli_over_budget_is_an_error_unless_a_target(data, tmp_path, monkeypatch):
    monkeypatch.setattr(budget_mod, "OVERHEAD", -10**7)  # an estimate far too low: the real size is over
    out = tmp_path / "over.tcd"
    r = runner.invoke(app, ["condense", str(data), "-o", str(out), "--budget", "20KB", *FAST])
    assert r.exit_code == 1 and "over the budget 20KB" in r.output and "nothing written" in r.output
    assert not out.exists() and not list(tmp_path.iterdir())
    r = runner.invoke(app, ["condense", str(data), "-o", str(out), "--budget", "20KB", "--budget-target", *FAST])
    assert r.exit_code == 0, r.output
    assert "warning:" in r.output and "over the budget 20KB" in r.output and out.exists()
    assert out.stat().st_size > 20_000
