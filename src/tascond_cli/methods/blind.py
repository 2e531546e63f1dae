"""``blind``: no features at all over the real action structure: the floor a TAS model reaches from the
structure alone."""

from __future__ import annotations

import numpy as np

from tascond_cli.methods._features import FeatureMethod


class Blind(FeatureMethod):
    name = "blind"
    summary = "all-zero features over the real action structure (the floor)"
    stores = "no codes"
    decoder_kind = "zeros"
    records_code_dtype = False

    def encode(self, x, starts, lengths, dtype, weights):
        return np.zeros((0, x.shape[0]), dtype=dtype), np.zeros(len(lengths), dtype=np.int64)


METHOD = Blind()
