"""``mean``: each segment's mean feature, repeated over the segment."""

from __future__ import annotations

import numpy as np

from tascond_cli.methods._features import FeatureMethod


def segment_means(x: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each segment's mean feature (D, S), in float64."""
    return np.add.reduceat(x.astype(np.float64), starts, axis=1) / lengths


class Mean(FeatureMethod):
    name = "mean"
    summary = "each segment's mean feature, repeated over the segment"
    stores = "1 code per segment: its mean feature"
    default_code_dtype = "float32"  # restores exact means

    def encode(self, x, starts, lengths, dtype, weights):
        return segment_means(x, starts, lengths).T.astype(dtype), np.ones(len(lengths), dtype=np.int64)


METHOD = Mean()
