"""Reading archives: the container, then the HDF5 payload, trusting nothing (docs/format.md, sections 2 to 6).

Every size is checked before it is used, and every problem is an :class:`ArchiveError` whose one-line
message names the file (when there is one) and the problem.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, BinaryIO, Union

import h5py
import numpy as np

from tascond_cli.archive.constants import (
    DEFAULT_MAX_BYTES,
    HDF5_SIGNATURE,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_EXPANSION,
    P_CLASS_NAMES,
    P_CODES,
    P_DECODER_CONFIG,
    P_DECODER_KIND,
    P_DECODER_WEIGHTS,
    P_SEGMENT_CODES,
    P_SEGMENT_LABELS,
    P_SEGMENT_LENGTHS,
    P_SEGMENT_SOURCES,
    P_SETTINGS,
    P_VIDEO_FRAMES,
    P_VIDEO_NAMES,
    P_VIDEO_SEGMENTS,
    VLEN_ITEMSIZE,
    WEIGHT_NAME_RE,
)
from tascond_cli.archive.chunked import ChunkReader, PayloadFile
from tascond_cli.archive.container import ByteSource, read_container
from tascond_cli.archive.encoding import int_array, parse_json_object, weight_dtype_problem
from tascond_cli.archive.guard import guarded_extract
from tascond_cli.archive.model import Archive, ArchiveError
from tascond_cli.archive.validate import validate_archive

__all__ = ["archive_from_fields", "check_restore_size", "extract_lazy", "read_archive", "read_version"]


class _Hdf5Reader:
    """Checked access to the payload's objects: hard links only, plain datasets, bounded sizes."""

    def __init__(self, f: h5py.File, payload_size: int) -> None:
        self.f, self.payload_size = f, payload_size

    def has(self, path: str) -> bool:
        """Whether an optional object is present (links are still checked when it is read)."""
        parent, _, name = path.rpartition("/")
        node = self.f.get(parent or "/", getlink=False)
        return isinstance(node, h5py.Group) and node.get(name, getlink=True) is not None

    def obj(self, path: str) -> h5py.Group | h5py.Dataset:
        node: h5py.Group = self.f
        parts = path.strip("/").split("/")
        for depth, part in enumerate(parts):
            here = "/" + "/".join(parts[: depth + 1])
            link = node.get(part, getlink=True)
            if link is None:
                raise ArchiveError(f"{here}: missing")
            if not isinstance(link, h5py.HardLink):
                raise ArchiveError(f"{here}: is a {type(link).__name__}, only hard links are allowed")
            child = node[part]
            if depth < len(parts) - 1:
                if not isinstance(child, h5py.Group):
                    raise ArchiveError(f"{here}: must be a group")
                node = child
            else:
                return child
        raise AssertionError("unreachable")

    def group(self, path: str) -> h5py.Group:
        g = self.obj(path)
        if not isinstance(g, h5py.Group):
            raise ArchiveError(f"{path}: must be a group")
        return g

    def dataset(self, path: str, ds: h5py.Dataset | None = None) -> h5py.Dataset:
        """The dataset at ``path``, after checking its storage (layout, filters, size)."""
        if ds is None:
            obj = self.obj(path)
            if not isinstance(obj, h5py.Dataset):
                raise ArchiveError(f"{path}: must be a dataset, not a group")
            ds = obj
        plist = ds.id.get_create_plist()
        if plist.get_layout() not in (h5py.h5d.CONTIGUOUS, h5py.h5d.COMPACT):
            raise ArchiveError(f"{path}: only contiguous or compact datasets are allowed")
        if plist.get_nfilters():
            raise ArchiveError(f"{path}: HDF5 filters (compression) are not allowed")
        if plist.get_external_count():
            raise ArchiveError(f"{path}: external storage is not allowed")
        if ds.shape is None:
            raise ArchiveError(f"{path}: has a null dataspace")
        is_vlen = h5py.check_vlen_dtype(ds.dtype) is not None
        item = VLEN_ITEMSIZE if is_vlen else max(ds.dtype.itemsize, 1)
        size = math.prod(ds.shape)
        if size * item > self.payload_size:
            raise ArchiveError(f"{path}: declares {size * item} bytes, more than the whole content")
        if size and ds.id.get_storage_size() == 0:
            raise ArchiveError(f"{path}: has no data")
        return ds

    def _is_text(self, ds: h5py.Dataset) -> bool:
        info = h5py.check_string_dtype(ds.dtype)
        return info is not None and info.length is None

    @staticmethod
    def _decode(value: Any, path: str) -> str:
        if isinstance(value, str):
            return value
        try:
            text = bytes(value).decode("utf-8")
        except (UnicodeDecodeError, TypeError):
            raise ArchiveError(f"{path}: not valid UTF-8") from None
        if "\x00" in text:
            raise ArchiveError(f"{path}: contains a NUL character")
        return text

    def string(self, path: str) -> str:
        ds = self.dataset(path)
        if not self._is_text(ds) or ds.shape != ():
            raise ArchiveError(f"{path}: must be a scalar variable-length string, not {ds.dtype} {ds.shape}")
        return self._decode(ds[()], path)

    def strings(self, path: str) -> list[str]:
        ds = self.dataset(path)
        if not self._is_text(ds) or ds.ndim != 1:
            raise ArchiveError(f"{path}: must be a 1-D array of variable-length strings, not {ds.dtype} {ds.shape}")
        return [self._decode(v, path) for v in ds[()]]

    def integers(self, path: str) -> np.ndarray:
        ds = self.dataset(path)
        if ds.dtype.kind not in "iu" or ds.ndim != 1:
            raise ArchiveError(f"{path}: must be a 1-D integer array, not {ds.dtype} {ds.shape}")
        return int_array(ds[()], path)

    def codes(self, path: str) -> np.ndarray:
        ds = self._codes(path)
        return np.asarray(ds[()])

    def _codes(self, path: str) -> h5py.Dataset:
        ds = self.dataset(path)
        if ds.dtype not in (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.int8)) or ds.ndim != 2:
            raise ArchiveError(f"{path}: must be a 2-D float16, float32 or int8 array, not {ds.dtype} {ds.shape}")
        return ds

    def codes_layout(self, path: str) -> dict[str, Any]:
        """Where the codes' bytes lie in the payload, for random access without libhdf5: ``codes_at``
        ``[offset, rows, columns]`` and ``codes_dtype`` (little- or big-endian IEEE float16, float32 or
        int8, exactly), when the dataset is contiguous and holds every byte; else the values (``codes``)."""
        ds = self._codes(path)
        offset = ds.id.get_offset()
        htype = ds.id.get_type()
        standard = (("<f2", h5py.h5t.IEEE_F16LE), (">f2", h5py.h5t.IEEE_F16BE), ("<f4", h5py.h5t.IEEE_F32LE),
                    (">f4", h5py.h5t.IEEE_F32BE), ("|i1", h5py.h5t.STD_I8LE), ("|i1", h5py.h5t.STD_I8BE))
        name = next((k for k, t in standard if htype.equal(t)), None)
        nbytes = math.prod(ds.shape) * ds.dtype.itemsize
        plist = ds.id.get_create_plist()
        if (offset is None or name is None or not nbytes or plist.get_layout() != h5py.h5d.CONTIGUOUS
                or ds.id.get_storage_size() != nbytes):
            return {"codes": np.asarray(ds[()])}
        return {"codes_at": np.array([offset, *ds.shape], dtype=np.int64), "codes_dtype": name}

    def weights(self, path: str) -> dict[str, np.ndarray]:
        group = self.group(path)
        out: dict[str, np.ndarray] = {}
        for name in sorted(group.keys()):
            where = f"{path}/{name}"
            if not WEIGHT_NAME_RE.match(name):
                raise ArchiveError(f"{path}: invalid weight name {name!r}")
            obj = self.obj(where)
            if not isinstance(obj, h5py.Dataset):
                raise ArchiveError(f"{where}: must be a dataset, not a group")
            problem = weight_dtype_problem(obj.dtype)
            if problem or h5py.check_vlen_dtype(obj.dtype) is not None:
                raise ArchiveError(f"{where}: {problem or 'variable-length data not allowed'}")
            self.dataset(where, obj)
            out[name] = np.asarray(obj[()])
        return out

    def text_attr(self, name: str) -> str:
        """A root string attribute, or ``""`` (these attributes are informational)."""
        try:
            value = self.f.attrs.get(name)
        except Exception:  # an unreadable informational attribute is not an error
            return ""
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        return value if isinstance(value, str) else ""


def _fields(f: h5py.File, size: int, lazy: bool) -> dict[str, Any]:
    r = _Hdf5Reader(f, size)
    return {
        "settings": r.string(P_SETTINGS),
        "class_names": r.strings(P_CLASS_NAMES),
        "video_names": r.strings(P_VIDEO_NAMES),
        "video_segments": r.integers(P_VIDEO_SEGMENTS),
        "video_frames": r.integers(P_VIDEO_FRAMES),
        "segment_labels": r.integers(P_SEGMENT_LABELS),
        "segment_lengths": r.integers(P_SEGMENT_LENGTHS),
        "segment_codes": r.integers(P_SEGMENT_CODES),
        **(r.codes_layout(P_CODES) if lazy else {"codes": r.codes(P_CODES)}),
        "decoder_kind": r.string(P_DECODER_KIND),
        "decoder_config": r.string(P_DECODER_CONFIG),
        "decoder_weights": r.weights(P_DECODER_WEIGHTS),
        "segment_sources": r.integers(P_SEGMENT_SOURCES) if r.has(P_SEGMENT_SOURCES) else None,
        "written_by": r.text_attr("tascond_version"),
    }


def _extract(payload: bytes) -> dict[str, Any]:
    """The payload's objects as plain values (strings, lists of strings, arrays), structurally checked.

    This and :func:`extract_lazy` are the only code that runs libhdf5 on an archive; :func:`_parse_payload`
    and :func:`tascond_cli.archive.lazy.open_archive` run them in a watchdog.
    """
    try:
        with h5py.File(io.BytesIO(payload), "r") as f:
            return _fields(f, len(payload), lazy=False)
    except (ArchiveError, MemoryError):
        raise
    except Exception as e:  # h5py reports a malformed file with many exception types
        raise ArchiveError(f"malformed HDF5 content ({type(e).__name__}: {e})") from None


def extract_lazy(reader: ChunkReader) -> dict[str, Any]:
    """As :func:`_extract`, through a chunked payload's :class:`ChunkReader` (only the chunks libhdf5
    touches are decompressed), with the codes' place (``codes_at``) instead of their values; adds
    ``chunks_read``, how many chunks it decompressed."""
    try:
        with h5py.File(PayloadFile(reader), "r") as f:
            fields = _fields(f, reader.size, lazy=True)
    except (ArchiveError, MemoryError):
        raise
    except Exception as e:  # h5py reports a malformed file with many exception types
        if reader.error is not None:  # a chunk that failed its checks: say so, not what h5py made of it
            raise reader.error from None
        raise ArchiveError(f"malformed HDF5 content ({type(e).__name__}: {e})") from None
    fields["chunks_read"] = np.array([reader.decompressed], dtype=np.int64)
    return fields


def _field(fields: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = fields.get(name)
    if not isinstance(value, kind):
        raise ArchiveError(f"malformed HDF5 content ({name} could not be read)")
    return value


def _parse_payload(payload: bytes, timeout: float | None = None) -> Archive:
    """The archive in an HDF5 payload, checked (docs/format.md, sections 3 to 6).

    libhdf5 runs in a watchdog child (:mod:`.guard`): a payload that makes it loop, crash or exhaust
    memory is refused like any other malformed one.
    """
    if payload[: len(HDF5_SIGNATURE)] != HDF5_SIGNATURE:
        raise ArchiveError("content is not an HDF5 file")
    fields = guarded_extract(_extract, payload, timeout=timeout)
    return archive_from_fields(fields, _field(fields, "codes", np.ndarray))


def archive_from_fields(fields: dict[str, Any], codes: Any, lazy: bool = False) -> Archive:
    """The checked :class:`Archive` of the extracted ``fields``, with ``codes`` (an array, or with
    ``lazy`` codes read on demand: only their dtype and shape are checked here)."""
    weights = _field(fields, "decoder_weights", dict)
    video_frames = _field(fields, "video_frames", np.ndarray)
    sources = fields.get("segment_sources")
    archive = Archive(
        settings=parse_json_object(_field(fields, "settings", str), P_SETTINGS),
        class_names=_field(fields, "class_names", list),
        video_names=_field(fields, "video_names", list),
        video_segments=_field(fields, "video_segments", np.ndarray),
        segment_labels=_field(fields, "segment_labels", np.ndarray),
        segment_lengths=_field(fields, "segment_lengths", np.ndarray),
        segment_codes=_field(fields, "segment_codes", np.ndarray),
        codes=codes,
        decoder_kind=_field(fields, "decoder_kind", str),
        decoder_config=parse_json_object(_field(fields, "decoder_config", str), P_DECODER_CONFIG),
        decoder_weights=weights,
        segment_sources=None if sources is None else _field(fields, "segment_sources", np.ndarray),
        written_by=_field(fields, "written_by", str),
    )
    archive = validate_archive(archive, lazy=lazy)
    n_videos = archive.num_videos
    if video_frames.ndim != 1 or video_frames.shape[0] != n_videos:
        raise ArchiveError(f"{P_VIDEO_FRAMES}: has {video_frames.shape[0]} entries, expected {n_videos} (one per video)")
    computed = archive.video_frames
    bad = video_frames != computed
    if bad.any():
        i = int(np.argmax(bad))
        raise ArchiveError(
            f"{P_VIDEO_FRAMES}: video {archive.video_names[i]!r} has {int(video_frames[i])} frames, "
            f"but its segment lengths add up to {int(computed[i])}"
        )
    return archive


Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]


def _prefixed(name: str | None, problem: str) -> str:
    return f"{name}: {problem}" if name else problem


def read_archive(
    source: Source,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    name: str | None = None,
    max_restore_bytes: int | None = None,
    parse_timeout: float | None = None,
) -> Archive:
    """Read and check an archive from a path, bytes, or a binary file object (read sequentially).

    ``max_bytes`` bounds the uncompressed content (and so the memory used).
    ``name`` is the file name used in messages (default: the path, or the stream's ``name``).
    ``max_restore_bytes`` bounds what the archive restores to (4 D times its frames, in bytes); by
    default that is :data:`MAX_EXPANSION` times the archive's own size (docs/format.md, 4.7).
    ``parse_timeout`` overrides how long the HDF5 content may take to parse (seconds; default 10 s plus
    0.2 s per MiB, :func:`tascond_cli.archive.guard.parse_deadline`).
    Any problem with the archive raises :class:`ArchiveError`, one line naming the file.
    """
    limits = (max_bytes, max_restore_bytes, parse_timeout)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size if path.is_file() else None
                return _read_from(ByteSource(fh.read, size), limits, label)
        except OSError as e:
            raise ArchiveError(_prefixed(label, f"cannot read ({e.strerror or e})")) from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return _read_from(ByteSource(io.BytesIO(data).read, len(data)), limits, name)
    if not hasattr(source, "read"):
        raise TypeError(f"cannot read an archive from {type(source).__name__}")
    stream_name = getattr(source, "name", None)
    label = name or (stream_name if isinstance(stream_name, str) else None)
    return _read_from(ByteSource(source.read, None), limits, label)


def check_restore_size(archive: Archive, archive_bytes: int, max_restore_bytes: int | None = None) -> None:
    """Refuse an archive that restores to more than ``max_restore_bytes`` (default: :data:`MAX_EXPANSION`
    times ``archive_bytes``, the archive's size): a restore bomb. An :class:`ArchiveError` names both."""
    restored = 4 * archive.dim * archive.total_frames
    if max_restore_bytes is None:
        if restored > MAX_EXPANSION * archive_bytes:
            raise ArchiveError(
                f"restores to {restored} bytes from {archive_bytes}, more than the limit of {MAX_EXPANSION} "
                "times the archive's size (raise it with --max-restore-bytes)"
            )
    elif restored > max_restore_bytes:
        raise ArchiveError(
            f"restores to {restored} bytes, more than the limit of {max_restore_bytes} (--max-restore-bytes)"
        )


def _read_from(src: ByteSource, limits: tuple[int, int | None, float | None], label: str | None) -> Archive:
    max_bytes, max_restore_bytes, parse_timeout = limits
    try:
        _, payload, archive_bytes = read_container(src, max_bytes)
        archive = _parse_payload(payload, parse_timeout)
        check_restore_size(archive, archive_bytes, max_restore_bytes)
        return archive
    except ArchiveError as e:
        raise ArchiveError(_prefixed(label, str(e))) from None


def read_version(source: Source, *, name: str | None = None) -> tuple[int, int]:
    """The format version in an archive's header (checks only the magic)."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            head = fh.read(HEADER_SIZE)
        name = name or str(source)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:HEADER_SIZE])
    else:
        head = ByteSource(source.read, None).read_exact(HEADER_SIZE)
    if len(head) < HEADER_SIZE or head[:8] != MAGIC:
        raise ArchiveError(_prefixed(name, "not a tascond archive"))
    _, major, minor, _, _ = HEADER.unpack(head)
    return major, minor
