"""The package's shape: imports point one way, and no module or function grows past reading size.

The layers (CONTRIBUTING.md): a module may import its own layer and the layers below it, never a layer
above it, not even lazily inside a function. Every module of ``tascond_cli`` must be placed in a layer
here, so a new module is a conscious choice.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "tascond_cli"

LAYERS: dict[str, int] = {
    # 1: plumbing every layer may use
    "tascond_cli": 1,
    "tascond_cli.errors": 1,
    "tascond_cli.fsio": 1,
    "tascond_cli.device": 1,
    "tascond_cli.distributed": 1,
    "tascond_cli.chunks": 1,
    # 2: the two file formats: the MS-TCN layout and the .tcd archive (with its decoder kinds)
    "tascond_cli.data": 2,
    "tascond_cli.archive": 2,
    # 3: engines over one format each: restore, the condensation engine, synthetic data
    "tascond_cli.restore": 3,
    "tascond_cli.condense": 3,
    "tascond_cli.synth": 3,
    # 4: what combines engines: the methods and the evaluation protocol
    "tascond_cli.methods": 4,
    "tascond_cli.evaluate": 4,
    # 5: the command line, the only layer that prints
    "tascond_cli.cli": 5,
    "tascond_cli.__main__": 5,
}

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int | None:
    """The layer of ``module``: the entry of its longest listed prefix (the package root only itself)."""
    if module == "tascond_cli":
        return LAYERS[module]
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        layer = LAYERS.get(".".join(parts[:n]))
        if layer is not None:
            return layer
    return None


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """Every ``tascond_cli`` module that ``path`` imports, anywhere in the file, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return [(line, name) for line, name in found if name == "tascond_cli" or name.startswith("tascond_cli.")]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    missing = [_module_name(p) for p in MODULES if _layer(_module_name(p)) is None]
    assert not missing, f"place these modules in LAYERS: {missing}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_point_down(path):
    module = _module_name(path)
    mine = _layer(module)
    upward = [
        f"line {line}: {name} (layer {_layer(name)})"
        for line, name in _imports(path, module)
        if (_layer(name) or 0) > (mine or 0)
    ]
    assert not upward, f"{module} (layer {mine}) imports a higher layer: {upward}"


def test_the_layer_check_sees_upward_imports(tmp_path):
    """The check itself: an upward import, lazy or relative, is found."""
    pkg = tmp_path / "tascond_cli" / "archive"
    pkg.mkdir(parents=True)
    bad = pkg / "reader.py"
    bad.write_text("def f():\n    from ..evaluate import train\n    import tascond_cli.cli\n")
    found = _imports(bad, "tascond_cli.archive.reader")
    assert [name for _, name in found] == ["tascond_cli.evaluate", "tascond_cli.cli"]
    assert all(_layer(name) > _layer("tascond_cli.archive.reader") for _, name in found)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_sizes(path):
    text = path.read_text(encoding="utf-8")
    lines = len(text.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_module_name(path)} has {lines} lines (at most {MAX_MODULE_LINES})"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{_module_name(path)}: functions over {MAX_FUNCTION_LINES} lines: {long}"
