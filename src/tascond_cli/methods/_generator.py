"""The flow of the methods that share the generator (``tascond``, ``encoded``, ``random``, ``tca``).

1. **sample**: furthest-point sampling of the training videos by normalised edit distance between
   transcripts, down to ``ratio`` of them (or a random subset);
2. **prior**: the conditional generator, trained on frames of *all* training videos (memory-mapped,
   in mini-batches) for ``generator.steps`` steps;
3. **invert**: with the decoder frozen, ``min(ips, L)`` codes per segment of the kept videos (``ips =
   None``: one per frame, with the paper's frame VAE as generator), fitted from the encoder's guess
   until the reconstruction error stops improving;
4. the archive: settings, mapping, kept videos' action order and segment lengths, the codes and the
   decoder's weights as plain arrays. With ``others="borrow"`` the videos sampling did not keep are
   stored by their structure, each of their segments reusing the codes of a kept segment
   (:func:`borrow_sources`). docs/method.md describes the method.

A method changes this flow through three class attributes of :class:`GeneratorMethod`. Nothing here
prints; the same dataset, settings and seed give the same archive, byte for byte (on CPU).

Under ``torchrun`` (a process group up, :mod:`tascond_cli.distributed`) the ranks train the generator
together and share the inversion and the residual model; every rank ends with the same archive (the
caller has rank 0 write it). Same data, settings, seed and number of ranks: the same archive.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tascond_cli.archive import Archive
from tascond_cli.archive.decoders.generator import RESIDUAL_RHO, RESIDUAL_STD
from tascond_cli.chunks import offsets_from_counts, segment_batches
from tascond_cli.data import Dataset, feature_bytes
from tascond_cli.distributed import joined, sum_arrays
from tascond_cli.errors import TascondError
from tascond_cli.methods._base import (
    CondenseResult,
    Method,
    PhaseCallback,
    base_settings,
    open_train,
    report_to,
    sample,
)
from tascond_cli.methods.config import Config


class GeneratorMethod(Method):
    """A method built on the trained generator; subclasses differ only in the three hooks below."""

    needs_generator = True
    default_ratio = 0.5
    decoder_kind = "generator"
    phases = ("sample", "prior", "invert")
    stores_codes: ClassVar[bool] = True
    """False: no codes at all (and no borrowing); the decoder draws them (``tca``)."""
    inverts: ClassVar[bool] = True
    """False: the encoder's guess per chunk, no inversion iterations (``encoded``)."""
    sampling: ClassVar[str | None] = None
    """A sampling strategy that overrides the config's (``random``)."""

    def strategy(self, config: Config) -> str:
        return self.sampling or config.sampling.strategy

    def build(self, dataset: Dataset, config: Config, *, prior=None,
              on_phase: PhaseCallback | None = None) -> CondenseResult:
        return build_with_generator(self, dataset, config, prior, report_to(on_phase))


def ips_label(ips: int | None) -> int | str:
    """How ``ips`` is recorded in an archive's settings (``"frame"``: one code per frame)."""
    return "frame" if ips is None else ips


def train_generator(dataset: Dataset, config: Config = Config(), device=None,
                    on_phase: PhaseCallback | None = None):
    """Train the generator of ``config`` on all of ``dataset``'s training videos (phase ``prior``).

    Every generator method calls this; pass its result back as ``prior=`` to make several archives
    (``tascond`` and the generator baselines) from one trained generator. Leaves torch's global RNG alone.
    Under ``torchrun`` the ranks train it together (:func:`~tascond_cli.condense.train_prior`), each on its
    share of the videos, and each ends with the same generator.
    """
    from tascond_cli.condense import train_prior
    from tascond_cli.device import resolve_device

    config.check()
    ranks = joined().size
    if ranks > len(dataset.train):
        raise TascondError(f"{dataset.root}: {ranks} processes need at least {ranks} training videos to share "
                           f"(split {config.split} has {len(dataset.train)}); start fewer")
    if device is None:
        device = resolve_device(config.device)
    report = report_to(on_phase)
    steps = config.generator.steps
    return train_prior(
        dataset.train, dataset.num_classes, config.generator.prior(config.seed), device=device,
        on_step=lambda step, _stats: report("prior", step, steps) if step % 25 == 0 or step == steps else None,
    )


def _check_prior(prior, dataset: Dataset, config: Config) -> None:
    if prior.decoder.dim != dataset.dim or prior.decoder.num_classes != dataset.num_classes:
        raise TascondError(
            f"the given generator decodes {prior.decoder.dim}-d features of {prior.decoder.num_classes} classes; "
            f"{dataset.root} has {dataset.dim}-d features and {dataset.num_classes} classes"
        )
    if prior.decoder.latent != config.generator.latent:
        raise TascondError(
            f"the given generator has {prior.decoder.latent}-d codes, not generator.latent {config.generator.latent}"
        )


class SegmentViews(Sequence):
    """Segments of videos' features, each mapped only while it is used.

    Holds ``(video, start, stop)`` per segment; item ``i`` is a (D, L) view of segment ``i``'s frames,
    memory-mapped when it is asked for and unmapped once the caller drops it. A list of views would keep
    every video's file mapped for as long as the list lives (through inversion and the residual model),
    and every page read through it resident: memory that grows with the kept videos. Slices are
    :class:`SegmentViews` too, so a batch maps only its own segments.
    """

    def __init__(self, refs: list[tuple[Any, int, int]]) -> None:
        self.refs = refs

    @property
    def lengths(self) -> np.ndarray:
        """(S,) int64 frames of each segment (no file is opened)."""
        return np.array([stop - start for _, start, stop in self.refs], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return SegmentViews(self.refs[i])
        video, start, stop = self.refs[i]
        return video.features()[:, start:stop]


def collect_segments(videos: list) -> tuple[SegmentViews, np.ndarray, list[int]]:
    """Every segment of ``videos`` (a :class:`SegmentViews`: each a (D, L) view of its memory-mapped
    features, mapped when used), its label, and the number of segments of each video."""
    refs, labels, per_video = [], [], []
    for video in videos:
        segs = video.segments()
        per_video.append(len(segs))
        for seg in segs:
            refs.append((video, int(seg.start), int(seg.end)))
            labels.append(seg.label)
    return SegmentViews(refs), np.asarray(labels, dtype=np.int64), per_video


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


@dataclass
class _Layout:
    """The segments that get codes (the kept videos', then other videos' segments no kept segment can
    lend codes to) and the structure of the other videos."""

    segments: SegmentViews
    labels: np.ndarray
    lengths: np.ndarray
    per_video: list[int]
    other_labels: np.ndarray
    other_lengths: np.ndarray
    other_per_video: list[int]
    sources: np.ndarray
    """Per other segment: the kept segment it borrows from, or -1 (it owns codes)."""

    @property
    def own(self) -> np.ndarray:
        return np.flatnonzero(self.sources < 0)


def _layout(kept: list, others: list, borrow: bool) -> _Layout:
    segments, labels, per_video = collect_segments(kept)
    other_segments, other_labels, other_per_video = collect_segments(others)
    lengths, other_lengths = segments.lengths, other_segments.lengths
    sources = np.full(len(other_segments), -1, dtype=np.int64)
    if borrow:
        sources = borrow_sources(labels, lengths, other_labels, other_lengths)
    # segments of other videos whose action no kept segment shows get codes of their own
    own = np.flatnonzero(sources < 0)
    return _Layout(
        segments=SegmentViews(segments.refs + [other_segments.refs[i] for i in own]),
        labels=np.concatenate([labels, other_labels[own]]),
        lengths=np.concatenate([lengths, other_lengths[own]]),
        per_video=per_video, other_labels=other_labels, other_lengths=other_lengths,
        other_per_video=other_per_video, sources=sources,
    )


def _fit_codes(method: GeneratorMethod, prior, layout: _Layout, config: Config, report: PhaseCallback,
               seconds: dict[str, float]):
    """Codes (N, d), codes per segment and the reconstruction error (phase ``invert``)."""
    from tascond_cli.condense import invert_segments

    if not method.stores_codes:
        counts = np.zeros(len(layout.segments), dtype=np.int64)
        return np.zeros((0, config.generator.latent), dtype=np.float32), counts, float("nan")
    t0 = time.perf_counter()
    inversion = invert_segments(
        prior, layout.segments, layout.labels, config.generator.ips, config.inversion.engine(config.seed, _iters(method, config)),
        on_batch=lambda info: report("invert", info["batch"], info["batches"]),
    )
    seconds["invert"] = time.perf_counter() - t0
    return inversion.codes, np.asarray(inversion.counts, dtype=np.int64), float(inversion.error)


def _iters(method: GeneratorMethod, config: Config) -> int:
    return config.inversion.iters if method.inverts else 0


def _decoder(method: GeneratorMethod, prior, layout: _Layout, codes, counts, config: Config,
             seconds: dict[str, float]) -> tuple[dict, dict]:
    """The decoder's config and weights (at ``storage.weight_dtype``), with the residual model if asked."""
    from tascond_cli.condense import decoder_state

    dec_config, weights = decoder_state(prior)
    if config.storage.residual and method.stores_codes:
        t0 = time.perf_counter()
        std, rho = residual_model(prior.decoder, layout.segments, layout.labels, layout.lengths, codes, counts,
                                  config.inversion.batch_frames)
        weights[RESIDUAL_STD] = std
        dec_config[RESIDUAL_RHO] = round(rho, 6)
        seconds["residual"] = time.perf_counter() - t0
    wdt = np.float16 if config.storage.weight_dtype == "float16" else np.float32
    weights = {
        k: (np.asarray(v, dtype=wdt) if np.asarray(v).dtype.kind == "f" else np.asarray(v))
        for k, v in weights.items()
    }
    return dec_config, weights


def _settings(method: GeneratorMethod, dataset: Dataset, config: Config, layout: _Layout, error: float) -> dict:
    g = config.generator
    settings = {
        **base_settings(method.name, dataset, config, method.strategy(config)),
        "others": config.sampling.others,
        "borrowing_segments": int((layout.sources >= 0).sum()),
        "ips": ips_label(g.ips),
        "latent": g.latent,
        "hidden": g.hidden,
        "steps": g.steps,
        "batch": g.batch,
    }
    if method.stores_codes:
        settings.update({
            "invert_iters": _iters(method, config),
            "invert_patience": config.inversion.patience,
            "invert_lr": config.inversion.lr,
            "invert_frames": config.inversion.frames,
            "residual": config.storage.residual,
            "code_dtype": config.storage.code_dtype,
            "reconstruction_error": round(error, 6),
        })
    settings["weight_dtype"] = config.storage.weight_dtype
    return settings


def build_with_generator(method: GeneratorMethod, data, config: Config, prior, report: PhaseCallback) -> CondenseResult:
    """Condense with the generator (see the module docstring); ``config`` has the method's defaults."""
    from tascond_cli.device import resolve_device

    dataset = open_train(data, config.split)
    device = resolve_device(config.device)
    seconds: dict[str, float] = {}
    keep = sample(dataset, config, method.strategy(config), report, seconds)
    kept = [dataset.train[i] for i in keep]
    chosen = set(keep)
    borrow = config.sampling.others == "borrow"
    others = [v for i, v in enumerate(dataset.train) if i not in chosen] if borrow else []
    t0 = time.perf_counter()
    if prior is None:
        prior = train_generator(dataset, config, device, report)
        seconds["prior"] = time.perf_counter() - t0
    else:
        _check_prior(prior, dataset, config)
    layout = _layout(kept, others, borrow=method.stores_codes)
    codes, counts, error = _fit_codes(method, prior, layout, config, report, seconds)
    dec_config, weights = _decoder(method, prior, layout, codes, counts, config, seconds)
    n_kept = int(sum(layout.per_video))
    own, n_other = layout.own, len(layout.other_labels)
    all_lengths = np.concatenate([layout.lengths[:n_kept], layout.other_lengths])
    all_counts = np.concatenate([counts[:n_kept], np.zeros(n_other, dtype=np.int64)])
    all_counts[n_kept + own] = counts[n_kept:]
    segment_sources = np.concatenate([np.full(n_kept, -1, dtype=np.int64), layout.sources])
    archive = Archive(
        settings=_settings(method, dataset, config, layout, error),
        class_names=list(dataset.mapping.names),
        video_names=[v.name for v in kept + others],
        video_segments=offsets_from_counts(layout.per_video + layout.other_per_video),
        segment_labels=np.concatenate([layout.labels[:n_kept], layout.other_labels]).astype(np.int32),
        segment_lengths=all_lengths,
        segment_codes=offsets_from_counts(all_counts),
        codes=codes.astype(np.float16 if config.storage.code_dtype == "float16" else np.float32),
        decoder_kind=method.decoder_kind,
        decoder_config=dec_config,
        decoder_weights=weights,
        segment_sources=segment_sources if (segment_sources >= 0).any() else None,
    )
    return CondenseResult(
        archive=archive, train_videos=len(dataset.train), kept_videos=len(kept), segments=len(all_lengths),
        frames=int(all_lengths.sum()), train_bytes=feature_bytes(dataset.train), error=error, seconds=seconds,
        borrowing_videos=len(others),
    )


def residual_model(decoder, segments, labels, lengths, codes, counts, batch_frames: int) -> tuple[np.ndarray, float]:
    """Per-channel std (D,) of what the codes do not explain, and its lag-1 autocorrelation in time.

    Decodes the segments from their codes, segment batch by segment batch, and compares them with
    the real frames (which are read again from the memory-mapped files). Under ``torchrun`` each rank
    takes its share of the batches and the sums are all-reduced (float64; one process sums as ever).
    """
    from tascond_cli.condense import decode_segments

    counts = np.asarray(counts, dtype=np.int64)
    first = offsets_from_counts(counts)
    labels = np.asarray(labels, dtype=np.int64)
    d = decoder.dim
    s1, s2 = np.zeros(d), np.zeros(d)
    lag, n = 0.0, 0
    batches = segment_batches(lengths, batch_frames)
    for start, stop in (batches[i] for i in joined().share([int(lengths[a:b].sum()) for a, b in batches])):
        restored = decode_segments(
            decoder, labels[start:stop], lengths[start:stop], codes[first[start] : first[stop]],
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
    s1, s2, lag, n = sum_arrays(s1, s2, lag, n)
    mean = s1 / max(n, 1)
    var = np.maximum(s2 / max(n, 1) - mean**2, 0.0)
    total = float(var.sum()) * n
    rho = lag / total if total > 0 else 0.0
    return np.sqrt(var).astype(np.float32), float(min(max(rho, 0.0), 0.99))
