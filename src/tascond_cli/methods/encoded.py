"""``encoded``: our method without inversion: the generator's encoder guesses each chunk's code."""

from __future__ import annotations

from tascond_cli.methods._generator import GeneratorMethod


class Encoded(GeneratorMethod):
    name = "encoded"
    summary = "the encoder's mean per chunk, no inversion (what inversion adds)"
    stores = "`min(ips, L)` encoder means per segment, no fitting; shared as `tascond`"
    inverts = False


METHOD = Encoded()
