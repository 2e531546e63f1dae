"""Every rule of the format, checked (docs/format.md, sections 4 and 6): :func:`validate_archive`.

The reader and the writer both call it, so the writer never writes an archive the reader would refuse.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tascond_cli.archive.constants import (
    MAX_DIM,
    MAX_FEATURE_MAGNITUDE,
    MAX_SEGMENT_FRAMES,
    MAX_TOTAL_FRAMES,
    MAX_VIDEO_FRAMES,
    MAX_VIDEO_NAME_BYTES,
    MAX_VIDEO_VALUES,
    P_CLASS_NAMES,
    P_CODES,
    P_DECODER_CONFIG,
    P_DECODER_WEIGHTS,
    P_SEGMENT_CODES,
    P_SEGMENT_LABELS,
    P_SEGMENT_LENGTHS,
    P_SEGMENT_SOURCES,
    P_SETTINGS,
    P_VIDEO_NAMES,
    P_VIDEO_SEGMENTS,
    WEIGHT_NAME_RE,
)
from tascond_cli.archive.decoders import DecoderKind, get_decoder_kind
from tascond_cli.archive.encoding import int_array, json_text, parse_json_object, weight_dtype_problem
from tascond_cli.archive.model import Archive, ArchiveError

__all__ = ["check_output_bound", "check_video_codes", "code_magnitudes", "validate_archive"]

CHECK_BYTES = 16 * 2**20
"""Codes are checked this many bytes at a time (codes on disk are never loaded whole)."""


def validate_archive(archive: Archive, *, lazy: bool = False) -> Archive:
    """Check ``archive`` against every rule of docs/format.md, section 4 and 6.

    Returns an equal :class:`Archive` with canonical types: int64 offsets and
    lengths, int32 labels, JSON-normalised settings and config, native byte order
    (codes that are an ``np.memmap`` stay one, and are checked slice by slice).
    Raises :class:`ArchiveError` (message: the object's HDF5 path and the problem).

    ``lazy``: the codes are not in memory (an archive opened for random access): their dtype and shape
    are checked, their values (finite, within the output bound) only when a video reads them
    (:func:`check_video_codes`).
    """
    a = archive
    settings = _check_settings(a.settings)
    class_names = _check_names(a.class_names, P_CLASS_NAMES, _class_name_problem)
    if not class_names:
        raise ArchiveError(f"{P_CLASS_NAMES}: no classes")
    video_names = _check_names(a.video_names, P_VIDEO_NAMES, _video_name_problem)
    kind = get_decoder_kind(a.decoder_kind)
    vseg, labels, lengths = _check_segments(a, len(video_names), len(class_names))
    _check_video_sizes(vseg, lengths, video_names, settings["dim"])
    codes, coff, sources = _check_codes(a, kind, lengths, lazy)
    config, weights = _check_decoder(a, kind)
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
    problem = kind.check(out)
    if problem:
        raise ArchiveError(problem)
    if not lazy:
        check_output_bound(out, code_magnitudes(codes))
    return out


def code_magnitudes(codes: Any) -> np.ndarray | None:
    """The largest ``|code|`` of each code dimension, ``(d,)`` float64, read :data:`CHECK_BYTES` at a time
    (``None`` without codes). Computed as the decoder kinds compute it, in the codes' own dtype."""
    n = codes.shape[0]
    if n == 0:
        return None
    rows = max(1, CHECK_BYTES // max(1, codes.dtype.itemsize * codes.shape[1]))
    out = np.zeros(codes.shape[1])
    for start in range(0, n, rows):
        np.maximum(out, np.abs(np.asarray(codes[start : start + rows])).max(axis=0).astype(np.float64), out=out)
    return out


def check_output_bound(archive: Archive, magnitudes: np.ndarray | None, what: str = "") -> None:
    """Refuse an archive whose decoder kind's output bound (section 6), for codes of at most
    ``magnitudes`` (``None``: no codes), is over :data:`MAX_FEATURE_MAGNITUDE`. ``what`` names the codes
    the magnitudes come from (one video's, for a lazily read archive)."""
    codes = archive.codes[:0] if magnitudes is None else magnitudes[None, :]
    fields = {f.name: getattr(archive, f.name) for f in dataclasses.fields(Archive)}
    view = Archive(**{**fields, "codes": codes})  # the kinds' bounds read only the codes' magnitudes
    bound = get_decoder_kind(archive.decoder_kind).output_bound(view)
    if bound is not None and not bound <= MAX_FEATURE_MAGNITUDE:
        raise ArchiveError(
            f"/decoder: restored features{what} could reach a magnitude of {bound:.3g}, over the limit of "
            f"{MAX_FEATURE_MAGNITUDE:.0e} (weights or codes too large)"
        )


def check_video_codes(archive: Archive, name: str, codes: np.ndarray) -> None:
    """The codes one video decodes with, read from a lazily opened archive: finite, and within the
    output bound (what :func:`validate_archive` checks for all codes at once)."""
    if not np.isfinite(codes).all():
        raise ArchiveError(f"{P_CODES}: a code of video {name!r} holds a non-finite value (NaN or infinity)")
    if codes.shape[0]:
        check_output_bound(archive, np.abs(codes).max(axis=0).astype(np.float64), f" of video {name!r}")


def _check_video_sizes(vseg: np.ndarray, lengths: np.ndarray, names: list[str], dim: int) -> None:
    """Every video within :data:`MAX_VIDEO_FRAMES` frames and :data:`MAX_VIDEO_VALUES` values (D x T)."""
    ends = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    frames = ends[vseg[1:]] - ends[vseg[:-1]]
    if not frames.size:
        return
    i = int(np.argmax(frames))
    longest = int(frames[i])
    if longest > MAX_VIDEO_FRAMES:
        raise ArchiveError(
            f"{P_SEGMENT_LENGTHS}: video {names[i]!r} has {longest} frames, more than the limit of {MAX_VIDEO_FRAMES}"
        )
    if longest * dim > MAX_VIDEO_VALUES:
        raise ArchiveError(
            f"{P_SEGMENT_LENGTHS}: video {names[i]!r} would restore to {longest} frames x {dim} dims, more than "
            f"the limit of {MAX_VIDEO_VALUES} values per video"
        )


def _check_settings(value: Any) -> dict[str, Any]:
    settings = parse_json_object(json_text(value, P_SETTINGS), P_SETTINGS)
    method, dim = settings.get("method"), settings.get("dim")
    if not isinstance(method, str) or not method:
        raise ArchiveError(f"{P_SETTINGS}: 'method' must be a non-empty string, not {method!r}")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ArchiveError(f"{P_SETTINGS}: 'dim' must be a positive integer, not {dim!r}")
    if dim > MAX_DIM:
        raise ArchiveError(f"{P_SETTINGS}: 'dim' is {dim}, more than the limit of {MAX_DIM}")
    return settings


def _first(bad: np.ndarray) -> int:
    return int(np.argmax(bad))


def _check_segments(a: Archive, n_videos: int, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Video offsets, segment labels and lengths, checked."""
    labels = int_array(a.segment_labels, P_SEGMENT_LABELS)
    n_segments = labels.shape[0]
    vseg = int_array(a.video_segments, P_VIDEO_SEGMENTS, n_videos + 1, f" (one more than the {n_videos} videos)")
    _check_offsets(vseg, n_segments, P_VIDEO_SEGMENTS, "segments", strict=True)
    bad = (labels < 0) | (labels >= n_classes)
    if bad.any():
        i = _first(bad)
        raise ArchiveError(f"{P_SEGMENT_LABELS}: label {int(labels[i])} of segment {i} is outside [0, {n_classes})")
    lengths = int_array(a.segment_lengths, P_SEGMENT_LENGTHS, n_segments, f" (one per segment, {n_segments})")
    bad = (lengths < 1) | (lengths > MAX_SEGMENT_FRAMES)
    if bad.any():
        i = _first(bad)
        raise ArchiveError(
            f"{P_SEGMENT_LENGTHS}: segment {i} has {int(lengths[i])} frames (must be 1 to {MAX_SEGMENT_FRAMES})"
        )
    if float(np.sum(lengths, dtype=np.float64)) >= MAX_TOTAL_FRAMES:
        raise ArchiveError(
            f"{P_SEGMENT_LENGTHS}: {int(np.sum(lengths))} frames in all, the limit is {MAX_TOTAL_FRAMES}"
        )
    return vseg, labels, lengths


def _check_codes(
    a: Archive, kind: DecoderKind, lengths: np.ndarray, lazy: bool = False
) -> tuple[Any, np.ndarray, np.ndarray | None]:
    """Codes, segment code offsets and code sources, checked; sources are ``None`` when no segment reuses."""
    n_segments = lengths.shape[0]
    codes = a.codes if lazy or isinstance(a.codes, np.memmap) else np.asarray(a.codes)
    if codes.dtype not in [np.dtype(t) for t in kind.code_dtypes]:
        allowed = " or ".join(kind.code_dtypes)
        raise ArchiveError(f"{P_CODES}: dtype must be {allowed} for decoder kind '{kind.name}', not {codes.dtype}")
    if codes.ndim != 2:
        raise ArchiveError(f"{P_CODES}: must be 2-D (codes, code dim), not shape {codes.shape}")
    n_codes = codes.shape[0]
    if not kind.stores_codes and n_codes:
        raise ArchiveError(f"{P_CODES}: decoder kind '{kind.name}' stores no codes, but there are {n_codes}")
    coff = int_array(a.segment_codes, P_SEGMENT_CODES, n_segments + 1, f" (one more than the {n_segments} segments)")
    _check_offsets(coff, n_codes, P_SEGMENT_CODES, "codes", strict=False)
    counts = np.diff(coff)
    sources = None if a.segment_sources is None else _check_sources(a.segment_sources, kind, counts)
    if kind.stores_codes:
        own = np.ones(n_segments, dtype=bool) if sources is None else sources < 0
        bad = own & ((counts < 1) | (counts > lengths))
        if bad.any():
            i = _first(bad)
            raise ArchiveError(
                f"{P_SEGMENT_CODES}: segment {i} has {int(counts[i])} codes for {int(lengths[i])} frames "
                f"(must be 1 to {int(lengths[i])})"
            )
    if lazy:
        return codes, coff, sources
    _check_finite(codes)
    if isinstance(codes, np.memmap) and codes.dtype.isnative:
        return codes, coff, sources  # on disk: checked in slices, never loaded whole
    return np.array(codes, dtype=codes.dtype.newbyteorder("="), order="C"), coff, sources


def _check_finite(codes: np.ndarray) -> None:
    """Every code finite, checked :data:`CHECK_BYTES` at a time."""
    rows = max(1, CHECK_BYTES // max(1, codes.dtype.itemsize * codes.shape[1]))
    for start in range(0, codes.shape[0], rows):
        finite = np.isfinite(np.asarray(codes[start : start + rows]))
        if not finite.all():
            row = start + _first(~finite.all(axis=1))
            raise ArchiveError(f"{P_CODES}: code {row} holds a non-finite value (NaN or infinity)")


def _check_sources(value: Any, kind: DecoderKind, counts: np.ndarray) -> np.ndarray | None:
    """The segments' code sources (format 1.1), checked; ``None`` when no segment reuses another's codes."""
    n_segments = counts.shape[0]
    sources = int_array(value, P_SEGMENT_SOURCES, n_segments, f" (one per segment, {n_segments})")
    bad = (sources < -1) | (sources >= n_segments)
    if bad.any():
        i = _first(bad)
        raise ArchiveError(
            f"{P_SEGMENT_SOURCES}: segment {i} reuses segment {int(sources[i])}, outside [-1, {n_segments})"
        )
    if not kind.stores_codes and (sources >= 0).any():
        raise ArchiveError(f"{P_SEGMENT_SOURCES}: decoder kind '{kind.name}' stores no codes to reuse")
    borrow = sources >= 0
    if (borrow & (counts != 0)).any():
        i = _first(borrow & (counts != 0))
        raise ArchiveError(
            f"{P_SEGMENT_SOURCES}: segment {i} reuses segment {int(sources[i])}'s codes but owns {int(counts[i])}"
        )
    chained = borrow.copy()
    chained[borrow] = sources[sources[borrow]] >= 0
    if chained.any():
        i = _first(chained)
        raise ArchiveError(f"{P_SEGMENT_SOURCES}: segment {i} reuses segment {int(sources[i])}, which owns no codes")
    return sources if borrow.any() else None


def _check_decoder(a: Archive, kind: DecoderKind) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The decoder's config and weights, checked against the rules common to every kind."""
    config = parse_json_object(json_text(a.decoder_config, P_DECODER_CONFIG), P_DECODER_CONFIG)
    if not isinstance(a.decoder_weights, Mapping):
        raise ArchiveError(f"{P_DECODER_WEIGHTS}: must be a dict of arrays")
    weights = {name: _check_weight(name, a.decoder_weights[name]) for name in sorted(a.decoder_weights, key=str)}
    if kind.takes_weights and not weights:
        raise ArchiveError(f"{P_DECODER_WEIGHTS}: decoder kind '{kind.name}' needs weights, there are none")
    if not kind.takes_weights and weights:
        raise ArchiveError(
            f"{P_DECODER_WEIGHTS}: decoder kind '{kind.name}' takes no weights, there are {len(weights)}"
        )
    return config, weights


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
        raise ArchiveError(f"{path}: must be a list of strings")
    names = list(names)
    seen: set[str] = set()
    for i, s in enumerate(names):
        if not isinstance(s, str):
            raise ArchiveError(f"{path}: entry {i} is a {type(s).__name__}, not a string")
        problem = problem_of(s)
        if problem:
            raise ArchiveError(f"{path}: name {s!r} (entry {i}) {problem}")
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise ArchiveError(f"{path}: name {s!r} (entry {i}) is not valid Unicode") from None
        if s in seen:
            raise ArchiveError(f"{path}: name {s!r} appears twice")
        seen.add(s)
    return names


def _check_offsets(off: np.ndarray, end: int, path: str, items: str, strict: bool) -> None:
    if off[0] != 0:
        raise ArchiveError(f"{path}: first offset is {int(off[0])}, must be 0")
    step = np.diff(off)
    bad = step < (1 if strict else 0)
    if bad.any():
        i = int(np.argmax(bad))
        rule = "strictly increasing (every video needs a segment)" if strict else "non-decreasing"
        raise ArchiveError(f"{path}: offsets must be {rule}, but entry {i + 1} is {int(off[i + 1])} after {int(off[i])}")
    if off[-1] != end:
        raise ArchiveError(f"{path}: last offset is {int(off[-1])}, must be {end} (the number of {items})")


def _check_weight(name: Any, value: Any) -> np.ndarray:
    if not isinstance(name, str) or not WEIGHT_NAME_RE.match(name):
        raise ArchiveError(f"{P_DECODER_WEIGHTS}: invalid weight name {name!r} (letters, digits, '_', '.', '-')")
    if not isinstance(value, np.ndarray):
        raise ArchiveError(f"{P_DECODER_WEIGHTS}/{name}: must be a numpy array, not {type(value).__name__}")
    problem = weight_dtype_problem(value.dtype)
    if problem:
        raise ArchiveError(f"{P_DECODER_WEIGHTS}/{name}: {problem}")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise ArchiveError(f"{P_DECODER_WEIGHTS}/{name}: holds a non-finite value (NaN or infinity)")
    return np.array(value, dtype=value.dtype.newbyteorder("="), order="C")
