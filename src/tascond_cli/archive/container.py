"""The container (docs/format.md, section 2): a 28-byte header, then one zstd frame holding the payload
(format 1.0 to 1.3) or the chunked layout of :mod:`.chunked` (format 1.4)."""

from __future__ import annotations

import io
from collections.abc import Callable

import zstandard

from tascond_cli.archive.chunked import check_chunked_header, decompress_exact, read_index, read_sequential, write_chunks
from tascond_cli.archive.constants import (
    CHUNK_SIZE,
    CHUNKED_VERSION,
    DEFAULT_LEVEL,
    FORMAT_VERSION,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_PAYLOAD_RATIO,
    PAYLOAD_SLACK,
)
from tascond_cli.archive.model import ArchiveError

__all__ = ["wrap_payload", "wrap_payload_chunked"]


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


def wrap_payload_chunked(
    payload: bytes, *, level: int = DEFAULT_LEVEL, version: tuple[int, int] = CHUNKED_VERSION,
    chunk_size: int = CHUNK_SIZE,
) -> bytes:
    """Header, index and chunks of ``payload``: the chunked container of docs/format.md, section 2.2.

    Low level: no check of the payload or the version (tests use it to build bad archives).
    """
    out = io.BytesIO()
    write_chunks(io.BytesIO(bytes(payload)), len(payload), out, level=check_level(level), version=version,
                 chunk_size=chunk_size)
    return out.getvalue()


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
"""First bytes of a zstd frame: what follows the header of a single-frame archive."""


class ByteSource:
    """Sequential reads from bytes, a path or a binary stream; ``size`` is known except for streams."""

    def __init__(self, read: Callable[[int], bytes], size: int | None) -> None:
        self._read, self.size = read, size
        self._back = b""

    def unread(self, data: bytes) -> None:
        """Give back bytes just read: the next read starts with them."""
        self._back = data + self._back

    def read_exact(self, n: int) -> bytes:
        """Up to ``n`` bytes: fewer only at the end of the data."""
        parts, got = [self._back[:n]], len(self._back[:n])
        self._back = self._back[n:]
        while got < n:
            chunk = self._read(min(n - got, 1 << 24))
            if not chunk:
                break
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError("archives must be read from a binary stream")
            parts.append(bytes(chunk))
            got += len(chunk)
        return b"".join(parts)


def read_header(src: ByteSource) -> bytes:
    """The 28-byte header, after checking the magic, its length and the major version (section 2.1, 1-3)."""
    head = src.read_exact(HEADER_SIZE)
    if not head:
        raise ArchiveError("empty file, not a tascond archive")
    if head[:8] != MAGIC[: len(head[:8])]:
        raise ArchiveError("not a tascond archive (wrong magic bytes)")
    if len(head) < HEADER_SIZE:
        raise ArchiveError(f"truncated: {len(head)} bytes, the header alone is {HEADER_SIZE}")
    _, major, minor, _, _ = HEADER.unpack(head)
    if major > FORMAT_VERSION[0]:
        raise ArchiveError(
            f"archive format {major}.{minor} is newer than this tascond supports ({FORMAT_VERSION[0]}.x)"
        )
    if major < 1:
        raise ArchiveError(f"archive format {major}.{minor} is not supported ({FORMAT_VERSION[0]}.x only)")
    return head


def is_chunked(head: bytes, first: bytes) -> bool:
    """Whether a checked header and the 4 bytes after it (``first``) begin the chunked container: a
    version of 1.4 or later and no zstd frame there (section 2.2)."""
    _, _, minor, _, _ = HEADER.unpack(head)
    return minor >= CHUNKED_VERSION[1] and len(first) == 4 and first != ZSTD_MAGIC


def check_size(src: ByteSource, zsize: int) -> None:
    """Exactly ``zsize`` bytes follow the header, when the source's size is known (section 2.1, 5)."""
    if src.size is not None and src.size != HEADER_SIZE + zsize:
        present = src.size - HEADER_SIZE
        if present < zsize:
            raise ArchiveError(f"truncated: header announces {zsize} compressed bytes, only {present} present")
        raise ArchiveError(f"{present - zsize} bytes of trailing data after the end of the archive")


def read_container(src: ByteSource, max_bytes: int) -> tuple[tuple[int, int], bytes, int]:
    """Check the header and return (version, decompressed payload, the archive's bytes); docs/format.md,
    2.1 (one zstd frame) and 2.2 (chunks, read in order: non-seekable sources work too)."""
    head = read_header(src)
    _, major, minor, usize, zsize = HEADER.unpack(head)
    first = src.read_exact(4)
    src.unread(first)
    if is_chunked(head, first):
        check_chunked_header(usize, zsize, max_bytes)
        check_size(src, zsize)
        index = read_index(head, src.read_exact)
        payload = read_sequential(index, src.read_exact)
        if src.size is None and src.read_exact(1):
            raise ArchiveError("trailing data after the end of the archive")
        return (major, minor), payload, HEADER_SIZE + zsize
    return (major, minor), _read_frame(src, usize, zsize, max_bytes), HEADER_SIZE + zsize


def _read_frame(src: ByteSource, usize: int, zsize: int, max_bytes: int) -> bytes:
    """The payload of a single-frame archive (format 1.0 to 1.3), checked as section 2.1 says."""
    if usize > max_bytes:
        raise ArchiveError(f"uncompressed content of {usize} bytes is over the limit of {max_bytes} bytes")
    if zsize > usize + usize // 128 + 1024:
        raise ArchiveError(f"header is corrupt: {zsize} compressed bytes cannot hold {usize} bytes")
    if usize > MAX_PAYLOAD_RATIO * zsize + PAYLOAD_SLACK:
        raise ArchiveError(
            f"header declares {usize} uncompressed bytes from {zsize} compressed ones, more than the limit of "
            f"{MAX_PAYLOAD_RATIO} times plus {PAYLOAD_SLACK} (a decompression bomb?)"
        )
    check_size(src, zsize)
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
    return decompress_exact(frame, usize)
