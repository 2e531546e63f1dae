"""The chunk rule and segment geometry, written once (docs/format.md, section 5).

A segment of ``L`` frames with ``n`` codes (``1 <= n <= L``) is cut into ``n`` chunks: chunk ``i`` is
frames ``[floor(i*L/n), floor((i+1)*L/n))``, so frame ``t`` is in chunk ``floor(((t+1)*n - 1) / L)``.
Every frame has two positions: ``c = (t + 0.5) / L`` in its segment and ``u = (t - lo + 0.5) / (hi - lo)``
in its chunk ``[lo, hi)``. The archive, the prior, the inversion and the data layer all use these
functions; nothing else restates the rule.

Segments are "consecutive" when their frames are stored one segment after the other, and their codes
likewise: the first code of segment ``s`` is row ``sum(counts[:s])``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "MAX_SEGMENT_FRAMES",
    "chunk_bounds",
    "check_layout",
    "chunk_position",
    "codes_per_segment",
    "frame_chunk",
    "frame_code_index",
    "frame_interpolation",
    "frame_layout",
    "frame_segments",
    "offsets_from_counts",
    "position",
    "run_lengths",
    "segment_batches",
    "segment_position",
]

MAX_SEGMENT_FRAMES = 2**31 - 1
"""Longest segment, in frames (keeps ``length * codes`` inside int64)."""


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


def codes_per_segment(lengths: Any, ips: int | None) -> np.ndarray:
    """How many codes a writer that wants ``ips`` per segment stores: ``min(ips, L)`` (int64).

    ``ips=None`` means one code per frame (``L``).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if ips is None:
        return lengths.copy()
    if ips < 1:
        raise ValueError(f"codes per segment must be at least 1, not {ips}")
    return np.minimum(lengths, int(ips))


def offsets_from_counts(counts: Any) -> np.ndarray:
    """Offsets ``[0, c0, c0+c1, ...]`` (int64, one longer than ``counts``)."""
    counts = np.asarray(counts, dtype=np.int64)
    out = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def frame_chunk(t: Any, length: Any, n: Any) -> tuple[Any, Any, Any]:
    """The chunk ``i`` of frame ``t`` of a segment of ``length`` frames cut in ``n``, and its frames ``[lo, hi)``.

    Frame ``t`` is in chunk ``i`` iff ``floor(i L / n) <= t < floor((i + 1) L / n)`` iff
    ``i = floor(((t + 1) n - 1) / L)``. Integers or integer arrays (broadcast).
    """
    i = ((t + 1) * n - 1) // length
    return i, i * length // n, (i + 1) * length // n


def position(t: Any, lo: Any, hi: Any) -> Any:
    """The position ``(t - lo + 0.5) / (hi - lo)`` of frame ``t`` in the frames ``[lo, hi)`` (float64)."""
    return (t - lo + 0.5) / (hi - lo)


def _check_lengths(lengths: Any) -> np.ndarray:
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or (lengths.size and lengths.dtype.kind not in "iu"):
        raise ValueError("segment lengths must be a 1-D integer array")
    lengths = lengths.astype(np.int64)
    if lengths.size and (lengths.min() < 1 or lengths.max() > MAX_SEGMENT_FRAMES):
        raise ValueError(f"segment lengths must be between 1 and {MAX_SEGMENT_FRAMES}")
    return lengths


def check_layout(lengths: Any, counts: Any) -> tuple[np.ndarray, np.ndarray]:
    """``lengths`` and ``counts`` of consecutive segments as int64, after checking them (ValueError).

    Every length is 1 to :data:`MAX_SEGMENT_FRAMES`, every count 1 to its segment's length.
    """
    lengths = _check_lengths(lengths)
    counts = np.asarray(counts)
    if counts.shape != lengths.shape or (counts.size and counts.dtype.kind not in "iu"):
        raise ValueError("code counts must be an integer array shaped like the segment lengths")
    counts = counts.astype(np.int64)
    if counts.size and ((counts < 1).any() or (counts > lengths).any()):
        raise ValueError("every segment needs between 1 and its length codes")
    return lengths, counts


def frame_segments(lengths: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every frame of consecutive segments: its segment, its index ``t`` in the segment, and ``L`` (int64)."""
    return _frame_segments(_check_lengths(lengths))


def _frame_segments(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    seg = np.repeat(np.arange(lengths.shape[0], dtype=np.int64), lengths)
    starts = offsets_from_counts(lengths)[:-1]
    local = np.arange(seg.shape[0], dtype=np.int64) - starts[seg]
    return seg, local, lengths[seg]


def frame_layout(lengths: Any, counts: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per frame of consecutive segments: ``(segment, code row, c, u)``.

    Segment ``s`` has ``lengths[s]`` frames and ``counts[s]`` codes (``1 <= counts[s] <= lengths[s]``).
    ``segment`` and ``code row`` are int64 (rows count from the first code of the first segment);
    ``c = (t + 0.5) / L`` and ``u = (t - lo + 0.5) / (hi - lo)`` are float64.
    """
    lengths, counts = check_layout(lengths, counts)
    seg, local, seg_len = _frame_segments(lengths)
    n = counts[seg]
    chunk, lo, hi = frame_chunk(local, seg_len, n)
    rows = offsets_from_counts(counts)[:-1][seg] + chunk
    return seg, rows, position(local, 0, seg_len), position(local, lo, hi)


def frame_code_index(lengths: Any, counts: Any) -> np.ndarray:
    """For every frame of consecutive segments, the row of its code (int64, length ``sum(lengths)``)."""
    return frame_layout(lengths, counts)[1]


def frame_interpolation(lengths: Any, counts: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame of consecutive segments, the two code rows it interpolates between and the weight of
    the second: ``(row_a, row_b, w)``, the frame's value being ``(1 - w) * code[row_a] + w * code[row_b]``.

    The knots are the chunks' centres: chunk ``i`` of ``[lo, hi)`` has its centre at ``(lo + hi - 1) / 2``.
    Frame ``t`` of a segment with ``n >= 2`` chunks takes the knots ``j, j + 1`` with ``j`` the last chunk
    whose centre is at most ``t`` (clipped to ``[0, n - 2]``) and ``w = clip((t - m_j) / (m_{j+1} - m_j), 0, 1)``;
    frames before the first centre or after the last take that code (``w`` 0 or 1). A segment with one
    code has ``row_b == row_a`` and ``w = 0``. Integer arithmetic is exact; ``w`` is float64 from the
    exact integers ``2t - (lo_j + hi_j - 1)`` and ``(lo_{j+1} + hi_{j+1}) - (lo_j + hi_j)``
    (docs/format.md, section 6.7).
    """
    lengths, counts = check_layout(lengths, counts)
    seg, local, seg_len = _frame_segments(lengths)
    n = counts[seg]
    chunk, lo, hi = frame_chunk(local, seg_len, n)
    first = offsets_from_counts(counts)[:-1][seg]
    j = np.where(2 * local >= lo + hi - 1, chunk, chunk - 1)
    j = np.clip(j, 0, np.maximum(n - 2, 0))
    lo_j, hi_j = j * seg_len // n, (j + 1) * seg_len // n
    hi_k = np.minimum(j + 2, n) * seg_len // n  # end of chunk j + 1 (its start is hi_j)
    num = 2 * local - (lo_j + hi_j - 1)
    den = (hi_j + hi_k) - (lo_j + hi_j)
    two = n >= 2
    w = np.where(two, np.clip(num / np.where(two, den, 1), 0.0, 1.0), 0.0)
    return first + j, first + np.where(two, j + 1, j), w


def segment_position(lengths: Any) -> np.ndarray:
    """For every frame of consecutive segments, ``c = (t + 0.5) / L``: its position in its segment (float64)."""
    _, local, seg_len = frame_segments(lengths)
    return position(local, 0, seg_len)


def chunk_position(lengths: Any, counts: Any) -> np.ndarray:
    """For every frame of consecutive segments, ``u = (t - lo + 0.5) / (hi - lo)``: its position in its chunk."""
    return frame_layout(lengths, counts)[3]


def run_lengths(labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Run-length encoding of a label sequence: the first frame and the length of each run (int64)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.concatenate(([0], np.flatnonzero(labels[1:] != labels[:-1]) + 1)).astype(np.int64)
    return starts, np.diff(np.concatenate((starts, [labels.size])))


def segment_batches(lengths: Any, budget: int) -> list[tuple[int, int]]:
    """Consecutive segment ranges of at most ``budget`` frames (a longer segment goes alone)."""
    lengths = np.asarray(lengths)
    out, start, frames = [], 0, 0
    for s, length in enumerate(lengths.tolist()):
        if s > start and frames + length > budget:
            out.append((start, s))
            start, frames = s, 0
        frames += length
    if start < len(lengths):
        out.append((start, len(lengths)))
    return out
