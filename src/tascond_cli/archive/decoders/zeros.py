"""The ``zeros`` decoder: all-zero features (no codes, no weights); the floor of what structure alone gives."""

from __future__ import annotations

from typing import Any

import numpy as np

from tascond_cli.archive.decoders.base import BoundDecoder, DecoderKind
from tascond_cli.archive.model import Archive

__all__ = ["ZEROS", "ZerosKind"]


class ZerosKind(DecoderKind):
    name = "zeros"
    stores_codes = False
    takes_weights = False

    def output_bound(self, archive: Archive) -> float | None:
        return 0.0

    def bind(self, archive: Archive, device: Any = "cpu", batch_frames: int = 32768) -> BoundDecoder:
        return _Zeros(archive)


class _Zeros(BoundDecoder):
    def features(self, index: int) -> np.ndarray:
        total = int(self.archive.video(index).lengths.astype(np.int64).sum())
        return np.zeros((self.archive.dim, total), dtype=np.float32)


ZEROS = ZerosKind()
