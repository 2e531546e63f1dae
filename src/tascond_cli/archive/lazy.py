"""Random access into archives: :func:`open_archive` reads the metadata, the decoder and, later, only the
codes of the videos that are asked for (docs/format.md, section 2.2).

A chunked archive (format 1.4) is opened by checking its header and index, then parsing its HDF5 payload
in the watchdog (:mod:`.guard`) through a :class:`~tascond_cli.archive.chunked.ChunkReader`, which
decompresses only the chunks libhdf5 touches: the metadata, the structure arrays and the weights. The
codes are not read then: the watchdog reports where their bytes lie in the payload, and
:class:`LazyCodes` reads the rows a video needs straight from those bytes (no libhdf5 in this process),
decompressing and checking only their chunks. Every rule that does not need the codes' values is checked
on open; a video's codes are checked (finite, within the decoder kind's output bound) when it is read.

Archives of format 1.0 to 1.3 (one zstd frame) and streams are read whole: :func:`open_archive` then
gives what :func:`~tascond_cli.archive.reader.read_archive` gives.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from tascond_cli.archive.chunked import CHUNK_CACHE, ChunkReader, check_chunked_header, file_pread, read_index
from tascond_cli.archive.constants import DEFAULT_MAX_BYTES, HDF5_SIGNATURE, HEADER, P_CODES
from tascond_cli.archive.container import ByteSource, check_size, is_chunked, read_header
from tascond_cli.archive.guard import CAN_FORK, guarded_extract
from tascond_cli.archive.model import Archive, ArchiveError, VideoEntry
from tascond_cli.archive.reader import (
    Source,
    _prefixed,
    archive_from_fields,
    check_restore_size,
    extract_lazy,
    read_archive,
)
from tascond_cli.archive.validate import check_video_codes

__all__ = ["LazyArchive", "LazyCodes", "container_layout", "open_archive"]

_CODE_DTYPES = {s: np.dtype(s) for s in ("<f2", ">f2", "<f4", ">f4", "|i1")}


class LazyCodes:
    """The ``/codes`` of a chunked archive, read on demand: a read-only ``(N, d)`` array that supports
    row slices, row indices and index arrays (what :meth:`Archive.video` uses); ``np.asarray`` reads all.

    Rows come straight from the payload's bytes at the place the watchdog reported, in native byte order.
    """

    ndim = 2

    def __init__(self, reader: ChunkReader, offset: int, shape: tuple[int, int], stored: np.dtype) -> None:
        self.reader, self.offset, self.shape, self.stored = reader, offset, shape, stored
        self.dtype = stored.newbyteorder("=")
        self.row_bytes = stored.itemsize * shape[1]

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start`` to ``stop - 1``, a new array."""
        n = max(0, stop - start)
        data = self.reader.pread(self.offset + start * self.row_bytes, n * self.row_bytes)
        if len(data) != n * self.row_bytes:
            raise ArchiveError(f"{P_CODES}: its rows extend past the end of the content")
        return np.frombuffer(data, dtype=self.stored).reshape(n, self.shape[1]).astype(self.dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        n = self.shape[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                return self.rows(start, max(start, stop))
            return self._take(np.arange(start, stop, step, dtype=np.int64))
        if isinstance(key, (int, np.integer)):
            i = int(key) + (n if key < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"code row {int(key)} out of range ({n} rows)")
            return self.rows(i, i + 1)[0]
        idx = np.asarray(key)
        if idx.dtype == bool and idx.shape == (n,):
            return self._take(np.flatnonzero(idx))
        if idx.dtype.kind in "iu" and idx.ndim == 1:
            return self._take(idx.astype(np.int64))
        raise TypeError(f"lazily read codes take a row slice, a row or a 1-D index array, not {key!r}")

    def _take(self, idx: np.ndarray) -> np.ndarray:
        """The rows ``idx`` (any order, repeats allowed), reading each run of consecutive rows once."""
        n = self.shape[0]
        idx = np.where(idx < 0, idx + n, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"code row out of range ({n} rows)")
        if not idx.size:
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        rows = np.unique(idx)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        starts = rows[np.concatenate([[0], breaks])]
        stops = rows[np.concatenate([breaks - 1, [rows.shape[0] - 1]])] + 1
        block = np.concatenate([self.rows(int(a), int(b)) for a, b in zip(starts, stops)])
        return block[np.searchsorted(rows, idx)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.rows(0, self.shape[0])
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"<LazyCodes {self.shape} {self.dtype}>"


class LazyArchive(Archive):
    """An :class:`Archive` opened for random access (:func:`open_archive`): :attr:`codes` is a
    :class:`LazyCodes`, and :meth:`video` reads and checks one video's codes. Close it when done (or use
    it as a context manager); it pickles by opening its source again."""

    def __init__(self, archive: Archive, reader: ChunkReader, reopen: tuple[Any, dict], opened: int,
                 closer: Any = None) -> None:
        super().__init__(**{f.name: getattr(archive, f.name) for f in dataclasses.fields(Archive)})
        self.reader, self._reopen, self._opened, self._closer = reader, reopen, opened, closer

    @property
    def chunks_read(self) -> int:
        """Chunks decompressed so far: to open the archive (in the watchdog) and since."""
        return self._opened + self.reader.decompressed

    def video(self, i: int) -> VideoEntry:
        """Video ``i``, its codes read now and checked (finite, within the output bound: ArchiveError)."""
        entry = super().video(i)
        check_video_codes(self, entry.name, entry.codes)
        return entry

    def close(self) -> None:
        if self._closer is not None:
            self._closer.close()

    def __enter__(self) -> LazyArchive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, tuple]:
        return _reopen, self._reopen


def _reopen(source: Any, options: dict) -> Archive:
    return open_archive(source, **options)


def open_archive(
    source: Source,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    name: str | None = None,
    max_restore_bytes: int | None = None,
    parse_timeout: float | None = None,
    cache_chunks: int = CHUNK_CACHE,
) -> Archive:
    """Open an archive for random access: a :class:`LazyArchive` for a chunked archive (format 1.4) given
    as a path or bytes, else the archive read whole (:func:`~tascond_cli.archive.reader.read_archive`, whose
    options these are). ``cache_chunks``: decompressed chunks kept in memory.
    Any problem raises :class:`ArchiveError`, one line naming the file.
    """
    limits = {"max_bytes": max_bytes, "name": name, "max_restore_bytes": max_restore_bytes,
              "parse_timeout": parse_timeout}
    reopen = (source, {**limits, "cache_chunks": cache_chunks})
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        if not path.is_file():
            return read_archive(path, **limits)
        try:
            fh = open(path, "rb")
        except OSError as e:
            raise ArchiveError(_prefixed(label, f"cannot read ({e.strerror or e})")) from None
        try:
            src = ByteSource(fh.read, os.fstat(fh.fileno()).st_size)
            lazy = _open(src, file_pread(fh), limits, cache_chunks, reopen, fh)
        except ArchiveError as e:
            fh.close()
            raise ArchiveError(_prefixed(label, str(e))) from None
        except BaseException:
            fh.close()
            raise
        if lazy is None:
            fh.close()
            return read_archive(path, **limits)
        return lazy
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        view = memoryview(data)
        try:
            lazy = _open(ByteSource(_reader_of(view), len(data)), lambda at, n: bytes(view[at : at + n]), limits,
                         cache_chunks, reopen, None)
        except ArchiveError as e:
            raise ArchiveError(_prefixed(name, str(e))) from None
        return read_archive(data, **limits) if lazy is None else lazy
    return read_archive(source, **limits)


def _reader_of(view: memoryview) -> Any:
    pos = [0]

    def read(n: int) -> bytes:
        part = bytes(view[pos[0] : pos[0] + n])
        pos[0] += len(part)
        return part

    return read


def _open(src: ByteSource, pread: Any, limits: dict, cache: int, reopen: tuple, closer: Any) -> LazyArchive | None:
    """The lazily opened archive, or ``None`` when it is not chunked (read it whole instead)."""
    head = read_header(src)
    first = src.read_exact(4)
    src.unread(first)
    if not is_chunked(head, first):
        return None
    _, _, _, usize, zsize = HEADER.unpack(head)
    check_chunked_header(usize, zsize, limits["max_bytes"])
    check_size(src, zsize)
    index = read_index(head, src.read_exact)
    reader = ChunkReader(index, pread, cache)
    if reader.pread(0, len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
        raise ArchiveError("content is not an HDF5 file")
    fields = guarded_extract(extract_lazy, reader, timeout=limits["parse_timeout"], size=usize)
    opened = fields.pop("chunks_read", None)
    if not isinstance(opened, np.ndarray) or opened.shape != (1,):
        raise ArchiveError("malformed HDF5 content (the parser's reply is inconsistent)")
    codes = _codes(reader, fields)
    archive = archive_from_fields(fields, codes, lazy=isinstance(codes, LazyCodes))
    check_restore_size(archive, index.end, limits["max_restore_bytes"])
    return LazyArchive(archive, reader, reopen, int(opened[0]) if CAN_FORK else 0, closer)


def _codes(reader: ChunkReader, fields: dict[str, Any]) -> Any:
    """The codes: in memory as the watchdog sent them, or a :class:`LazyCodes` at the place it reported,
    after checking that place lies within the payload."""
    at, name = fields.pop("codes_at", None), fields.pop("codes_dtype", None)
    if at is None:
        codes = fields.get("codes")
        if not isinstance(codes, np.ndarray):
            raise ArchiveError("malformed HDF5 content (codes could not be read)")
        return codes
    stored = _CODE_DTYPES.get(name) if isinstance(name, str) else None
    if stored is None or not isinstance(at, np.ndarray) or at.shape != (3,):
        raise ArchiveError("malformed HDF5 content (the parser's reply is inconsistent)")
    offset, rows, cols = (int(v) for v in at)
    if offset < 0 or rows < 0 or cols < 0 or offset + rows * cols * stored.itemsize > reader.size:
        raise ArchiveError(f"{P_CODES}: its data lies outside the content")
    return LazyCodes(reader, offset, (rows, cols), stored)


def container_layout(path: str | os.PathLike[str]) -> dict[str, Any]:
    """How the archive at ``path`` is stored: ``{"layout": "single frame"}`` or ``{"layout": "chunked",
    "chunks": K, "chunk_size": C}`` (its index checked); an :class:`ArchiveError` for a bad container."""
    with open(path, "rb") as fh:
        src = ByteSource(fh.read, os.fstat(fh.fileno()).st_size)
        try:
            head = read_header(src)
            first = src.read_exact(4)
            src.unread(first)
            if not is_chunked(head, first):
                return {"layout": "single frame"}
            _, _, _, usize, zsize = HEADER.unpack(head)
            check_size(src, zsize)
            index = read_index(head, src.read_exact)
        except ArchiveError as e:
            raise ArchiveError(f"{path}: {e}") from None
    return {"layout": "chunked", "chunks": index.count, "chunk_size": index.chunk_size}
