"""The chunked container of format 1.4 (docs/format.md, section 2.2): random access into an archive.

After the 28-byte header comes an *index* (chunk size, chunk count, one entry per chunk: offset,
compressed size, uncompressed size and CRC-32 of the compressed bytes; then a CRC-32 of the header and
the index), then the chunks: the HDF5 payload cut into pieces of ``chunk_size`` bytes (the last one
shorter), each one zstd frame with its content size and checksum. A reader checks the whole index
before it decompresses anything, and each chunk (its CRC, its frame header, its exact size) when it
reads it, so that reading one video decompresses only the chunks that hold it.

:class:`ChunkReader` reads chunks from random-access bytes (a file through ``os.pread``, or bytes) with a
small cache; :class:`PayloadFile` is the file-like view of the payload that h5py opens;
:func:`read_sequential` reads every chunk in order from a stream (the eager path, non-seekable input
included); :func:`write_chunks` compresses a payload file chunk by chunk into an output file.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import zstandard

from tascond_cli.archive.constants import HEADER, HEADER_SIZE, MAGIC, MAX_PAYLOAD_RATIO, PAYLOAD_SLACK
from tascond_cli.archive.model import ArchiveError

__all__ = [
    "CHUNK_CACHE",
    "ChunkIndex",
    "ChunkReader",
    "PayloadFile",
    "file_pread",
    "index_size",
    "parse_index",
    "read_index",
    "read_sequential",
    "write_chunks",
]

INDEX_HEAD = struct.Struct("<II")
"""The index's fixed part: uncompressed chunk size, number of chunks."""
ENTRY = np.dtype([("offset", "<u8"), ("zsize", "<u8"), ("usize", "<u4"), ("crc", "<u4")])
"""One index entry (24 bytes): file offset of the chunk's frame, its compressed and uncompressed sizes,
and the CRC-32 of its compressed bytes."""
INDEX_CRC = struct.Struct("<I")
"""The index's last field: CRC-32 of the 28-byte header and the index before it."""
MIN_CHUNK_SIZE = 2**12
MAX_CHUNK_SIZE = 2**26
CHUNK_CACHE = 8
"""Decompressed chunks a :class:`ChunkReader` keeps (least recently used out first)."""


def index_size(count: int) -> int:
    """Bytes of the index of ``count`` chunks."""
    return INDEX_HEAD.size + ENTRY.itemsize * count + INDEX_CRC.size


def frame_bound(n: int) -> int:
    """The most compressed bytes a frame of ``n`` content bytes may take (zstd's output is always below)."""
    return n + n // 128 + 1024


def crc32(data: Any, value: int = 0) -> int:
    return zlib.crc32(data, value) & 0xFFFFFFFF


@dataclass(frozen=True)
class ChunkIndex:
    """A checked index: where every chunk's frame lies and what it holds."""

    chunk_size: int
    payload_size: int
    offsets: np.ndarray
    """``(K,)`` int64 file offset of each chunk's frame."""
    zsizes: np.ndarray
    """``(K,)`` int64 compressed bytes of each chunk."""
    crcs: np.ndarray
    """``(K,)`` int64 CRC-32 of each chunk's compressed bytes."""
    end: int
    """The file's size: ``28 + Z``."""

    @property
    def count(self) -> int:
        return int(self.offsets.shape[0])

    def usize(self, i: int) -> int:
        """Uncompressed bytes of chunk ``i``."""
        return min(self.chunk_size, self.payload_size - i * self.chunk_size)


def _check_fixed(chunk_size: int, count: int, usize: int, zsize: int) -> None:
    if usize == 0:
        raise ArchiveError("header is corrupt: the payload is empty")
    if chunk_size & (chunk_size - 1) or not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ArchiveError(
            f"index is corrupt: chunk size {chunk_size} is not a power of two from {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE}"
        )
    want = -(-usize // chunk_size)
    if count != want:
        raise ArchiveError(f"index is corrupt: {count} chunks, {usize} bytes in chunks of {chunk_size} need {want}")
    if index_size(count) > zsize:
        raise ArchiveError(f"truncated: an index of {count} chunks does not fit in the {zsize} bytes the header announces")


def check_chunked_header(usize: int, zsize: int, max_bytes: int) -> None:
    """The header's sizes for a chunked archive: bounded payload, no decompression bomb (section 2.2)."""
    if usize > max_bytes:
        raise ArchiveError(f"uncompressed content of {usize} bytes is over the limit of {max_bytes} bytes")
    if usize == 0:
        raise ArchiveError("header is corrupt: the payload is empty")
    if usize > MAX_PAYLOAD_RATIO * zsize + PAYLOAD_SLACK:
        raise ArchiveError(
            f"header declares {usize} uncompressed bytes from {zsize} compressed ones, more than the limit of "
            f"{MAX_PAYLOAD_RATIO} times plus {PAYLOAD_SLACK} (a decompression bomb?)"
        )
    if zsize < index_size(1):
        raise ArchiveError(f"truncated: {zsize} bytes after the header cannot hold an index and a chunk")


def parse_index(head: bytes, index: bytes) -> ChunkIndex:
    """The checked index: ``head`` the 28-byte header, ``index`` the index's bytes (CRC included).

    Every entry is checked against the header before any chunk is read: sizes, a contiguous layout that
    ends exactly at the end of the file, and each frame within the bound of its content.
    """
    _, _, _, usize, zsize = HEADER.unpack(head)
    chunk_size, count = INDEX_HEAD.unpack_from(index)
    _check_fixed(chunk_size, count, usize, zsize)
    if len(index) != index_size(count):
        raise ArchiveError(f"truncated: the index of {count} chunks is cut short")
    (stored,) = INDEX_CRC.unpack_from(index, len(index) - INDEX_CRC.size)
    if crc32(index[: -INDEX_CRC.size], crc32(head)) != stored:
        raise ArchiveError("index is corrupt (its checksum does not match)")
    entries = np.frombuffer(index, dtype=ENTRY, count=count, offset=INDEX_HEAD.size)
    usizes = np.full(count, chunk_size, dtype=np.int64)
    usizes[-1] = usize - (count - 1) * chunk_size
    bad = entries["usize"].astype(np.int64) != usizes
    if bad.any():
        i = int(np.argmax(bad))
        raise ArchiveError(f"index is corrupt: chunk {i} declares {int(entries['usize'][i])} bytes, not {int(usizes[i])}")
    zsizes = entries["zsize"]
    bad = (zsizes < 1) | (zsizes > usizes.astype(np.uint64) + usizes.astype(np.uint64) // 128 + 1024)
    if bad.any():
        i = int(np.argmax(bad))
        raise ArchiveError(f"index is corrupt: chunk {i} declares {int(zsizes[i])} compressed bytes for {int(usizes[i])}")
    zsizes = zsizes.astype(np.int64)  # each below 2**27: sums cannot overflow
    starts = HEADER_SIZE + index_size(count) + np.concatenate([[0], np.cumsum(zsizes)[:-1]])
    bad = entries["offset"] != starts.astype(np.uint64)
    if bad.any():
        i = int(np.argmax(bad))
        raise ArchiveError(f"index is corrupt: chunk {i} is at offset {int(entries['offset'][i])}, not {int(starts[i])}")
    end = int(starts[-1] + zsizes[-1])
    if end != HEADER_SIZE + zsize:
        raise ArchiveError(f"index is corrupt: its chunks end at byte {end}, the header says {HEADER_SIZE + zsize}")
    return ChunkIndex(chunk_size, usize, starts.astype(np.int64), zsizes, entries["crc"].astype(np.int64), end)


def read_index(head: bytes, read: Callable[[int], bytes]) -> ChunkIndex:
    """Read the index that follows ``head`` with ``read(n)`` (sequential reads), then check it."""
    _, _, _, usize, zsize = HEADER.unpack(head)
    fixed = read(INDEX_HEAD.size)
    if len(fixed) < INDEX_HEAD.size:
        raise ArchiveError("truncated: the index is cut short")
    chunk_size, count = INDEX_HEAD.unpack(fixed)
    _check_fixed(chunk_size, count, usize, zsize)
    rest = read(index_size(count) - INDEX_HEAD.size)
    return parse_index(head, fixed + rest)


def decompress_chunk(index: ChunkIndex, i: int, frame: bytes) -> bytes:
    """Chunk ``i``'s content from its compressed bytes: CRC, frame header, then exact size (ArchiveError)."""
    usize = index.usize(i)
    if len(frame) != int(index.zsizes[i]):
        raise ArchiveError(f"truncated: chunk {i} has {len(frame)} of its {int(index.zsizes[i])} bytes")
    if crc32(frame) != int(index.crcs[i]):
        raise ArchiveError(f"chunk {i} is corrupt (its checksum does not match)")
    try:
        params = zstandard.get_frame_parameters(frame)
    except zstandard.ZstdError:
        raise ArchiveError(f"chunk {i} is not a zstd frame") from None
    if params.content_size != usize or not params.has_checksum or params.dict_id:
        raise ArchiveError(f"chunk {i}: its zstd frame must record {usize} bytes and a checksum, and need no dictionary")
    return decompress_exact(frame, usize, f"chunk {i}: ")


def decompress_exact(frame: bytes, usize: int, where: str = "") -> bytes:
    """The content of one checked zstd ``frame``, which must be exactly ``usize`` bytes (never more is
    decompressed); otherwise an ArchiveError whose message starts with ``where``."""
    try:
        data = zstandard.ZstdDecompressor().decompress(frame, max_output_size=usize, allow_extra_data=False)
    except zstandard.ZstdError as e:
        raise ArchiveError(f"{where}corrupt compressed data ({e})") from None
    if len(data) != usize:
        raise ArchiveError(f"{where}corrupt compressed data ({len(data)} bytes instead of {usize})")
    return data


def read_sequential(index: ChunkIndex, read: Callable[[int], bytes]) -> bytearray:
    """Every chunk, in order, from the bytes right after the index: the whole payload (eager reading)."""
    payload = bytearray()
    for i in range(index.count):
        payload += decompress_chunk(index, i, read(int(index.zsizes[i])))
    return payload


# -- random access ---------------------------------------------------------------------------------------

Pread = Callable[[int, int], bytes]
"""``pread(offset, n)``: up to ``n`` bytes of the archive file from ``offset`` (fewer only at its end)."""


def file_pread(fh: BinaryIO) -> Pread:
    """Positional reads from an open file (``os.pread``: safe to share across forked processes)."""
    fd = fh.fileno()

    def pread(offset: int, n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            part = os.pread(fd, n - got, offset + got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    return pread


class ChunkReader:
    """The payload of a chunked archive, read by position: decompresses and checks only the chunks a read
    touches, keeping the last :data:`CHUNK_CACHE` of them. :attr:`decompressed` counts decompressions."""

    def __init__(self, index: ChunkIndex, pread: Pread, cache: int = CHUNK_CACHE) -> None:
        self.index, self._pread, self._cache_size = index, pread, max(1, cache)
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self.decompressed = 0
        self.error: ArchiveError | None = None

    @property
    def size(self) -> int:
        return self.index.payload_size

    def chunk(self, i: int) -> bytes:
        data = self._cache.get(i)
        if data is not None:
            self._cache.move_to_end(i)
            return data
        try:
            data = decompress_chunk(self.index, i, self._pread(int(self.index.offsets[i]), int(self.index.zsizes[i])))
        except ArchiveError as e:
            self.error = self.error or e  # h5py turns a failed read into its own error: keep ours
            raise
        self.decompressed += 1
        self._cache[i] = data
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return data

    def pread(self, offset: int, n: int) -> bytes:
        """``n`` payload bytes from ``offset`` (fewer only at the payload's end)."""
        n = max(0, min(n, self.size - offset))
        parts, size = [], self.index.chunk_size
        while n > 0:
            i, at = divmod(offset, size)
            part = self.chunk(i)[at : at + n]
            parts.append(part)
            offset, n = offset + len(part), n - len(part)
        return b"".join(parts)


class PayloadFile:
    """A read-only, seekable file object over a :class:`ChunkReader`: what h5py opens."""

    def __init__(self, reader: ChunkReader) -> None:
        self.reader, self.pos = reader, 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self.pos, self.reader.size)[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, n: int = -1) -> bytes:
        n = self.reader.size - self.pos if n is None or n < 0 else n
        data = self.reader.pread(self.pos, n)
        self.pos += len(data)
        return data

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


# -- writing ---------------------------------------------------------------------------------------------


def write_chunks(
    payload: BinaryIO, usize: int, out: BinaryIO, *, level: int, version: tuple[int, int], chunk_size: int
) -> int:
    """Compress ``usize`` bytes of ``payload`` (read from its start) chunk by chunk into the seekable
    ``out`` (written from its current position): header, index, frames; returns the bytes written."""
    if chunk_size & (chunk_size - 1) or not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk size must be a power of two from {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE}, not {chunk_size}")
    count = -(-usize // chunk_size)
    start = out.tell()
    out.write(bytes(HEADER_SIZE + index_size(count)))  # filled in once the frames are written
    cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True, threads=0)
    entries = np.zeros(count, dtype=ENTRY)
    at = HEADER_SIZE + index_size(count)
    payload.seek(0)
    for i in range(count):
        data = payload.read(min(chunk_size, usize - i * chunk_size))
        frame = cctx.compress(data)
        entries[i] = (at, len(frame), len(data), crc32(frame))
        out.write(frame)
        at += len(frame)
    head = HEADER.pack(MAGIC, version[0], version[1], usize, at - HEADER_SIZE)
    body = INDEX_HEAD.pack(chunk_size, count) + entries.tobytes()
    end = out.tell()
    out.seek(start)
    out.write(head + body + INDEX_CRC.pack(crc32(body, crc32(head))))
    out.seek(end)
    return at
