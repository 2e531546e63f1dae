"""Byte budgets: fit ``tascond``'s archive to a size (``tascond condense --budget``).

:func:`parse_budget` reads a size (``40MB``, ``512KiB``, ``1.5GB``, ``123456``) or a compression factor
(``500x``: the training features' bytes / 500). :func:`plan_budget` chooses, from the labels alone, the
ratio of kept videos, codes per segment, code precision and decoder width whose *estimated* archive
size fits, in a fixed order of preference (docs/method.md, "Byte budgets"); :func:`estimate` is that
estimate, an upper bound of the real archive's size: uncompressed bytes of every stored array, the
decoder's parameters counted from the network's definition, the names with their HDF5 overhead, a fixed
overhead for HDF5, header and metadata, and zstd's worst case (it only ever shrinks real data by more).

Fields the caller fixed (``fixed``: dotted :class:`Config` paths) are never changed. Nothing here
prints; errors are :class:`~tascond_cli.methods.config.ConfigError` naming ``budget``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tascond_cli.chunks import codes_per_segment
from tascond_cli.data import Dataset, feature_bytes
from tascond_cli.methods._base import open_train, select_videos
from tascond_cli.methods._generator import borrow_sources
from tascond_cli.methods.config import Config, ConfigError

__all__ = [
    "KNOBS",
    "OVERHEAD",
    "Budget",
    "Plan",
    "estimate",
    "parse_budget",
    "plan_budget",
]

KNOBS = ("sampling.ratio", "generator.ips", "generator.hidden", "storage.code_dtype", "storage.weight_dtype")
"""The fields a budget may choose (unless fixed)."""
HIDDEN_STEPS = (512, 256, 128, 64)
"""Decoder widths tried below the configured one."""
IPS_MAX = 16
"""Most codes per segment a budget grows to."""
OVERHEAD = 16_000
"""Bytes allowed for everything not counted array by array: the 28-byte header, HDF5's superblock and
object headers (about 30 datasets and groups), the settings (with the budget's record) and the
decoder's config as JSON. The uncompressed HDF5 payload less the counted arrays measured 10.9-12.1 KB
on archives of 4 and 300 videos, residual or not (tests/test_budget.py checks the bound)."""
NAME_OVERHEAD = 48
"""Bytes per stored name (class or video) beyond its UTF-8 text: its 16-byte variable-length reference,
the 16-byte global-heap object header and padding to 8 bytes, with room for the heap's own slack."""

_UNITS = {
    "": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "k": 10**3, "m": 10**6, "g": 10**9,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_SIZE_HELP = "must be a size such as 40MB, 512KiB, 1.5GB or 123456 (bytes), or a factor such as 500x"


@dataclass(frozen=True)
class Budget:
    """A parsed budget: ``size`` bytes, or ``factor`` times smaller than the training features."""

    spec: str
    size: int | None = None
    factor: float | None = None

    def bytes_for(self, train_bytes: int) -> int:
        """The budget in bytes for training features of ``train_bytes`` bytes."""
        if self.size is not None:
            return self.size
        return int(math.floor(train_bytes / self.factor))


def parse_budget(spec: str) -> Budget:
    """``40MB``, ``1.5GB``, ``512KiB``, ``123456`` (decimal units as the CLI prints sizes, binary ones
    with ``i``; plain bytes) or ``500x``. ConfigError naming ``budget`` otherwise."""
    text = str(spec).strip()
    if text.lower().endswith("x"):
        try:
            factor = float(text[:-1])
        except ValueError:
            factor = float("nan")
        if not math.isfinite(factor) or factor < 1:
            raise ConfigError("budget", f"{_SIZE_HELP} (a factor of at least 1x), got {spec!r}")
        return Budget(spec=text, factor=factor)
    return Budget(spec=text, size=parse_size(text, "budget", _SIZE_HELP))


def parse_size(spec: str, name: str, help_text: str = "must be a size such as 40MB, 512KiB, 1.5GB or 123456 (bytes)") -> int:
    """Bytes in ``spec`` (``40MB``, ``1.5GB``, ``512KiB``, ``123456``); ConfigError naming ``name`` otherwise."""
    match = _SIZE.match(str(spec))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ConfigError(name, f"{help_text}, got {spec!r}")
    size = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(size) or size < 1:
        raise ConfigError(name, f"must be at least 1 byte, got {spec!r}")
    return int(math.floor(size))


# --------------------------------------------------------------------------- counting


@dataclass
class _Labels:
    """What the labels say about the training videos: enough to count every stored array."""

    names: list[str]
    class_names: list[str]
    labels: list[np.ndarray]
    """Per video: its segments' labels."""
    lengths: list[np.ndarray]
    """Per video: its segments' lengths."""
    transcripts: list[tuple[int, ...]]
    _keep: dict[tuple[float, str], list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, dataset: Dataset) -> _Labels:
        labels, lengths, transcripts = [], [], []
        for video in dataset.train:
            segs = video.segments()
            labels.append(np.array([s.label for s in segs], dtype=np.int64))
            lengths.append(np.array([s.length for s in segs], dtype=np.int64))
            transcripts.append(tuple(int(a) for a in labels[-1]))
        return cls([v.name for v in dataset.train], list(dataset.mapping.names), labels, lengths, transcripts)

    def keep(self, dataset: Dataset, config: Config) -> list[int]:
        key = (config.sampling.ratio, config.sampling.strategy)
        if key not in self._keep:
            self._keep[key] = select_videos(dataset.train, config.sampling.ratio, config.sampling.strategy, config.seed)
        return self._keep[key]


def _counts(info: _Labels, keep: list[int], config: Config) -> dict[str, int]:
    """Videos, segments, codes, borrowing segments and video names of the archive of ``config`` keeping ``keep``."""
    chosen = set(keep)
    others = [i for i in range(len(info.names)) if i not in chosen] if config.sampling.others == "borrow" else []
    k_labels = np.concatenate([info.labels[i] for i in keep])
    k_lengths = np.concatenate([info.lengths[i] for i in keep])
    o_labels = np.concatenate([info.labels[i] for i in others] or [np.zeros(0, np.int64)])
    o_lengths = np.concatenate([info.lengths[i] for i in others] or [np.zeros(0, np.int64)])
    sources = borrow_sources(k_labels, k_lengths, o_labels, o_lengths)
    own = o_lengths[sources < 0]
    ips = config.generator.ips
    codes = int(codes_per_segment(k_lengths, ips).sum() + codes_per_segment(own, ips).sum())
    videos = [*keep, *others]
    return {
        "videos": len(videos), "segments": int(k_lengths.size + o_lengths.size), "codes": codes,
        "borrowing": int((sources >= 0).sum()), "names": [info.names[i] for i in videos],
    }


def _decoder_parameters(dim: int, classes: int, config: Config) -> int:
    from tascond_cli.archive.decoders.network import DECODER_ARCH, parameter_count

    p = config.generator.prior(config.seed)
    return parameter_count({
        "arch": DECODER_ARCH, "dim": dim, "num_classes": classes, "latent": p.latent, "hidden": p.hidden,
        "layers": p.layers, "embed": p.embed, "fourier": p.fourier, "length_input": p.length_input,
        "chunk_input": p.chunk_input,
    }) + (dim if config.storage.residual else 0)


def structure_bytes(video_names: list[str], class_names: list[str], segments: int, borrowing: bool = False) -> int:
    """Stored bytes of an archive's structure: the video and class names (with their HDF5 overhead), the
    videos' segment offsets and frames, the segments' labels, lengths and code offsets, and the code
    sources when segments borrow."""
    v, s = len(video_names), segments
    names = sum(len(n.encode()) + NAME_OVERHEAD for n in [*video_names, *class_names])
    return names + 8 * (v + 1) + 8 * v + 4 * s + 8 * s + 8 * (s + 1) + (8 * s if borrowing else 0)


def _zstd_bound(n: int) -> int:
    """zstd's worst case for ``n`` bytes (``ZSTD_COMPRESSBOUND``) plus its frame header and checksum."""
    return n + (n >> 8) + (((128 << 10) - n) >> 11 if n < (128 << 10) else 0) + 32


def _itemsize(dtype: str) -> int:
    return 2 if dtype == "float16" else 4


def _estimate(info: _Labels, dataset: Dataset, config: Config) -> dict[str, int]:
    c = _counts(info, info.keep(dataset, config), config)
    parts = {
        "codes": c["codes"] * config.generator.latent * _itemsize(config.storage.code_dtype),
        "decoder": _decoder_parameters(dataset.dim, dataset.num_classes, config) * _itemsize(config.storage.weight_dtype),
        "structure": structure_bytes(c["names"], info.class_names, c["segments"], c["borrowing"] > 0),
        "overhead": OVERHEAD,
    }
    raw = sum(parts.values())
    parts["compression"] = _zstd_bound(raw) - raw
    parts["total"] = raw + parts["compression"]
    parts["kept_videos"] = len(info.keep(dataset, config))
    return parts


def estimate(data, config: Config) -> dict[str, int]:
    """An upper bound of the size of ``tascond``'s archive of ``data`` with ``config`` (method defaults
    filled in), from the labels alone: ``{"codes", "decoder", "structure", "overhead", "compression",
    "total", "kept_videos"}`` in bytes (``kept_videos``: a count)."""
    dataset = open_train(data, config.split)
    return _estimate(_Labels.of(dataset), dataset, config)


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Plan:
    """What :func:`plan_budget` chose: the config to condense with and its estimate."""

    config: Config
    budget: int
    """The budget in bytes."""
    spec: str
    estimate: dict[str, int]
    fixed: tuple[str, ...]

    @property
    def chose(self) -> dict[str, Any]:
        """The chosen value of every field a budget sets, and the kept videos."""
        c = self.config
        return {
            "ratio": c.sampling.ratio, "kept_videos": self.estimate["kept_videos"],
            "ips": "frame" if c.generator.ips is None else c.generator.ips, "hidden": c.generator.hidden,
            "code_dtype": c.storage.code_dtype, "weight_dtype": c.storage.weight_dtype,
        }

    def record(self) -> dict[str, Any]:
        """What the archive's settings (``"budget"``) and the CLI's JSON report say about the plan."""
        return {"bytes": self.budget, "spec": self.spec, "estimate": self.estimate["total"],
                "chose": self.chose, "fixed": list(self.fixed)}


def _ratios(base: float, n: int) -> tuple[list[float], list[float]]:
    """Ratios below ``base`` (halving, down to one video) and above it (half way to 1, then 1)."""
    from tascond_cli.condense.sampling import sample_size

    down, r, last = [], base, sample_size(n, base)
    while last > 1:
        r /= 2
        cand = round(r if sample_size(n, r) > 1 else 1 / n, 6)
        if sample_size(n, cand) < last:
            down.append(cand)
            last = sample_size(n, cand)
    up = [x for x in (round(base + (1 - base) / 2, 6), 1.0) if base < x and sample_size(n, x) > sample_size(n, base)]
    return down, sorted(set(up), key=up.index)


def _steps(config: Config, fixed: frozenset[str], n: int, codes_first: bool):
    """(shrink, grow): lists of (field, value), in the order they are applied from ``config``."""
    g, s = config.generator, config.storage
    free = {k: k not in fixed for k in KNOBS}
    precision = [(k, "float16") for k in ("storage.weight_dtype", "storage.code_dtype")
                 if free[k] and getattr(s, k.split(".")[1]) == "float32"]
    hidden = [("generator.hidden", h) for h in HIDDEN_STEPS if free["generator.hidden"] and h < g.hidden]
    ips_down, ips_up = [], []
    if free["generator.ips"] and g.ips is not None:
        i = g.ips
        while i > 1:
            i //= 2
            ips_down.append(("generator.ips", i))
        ips_up = [("generator.ips", IPS_MAX)] if g.ips < IPS_MAX else []
    down, up = _ratios(config.sampling.ratio, n) if free["sampling.ratio"] else ([], [])
    widths = ips_down + hidden if codes_first else hidden + ips_down
    shrink = precision + widths + [("sampling.ratio", r) for r in down]
    grow = [("sampling.ratio", r) for r in up] + ips_up
    if free["storage.code_dtype"] and s.code_dtype == "float16":
        grow.append(("storage.code_dtype", "float32"))
    return shrink, grow


def _apply(config: Config, step: tuple[str, Any]) -> Config:
    return config.with_(**{step[0].replace(".", "__"): step[1]})


def ladder(dataset: Dataset, config: Config, fixed=()) -> list[tuple[Config, dict[str, int]]]:
    """Every plan the budget may choose, smallest first, with its estimate: the configured plan shrunk
    one step at a time, reversed, then grown one step at a time (docs/method.md, "Byte budgets"). Plans
    that store more code bytes than a larger plan are left out, so a bigger budget never stores fewer."""
    info = _Labels.of(dataset)
    fixed = frozenset(fixed)
    base = _estimate(info, dataset, config)
    shrink, grow = _steps(config, fixed, len(dataset.train), codes_first=base["codes"] > base["decoder"])
    down, c = [config], config
    for step in shrink:
        c = _apply(c, step)
        down.append(c)
    up, c = [], config
    for step in grow:
        c = _apply(c, step)
        up.append(c)
    plans = [(c, _estimate(info, dataset, c)) for c in [*reversed(down), *up]]
    kept, least = [], math.inf
    for plan in reversed(plans):
        if plan[1]["codes"] <= least:
            kept.append(plan)
            least = plan[1]["codes"]
    return kept[::-1]


def plan_budget(data, config: Config, budget: Budget | str, fixed=()) -> Plan:
    """The largest plan of :func:`ladder` whose estimated size fits ``budget``.

    ``config``: ``tascond``'s config with the method's defaults filled in (:meth:`Config.for_method`);
    ``fixed``: dotted paths of :data:`KNOBS` the budget must not change (what the user set). Raises
    ConfigError naming ``budget`` with the smallest achievable estimate when nothing fits.
    """
    budget = parse_budget(budget) if isinstance(budget, str) else budget
    unknown = set(fixed) - set(KNOBS)
    if unknown:
        raise ConfigError("budget", f"cannot fix {', '.join(sorted(unknown))}: not one of {', '.join(KNOBS)}")
    dataset = open_train(data, config.split)
    size = budget.bytes_for(feature_bytes(dataset.train))
    plans = ladder(dataset, config, fixed)
    fits = [p for p in plans if p[1]["total"] <= size]
    if not fits:
        small = min(plans, key=lambda p: p[1]["total"])
        held = f" with {', '.join(sorted(fixed))} fixed" if fixed else ""
        raise ConfigError(
            "budget", f"{budget.spec} ({size:,} bytes) is below the smallest archive it can plan{held}: "
            f"estimated {small[1]['total']:,} bytes ({_describe(Plan(small[0], size, budget.spec, small[1], ()))})",
        )
    chosen, est = fits[-1]
    return Plan(chosen, size, budget.spec, est, tuple(sorted(fixed)))


def _describe(plan: Plan) -> str:
    c = plan.chose
    videos = f"{c['kept_videos']} video{'' if c['kept_videos'] == 1 else 's'}"
    return (f"ratio {c['ratio']:g} ({videos}), ips {c['ips']}, hidden {c['hidden']}, "
            f"codes {c['code_dtype']}, weights {c['weight_dtype']}")


def describe(plan: Plan) -> str:
    """One line: what the plan chose."""
    return _describe(plan)


def condense_within(data, config: Config, budget: Budget | str, fixed=(), on_phase=None, *, prior=None):
    """Plan (:func:`plan_budget`), then condense with the plan's config: ``(CondenseResult, Plan)``.

    ``config``'s None fields take ``tascond``'s defaults. The archive's settings record the plan under
    ``"budget"`` (:meth:`Plan.record`). Whether the real archive fits is the caller's check
    (``len(archive_bytes(result.archive)) <= plan.budget``). A given ``prior`` was trained with
    ``config``'s width and codes per segment, so those are then held fixed.
    """
    from dataclasses import replace

    from tascond_cli.methods import METHODS, condense_dataset

    resolved = config.for_method(METHODS["tascond"])
    dataset = open_train(data, resolved.split)
    if prior is not None:
        fixed = sorted({*fixed, "generator.hidden", "generator.ips"})
    plan = plan_budget(dataset, resolved, budget, fixed)
    result = condense_dataset(dataset, plan.config, on_phase, prior=prior)
    archive = replace(result.archive, settings={**result.archive.settings, "budget": plan.record()})
    return replace(result, archive=archive), plan
