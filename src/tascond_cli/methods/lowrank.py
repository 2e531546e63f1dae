"""``lowrank``: every segment as a short sequence of codes on the training frames' top principal
directions, one code per ``lowrank.stride`` frames, interpolated over time at restore; optionally with
seeded noise in the directions the basis leaves out (the ``lowrank`` decoder, docs/format.md 6.7).

The codes of a segment are the least-squares fit of its projected frames by the decoder's own
interpolation (so ``restore`` reproduces the fit, not a blur of it). The noise model is the residual
model of docs/format.md 6.5: the per-channel size and lag-1 correlation of what the codes miss,
measured after encoding; with ``noise = "complement"`` restore keeps only its part outside the basis,
so a model trained on the restore sees variation in every direction of the feature space, as it will
on real features, without noise over the content the codes keep. Why: docs/method.md, "The lowrank codec".
"""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np

from tascond_cli.archive import Archive
from tascond_cli.archive.decoders.generator import RESIDUAL_RHO, RESIDUAL_STD
from tascond_cli.archive.decoders.lowrank import BASIS_RHO, BASIS_STD, CODE_SCALE, FREQUENCIES, BoundLowRank
from tascond_cli.chunks import frame_code_index, frame_interpolation
from tascond_cli.distributed import sum_arrays
from tascond_cli.methods._features import FeatureMethod, my_videos
from tascond_cli.methods.pca import principal_components

MAX_RHO = 0.99
"""The residual model's lag-1 correlation is stored at most this (docs/format.md 6.5)."""


def codes_per_chunking(lengths: np.ndarray, stride: float) -> np.ndarray:
    """Codes of each segment: ``round(L / stride)``, at least 1 and at most ``L`` (int64)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.clip(np.rint(lengths / float(stride)).astype(np.int64), 1, lengths)


def fit_codes(z: np.ndarray, lengths: np.ndarray, counts: np.ndarray, interp: str) -> np.ndarray:
    """Codes ``(sum(counts), d)`` float64 that best restore the projected frames ``z`` ``(T, d)``.

    ``"step"``: each chunk's mean. ``"linear"``: per segment, the least-squares solution of
    ``B @ codes = z`` where ``B`` ``(L, n)`` holds the interpolation weights of
    :func:`~tascond_cli.chunks.frame_interpolation` (a tiny ridge keeps it well posed).
    """
    if interp == "step":
        rows = frame_code_index(lengths, counts)
        total = int(np.sum(counts))
        sums = np.zeros((total, z.shape[1]))
        np.add.at(sums, rows, z)
        return sums / np.bincount(rows, minlength=total)[:, None]
    row_a, row_b, w = frame_interpolation(lengths, counts)
    out, start, row = [], 0, 0
    for length, n in zip(lengths.tolist(), counts.tolist()):
        sl = slice(start, start + length)
        a, b, wt = row_a[sl] - row, row_b[sl] - row, w[sl]
        gram = np.zeros((n, n))
        np.add.at(gram, (a, a), (1 - wt) ** 2)
        np.add.at(gram, (b, b), wt**2)
        np.add.at(gram, (a, b), (1 - wt) * wt)
        np.add.at(gram, (b, a), (1 - wt) * wt)
        rhs = np.zeros((n, z.shape[1]))
        np.add.at(rhs, a, (1 - wt)[:, None] * z[sl])
        np.add.at(rhs, b, wt[:, None] * z[sl])
        gram[np.diag_indices(n)] += 1e-9
        out.append(np.linalg.solve(gram, rhs))
        start, row = start + length, row + n
    return np.concatenate(out)


def dct_amplitudes(z: np.ndarray) -> np.ndarray:
    """``(L, K)``: the amplitude of every DCT-II frequency ``f = 0 .. L-1`` of ``z`` ``(L, K)`` on the
    decoder's cosines (:func:`~tascond_cli.archive.decoders.lowrank.cosine_basis`, orthogonal with squared
    norm ``L``): ``a_f = z.T @ psi_f / L`` (the mean for ``f = 0``), by one FFT of length ``2L``."""
    length = z.shape[0]
    spectrum = np.fft.rfft(z, n=2 * length, axis=0)[:length]  # sum_t z_t exp(-i pi t f / L)
    shift = np.exp(-1j * np.pi * np.arange(length) / (2 * length))[:, None]
    amp = (spectrum * shift).real / length
    amp[1:] *= np.sqrt(2.0)
    return amp


def fit_dct(z: np.ndarray, lengths: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment of ``n`` codes: its mean (frequency 0) and the ``n - 1`` other DCT-II frequencies whose
    amplitudes carry the most energy (summed over dimensions; ties to the lower frequency), in increasing
    order. Returns the codes ``(sum(counts), K)`` float64 (the exact least-squares fit: the cosines are
    orthogonal) and their frequencies (int64)."""
    codes, freqs, start = [], [], 0
    for length, n in zip(lengths.tolist(), counts.tolist()):
        amp = dct_amplitudes(z[start : start + length])
        energy = np.square(amp).sum(axis=1)
        rest = 1 + np.argsort(-energy[1:], kind="stable")[: n - 1]
        keep = np.sort(np.concatenate([[0], rest])).astype(np.int64)
        codes.append(amp[keep])
        freqs.append(keep)
        start += length
    return np.concatenate(codes), np.concatenate(freqs)


def quantize(codes: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes and the float32 scale per dimension such that ``codes ~= int8 * scale``, rounding to
    nearest. The scale is ``step`` times the dimension's standard deviation over all codes, or
    ``max |code| / 127`` where that is larger (nothing is clipped); 1 for an all-zero dimension.

    A step of a quarter standard deviation costs about 0.5% of the codes' variance, and zstd then stores
    the codes in about 4 bits each (the entropy of a Gaussian at that step), half of plain int8's.
    """
    codes = np.asarray(codes, dtype=np.float32)  # (N, d)
    if not codes.shape[0]:
        return codes.astype(np.int8), np.ones(codes.shape[1], np.float32)
    peak = np.abs(codes).max(axis=0).astype(np.float64)
    scale = np.maximum(step * codes.astype(np.float64).std(axis=0), peak / 127.0)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return np.clip(np.rint(codes / scale), -127, 127).astype(np.int8), scale


class LowRank(FeatureMethod):
    name = "lowrank"
    summary = "codes on the training frames' top principal directions, one per few frames, interpolated"
    stores = "`round(L / stride)` codes per segment on `dim` principal directions; noise sized along and outside them"
    decoder_kind = "lowrank"
    default_code_dtype = "int8"
    code_dtypes = ("int8", "float16", "float32")
    phases = ("sample", "pca", "encode", "residual")

    def recorded(self, config):
        return {"lowrank": asdict(config.lowrank)}

    def fit(self, videos, config, report):
        lr = config.lowrank
        dtype = np.dtype(config.storage.weight_dtype)
        mean, components = principal_components(videos, lr.dim, report, config.device)
        floor = None
        if lr.floor == "zero" or (lr.floor == "auto" and _non_negative(videos)):
            floor = 0
        decoder_config = {"code_dim": int(components.shape[0]), "interp": lr.interp, "floor": floor}
        return {"components": components.astype(dtype), "mean": mean.astype(dtype)}, decoder_config

    def encode_with(self, x, starts, lengths, dtype, weights, config):
        comp = weights["components"].astype(np.float64)
        mu = weights["mean"].astype(np.float64)
        z = (x.T.astype(np.float64) - mu) @ comp.T  # (T, d)
        counts = codes_per_chunking(lengths, config.lowrank.stride)
        if config.lowrank.interp == "dct":  # the frequencies ride along as a last column, split off in finish
            codes, freqs = fit_dct(z, lengths, counts)
            return np.concatenate([codes, freqs[:, None]], axis=1), counts
        codes = fit_codes(z, lengths, counts, config.lowrank.interp)
        return codes.astype(np.float32 if dtype == np.int8 else dtype), counts  # int8: quantized in finish

    def code_dim(self, dim, decoder_config):
        return decoder_config["code_dim"]

    def finish(self, archive: Archive, videos: list, config, report) -> Archive:
        """Quantize int8 codes (a scale per dimension, over the whole archive), then add the residual model
        (``lowrank.noise`` not ``"none"``), measured on every kept video as restore decodes it."""
        if config.lowrank.interp == "dct":
            width = archive.decoder_config["code_dim"]
            with_freqs = archive.codes.shape[1] == width + 1  # (no videos: no column to split)
            freqs = archive.codes[:, -1].astype(np.int64) if with_freqs else np.zeros(0, np.int64)
            kind = np.uint16 if freqs.size == 0 or freqs.max() < 2**16 else np.int32
            codes = archive.codes[:, :width]
            dtype = np.float32 if config.storage.code_dtype == "int8" else np.dtype(config.storage.code_dtype)
            archive = replace(archive, codes=codes.astype(dtype),
                              decoder_weights=dict(archive.decoder_weights, **{FREQUENCIES: freqs.astype(kind)}))
        if config.storage.code_dtype == "int8":
            codes, scale = quantize(archive.codes, config.lowrank.step)
            weights = dict(archive.decoder_weights, **{CODE_SCALE: scale})
            archive = replace(archive, codes=codes, decoder_weights=weights)
        if config.lowrank.noise == "none":
            return archive
        bound = BoundLowRank(archive)
        comp = bound.components if config.lowrank.noise in ("complement", "split") else None  # (d, D)
        outside, inside = _Moments(archive.dim), _Moments(archive.decoder_config["code_dim"])
        mine = my_videos(videos)  # under torchrun: this rank's share, summed below
        for done, i in enumerate(mine, 1):
            r = np.asarray(videos[i].features(), dtype=np.float32) - bound.smooth(i)  # (D, T)
            if comp is not None:
                z = comp @ r  # (d, T): what the codes miss along each direction
                r -= comp.T @ z
                inside.add(z)
            outside.add(r)
            report("residual", done, len(mine))
        outside.reduce()
        inside.reduce()
        config_out = dict(archive.decoder_config, **{RESIDUAL_RHO: outside.rho()})
        dtype = archive.decoder_weights["mean"].dtype
        weights = dict(archive.decoder_weights, **{RESIDUAL_STD: outside.std().astype(dtype)})
        if comp is not None:
            config_out["residual_space"] = config.lowrank.noise
        if config.lowrank.noise == "split":
            config_out[BASIS_RHO] = inside.rho()
            weights[BASIS_STD] = inside.std().astype(dtype)
        return replace(archive, decoder_config=config_out, decoder_weights=weights)


def _non_negative(videos: list) -> bool:
    """Whether every feature of every video is ``>= 0`` (under ``torchrun``: each rank checks its share)."""
    negative = sum(float(np.min(videos[i].features())) < 0 for i in my_videos(videos))
    return sum_arrays(float(negative))[0] == 0


class _Moments:
    """Running per-row second moments of residuals ``(rows, T)``, video by video: each row's standard
    deviation and the pooled lag-1 correlation over time (within videos), the residual model's fields."""

    def __init__(self, rows: int) -> None:
        self.sq, self.lag, self.norm, self.frames = np.zeros(rows), 0.0, 0.0, 0

    def add(self, r: np.ndarray) -> None:
        r = r.astype(np.float64)
        self.sq += np.square(r).sum(1)
        self.lag += float((r[:, 1:] * r[:, :-1]).sum())
        self.norm += float(np.square(r[:, :-1]).sum())
        self.frames += r.shape[1]

    def reduce(self) -> None:
        """Under ``torchrun``: the sums over every rank's videos (float64 all-reduce; one process: as is)."""
        sums = sum_arrays(self.sq, np.array([self.lag, self.norm, self.frames], dtype=np.float64))
        self.sq = np.asarray(sums[0])
        self.lag, self.norm, self.frames = (float(v) for v in np.asarray(sums[1]))

    def std(self) -> np.ndarray:
        return np.sqrt(self.sq / max(self.frames, 1))

    def rho(self) -> float:
        """In ``[0, MAX_RHO]``, rounded to 6 decimals (what the archive stores)."""
        return round(min(max(self.lag / self.norm, 0.0), MAX_RHO), 6) if self.norm > 0 else 0.0


METHOD = LowRank()

__all__ = ["LowRank", "METHOD", "codes_per_chunking", "dct_amplitudes", "fit_codes", "fit_dct", "quantize"]
