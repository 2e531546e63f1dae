"""Diverse sequence sampling: exact distances, furthest-point order, ties, ratio rounding."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from tascond_cli.condense.sampling import (
    distance_matrix,
    furthest_point_sampling,
    levenshtein,
    random_sampling,
    sample_size,
    transcript_distance,
)

@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small models run fastest on one thread (and do not fight other jobs for the cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)



def test_transcript_distance_values():
    assert transcript_distance((), ()) == 0.0
    assert transcript_distance((1, 2, 3), ()) == 1.0
    assert transcript_distance((1, 2, 3), (1, 2, 3)) == 0.0
    assert transcript_distance((1, 2, 3), (1, 3)) == 1 / 3  # one deletion
    assert transcript_distance((1, 2, 3, 4), (2, 1, 3, 4)) == 2 / 4  # a swap is two edits
    assert transcript_distance((0, 5), (5, 0, 7)) == 2 / 3
    assert levenshtein("kitten", "sitting") == 3


def test_distance_matrix_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    ts = [tuple(rng.integers(0, 5, rng.integers(0, 9)).tolist()) for _ in range(40)] + [(), (1,), (1,)]
    d = distance_matrix(ts)
    ref = np.array([[transcript_distance(a, b) for b in ts] for a in ts])
    assert d.shape == (len(ts), len(ts))
    assert np.array_equal(d, ref)  # bit-exact: one division of the same integers
    assert np.array_equal(d, d.T) and not d.diagonal().any()
    assert distance_matrix([]).shape == (0, 0)


def _brute_fps(ts, k):
    """Reference: FPS written straight from the definition, over the full N x N matrix."""
    n = len(ts)
    d = np.array([[transcript_distance(a, b) for b in ts] for a in ts])
    mean = np.round(d.mean(1), 12)
    kept = [int(np.flatnonzero(mean == mean.min())[0])]
    while len(kept) < k:
        near = d[:, kept].min(1)
        cands = [i for i in range(n) if i not in kept]
        best = max(near[i] for i in cands)
        kept.append(min(i for i in cands if near[i] == best))
    return kept


def test_fps_order_on_hand_made_transcripts():
    ts = [
        (0, 1, 2, 0),  # 0
        (0, 1, 2, 0),  # 1  duplicate of 0
        (0, 1, 3, 0),  # 2  one substitution from 0
        (0, 2, 1, 0),  # 3
        (4, 5, 6, 7),  # 4  far from everything
        (0, 1, 2, 0),  # 5  duplicate of 0
    ]
    # medoid: 0 (mean distance smallest; 1 and 5 tie with it, 0 has the lowest index)
    assert furthest_point_sampling(ts, 1 / 6) == [0]
    # next: 4 (distance 1 to video 0)
    assert furthest_point_sampling(ts, 2 / 6) == [0, 4]
    # next: 3 (distance 2/4 > 1/4 of video 2)
    assert furthest_point_sampling(ts, 3 / 6) == [0, 3, 4]
    assert furthest_point_sampling(ts, 4 / 6) == [0, 2, 3, 4]
    # every transcript is covered; the remaining duplicates come in index order
    assert furthest_point_sampling(ts, 5 / 6) == [0, 1, 2, 3, 4]
    assert furthest_point_sampling(ts, 1.0) == list(range(6))


def test_fps_ties_break_by_lowest_index():
    ts = [(0,), (1,), (2,), (3,)]  # all pairwise distances 1, all means equal
    assert furthest_point_sampling(ts, 0.25) == [0]
    assert furthest_point_sampling(ts, 0.5) == [0, 1]
    assert furthest_point_sampling(ts, 0.75) == [0, 1, 2]


def test_fps_matches_brute_force_and_is_deterministic():
    rng = np.random.default_rng(3)
    ts = [tuple(rng.integers(0, 4, rng.integers(1, 6)).tolist()) for _ in range(30)]
    for ratio in (0.1, 0.3, 0.5, 0.9):
        k = sample_size(len(ts), ratio)
        got = furthest_point_sampling(ts, ratio)
        assert got == sorted(_brute_fps(ts, k))
        assert got == furthest_point_sampling(ts, ratio, seed=123)  # seed does not matter
        assert len(got) == k and got == sorted(set(got))


@pytest.mark.parametrize(
    ("n", "ratio", "k"),
    [(10, 0.5, 5), (5, 0.5, 3), (3, 0.5, 2), (7, 0.5, 4), (4, 0.1, 1), (1, 0.5, 1), (1000, 0.0001, 1),
     (10, 1.0, 10), (6, 0.25, 2)],
)
def test_sample_size_rounds_half_up_and_keeps_one(n, ratio, k):
    assert sample_size(n, ratio) == k


@pytest.mark.parametrize("ratio", [0, -0.1, 1.5, float("nan"), "0.5"])
def test_bad_ratio_is_refused(ratio):
    with pytest.raises(ValueError, match="ratio"):
        furthest_point_sampling([(1,), (2,)], ratio)
    with pytest.raises(ValueError, match="ratio"):
        random_sampling(2, ratio)


def test_empty_input_is_refused():
    with pytest.raises(ValueError, match="at least one video"):
        furthest_point_sampling([], 0.5)


def test_random_sampling_is_seeded_sorted_and_sized():
    a = random_sampling(100, 0.3, seed=1)
    assert a == random_sampling(100, 0.3, seed=1)
    assert a != random_sampling(100, 0.3, seed=2)
    assert len(a) == 30 and a == sorted(set(a)) and all(0 <= i < 100 for i in a)


def test_fps_covers_better_than_random():
    """The point of FPS: the worst-covered video is closer to the sample than with random picks."""
    rng = np.random.default_rng(0)
    base = [tuple(rng.integers(0, 6, 6).tolist()) for _ in range(8)]
    ts = [tuple(x for x in b if rng.random() > 0.15) for b in base for _ in range(6)]
    d = distance_matrix(ts)

    def radius(kept):
        return d[:, kept].min(1).max()

    fps = radius(furthest_point_sampling(ts, 0.2))
    rand = np.mean([radius(random_sampling(len(ts), 0.2, s)) for s in range(10)])
    assert fps < rand
    assert list(itertools.islice(furthest_point_sampling(ts, 0.2), 3))  # non-empty
