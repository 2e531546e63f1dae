"""The flow of the methods that store features without a generator (``mean``, ``coreset``, ``fp16``,
``pca``, ``blind``).

Each keeps the real action structure (each kept video's segments: labels, lengths) and differs only
in what it stores for the features: a :class:`FeatureMethod` says how one video's features become
codes (:meth:`FeatureMethod.encode`). Videos are read one at a time from the memory-mapped files; the
reconstruction error restores each video with the archive's own decoder kind
(:func:`reconstruction_error`), exactly as ``tascond restore`` does. Nothing here prints.

Under ``torchrun`` (a process group up, :func:`tascond_cli.distributed.joined`) the kept videos are
dealt to the ranks (even frames per rank): each rank encodes its videos, their codes are gathered to
every rank as exact bytes (nothing pickled), so every rank builds the same archive, and each rank
measures the reconstruction error of its videos (sums all-reduced in float64). The codes of a video do
not depend on the number of ranks; what :meth:`FeatureMethod.fit` and :meth:`FeatureMethod.finish`
compute is up to the method (``pca`` and ``lowrank`` sum their scatter matrix over the ranks).
"""

from __future__ import annotations

import math
import time
from typing import ClassVar

import numpy as np

from tascond_cli.archive import Archive
from tascond_cli.archive.decoders import get_decoder_kind
from tascond_cli.chunks import offsets_from_counts
from tascond_cli.data import Dataset, feature_bytes
from tascond_cli.distributed import gather_arrays, joined, sum_arrays
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


class FeatureMethod(Method):
    """A method that encodes each kept video's features on its own (no generator)."""

    decoder_kind = "identity"
    phases = ("sample", "encode")
    records_code_dtype: ClassVar[bool] = True
    """Whether the settings record ``code_dtype`` (not when nothing is stored)."""

    def fit(self, videos: list, config: Config, report: PhaseCallback) -> tuple[dict[str, np.ndarray], dict]:
        """What the method learns from all kept videos before encoding them: the decoder's weights (at
        the code dtype) and its config (``pca``'s projection); also recorded in the settings."""
        return {}, {}

    def encode(self, x: np.ndarray, starts: np.ndarray, lengths: np.ndarray, dtype: np.dtype,
               weights: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Codes (N, d) at ``dtype`` of one video's features ``x`` (D, T) float32 whose segments start at
        ``starts`` and last ``lengths`` frames, and the number of codes of each segment."""
        raise NotImplementedError

    def recorded(self, config: Config) -> dict:
        """Settings of the method's own that the archive records (beyond its decoder config)."""
        return {}

    def encode_with(self, x: np.ndarray, starts: np.ndarray, lengths: np.ndarray, dtype: np.dtype,
                    weights: dict[str, np.ndarray], config: Config) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`encode`, for methods whose encoding also reads the config (``lowrank``)."""
        return self.encode(x, starts, lengths, dtype, weights)

    def finish(self, archive: Archive, videos: list, config: Config, report: PhaseCallback) -> Archive:
        """The archive once every video is encoded, with what only the encoded archive can tell (the
        ``lowrank`` noise model); ``videos`` are its videos, in order. Default: unchanged."""
        return archive

    def code_dim(self, dim: int, decoder_config: dict) -> int:
        return dim

    def build(self, dataset: Dataset, config: Config, *, prior=None,
              on_phase: PhaseCallback | None = None) -> CondenseResult:
        return build_from_features(self, dataset, config, report_to(on_phase))


def build_from_features(method: FeatureMethod, data, config: Config, report: PhaseCallback) -> CondenseResult:
    """Encode every kept video (phase ``encode``) and build the archive; ``config`` has the method's defaults."""
    dataset, kept, settings, (weights, decoder_config), timing = start_build(method, data, config, report)
    dtype = np.dtype(config.storage.code_dtype)
    labels, lengths, per_video, codes, counts = _encode_videos(method, kept, dtype, weights, config, report)
    code_dim = method.code_dim(dataset.dim, decoder_config)
    stacked = np.concatenate(codes) if codes else np.zeros((0, code_dim), dtype=dtype)
    return finish_build(method, dataset, kept, settings, (labels, lengths, per_video, counts), stacked,
                        (weights, decoder_config), config, report, timing)


def start_build(method: FeatureMethod, data, config: Config, report: PhaseCallback) -> tuple:
    """The training split, the kept videos (sampling, timed), the archive's settings and the method's fitted
    decoder ``(weights, config)``; and ``(phase seconds, the start of encode)`` for :func:`finish_build`."""
    dataset = open_train(data, config.split)
    strategy = config.sampling.strategy
    seconds: dict[str, float] = {}
    kept = [dataset.train[i] for i in sample(dataset, config, strategy, report, seconds)]
    t0 = time.perf_counter()
    settings = base_settings(method.name, dataset, config, strategy)
    weights, decoder_config = method.fit(kept, config, report)
    settings.update(decoder_config)
    settings.update(method.recorded(config))
    return dataset, kept, settings, (weights, decoder_config), (seconds, t0)


def finish_build(method: FeatureMethod, dataset, kept: list, settings: dict, structure: tuple, codes: np.ndarray,
                 decoder: tuple[dict, dict], config: Config, report: PhaseCallback,
                 timing: tuple[dict[str, float], float]) -> CondenseResult:
    """The archive of ``kept`` from its per-video ``structure`` (segment labels, lengths, segments per video,
    codes per segment) and ``codes`` (in memory or an ``np.memmap``), ``decoder`` (weights, config), then
    the method's :meth:`~FeatureMethod.finish` and the reconstruction error; ``timing`` (phase seconds, the
    start of ``encode``) gets the ``encode`` phase."""
    labels, lengths, per_video, counts = structure
    weights, decoder_config = decoder
    seconds, t0 = timing
    if method.records_code_dtype:
        settings["code_dtype"] = str(np.dtype(config.storage.code_dtype))
    archive = Archive(
        settings=settings,
        class_names=list(dataset.mapping.names),
        video_names=[v.name for v in kept],
        video_segments=offsets_from_counts(per_video),
        segment_labels=np.concatenate(labels),
        segment_lengths=np.concatenate(lengths),
        segment_codes=offsets_from_counts(np.concatenate(counts)),
        codes=codes,
        decoder_kind=method.decoder_kind,
        decoder_config=decoder_config,
        decoder_weights=weights,
    )
    archive = method.finish(archive, kept, config, report)
    error, n_frames, codes_error = reconstruction_error(archive, kept)
    settings["reconstruction_error"] = round(error, 6)
    if math.isfinite(codes_error):
        settings["codes_error"] = round(codes_error, 6)
    seconds["encode"] = time.perf_counter() - t0
    return CondenseResult(
        archive=archive, train_videos=len(dataset.train), kept_videos=len(kept),
        segments=int(archive.num_segments), frames=n_frames, train_bytes=feature_bytes(dataset.train),
        error=error, seconds=seconds, codes_error=codes_error,
    )


def my_videos(videos: list) -> list[int]:
    """The indices of ``videos`` this process works on: all of them with one process; under ``torchrun``
    its share, the videos dealt so that every rank gets about as many frames."""
    return joined().share([len(v.labels) for v in videos])


def segment_structure(videos: list) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[int]]:
    """Per video: segment labels (int32), lengths and starts (int64); and segments per video."""
    labels, lengths, starts, per_video = [], [], [], []
    for video in videos:
        segs = video.segments()
        per_video.append(len(segs))
        labels.append(np.array([s.label for s in segs], dtype=np.int32))
        lengths.append(np.array([s.end - s.start for s in segs], dtype=np.int64))
        starts.append(np.array([s.start for s in segs], dtype=np.int64))
    return labels, lengths, starts, per_video


def _encode_videos(method: FeatureMethod, kept: list, dtype: np.dtype, weights: dict[str, np.ndarray],
                   config: Config, report: PhaseCallback) -> tuple[list, list, list, list, list]:
    """Per kept video: segment labels, segment lengths, segment count, codes and codes per segment (phase
    ``encode``). Under ``torchrun`` each rank encodes its share and every rank gets all the codes."""
    labels, lengths, starts, per_video = segment_structure(kept)  # every video's: labels only
    codes, counts = {}, {}
    mine = my_videos(kept)
    for done, i in enumerate(mine, 1):
        x = np.asarray(kept[i].features(), dtype=np.float32)  # (D, T)
        codes[i], counts[i] = method.encode_with(x, starts[i], lengths[i], dtype, weights, config)
        report("encode", done, len(mine))
    return labels, lengths, per_video, gather_arrays(codes, len(kept)), gather_arrays(counts, len(kept))


ERROR_BLOCK = 4096
"""Frames compared at once by :func:`reconstruction_error` (its float64 temporaries are (D, block))."""


def _column_sums(x, restored: np.ndarray, sums: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """``sum ||restored - x||^2`` and (``sums``; else zeros) ``sum x`` and ``sum x^2`` per channel of a video
    (D, T), in float64, over blocks of :data:`ERROR_BLOCK` frames (``x`` as encoded: float32, then float64)."""
    sse, s1, s2 = 0.0, np.zeros(x.shape[0]), np.zeros(x.shape[0])
    for start in range(0, x.shape[1], ERROR_BLOCK):
        xb = np.asarray(x[:, start : start + ERROR_BLOCK], dtype=np.float32).astype(np.float64)
        sse += float(np.square(xb - restored[:, start : start + ERROR_BLOCK]).sum())
        if sums:
            s1 += xb.sum(1)
            s2 += np.square(xb).sum(1)
    return sse, s1, s2


def reconstruction_error(archive: Archive, videos: list) -> tuple[float, int, float]:
    """The fraction of variance unexplained when the archive's decoder kind restores ``videos`` (its
    videos, in order, read again from their memory-mapped files), the number of frames compared, and
    the same fraction for the codes alone (a decoder with a ``smooth`` view, ``lowrank``: without the
    noise and floor that restore adds on purpose; NaN for the others).

    ``sum ||restored - x||^2 / sum ||x - mean||^2`` over all frames, ``mean`` per channel; 0 when the
    frames do not vary.
    """
    decoder = get_decoder_kind(archive.decoder_kind).bind(archive)
    smooth = getattr(decoder, "smooth", None)
    sse, sse_codes, sum_x, sum_x2, n_frames = 0.0, 0.0, np.zeros(archive.dim), np.zeros(archive.dim), 0
    for i in my_videos(videos):  # under torchrun: this rank's videos
        x = videos[i].features()  # (D, T), memory-mapped: read a block of frames at a time
        if smooth is None:
            err, s1, s2 = _column_sums(x, decoder.features(i))
        else:  # the codes' restore (with the sums of x), then restore's, which adds its noise to that array
            codes_only = smooth(i)
            err_codes, s1, s2 = _column_sums(x, codes_only)
            sse_codes += err_codes
            err = _column_sums(x, decoder.features(i, smooth=codes_only), sums=False)[0]
        sse, sum_x, sum_x2, n_frames = sse + err, sum_x + s1, sum_x2 + s2, n_frames + x.shape[1]
    sse, sse_codes, sum_x, sum_x2, n_frames = sum_arrays(sse, sse_codes, sum_x, sum_x2, n_frames)
    n_frames = int(n_frames)
    variance = float((sum_x2 - sum_x**2 / max(n_frames, 1)).sum())
    codes = (sse_codes / variance if variance > 0 else 0.0) if smooth is not None else math.nan
    return (sse / variance if variance > 0 else 0.0), n_frames, codes
