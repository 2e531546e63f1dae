"""Incremental action segmentation with replay: one model trained task after task (issue 13).

The protocol (docs/evaluation.md, "The incremental protocol"), after Ding, Golong and Yao (CVPR 2024)
and the incremental experiment of Ding, Chen and Yao (CVPR 2025):

- **Tasks.** Each video's *activity* is read from its name (:func:`activity_of`: the last
  ``_``-separated token without a digit; Breakfast ``P03_cam01_P03_cereals`` is ``cereals``, GTEA
  ``S1_Cheese_C1`` is ``Cheese``). The activities, in a fixed order (:data:`BREAKFAST_ORDER` for
  Breakfast's ten, otherwise alphabetical, or the caller's), are cut into ``tasks`` consecutive groups
  (one activity per task when ``tasks`` equals their number).
- **Training.** One model (MS-TCN or ASFormer, over all of the dataset's classes from the start) is
  trained on task 1's training videos for ``config.epochs`` epochs, then, for each later task, for
  ``config.epochs`` more epochs (a new Adam) on that task's training videos plus the replay of the
  earlier tasks.
- **Replay** of earlier tasks (:data:`REPLAYS`): ``none`` (fine-tuning, the lower bound);
  ``exemplar`` (real frames of the task's training videos, stored as float16, within the same byte
  budget as the task's archive: whole videos in a seeded order while they fit, then one contiguous clip
  of the next video that fills the rest); ``archive`` (each task condensed by ``tascond condense``'s
  default method into one archive when the task is done, decoded on the fly when replayed); ``full``
  (every earlier training video, the upper bound).
- **Scoring.** After each task the model labels the test videos of every task seen so far. Reported per
  replay source: the five metrics after the last task (all test videos), their average over tasks (of
  the scores after each task on the tasks seen so far), and forgetting: for each task but the last, its
  best score after any earlier point minus its score after the last task, averaged over those tasks.

No printing: progress goes through ``on_progress``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from tascond_cli.data import Dataset, FeatureSequence, Video
from tascond_cli.distributed import sum_tensor, world
from tascond_cli.errors import DataError

from .metrics import DEFAULT_BACKGROUND, METRIC_NAMES, score
from .protocol import VideoPairs
from .train import TrainConfig, build_model, fit, predict_many

REPLAYS: tuple[str, ...] = ("none", "exemplar", "archive", "full")
"""The replay sources, lower bound first, upper bound last."""

BREAKFAST_ORDER: tuple[str, ...] = (
    "coffee", "cereals", "tea", "milk", "juice", "sandwich", "scrambledegg", "friedegg", "salat", "pancake",
)  # fmt: skip
"""Breakfast's ten activities in the task order used here: roughly from the fewest actions per video to
the most (coffee and cereals are short, pancake the longest). Used whenever a dataset's activities are
exactly these ten."""

# on_progress(replay, seed index, task index (0-based), epochs done in this task, epochs per task)
IncrementalProgress = Callable[[str, int, int, int, int], None]


def activity_of(name: str) -> str | None:
    """A video's activity from its name: the last ``_``-separated token without a digit (None if none)."""
    tokens = [t for t in name.split("_") if t and not any(c.isdigit() for c in t)]
    return tokens[-1] if tokens else None


def make_tasks(data: Dataset, tasks: int | None = None, order: Sequence[str] | None = None) -> list[list[str]]:
    """The activities of ``data`` (train and test videos) in task order, cut into ``tasks`` groups.

    ``order``: the activities in the order to learn them (every activity of the dataset exactly once);
    default :data:`BREAKFAST_ORDER` when the activities are Breakfast's, otherwise alphabetical.
    ``tasks``: how many groups (default: one activity per task); consecutive activities share a task
    when there are fewer tasks than activities.
    """
    found: dict[str, str] = {}
    for video in [*data.train, *data.test]:
        activity = activity_of(video.name)
        if activity is None:
            raise DataError(
                f"{data.root}: video {video.name!r} has no activity in its name (a token without digits, "
                "as Breakfast's P03_cam01_P03_cereals); the incremental protocol needs them"
            )
        found[activity] = video.name
    if order is None:
        order = BREAKFAST_ORDER if sorted(found) == sorted(BREAKFAST_ORDER) else sorted(found)
    order = list(order)
    unknown = [a for a in order if a not in found]
    if unknown:
        raise DataError(f"{data.root}: task order names activity {unknown[0]!r}, which no video has")
    if len(set(order)) != len(order):
        raise DataError(f"task order names an activity twice: {', '.join(order)}")
    missing = [a for a in found if a not in order]
    if missing:
        raise DataError(f"{data.root}: activity {missing[0]!r} (video {found[missing[0]]}) is not in the task order")
    if len(order) < 2:
        raise DataError(f"{data.root}: the incremental protocol needs at least 2 activities, found {len(order)}")
    tasks = len(order) if tasks is None else tasks
    if not 2 <= tasks <= len(order):
        raise DataError(f"{data.root}: --tasks must be from 2 to {len(order)} (its activities), got {tasks}")
    return [list(group) for group in np.array_split(np.array(order, dtype=object), tasks)]


@dataclass
class ReplayResult:
    """One replay source's outcome over seeds.

    ``curves[s][t]``: after task ``t`` with seed ``s``, the scores on the test videos of tasks ``0..t``
    pooled (key ``"seen"``) and on each task ``j <= t`` alone (key ``j``, when that task has test videos).
    """

    name: str
    buffer_bytes: list[int] = field(default_factory=list)
    """Bytes the replay stores for each task (float16 real frames, archive files; float32 for ``full``)."""
    curves: list[list[dict]] = field(default_factory=list)
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    """``{"mean": ..., "std": ...}`` of the scores after the last task, on all test videos."""
    average: dict[str, dict[str, float]] = field(default_factory=dict)
    """``{"mean": ..., "std": ...}`` of the average over tasks of the score on the tasks seen so far."""
    forgetting: dict[str, dict[str, float]] = field(default_factory=dict)
    """``{"mean": ..., "std": ...}`` of the mean drop from each earlier task's best score to its last."""
    predictions: list[list[np.ndarray]] | None = None
    """``[seed][test video]`` predictions after the last task, when kept."""

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "buffer_bytes": self.buffer_bytes,
            "final": self.final,
            "average": self.average,
            "forgetting": self.forgetting,
            "per_seed": [
                [{("seen" if k == "seen" else f"task{k}"): v for k, v in step.items()} for step in curve]
                for curve in self.curves
            ],
        }


@dataclass
class IncrementalReport:
    """The incremental protocol's outcome."""

    tasks: list[list[str]]
    results: list[ReplayResult]
    config: TrainConfig
    seeds: list[int]
    split: int
    background: tuple[str, ...]
    test_videos: list[str]
    train_counts: list[int]
    test_counts: list[int]

    def to_dict(self) -> dict:
        return {
            "protocol": "incremental",
            "model": self.config.model,
            "split": self.split,
            "tasks": self.tasks,
            "train_videos_per_task": self.train_counts,
            "test_videos_per_task": self.test_counts,
            "seeds": self.seeds,
            "epochs_per_task": self.config.epochs,
            "lr": self.config.lr,
            "sample_rate": self.config.sample_rate,
            "background": list(self.background),
            "test_videos": len(self.test_videos),
            "results": [r.to_dict() for r in self.results],
        }


def _f16_bytes(frames: int, dim: int) -> int:
    return 2 * dim * frames


def exemplar_buffer(
    videos: Sequence[tuple[np.ndarray, np.ndarray]], budget: int, seed: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """Real frames of ``videos`` within ``budget`` bytes at float16 (2 bytes a value; labels not counted).

    Whole videos in a seeded random order while they fit, then one contiguous clip (seeded start) of the
    next that fills what is left. Returns the stored ``(features (D, T) float32 of float16 values,
    labels (T,))`` pairs and the bytes they take.
    """
    rng = np.random.default_rng([seed, 7])
    buffer, used = [], 0
    for i in rng.permutation(len(videos)):
        x, y = videos[int(i)]
        t = min(x.shape[1], len(y))
        room = (budget - used) // _f16_bytes(1, x.shape[0])
        if room <= 0:
            break
        take = min(t, int(room))
        start = 0 if take == t else int(rng.integers(0, t - take + 1))
        clip = np.asarray(x[:, start : start + take], dtype=np.float16).astype(np.float32)  # (D, take)
        buffer.append((clip, np.array(y[start : start + take], dtype=np.int64)))
        used += _f16_bytes(take, x.shape[0])
        if take < t:
            break
    return buffer, used


def _archive_replay(task_videos: list[Video], data: Dataset, seed: int, device: str):
    """Condense one task's training videos with ``tascond condense``'s default method: (pairs, bytes)."""
    from tascond_cli.archive import read_archive
    from tascond_cli.archive.writer import archive_bytes
    from tascond_cli.methods import CONDENSERS, Config, make_baseline

    from .protocol import archive_pairs

    subset = replace(data, parts={"train": list(task_videos)}, warnings=[])
    result = make_baseline(CONDENSERS[0], subset, Config(seed=seed, device=device))
    blob = archive_bytes(result.archive)
    label = f"task archive ({len(task_videos)} videos)"
    return archive_pairs(read_archive(blob, name=label), data, label, device), len(blob)


class _Concat(Sequence):
    """Several sequences of (features, labels) pairs as one."""

    def __init__(self, parts: Sequence[Sequence]) -> None:
        self.parts = [p for p in parts if len(p)]
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, i):  # type: ignore[override]
        k = int(np.searchsorted(self.offsets, i, side="right")) - 1
        return self.parts[k][i - int(self.offsets[k])]


def _summary(values: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    table = np.array([[v[m] for m in METRIC_NAMES] for v in values])  # (seeds, 5)
    return {
        "mean": dict(zip(METRIC_NAMES, table.mean(axis=0).tolist())),
        "std": dict(zip(METRIC_NAMES, table.std(axis=0).tolist())),
    }


def average_over_tasks(curve: list[dict]) -> dict[str, float]:
    """Each metric's mean over tasks of the score after that task on the tasks seen so far."""
    return {m: float(np.mean([step["seen"][m] for step in curve])) for m in METRIC_NAMES}


def summarise(result: ReplayResult) -> ReplayResult:
    """Fill ``final``, ``average`` and ``forgetting`` from ``result.curves`` (one curve per seed); returns it."""
    result.final = _summary([c[-1]["seen"] for c in result.curves])
    result.average = _summary([average_over_tasks(c) for c in result.curves])
    result.forgetting = _summary([forgetting(c) for c in result.curves])
    return result


def forgetting(curve: list[dict]) -> dict[str, float]:
    """Mean over tasks but the last (with test videos) of (best score before the last task - last score)."""
    last = len(curve) - 1
    drops = {m: [] for m in METRIC_NAMES}
    for j in range(last):
        if j not in curve[last]:
            continue
        for m in METRIC_NAMES:
            best = max(curve[t][j][m] for t in range(j, last))
            drops[m].append(best - curve[last][j][m])
    return {m: float(np.mean(v)) if v else 0.0 for m, v in drops.items()}


def _results(replays, seeds, runs, scores, stored, kept, lengths, test_by_task, keep_predictions) -> list[ReplayResult]:
    """Each replay's :class:`ReplayResult` from the summed run tensors."""
    n_tasks = scores.shape[1]
    bounds = np.cumsum([0, *lengths])
    results = []
    for replay in replays:
        result = ReplayResult(replay, predictions=[] if keep_predictions else None)
        for s in range(seeds):
            r = runs.index((replay, s))
            curve = []
            for k in range(n_tasks):
                step: dict = {"seen": dict(zip(METRIC_NAMES, scores[r, k, 0].tolist()))}
                for j in range(k + 1):
                    if test_by_task[j]:
                        step[j] = dict(zip(METRIC_NAMES, scores[r, k, j + 1].tolist()))
                curve.append(step)
            result.curves.append(curve)
            if s == 0:
                result.buffer_bytes = [int(b) for b in stored[r]]
            if result.predictions is not None:
                result.predictions.append([kept[r, a:b].copy() for a, b in zip(bounds[:-1], bounds[1:])])
        results.append(summarise(result))
    return results


def _leave(replay, k, task_pairs, train_by_task, archives, dim, seed) -> tuple[Sequence, int]:
    """What task ``k`` leaves for replay, and its bytes."""
    if replay == "full":
        return task_pairs[k], sum(4 * dim * v.num_frames for v in train_by_task[k])
    if replay == "archive":
        return archives[k]
    if replay == "exemplar":
        return exemplar_buffer(task_pairs[k], archives[k][1], seed * 1000 + k)
    return [], 0


def _check_nonempty(data: Dataset, groups: list[list[str]], train_by_task: list[list[Video]]) -> None:
    empty = [k for k, vids in enumerate(train_by_task) if not vids]
    if empty:
        raise DataError(f"{data.root}: task {empty[0] + 1} ({', '.join(groups[empty[0]])}) has no training videos")


def _task_archives(data, groups, train_by_task, config, needed, on_phase) -> list[tuple[Sequence, int]]:
    """Each task's archive but the last's (decoded pairs, bytes), made with the first seed, when ``needed``."""
    archives: list[tuple[Sequence, int]] = []
    if needed:
        for k, vids in enumerate(train_by_task[:-1]):
            if on_phase is not None:
                on_phase(f"condensing task {k + 1} of {len(groups)}")
            archives.append(_archive_replay(vids, data, config.seed, config.device))
    return archives


def evaluate_incremental(
    data: Dataset,
    config: TrainConfig,
    replays: Sequence[str] = REPLAYS,
    tasks: int | None = None,
    order: Sequence[str] | None = None,
    seeds: int = 3,
    background: Sequence[str] = DEFAULT_BACKGROUND,
    keep_predictions: bool = False,
    on_progress: IncrementalProgress | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> IncrementalReport:
    """Run the incremental protocol for each replay source with seeds ``config.seed ..`` (see the module).

    Archives: made once (first seed); exemplars: per seed. torchrun: runs spread over the ranks.
    """
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    unknown = [r for r in replays if r not in REPLAYS]
    if unknown or not replays:
        raise ValueError(f"replay must be among {', '.join(REPLAYS)}, got {unknown[0] if unknown else 'none'}")
    if not data.train or not data.test:
        raise DataError(f"{data.root}: the incremental protocol needs the train and test splits")
    groups = make_tasks(data, tasks, order)
    task_of = {a: k for k, group in enumerate(groups) for a in group}
    train_by_task = [[v for v in data.train if task_of[activity_of(v.name)] == k] for k in range(len(groups))]
    test_by_task = [[i for i, v in enumerate(data.test) if task_of[activity_of(v.name)] == k] for k in range(len(groups))]
    _check_nonempty(data, groups, train_by_task)
    background = tuple(background)
    names = data.mapping.names
    gts = [[names[i] for i in v.labels] for v in data.test]
    seed_values = [config.seed + i for i in range(seeds)]
    task_pairs = [VideoPairs(vids) for vids in train_by_task]

    archives = _task_archives(data, groups, train_by_task, config, "archive" in replays or "exemplar" in replays,
                              on_phase)  # fmt: skip

    # every (replay, seed) run; under torchrun each rank takes every world-size-th and the curves,
    # buffer sizes and predictions are summed over ranks as tensors (each run's rows filled by one rank)
    runs = [(replay, s) for replay in replays for s in range(seeds)]
    n_tasks, n_metrics = len(groups), len(METRIC_NAMES)
    lengths = [v.num_frames for v in data.test]
    scores = torch.zeros((len(runs), n_tasks, n_tasks + 1, n_metrics), dtype=torch.float64)  # [run, k, seen/j+1]
    stored = torch.zeros((len(runs), n_tasks - 1), dtype=torch.int64)
    kept = torch.zeros((len(runs) if keep_predictions else 0, sum(lengths)), dtype=torch.int64)
    for r in world().mine(len(runs)):
        replay, s = runs[r]
        seed = seed_values[s]
        run_config = replace(config, seed=seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_model(data.dim, data.num_classes, run_config)
        memory: list[Sequence] = []
        for k in range(n_tasks):
            def on_epoch(epoch: int, _loss: float, _acc: float, _r=replay, _s=s, _k=k) -> None:
                if on_progress is not None:
                    on_progress(_r, _s, _k, epoch + 1, run_config.epochs)

            train = _Concat([task_pairs[k], *memory])
            fit(model, train, data.num_classes, replace(run_config, seed=seed * 1000 + k), on_epoch)
            seen = [i for j in range(k + 1) for i in test_by_task[j]]
            preds = predict_many(model, FeatureSequence([data.test[i] for i in seen]), config.sample_rate)
            by_index = dict(zip(seen, preds))
            for slot, videos in [(0, seen)] + [(j + 1, test_by_task[j]) for j in range(k + 1) if test_by_task[j]]:
                got = score([[names[c] for c in by_index[i]] for i in videos], [gts[i] for i in videos], background)
                scores[r, k, slot] = torch.tensor([got[m] for m in METRIC_NAMES], dtype=torch.float64)
            if k == n_tasks - 1:
                if keep_predictions:
                    kept[r] = torch.from_numpy(np.concatenate([by_index[i] for i in range(len(data.test))]))
                break
            # what this task leaves behind for the next ones
            part, stored[r, k] = _leave(replay, k, task_pairs, train_by_task, archives, data.dim, seed)
            memory.append(part)
    scores, stored, kept = sum_tensor(scores).numpy(), sum_tensor(stored).numpy(), sum_tensor(kept).numpy()
    results = _results(replays, seeds, runs, scores, stored, kept, lengths, test_by_task, keep_predictions)
    return IncrementalReport(
        groups, results, config, seed_values, data.split, background, [v.name for v in data.test],
        [len(v) for v in train_by_task], [len(v) for v in test_by_task],
    )  # fmt: skip
