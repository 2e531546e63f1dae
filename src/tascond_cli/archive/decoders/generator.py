"""The ``generator`` decoder: the archive's neural network applied to the stored codes, chunk by chunk.

The network (:mod:`.network`, docs/format.md section 6) is rebuilt from ``/decoder/config`` and
``/decoder/weights`` once, with every shape checked. Codes are used by the chunk rule with the position
running over the whole segment (docs/format.md section 5).

**Residual model** (optional, a declared part of this kind): the weight :data:`RESIDUAL_STD` ``(D,)`` and the
config entry :data:`RESIDUAL_RHO` describe what the codes could not explain: per-channel standard
deviations of the inversion residual and its lag-1 autocorrelation over time. When present, restoration
adds seeded AR(1) noise of that size and correlation before the non-negativity, so restored features
vary within a chunk as real ones do. Video ``v``'s noise comes from
``numpy.random.default_rng([settings["seed"] (default 0), v, 1])`` (:func:`ar1_noise`).

Binding imports torch; checking and reading do not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tascond_cli.archive.decoders.base import BoundDecoder, DecoderKind
from tascond_cli.archive.model import Archive, ArchiveError, VideoEntry

__all__ = ["GENERATOR", "RESIDUAL_RHO", "RESIDUAL_STD", "GeneratorKind", "ar1_noise", "split_residual"]

RESIDUAL_STD = "residual.std"
"""Weight name of the residual model's per-channel standard deviations, ``(D,)``."""
RESIDUAL_RHO = "residual_rho"
"""Config entry of the residual model's lag-1 autocorrelation, a number in ``[0, 1)``."""


def split_residual(archive: Archive) -> tuple[dict, dict, tuple[np.ndarray, float] | None]:
    """The network's own config and weights, and the residual model ``(std, rho)`` or ``None``.

    Raises :class:`ArchiveError` when the residual model is half there or out of range.
    """
    config = dict(archive.decoder_config)
    weights = dict(archive.decoder_weights)
    has_std, has_rho = RESIDUAL_STD in weights, RESIDUAL_RHO in config
    if not has_std and not has_rho:
        return config, weights, None
    if has_std != has_rho:
        raise ArchiveError(f"/decoder: {RESIDUAL_STD} and config {RESIDUAL_RHO} must come together")
    std = np.asarray(weights.pop(RESIDUAL_STD), dtype=np.float32)
    rho = config.pop(RESIDUAL_RHO)
    if std.shape != (archive.dim,):
        raise ArchiveError(f"/decoder/weights/{RESIDUAL_STD}: shape {std.shape}, expected ({archive.dim},)")
    if not np.isfinite(std).all() or (std < 0).any():
        raise ArchiveError(f"/decoder/weights/{RESIDUAL_STD}: values must be finite and >= 0")
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 <= rho < 1:
        raise ArchiveError(f"/decoder/config: {RESIDUAL_RHO} must be a number in [0, 1), got {rho!r}")
    return config, weights, (std, float(rho))


def ar1_noise(rng: np.random.Generator, shape: tuple[int, int], rho: float) -> np.ndarray:
    """Unit-variance AR(1) noise (D, T) float32, correlated over time with lag-1 coefficient ``rho``."""
    d, t = shape
    white = rng.standard_normal((d, t), dtype=np.float32)
    if rho == 0 or t == 0:
        return white
    white[:, 1:] *= np.float32(np.sqrt(1.0 - rho * rho))
    out = np.empty_like(white)
    out[:, 0] = white[:, 0]
    r = np.float32(rho)
    for i in range(1, t):  # D-wide vector ops; T steps
        out[:, i] = r * out[:, i - 1] + white[:, i]
    return out


class GeneratorKind(DecoderKind):
    name = "generator"
    stores_codes = True
    takes_weights = True

    def check(self, archive: Archive) -> str | None:
        """With a residual model, its fields (section 6.5) and the seed of its noise: an integer >= 0."""
        try:
            residual = split_residual(archive)[2]
        except ArchiveError as exc:
            return str(exc)
        seed = archive.settings.get("seed", 0)
        if residual is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            return f"/settings: seed must be an integer >= 0 for the residual noise, got {seed!r}"
        return None

    def bind(self, archive: Archive, device: Any = "cpu", batch_frames: int = 32768) -> BoundDecoder:
        from tascond_cli.archive.decoders.network import load_decoder
        from tascond_cli.device import resolve_device

        device = resolve_device(device)
        config, weights, residual = split_residual(archive)
        try:
            net = load_decoder(config, weights)
        except (ValueError, KeyError, TypeError) as exc:
            raise ArchiveError(f"/decoder: {exc}") from None
        if net.dim != archive.dim:
            raise ArchiveError(f"/decoder: decodes {net.dim}-d features but settings say dim {archive.dim}")
        if net.num_classes != archive.num_classes:
            raise ArchiveError(f"/decoder: knows {net.num_classes} classes but the archive has {archive.num_classes}")
        self._check_network(archive, net)
        bound = self._bound(archive, net.to(device).eval(), residual, batch_frames)
        bound.check_sample()
        return bound

    def _check_network(self, archive: Archive, net: Any) -> None:
        """Rules that tie the rebuilt network to the archive, beyond its output (ArchiveError)."""
        if archive.code_dim != net.latent:
            raise ArchiveError(f"/codes: {archive.code_dim}-d codes but the decoder takes {net.latent}-d")

    def _bound(self, archive: Archive, net: Any, residual: Any, batch_frames: int) -> BoundDecoder:
        return BoundGenerator(archive, net, residual, batch_frames)


class BoundGenerator(BoundDecoder):
    """The network of an archive, ready to restore its videos from their stored codes."""

    def __init__(self, archive: Archive, net: Any, residual: tuple[np.ndarray, float] | None,
                 batch_frames: int) -> None:
        super().__init__(archive)
        self.net, self.residual, self.batch_frames = net, residual, batch_frames

    def codes(self, index: int, entry: VideoEntry) -> tuple[np.ndarray, np.ndarray]:
        """The codes (N, d) float32 that video ``index`` decodes with, and how many each segment has."""
        return np.asarray(entry.codes, dtype=np.float32), entry.code_counts

    def check_sample(self, frames: int = 16) -> None:
        """Decode the first ``frames`` frames of the archive's first segment (no noise); an
        :class:`ArchiveError` when the network's output is not finite there (its weights overflow)."""
        from tascond_cli.archive.decoders.network import decode_segments

        if self.archive.num_videos == 0:
            return
        entry = self.archive.video(0)
        codes, counts = self.codes(0, entry)
        n = int(counts[0])
        length = np.array([min(int(entry.lengths[0]), frames, max(n, 1) * frames)], dtype=np.int64)
        n = min(n, int(length[0]))
        x = decode_segments(self.net, entry.labels[:1], length, codes[:n], np.array([n]), batch_frames=self.batch_frames)
        if not np.isfinite(x).all():
            raise ArchiveError("/decoder: the network's output is not finite (NaN or infinity) on the first segment")

    def features(self, index: int) -> np.ndarray:
        from tascond_cli.archive.decoders.network import decode_segments

        entry = self.archive.video(index)
        lengths = entry.lengths.astype(np.int64)
        codes, counts = self.codes(index, entry)
        x = decode_segments(self.net, entry.labels, lengths, codes, counts, batch_frames=self.batch_frames)
        if self.residual is not None:
            std, rho = self.residual
            rng = np.random.default_rng([int(self.archive.settings.get("seed", 0)), index, 1])
            x += std[:, None] * ar1_noise(rng, x.shape, rho)
            np.maximum(x, 0.0, out=x)
        return x


GENERATOR = GeneratorKind()
