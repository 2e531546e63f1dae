"""How an archive's bytes split between codes, structure, decoder and metadata (docs/format.md, section 9)."""

from __future__ import annotations

import math

import numpy as np
import zstandard

from tascond_cli import __version__
from tascond_cli.archive.constants import DEFAULT_LEVEL, P_DECODER_CONFIG, P_SETTINGS
from tascond_cli.archive.container import check_level, compress
from tascond_cli.archive.encoding import json_text, le
from tascond_cli.archive.model import Archive
from tascond_cli.archive.validate import validate_archive
from tascond_cli.archive.writer import SLICE_BYTES, archive_bytes

__all__ = ["BREAKDOWN_PARTS", "storage_breakdown"]

BREAKDOWN_PARTS = ("codes", "structure", "decoder", "metadata")


def _part_bytes(a: Archive, writer_version: str) -> dict[str, bytes]:
    """Raw bytes of each part but the codes, in stored dtypes (docs/format.md, section 9)."""

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
    return {"structure": structure, "decoder": decoder, "metadata": metadata}


class _Count:
    """A sink that only counts the bytes written to it."""

    def __init__(self) -> None:
        self.n = 0

    def write(self, data: bytes) -> int:
        self.n += len(data)
        return len(data)


SAMPLE_BYTES = 4 << 20
"""Codes up to this size are compressed whole for the breakdown; larger ones are sampled (a level-19 pass
over 40 MB of codes takes minutes on two cores)."""
SAMPLE_SLICES = 16
"""Evenly spaced slices of rows that make the sample."""


def _codes_compressed(codes: np.ndarray, level: int) -> int:
    """Bytes of the codes (little-endian) as one zstd frame, compressed a slice at a time (codes may be an
    ``np.memmap``): the size :func:`~tascond_cli.archive.container.compress` gives for them whole.

    Codes over :data:`SAMPLE_BYTES`: an estimate, the compressed size of :data:`SAMPLE_SLICES` evenly
    spaced runs of rows that make up about :data:`SAMPLE_BYTES`, compressed as one frame and scaled by
    the codes' size over the sample's.
    """
    nbytes = int(codes.dtype.itemsize * math.prod(codes.shape))
    row_bytes = max(1, codes.dtype.itemsize * math.prod(codes.shape[1:]))
    if nbytes > SAMPLE_BYTES and codes.shape[0] >= 2 * SAMPLE_SLICES:
        run = max(1, SAMPLE_BYTES // (SAMPLE_SLICES * row_bytes))
        starts = np.linspace(0, codes.shape[0] - run, SAMPLE_SLICES).astype(np.int64)
        sample = [(int(a), int(a) + run) for a in starts]
        sampled = SAMPLE_SLICES * run * row_bytes
        return int(round(_compressed_rows(codes, sample, sampled, level) * nbytes / sampled))
    rows = max(1, SLICE_BYTES // row_bytes)
    return _compressed_rows(codes, [(a, a + rows) for a in range(0, codes.shape[0], rows)], nbytes, level)


def _compressed_rows(codes: np.ndarray, runs: list[tuple[int, int]], nbytes: int, level: int) -> int:
    """Bytes of the rows of ``runs`` (``nbytes`` in all, little-endian) compressed as one zstd frame."""
    cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True, threads=0)
    sink = _Count()
    with cctx.stream_writer(sink, size=nbytes, closefd=False) as w:
        for start, stop in runs:
            w.write(le(np.asarray(codes[start:stop])).tobytes())
    return sink.n


def storage_breakdown(
    archive: Archive, *, level: int = DEFAULT_LEVEL, total: int | None = None
) -> dict[str, dict[str, int]]:
    """How the archive's bytes split between codes, structure, decoder and metadata.

    Returns ``{part: {"raw", "compressed", "share"}}`` for each of :data:`BREAKDOWN_PARTS`,
    plus ``"total"``. ``raw``: the part's bytes as stored; ``compressed``: those bytes
    zstd-compressed alone at ``level`` (codes over :data:`SAMPLE_BYTES`: estimated from a sample);
    ``share``: the archive's size (``total``, default: the size :func:`archive_bytes` gives) split in
    proportion to ``compressed``, so that container and HDF5 overhead is spread over the parts; the
    shares add up to the total.
    """
    check_level(level)
    a = validate_archive(archive)
    writer_version = archive.written_by or __version__
    if total is None:
        total = len(archive_bytes(a, level=level, writer_version=writer_version))
    parts = _part_bytes(a, writer_version)
    raw = {"codes": a.codes.dtype.itemsize * math.prod(a.codes.shape), **{k: len(v) for k, v in parts.items()}}
    comp = {"codes": _codes_compressed(a.codes, level), **{k: len(compress(v, level)) for k, v in parts.items()}}
    denom = sum(comp.values())
    exact = {k: total * comp[k] / denom for k in BREAKDOWN_PARTS}
    share = {k: int(math.floor(v)) for k, v in exact.items()}
    # Largest remainders get the leftover bytes, so the shares add up exactly.
    left = total - sum(share.values())
    for k in sorted(BREAKDOWN_PARTS, key=lambda k: (share[k] - exact[k], BREAKDOWN_PARTS.index(k)))[:left]:
        share[k] += 1
    out = {k: {"raw": raw[k], "compressed": comp[k], "share": share[k]} for k in BREAKDOWN_PARTS}
    out["total"] = {"raw": sum(raw.values()), "compressed": denom, "share": total}
    return out
