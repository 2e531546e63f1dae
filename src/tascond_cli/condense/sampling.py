"""Diverse sequence sampling: which videos to keep (docs/method.md, section 1).

A video's *transcript* is its run-length-collapsed label sequence (its action order). Two videos are
as far apart as their transcripts' normalised edit distance::

    d(a, b) = Levenshtein(a, b) / max(len(a), len(b))        (0 for two empty transcripts)

so d lies in [0, 1]. Furthest-point sampling (greedy k-center, Gonzalez 1985) keeps a fraction of the
videos whose transcripts cover the others as well as possible.

Everything here is exact and deterministic:

- distances are ratios of integers computed by one IEEE division, so equal ratios give equal floats
  and ties are real ties;
- the start is the *medoid*: the video whose mean distance to all videos (duplicates counted) is
  smallest, ties to the lowest index. It starts the sample with the most typical action order, and
  every later pick is the video farthest from those kept;
- every pick breaks ties by the lowest video index;
- a fraction ``ratio`` of N videos keeps ``max(1, floor(ratio * N + 0.5))`` (round half up, never 0).

Many videos share one transcript (Breakfast: about 1,700 videos, a few hundred action orders), so the
distances are computed once per distinct transcript, each row vectorised over all of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Transcript = Sequence[int]

__all__ = [
    "distance_matrix",
    "furthest_point_sampling",
    "random_sampling",
    "sample_size",
    "transcript_distance",
]


def sample_size(n: int, ratio: float) -> int:
    """How many of ``n`` videos a fraction ``ratio`` keeps: ``max(1, floor(ratio * n + 0.5))``.

    >>> [sample_size(5, r) for r in (0.01, 0.3, 0.5, 0.7, 1.0)]
    [1, 2, 3, 4, 5]
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"need at least one video to sample from, got n={n!r}")
    if not isinstance(ratio, (int, float, np.floating)) or not math.isfinite(ratio) or not 0 < ratio <= 1:
        raise ValueError(f"sampling ratio must be in (0, 1], got {ratio!r}")
    return int(min(n, max(1, math.floor(ratio * n + 0.5))))


def levenshtein(a: Transcript, b: Transcript) -> int:
    """Edit distance (insertions, deletions, substitutions, each costing 1)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def transcript_distance(a: Transcript, b: Transcript) -> float:
    """``Levenshtein(a, b) / max(len(a), len(b))``; 0 for two empty transcripts.

    >>> transcript_distance((0, 1, 2), (0, 2))
    0.3333333333333333
    """
    m = max(len(a), len(b))
    return 0.0 if m == 0 else levenshtein(a, b) / m


def _unique(transcripts: Sequence[Transcript]) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Distinct transcripts in first-seen order, and for each video the index of its transcript."""
    index: dict[tuple[int, ...], int] = {}
    inverse = np.empty(len(transcripts), dtype=np.int64)
    for v, t in enumerate(transcripts):
        inverse[v] = index.setdefault(tuple(int(x) for x in t), len(index))
    return list(index), inverse


def _unique_distances(uniq: list[tuple[int, ...]]) -> np.ndarray:
    """(U, U) float64 normalised edit distances between distinct transcripts.

    One Wagner-Fischer pass per transcript ``a``, vectorised over every ``b`` and every column: a row
    is ``D[i, j] = min(D[i-1, j] + 1, D[i-1, j-1] + cost, D[i, j-1] + 1)``; the last, left-to-right
    term is a running minimum, ``D[i, j] = j + cummin_k(tmp[k] - k)``.
    """
    u = len(uniq)
    lens = np.array([len(t) for t in uniq], dtype=np.int64)  # (U,)
    width = int(lens.max(initial=0))
    pad = np.full((u, max(width, 1)), -1, dtype=np.int64)  # (U, W); -1 never equals a class
    for k, t in enumerate(uniq):
        pad[k, : len(t)] = t
    cols = np.arange(width + 1, dtype=np.int64)  # (W+1,)
    lev = np.empty((u, u), dtype=np.int64)
    for r, a in enumerate(uniq):
        row = np.broadcast_to(cols, (u, width + 1)).copy()  # (U, W+1): D[0, j] = j
        for i, x in enumerate(a, 1):
            cost = (pad[:, :width] != x).astype(np.int64)  # (U, W)
            tmp = np.empty_like(row)
            tmp[:, 0] = i
            tmp[:, 1:] = np.minimum(row[:, 1:] + 1, row[:, :-1] + cost)
            row = np.minimum.accumulate(tmp - cols, axis=1) + cols
        lev[r] = row[np.arange(u), lens]
    longest = np.maximum(lens[:, None], lens[None, :])  # (U, U)
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = np.where(longest > 0, lev / np.maximum(longest, 1), 0.0)
    return dist


def distance_matrix(transcripts: Sequence[Transcript]) -> np.ndarray:
    """(N, N) float64 matrix of :func:`transcript_distance` between all videos' transcripts.

    Identical transcripts are computed once. Symmetric, zero on the diagonal.
    """
    uniq, inverse = _unique(transcripts)
    if not uniq:
        return np.zeros((0, 0))
    return _unique_distances(uniq)[np.ix_(inverse, inverse)]


def furthest_point_sampling(transcripts: Sequence[Transcript], ratio: float, seed: int = 0) -> list[int]:
    """Indices of the videos furthest-point sampling keeps, in increasing order.

    Keeps ``sample_size(N, ratio)`` videos: first the medoid (smallest mean distance to all videos,
    lowest index on ties), then repeatedly the video with the largest distance to its nearest kept
    video (lowest index on ties). Once every distinct transcript is kept the remaining distances
    are all 0, so further picks come in index order. ``seed`` is accepted for a uniform sampler
    signature and unused: the result is fully deterministic.
    """
    del seed
    n = len(transcripts)
    k = sample_size(n, ratio)
    uniq, inverse = _unique(transcripts)
    dist = _unique_distances(uniq)  # (U, U)
    counts = np.bincount(inverse, minlength=len(uniq)).astype(np.float64)  # (U,)
    # Sums of ratios are not exact: round so that mathematically equal means tie.
    mean = np.round(dist @ counts / n, 12)  # (U,)
    first = int(np.argmin(mean[inverse]))
    kept = np.zeros(n, dtype=bool)
    kept[first] = True
    near = dist[inverse[first]].copy()  # (U,): distance of each transcript to its nearest kept one
    for _ in range(k - 1):
        score = np.where(kept, -1.0, near[inverse])  # (N,)
        pick = int(np.argmax(score))  # first maximum: lowest index on ties
        kept[pick] = True
        np.minimum(near, dist[inverse[pick]], out=near)
    return np.flatnonzero(kept).tolist()


def random_sampling(n: int, ratio: float, seed: int = 0) -> list[int]:
    """``sample_size(n, ratio)`` indices of ``range(n)`` drawn uniformly without replacement, sorted."""
    k = sample_size(n, ratio)
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(n, size=k, replace=False))
