"""``condense``: a dataset's training split in, one :class:`~tascond_cli.archive.Archive` out.

The phases (each reports progress through ``on_phase(name, done, total)``; nothing is printed):

1. **sample**: furthest-point sampling of the training videos by normalised edit distance between
   transcripts, down to ``ratio`` of them (``sampling="random"``: a random subset instead);
2. **prior**: the conditional generator, trained on frames of *all* training videos (memory-mapped,
   in mini-batches) for ``prior.steps`` steps;
3. **invert**: with the decoder frozen, ``min(ips, L)`` codes per segment of the kept videos (``ips =
   FRAME``: one per frame, with the paper's frame VAE as generator), fitted from the encoder's guess
   until the reconstruction error stops improving;
4. the archive: settings, mapping, kept videos' action order and segment lengths, the codes (float16
   by default) and the decoder's weights (float16 by default) as plain arrays.

``method`` swaps in a baseline that shares the generator: ``encoded`` stops at the encoder's guess,
``random`` samples videos at random, ``tca`` stores no codes at all (restoration draws them).

The same dataset, settings and seed give the same archive, byte for byte (on CPU).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tascond_cli.archive import MAX_SEGMENT_FRAMES, Archive, offsets_from_counts
from tascond_cli.data import Dataset, feature_bytes, open_dataset
from tascond_cli.errors import TascondError

__all__ = ["FRAME", "METHODS", "CondenseConfig", "CondenseResult", "condense_dataset", "parse_ips"]

PhaseCallback = Callable[[str, int, int], None]
SAMPLINGS = ("fps", "random")
OTHERS = ("borrow", "drop")
"""What happens to the training videos that sampling does not keep: ``borrow`` stores their structure
(action order, segment lengths) and lets each of their segments reuse the codes of the kept segment of
the same action nearest in length; ``drop`` leaves them out (the paper)."""
CODE_DTYPES = ("float16", "float32")
FRAME = 0
"""``ips`` value meaning one code per frame (the paper's channel-only variant; the CLI spells it ``frame``)."""
METHODS = ("tascond", "encoded", "random", "tca")
"""What :func:`condense_dataset` can make: our method, and the baselines that share its generator:
``encoded`` (the encoder's mean per chunk, no inversion), ``random`` (a random subset of videos instead
of diverse sampling) and ``tca`` (the generator decoding random codes; no codes stored)."""


def parse_ips(value: str | int) -> int:
    """``"frame"`` (one code per frame) or a positive integer, from the command line."""
    text = str(value).strip().lower()
    if text == "frame":
        return FRAME
    try:
        ips = int(text)
    except ValueError:
        raise TascondError(f"--ips must be a positive integer or 'frame', got {value!r}") from None
    if ips < 1:
        raise TascondError(f"--ips must be a positive integer or 'frame', got {value!r}")
    return ips


def ips_label(ips: int) -> int | str:
    """How ``ips`` is recorded in an archive's settings."""
    return "frame" if ips == FRAME else ips


@dataclass(frozen=True)
class CondenseConfig:
    """Everything ``tascond condense`` can set (the archive records it in its settings)."""

    split: int = 1
    ips: int = 8
    ratio: float = 0.5
    sampling: str = "fps"
    others: str = "borrow"
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
    method: str = "tascond"
    extra: dict = field(default_factory=dict)

    def check(self) -> None:
        if isinstance(self.ips, bool) or not isinstance(self.ips, int) or self.ips < 0:
            raise TascondError(f"--ips must be a positive integer or 'frame', got {self.ips!r}")
        if self.method not in METHODS:
            raise TascondError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method == "tca" and self.ips == FRAME:
            raise TascondError("tca decodes random codes per chunk; --ips frame would make every frame noise")
        if not (0 < self.ratio <= 1) or math.isnan(self.ratio):
            raise TascondError(f"--ratio must be in (0, 1], got {self.ratio}")
        if self.sampling not in SAMPLINGS:
            raise TascondError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        if self.others not in OTHERS:
            raise TascondError(f"--others must be one of {', '.join(OTHERS)}, got {self.others!r}")
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
    borrowing_videos: int = 0
    """Videos stored by their structure only, their segments reusing kept segments' codes (``--others borrow``)."""


def prepare(data: Path | str | Dataset, split: int, device: str = "cpu"):
    """Open ``data``'s training split (or take an open :class:`Dataset`); resolve ``device``."""
    from tascond_cli.device import resolve_device

    dataset = data if isinstance(data, Dataset) else open_dataset(data, split, parts=("train",))
    if not dataset.train:
        raise TascondError(f"{dataset.root}: split {split} has no training videos")
    return dataset, resolve_device(device)


def select_videos(train: list, ratio: float, sampling: str, seed: int) -> list[int]:
    """Indices of the kept training videos: diverse (``fps``) or ``random``, ``ratio`` of them."""
    from tascond_cli.condense import furthest_point_sampling, random_sampling

    if sampling == "fps":
        return furthest_point_sampling([v.transcript() for v in train], ratio)
    return random_sampling(len(train), ratio, seed)


def collect_segments(videos: list) -> tuple[list[np.ndarray], np.ndarray, list[int]]:
    """Every segment of ``videos`` as a (D, L) view of its memory-mapped features, its label, and the
    number of segments of each video."""
    segments, labels, per_video = [], [], []
    for video in videos:
        segs = video.segments()
        features = video.features()
        per_video.append(len(segs))
        for seg in segs:
            segments.append(features[:, seg.start : seg.end])
            labels.append(seg.label)
    return segments, np.asarray(labels, dtype=np.int64), per_video


def prior_config(config: CondenseConfig):
    """The generator a condense config trains (one code per frame: the paper's frame VAE)."""
    from tascond_cli.condense import PriorConfig

    frame = config.ips == FRAME
    return PriorConfig(
        latent=config.latent, hidden=config.hidden, ips=0 if frame else config.ips, chunk_input=not frame,
        steps=config.steps, batch=config.batch, seed=config.seed,
    )


def train_generator(dataset: Dataset, config: CondenseConfig, device=None, on_phase: PhaseCallback | None = None):
    """Train the generator of ``config`` on all of ``dataset``'s training videos (phase ``prior``).

    :func:`condense_dataset` calls this; pass its result back as ``prior=`` to make several archives
    (our method and the generator baselines) from one trained generator.
    """
    import torch

    from tascond_cli.condense import train_prior

    config.check()
    if device is None:
        _, device = prepare(dataset, config.split, config.device)
    report = on_phase or (lambda name, done, total: None)
    torch.manual_seed(config.seed)
    steps = config.steps
    return train_prior(
        dataset.train, dataset.num_classes, prior_config(config), device=device,
        on_step=lambda step, _stats: report("prior", step, steps) if step % 25 == 0 or step == steps else None,
    )


def base_settings(method: str, dataset: Dataset, split: int, ratio: float, sampling: str, seed: int) -> dict:
    """The settings every archive records, whatever made it."""
    return {
        "method": method,
        "dim": int(dataset.dim),
        "source": dataset.root.name,
        "split": split,
        "ratio": ratio,
        "sampling": sampling,
        "seed": seed,
        "train_videos": len(dataset.train),
    }


def condense_dataset(
    data: Path | str | Dataset,
    config: CondenseConfig = CondenseConfig(),
    on_phase: PhaseCallback | None = None,
    *,
    prior=None,
) -> CondenseResult:
    """Condense the training split of ``data`` into an :class:`Archive` (see the module docstring).

    ``config.method`` picks our method or one of the baselines that share its generator
    (:data:`METHODS`). ``prior``: a generator from :func:`train_generator` with the same settings,
    instead of training one (its shape is checked against the data).
    """
    from tascond_cli.condense import InvertConfig, decoder_state, invert_segments

    config.check()
    dataset, device = prepare(data, config.split, config.device)
    train = dataset.train
    report = on_phase or (lambda name, done, total: None)
    seconds: dict[str, float] = {}
    sampling = "random" if config.method == "random" else config.sampling

    t0 = time.perf_counter()
    keep = select_videos(train, config.ratio, sampling, config.seed)
    kept = [train[i] for i in keep]
    chosen = set(keep)
    others = [v for i, v in enumerate(train) if i not in chosen] if config.others == "borrow" else []
    seconds["sample"] = time.perf_counter() - t0
    report("sample", 1, 1)

    t0 = time.perf_counter()
    if prior is None:
        prior = train_generator(dataset, config, device, report)
        seconds["prior"] = time.perf_counter() - t0
    elif prior.decoder.dim != dataset.dim or prior.decoder.num_classes != dataset.num_classes:
        raise TascondError(
            f"the given generator decodes {prior.decoder.dim}-d features of {prior.decoder.num_classes} classes; "
            f"{dataset.root} has {dataset.dim}-d features and {dataset.num_classes} classes"
        )
    elif prior.decoder.latent != config.latent:
        raise TascondError(f"the given generator has {prior.decoder.latent}-d codes, not --latent {config.latent}")

    segments, labels, per_video = collect_segments(kept)
    other_segments, other_labels, other_per_video = collect_segments(others)
    lengths = np.array([s.shape[1] for s in segments], dtype=np.int64)
    other_lengths = np.array([s.shape[1] for s in other_segments], dtype=np.int64)
    sources = np.full(len(other_segments), -1, dtype=np.int64)
    if config.method != "tca":
        sources = borrow_sources(labels, lengths, other_labels, other_lengths)
    # segments of other videos whose action no kept segment shows get codes of their own
    own = np.flatnonzero(sources < 0)
    segments = segments + [other_segments[i] for i in own]
    labels = np.concatenate([labels, other_labels[own]])
    lengths = np.concatenate([lengths, other_lengths[own]])
    ips = MAX_SEGMENT_FRAMES if config.ips == FRAME else config.ips
    if config.method == "tca":
        codes = np.zeros((0, config.latent), dtype=np.float32)
        counts = np.zeros(len(segments), dtype=np.int64)
        error = float("nan")
    else:
        t0 = time.perf_counter()
        inv_cfg = InvertConfig(
            lr=config.invert_lr, max_iters=0 if config.method == "encoded" else config.invert_iters,
            patience=config.invert_patience, chunk_frames=config.invert_frames, batch_frames=config.batch_frames,
            seed=config.seed,
        )
        inversion = invert_segments(
            prior, segments, labels, ips, inv_cfg,
            on_batch=lambda info: report("invert", info["batch"], info["batches"]),
        )
        seconds["invert"] = time.perf_counter() - t0
        codes, counts, error = inversion.codes, np.asarray(inversion.counts, dtype=np.int64), float(inversion.error)

    dec_config, weights = decoder_state(prior)
    if config.residual and config.method != "tca":
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
    n_kept = int(sum(per_video))
    all_labels = np.concatenate([labels[:n_kept], other_labels]).astype(np.int32)
    all_lengths = np.concatenate([lengths[:n_kept], other_lengths])
    all_counts = np.concatenate([counts[:n_kept], np.zeros(len(other_segments), dtype=np.int64)])
    all_counts[n_kept + own] = counts[n_kept:]
    segment_sources = np.concatenate([np.full(n_kept, -1, dtype=np.int64), sources])
    settings = {
        **base_settings(config.method, dataset, config.split, config.ratio, sampling, config.seed),
        "others": config.others,
        "borrowing_segments": int((sources >= 0).sum()),
        "ips": ips_label(config.ips),
        "latent": config.latent,
        "hidden": config.hidden,
        "steps": config.steps,
        "batch": config.batch,
    }
    if config.method != "tca":
        settings.update({
            "invert_iters": 0 if config.method == "encoded" else config.invert_iters,
            "invert_patience": config.invert_patience,
            "invert_lr": config.invert_lr,
            "invert_frames": config.invert_frames,
            "residual": config.residual,
            "code_dtype": config.code_dtype,
            "reconstruction_error": round(error, 6),
        })
    settings.update({"weight_dtype": config.weight_dtype, **config.extra})
    archive = Archive(
        settings=settings,
        class_names=list(dataset.mapping.names),
        video_names=[v.name for v in kept + others],
        video_segments=offsets_from_counts(per_video + other_per_video),
        segment_labels=all_labels,
        segment_lengths=all_lengths,
        segment_codes=offsets_from_counts(all_counts),
        codes=codes.astype(np.float16 if config.code_dtype == "float16" else np.float32),
        decoder_kind="random" if config.method == "tca" else "generator",
        decoder_config=dec_config,
        decoder_weights=weights,
        segment_sources=segment_sources if (segment_sources >= 0).any() else None,
    )
    return CondenseResult(
        archive=archive,
        train_videos=len(train),
        kept_videos=len(kept),
        segments=len(all_lengths),
        frames=int(all_lengths.sum()),
        train_bytes=feature_bytes(dataset.train),
        error=error,
        seconds=seconds,
        borrowing_videos=len(others),
    )


def borrow_sources(labels: np.ndarray, lengths: np.ndarray, other_labels: np.ndarray,
                   other_lengths: np.ndarray) -> np.ndarray:
    """For each other segment, the kept segment whose codes it reuses, or -1 when none fits.

    The donor is a kept segment of the same action, the one nearest in length on a log scale (ties: the
    lowest index); -1 when no kept segment shows that action.
    """
    out = np.full(len(other_labels), -1, dtype=np.int64)
    log_len = np.log(np.maximum(lengths, 1).astype(np.float64))
    for action in np.unique(other_labels):
        donors = np.flatnonzero(labels == action)
        if donors.size == 0:
            continue
        mine = np.flatnonzero(other_labels == action)
        gap = np.abs(np.log(other_lengths[mine].astype(np.float64))[:, None] - log_len[donors][None, :])
        out[mine] = donors[np.argmin(gap, axis=1)]  # argmin: first (lowest index) of equal gaps
    return out


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

