"""The ``lowrank`` decoder (format 1.2): codes on a low-rank basis, interpolated over time, with an
optional floor and residual noise (docs/format.md, section 6.7).

Frame ``f`` of a video is ``z_f @ components + mean``, where ``z_f`` is its chunk's code (``interp``
``"step"``) or the linear interpolation between the codes of the two chunks whose centres surround it
(``"linear"``, :func:`tascond_cli.chunks.frame_interpolation`). The residual model of section 6.5 (weight
``residual.std``, config ``residual_rho``) may follow, drawn from the same stream, and with config
``residual_space: "complement"`` projected off the basis (``e - components.T @ (components @ e)``); then
the features are clamped from below at ``floor`` when the config gives one (non-negative features such as
I3D's: 0).

Checking, reading and binding do not import torch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tascond_cli.archive.constants import P_DECODER_CONFIG, P_DECODER_WEIGHTS
from tascond_cli.archive.decoders.base import BoundDecoder, DecoderKind, code_magnitudes, linear_bound
from tascond_cli.archive.decoders.generator import RESIDUAL_STD, ar1_noise, split_residual
from tascond_cli.archive.model import Archive, ArchiveError
from tascond_cli.chunks import frame_interpolation

__all__ = ["BASIS_RHO", "BASIS_STD", "BoundLowRank", "CODE_SCALE", "FREQUENCIES", "INTERPOLATIONS", "LOWRANK",
           "LowRankKind", "RESIDUAL_SPACES", "cosine_basis", "noise_stream"]

INTERPOLATIONS = ("step", "linear", "dct")
"""Values of config ``interp``: each frame takes its chunk's code, interpolates between chunk centres, or
(format 1.3) sums cosines: each code is the amplitude of one DCT-II frequency of its segment."""

FREQUENCIES = "frequencies"
"""Weight ``(N,)``, integers, required with ``interp: "dct"`` (format 1.3): the DCT-II frequency of each
code row within its segment, strictly increasing within a segment, each below the segment's length."""


def cosine_basis(length: int, freqs: np.ndarray) -> np.ndarray:
    """``(L, n)`` float32: column ``i`` is ``psi_f(t)`` for ``f = freqs[i]``, ``t = 0 .. L-1``: 1 for
    ``f = 0``, else ``sqrt(2) cos(pi (2t + 1) f / (2L))``, computed in float64 (section 6.7)."""
    t = np.arange(length, dtype=np.float64)[:, None]
    f = np.asarray(freqs, dtype=np.float64)[None, :]
    basis = np.where(f == 0, 1.0, math.sqrt(2.0) * np.cos(np.pi * (2.0 * t + 1.0) * f / (2.0 * length)))
    return basis.astype(np.float32)


def _frequencies_problem(a: Archive) -> str | None:
    """``frequencies``: integers, one per code, increasing within each segment, below its length."""
    w = a.decoder_weights.get(FREQUENCIES)
    where = f"{P_DECODER_WEIGHTS}/{FREQUENCIES}"
    if a.decoder_config.get("interp") != "dct":
        return None if w is None else f"{where}: only allowed with interp \"dct\""
    if w is None:
        return f"{P_DECODER_WEIGHTS}: interp \"dct\" needs the weight '{FREQUENCIES}'"
    if a.segment_sources is not None:
        return f"{P_DECODER_CONFIG}: interp \"dct\" does not allow shared codes"
    if w.dtype.kind not in "iu" or w.shape != (a.num_codes,):
        return f"{where}: must be {a.num_codes} integers (one per code), not {w.dtype} {w.shape}"
    freq = w.astype(np.int64)
    counts = np.diff(a.segment_codes)
    seg_of_row = np.repeat(np.arange(counts.shape[0]), counts)
    if (freq < 0).any() or (freq >= a.segment_lengths[seg_of_row]).any():
        return f"{where}: every frequency must lie in [0, L) of its segment"
    first = np.zeros(freq.shape[0], dtype=bool)
    first[a.segment_codes[:-1][counts > 0]] = True
    if freq.shape[0] > 1 and ((np.diff(freq) <= 0) & ~first[1:]).any():
        return f"{where}: frequencies must be strictly increasing within a segment"
    return None
def _basis_noise_problem(a: Archive) -> str | None:
    """``residual.basis_std`` ``(d,)`` finite ``>= 0`` and ``residual_basis_rho`` in ``[0, 1)``: both present
    exactly when ``residual_space`` is ``"split"``."""
    split = a.decoder_config.get("residual_space") == "split"
    has_std, has_rho = BASIS_STD in a.decoder_weights, BASIS_RHO in a.decoder_config
    if not split:
        return f"{P_DECODER_CONFIG}: {BASIS_RHO} and {BASIS_STD} only with residual_space \"split\"" \
            if has_std or has_rho else None
    if not (has_std and has_rho):
        return f"{P_DECODER_CONFIG}: residual_space \"split\" needs {BASIS_RHO} and the weight {BASIS_STD}"
    w = a.decoder_weights[BASIS_STD]
    if w.dtype.kind != "f" or w.shape != (a.code_dim,):
        return f"{P_DECODER_WEIGHTS}/{BASIS_STD}: must be {a.code_dim} floats, not {w.dtype} {w.shape}"
    if not np.isfinite(w).all() or (w < 0).any():
        return f"{P_DECODER_WEIGHTS}/{BASIS_STD}: values must be finite and >= 0"
    rho = a.decoder_config[BASIS_RHO]
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 <= rho < 1:
        return f"{P_DECODER_CONFIG}: {BASIS_RHO} must be a number in [0, 1), got {rho!r}"
    return None


RESIDUAL_SPACES = ("full", "complement", "split")
"""Values of config ``residual_space``: the residual noise as drawn, its part outside the basis, or
(format 1.4) that part plus noise inside the basis, sized per direction (``residual.basis_std``)."""
BASIS_STD = "residual.basis_std"
"""Weight ``(d,)``, with ``residual_space: "split"`` only: the standard deviation of the noise along each
direction of the basis (what the codes miss there)."""
BASIS_RHO = "residual_basis_rho"
"""Config number in ``[0, 1)``, with ``residual_space: "split"`` only: the lag-1 correlation of that noise."""
_CONFIG_KEYS = {"code_dim", "interp", "floor", "residual_rho", "residual_space", BASIS_RHO}


def noise_stream(archive: Archive, index: int, draw: int = 0) -> np.random.Generator:
    """The residual noise's generator for video ``index``: ``default_rng([seed, index, 1])`` (section 6.5);
    ``draw > 0`` gives further, independent draws of the same noise model for callers that want fresh
    noise (e.g. per training epoch); they are not part of the format, and restore never uses them."""
    key = [int(archive.settings.get("seed", 0)), index, 1]
    return np.random.default_rng(key if draw == 0 else key + [draw])


CODE_SCALE = "code_scale"
"""Weight ``(d,)``, required with int8 codes (optional otherwise): code ``j`` is ``float32(code) * scale[j]``."""


NOISE_SIGMAS = 64.0
"""Standard deviations the output bound allows the residual noise (float32 normal draws stay far below)."""

FLOAT32_MAX = 3.4e38
"""Largest ``|floor|`` accepted: the floor is applied in float32."""


def _finite_number(value: Any) -> bool:
    """A JSON number (not a boolean) within float32's range; a JSON integer too large for a float is not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value)) and abs(float(value)) <= FLOAT32_MAX
    except OverflowError:
        return False


class LowRankKind(DecoderKind):
    name = "lowrank"
    stores_codes = True
    takes_weights = True
    code_dtypes = ("float16", "float32", "int8")

    def check(self, archive: Archive) -> str | None:
        a = archive
        config = a.decoder_config
        unknown = sorted(set(config) - _CONFIG_KEYS)
        if unknown:
            return f"{P_DECODER_CONFIG}: unknown key {unknown[0]!r} for the lowrank decoder"
        code_dim = config.get("code_dim")
        if isinstance(code_dim, bool) or not isinstance(code_dim, int) or code_dim != a.code_dim:  # a JSON integer
            return f"{P_DECODER_CONFIG}: code_dim must be the codes' width {a.code_dim}, got {config.get('code_dim')!r}"
        if config.get("interp") not in INTERPOLATIONS:
            return f"{P_DECODER_CONFIG}: interp must be one of {', '.join(INTERPOLATIONS)}, got {config.get('interp')!r}"
        floor = config.get("floor")
        if floor is not None and not _finite_number(floor):
            return f"{P_DECODER_CONFIG}: floor must be a number within float32's range or null, got {floor!r}"
        space = config.get("residual_space", "full")
        if space not in RESIDUAL_SPACES:
            return f"{P_DECODER_CONFIG}: residual_space must be one of {', '.join(RESIDUAL_SPACES)}, got {space!r}"
        if "residual_space" in config and "residual_rho" not in config:
            return f"{P_DECODER_CONFIG}: residual_space needs the residual model (residual_rho, {RESIDUAL_STD})"
        problem = _basis_noise_problem(a)
        if problem:
            return problem
        names = sorted(set(a.decoder_weights) - {RESIDUAL_STD, CODE_SCALE, FREQUENCIES, BASIS_STD})
        if names != ["components", "mean"]:
            return f"{P_DECODER_WEIGHTS}: lowrank decoder needs 'components' and 'mean' (and optionally " \
                   f"'{CODE_SCALE}', '{RESIDUAL_STD}', '{FREQUENCIES}', '{BASIS_STD}'), not {sorted(a.decoder_weights)}"
        problem = _frequencies_problem(a)
        if problem:
            return problem
        if a.codes.dtype == np.int8 and CODE_SCALE not in a.decoder_weights:
            return f"{P_DECODER_WEIGHTS}: int8 codes need the weight '{CODE_SCALE}'"
        shapes = [("components", (a.code_dim, a.dim)), ("mean", (a.dim,))]
        if CODE_SCALE in a.decoder_weights:
            shapes.append((CODE_SCALE, (a.code_dim,)))
        for key, shape in shapes:
            w = a.decoder_weights[key]
            if w.dtype.kind != "f":
                return f"{P_DECODER_WEIGHTS}/{key}: must be float16 or float32, not {w.dtype}"
            if w.shape != shape:
                return f"{P_DECODER_WEIGHTS}/{key}: shape {w.shape}, expected {shape}"
            if not np.isfinite(w).all():
                return f"{P_DECODER_WEIGHTS}/{key}: values must be finite"
        try:
            residual = split_residual(a)[2]
        except ArchiveError as exc:
            return str(exc)
        seed = a.settings.get("seed", 0)
        if residual is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            return f"/settings: seed must be an integer >= 0 for the residual noise, got {seed!r}"
        return None

    def output_bound(self, archive: Archive) -> float | None:
        """The linear bound (interpolation is a convex mix of codes), plus the noise: unit-variance AR(1)
        draws in float32 stay below 16 in magnitude in practice; bound them by ``NOISE_SIGMAS`` standard
        deviations, and the complement projection by the squared Frobenius norm of the basis; the floor."""
        w = archive.decoder_weights
        mags = code_magnitudes(archive, w.get(CODE_SCALE))
        if archive.decoder_config.get("interp") == "dct":  # a frame sums up to n codes, each times at most sqrt(2)
            most = int(np.diff(archive.segment_codes).max(initial=0))
            mags = mags * math.sqrt(2.0) * most
        bound = linear_bound(w["components"], w["mean"], mags)
        residual = split_residual(archive)[2]
        if residual is not None:
            std = float(np.max(residual[0])) if residual[0].size else 0.0
            comp = np.asarray(w["components"], dtype=np.float64)
            with np.errstate(over="ignore", invalid="ignore"):
                spread = float(np.sum(comp * comp))
                bound += NOISE_SIGMAS * std * (1.0 + spread)
                basis = archive.decoder_weights.get(BASIS_STD)
                if basis is not None and basis.size:  # each output sums d directions' noise
                    bound += NOISE_SIGMAS * float(np.max(basis)) * float(np.abs(comp).sum(axis=0).max(initial=0.0))
        floor = archive.decoder_config.get("floor")
        return max(bound, abs(float(floor))) if floor is not None else bound

    def bind(self, archive: Archive, device: Any = "cpu", batch_frames: int = 32768) -> BoundDecoder:
        return BoundLowRank(archive, batch_frames)


class BoundLowRank(BoundDecoder):
    """A ``lowrank`` archive ready to restore: ``features(i)`` is video ``i`` with the format's noise,
    ``features(i, draw=k)`` (``k >= 1``) the same codes with an independent draw of the noise."""

    def __init__(self, archive: Archive, batch_frames: int = 32768) -> None:
        super().__init__(archive)
        self.batch_frames = max(1, int(batch_frames))
        config = archive.decoder_config
        self.components = np.asarray(archive.decoder_weights["components"], dtype=np.float32)  # (d, D)
        self.mean = np.asarray(archive.decoder_weights["mean"], dtype=np.float32)  # (D,)
        self.interp = config["interp"]
        self.floor = None if config.get("floor") is None else np.float32(config["floor"])
        self.residual = split_residual(archive)[2]
        scale = archive.decoder_weights.get(CODE_SCALE)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float32)  # (d,)
        space = config.get("residual_space", "full")
        self.complement = space in ("complement", "split")
        basis = archive.decoder_weights.get(BASIS_STD)
        self.basis_noise = None if space != "split" else (np.asarray(basis, dtype=np.float32),
                                                          float(config[BASIS_RHO]))

    def smooth(self, index: int) -> np.ndarray:
        """Video ``index`` from its codes alone: no noise, no floor, ``(D, T)`` float32."""
        entry = self.archive.video(index)
        codes = np.asarray(entry.codes, dtype=np.float32)  # (N, d); float32 codes: a view of the archive's
        if self.scale is not None:
            codes = codes * self.scale  # not in place: that would scale the archive's own codes again each call
        if self.interp == "dct":
            return self._dct(index, entry, codes)
        if self.interp == "linear":
            row_a, row_b, w = frame_interpolation(entry.lengths, entry.code_counts)
            w = w.astype(np.float32)[:, None]
        else:
            row_a = row_b = entry.frame_code_rows()
            w = None
        total = row_a.shape[0]
        out = np.empty((self.archive.dim, total), dtype=np.float32)
        for s in range(0, total, self.batch_frames):
            sl = slice(s, min(total, s + self.batch_frames))
            z = codes[row_a[sl]]  # (t, d)
            if w is not None:
                z = z + w[sl] * (codes[row_b[sl]] - z)
            out[:, sl] = (z @ self.components + self.mean).T
        return out

    def _dct(self, index: int, entry, codes: np.ndarray) -> np.ndarray:
        """``interp: "dct"``: per segment, ``z = cosine_basis(L, freqs) @ codes``, then the basis."""
        segs = self.archive.segments_of_video(index)
        first = int(self.archive.segment_codes[segs.start])
        freqs = np.asarray(self.archive.decoder_weights[FREQUENCIES], dtype=np.int64)
        out = np.empty((self.archive.dim, entry.frames), dtype=np.float32)
        t = row = 0
        for length, n in zip(entry.lengths.tolist(), entry.code_counts.tolist()):
            for s in range(0, length, self.batch_frames):
                e = min(length, s + self.batch_frames)
                basis = cosine_basis(length, freqs[first + row : first + row + n])[s:e]  # (t, n)
                z = basis @ codes[row : row + n]  # (t, d)
                out[:, t + s : t + e] = (z @ self.components + self.mean).T
            t, row = t + length, row + n
        return out

    def features(self, index: int, draw: int = 0, smooth: np.ndarray | None = None) -> np.ndarray:
        """Video ``index`` as restore gives it; ``smooth``: :meth:`smooth`'s result for it, which is then
        not computed again (and is overwritten)."""
        x = self.smooth(index) if smooth is None else smooth
        if self.residual is not None:
            std, rho = self.residual
            rng = noise_stream(self.archive, index, draw)
            noise = std[:, None] * ar1_noise(rng, x.shape, rho)  # (D, T)
            if self.complement:  # only what the basis leaves out
                noise -= self.components.T @ (self.components @ noise)
            if self.basis_noise is not None:  # "split": then, from the same stream, noise along each direction
                bstd, brho = self.basis_noise
                noise += self.components.T @ (bstd[:, None] * ar1_noise(rng, (bstd.shape[0], x.shape[1]), brho))
            x += noise
        if self.floor is not None:
            np.maximum(x, self.floor, out=x)
        return x


LOWRANK = LowRankKind()
