"""Metrics against an independent loop reference in the style of the official MS-TCN eval.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tascond_cli.evaluate.metrics import (
    DEFAULT_BACKGROUND,
    METRIC_NAMES,
    edit_score,
    f1_counts,
    frame_accuracy_counts,
    get_segments,
    score,
)

# ---------------------------------------------------------------- reference (official style, loops)


def ref_segments(frame_wise_labels, bg_class):
    labels, starts, ends = [], [], []
    last_label = frame_wise_labels[0]
    if frame_wise_labels[0] not in bg_class:
        labels.append(frame_wise_labels[0])
        starts.append(0)
    for i in range(len(frame_wise_labels)):
        if frame_wise_labels[i] != last_label:
            if frame_wise_labels[i] not in bg_class:
                labels.append(frame_wise_labels[i])
                starts.append(i)
            if last_label not in bg_class:
                ends.append(i)
            last_label = frame_wise_labels[i]
    if last_label not in bg_class:
        ends.append(i + 1)  # the fixed end
    return labels, starts, ends


def ref_levenstein(p, y):
    m_row, n_col = len(p), len(y)
    D = np.zeros([m_row + 1, n_col + 1], np.float64)
    for i in range(m_row + 1):
        D[i, 0] = i
    for i in range(n_col + 1):
        D[0, i] = i
    for j in range(1, n_col + 1):
        for i in range(1, m_row + 1):
            if y[j - 1] == p[i - 1]:
                D[i, j] = D[i - 1, j - 1]
            else:
                D[i, j] = min(D[i - 1, j] + 1, D[i, j - 1] + 1, D[i - 1, j - 1] + 1)
    return (1 - D[-1, -1] / max(m_row, n_col)) * 100


def ref_edit(recognized, ground_truth, bg_class):
    P, _, _ = ref_segments(recognized, bg_class)
    Y, _, _ = ref_segments(ground_truth, bg_class)
    if not P and not Y:
        return 100.0
    return ref_levenstein(P, Y)


def ref_f_score(recognized, ground_truth, overlap, bg_class):
    p_label, p_start, p_end = ref_segments(recognized, bg_class)
    y_label, y_start, y_end = ref_segments(ground_truth, bg_class)
    tp, fp = 0, 0
    hits = np.zeros(len(y_label))
    if not y_label:
        return 0, len(p_label), 0
    for j in range(len(p_label)):
        intersection = np.minimum(p_end[j], y_end) - np.maximum(p_start[j], y_start)
        union = np.maximum(p_end[j], y_end) - np.minimum(p_start[j], y_start)
        IoU = (1.0 * intersection / union) * ([p_label[j] == y_label[x] for x in range(len(y_label))])
        idx = np.array(IoU).argmax()
        if IoU[idx] >= overlap and not hits[idx]:
            tp += 1
            hits[idx] = 1
        else:
            fp += 1
    fn = len(y_label) - sum(hits)
    return tp, fp, int(fn)


def ref_score(preds, gts, bg_class):
    overlap = [0.1, 0.25, 0.5]
    tp, fp, fn = np.zeros(3), np.zeros(3), np.zeros(3)
    correct = total = 0
    edit = 0.0
    for recog, gt in zip(preds, gts):
        for i in range(len(gt)):
            total += 1
            if gt[i] == recog[i]:
                correct += 1
        edit += ref_edit(recog, gt, bg_class)
        for s in range(3):
            tp1, fp1, fn1 = ref_f_score(recog, gt, overlap[s], bg_class)
            tp[s] += tp1
            fp[s] += fp1
            fn[s] += fn1
    out = {"acc": 100 * float(correct) / total, "edit": edit / len(gts)}
    for s, name in enumerate(["f1@10", "f1@25", "f1@50"]):
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = tp[s] / float(tp[s] + fp[s])
            recall = tp[s] / float(tp[s] + fn[s])
            f1 = 2.0 * (precision * recall) / (precision + recall)
        out[name] = float(np.nan_to_num(f1) * 100)
    return out


# ---------------------------------------------------------------- random agreement

VOCAB = ["background", "SIL", "action_start", "action_end", "cut", "pour", "stir", "take"]


def random_video(rng: np.random.Generator, t: int, mean_run: float) -> list[str]:
    labels: list[str] = []
    while len(labels) < t:
        labels += [VOCAB[rng.integers(len(VOCAB))]] * int(rng.geometric(1.0 / mean_run))
    return labels[:t]


def noisy_copy(rng: np.random.Generator, gt: list[str], mean_run: float) -> list[str]:
    """A prediction: the gt with random segments painted over it."""
    pred = list(gt)
    for _ in range(rng.integers(0, 6)):
        start = int(rng.integers(len(pred)))
        length = int(rng.geometric(1.0 / mean_run))
        pred[start : start + length] = [VOCAB[rng.integers(len(VOCAB))]] * len(pred[start : start + length])
    return pred


@pytest.mark.parametrize(
    "background",
    [("background",), ("SIL",), ("action_start", "action_end"), ()],
    ids=["background", "SIL", "start_end", "none"],
)
def test_random_agreement_with_reference(background):
    rng = np.random.default_rng(len(background) + 17)
    gts, preds = [], []
    for _ in range(25):
        t = int(rng.integers(1, 120))
        gt = random_video(rng, t, mean_run=float(rng.uniform(1.5, 15)))
        pred = noisy_copy(rng, gt, 8.0) if rng.random() < 0.7 else random_video(rng, t, 4.0)
        gts.append(gt)
        preds.append(pred)
    bg = set(background)
    for pred, gt in zip(preds, gts):
        assert get_segments(gt, background) == list(zip(*ref_segments(gt, bg)))
        assert edit_score(pred, gt, background) == pytest.approx(ref_edit(pred, gt, bg), abs=1e-6)
        for overlap in (0.1, 0.25, 0.5):
            assert f1_counts(pred, gt, overlap, background) == ref_f_score(pred, gt, overlap, bg)
    ours, ref = score(preds, gts, background), ref_score(preds, gts, bg)
    assert tuple(ours) == METRIC_NAMES
    for name in METRIC_NAMES:
        assert ours[name] == pytest.approx(ref[name], abs=1e-6), name
    # integer labels (NumPy arrays) give the same numbers as their string names
    index = {name: i for i, name in enumerate(VOCAB)}
    int_bg = tuple(index[b] for b in background)
    as_int = [np.array([index[a] for a in v]) for v in preds], [np.array([index[a] for a in v]) for v in gts]
    assert score(*as_int, background=int_bg) == ours


def test_levenshtein_long_strings_match_reference():
    rng = np.random.default_rng(3)
    for _ in range(5):
        p = rng.integers(0, 4, size=int(rng.integers(1, 60))).tolist()
        y = rng.integers(0, 4, size=int(rng.integers(1, 60))).tolist()
        # frame sequences where every frame is its own segment (no equal neighbours)
        p = [v for i, v in enumerate(p) if i == 0 or v != p[i - 1]]
        y = [v for i, v in enumerate(y) if i == 0 or v != y[i - 1]]
        assert edit_score(p, y, ()) == pytest.approx(ref_levenstein(p, y), abs=1e-9)


# ---------------------------------------------------------------- hand-computed cases


def test_segments_fixed_end_and_background():
    labels = ["background", "a", "a", "b", "background", "background", "a"]
    assert get_segments(labels) == [("a", 1, 3), ("b", 3, 4), ("a", 6, 7)]
    assert get_segments(labels, ()) == [
        ("background", 0, 1), ("a", 1, 3), ("b", 3, 4), ("background", 4, 6), ("a", 6, 7)
    ]
    assert get_segments(["SIL", "x", "SIL"]) == [("SIL", 0, 1), ("x", 1, 2), ("SIL", 2, 3)]  # SIL is an action
    assert get_segments(["SIL", "x", "SIL"], {"SIL"}) == [("x", 1, 2)]
    assert get_segments([]) == []
    assert get_segments(np.array([2, 2, 0, 1]), background=(0,)) == [(2, 0, 2), (1, 3, 4)]
    assert DEFAULT_BACKGROUND == ("background",)


def test_frame_accuracy_counts():
    assert frame_accuracy_counts(["a", "b", "b"], ["a", "b", "c"]) == (2, 3)
    assert frame_accuracy_counts(np.array([1, 2]), [1, 2]) == (2, 2)
    with pytest.raises(ValueError):
        frame_accuracy_counts(["a"], ["a", "b"])


def test_edit_hand_computed():
    assert edit_score(list("aabbcc"), list("abc")) == 100.0
    assert edit_score(list("aabb"), list("aacc")) == 50.0  # one substitution over 2
    assert edit_score(list("abcd"), list("ab")) == 50.0  # two deletions over max length 4
    # background frames around the segments cost nothing once they are dropped
    assert edit_score(["SIL", "a", "a", "SIL"], ["a", "SIL"], {"SIL"}) == 100.0
    # ...but a background run still splits a label into two segments: [a, a] vs [a]
    assert edit_score(["SIL", "a", "SIL", "a"], ["a"], {"SIL"}) == 50.0
    # without a background set SIL is an action: [SIL, a, SIL, a] vs [a]
    assert edit_score(["SIL", "a", "SIL", "a"], ["a"]) == 25.0


def test_edit_empty_cases():
    assert edit_score(["background"] * 3, ["background"] * 2) == 100.0
    assert edit_score(["background"] * 3, ["a"] * 3) == 0.0
    assert edit_score(["a"] * 3, ["background"] * 3) == 0.0


def test_f1_greedy_match_no_reuse():
    gt = ["a"] * 10
    pred = ["a"] * 5 + ["b"] + ["a"] * 4
    # pred segments: a[0,5) IoU .5 -> tp (gt used); b -> fp; a[6,10) IoU .4 but gt used -> fp
    assert f1_counts(pred, gt, 0.1) == (1, 2, 0)
    assert f1_counts(pred, gt, 0.5) == (1, 2, 0)
    assert f1_counts(pred, gt, 0.51) == (0, 3, 1)


def test_f1_first_of_ties_even_if_used():
    # gt a[0,2) x[2,3) a[3,5); one pred a[0,5) ties (IoU .4) with both a segments
    gt = ["a", "a", "x", "a", "a"]
    pred = ["a", "a", "a", "a", "a"]
    # single pred a[0,5): IoU with a[0,2) = .4, with a[3,5) = .4 -> argmax picks the first
    assert f1_counts(pred, gt, 0.25) == (1, 0, 2)  # x and second a unmatched
    # a tie whose first gt is already matched is a fp although the second is free (argmax semantics)
    gt1 = ["a"] * 3 + ["background"] * 2 + ["a"] * 3  # a[0,3) a[5,8)
    pred1 = ["a", "c"] + ["a"] * 4 + ["background"] * 2  # a[0,1) tp; c fp; a[2,6): IoU 1/6 with both
    assert f1_counts(pred1, gt1, 0.1) == (1, 2, 1)
    gt2 = ["a", "a", "background", "a", "a"]
    pred2 = ["a", "a", "background", "a", "a"]
    assert f1_counts(pred2, gt2, 0.5) == (2, 0, 0)


def test_f1_best_gt_taken_gives_fp_not_second_best():
    gt = ["a"] * 4 + ["b"] + ["a"] * 2
    pred = ["a"] * 4 + ["c"] + ["a"] * 2
    assert f1_counts(pred, gt, 0.5) == (2, 1, 1)
    # a later pred segment whose best gt is already matched is a fp, even if another gt is free
    gt3 = ["a"] * 6 + ["background"] * 4 + ["a"] * 2
    pred3 = ["a"] * 3 + ["c"] + ["a"] * 3 + ["background"] * 5
    # a[0,3): IoU 3/6 with gt a[0,6), -> tp; a[4,7): IoU 2/7 with a[0,6) vs -3/8 -> best is used -> fp
    assert f1_counts(pred3, gt3, 0.1) == (1, 2, 1)


def test_f1_empty_cases():
    assert f1_counts(["background"] * 4, ["background"] * 4, 0.1) == (0, 0, 0)
    assert f1_counts(["a"] * 4, ["background"] * 4, 0.1) == (0, 1, 0)
    assert f1_counts(["background"] * 4, ["a", "b", "b", "b"], 0.1) == (0, 0, 2)


def test_score_pooled_accuracy_and_averaged_edit():
    preds = [["a"] * 9 + ["b"], ["a", "b"]]
    gts = [["a"] * 10, ["a", "a"]]
    s = score(preds, gts)
    assert s["acc"] == pytest.approx(100 * 10 / 12)  # pooled; per-video mean would be 70
    assert s["edit"] == pytest.approx((50.0 + 50.0) / 2)
    # F1 from summed counts: tp 2, fp 2, fn 0 -> P .5, R 1, F1 2/3
    assert s["f1@10"] == pytest.approx(200 / 3)
    assert s["f1@50"] == pytest.approx(200 / 3)  # a[0,9) IoU .9; a[0,1) IoU .5


def test_score_edit_is_per_video_mean():
    preds = [list("abcd"), ["a"]]
    gts = [list("abce"), ["a"]]
    assert score(preds, gts)["edit"] == pytest.approx((75.0 + 100.0) / 2)


def test_score_empty_cases():
    s = score([["background"] * 3], [["background"] * 3])
    assert s == {"acc": 100.0, "edit": 100.0, "f1@10": 0.0, "f1@25": 0.0, "f1@50": 0.0}
    s = score([], [])
    assert all(s[k] == 0.0 for k in METRIC_NAMES)
    assert all(not math.isnan(v) for v in s.values())
    with pytest.raises(ValueError):
        score([["a"]], [])
    with pytest.raises(ValueError):
        score([["a"]], [["a", "a"]])
