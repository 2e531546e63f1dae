"""Is one method better than another? Paired differences over seeds, with a 95% interval.

Two training sources evaluated with the same seeds (:func:`~tascond_cli.evaluate.protocol.evaluate_sources`
uses ``seed, seed + 1, ...`` for every source) form pairs: seed ``s`` of source A against seed ``s`` of
source B. The figure compared is the five-metric average retention of one run, ``mean over metrics of
100 * run[m] / original[m]`` with ``original`` the original's mean over seeds (a constant, so pairing
removes nothing it should not). The difference's mean over the pairs gets a Student-t 95% interval;
a difference whose interval holds 0 is reported as no difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .metrics import METRIC_NAMES

__all__ = ["PairedDifference", "average_retention", "paired_difference", "t_quantile_975"]

# Two-sided 95% quantiles of Student's t, by degrees of freedom (1..30); the normal 1.96 beyond.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (``df >= 1``)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def average_retention(run: Mapping[str, float], original: Mapping[str, float]) -> float:
    """``mean over metrics of 100 * run[m] / original[m]``, over the metrics the original scores above 0."""
    values = [100.0 * run[m] / original[m] for m in METRIC_NAMES if original[m] > 0]
    return float(np.mean(values)) if values else float("nan")


@dataclass(frozen=True)
class PairedDifference:
    """A minus B in points of average retention, over ``pairs`` seeds."""

    mean: float
    low: float
    high: float
    pairs: int

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` or ``no difference`` (the interval holds 0, or there is one pair)."""
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "no difference"

    def to_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "pairs": self.pairs, "verdict": self.verdict}

    def __str__(self) -> str:
        return f"{self.mean:+.1f} [{self.low:+.1f}, {self.high:+.1f}] ({self.pairs} seeds): {self.verdict}"


def paired_difference(
    a: Sequence[Mapping[str, float]], b: Sequence[Mapping[str, float]], original: Mapping[str, float]
) -> PairedDifference:
    """A's per-seed scores against B's, paired by position (the same seeds, in the same order).

    With one pair the interval is infinite: one seed says nothing about noise.
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"paired scores need the same, non-zero number of seeds ({len(a)} vs {len(b)})")
    d = np.array([average_retention(x, original) - average_retention(y, original) for x, y in zip(a, b)])
    mean = float(d.mean())
    if len(d) < 2:
        return PairedDifference(mean, -math.inf, math.inf, 1)
    half = t_quantile_975(len(d) - 1) * float(d.std(ddof=1)) / math.sqrt(len(d))
    return PairedDifference(mean, mean - half, mean + half, len(d))
