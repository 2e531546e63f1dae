"""The method registry: one list of methods, and everything that lists them derives from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from tascond_cli.archive.decoders import DECODERS
from tascond_cli.cli import app
from tascond_cli.cli.baseline import Method
from tascond_cli.methods import (
    BASELINES,
    CONDENSERS,
    METHODS,
    PHASES,
    Config,
    ConfigError,
    get_method,
    markdown_table,
)

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- methods-table -->"


def _command(name: str):
    return typer.main.get_command(app).commands[name]


def test_every_method_declares_itself():
    for name, method in METHODS.items():
        assert method.name == name and get_method(name) is method
        assert method.summary and "\n" not in method.summary and method.stores
        assert 0 < method.default_ratio <= 1 and method.default_code_dtype in method.code_dtypes
        assert set(method.code_dtypes) <= {"float16", "float32", "int8"}
        # int8 codes need a decoder kind that takes them (lowrank, with its code_scale)
        assert "int8" not in method.code_dtypes or "int8" in DECODERS[method.decoder_kind].code_dtypes
        assert method.decoder_kind in ("identity", "linear", "zeros", "generator", "random", "lowrank")
        assert method.phases[0] == "sample" and set(method.phases) <= set(PHASES)
        assert ("prior" in method.phases) == method.needs_generator


def test_cli_baseline_choices_are_the_registry(tmp_path):
    assert CONDENSERS == ("lowrank", "tascond") and tuple(METHODS)[: len(CONDENSERS)] == CONDENSERS
    assert tuple(m.value for m in Method) == BASELINES == tuple(n for n in METHODS if n not in CONDENSERS)
    runner = CliRunner()
    for name in (*BASELINES, *CONDENSERS, "bogus"):
        result = runner.invoke(app, ["baseline", name, str(tmp_path / "none"), "-o", str(tmp_path / "x.tcd")])
        # a known method gets as far as looking for the data; any other is a usage error
        assert result.exit_code == (1 if name in BASELINES else 2), (name, result.output)
    (ratio,) = [p for p in _command("condense").params if p.name == "ratio"]
    assert ratio.default == METHODS["tascond"].default_ratio
    help_text = _command("baseline").help
    for name in BASELINES:
        assert f"{name}: {METHODS[name].summary}" in help_text


def test_unknown_method_names_the_field():
    with pytest.raises(ConfigError, match="method must be one of lowrank, tascond, mean"):
        get_method("bogus")


def test_config_errors_name_fields_not_flags():
    cases = [
        (Config().with_(sampling__ratio=0), "sampling.ratio"),
        (Config().with_(sampling__strategy="best"), "sampling.strategy"),
        (Config().with_(generator__ips=0), "generator.ips"),
        (Config().with_(inversion__iters=-1), "inversion.iters"),
        (Config().with_(storage__code_dtype="int16"), "storage.code_dtype"),
        (Config().with_(storage__weight_dtype="int8"), "storage.weight_dtype"),
        (Config().with_(lowrank__stride=0.5), "lowrank.stride"),
        (Config(seed=-1), "seed"),
    ]
    for config, field in cases:
        with pytest.raises(ConfigError) as info:
            config.check()
        assert info.value.field == field and str(info.value).startswith(field) and "--" not in str(info.value)
    with pytest.raises(ConfigError, match="generator.ips"):
        Config().with_(generator__ips=None).for_method(METHODS["tca"])
    with pytest.raises(ConfigError, match="storage.code_dtype"):
        Config().with_(storage__code_dtype="float32").for_method(METHODS["fp16"])
    for name in METHODS:  # int8 codes only where the method stores them with a scale
        config = Config().with_(storage__code_dtype="int8")
        if "int8" in METHODS[name].code_dtypes:
            assert config.for_method(METHODS[name]).storage.code_dtype == "int8"
        else:
            with pytest.raises(ConfigError) as info:
                config.for_method(METHODS[name])
            assert info.value.field == "storage.code_dtype" and str(info.value).startswith("storage.code_dtype")


def test_method_defaults_fill_the_config():
    assert Config().for_method(METHODS["mean"]).sampling.ratio == 1.0
    assert Config().for_method(METHODS["mean"]).storage.code_dtype == "float32"
    assert Config().for_method(METHODS["tascond"]).sampling.ratio == 0.5
    assert Config().with_(sampling__ratio=0.25).for_method(METHODS["mean"]).sampling.ratio == 0.25


@pytest.mark.parametrize("doc", ["README.md", "docs/format.md"])
def test_docs_method_table_is_the_registry(doc):
    """The method table in the docs is :func:`markdown_table`, pasted after the marker."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    if MARKER not in text:
        pytest.skip(f"{doc} has no {MARKER} marker yet (the table goes right after it)")
    assert MARKER + "\n" + markdown_table() in text, f"{doc}: paste methods.markdown_table() after {MARKER}"


def test_every_option_is_a_config_field():
    from tascond_cli.cli.options import DEFAULTS, FIELDS, config_from

    for name, path in FIELDS.items():
        part = DEFAULTS
        for attr in path.split("."):
            part = getattr(part, attr)  # an AttributeError names a stale entry
    assert config_from(ratio=0.25, ips="frame", invert_iters=3) == Config().with_(
        sampling__ratio=0.25, generator__ips=None, inversion__iters=3
    )
