"""The format's constants: versions, the container header, size limits and the HDF5 paths (docs/format.md)."""

from __future__ import annotations

import re
import struct

from tascond_cli.chunks import MAX_SEGMENT_FRAMES  # noqa: F401  (a format limit, defined with the chunk rule)

FORMAT_VERSION: tuple[int, int] = (1, 4)
"""The newest format version this module writes (``major, minor``); it reads every ``1.x``. Each archive
is written with the oldest version that has what it uses: ``1.4`` for the chunked container, ``1.3`` for
``lowrank`` DCT codes, ``1.2`` for the ``lowrank`` decoder kind, ``1.1`` for shared codes, else ``1.0``
(what a 1.0 reader reads)."""

CHUNKED_VERSION: tuple[int, int] = (1, 4)
"""The version that added the chunked container (docs/format.md, 2.2); every later minor version uses it."""

CHUNK_SIZE = 2**20
"""Uncompressed bytes per chunk of the chunked container that tascond writes (any power of two from
4 KiB to 64 MiB is valid)."""

CHUNKED_MIN_BYTES = 4 * 2**20
"""tascond writes the chunked container when the archive's arrays (codes, weights, segment and video
arrays) hold at least this many bytes; smaller archives keep the single frame of 1.0 to 1.3, byte for
byte what earlier writers produce."""

SHARED_CODES_VERSION: tuple[int, int] = (1, 1)
"""The version that added shared codes (``/segments/code_source``)."""

VERSION_OF_KIND: dict[str, tuple[int, int]] = {"lowrank": (1, 2)}
"""Decoder kinds added after 1.0, with the version that added them."""

VERSION_OF_WEIGHT: dict[str, tuple[int, int]] = {"frequencies": (1, 3), "residual.basis_std": (1, 4)}
"""Decoder weights added after their kind, with the version that added them (``lowrank``'s DCT codes and
its ``"split"`` residual noise)."""

BASE_VERSION: tuple[int, int] = (1, 0)
"""The version of archives that use nothing added after 1.0."""

MAGIC = b"\x89TCD\r\n\x1a\n"
"""First 8 bytes of every archive (PNG-style: catches 7-bit and text-mode mangling)."""

HEADER = struct.Struct("<8sHHQQ")
"""magic, major, minor, uncompressed size, compressed size."""

HEADER_SIZE = HEADER.size  # 28

DEFAULT_LEVEL = 19
"""zstd compression level used by default."""

DEFAULT_MAX_BYTES = 16 * 2**30
"""Largest uncompressed payload the reader accepts by default (16 GiB)."""

MAX_TOTAL_FRAMES = 2**32
"""The total number of frames of an archive must be below this (docs/format.md, 4.7)."""

MAX_DIM = 2**16
"""Largest feature dimension D (``settings.dim``)."""

MAX_VIDEO_FRAMES = 2**24
"""Most frames one video may have."""

MAX_VIDEO_VALUES = 2**30
"""Most feature values (D times frames) one video may restore to: 4 GiB of float32, what restoring one
video holds in memory at once."""

MAX_EXPANSION = 2**22
"""Default limit of the expansion ratio: restored bytes (4 D times the total frames) over the archive's
bytes. Readers given an explicit restore-size limit (``max_restore_bytes``) use that instead."""

MAX_PAYLOAD_RATIO = 1024
"""The uncompressed payload may be at most this many times the compressed frame, plus
:data:`PAYLOAD_SLACK` (a zstd bomb declares far more)."""

PAYLOAD_SLACK = 2**20
"""Uncompressed bytes every payload may have beyond :data:`MAX_PAYLOAD_RATIO` times its frame."""

MAX_FEATURE_MAGNITUDE = 1e30
"""Largest magnitude a decoder kind's declared output bound may reach (restored features are float32,
finite up to 3.4e38)."""

MAX_VIDEO_NAME_BYTES = 200
"""Longest video name, in bytes of UTF-8 (``<name>.npy`` must be a valid file name)."""

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

# Fixed HDF5 file-format version range: part of what makes the payload deterministic.
LIBVER = ("v110", "v110")
WEIGHT_NAME_RE = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")
VLEN_ITEMSIZE = 16  # bytes an HDF5 variable-length element takes in its dataset

# HDF5 paths of the payload's objects (docs/format.md, section 3).
P_SETTINGS = "/settings"
P_CLASS_NAMES = "/classes/names"
P_VIDEO_NAMES = "/videos/names"
P_VIDEO_SEGMENTS = "/videos/segment_offsets"
P_VIDEO_FRAMES = "/videos/frames"
P_SEGMENT_LABELS = "/segments/labels"
P_SEGMENT_LENGTHS = "/segments/lengths"
P_SEGMENT_CODES = "/segments/code_offsets"
P_SEGMENT_SOURCES = "/segments/code_source"
P_CODES = "/codes"
P_DECODER_KIND = "/decoder/kind"
P_DECODER_CONFIG = "/decoder/config"
P_DECODER_WEIGHTS = "/decoder/weights"
