"""Writing archives: the deterministic HDF5 payload, wrapped in the container, to a path or a stream.

The writer checks every rule first (:func:`~tascond_cli.archive.validate.validate_archive`), so it never
writes an archive the reader would refuse, and the same archive always gives the same bytes.
"""

from __future__ import annotations

import io
import os
from typing import Any, BinaryIO, Union

import h5py
import numpy as np

from tascond_cli import __version__
from tascond_cli.archive.constants import DEFAULT_LEVEL, LIBVER, P_DECODER_CONFIG, P_SETTINGS
from tascond_cli.archive.container import check_level, wrap_payload
from tascond_cli.archive.encoding import json_text, le
from tascond_cli.archive.model import Archive, ArchiveError
from tascond_cli.archive.validate import validate_archive
from tascond_cli.fsio import atomic_file

__all__ = ["archive_bytes", "write_archive"]


def _group(parent: h5py.Group, name: str) -> h5py.Group:
    """A new group with no timestamps and no creation-order tracking (any h5py 3)."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode("utf-8"), gcpl=gcpl))


def _dataset(parent: h5py.Group, name: str, data: Any, dtype: Any = None) -> None:
    parent.create_dataset(name, data=data, dtype=dtype, track_times=False, track_order=False)


def _strings(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=h5py.string_dtype("utf-8")).reshape(len(values))


def _payload(a: Archive, writer_version: str) -> bytes:
    """The HDF5 payload of a validated archive: deterministic bytes (docs/format.md, 3.1)."""
    text = h5py.string_dtype("utf-8")
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver=LIBVER, track_order=False) as f:
        f.attrs["format_version"] = "%d.%d" % a.version
        f.attrs["tascond_version"] = writer_version
        _dataset(f, "settings", json_text(a.settings, P_SETTINGS), text)
        classes = _group(f, "classes")
        _dataset(classes, "names", _strings(a.class_names))
        videos = _group(f, "videos")
        _dataset(videos, "names", _strings(a.video_names))
        _dataset(videos, "segment_offsets", le(a.video_segments, np.int64))
        _dataset(videos, "frames", le(a.video_frames, np.int64))
        segments = _group(f, "segments")
        _dataset(segments, "labels", le(a.segment_labels, np.int32))
        _dataset(segments, "lengths", le(a.segment_lengths, np.int64))
        _dataset(segments, "code_offsets", le(a.segment_codes, np.int64))
        if a.segment_sources is not None:
            _dataset(segments, "code_source", le(a.segment_sources, np.int64))
        _dataset(f, "codes", le(a.codes))
        decoder = _group(f, "decoder")
        _dataset(decoder, "kind", a.decoder_kind, text)
        _dataset(decoder, "config", json_text(a.decoder_config, P_DECODER_CONFIG), text)
        weights = _group(decoder, "weights")
        for name in sorted(a.decoder_weights):
            _dataset(weights, name, le(a.decoder_weights[name]))
    return bio.getvalue()


def archive_bytes(archive: Archive, *, level: int = DEFAULT_LEVEL, writer_version: str | None = None) -> bytes:
    """The complete ``.tcd`` file for ``archive``, after checking it (:class:`ArchiveError`).

    ``writer_version`` is recorded as the writing tascond's version (default: this one).
    The same archive, level and library versions always give the same bytes.
    """
    check_level(level)
    try:
        valid = validate_archive(archive)
    except ArchiveError as e:
        raise ArchiveError(f"cannot write archive: {e}") from None
    return wrap_payload(_payload(valid, writer_version or __version__), level=level, version=valid.version)


PathOrFile = Union[str, "os.PathLike[str]", BinaryIO]


def write_archive(
    archive: Archive,
    dest: PathOrFile,
    *,
    level: int = DEFAULT_LEVEL,
    overwrite: bool = False,
    writer_version: str | None = None,
) -> int:
    """Write ``archive`` to a path (atomically) or a binary file object; return the bytes written.

    A path that exists is only replaced with ``overwrite``. Streams (stdout) get the
    bytes in one go, and are flushed.
    """
    data = archive_bytes(archive, level=level, writer_version=writer_version)
    if isinstance(dest, (str, os.PathLike)):
        with atomic_file(dest, overwrite=overwrite) as tmp:
            tmp.write_bytes(data)
        return len(data)
    view = memoryview(data)
    while view:
        written = dest.write(view)
        if written is None:  # a non-blocking raw stream that could not write
            raise OSError("the output stream would block")
        view = view[written:]
    flush = getattr(dest, "flush", None)
    if flush is not None:
        flush()
    return len(data)
