"""``tca``: the generator decoding random codes; no codes are stored (restoration draws them)."""

from __future__ import annotations

from tascond_cli.methods._generator import GeneratorMethod
from tascond_cli.methods.config import Config, ConfigError


class TCA(GeneratorMethod):
    name = "tca"
    summary = "our generator decoding random codes drawn at restore time (none stored)"
    stores = "no codes: `min(ips, L)` per segment drawn at restore time"
    decoder_kind = "random"
    phases = ("sample", "prior")
    stores_codes = False

    def check(self, config: Config) -> None:
        if config.generator.ips is None:
            raise ConfigError(
                "generator.ips", "must be an integer for tca: it decodes random codes per chunk; "
                "one code per frame ('frame') would make every frame noise",
            )


METHOD = TCA()
