"""Temporal action segmentation metrics: frame accuracy, Edit and segmental F1@k.

The definitions are those of the official MS-TCN ``eval.py`` (Farha & Gall, CVPR 2019,
github.com/yabufarha/ms-tcn, itself adapted from Lea et al.'s TCN ``metrics.py``), with its known
last-segment bug fixed: the final segment ends at ``len(labels)`` (end exclusive), not one frame early.
See ``docs/evaluation.md``, "Metrics".

- segments: maximal runs of one label, ``(label, start, end)`` with ``end`` exclusive; runs whose label
  is in the background set are dropped. The default background set is ``("background",)`` only.
- Acc: correct frames / all frames, pooled over every video (background included), in percent.
- Edit: per video ``(1 - Levenshtein(P, Y) / max(|P|, |Y|)) * 100`` over the segment label strings,
  averaged over videos. Two empty strings score 100.
- F1@t: each predicted segment, in time order, takes the ground-truth segment with the highest IoU
  among all gt segments, IoU zeroed where the label differs (``argmax`` keeps the first of ties). It is a
  true positive if that IoU >= t and the gt segment is still unmatched (which then becomes matched),
  otherwise a false positive; fn = unmatched gt segments. tp/fp/fn are summed over videos before
  ``F1 = 2PR / (P + R) * 100``; an undefined precision, recall or F1 counts as 0.

Labels may be any sequence of hashables (strings, ints, NumPy arrays of either).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from itertools import groupby

import numpy as np

DEFAULT_BACKGROUND: tuple[str, ...] = ("background",)
METRIC_NAMES: tuple[str, ...] = ("acc", "edit", "f1@10", "f1@25", "f1@50")
F1_OVERLAPS: tuple[float, ...] = (0.10, 0.25, 0.50)

Segment = tuple[object, int, int]


def _as_list(labels: Sequence[Hashable]) -> list:
    """Return ``labels`` as a plain list (NumPy scalars become Python scalars)."""
    if isinstance(labels, np.ndarray):
        return labels.tolist()
    return list(labels)


def get_segments(
    labels: Sequence[Hashable], background: Collection[Hashable] = DEFAULT_BACKGROUND
) -> list[Segment]:
    """Split a frame-wise label sequence into segments, dropping background runs.

    Parameters
    ----------
    labels : sequence of hashable
        One label per frame.
    background : collection of hashable
        Labels whose runs are dropped.

    Returns
    -------
    list of (label, start, end)
        Maximal runs of one label in time order, ``end`` exclusive (the fixed MS-TCN convention).
    """
    bg = frozenset(background)
    segments: list[Segment] = []
    start = 0
    for label, run in groupby(_as_list(labels)):
        end = start + sum(1 for _ in run)
        if label not in bg:
            segments.append((label, start, end))
        start = end
    return segments


def frame_accuracy_counts(pred: Sequence[Hashable], gt: Sequence[Hashable]) -> tuple[int, int]:
    """Count correctly labelled frames.

    Parameters
    ----------
    pred, gt : sequence of hashable
        Predicted and ground-truth labels, one per frame, of equal length.

    Returns
    -------
    (correct, total) : tuple of int

    Raises
    ------
    ValueError
        If the lengths differ.
    """
    p, g = _as_list(pred), _as_list(gt)
    if len(p) != len(g):
        raise ValueError(f"prediction has {len(p)} frames but ground truth has {len(g)}")
    return sum(a == b for a, b in zip(p, g)), len(g)


def _levenshtein(p: Sequence[Hashable], y: Sequence[Hashable]) -> int:
    """Levenshtein distance between two label strings (row-vectorised Wagner-Fischer).

    Within a row, ``D[i, j] = min(t[j], D[i, j-1] + 1)`` is the running minimum of ``t[j] - j`` plus ``j``,
    so each row is a handful of NumPy operations and the result is exact (integers throughout).
    """
    ids: dict[Hashable, int] = {}
    pa = np.array([ids.setdefault(a, len(ids)) for a in p], dtype=np.int64)  # (m,)
    ya = np.array([ids.setdefault(b, len(ids)) for b in y], dtype=np.int64)  # (n,)
    n = len(ya)
    cols = np.arange(n + 1, dtype=np.int64)  # (n+1,)
    row = cols.copy()  # D[0, :]
    for i in range(1, len(pa) + 1):
        sub = row[:-1] + (ya != pa[i - 1])  # (n,) substitution / match
        t = np.empty_like(row)
        t[0] = i
        t[1:] = np.minimum(sub, row[1:] + 1)  # deletion
        row = np.minimum.accumulate(t - cols) + cols  # insertion
    return int(row[-1])


def edit_score(
    pred: Sequence[Hashable], gt: Sequence[Hashable], background: Collection[Hashable] = DEFAULT_BACKGROUND
) -> float:
    """Segmental edit score of one video, in ``[0, 100]``.

    Parameters
    ----------
    pred, gt : sequence of hashable
        Predicted and ground-truth frame labels.
    background : collection of hashable
        Labels ignored when forming segments.

    Returns
    -------
    float
        ``(1 - Levenshtein / max(len)) * 100``; 100.0 if both have no segments, 0.0 if exactly one has none.
    """
    return _edit_from_segments(get_segments(pred, background), get_segments(gt, background))


def _edit_from_segments(p_seg: list[Segment], y_seg: list[Segment]) -> float:
    """Edit score from already extracted segments (see ``edit_score``)."""
    longest = max(len(p_seg), len(y_seg))
    if longest == 0:
        return 100.0
    return (1.0 - _levenshtein([s[0] for s in p_seg], [s[0] for s in y_seg]) / longest) * 100.0


def f1_counts(
    pred: Sequence[Hashable],
    gt: Sequence[Hashable],
    overlap: float,
    background: Collection[Hashable] = DEFAULT_BACKGROUND,
) -> tuple[int, int, int]:
    """True positives, false positives and false negatives of one video at IoU threshold ``overlap``.

    Parameters
    ----------
    pred, gt : sequence of hashable
        Predicted and ground-truth frame labels.
    overlap : float
        IoU threshold, e.g. 0.1, 0.25 or 0.5.
    background : collection of hashable
        Labels ignored when forming segments.

    Returns
    -------
    (tp, fp, fn) : tuple of int
    """
    return _f1_counts_from_segments(get_segments(pred, background), get_segments(gt, background), overlap)


def _f1_counts_from_segments(p_seg: list[Segment], y_seg: list[Segment], overlap: float) -> tuple[int, int, int]:
    """tp, fp, fn from already extracted segments (see ``f1_counts``)."""
    if not y_seg:
        return 0, len(p_seg), 0
    if not p_seg:
        return 0, 0, len(y_seg)
    y_label = [s[0] for s in y_seg]
    y_start = np.array([s[1] for s in y_seg], dtype=np.float64)  # (G,)
    y_end = np.array([s[2] for s in y_seg], dtype=np.float64)  # (G,)
    hits = np.zeros(len(y_seg), dtype=bool)  # (G,)
    tp = fp = 0
    for label, start, end in p_seg:
        intersection = np.minimum(end, y_end) - np.maximum(start, y_start)  # (G,), negative if disjoint
        union = np.maximum(end, y_end) - np.minimum(start, y_start)  # (G,), always > 0
        same = np.array([label == yl for yl in y_label], dtype=np.float64)  # (G,)
        iou = intersection / union * same  # (G,) as in eval.py: other labels zeroed, not excluded
        idx = int(iou.argmax())  # first of ties
        if iou[idx] >= overlap and not hits[idx]:
            tp += 1
            hits[idx] = True
        else:
            fp += 1
    return tp, fp, len(y_seg) - int(hits.sum())


def _f1(tp: int, fp: int, fn: int) -> float:
    """F1 in percent from summed counts; undefined ratios count as 0 (``np.nan_to_num`` in eval.py)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall) * 100.0


def score(
    preds: Sequence[Sequence[Hashable]],
    gts: Sequence[Sequence[Hashable]],
    background: Collection[Hashable] = DEFAULT_BACKGROUND,
) -> dict[str, float]:
    """All standard TAS metrics over a set of videos.

    Parameters
    ----------
    preds, gts : sequence of label sequences
        One predicted and one ground-truth label sequence per video, paired by position.
    background : collection of hashable
        Labels ignored when forming segments (Edit, F1); accuracy counts every frame.

    Returns
    -------
    dict
        Keys ``METRIC_NAMES``: ``"acc"`` (pooled over frames), ``"edit"`` (mean over videos),
        ``"f1@10"``, ``"f1@25"``, ``"f1@50"`` (from tp/fp/fn summed over videos); all in percent.
        With no videos (or no frames) the affected metrics are 0.0.

    Raises
    ------
    ValueError
        If the number of videos, or the length of a video, differs between ``preds`` and ``gts``.
    """
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth videos")
    correct = total = 0
    edit = 0.0
    counts = np.zeros((len(F1_OVERLAPS), 3), dtype=np.int64)  # (n_overlap, [tp, fp, fn])
    for pred, gt in zip(preds, gts):
        c, t = frame_accuracy_counts(pred, gt)
        correct += c
        total += t
        p_seg, y_seg = get_segments(pred, background), get_segments(gt, background)
        edit += _edit_from_segments(p_seg, y_seg)
        for k, overlap in enumerate(F1_OVERLAPS):
            counts[k] += _f1_counts_from_segments(p_seg, y_seg, overlap)
    result = {
        "acc": 100.0 * correct / total if total else 0.0,
        "edit": edit / len(gts) if len(gts) else 0.0,
    }
    for name, (tp, fp, fn) in zip(METRIC_NAMES[2:], counts.tolist()):
        result[name] = _f1(tp, fp, fn)
    return result
