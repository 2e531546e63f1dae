"""``coreset``: the real frame nearest (Euclidean) each segment's mean, repeated over the segment."""

from __future__ import annotations

import numpy as np

from tascond_cli.methods._features import FeatureMethod
from tascond_cli.methods.mean import segment_means


def nearest_frame(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The column of ``x`` (D, L) nearest ``mean`` (D,) in Euclidean distance (lowest index on ties)."""
    d = np.square(x.astype(np.float64) - mean[:, None]).sum(0)
    return x[:, int(np.argmin(d))]


class Coreset(FeatureMethod):
    name = "coreset"
    summary = "the real frame nearest each segment's mean, repeated over the segment"
    stores = "1 code per segment: the real frame nearest its mean"
    default_code_dtype = "float32"  # restores real frames exactly

    def encode(self, x, starts, lengths, dtype, weights):
        means = segment_means(x, starts, lengths)
        frames = [nearest_frame(x[:, s : s + n], means[:, i]) for i, (s, n) in enumerate(zip(starts, lengths))]
        return np.stack(frames).astype(dtype), np.ones(len(lengths), dtype=np.int64)


METHOD = Coreset()
