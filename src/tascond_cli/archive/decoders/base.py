"""What a decoder kind is: its spec check and its decode (docs/format.md, section 6).

A kind is a small object: :attr:`DecoderKind.name` (the value of ``/decoder/kind``), whether its archives
store codes and weights, :meth:`DecoderKind.check` (the kind's own rules, used by
:func:`~tascond_cli.archive.validate.validate_archive`) and :meth:`DecoderKind.bind`, which builds what
restores the archive's videos (:class:`BoundDecoder`). Adding a kind is one module in this package, its
entry in :data:`tascond_cli.archive.decoders.DECODERS` and its section in docs/format.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tascond_cli.archive.model import Archive

__all__ = ["BoundDecoder", "DecoderKind", "code_magnitudes", "linear_bound"]


def code_magnitudes(archive: Archive, scale: np.ndarray | None = None) -> np.ndarray:
    """The largest magnitude of each code dimension over all codes, ``(d,)`` float64 (times ``scale``)."""
    codes = archive.codes
    if codes.shape[0] == 0:
        return np.zeros(codes.shape[1])
    mags = np.abs(codes).max(axis=0).astype(np.float64)
    return mags if scale is None else mags * np.abs(np.asarray(scale, dtype=np.float64))


def linear_bound(components: np.ndarray, mean: np.ndarray, magnitudes: np.ndarray) -> float:
    """A bound on ``|z @ components + mean|`` over codes with ``|z_k| <= magnitudes[k]`` (float64)."""
    comp = np.abs(np.asarray(components, dtype=np.float64))
    with np.errstate(over="ignore", invalid="ignore"):
        reach = magnitudes @ comp + np.abs(np.asarray(mean, dtype=np.float64))
        return float(np.max(reach)) if reach.size else 0.0


class BoundDecoder:
    """A decoder kind bound to one (validated) archive: restores its videos one at a time."""

    residual: Any = None
    """The residual model this decoder adds (only ``generator``-like kinds have one)."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive

    def features(self, index: int) -> np.ndarray:
        """Restored features (D, T) float32 of video ``index`` of the archive."""
        raise NotImplementedError


class DecoderKind:
    """One decoder kind. Subclasses set the three attributes and implement :meth:`bind`."""

    name: str = ""
    """The kind's name, the value of ``/decoder/kind``."""
    stores_codes: bool = True
    """Every segment that owns codes stores 1 to L of them (else: the archive has no codes at all)."""
    takes_weights: bool = True
    """The weights must be non-empty (else: they must be empty)."""
    code_dtypes: tuple[str, ...] = ("float16", "float32")
    """The dtypes ``/codes`` may have (``lowrank`` also takes int8 codes with a scale)."""

    def check(self, archive: Archive) -> str | None:
        """The kind's rules beyond the common ones: a problem (one line, naming the HDF5 path) or ``None``.

        ``archive`` has passed every common rule and has canonical types.
        """
        return None

    def output_bound(self, archive: Archive) -> float | None:
        """A bound on the magnitude of every restored feature value, from the weights and codes alone, or
        ``None`` where the kind cannot give one (a neural network: its restore checks its output instead).

        ``archive`` has passed :meth:`check`. The reader refuses archives whose bound is over
        :data:`~tascond_cli.archive.constants.MAX_FEATURE_MAGNITUDE`.
        """
        return None

    def bind(self, archive: Archive, device: Any = "cpu", batch_frames: int = 32768) -> BoundDecoder:
        """What restores the videos of ``archive`` (validated) on ``device``, ``batch_frames`` frames at a time.

        Raises :class:`~tascond_cli.archive.ArchiveError` when the decoder cannot be built from the archive.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<decoder kind {self.name!r}>"
