"""Writing archives: the deterministic HDF5 payload, wrapped in the container, to a path or a stream.

The writer checks every rule first (:func:`~tascond_cli.archive.validate.validate_archive`), so it never
writes an archive the reader would refuse, and the same archive always gives the same bytes. It streams:
the payload is built in a temporary file, large arrays written in slices (codes may be ``np.memmap``
arrays on disk), then compressed from there into the output, as one zstd frame (format 1.0 to 1.3) or
chunk by chunk (the chunked container of format 1.4, for archives of :data:`CHUNKED_MIN_BYTES` of arrays
and more).
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from typing import Any, BinaryIO, Union

import h5py
import numpy as np
import zstandard

from tascond_cli import __version__
from tascond_cli.archive.chunked import write_chunks
from tascond_cli.archive.constants import (
    CHUNK_SIZE,
    CHUNKED_MIN_BYTES,
    CHUNKED_VERSION,
    DEFAULT_LEVEL,
    HEADER,
    HEADER_SIZE,
    LIBVER,
    MAGIC,
    P_DECODER_CONFIG,
    P_SETTINGS,
)
from tascond_cli.archive.container import check_level
from tascond_cli.archive.encoding import json_text, le
from tascond_cli.archive.model import Archive, ArchiveError
from tascond_cli.archive.validate import validate_archive
from tascond_cli.fsio import atomic_file

__all__ = ["archive_bytes", "array_bytes", "write_archive"]

SLICE_BYTES = 16 * 2**20
"""Largest piece of an array written to the payload at once."""
COPY_BYTES = 2**20
"""Piece size when an archive is copied to a stream."""


def _group(parent: h5py.Group, name: str) -> h5py.Group:
    """A new group with no timestamps and no creation-order tracking (any h5py 3)."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode("utf-8"), gcpl=gcpl))


def _dataset(parent: h5py.Group, name: str, data: Any, dtype: Any = None) -> None:
    parent.create_dataset(name, data=data, dtype=dtype, track_times=False, track_order=False)


def _strings(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=h5py.string_dtype("utf-8")).reshape(len(values))


def _array(parent: h5py.Group, name: str, arr: Any, dtype: Any = None) -> None:
    """A numeric dataset, little-endian, written in slices of at most :data:`SLICE_BYTES`, so that an array
    on disk (``np.memmap``) is never loaded whole. The bytes are those of one write of the whole array."""
    if arr.ndim == 0 or arr.nbytes <= SLICE_BYTES:
        _dataset(parent, name, le(arr, dtype))
        return
    stored = np.dtype(dtype if dtype is not None else arr.dtype).newbyteorder("<")
    ds = parent.create_dataset(name, shape=arr.shape, dtype=stored, track_times=False, track_order=False)
    rows = max(1, SLICE_BYTES // max(1, stored.itemsize * math.prod(arr.shape[1:])))
    for start in range(0, arr.shape[0], rows):
        ds[start : start + rows] = le(arr[start : start + rows], dtype)


def _payload(a: Archive, writer_version: str, version: tuple[int, int] | None = None) -> bytes:
    """The HDF5 payload of a validated archive as bytes (in memory; the writer streams it instead)."""
    bio = io.BytesIO()
    _write_payload(a, writer_version, a.version if version is None else version, bio)
    return bio.getvalue()


def _write_payload(a: Archive, writer_version: str, version: tuple[int, int], fh: BinaryIO) -> int:
    """Write the HDF5 payload of a validated archive to the empty file ``fh``; return its size.

    Deterministic bytes (docs/format.md, 3.1), the same whether ``fh`` is in memory or on disk.
    """
    text = h5py.string_dtype("utf-8")
    with h5py.File(fh, "w", libver=LIBVER, track_order=False) as f:
        f.attrs["format_version"] = "%d.%d" % version
        f.attrs["tascond_version"] = writer_version
        _dataset(f, "settings", json_text(a.settings, P_SETTINGS), text)
        classes = _group(f, "classes")
        _dataset(classes, "names", _strings(a.class_names))
        videos = _group(f, "videos")
        _dataset(videos, "names", _strings(a.video_names))
        _array(videos, "segment_offsets", a.video_segments, np.int64)
        _array(videos, "frames", a.video_frames, np.int64)
        segments = _group(f, "segments")
        _array(segments, "labels", a.segment_labels, np.int32)
        _array(segments, "lengths", a.segment_lengths, np.int64)
        _array(segments, "code_offsets", a.segment_codes, np.int64)
        if a.segment_sources is not None:
            _array(segments, "code_source", a.segment_sources, np.int64)
        _array(f, "codes", a.codes)
        decoder = _group(f, "decoder")
        _dataset(decoder, "kind", a.decoder_kind, text)
        _dataset(decoder, "config", json_text(a.decoder_config, P_DECODER_CONFIG), text)
        weights = _group(decoder, "weights")
        for name in sorted(a.decoder_weights):
            _array(weights, name, a.decoder_weights[name])
    fh.seek(0, os.SEEK_END)
    return fh.tell()


def array_bytes(a: Archive) -> int:
    """Bytes of an archive's arrays: codes, weights, segment and video arrays (what decides the container)."""
    arrays = [a.codes, a.video_segments, a.segment_labels, a.segment_lengths, a.segment_codes,
              *a.decoder_weights.values()]
    if a.segment_sources is not None:
        arrays.append(a.segment_sources)
    return int(sum(x.nbytes for x in arrays))


def _checked(archive: Archive, chunked: bool | None) -> tuple[Archive, bool, tuple[int, int]]:
    """The validated archive, whether it gets the chunked container, and the version it is written with."""
    try:
        valid = validate_archive(archive)
    except ArchiveError as e:
        raise ArchiveError(f"cannot write archive: {e}") from None
    if chunked is None:
        chunked = array_bytes(valid) >= CHUNKED_MIN_BYTES
    return valid, chunked, max(valid.version, CHUNKED_VERSION) if chunked else valid.version


def _encode(archive: Archive, out: BinaryIO, options: dict[str, Any], tmp_dir: str | None = None) -> int:
    """Write the ``.tcd`` file of ``archive`` to the seekable ``out`` (from its start); return its size.

    The payload is built in a temporary file and compressed from there (chunk by chunk, or as one
    streamed frame), so the whole payload is never in memory.
    """
    level = check_level(options.get("level", DEFAULT_LEVEL))
    valid, chunked, version = _checked(archive, options.get("chunked"))
    writer_version = options.get("writer_version") or __version__
    with tempfile.TemporaryFile(prefix=".tascond-payload-", dir=tmp_dir) as payload:
        usize = _write_payload(valid, writer_version, version, payload)
        payload.seek(0)
        if chunked:
            return write_chunks(payload, usize, out, level=level, version=version,
                                chunk_size=options.get("chunk_size") or CHUNK_SIZE)
        out.write(bytes(HEADER_SIZE))
        cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True, threads=0)
        _, zsize = cctx.copy_stream(payload, out, size=usize)
        out.seek(0)
        out.write(HEADER.pack(MAGIC, version[0], version[1], usize, zsize))
        out.seek(0, os.SEEK_END)
        return HEADER_SIZE + zsize


def archive_bytes(
    archive: Archive, *, level: int = DEFAULT_LEVEL, writer_version: str | None = None,
    chunked: bool | None = None, chunk_size: int | None = None,
) -> bytes:
    """The complete ``.tcd`` file for ``archive``, after checking it (:class:`ArchiveError`).

    ``writer_version`` is recorded as the writing tascond's version (default: this one). ``chunked``:
    the chunked container of format 1.4 (``True``), one zstd frame (``False``), or the default: chunked
    from :data:`CHUNKED_MIN_BYTES` of arrays on; ``chunk_size`` its chunk size (default 1 MiB).
    The same archive, options and library versions always give the same bytes.
    """
    out = io.BytesIO()
    _encode(archive, out, {"level": level, "writer_version": writer_version, "chunked": chunked,
                           "chunk_size": chunk_size})
    return out.getvalue()


PathOrFile = Union[str, "os.PathLike[str]", BinaryIO]


def write_archive(
    archive: Archive,
    dest: PathOrFile,
    *,
    level: int = DEFAULT_LEVEL,
    overwrite: bool = False,
    writer_version: str | None = None,
    chunked: bool | None = None,
    chunk_size: int | None = None,
) -> int:
    """Write ``archive`` to a path (atomically) or a binary file object; return the bytes written.

    A path that exists is only replaced with ``overwrite``. The payload is built in a temporary file
    beside the target and compressed into it piece by piece; streams (stdout) get the finished file
    copied in pieces, and are flushed. ``chunked`` and ``chunk_size``: as :func:`archive_bytes`.
    """
    options = {"level": level, "writer_version": writer_version, "chunked": chunked, "chunk_size": chunk_size}
    if isinstance(dest, (str, os.PathLike)):
        with atomic_file(dest, overwrite=overwrite) as tmp, open(tmp, "w+b") as out:
            return _encode(archive, out, options, tmp_dir=str(tmp.parent))
    with tempfile.TemporaryFile(prefix=".tascond-archive-") as whole:
        size = _encode(archive, whole, options)
        whole.seek(0)
        while True:
            piece = whole.read(COPY_BYTES)
            if not piece:
                break
            _write_all(dest, piece)
    flush = getattr(dest, "flush", None)
    if flush is not None:
        flush()
    return size


def _write_all(dest: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = dest.write(view)
        if written is None:  # a non-blocking raw stream that could not write
            raise OSError("the output stream would block")
        view = view[written:]
