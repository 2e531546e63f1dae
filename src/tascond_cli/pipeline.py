"""``condense``: a dataset's training split in, one :class:`~tascond_cli.archive.Archive` out.

The phases (each reports progress through ``on_phase(name, done, total)``; nothing is printed):

1. **sample**: furthest-point sampling of the training videos by normalised edit distance between
   transcripts, down to ``ratio`` of them (``sampling="random"``: a random subset instead);
2. **prior**: the conditional generator, trained on frames of *all* training videos (memory-mapped,
   in mini-batches) for ``prior.steps`` steps;
3. **invert**: with the decoder frozen, ``min(ips, L)`` codes per segment of the kept videos, fitted
   from the encoder's guess until the reconstruction error stops improving;
4. the archive: settings, mapping, kept videos' action order and segment lengths, the codes (float16
   by default) and the decoder's weights (float16 by default) as plain arrays.

The same dataset, settings and seed give the same archive, byte for byte (on CPU).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tascond_cli.archive import Archive, offsets_from_counts
from tascond_cli.data import Dataset, feature_bytes, open_dataset
from tascond_cli.errors import TascondError

__all__ = ["CondenseConfig", "CondenseResult", "condense_dataset"]

PhaseCallback = Callable[[str, int, int], None]
SAMPLINGS = ("fps", "random")
CODE_DTYPES = ("float16", "float32")


@dataclass(frozen=True)
class CondenseConfig:
    """Everything ``tascond condense`` can set (the archive records it in its settings)."""

    split: int = 1
    ips: int = 8
    ratio: float = 0.5
    sampling: str = "fps"
    latent: int = 64
    hidden: int = 512
    steps: int = 1500
    batch: int = 512
    invert_iters: int = 300
    invert_patience: int = 15
    invert_lr: float = 0.05
    invert_frames: int = 16
    batch_frames: int = 32768
    residual: bool = False
    code_dtype: str = "float16"
    weight_dtype: str = "float16"
    device: str = "auto"
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def check(self) -> None:
        if self.ips < 1:
            raise TascondError(f"--ips must be at least 1, got {self.ips}")
        if not (0 < self.ratio <= 1) or math.isnan(self.ratio):
            raise TascondError(f"--ratio must be in (0, 1], got {self.ratio}")
        if self.sampling not in SAMPLINGS:
            raise TascondError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        for name in ("latent", "hidden", "steps", "batch", "batch_frames", "invert_patience"):
            if getattr(self, name) < 1:
                raise TascondError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.invert_frames < 0:
            raise TascondError(f"--invert-frames must be >= 0, got {self.invert_frames}")
        if self.invert_iters < 0:
            raise TascondError(f"--invert-iters must be >= 0, got {self.invert_iters}")
        if self.code_dtype not in CODE_DTYPES or self.weight_dtype not in CODE_DTYPES:
            raise TascondError(f"code and weight dtypes must be one of {', '.join(CODE_DTYPES)}")
        if self.seed < 0:
            raise TascondError(f"--seed must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class CondenseResult:
    """The archive and what it took to make it."""

    archive: Archive
    train_videos: int
    kept_videos: int
    segments: int
    frames: int
    train_bytes: int
    error: float
    seconds: dict[str, float]


def condense_dataset(
    data: Path | str | Dataset,
    config: CondenseConfig = CondenseConfig(),
    on_phase: PhaseCallback | None = None,
) -> CondenseResult:
    """Condense the training split of ``data`` into an :class:`Archive` (see the module docstring)."""
    import torch

    from tascond_cli.condense import (
        InvertConfig,
        PriorConfig,
        decoder_state,
        furthest_point_sampling,
        invert_segments,
        random_sampling,
        train_prior,
    )
    from tascond_cli.evaluate.train import resolve_device

    config.check()
    dataset = data if isinstance(data, Dataset) else open_dataset(data, config.split, parts=("train",))
    train = dataset.train
    if not train:
        raise TascondError(f"{dataset.root}: split {config.split} has no training videos")
    try:
        device = resolve_device(config.device)
    except ValueError as exc:
        raise TascondError(str(exc)) from None
    report = on_phase or (lambda name, done, total: None)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    transcripts = [v.transcript() for v in train]
    if config.sampling == "fps":
        keep = furthest_point_sampling(transcripts, config.ratio)
    else:
        keep = random_sampling(len(train), config.ratio, config.seed)
    kept = [train[i] for i in keep]
    seconds["sample"] = time.perf_counter() - t0
    report("sample", 1, 1)

    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    prior_cfg = PriorConfig(
        latent=config.latent, hidden=config.hidden, ips=config.ips, steps=config.steps, batch=config.batch,
        seed=config.seed,
    )
    prior = train_prior(
        train, dataset.num_classes, prior_cfg, device=device,
        on_step=lambda step, _stats: report("prior", step, config.steps) if step % 25 == 0 or step == config.steps else None,
    )
    seconds["prior"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    segments, labels, per_video = [], [], []
    for video in kept:
        segs = video.segments()
        features = video.features()
        per_video.append(len(segs))
        for seg in segs:
            segments.append(features[:, seg.start : seg.end])
            labels.append(seg.label)
    inv_cfg = InvertConfig(
        lr=config.invert_lr, max_iters=config.invert_iters, patience=config.invert_patience,
        chunk_frames=config.invert_frames, batch_frames=config.batch_frames, seed=config.seed,
    )
    inversion = invert_segments(
        prior, segments, np.asarray(labels, dtype=np.int64), config.ips, inv_cfg,
        on_batch=lambda info: report("invert", info["batch"], info["batches"]),
    )
    seconds["invert"] = time.perf_counter() - t0

    lengths = np.array([s.shape[1] for s in segments], dtype=np.int64)
    dec_config, weights = decoder_state(prior)
    if config.residual:
        t0 = time.perf_counter()
        std, rho = residual_model(prior.decoder, segments, labels, lengths, inversion, config.batch_frames)
        weights["residual.std"] = std
        dec_config["residual_rho"] = round(rho, 6)
        seconds["residual"] = time.perf_counter() - t0
    wdt = np.float16 if config.weight_dtype == "float16" else np.float32
    weights = {
        k: (np.asarray(v, dtype=wdt) if np.asarray(v).dtype.kind == "f" else np.asarray(v))
        for k, v in weights.items()
    }
    settings = {
        "method": "tascond",
        "dim": int(dataset.dim),
        "source": dataset.root.name,
        "split": config.split,
        "ips": config.ips,
        "ratio": config.ratio,
        "sampling": config.sampling,
        "latent": config.latent,
        "hidden": config.hidden,
        "steps": config.steps,
        "batch": config.batch,
        "invert_iters": config.invert_iters,
        "invert_patience": config.invert_patience,
        "invert_lr": config.invert_lr,
        "invert_frames": config.invert_frames,
        "residual": config.residual,
        "code_dtype": config.code_dtype,
        "weight_dtype": config.weight_dtype,
        "seed": config.seed,
        "train_videos": len(train),
        "reconstruction_error": round(float(inversion.error), 6),
        **config.extra,
    }
    counts = np.asarray(inversion.counts, dtype=np.int64)
    archive = Archive(
        settings=settings,
        class_names=list(dataset.mapping.names),
        video_names=[v.name for v in kept],
        video_segments=offsets_from_counts(per_video),
        segment_labels=np.asarray(labels, dtype=np.int32),
        segment_lengths=lengths,
        segment_codes=offsets_from_counts(counts),
        codes=inversion.codes.astype(np.float16 if config.code_dtype == "float16" else np.float32),
        decoder_kind="generator",
        decoder_config=dec_config,
        decoder_weights=weights,
    )
    return CondenseResult(
        archive=archive,
        train_videos=len(train),
        kept_videos=len(kept),
        segments=len(segments),
        frames=int(lengths.sum()),
        train_bytes=feature_bytes(dataset.train),
        error=float(inversion.error),
        seconds=seconds,
    )


def residual_model(decoder, segments, labels, lengths, inversion, batch_frames: int) -> tuple[np.ndarray, float]:
    """Per-channel std (D,) of what the codes do not explain, and its lag-1 autocorrelation in time.

    Decodes the kept segments from their codes, segment batch by segment batch, and compares them with
    the real frames (which are read again from the memory-mapped files).
    """
    from tascond_cli.condense import decode_segments
    from tascond_cli.condense.invert import segment_batches

    counts = np.asarray(inversion.counts, dtype=np.int64)
    first = offsets_from_counts(counts)
    labels = np.asarray(labels, dtype=np.int64)
    d = decoder.dim
    s1, s2 = np.zeros(d), np.zeros(d)
    lag, n = 0.0, 0
    for start, stop in segment_batches(lengths, batch_frames):
        restored = decode_segments(
            decoder, labels[start:stop], lengths[start:stop], inversion.codes[first[start] : first[stop]],
            counts[start:stop], batch_frames=batch_frames,
        )  # (D, F)
        offset = 0
        for s in range(start, stop):
            length = int(lengths[s])
            r = np.asarray(segments[s], dtype=np.float64) - restored[:, offset : offset + length]  # (D, L)
            offset += length
            s1 += r.sum(1)
            s2 += np.square(r).sum(1)
            rc = r - r.mean(1, keepdims=True)
            lag += float((rc[:, 1:] * rc[:, :-1]).sum())
            n += length
    mean = s1 / max(n, 1)
    var = np.maximum(s2 / max(n, 1) - mean**2, 0.0)
    total = float(var.sum()) * n
    rho = lag / total if total > 0 else 0.0
    return np.sqrt(var).astype(np.float32), float(min(max(rho, 0.0), 0.99))

