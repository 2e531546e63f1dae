"""The README's Python examples run as written (on a tiny dataset, with fewer generator steps)."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import make_activity_dataset, make_tiny_dataset

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3, "the README's Python section has lost its examples"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    make_tiny_dataset(tmp_path / "demo" / "data", dim=8)
    make_activity_dataset(tmp_path / "bf")
    scope: dict = {}
    for block in blocks:
        code = block.replace("generator__steps=600", "generator__steps=5").replace('"bf.tcd"', '"ours.tcd"')
        code = code.replace("epochs=20", "epochs=1").replace("epochs=10", "epochs=1")
        exec(compile(code, str(README), "exec"), scope)  # noqa: S102 - our own README
    assert scope["result"].archive.settings["method"] == "lowrank"
    assert scope["finer"].archive.settings["lowrank"]["stride"] == 2.0
    assert scope["finer"].archive.num_codes > scope["result"].archive.num_codes
    assert scope["paper"].archive.settings["method"] == "tascond"
    assert scope["paper"].archive.settings["steps"] == 5
    assert scope["mean"].archive.decoder_kind == "identity"
    assert scope["encoded"].archive.settings["method"] == "encoded"
    assert scope["report"].config.model == "asformer" and len(scope["report"].results) == 2
    assert scope["predicted"].shape == (scope["ds"].test[0].num_frames,)
    assert [r.name for r in scope["steps"].results] == ["exemplar", "archive"]
    features, labels = scope["features"], scope["labels"]
    assert features.shape[1] == labels.shape[0] and features.shape[0] == 8
