"""The ``.tcd`` archive format: read, validate and write (see ``docs/format.md``).

An archive is a 28-byte header (magic, format version, sizes) followed by one
zstd frame whose content is an in-memory HDF5 file. The HDF5 file holds the
condensed dataset: class and video names, the segments of every video (labels,
lengths), the codes of every segment, and the decoder that maps codes back to
frame features.

The reader trusts nothing: every size is checked before it is used, and every
problem is an :class:`ArchiveError` whose one-line message names the file (when
there is one) and the problem. The writer checks the same rules, so it never
writes an archive the reader would refuse, and its output is byte-for-byte
deterministic.

This module never prints.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import struct
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Union

import h5py
import numpy as np
import zstandard

from tascond_cli import __version__
from tascond_cli.errors import TascondError
from tascond_cli.fsio import atomic_file

# --------------------------------------------------------------------------- constants

FORMAT_VERSION: tuple[int, int] = (1, 1)
"""The newest format version this module writes (``major, minor``); it reads every ``1.x``. An archive
whose segments share no codes is written as ``1.0`` (what a 1.0 reader reads)."""

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

MAX_SEGMENT_FRAMES = 2**31 - 1
"""Longest segment, in frames (keeps ``length * codes`` inside int64)."""

MAX_TOTAL_FRAMES = 2**40
"""The total number of frames of an archive must be below this."""

MAX_VIDEO_NAME_BYTES = 200
"""Longest video name, in bytes of UTF-8 (``<name>.npy`` must be a valid file name)."""

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

# Fixed HDF5 file-format version range: part of what makes the payload deterministic.
_LIBVER = ("v110", "v110")
_WEIGHT_NAME_RE = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")
_VLEN_ITEMSIZE = 16  # bytes an HDF5 variable-length element takes in its dataset

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


class ArchiveError(TascondError):
    """An archive is malformed, or an :class:`Archive` breaks the format's rules."""


# --------------------------------------------------------------------------- decoder kinds


@dataclass(frozen=True)
class DecoderKind:
    """What the format requires of one decoder kind (docs/format.md, section 6).

    ``codes``: every segment stores 1 to L codes (else: no codes at all).
    ``weights``: the weights must be non-empty (else: they must be empty).
    ``check``: further rules; returns a problem (one line) or ``None``.
    """

    name: str
    codes: bool
    weights: bool
    check: Callable[[Archive], str | None] | None = None


def _check_identity(a: Archive) -> str | None:
    if a.code_dim != a.dim:
        return f"{P_CODES}: identity decoder needs codes of dimension dim={a.dim}, not {a.code_dim}"
    return None


def _check_linear(a: Archive) -> str | None:
    names = sorted(a.decoder_weights)
    if names != ["components", "mean"]:
        return f"{P_DECODER_WEIGHTS}: linear decoder needs exactly 'components' and 'mean', not {names}"
    comp, mean = a.decoder_weights["components"], a.decoder_weights["mean"]
    if comp.dtype.kind != "f" or mean.dtype.kind != "f":
        return f"{P_DECODER_WEIGHTS}: linear decoder weights must be float arrays"
    if comp.shape != (a.code_dim, a.dim):
        return f"{P_DECODER_WEIGHTS}/components: shape {comp.shape}, expected {(a.code_dim, a.dim)} (code dim, dim)"
    if mean.shape != (a.dim,):
        return f"{P_DECODER_WEIGHTS}/mean: shape {mean.shape}, expected {(a.dim,)}"
    return None


def _check_random(a: Archive) -> str | None:
    seed = a.settings.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        return f"{P_SETTINGS}: random decoder needs an integer 'seed' setting, not {seed!r}"
    return None


DECODER_KINDS: Mapping[str, DecoderKind] = {
    k.name: k
    for k in (
        DecoderKind("generator", codes=True, weights=True),
        DecoderKind("identity", codes=True, weights=False, check=_check_identity),
        DecoderKind("linear", codes=True, weights=True, check=_check_linear),
        DecoderKind("zeros", codes=False, weights=False),
        DecoderKind("random", codes=False, weights=True, check=_check_random),
    )
}
"""Every decoder kind this version knows, by name. Add a kind here (and to docs/format.md)."""


# --------------------------------------------------------------------------- chunk rule


def chunk_bounds(length: int, n: int) -> np.ndarray:
    """The ``n + 1`` frame boundaries of the ``n`` chunks of a segment of ``length`` frames.

    Chunk ``i`` is frames ``[floor(i*L/n), floor((i+1)*L/n))``: every chunk has
    ``floor(L/n)`` or ``ceil(L/n)`` frames and none is empty. Needs ``1 <= n <= L``.
    """
    length, n = int(length), int(n)
    if not 1 <= n <= length:
        raise ValueError(f"a segment of {length} frames cannot have {n} chunks (need 1 <= n <= length)")
    if length * n < 2**62:
        return np.arange(n + 1, dtype=np.int64) * length // n
    return np.array([i * length // n for i in range(n + 1)], dtype=np.int64)


def codes_per_segment(lengths: np.ndarray, k: int) -> np.ndarray:
    """How many codes a writer that wants ``k`` per segment stores: ``min(k, L)`` (int64)."""
    if k < 1:
        raise ValueError(f"codes per segment must be at least 1, not {k}")
    return np.minimum(np.asarray(lengths, dtype=np.int64), int(k))


def offsets_from_counts(counts: np.ndarray) -> np.ndarray:
    """Offsets ``[0, c0, c0+c1, ...]`` (int64, one longer than ``counts``)."""
    counts = np.asarray(counts, dtype=np.int64)
    out = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _frame_segments(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every frame of concatenated segments: its segment, its index in the segment, and L."""
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or (lengths.size and lengths.dtype.kind not in "iu"):
        raise ValueError("segment lengths must be a 1-D integer array")
    lengths = lengths.astype(np.int64)
    if lengths.size and (lengths.min() < 1 or lengths.max() > MAX_SEGMENT_FRAMES):
        raise ValueError(f"segment lengths must be between 1 and {MAX_SEGMENT_FRAMES}")
    seg = np.repeat(np.arange(lengths.shape[0], dtype=np.int64), lengths)
    starts = offsets_from_counts(lengths)[:-1]
    local = np.arange(seg.shape[0], dtype=np.int64) - starts[seg]
    return seg, local, lengths[seg]


def frame_code_index(lengths: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """For every frame of consecutive segments, the row of its code (int64, length ``sum(lengths)``).

    Segment ``s`` has ``lengths[s]`` frames and ``counts[s]`` codes (``1 <= counts[s] <=
    lengths[s]``), stored one segment after the other; rows count from the first code of
    the first segment. Frame ``t`` of a segment uses its code ``((t + 1) * n - 1) // L``.
    """
    seg, local, seg_len = _frame_segments(lengths)
    counts = np.asarray(counts)
    if counts.shape != np.shape(lengths) or (counts.size and counts.dtype.kind not in "iu"):
        raise ValueError("code counts must be an integer array shaped like the segment lengths")
    counts = counts.astype(np.int64)
    if counts.size and ((counts < 1).any() or (counts > np.asarray(lengths)).any()):
        raise ValueError("every segment needs between 1 and its length codes")
    first = offsets_from_counts(counts)[:-1]
    n = counts[seg]
    return first[seg] + ((local + 1) * n - 1) // seg_len


def segment_position(lengths: np.ndarray) -> np.ndarray:
    """For every frame of consecutive segments, ``(t + 0.5) / L``: its position in its segment (float64)."""
    _, local, seg_len = _frame_segments(lengths)
    return (local + 0.5) / seg_len


# --------------------------------------------------------------------------- the archive


@dataclass(frozen=True)
class VideoEntry:
    """One video of an archive: its segments and the codes they own (views, not copies)."""

    name: str
    labels: np.ndarray
    """Class index of each segment, ``(S_v,)``."""
    lengths: np.ndarray
    """Frames of each segment, ``(S_v,)``."""
    code_counts: np.ndarray
    """Codes of each segment, ``(S_v,)`` (all 0 for code-less decoders)."""
    first_code: int
    """Row of ``Archive.codes`` where this video's codes start."""
    codes: np.ndarray
    """This video's codes, ``(N_v, d)``."""

    @property
    def frames(self) -> int:
        """Number of frames ``T``."""
        return int(self.lengths.sum())

    def frame_labels(self) -> np.ndarray:
        """Class index of every frame, ``(T,)``."""
        return np.repeat(self.labels, self.lengths)

    def frame_code_rows(self) -> np.ndarray:
        """For every frame, the row of its code in :attr:`codes` (the chunk rule)."""
        return frame_code_index(self.lengths, self.code_counts)


@dataclass(eq=False)
class Archive:
    """The content of a ``.tcd`` archive (docs/format.md, section 4, documents every rule).

    Equality (``==``) compares content; :attr:`written_by` is ignored.
    """

    settings: dict[str, Any]
    """JSON object: how the archive was made. Needs ``method`` (str) and ``dim`` (int, D). ``/settings``."""
    class_names: list[str]
    """Class names in index order (the mapping). ``/classes/names``."""
    video_names: list[str]
    """Kept videos (file stems). ``/videos/names``."""
    video_segments: np.ndarray
    """``(V+1,)`` int64 offsets: video v owns segments ``[o[v], o[v+1])``. ``/videos/segment_offsets``."""
    segment_labels: np.ndarray
    """``(S,)`` int32 class index of each segment. ``/segments/labels``."""
    segment_lengths: np.ndarray
    """``(S,)`` int64 frames of each segment (>= 1). ``/segments/lengths``."""
    segment_codes: np.ndarray
    """``(S+1,)`` int64 offsets: segment s owns rows ``[o[s], o[s+1])`` of codes. ``/segments/code_offsets``."""
    codes: np.ndarray
    """``(N, d)`` float16 or float32 codes. ``/codes``."""
    decoder_kind: str
    """A key of :data:`DECODER_KINDS`. ``/decoder/kind``."""
    decoder_config: dict[str, Any] = field(default_factory=dict)
    """JSON object: decoder hyperparameters. ``/decoder/config``."""
    decoder_weights: dict[str, np.ndarray] = field(default_factory=dict)
    """Named numeric arrays (float16/float32/integer). ``/decoder/weights/<name>``."""
    segment_sources: np.ndarray | None = None
    """``(S,)`` int64 or None (format 1.1, ``/segments/code_source``): -1 where a segment owns its codes,
    else the index of the segment whose codes it reuses (then it owns none). See :meth:`segment_code_rows`."""
    written_by: str = ""
    """Version of the tascond that wrote the file (filled by the reader; the writer records its own)."""

    # ---- sizes

    @property
    def num_videos(self) -> int:
        """``V``."""
        return len(self.video_names)

    @property
    def num_segments(self) -> int:
        """``S``."""
        return int(np.shape(self.segment_labels)[0])

    @property
    def num_classes(self) -> int:
        """``C``."""
        return len(self.class_names)

    @property
    def num_codes(self) -> int:
        """``N``, rows of :attr:`codes`."""
        return int(np.shape(self.codes)[0])

    @property
    def code_dim(self) -> int:
        """``d``, columns of :attr:`codes`."""
        return int(np.shape(self.codes)[1])

    @property
    def dim(self) -> int:
        """``D``, the dimension of restored frame features (``settings["dim"]``)."""
        return int(self.settings["dim"])

    @property
    def video_frames(self) -> np.ndarray:
        """``(V,)`` int64 frames of each video."""
        cum = offsets_from_counts(self.segment_lengths)
        vs = np.asarray(self.video_segments, dtype=np.int64)
        return cum[vs[1:]] - cum[vs[:-1]]

    @property
    def total_frames(self) -> int:
        """Frames of all videos together."""
        return int(np.sum(self.segment_lengths, dtype=np.int64))

    @property
    def segment_code_counts(self) -> np.ndarray:
        """``(S,)`` int64 codes each segment owns (stores); 0 for one that reuses another's."""
        return np.diff(np.asarray(self.segment_codes, dtype=np.int64))

    @property
    def version(self) -> tuple[int, int]:
        """The format version this content needs: 1.1 when segments share codes, else 1.0."""
        return FORMAT_VERSION if self.segment_sources is not None else BASE_VERSION

    def segment_code_rows(self, s: int) -> np.ndarray:
        """Rows of :attr:`codes` that segment ``s`` decodes with, in chunk order (int64).

        A segment that owns codes uses them. One that reuses segment ``r``'s ``n_r`` codes has
        ``n = min(n_r, L)`` chunks, and chunk ``i`` uses ``r``'s code ``floor(i * n_r / n)``.
        """
        off = self.segment_codes
        src = -1 if self.segment_sources is None else int(self.segment_sources[s])
        if src < 0:
            return np.arange(int(off[s]), int(off[s + 1]), dtype=np.int64)
        n_r = int(off[src + 1] - off[src])
        n = min(n_r, int(self.segment_lengths[s]))
        return int(off[src]) + (np.arange(n, dtype=np.int64) * n_r) // n

    # ---- per video

    def _video_index(self, i: int) -> int:
        v = self.num_videos
        if not -v <= i < v:
            raise IndexError(f"video {i} out of range ({v} videos)")
        return i % v

    def segments_of_video(self, i: int) -> slice:
        """The segments of video ``i``, as a slice into the segment arrays."""
        i = self._video_index(i)
        return slice(int(self.video_segments[i]), int(self.video_segments[i + 1]))

    def video(self, i: int) -> VideoEntry:
        """Video ``i``: name, segment labels and lengths, and its codes (reused ones resolved)."""
        i = self._video_index(i)
        segs = self.segments_of_video(i)
        first, last = int(self.segment_codes[segs.start]), int(self.segment_codes[segs.stop])
        if self.segment_sources is not None and (self.segment_sources[segs] >= 0).any():
            rows = [self.segment_code_rows(s) for s in range(segs.start, segs.stop)]  # >= 1 segment
            counts = np.array([len(r) for r in rows], dtype=np.int64)
            codes = self.codes[np.concatenate(rows)]
        else:
            counts = np.diff(self.segment_codes[segs.start : segs.stop + 1]).astype(np.int64)
            codes = self.codes[first:last]
        return VideoEntry(
            name=self.video_names[i],
            labels=self.segment_labels[segs],
            lengths=self.segment_lengths[segs],
            code_counts=counts,
            first_code=first,
            codes=codes,
        )

    def index_of(self, name: str) -> int:
        """Index of the video called ``name`` (``KeyError`` if absent)."""
        try:
            return self.video_names.index(name)
        except ValueError:
            raise KeyError(name) from None

    # ---- checks and comparison

    def validate(self) -> Archive:
        """Check every rule of the format; return a copy with canonical dtypes.

        Raises :class:`ArchiveError` naming the first broken rule.
        """
        return validate_archive(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Archive):
            return NotImplemented
        ints = ("video_segments", "segment_labels", "segment_lengths", "segment_codes")
        return (
            self.settings == other.settings
            and list(self.class_names) == list(other.class_names)
            and list(self.video_names) == list(other.video_names)
            and all(np.array_equal(getattr(self, f), getattr(other, f)) for f in ints)
            and _same_array(self.codes, other.codes)
            and (self.segment_sources is None) == (other.segment_sources is None)
            and (self.segment_sources is None or np.array_equal(self.segment_sources, other.segment_sources))
            and self.decoder_kind == other.decoder_kind
            and self.decoder_config == other.decoder_config
            and sorted(self.decoder_weights) == sorted(other.decoder_weights)
            and all(_same_array(w, other.decoder_weights[k]) for k, w in self.decoder_weights.items())
        )

    __hash__ = None  # type: ignore[assignment]


def _same_array(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


# --------------------------------------------------------------------------- validation


def _fail(problem: str) -> ArchiveError:
    return ArchiveError(problem)


def _json_text(value: Any, path: str) -> str:
    """The canonical JSON text of a JSON object (sorted keys, UTF-8, no NaN)."""
    if not isinstance(value, dict):
        raise _fail(f"{path}: must be a JSON object (dict), not {type(value).__name__}")
    try:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        text.encode("utf-8")
    except (TypeError, ValueError) as e:
        raise _fail(f"{path}: not JSON-serialisable ({e})") from None
    return text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json_object(text: str, path: str) -> dict[str, Any]:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise _fail(f"{path}: invalid JSON ({e})") from None
    if not isinstance(value, dict):
        raise _fail(f"{path}: must be a JSON object, not {type(value).__name__}")
    return value


def _has_control(s: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in s)


def _class_name_problem(s: str) -> str | None:
    if not s:
        return "is empty"
    if any(c.isspace() for c in s):
        return "contains whitespace"
    if _has_control(s):
        return "contains a control character"
    return None


def _video_name_problem(s: str) -> str | None:
    if not s:
        return "is empty"
    if s in (".", ".."):
        return "is not a file name"
    if "/" in s or "\\" in s:
        return "contains a path separator"
    if _has_control(s):
        return "contains a control character"
    try:
        size = len(s.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode"
    if size > MAX_VIDEO_NAME_BYTES:
        return f"is longer than {MAX_VIDEO_NAME_BYTES} bytes"
    return None


def _check_names(names: Any, path: str, problem_of: Callable[[str], str | None]) -> list[str]:
    if isinstance(names, (str, bytes)) or not hasattr(names, "__iter__"):
        raise _fail(f"{path}: must be a list of strings")
    names = list(names)
    seen: set[str] = set()
    for i, s in enumerate(names):
        if not isinstance(s, str):
            raise _fail(f"{path}: entry {i} is a {type(s).__name__}, not a string")
        problem = problem_of(s)
        if problem:
            raise _fail(f"{path}: name {s!r} (entry {i}) {problem}")
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise _fail(f"{path}: name {s!r} (entry {i}) is not valid Unicode") from None
        if s in seen:
            raise _fail(f"{path}: name {s!r} appears twice")
        seen.add(s)
    return names


def _int_array(value: Any, path: str, length: int | None = None, what: str = "") -> np.ndarray:
    """A 1-D integer array as int64; any integer dtype whose values fit is accepted."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise _fail(f"{path}: must hold integers, not {arr.dtype}")
    if arr.ndim != 1:
        raise _fail(f"{path}: must be 1-D, not shape {arr.shape}")
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise _fail(f"{path}: value {int(arr.max())} is too large")
    if length is not None and arr.shape[0] != length:
        raise _fail(f"{path}: has {arr.shape[0]} entries, expected {length}{what}")
    return arr.astype(np.int64)


def _check_offsets(off: np.ndarray, end: int, path: str, items: str, strict: bool) -> None:
    if off[0] != 0:
        raise _fail(f"{path}: first offset is {int(off[0])}, must be 0")
    step = np.diff(off)
    bad = step < (1 if strict else 0)
    if bad.any():
        i = int(np.argmax(bad))
        rule = "strictly increasing (every video needs a segment)" if strict else "non-decreasing"
        raise _fail(f"{path}: offsets must be {rule}, but entry {i + 1} is {int(off[i + 1])} after {int(off[i])}")
    if off[-1] != end:
        raise _fail(f"{path}: last offset is {int(off[-1])}, must be {end} (the number of {items})")


def _check_weight(name: Any, value: Any) -> np.ndarray:
    if not isinstance(name, str) or not _WEIGHT_NAME_RE.match(name):
        raise _fail(f"{P_DECODER_WEIGHTS}: invalid weight name {name!r} (letters, digits, '_', '.', '-')")
    if not isinstance(value, np.ndarray):
        raise _fail(f"{P_DECODER_WEIGHTS}/{name}: must be a numpy array, not {type(value).__name__}")
    problem = _weight_dtype_problem(value.dtype)
    if problem:
        raise _fail(f"{P_DECODER_WEIGHTS}/{name}: {problem}")
    return np.array(value, dtype=value.dtype.newbyteorder("="), order="C")


def _weight_dtype_problem(dtype: np.dtype) -> str | None:
    ok = dtype.fields is None and dtype.shape == () and (
        dtype.kind in "iu" or (dtype.kind == "f" and dtype.itemsize in (2, 4))
    )
    return None if ok else f"dtype {dtype} not allowed (float16, float32 or integers only)"


def validate_archive(archive: Archive) -> Archive:
    """Check ``archive`` against every rule of docs/format.md, section 4 and 6.

    Returns an equal :class:`Archive` with canonical types: int64 offsets and
    lengths, int32 labels, JSON-normalised settings and config, native byte order.
    Raises :class:`ArchiveError` (message: the object's HDF5 path and the problem).
    """
    a = archive
    # settings and names
    settings = _parse_json_object(_json_text(a.settings, P_SETTINGS), P_SETTINGS)
    method, dim = settings.get("method"), settings.get("dim")
    if not isinstance(method, str) or not method:
        raise _fail(f"{P_SETTINGS}: 'method' must be a non-empty string, not {method!r}")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise _fail(f"{P_SETTINGS}: 'dim' must be a positive integer, not {dim!r}")
    class_names = _check_names(a.class_names, P_CLASS_NAMES, _class_name_problem)
    if not class_names:
        raise _fail(f"{P_CLASS_NAMES}: no classes")
    video_names = _check_names(a.video_names, P_VIDEO_NAMES, _video_name_problem)
    n_classes, n_videos = len(class_names), len(video_names)

    kind = DECODER_KINDS.get(a.decoder_kind) if isinstance(a.decoder_kind, str) else None
    if kind is None:
        known = ", ".join(DECODER_KINDS)
        raise _fail(f"{P_DECODER_KIND}: unknown decoder kind {a.decoder_kind!r} (this tascond knows {known})")

    # segments
    labels = _int_array(a.segment_labels, P_SEGMENT_LABELS)
    n_segments = labels.shape[0]
    vseg = _int_array(a.video_segments, P_VIDEO_SEGMENTS, n_videos + 1, f" (one more than the {n_videos} videos)")
    _check_offsets(vseg, n_segments, P_VIDEO_SEGMENTS, "segments", strict=True)
    bad = (labels < 0) | (labels >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(f"{P_SEGMENT_LABELS}: label {int(labels[i])} of segment {i} is outside [0, {n_classes})")
    lengths = _int_array(a.segment_lengths, P_SEGMENT_LENGTHS, n_segments, f" (one per segment, {n_segments})")
    bad = (lengths < 1) | (lengths > MAX_SEGMENT_FRAMES)
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(f"{P_SEGMENT_LENGTHS}: segment {i} has {int(lengths[i])} frames (must be 1 to {MAX_SEGMENT_FRAMES})")
    if float(np.sum(lengths, dtype=np.float64)) >= MAX_TOTAL_FRAMES:
        raise _fail(f"{P_SEGMENT_LENGTHS}: {int(np.sum(lengths))} frames in all, the limit is {MAX_TOTAL_FRAMES}")

    # codes
    codes = np.asarray(a.codes)
    if codes.dtype not in (np.dtype(np.float16), np.dtype(np.float32)):
        raise _fail(f"{P_CODES}: dtype must be float16 or float32, not {codes.dtype}")
    if codes.ndim != 2:
        raise _fail(f"{P_CODES}: must be 2-D (codes, code dim), not shape {codes.shape}")
    n_codes = codes.shape[0]
    if not kind.codes and n_codes:
        raise _fail(f"{P_CODES}: decoder kind '{kind.name}' stores no codes, but there are {n_codes}")
    coff = _int_array(a.segment_codes, P_SEGMENT_CODES, n_segments + 1, f" (one more than the {n_segments} segments)")
    _check_offsets(coff, n_codes, P_SEGMENT_CODES, "codes", strict=False)
    counts = np.diff(coff)
    sources = None
    if a.segment_sources is not None:
        sources = _int_array(a.segment_sources, P_SEGMENT_SOURCES, n_segments, f" (one per segment, {n_segments})")
        bad = (sources < -1) | (sources >= n_segments)
        if bad.any():
            i = int(np.argmax(bad))
            raise _fail(f"{P_SEGMENT_SOURCES}: segment {i} reuses segment {int(sources[i])}, outside [-1, {n_segments})")
        if not kind.codes and (sources >= 0).any():
            raise _fail(f"{P_SEGMENT_SOURCES}: decoder kind '{kind.name}' stores no codes to reuse")
        borrow = sources >= 0
        if (borrow & (counts != 0)).any():
            i = int(np.argmax(borrow & (counts != 0)))
            raise _fail(f"{P_SEGMENT_SOURCES}: segment {i} reuses segment {int(sources[i])}'s codes but owns {int(counts[i])}")
        chained = borrow.copy()
        chained[borrow] = sources[sources[borrow]] >= 0
        if chained.any():
            i = int(np.argmax(chained))
            raise _fail(f"{P_SEGMENT_SOURCES}: segment {i} reuses segment {int(sources[i])}, which owns no codes")
        sources = sources if borrow.any() else None
    if kind.codes:
        own = np.ones(n_segments, dtype=bool) if sources is None else sources < 0
        bad = own & ((counts < 1) | (counts > lengths))
        if bad.any():
            i = int(np.argmax(bad))
            raise _fail(
                f"{P_SEGMENT_CODES}: segment {i} has {int(counts[i])} codes for {int(lengths[i])} frames "
                f"(must be 1 to {int(lengths[i])})"
            )
    finite = np.isfinite(codes)
    if not finite.all():
        row = int(np.argmax(~finite.all(axis=1)))
        raise _fail(f"{P_CODES}: code {row} holds a non-finite value (NaN or infinity)")
    codes = np.array(codes, dtype=codes.dtype.newbyteorder("="), order="C")

    # decoder
    config = _parse_json_object(_json_text(a.decoder_config, P_DECODER_CONFIG), P_DECODER_CONFIG)
    if not isinstance(a.decoder_weights, Mapping):
        raise _fail(f"{P_DECODER_WEIGHTS}: must be a dict of arrays")
    weights = {name: _check_weight(name, a.decoder_weights[name]) for name in sorted(a.decoder_weights, key=str)}
    if kind.weights and not weights:
        raise _fail(f"{P_DECODER_WEIGHTS}: decoder kind '{kind.name}' needs weights, there are none")
    if not kind.weights and weights:
        raise _fail(f"{P_DECODER_WEIGHTS}: decoder kind '{kind.name}' takes no weights, there are {len(weights)}")

    out = Archive(
        settings=settings,
        class_names=class_names,
        video_names=video_names,
        video_segments=vseg,
        segment_labels=labels.astype(np.int32),
        segment_lengths=lengths,
        segment_codes=coff,
        codes=codes,
        decoder_kind=kind.name,
        decoder_config=config,
        decoder_weights=weights,
        segment_sources=sources,
        written_by=a.written_by,
    )
    if kind.check is not None:
        problem = kind.check(out)
        if problem:
            raise _fail(problem)
    return out


# --------------------------------------------------------------------------- writing


def _le(arr: np.ndarray, dtype: Any = None) -> np.ndarray:
    """``arr`` as a contiguous little-endian array (of ``dtype`` if given)."""
    dt = np.dtype(dtype if dtype is not None else arr.dtype).newbyteorder("<")
    return np.array(arr, dtype=dt, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)


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
    with h5py.File(bio, "w", libver=_LIBVER, track_order=False) as f:
        f.attrs["format_version"] = "%d.%d" % a.version
        f.attrs["tascond_version"] = writer_version
        _dataset(f, "settings", _json_text(a.settings, P_SETTINGS), text)
        classes = _group(f, "classes")
        _dataset(classes, "names", _strings(a.class_names))
        videos = _group(f, "videos")
        _dataset(videos, "names", _strings(a.video_names))
        _dataset(videos, "segment_offsets", _le(a.video_segments, np.int64))
        _dataset(videos, "frames", _le(a.video_frames, np.int64))
        segments = _group(f, "segments")
        _dataset(segments, "labels", _le(a.segment_labels, np.int32))
        _dataset(segments, "lengths", _le(a.segment_lengths, np.int64))
        _dataset(segments, "code_offsets", _le(a.segment_codes, np.int64))
        if a.segment_sources is not None:
            _dataset(segments, "code_source", _le(a.segment_sources, np.int64))
        _dataset(f, "codes", _le(a.codes))
        decoder = _group(f, "decoder")
        _dataset(decoder, "kind", a.decoder_kind, text)
        _dataset(decoder, "config", _json_text(a.decoder_config, P_DECODER_CONFIG), text)
        weights = _group(decoder, "weights")
        for name in sorted(a.decoder_weights):
            _dataset(weights, name, _le(a.decoder_weights[name]))
    return bio.getvalue()


def _check_level(level: int) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= zstandard.MAX_COMPRESSION_LEVEL:
        raise ValueError(f"zstd level must be an integer from 1 to {zstandard.MAX_COMPRESSION_LEVEL}, not {level!r}")
    return level


def _compress(data: bytes, level: int) -> bytes:
    cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True, threads=0)
    return cctx.compress(data)


def wrap_payload(payload: bytes, *, level: int = DEFAULT_LEVEL, version: tuple[int, int] = FORMAT_VERSION) -> bytes:
    """Header + one zstd frame of ``payload``: the container of docs/format.md, section 2.

    Low level: no check of the payload (tests use it to build bad archives).
    """
    frame = _compress(bytes(payload), _check_level(level))
    return HEADER.pack(MAGIC, version[0], version[1], len(payload), len(frame)) + frame


def archive_bytes(archive: Archive, *, level: int = DEFAULT_LEVEL, writer_version: str | None = None) -> bytes:
    """The complete ``.tcd`` file for ``archive``, after checking it (:class:`ArchiveError`).

    ``writer_version`` is recorded as the writing tascond's version (default: this one).
    The same archive, level and library versions always give the same bytes.
    """
    _check_level(level)
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


# --------------------------------------------------------------------------- reading: container


class _Source:
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


def _container(src: _Source, max_bytes: int) -> tuple[tuple[int, int], bytes]:
    """Check the header and return (version, decompressed payload); docs/format.md, 2.1."""
    head = src.read_exact(HEADER_SIZE)
    if not head:
        raise _fail("empty file, not a tascond archive")
    if head[:8] != MAGIC[: len(head[:8])]:
        raise _fail("not a tascond archive (wrong magic bytes)")
    if len(head) < HEADER_SIZE:
        raise _fail(f"truncated: {len(head)} bytes, the header alone is {HEADER_SIZE}")
    _, major, minor, usize, zsize = HEADER.unpack(head)
    if major > FORMAT_VERSION[0]:
        raise _fail(
            f"archive format {major}.{minor} is newer than this tascond supports ({FORMAT_VERSION[0]}.x)"
        )
    if major < 1:
        raise _fail(f"archive format {major}.{minor} is not supported ({FORMAT_VERSION[0]}.x only)")
    if usize > max_bytes:
        raise _fail(f"uncompressed content of {usize} bytes is over the limit of {max_bytes} bytes")
    if zsize > usize + usize // 128 + 1024:
        raise _fail(f"header is corrupt: {zsize} compressed bytes cannot hold {usize} bytes")
    if src.size is not None and src.size != HEADER_SIZE + zsize:
        present = src.size - HEADER_SIZE
        if present < zsize:
            raise _fail(f"truncated: header announces {zsize} compressed bytes, only {present} present")
        raise _fail(f"{present - zsize} bytes of trailing data after the end of the archive")
    frame = src.read_exact(zsize)
    if len(frame) < zsize:
        raise _fail(f"truncated: header announces {zsize} compressed bytes, only {len(frame)} present")
    if src.size is None and src.read_exact(1):
        raise _fail("trailing data after the end of the archive")
    try:
        params = zstandard.get_frame_parameters(frame)
    except zstandard.ZstdError:
        raise _fail("compressed data is not a zstd frame") from None
    if params.content_size == zstandard.CONTENTSIZE_UNKNOWN:
        raise _fail("zstd frame does not record its content size")
    if params.content_size != usize:
        raise _fail(f"header says {usize} uncompressed bytes, the zstd frame says {params.content_size}")
    if not params.has_checksum:
        raise _fail("zstd frame has no checksum")
    if params.dict_id:
        raise _fail("zstd frame needs a dictionary")
    try:
        payload = zstandard.ZstdDecompressor().decompress(frame, max_output_size=usize, allow_extra_data=False)
    except zstandard.ZstdError as e:
        raise _fail(f"corrupt compressed data ({e})") from None
    if len(payload) != usize:
        raise _fail(f"corrupt compressed data ({len(payload)} bytes instead of {usize})")
    return (major, minor), payload


# --------------------------------------------------------------------------- reading: HDF5


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
                raise _fail(f"{here}: missing")
            if not isinstance(link, h5py.HardLink):
                raise _fail(f"{here}: is a {type(link).__name__}, only hard links are allowed")
            child = node[part]
            if depth < len(parts) - 1:
                if not isinstance(child, h5py.Group):
                    raise _fail(f"{here}: must be a group")
                node = child
            else:
                return child
        raise AssertionError("unreachable")

    def group(self, path: str) -> h5py.Group:
        g = self.obj(path)
        if not isinstance(g, h5py.Group):
            raise _fail(f"{path}: must be a group")
        return g

    def dataset(self, path: str, ds: h5py.Dataset | None = None) -> h5py.Dataset:
        """The dataset at ``path``, after checking its storage (layout, filters, size)."""
        if ds is None:
            obj = self.obj(path)
            if not isinstance(obj, h5py.Dataset):
                raise _fail(f"{path}: must be a dataset, not a group")
            ds = obj
        plist = ds.id.get_create_plist()
        if plist.get_layout() not in (h5py.h5d.CONTIGUOUS, h5py.h5d.COMPACT):
            raise _fail(f"{path}: only contiguous or compact datasets are allowed")
        if plist.get_nfilters():
            raise _fail(f"{path}: HDF5 filters (compression) are not allowed")
        if plist.get_external_count():
            raise _fail(f"{path}: external storage is not allowed")
        if ds.shape is None:
            raise _fail(f"{path}: has a null dataspace")
        is_vlen = h5py.check_vlen_dtype(ds.dtype) is not None
        item = _VLEN_ITEMSIZE if is_vlen else max(ds.dtype.itemsize, 1)
        size = math.prod(ds.shape)
        if size * item > self.payload_size:
            raise _fail(f"{path}: declares {size * item} bytes, more than the whole content")
        if size and ds.id.get_storage_size() == 0:
            raise _fail(f"{path}: has no data")
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
            raise _fail(f"{path}: not valid UTF-8") from None
        if "\x00" in text:
            raise _fail(f"{path}: contains a NUL character")
        return text

    def string(self, path: str) -> str:
        ds = self.dataset(path)
        if not self._is_text(ds) or ds.shape != ():
            raise _fail(f"{path}: must be a scalar variable-length string, not {ds.dtype} {ds.shape}")
        return self._decode(ds[()], path)

    def strings(self, path: str) -> list[str]:
        ds = self.dataset(path)
        if not self._is_text(ds) or ds.ndim != 1:
            raise _fail(f"{path}: must be a 1-D array of variable-length strings, not {ds.dtype} {ds.shape}")
        return [self._decode(v, path) for v in ds[()]]

    def integers(self, path: str) -> np.ndarray:
        ds = self.dataset(path)
        if ds.dtype.kind not in "iu" or ds.ndim != 1:
            raise _fail(f"{path}: must be a 1-D integer array, not {ds.dtype} {ds.shape}")
        return _int_array(ds[()], path)

    def codes(self, path: str) -> np.ndarray:
        ds = self.dataset(path)
        if ds.dtype not in (np.dtype(np.float16), np.dtype(np.float32)) or ds.ndim != 2:
            raise _fail(f"{path}: must be a 2-D float16 or float32 array, not {ds.dtype} {ds.shape}")
        return np.asarray(ds[()])

    def weights(self, path: str) -> dict[str, np.ndarray]:
        group = self.group(path)
        out: dict[str, np.ndarray] = {}
        for name in sorted(group.keys()):
            where = f"{path}/{name}"
            if not _WEIGHT_NAME_RE.match(name):
                raise _fail(f"{path}: invalid weight name {name!r}")
            obj = self.obj(where)
            if not isinstance(obj, h5py.Dataset):
                raise _fail(f"{where}: must be a dataset, not a group")
            problem = _weight_dtype_problem(obj.dtype)
            if problem or h5py.check_vlen_dtype(obj.dtype) is not None:
                raise _fail(f"{where}: {problem or 'variable-length data not allowed'}")
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


def _parse_payload(payload: bytes) -> Archive:
    """The archive in an HDF5 payload, checked (docs/format.md, sections 3 to 6)."""
    if payload[: len(HDF5_SIGNATURE)] != HDF5_SIGNATURE:
        raise _fail("content is not an HDF5 file")
    try:
        with h5py.File(io.BytesIO(payload), "r") as f:
            r = _Hdf5Reader(f, len(payload))
            settings = _parse_json_object(r.string(P_SETTINGS), P_SETTINGS)
            class_names = r.strings(P_CLASS_NAMES)
            video_names = r.strings(P_VIDEO_NAMES)
            video_segments = r.integers(P_VIDEO_SEGMENTS)
            video_frames = r.integers(P_VIDEO_FRAMES)
            archive = Archive(
                settings=settings,
                class_names=class_names,
                video_names=video_names,
                video_segments=video_segments,
                segment_labels=r.integers(P_SEGMENT_LABELS),
                segment_lengths=r.integers(P_SEGMENT_LENGTHS),
                segment_codes=r.integers(P_SEGMENT_CODES),
                codes=r.codes(P_CODES),
                decoder_kind=r.string(P_DECODER_KIND),
                decoder_config=_parse_json_object(r.string(P_DECODER_CONFIG), P_DECODER_CONFIG),
                decoder_weights=r.weights(P_DECODER_WEIGHTS),
                segment_sources=r.integers(P_SEGMENT_SOURCES) if r.has(P_SEGMENT_SOURCES) else None,
                written_by=r.text_attr("tascond_version"),
            )
    except (ArchiveError, MemoryError):
        raise
    except Exception as e:  # h5py reports a malformed file with many exception types
        raise _fail(f"malformed HDF5 content ({type(e).__name__}: {e})") from None
    archive = validate_archive(archive)
    n_videos = archive.num_videos
    if video_frames.shape[0] != n_videos:
        raise _fail(f"{P_VIDEO_FRAMES}: has {video_frames.shape[0]} entries, expected {n_videos} (one per video)")
    computed = archive.video_frames
    bad = video_frames != computed
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(
            f"{P_VIDEO_FRAMES}: video {archive.video_names[i]!r} has {int(video_frames[i])} frames, "
            f"but its segment lengths add up to {int(computed[i])}"
        )
    return archive


# --------------------------------------------------------------------------- reading: entry point

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]


def _prefixed(name: str | None, problem: str) -> str:
    return f"{name}: {problem}" if name else problem


def read_archive(source: Source, *, max_bytes: int = DEFAULT_MAX_BYTES, name: str | None = None) -> Archive:
    """Read and check an archive from a path, bytes, or a binary file object (read sequentially).

    ``max_bytes`` bounds the uncompressed content (and so the memory used).
    ``name`` is the file name used in messages (default: the path, or the stream's ``name``).
    Any problem with the archive raises :class:`ArchiveError`, one line naming the file.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size if path.is_file() else None
                return _read_from(_Source(fh.read, size), max_bytes, label)
        except OSError as e:
            raise ArchiveError(_prefixed(label, f"cannot read ({e.strerror or e})")) from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return _read_from(_Source(io.BytesIO(data).read, len(data)), max_bytes, name)
    if not hasattr(source, "read"):
        raise TypeError(f"cannot read an archive from {type(source).__name__}")
    stream_name = getattr(source, "name", None)
    label = name or (stream_name if isinstance(stream_name, str) else None)
    return _read_from(_Source(source.read, None), max_bytes, label)


def _read_from(src: _Source, max_bytes: int, label: str | None) -> Archive:
    try:
        _, payload = _container(src, max_bytes)
        return _parse_payload(payload)
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
        head = _Source(source.read, None).read_exact(HEADER_SIZE)
    if len(head) < HEADER_SIZE or head[:8] != MAGIC:
        raise ArchiveError(_prefixed(name, "not a tascond archive"))
    _, major, minor, _, _ = HEADER.unpack(head)
    return major, minor


# --------------------------------------------------------------------------- storage breakdown

BREAKDOWN_PARTS = ("codes", "structure", "decoder", "metadata")


def _part_bytes(a: Archive, writer_version: str) -> dict[str, bytes]:
    """Raw bytes of each part, in stored dtypes (docs/format.md, section 9)."""

    def names(values: list[str]) -> bytes:
        return "\n".join(values).encode("utf-8")

    structure = b"".join(
        [
            names(a.class_names),
            names(a.video_names),
            _le(a.video_segments, np.int64).tobytes(),
            _le(a.video_frames, np.int64).tobytes(),
            _le(a.segment_labels, np.int32).tobytes(),
            _le(a.segment_lengths, np.int64).tobytes(),
            _le(a.segment_codes, np.int64).tobytes(),
            b"" if a.segment_sources is None else _le(a.segment_sources, np.int64).tobytes(),
        ]
    )
    decoder = b"".join(
        [
            a.decoder_kind.encode("utf-8"),
            _json_text(a.decoder_config, P_DECODER_CONFIG).encode("utf-8"),
            *(_le(a.decoder_weights[k]).tobytes() for k in sorted(a.decoder_weights)),
        ]
    )
    metadata = (
        _json_text(a.settings, P_SETTINGS) + "%d.%d" % a.version + writer_version
    ).encode("utf-8")
    return {"codes": _le(a.codes).tobytes(), "structure": structure, "decoder": decoder, "metadata": metadata}


def storage_breakdown(
    archive: Archive, *, level: int = DEFAULT_LEVEL, total: int | None = None
) -> dict[str, dict[str, int]]:
    """How the archive's bytes split between codes, structure, decoder and metadata.

    Returns ``{part: {"raw", "compressed", "share"}}`` for each of :data:`BREAKDOWN_PARTS`,
    plus ``"total"``. ``raw``: the part's bytes as stored; ``compressed``: those bytes
    zstd-compressed alone at ``level``; ``share``: the archive's size (``total``, default:
    the size :func:`archive_bytes` gives) split in proportion to ``compressed``, so that
    container and HDF5 overhead is spread over the parts; the shares add up to the total.
    """
    _check_level(level)
    a = validate_archive(archive)
    writer_version = archive.written_by or __version__
    if total is None:
        total = len(archive_bytes(a, level=level, writer_version=writer_version))
    raw = _part_bytes(a, writer_version)
    comp = {k: len(_compress(v, level)) for k, v in raw.items()}
    denom = sum(comp.values())
    exact = {k: total * comp[k] / denom for k in BREAKDOWN_PARTS}
    share = {k: int(math.floor(v)) for k, v in exact.items()}
    # Largest remainders get the leftover bytes, so the shares add up exactly.
    left = total - sum(share.values())
    for k in sorted(BREAKDOWN_PARTS, key=lambda k: (share[k] - exact[k], BREAKDOWN_PARTS.index(k)))[:left]:
        share[k] += 1
    out = {k: {"raw": len(raw[k]), "compressed": comp[k], "share": share[k]} for k in BREAKDOWN_PARTS}
    out["total"] = {"raw": sum(len(v) for v in raw.values()), "compressed": denom, "share": total}
    return out
