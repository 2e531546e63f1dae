"""``tascond``: our method (``tascond condense``): diverse videos, a trained generator, inverted codes."""

from __future__ import annotations

from tascond_cli.methods._generator import GeneratorMethod


class Tascond(GeneratorMethod):
    name = "tascond"
    summary = "the paper's method: diverse videos, codes inverted through a trained generator, others borrow codes"
    stores = "`min(ips, L)` fitted codes per segment (`ips = \"frame\"`: `L`); the videos sampling does not keep reuse them"


METHOD = Tascond()
