"""Byte budgets for ``lowrank`` (``tascond condense --budget`` with the default method).

The archive's size is nearly known from the labels before any feature is read: the codes are
``sum(round(L / stride)) x dim`` values, the decoder is the basis ``(dim, D)``, the mean and the noise
model ``(D,)`` at the weight precision, and the structure is what :mod:`.budget` counts. Float codes and
everything else are counted at their raw size plus zstd's worst case (an upper bound, as :mod:`.budget`);
int8 codes at :func:`int8_bits` bits each, the entropy of a Gaussian quantized at the configured step
plus a margin, since that is what zstd stores them in. That makes the estimate of an int8 archive an
estimate, not a bound: :func:`plan_lowrank` lists every candidate that fits, finest first, and the
caller (``tascond condense --budget``) builds them in turn until the real archive fits.

Candidates keep the configured basis width and take the finest ``stride`` (frames per code) of
:data:`STRIDES` whose estimate fits; when none does, they narrow the basis (:data:`DIMS`). A field the
user fixed is never changed.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from tascond_cli.data import feature_bytes
from tascond_cli.methods._base import open_train
from tascond_cli.methods.budget import OVERHEAD, Budget, Plan, _Labels, _zstd_bound, parse_budget, structure_bytes
from tascond_cli.methods.config import Config, ConfigError
from tascond_cli.methods.lowrank import codes_per_chunking

__all__ = ["DIMS", "KNOBS", "MARGIN_BITS", "STRIDES", "LowRankPlan", "estimate_lowrank", "int8_bits", "plan_lowrank"]

KNOBS = ("lowrank.stride", "lowrank.dim")
"""The fields a budget may choose for ``lowrank`` (unless fixed)."""
STRIDES = (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 256)
"""Frames per code a budget tries, finest first."""
DIMS = (256, 192, 128, 96, 64, 48, 32, 24, 16, 12, 8, 4, 2, 1)
"""Basis widths a budget tries below the configured one."""
_ITEMSIZE = {"int8": 1, "float16": 2, "float32": 4}
MARGIN_BITS = 0.6
"""Bits per int8 code value allowed above the Gaussian entropy at the quantization step (measured: zstd
stores codes at a quarter standard deviation in 4.1 bits, the entropy being 4.05)."""


def int8_bits(step: float) -> float:
    """Estimated bits zstd stores an int8 code value in: ``log2(1 / step) + 2.05`` (a Gaussian's differential
    entropy in bits, ``0.5 * log2(2 pi e)``) plus :data:`MARGIN_BITS`, at most 8."""
    return min(8.0, math.log2(1.0 / step) + 0.5 * math.log2(2 * math.pi * math.e) + MARGIN_BITS)


def _structure(dataset) -> tuple[np.ndarray, int, int]:
    """Every training segment's length, the number of videos and the structure's stored bytes."""
    info = _Labels.of(dataset)
    lengths = np.concatenate(info.lengths)
    return lengths, len(info.names), structure_bytes(info.names, info.class_names, int(lengths.size))


def _estimate(structure: tuple[np.ndarray, int, int], dim: int, config: Config) -> dict[str, int]:
    lengths, videos, structure_size = structure
    lr = config.lowrank
    width = min(lr.dim, dim)
    codes = int(codes_per_chunking(lengths, lr.stride).sum())
    weight = _ITEMSIZE[config.storage.weight_dtype]
    vectors = 1 + (lr.noise != "none")  # mean, residual std
    int8 = config.storage.code_dtype == "int8"
    code_bytes = codes * width * (int8_bits(lr.step) / 8 if int8 else _ITEMSIZE[config.storage.code_dtype])
    parts = {
        "codes": int(math.ceil(code_bytes)),
        "decoder": (width * dim + vectors * dim) * weight + (4 * width if int8 else 0)  # + code_scale
        + (width * weight if lr.noise == "split" else 0)  # + residual.basis_std
        + ((2 if lengths.max(initial=0) < 2**16 else 4) * codes if lr.interp == "dct" else 0),  # + frequencies
        "structure": structure_size,
        "overhead": OVERHEAD,
    }
    raw = sum(parts.values())
    bounded = raw - (parts["codes"] if int8 else 0)  # int8 codes are counted at their compressed size
    parts["compression"] = _zstd_bound(bounded) - bounded
    parts["total"] = raw + parts["compression"]
    parts["kept_videos"] = videos
    return parts


def estimate_lowrank(data, config: Config) -> dict[str, int]:
    """The estimated size of ``lowrank``'s archive of ``data`` with ``config`` (method defaults filled
    in: every training video), from the labels alone; an upper bound unless the codes are int8."""
    dataset = open_train(data, config.split)
    return _estimate(_structure(dataset), dataset.dim, config)


class LowRankPlan(Plan):
    """What :func:`plan_lowrank` chose: the config to condense with and its estimate (``chose``: the fields
    a ``lowrank`` budget sets)."""

    @property
    def chose(self) -> dict[str, Any]:
        c = self.config
        return {"kept_videos": self.estimate["kept_videos"], "stride": c.lowrank.stride, "dim": c.lowrank.dim,
                "code_dtype": c.storage.code_dtype}

    def describe(self) -> str:
        c = self.chose
        return f"stride {c['stride']:g} frames per code, {c['dim']} dimensions, codes {c['code_dtype']}"


def _candidates(config: Config, fixed: frozenset[str], dim: int):
    lr = config.lowrank
    strides = [lr.stride] if "lowrank.stride" in fixed else list(STRIDES)
    dims = [lr.dim] if "lowrank.dim" in fixed else [lr.dim] + [d for d in DIMS if d < min(lr.dim, dim)]
    for width in dims:
        for stride in strides:
            yield replace(config, lowrank=replace(lr, stride=float(stride), dim=width))


def plan_lowrank(data, config: Config, budget: Budget | str, fixed=()) -> list[LowRankPlan]:
    """Every ``lowrank`` config whose estimated archive fits ``budget``, finest first (ConfigError naming
    ``budget`` with the smallest estimate when none does). ``config`` has the method's defaults filled in."""
    budget = parse_budget(budget) if isinstance(budget, str) else budget
    fixed = frozenset(fixed)
    unknown = fixed - set(KNOBS)
    if unknown:
        raise ConfigError("budget", f"cannot fix {', '.join(sorted(unknown))}: not one of {', '.join(KNOBS)}")
    dataset = open_train(data, config.split)
    size = budget.bytes_for(feature_bytes(dataset.train))
    structure = _structure(dataset)
    smallest, fits = None, []
    for candidate in _candidates(config, fixed, dataset.dim):
        est = _estimate(structure, dataset.dim, candidate)
        if est["total"] <= size:
            fits.append(LowRankPlan(candidate, size, budget.spec, est, tuple(sorted(fixed))))
        if smallest is None or est["total"] < smallest[1]["total"]:
            smallest = (candidate, est)
    if fits:
        return fits
    held = f" with {', '.join(sorted(fixed))} fixed" if fixed else ""
    plan = LowRankPlan(smallest[0], size, budget.spec, smallest[1], ())
    raise ConfigError("budget", f"{budget.spec} ({size:,} bytes) is below the smallest archive it can plan{held}: "
                      f"estimated {smallest[1]['total']:,} bytes ({plan.describe()})")
