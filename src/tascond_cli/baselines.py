"""The comparison methods, each writing the same ``.tcd`` archive as ``condense`` (``tascond baseline``).

Every baseline keeps the real action structure (each kept video's segments: labels, lengths) and
differs only in what it stores for the features (``../shared/method.md`` §4):

``mean``
    each segment's mean feature (``identity`` decoder, one code per segment), repeated over the segment;
``coreset``
    the real frame nearest (Euclidean) each segment's mean, repeated;
``fp16``
    every frame as float16 (``identity`` decoder, one code per frame), compressed;
``pca``
    every frame projected on the top ``pca_dim`` principal components of the kept frames, float16,
    with the projection stored (``linear`` decoder);
``blind``
    nothing at all (``zeros`` decoder): the floor a TAS model reaches from the structure alone;
``encoded``, ``random``, ``tca``
    share our generator and are made by :func:`tascond_cli.pipeline.condense_dataset`.

All read the memory-mapped features one video at a time. Nothing here prints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tascond_cli.archive import Archive, offsets_from_counts
from tascond_cli.data import Dataset, feature_bytes
from tascond_cli.errors import TascondError
from tascond_cli.pipeline import (
    CODE_DTYPES,
    SAMPLINGS,
    CondenseConfig,
    CondenseResult,
    PhaseCallback,
    base_settings,
    condense_dataset,
    prepare,
    select_videos,
)

__all__ = ["BASELINES", "GENERATOR_BASELINES", "BaselineConfig", "make_baseline"]

FEATURE_BASELINES = ("mean", "coreset", "fp16", "pca", "blind")
GENERATOR_BASELINES = ("encoded", "random", "tca")
BASELINES = ("mean", "coreset", "tca", "encoded", "random", "fp16", "pca", "blind")
"""Every method ``tascond baseline`` knows, in the order of the paper's table then ours."""

DEFAULT_RATIO = {"encoded": 0.5, "random": 0.5, "tca": 0.5}
"""Fraction of videos kept when not given: the generator baselines follow ``condense``'s default, the
others keep every video (as the paper's Mean and Coreset do)."""


@dataclass(frozen=True)
class BaselineConfig:
    """What ``tascond baseline`` can set. ``ratio=None``: the method's default (:data:`DEFAULT_RATIO`).

    ``code_dtype=None``: float32 for ``mean`` and ``coreset`` (they restore exact means and real frames),
    float16 for the rest. ``condense`` holds the generator's settings for ``encoded``, ``random``, ``tca``.
    """

    split: int = 1
    ratio: float | None = None
    sampling: str = "fps"
    code_dtype: str | None = None
    pca_dim: int = 64
    device: str = "auto"
    seed: int = 0
    condense: CondenseConfig = field(default_factory=CondenseConfig)

    def ratio_for(self, method: str) -> float:
        return self.ratio if self.ratio is not None else DEFAULT_RATIO.get(method, 1.0)

    def dtype_for(self, method: str) -> str:
        if self.code_dtype is not None:
            return self.code_dtype
        return "float32" if method in ("mean", "coreset") else "float16"

    def check(self, method: str) -> None:
        if method not in BASELINES:
            raise TascondError(f"unknown baseline {method!r}; choose one of {', '.join(BASELINES)}")
        ratio = self.ratio_for(method)
        if not 0 < ratio <= 1:
            raise TascondError(f"--ratio must be in (0, 1], got {ratio}")
        if self.sampling not in SAMPLINGS:
            raise TascondError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        if self.code_dtype is not None and self.code_dtype not in CODE_DTYPES:
            raise TascondError(f"--code-dtype must be one of {', '.join(CODE_DTYPES)}, got {self.code_dtype!r}")
        if method == "fp16" and self.code_dtype not in (None, "float16"):
            raise TascondError("fp16 stores float16 by definition; drop --code-dtype")
        if self.pca_dim < 1:
            raise TascondError(f"--pca-dim must be at least 1, got {self.pca_dim}")
        if self.seed < 0:
            raise TascondError(f"--seed must be >= 0, got {self.seed}")


def make_baseline(
    method: str,
    data: Path | str | Dataset,
    config: BaselineConfig = BaselineConfig(),
    on_phase: PhaseCallback | None = None,
    *,
    prior=None,
) -> CondenseResult:
    """Make baseline ``method``'s archive of ``data``'s training split (see the module docstring).

    ``prior``: for the generator baselines, a generator trained with ``config.condense``'s settings
    (:func:`tascond_cli.pipeline.train_generator`) instead of training one.
    """
    config.check(method)
    if method in GENERATOR_BASELINES:
        cc = replace(
            config.condense, split=config.split, ratio=config.ratio_for(method), sampling=config.sampling,
            device=config.device, seed=config.seed, method=method,
            code_dtype=config.code_dtype or config.condense.code_dtype,
        )
        return condense_dataset(data, cc, on_phase, prior=prior)
    dataset, _ = prepare(data, config.split, "cpu")
    report = on_phase or (lambda name, done, total: None)
    ratio = config.ratio_for(method)
    t0 = time.perf_counter()
    kept = [dataset.train[i] for i in select_videos(dataset.train, ratio, config.sampling, config.seed)]
    seconds = {"sample": time.perf_counter() - t0}
    report("sample", 1, 1)
    t0 = time.perf_counter()
    dtype = np.dtype(config.dtype_for(method))
    settings = base_settings(method, dataset, config.split, ratio, config.sampling, config.seed)
    weights: dict[str, np.ndarray] = {}
    if method == "pca":
        mean, components = _principal_components(kept, config.pca_dim, report)
        weights = {"components": components.astype(dtype), "mean": mean.astype(dtype)}
        settings["pca_dim"] = int(components.shape[0])
    labels, lengths, counts, per_video, codes = [], [], [], [], []
    sse, sum_x, sum_x2, n_frames = 0.0, np.zeros(dataset.dim), np.zeros(dataset.dim), 0
    for done, video in enumerate(kept, 1):
        segs = video.segments()
        per_video.append(len(segs))
        x = np.asarray(video.features(), dtype=np.float32)  # (D, T)
        starts = np.array([s.start for s in segs], dtype=np.int64)
        seg_len = np.array([s.end - s.start for s in segs], dtype=np.int64)
        labels.append(np.array([s.label for s in segs], dtype=np.int32))
        lengths.append(seg_len)
        if method in ("mean", "coreset"):
            means = np.add.reduceat(x.astype(np.float64), starts, axis=1) / seg_len  # (D, S)
            if method == "mean":
                code = means.T.astype(dtype)
            else:
                code = np.stack([_nearest_frame(x[:, s.start : s.end], means[:, i]) for i, s in enumerate(segs)])
                code = code.astype(dtype)
            counts.append(np.ones(len(segs), dtype=np.int64))
            restored = np.repeat(code.astype(np.float32), seg_len, axis=0).T
        elif method == "fp16":
            code = x.T.astype(np.float16)
            counts.append(seg_len)
            restored = code.astype(np.float32).T
        elif method == "pca":
            comp, mu = weights["components"].astype(np.float32), weights["mean"].astype(np.float32)
            code = ((x.T - mu) @ comp.T).astype(dtype)
            counts.append(seg_len)
            restored = (code.astype(np.float32) @ comp + mu).T
        else:  # blind
            code = np.zeros((0, dataset.dim), dtype=dtype)
            counts.append(np.zeros(len(segs), dtype=np.int64))
            restored = np.zeros_like(x)
        codes.append(code)
        xd = x.astype(np.float64)
        sse += float(np.square(xd - restored).sum())
        sum_x += xd.sum(1)
        sum_x2 += np.square(xd).sum(1)
        n_frames += x.shape[1]
        report("encode", done, len(kept))
    seconds["encode"] = time.perf_counter() - t0
    variance = float((sum_x2 - sum_x**2 / max(n_frames, 1)).sum())
    error = sse / variance if variance > 0 else 0.0
    code_dim = components.shape[0] if method == "pca" else dataset.dim
    all_codes = np.concatenate(codes) if codes else np.zeros((0, code_dim), dtype=dtype)
    if method != "blind":
        settings["code_dtype"] = str(dtype)
    settings["reconstruction_error"] = round(error, 6)
    archive = Archive(
        settings=settings,
        class_names=list(dataset.mapping.names),
        video_names=[v.name for v in kept],
        video_segments=offsets_from_counts(per_video),
        segment_labels=np.concatenate(labels),
        segment_lengths=np.concatenate(lengths),
        segment_codes=offsets_from_counts(np.concatenate(counts)),
        codes=all_codes,
        decoder_kind={"pca": "linear", "blind": "zeros"}.get(method, "identity"),
        decoder_config={"pca_dim": int(code_dim)} if method == "pca" else {},
        decoder_weights=weights,
    )
    return CondenseResult(
        archive=archive,
        train_videos=len(dataset.train),
        kept_videos=len(kept),
        segments=int(archive.num_segments),
        frames=n_frames,
        train_bytes=feature_bytes(dataset.train),
        error=error,
        seconds=seconds,
    )


def _nearest_frame(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The column of ``x`` (D, L) nearest ``mean`` (D,) in Euclidean distance (lowest index on ties)."""
    d = np.square(x.astype(np.float64) - mean[:, None]).sum(0)
    return x[:, int(np.argmin(d))]


def _principal_components(videos: list, k: int, report: PhaseCallback) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and the top ``min(k, D)`` principal directions (k, D) of the videos' frames.

    Accumulates the D x D scatter matrix in float64, one video at a time. Each direction's sign is
    fixed (largest-magnitude entry positive) so the result does not depend on the eigen-solver.
    """
    dim = int(videos[0].features().shape[0])
    s1, s2, n = np.zeros(dim), np.zeros((dim, dim)), 0
    for done, video in enumerate(videos, 1):
        x = np.asarray(video.features(), dtype=np.float64)  # (D, T)
        s1 += x.sum(1)
        s2 += x @ x.T
        n += x.shape[1]
        report("pca", done, len(videos))
    mean = s1 / n
    cov = s2 / n - np.outer(mean, mean)
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    order = np.argsort(values)[::-1][: min(k, dim)]
    comp = vectors[:, order].T  # (k, D)
    flip = np.sign(comp[np.arange(comp.shape[0]), np.abs(comp).argmax(1)])
    comp *= np.where(flip == 0, 1.0, flip)[:, None]
    return mean, comp
