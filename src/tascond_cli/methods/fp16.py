"""``fp16``: every frame's features as float16 (compressed). The codes are as big as the data, so they
are built on disk (:mod:`._ondisk`), never whole in memory."""

from __future__ import annotations

import numpy as np

from tascond_cli.methods._base import report_to
from tascond_cli.methods._features import FeatureMethod
from tascond_cli.methods._ondisk import build_on_disk
from tascond_cli.methods.config import Config, ConfigError


class FP16(FeatureMethod):
    name = "fp16"
    summary = "every frame as float16"
    stores = "`L` codes per segment: every frame, float16"

    def check(self, config: Config) -> None:
        if config.storage.code_dtype not in (None, "float16"):
            raise ConfigError("storage.code_dtype", "must be float16 (or None) for fp16: it stores float16 by definition")

    def encode(self, x, starts, lengths, dtype, weights):
        return x.T.astype(np.float16), lengths

    def build(self, dataset, config, *, prior=None, on_phase=None):
        return build_on_disk(self, dataset, config, report_to(on_phase))


METHOD = FP16()
