"""The ``identity`` decoder: every frame of a chunk is its code (codes of dimension D, no weights)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tascond_cli.archive.constants import P_CODES
from tascond_cli.archive.decoders.base import BoundDecoder, DecoderKind, code_magnitudes
from tascond_cli.archive.model import Archive

__all__ = ["IDENTITY", "IdentityKind"]


class IdentityKind(DecoderKind):
    name = "identity"
    stores_codes = True
    takes_weights = False

    def check(self, archive: Archive) -> str | None:
        if archive.code_dim != archive.dim:
            return f"{P_CODES}: identity decoder needs codes of dimension dim={archive.dim}, not {archive.code_dim}"
        return None

    def output_bound(self, archive: Archive) -> float | None:
        mags = code_magnitudes(archive)
        return float(mags.max()) if mags.size else 0.0

    def bind(self, archive: Archive, device: Any = "cpu", batch_frames: int = 32768) -> BoundDecoder:
        return _Identity(archive)


class _Identity(BoundDecoder):
    def features(self, index: int) -> np.ndarray:
        entry = self.archive.video(index)
        codes = np.asarray(entry.codes, dtype=np.float32)
        return np.ascontiguousarray(codes[entry.frame_code_rows()].T)


IDENTITY = IdentityKind()
