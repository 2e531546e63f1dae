"""``random``: our method on a random subset of the videos instead of diverse sampling."""

from __future__ import annotations

from tascond_cli.methods._generator import GeneratorMethod


class RandomSubset(GeneratorMethod):
    name = "random"
    summary = "our method on a random subset of videos (what diverse sampling adds)"
    stores = "as `tascond`, with a random subset of videos owning codes"
    sampling = "random"


METHOD = RandomSubset()
