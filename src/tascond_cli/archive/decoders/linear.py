"""The ``linear`` decoder: ``code @ components + mean`` for every frame of a chunk (e.g. PCA)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tascond_cli.archive.constants import P_DECODER_WEIGHTS
from tascond_cli.archive.decoders.base import BoundDecoder, DecoderKind, code_magnitudes, linear_bound
from tascond_cli.archive.model import Archive

__all__ = ["COMPONENTS", "LINEAR", "LinearKind", "MEAN"]

COMPONENTS = "components"
"""Weight ``(d, D)``: the projection from codes to features."""
MEAN = "mean"
"""Weight ``(D,)``: added to every projected code."""


class LinearKind(DecoderKind):
    name = "linear"
    stores_codes = True
    takes_weights = True

    def check(self, archive: Archive) -> str | None:
        a = archive
        names = sorted(a.decoder_weights)
        if names != [COMPONENTS, MEAN]:
            return f"{P_DECODER_WEIGHTS}: linear decoder needs exactly 'components' and 'mean', not {names}"
        comp, mean = a.decoder_weights[COMPONENTS], a.decoder_weights[MEAN]
        if comp.dtype.kind != "f" or mean.dtype.kind != "f":
            return f"{P_DECODER_WEIGHTS}: linear decoder weights must be float arrays"
        if comp.shape != (a.code_dim, a.dim):
            return f"{P_DECODER_WEIGHTS}/components: shape {comp.shape}, expected {(a.code_dim, a.dim)} (code dim, dim)"
        if mean.shape != (a.dim,):
            return f"{P_DECODER_WEIGHTS}/mean: shape {mean.shape}, expected {(a.dim,)}"
        return None

    def output_bound(self, archive: Archive) -> float | None:
        w = archive.decoder_weights
        return linear_bound(w[COMPONENTS], w[MEAN], code_magnitudes(archive))

    def bind(self, archive: Archive, device: Any = "cpu", batch_frames: int = 32768) -> BoundDecoder:
        return _Linear(archive, batch_frames)


class _Linear(BoundDecoder):
    def __init__(self, archive: Archive, batch_frames: int) -> None:
        super().__init__(archive)
        self.batch_frames = batch_frames
        self.components = np.asarray(archive.decoder_weights[COMPONENTS], dtype=np.float32)  # (d, D)
        self.mean = np.asarray(archive.decoder_weights[MEAN], dtype=np.float32)  # (D,)

    def features(self, index: int) -> np.ndarray:
        entry = self.archive.video(index)
        rows = entry.frame_code_rows()  # (T,)
        codes = np.asarray(entry.codes, dtype=np.float32)
        total = rows.shape[0]
        out = np.empty((self.archive.dim, total), dtype=np.float32)
        for s in range(0, total, self.batch_frames):
            sl = slice(s, min(total, s + self.batch_frames))
            out[:, sl] = (codes[rows[sl]] @ self.components + self.mean).T
        return out


LINEAR = LinearKind()
