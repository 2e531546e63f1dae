"""The container (docs/format.md, section 2): a 28-byte header and one zstd frame holding the payload."""

from __future__ import annotations

from collections.abc import Callable

import zstandard

from tascond_cli.archive.constants import (
    DEFAULT_LEVEL,
    FORMAT_VERSION,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_PAYLOAD_RATIO,
    PAYLOAD_SLACK,
)
from tascond_cli.archive.model import ArchiveError

__all__ = ["wrap_payload"]


def check_level(level: int) -> int:
    """``level`` if it is a valid zstd level (else ValueError)."""
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= zstandard.MAX_COMPRESSION_LEVEL:
        raise ValueError(f"zstd level must be an integer from 1 to {zstandard.MAX_COMPRESSION_LEVEL}, not {level!r}")
    return level


def compress(data: bytes, level: int) -> bytes:
    """One zstd frame of ``data`` with its content size and checksum (what the container holds)."""
    cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True, threads=0)
    return cctx.compress(data)


def wrap_payload(payload: bytes, *, level: int = DEFAULT_LEVEL, version: tuple[int, int] = FORMAT_VERSION) -> bytes:
    """Header + one zstd frame of ``payload``: the container of docs/format.md, section 2.

    Low level: no check of the payload (tests use it to build bad archives).
    """
    frame = compress(bytes(payload), check_level(level))
    return HEADER.pack(MAGIC, version[0], version[1], len(payload), len(frame)) + frame


class ByteSource:
    """Sequential reads from bytes, a path or a binary stream; ``size`` is known except for streams."""

    def __init__(self, read: Callable[[int], bytes], size: int | None) -> None:
        self._read, self.size = read, size

    def read_exact(self, n: int) -> bytes:
        """Up to ``n`` bytes: fewer only at the end of the data."""
        parts, got = [], 0
        while got < n:
            chunk = self._read(min(n - got, 1 << 24))
            if not chunk:
                break
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError("archives must be read from a binary stream")
            parts.append(bytes(chunk))
            got += len(chunk)
        return b"".join(parts)


def read_container(src: ByteSource, max_bytes: int) -> tuple[tuple[int, int], bytes, int]:
    """Check the header and return (version, decompressed payload, the archive's bytes); docs/format.md, 2.1."""
    head = src.read_exact(HEADER_SIZE)
    if not head:
        raise ArchiveError("empty file, not a tascond archive")
    if head[:8] != MAGIC[: len(head[:8])]:
        raise ArchiveError("not a tascond archive (wrong magic bytes)")
    if len(head) < HEADER_SIZE:
        raise ArchiveError(f"truncated: {len(head)} bytes, the header alone is {HEADER_SIZE}")
    _, major, minor, usize, zsize = HEADER.unpack(head)
    if major > FORMAT_VERSION[0]:
        raise ArchiveError(
            f"archive format {major}.{minor} is newer than this tascond supports ({FORMAT_VERSION[0]}.x)"
        )
    if major < 1:
        raise ArchiveError(f"archive format {major}.{minor} is not supported ({FORMAT_VERSION[0]}.x only)")
    if usize > max_bytes:
        raise ArchiveError(f"uncompressed content of {usize} bytes is over the limit of {max_bytes} bytes")
    if zsize > usize + usize // 128 + 1024:
        raise ArchiveError(f"header is corrupt: {zsize} compressed bytes cannot hold {usize} bytes")
    if usize > MAX_PAYLOAD_RATIO * zsize + PAYLOAD_SLACK:
        raise ArchiveError(
            f"header declares {usize} uncompressed bytes from {zsize} compressed ones, more than the limit of "
            f"{MAX_PAYLOAD_RATIO} times plus {PAYLOAD_SLACK} (a decompression bomb?)"
        )
    if src.size is not None and src.size != HEADER_SIZE + zsize:
        present = src.size - HEADER_SIZE
        if present < zsize:
            raise ArchiveError(f"truncated: header announces {zsize} compressed bytes, only {present} present")
        raise ArchiveError(f"{present - zsize} bytes of trailing data after the end of the archive")
    frame = src.read_exact(zsize)
    if len(frame) < zsize:
        raise ArchiveError(f"truncated: header announces {zsize} compressed bytes, only {len(frame)} present")
    if src.size is None and src.read_exact(1):
        raise ArchiveError("trailing data after the end of the archive")
    try:
        params = zstandard.get_frame_parameters(frame)
    except zstandard.ZstdError:
        raise ArchiveError("compressed data is not a zstd frame") from None
    if params.content_size == zstandard.CONTENTSIZE_UNKNOWN:
        raise ArchiveError("zstd frame does not record its content size")
    if params.content_size != usize:
        raise ArchiveError(f"header says {usize} uncompressed bytes, the zstd frame says {params.content_size}")
    if not params.has_checksum:
        raise ArchiveError("zstd frame has no checksum")
    if params.dict_id:
        raise ArchiveError("zstd frame needs a dictionary")
    try:
        payload = zstandard.ZstdDecompressor().decompress(frame, max_output_size=usize, allow_extra_data=False)
    except zstandard.ZstdError as e:
        raise ArchiveError(f"corrupt compressed data ({e})") from None
    if len(payload) != usize:
        raise ArchiveError(f"corrupt compressed data ({len(payload)} bytes instead of {usize})")
    return (major, minor), payload, HEADER_SIZE + zsize
