"""The decoder-kind registry: every kind of ``/decoder/kind`` this version knows (docs/format.md, section 6).

Each kind (:class:`DecoderKind`) holds its spec check, used when an archive is validated, and its decode,
used by restoration, the on-the-fly dataset and the baselines' error: ``kind.bind(archive)`` gives a
:class:`BoundDecoder` whose ``features(i)`` restores video ``i``. Importing this package does not import
torch; binding a ``generator`` or ``random`` kind does.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from tascond_cli.archive.constants import P_DECODER_KIND
from tascond_cli.archive.decoders.base import BoundDecoder, DecoderKind
from tascond_cli.archive.decoders.generator import GENERATOR
from tascond_cli.archive.decoders.identity import IDENTITY
from tascond_cli.archive.decoders.linear import LINEAR
from tascond_cli.archive.decoders.lowrank import LOWRANK
from tascond_cli.archive.decoders.random import RANDOM
from tascond_cli.archive.decoders.zeros import ZEROS
from tascond_cli.archive.model import ArchiveError

__all__ = ["DECODERS", "BoundDecoder", "DecoderKind", "get_decoder_kind"]

DECODERS: Mapping[str, DecoderKind] = MappingProxyType(
    {k.name: k for k in (GENERATOR, IDENTITY, LINEAR, ZEROS, RANDOM, LOWRANK)}
)
"""Every decoder kind this version knows, by name. Add a kind here (and to docs/format.md)."""


def get_decoder_kind(name: Any) -> DecoderKind:
    """The kind called ``name``; :class:`ArchiveError` naming ``/decoder/kind`` if there is none."""
    kind = DECODERS.get(name) if isinstance(name, str) else None
    if kind is None:
        known = ", ".join(DECODERS)
        raise ArchiveError(f"{P_DECODER_KIND}: unknown decoder kind {name!r} (this tascond knows {known})")
    return kind
