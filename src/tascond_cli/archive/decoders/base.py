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

__all__ = ["BoundDecoder", "DecoderKind"]


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

    def bind(self, archive: Archive, device: Any = "cpu", batch_frames: int = 32768) -> BoundDecoder:
        """What restores the videos of ``archive`` (validated) on ``device``, ``batch_frames`` frames at a time.

        Raises :class:`~tascond_cli.archive.ArchiveError` when the decoder cannot be built from the archive.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<decoder kind {self.name!r}>"
