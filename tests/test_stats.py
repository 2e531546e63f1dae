"""Paired differences over seeds with a 95% Student-t interval."""

from __future__ import annotations

import math

import pytest

from tascond_cli.evaluate.metrics import METRIC_NAMES
from tascond_cli.evaluate.stats import average_retention, paired_difference, t_quantile_975

ORIGINAL = dict.fromkeys(METRIC_NAMES, 50.0)


def run(value: float) -> dict[str, float]:
    return dict.fromkeys(METRIC_NAMES, value)


def test_average_retention_skips_metrics_the_original_does_not_score():
    original = {**ORIGINAL, "f1@50": 0.0}
    assert average_retention(run(25.0), ORIGINAL) == 50.0
    assert average_retention({**run(25.0), "f1@50": 9.0}, original) == 50.0


def test_t_quantiles():
    assert t_quantile_975(1) == 12.706 and t_quantile_975(2) == 4.303 and t_quantile_975(30) == 2.042
    assert t_quantile_975(1000) == 1.96
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_interval_by_hand():
    # differences in retention points: 2*(a - b) per seed = 4, 6, 8 -> mean 6, sd 2, half = 4.303 * 2 / sqrt(3)
    a, b = [run(30.0), run(33.0), run(36.0)], [run(28.0), run(30.0), run(32.0)]
    d = paired_difference(a, b, ORIGINAL)
    half = 4.303 * 2.0 / math.sqrt(3)
    assert d.pairs == 3 and d.mean == pytest.approx(6.0)
    assert (d.low, d.high) == (pytest.approx(6.0 - half), pytest.approx(6.0 + half))
    assert d.verdict == "better"
    assert paired_difference(b, a, ORIGINAL).verdict == "worse"


def test_noise_is_no_difference():
    a, b = [run(30.0), run(26.0), run(31.0)], [run(28.0), run(29.0), run(29.0)]
    d = paired_difference(a, b, ORIGINAL)
    assert d.low < 0 < d.high and d.verdict == "no difference"
    assert "no difference" in str(d) and d.to_dict()["verdict"] == "no difference"


def test_pairing_removes_shared_seed_noise():
    """Seeds that move both sources alike leave a tight interval; unpaired, the spread would hide it."""
    shared = [0.0, 10.0, -8.0, 5.0]
    a = [run(30.0 + s + 1.0) for s in shared]
    b = [run(30.0 + s) for s in shared]
    d = paired_difference(a, b, ORIGINAL)
    assert d.mean == pytest.approx(2.0) and d.high - d.low == pytest.approx(0.0, abs=1e-9)
    assert d.verdict == "better"


def test_one_seed_says_nothing():
    d = paired_difference([run(40.0)], [run(20.0)], ORIGINAL)
    assert d.verdict == "no difference" and math.isinf(d.low) and math.isinf(d.high)


def test_unpaired_input_is_refused():
    with pytest.raises(ValueError):
        paired_difference([run(1.0)], [run(1.0), run(2.0)], ORIGINAL)
    with pytest.raises(ValueError):
        paired_difference([], [], ORIGINAL)
