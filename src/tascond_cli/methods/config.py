"""What every condensation method can be told, declared once.

One frozen :class:`Config` serves every method (``tascond`` and the baselines). Its parts each own
their defaults and their checks:

- :class:`SamplingConfig`: which training videos are kept;
- :class:`GeneratorConfig`: the generator (the prior) and how many codes each segment gets;
- :class:`InversionConfig`: how codes are fitted with the generator frozen;
- :class:`StorageConfig`: what precision is stored, and what the feature baselines keep;
- :class:`LowRankConfig`: the ``lowrank`` codec (basis size, codes per frame, interpolation, noise).

The generator's and the inversion's defaults are those of the engine
(:class:`~tascond_cli.condense.PriorConfig`, :class:`~tascond_cli.condense.InvertConfig`): one source
of truth. ``None`` in :attr:`SamplingConfig.ratio` and :attr:`StorageConfig.code_dtype` means "the
method's default" (:attr:`Method.default_ratio <tascond_cli.methods.Method.default_ratio>`,
:attr:`Method.default_code_dtype <tascond_cli.methods.Method.default_code_dtype>`);
:meth:`Config.for_method` fills them in.

Checks raise :class:`ConfigError`, which names the field (``sampling.ratio``), never a command-line flag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from tascond_cli.condense.invert import InvertConfig
from tascond_cli.condense.prior import PriorConfig
from tascond_cli.errors import TascondError

__all__ = [
    "CODE_DTYPES",
    "OTHERS",
    "SAMPLINGS",
    "Config",
    "ConfigError",
    "GeneratorConfig",
    "InversionConfig",
    "LowRankConfig",
    "SamplingConfig",
    "StorageConfig",
]

SAMPLINGS = ("fps", "random")
"""How videos are kept: ``fps`` (diverse: furthest-point sampling of transcripts) or ``random``."""
OTHERS = ("borrow", "drop")
"""What happens to the training videos that sampling does not keep: ``borrow`` stores their structure
(action order, segment lengths) and lets each of their segments reuse the codes of the kept segment of
the same action nearest in length; ``drop`` leaves them out (the paper)."""
CODE_DTYPES = ("float16", "float32", "int8")
"""Precisions of stored codes; int8 (with a per-dimension scale) only where the method says so."""
WEIGHT_DTYPES = ("float16", "float32")
INTERPS = ("linear", "step", "dct")
"""``lowrank``: restore interpolates linearly between chunk centres, or holds each chunk's code."""
FLOORS = ("auto", "zero", "none")
"""``lowrank``: clamp restored features at 0 (``zero``), never (``none``), or when every training
feature is non-negative (``auto``, e.g. I3D)."""
NOISES = ("complement", "split", "full", "none")
"""``lowrank``: restore adds seeded noise shaped like what the codes miss, only outside the basis
(``complement``), outside it and along each of its directions, each sized on its own (``split``), in
every direction alike (``full``), or none."""


class ConfigError(TascondError, ValueError):
    """A bad setting. ``field`` is its dotted path in :class:`Config` (``"sampling.ratio"``); the message
    starts with it."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field} {problem}")


def _integer(path: str, value: Any, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(path, f"must be an integer >= {lo}, got {value!r}")


def _choice(path: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(path, f"must be one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class SamplingConfig:
    """Which training videos are kept."""

    ratio: float | None = None
    """Fraction of the training videos kept, in (0, 1]; None: the method's default."""
    strategy: str = "fps"
    """``fps`` or ``random`` (:data:`SAMPLINGS`)."""
    others: str = "borrow"
    """``borrow`` or ``drop`` (:data:`OTHERS`); only methods with a generator store other videos."""

    def check(self) -> None:
        ratio = self.ratio
        if ratio is not None and (
            isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1
        ):
            raise ConfigError("sampling.ratio", f"must be in (0, 1], got {ratio}")
        _choice("sampling.strategy", self.strategy, SAMPLINGS)
        _choice("sampling.others", self.others, OTHERS)


@dataclass(frozen=True)
class GeneratorConfig:
    """The generator (a conditional VAE over frames, :mod:`tascond_cli.condense.prior`) and its codes."""

    ips: int | None = PriorConfig.ips
    """Codes (instances) per segment, at most one per frame; None: one code per frame (the paper's
    channel-only variant; the generator is then trained on single frames)."""
    latent: int = PriorConfig.latent
    hidden: int = PriorConfig.hidden
    steps: int = PriorConfig.steps
    batch: int = PriorConfig.batch

    def check(self) -> None:
        if self.ips is not None:
            if isinstance(self.ips, bool) or not isinstance(self.ips, int) or self.ips < 1:
                raise ConfigError("generator.ips", f"must be a positive integer or None (one code per frame), got {self.ips!r}")
        for name in ("latent", "hidden", "steps", "batch"):
            _integer(f"generator.{name}", getattr(self, name), 1)

    def prior(self, seed: int) -> PriorConfig:
        """The engine's configuration of this generator (one code per frame: trained on single frames)."""
        frame = self.ips is None
        return PriorConfig(
            latent=self.latent, hidden=self.hidden, ips=0 if frame else self.ips, chunk_input=not frame,
            steps=self.steps, batch=self.batch, seed=seed,
        )


@dataclass(frozen=True)
class InversionConfig:
    """How codes are fitted to segments with the generator frozen (:mod:`tascond_cli.condense.invert`)."""

    iters: int = InvertConfig.max_iters
    """Most iterations (stops earlier when converged); 0: the encoder's guess."""
    patience: int = InvertConfig.patience
    lr: float = InvertConfig.lr
    frames: int = InvertConfig.chunk_frames
    """Frames of each chunk used per iteration (0: all)."""
    batch_frames: int = InvertConfig.batch_frames
    """Frames decoded at once (inversion and the residual model)."""

    def check(self) -> None:
        _integer("inversion.iters", self.iters, 0)
        _integer("inversion.patience", self.patience, 1)
        _integer("inversion.frames", self.frames, 0)
        _integer("inversion.batch_frames", self.batch_frames, 1)
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) or self.lr <= 0:
            raise ConfigError("inversion.lr", f"must be a positive number, got {self.lr!r}")

    def engine(self, seed: int, iters: int | None = None) -> InvertConfig:
        """The engine's configuration (``iters``: instead of :attr:`iters`)."""
        return InvertConfig(
            lr=self.lr, max_iters=self.iters if iters is None else iters, patience=self.patience,
            chunk_frames=self.frames, batch_frames=self.batch_frames, seed=seed,
        )


@dataclass(frozen=True)
class StorageConfig:
    """What the archive stores, and at what precision."""

    code_dtype: str | None = None
    """``float16`` or ``float32``; None: the method's default."""
    weight_dtype: str = "float16"
    """Precision of the generator's weights."""
    residual: bool = False
    """Generator methods: store the size and time correlation of what the codes miss."""
    pca_dim: int = 64
    """``pca``: dimensions kept (at most the feature dimension)."""

    def check(self) -> None:
        if self.code_dtype is not None:
            _choice("storage.code_dtype", self.code_dtype, CODE_DTYPES)
        _choice("storage.weight_dtype", self.weight_dtype, WEIGHT_DTYPES)
        if not isinstance(self.residual, bool):
            raise ConfigError("storage.residual", f"must be true or false, got {self.residual!r}")
        _integer("storage.pca_dim", self.pca_dim, 1)


@dataclass(frozen=True)
class LowRankConfig:
    """The ``lowrank`` codec (:mod:`tascond_cli.methods.lowrank`, docs/method.md)."""

    dim: int = 128
    """Principal directions kept: the width of every code (at most the feature dimension)."""
    stride: float = 3.0
    """Frames per code: a segment of ``L`` frames gets ``round(L / stride)`` codes (1 to ``L``)."""
    interp: str = "linear"
    """``linear``, ``step`` or ``dct`` (:data:`INTERPS`)."""
    floor: str = "none"
    """``none``, ``auto`` or ``zero`` (:data:`FLOORS`): no clamp by default, since clamping the restore
    erases part of the content the codes keep (docs/method.md)."""
    noise: str = "split"
    """``split``, ``complement``, ``full`` or ``none`` (:data:`NOISES`)."""
    step: float = 0.25
    """int8 codes: the quantization step, as a fraction of each dimension's standard deviation."""

    def check(self) -> None:
        _integer("lowrank.dim", self.dim, 1)
        stride = self.stride
        if isinstance(stride, bool) or not isinstance(stride, (int, float)) or not math.isfinite(stride) or stride < 1:
            raise ConfigError("lowrank.stride", f"must be a number >= 1 (frames per code), got {stride!r}")
        _choice("lowrank.interp", self.interp, INTERPS)
        _choice("lowrank.floor", self.floor, FLOORS)
        _choice("lowrank.noise", self.noise, NOISES)
        step = self.step
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step <= 1:
            raise ConfigError("lowrank.step", f"must be a number in (0, 1] (of a standard deviation), got {step!r}")


@dataclass(frozen=True)
class Config:
    """Everything a condensation method can be told (the archive records what it used in its settings)."""

    split: int = 1
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    inversion: InversionConfig = field(default_factory=InversionConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    lowrank: LowRankConfig = field(default_factory=LowRankConfig)
    device: str = "auto"
    """``auto``, ``cpu`` or ``cuda[:N]``: where the generator methods train and invert, and where ``lowrank``
    and ``pca`` sum their scatter matrix (their other steps, and the other methods, run on the CPU)."""
    seed: int = 0
    """Same data, config and seed: same archive, byte for byte (on CPU)."""

    def check(self) -> Config:
        """Raise :class:`ConfigError` naming the first bad field; return self."""
        _integer("split", self.split, 1)
        _integer("seed", self.seed, 0)
        if not isinstance(self.device, str):
            raise ConfigError("device", f"must be a string such as auto, cpu or cuda:0, got {self.device!r}")
        self.sampling.check()
        self.generator.check()
        self.inversion.check()
        self.storage.check()
        self.lowrank.check()
        return self

    def for_method(self, method) -> Config:
        """This config with the method's defaults filled in (ratio, code dtype), checked, including the
        method's own rules (:meth:`Method.check <tascond_cli.methods.Method.check>`)."""
        self.check()
        resolved = replace(
            self,
            sampling=replace(self.sampling, ratio=_or(self.sampling.ratio, method.default_ratio)),
            storage=replace(self.storage, code_dtype=_or(self.storage.code_dtype, method.default_code_dtype)),
        )
        if resolved.storage.code_dtype not in method.code_dtypes:
            raise ConfigError("storage.code_dtype", f"must be one of {', '.join(method.code_dtypes)} for "
                              f"{method.name}, got {resolved.storage.code_dtype!r}")
        method.check(self)
        return resolved

    def with_(self, **parts: Any) -> Config:
        """A copy with some fields replaced; nested fields by their path with ``__`` for the dot:
        ``config.with_(seed=1, sampling__ratio=1.0, generator__steps=300)``."""
        nested: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for key, value in parts.items():
            part, sep, name = key.partition("__")
            if sep:
                nested.setdefault(part, {})[name] = value
            else:
                top[key] = value
        for part, values in nested.items():
            top[part] = replace(top.get(part, getattr(self, part)), **values)
        return replace(self, **top)


def _or(value, default):
    return default if value is None else value
