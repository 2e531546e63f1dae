"""The ``.tcd`` archive format: read, validate and write (see ``docs/format.md``).

An archive is a 28-byte header (magic, format version, sizes) followed by one
zstd frame whose content is an HDF5 file, or (format 1.4, larger archives) by an
index and that HDF5 file in independently compressed chunks, so that one video can
be read without decompressing the rest (:func:`open_archive`). The HDF5 file holds the
condensed dataset: class and video names, the segments of every video (labels,
lengths), the codes of every segment, and the decoder that maps codes back to
frame features.

The reader trusts nothing: every size is checked before it is used, and every
problem is an :class:`ArchiveError` whose one-line message names the file (when
there is one) and the problem. The writer checks the same rules, so it never
writes an archive the reader would refuse, and its output is byte-for-byte
deterministic.

Modules: :mod:`.model` (:class:`Archive`, :class:`VideoEntry`), :mod:`.constants`
(versions, header, limits, HDF5 paths), :mod:`.validate` (every rule),
:mod:`.container` (header and zstd frame), :mod:`.chunked` (the chunked container),
:mod:`.reader`, :mod:`.lazy` (random access), :mod:`.writer`,
:mod:`.storage` (where the bytes go) and :mod:`.decoders` (one module per decoder
kind: its check and its decode). The chunk rule is :mod:`tascond_cli.chunks`.
This package never prints, and reading an archive does not import torch.
"""

from tascond_cli.archive.constants import (
    BASE_VERSION,
    CHUNK_SIZE,
    CHUNKED_MIN_BYTES,
    CHUNKED_VERSION,
    DEFAULT_LEVEL,
    DEFAULT_MAX_BYTES,
    FORMAT_VERSION,
    SHARED_CODES_VERSION,
    VERSION_OF_KIND,
    HDF5_SIGNATURE,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_SEGMENT_FRAMES,
    MAX_TOTAL_FRAMES,
    MAX_VIDEO_NAME_BYTES,
)
from tascond_cli.archive.container import wrap_payload, wrap_payload_chunked
from tascond_cli.archive.decoders import DECODERS, BoundDecoder, DecoderKind, get_decoder_kind
from tascond_cli.archive.model import Archive, ArchiveError, VideoEntry
from tascond_cli.archive.lazy import LazyArchive, LazyCodes, container_layout, open_archive
from tascond_cli.archive.reader import read_archive, read_version
from tascond_cli.archive.storage import BREAKDOWN_PARTS, storage_breakdown
from tascond_cli.archive.validate import validate_archive
from tascond_cli.archive.writer import archive_bytes, write_archive
from tascond_cli.chunks import (
    chunk_bounds,
    codes_per_segment,
    frame_code_index,
    offsets_from_counts,
    segment_position,
)

DECODER_KINDS = DECODERS
"""The decoder-kind registry under its earlier name (:data:`tascond_cli.archive.decoders.DECODERS`)."""

__all__ = [
    "BASE_VERSION",
    "BREAKDOWN_PARTS",
    "CHUNKED_MIN_BYTES",
    "CHUNKED_VERSION",
    "CHUNK_SIZE",
    "DECODERS",
    "DECODER_KINDS",
    "DEFAULT_LEVEL",
    "DEFAULT_MAX_BYTES",
    "FORMAT_VERSION",
    "SHARED_CODES_VERSION",
    "VERSION_OF_KIND",
    "HDF5_SIGNATURE",
    "HEADER",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_SEGMENT_FRAMES",
    "MAX_TOTAL_FRAMES",
    "MAX_VIDEO_NAME_BYTES",
    "Archive",
    "ArchiveError",
    "BoundDecoder",
    "DecoderKind",
    "LazyArchive",
    "LazyCodes",
    "VideoEntry",
    "archive_bytes",
    "chunk_bounds",
    "codes_per_segment",
    "container_layout",
    "frame_code_index",
    "get_decoder_kind",
    "offsets_from_counts",
    "open_archive",
    "read_archive",
    "read_version",
    "segment_position",
    "storage_breakdown",
    "validate_archive",
    "wrap_payload",
    "wrap_payload_chunked",
    "write_archive",
]
