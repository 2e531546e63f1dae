"""The chunk rule and segment geometry (tascond_cli.chunks, docs/format.md section 5).

Every expectation here is stated independently of the module: hand-written arrays, or a brute-force
per-frame computation straight from the rule "chunk i of a segment of L frames cut in n is frames
[floor(iL/n), floor((i+1)L/n))", written with Python integers and loops.
"""

from __future__ import annotations

import numpy as np
import pytest

from tascond_cli.chunks import (
    check_layout,
    chunk_bounds,
    chunk_position,
    codes_per_segment,
    frame_chunk,
    frame_code_index,
    frame_layout,
    frame_segments,
    offsets_from_counts,
    run_lengths,
    segment_batches,
    segment_position,
)


def brute_force_layout(lengths, counts):
    """Per frame: (segment, code row, c, u), found by scanning each segment's chunks for the frame."""
    seg, rows, c, u = [], [], [], []
    first = 0
    for s, (length, n) in enumerate(zip(lengths, counts)):
        for t in range(length):
            (i,) = [i for i in range(n) if (i * length) // n <= t < ((i + 1) * length) // n]
            lo, hi = (i * length) // n, ((i + 1) * length) // n
            seg.append(s)
            rows.append(first + i)
            c.append((t + 0.5) / length)
            u.append((t - lo + 0.5) / (hi - lo))
        first += n
    return seg, rows, c, u


# --------------------------------------------------------------------------- the rule, against hand-written arrays


def test_chunk_bounds_by_hand() -> None:
    assert chunk_bounds(10, 3).tolist() == [0, 3, 6, 10]
    assert chunk_bounds(10, 8).tolist() == [0, 1, 2, 3, 5, 6, 7, 8, 10]
    assert chunk_bounds(7, 7).tolist() == list(range(8))
    assert chunk_bounds(5, 1).tolist() == [0, 5]
    assert chunk_bounds(5, 2).tolist() == [0, 2, 5]
    assert chunk_bounds(3, 3).tolist() == [0, 1, 2, 3]
    for bad in ((5, 0), (5, 6), (0, 0)):
        with pytest.raises(ValueError):
            chunk_bounds(*bad)
    assert chunk_bounds(2**62, 3).tolist() == [0, 2**62 // 3, 2 * 2**62 // 3, 2**62]  # no int64 overflow


def test_codes_per_segment_and_offsets() -> None:
    assert codes_per_segment(np.array([1, 2, 5, 10]), 4).tolist() == [1, 2, 4, 4]
    assert codes_per_segment([3, 10, 8, 1, 100], 8).tolist() == [3, 8, 8, 1, 8]
    assert codes_per_segment([3, 10, 1], None).tolist() == [3, 10, 1]  # None: one code per frame
    assert codes_per_segment([3, 10, 1], None).dtype == np.int64
    assert offsets_from_counts([2, 0, 3]).tolist() == [0, 2, 2, 5]
    assert offsets_from_counts([]).tolist() == [0]
    with pytest.raises(ValueError, match="codes per segment"):
        codes_per_segment(np.array([3]), 0)


def test_frame_code_index_by_hand() -> None:
    assert frame_code_index(np.array([5, 3, 2]), np.array([2, 2, 1])).tolist() == [0, 0, 1, 1, 1, 2, 3, 3, 4, 4]
    # 3 frames in 3 chunks, then 10 frames in 8 chunks of sizes 1 1 1 2 1 1 1 2
    assert frame_code_index([3, 10], [3, 8]).tolist() == [0, 1, 2] + [3, 4, 5, 6, 6, 7, 8, 9, 10, 10]
    # L < K: one code per frame
    assert frame_code_index([2, 7], [2, 4]).tolist() == [0, 1, 2, 3, 3, 4, 4, 5, 5]  # 7 frames: 1+2+2+2
    assert frame_code_index(np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == []
    with pytest.raises(ValueError, match="between 1 and its length"):
        frame_code_index([3], [4])
    with pytest.raises(ValueError, match="between 1 and its length"):
        frame_code_index([3], [0])
    with pytest.raises(ValueError, match="shaped like"):
        frame_code_index([3, 4], [1])
    with pytest.raises(ValueError, match="lengths must be between"):
        frame_code_index([0], [1])


def test_positions_by_hand() -> None:
    assert segment_position(np.array([1])).tolist() == [0.5]
    assert segment_position(np.array([4, 2])).tolist() == [0.125, 0.375, 0.625, 0.875, 0.25, 0.75]
    np.testing.assert_allclose(segment_position([2, 1, 4]), [0.25, 0.75, 0.5, 0.125, 0.375, 0.625, 0.875])
    # chunks of 10 frames in 8: sizes 1 1 1 2 1 1 1 2
    np.testing.assert_allclose(chunk_position([10], [8]), [0.5, 0.5, 0.5, 0.25, 0.75, 0.5, 0.5, 0.5, 0.25, 0.75])
    np.testing.assert_allclose(chunk_position([6, 1], [2, 1]), [1 / 6, 3 / 6, 5 / 6, 1 / 6, 3 / 6, 5 / 6, 0.5])


# --------------------------------------------------------------------------- the rule, against brute force


def test_frame_layout_matches_brute_force_everywhere() -> None:
    for length in range(1, 41):
        for n in range(1, length + 1):
            seg, rows, c, u = frame_layout([length], [n])
            b_seg, b_rows, b_c, b_u = brute_force_layout([length], [n])
            assert seg.tolist() == b_seg and rows.tolist() == b_rows
            assert c.tolist() == b_c and u.tolist() == b_u  # exactly: same formula in float64
            bounds = chunk_bounds(length, n).tolist()
            assert bounds == [(i * length) // n for i in range(n + 1)]


def test_frame_layout_of_many_segments_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, size=40)
    counts = np.array([rng.integers(1, length + 1) for length in lengths])
    seg, rows, c, u = frame_layout(lengths, counts)
    b_seg, b_rows, b_c, b_u = brute_force_layout(lengths.tolist(), counts.tolist())
    assert seg.tolist() == b_seg and rows.tolist() == b_rows and c.tolist() == b_c and u.tolist() == b_u
    assert frame_code_index(lengths, counts).tolist() == b_rows
    assert segment_position(lengths).tolist() == b_c
    assert chunk_position(lengths, counts).tolist() == b_u
    for dtype in (seg, rows):
        assert dtype.dtype == np.int64


def test_frame_chunk_on_arrays_of_frames() -> None:
    t = np.array([0, 2, 3, 4, 9])
    i, lo, hi = frame_chunk(t, np.full(5, 10), np.full(5, 8))  # bounds 0 1 2 3 5 6 7 8 10
    assert i.tolist() == [0, 2, 3, 3, 7] and lo.tolist() == [0, 2, 3, 3, 8] and hi.tolist() == [1, 3, 5, 5, 10]
    assert frame_chunk(6, 7, 2) == (1, 3, 7)


def test_big_segments_do_not_overflow() -> None:
    length = 2**31 - 1  # the longest segment the format allows
    i, lo, hi = frame_chunk(np.array([length - 1]), np.array([length]), np.array([length]))
    assert i.tolist() == [length - 1] and hi.tolist() == [length]


def test_check_layout() -> None:
    lengths, counts = check_layout([3, 4], np.array([1, 4], np.int32))
    assert lengths.dtype == counts.dtype == np.int64
    with pytest.raises(ValueError, match="1-D integer"):
        check_layout([[3]], [[1]])
    with pytest.raises(ValueError, match="1-D integer"):
        check_layout([3.0], [1])


# --------------------------------------------------------------------------- runs and batches


def test_run_lengths_and_frame_segments() -> None:
    starts, lengths = run_lengths(np.array([3, 3, 3, 1, 2, 2]))
    assert starts.tolist() == [0, 3, 4] and lengths.tolist() == [3, 1, 2]
    assert [a.tolist() for a in run_lengths(np.array([], np.int64))] == [[], []]
    assert [a.tolist() for a in run_lengths([7])] == [[0], [1]]
    seg, t, length = frame_segments([3, 1, 2])
    assert seg.tolist() == [0, 0, 0, 1, 2, 2]
    assert t.tolist() == [0, 1, 2, 0, 0, 1]
    assert length.tolist() == [3, 3, 3, 1, 2, 2]


def test_segment_batches() -> None:
    assert segment_batches(np.array([3, 4, 2, 10, 1]), 7) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert segment_batches(np.array([3, 4, 2, 10, 1]), 100) == [(0, 5)]
    assert segment_batches(np.array([], np.int64), 5) == []
