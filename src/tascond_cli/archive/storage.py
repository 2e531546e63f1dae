"""How an archive's bytes split between codes, structure, decoder and metadata (docs/format.md, section 9)."""

from __future__ import annotations

import math

import numpy as np

from tascond_cli import __version__
from tascond_cli.archive.constants import DEFAULT_LEVEL, P_DECODER_CONFIG, P_SETTINGS
from tascond_cli.archive.container import check_level, compress
from tascond_cli.archive.encoding import json_text, le
from tascond_cli.archive.model import Archive
from tascond_cli.archive.validate import validate_archive
from tascond_cli.archive.writer import archive_bytes

__all__ = ["BREAKDOWN_PARTS", "storage_breakdown"]

BREAKDOWN_PARTS = ("codes", "structure", "decoder", "metadata")


def _part_bytes(a: Archive, writer_version: str) -> dict[str, bytes]:
    """Raw bytes of each part, in stored dtypes (docs/format.md, section 9)."""

    def names(values: list[str]) -> bytes:
        return "\n".join(values).encode("utf-8")

    structure = b"".join(
        [
            names(a.class_names),
            names(a.video_names),
            le(a.video_segments, np.int64).tobytes(),
            le(a.video_frames, np.int64).tobytes(),
            le(a.segment_labels, np.int32).tobytes(),
            le(a.segment_lengths, np.int64).tobytes(),
            le(a.segment_codes, np.int64).tobytes(),
            b"" if a.segment_sources is None else le(a.segment_sources, np.int64).tobytes(),
        ]
    )
    decoder = b"".join(
        [
            a.decoder_kind.encode("utf-8"),
            json_text(a.decoder_config, P_DECODER_CONFIG).encode("utf-8"),
            *(le(a.decoder_weights[k]).tobytes() for k in sorted(a.decoder_weights)),
        ]
    )
    metadata = (
        json_text(a.settings, P_SETTINGS) + "%d.%d" % a.version + writer_version
    ).encode("utf-8")
    return {"codes": le(a.codes).tobytes(), "structure": structure, "decoder": decoder, "metadata": metadata}


def storage_breakdown(
    archive: Archive, *, level: int = DEFAULT_LEVEL, total: int | None = None
) -> dict[str, dict[str, int]]:
    """How the archive's bytes split between codes, structure, decoder and metadata.

    Returns ``{part: {"raw", "compressed", "share"}}`` for each of :data:`BREAKDOWN_PARTS`,
    plus ``"total"``. ``raw``: the part's bytes as stored; ``compressed``: those bytes
    zstd-compressed alone at ``level``; ``share``: the archive's size (``total``, default:
    the size :func:`archive_bytes` gives) split in proportion to ``compressed``, so that
    container and HDF5 overhead is spread over the parts; the shares add up to the total.
    """
    check_level(level)
    a = validate_archive(archive)
    writer_version = archive.written_by or __version__
    if total is None:
        total = len(archive_bytes(a, level=level, writer_version=writer_version))
    raw = _part_bytes(a, writer_version)
    comp = {k: len(compress(v, level)) for k, v in raw.items()}
    denom = sum(comp.values())
    exact = {k: total * comp[k] / denom for k in BREAKDOWN_PARTS}
    share = {k: int(math.floor(v)) for k, v in exact.items()}
    # Largest remainders get the leftover bytes, so the shares add up exactly.
    left = total - sum(share.values())
    for k in sorted(BREAKDOWN_PARTS, key=lambda k: (share[k] - exact[k], BREAKDOWN_PARTS.index(k)))[:left]:
        share[k] += 1
    out = {k: {"raw": len(raw[k]), "compressed": comp[k], "share": share[k]} for k in BREAKDOWN_PARTS}
    out["total"] = {"raw": sum(len(v) for v in raw.values()), "compressed": denom, "share": total}
    return out
