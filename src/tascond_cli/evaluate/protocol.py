"""The evaluation protocol: train on a source, test on the real test split, over several seeds.

Every source (the original train split, or any MS-TCN-layout folder such as a
restored archive) is trained under the same recipe and seeds, and scored on the
real test split of the reference dataset with the metrics of ``metrics.py``.
A report gives mean and standard deviation (population, ``ddof=0``) per metric
over seeds, the bytes each source's training data takes, and its retention:
the source's mean score as a percentage of the original's, per metric and
averaged over the five metrics. When one source is a ``blind`` archive (all-zero features over the
real action structure, the floor a model reaches without features), every source also gets its
retention above that floor: ``(source - blind) / (original - blind)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from tascond_cli.data import Dataset, FeatureSequence, Video, available_splits, feature_bytes, open_dataset
from tascond_cli.distributed import sum_tensor, world
from tascond_cli.errors import DataError

from .metrics import DEFAULT_BACKGROUND, METRIC_NAMES, score
from .train import TrainConfig, predict_many, train_model

ORIGINAL = "original"

# on_progress(source name, seed index, epochs done, epochs in all)
ProgressCallback = Callable[[str, int, int, int], None]


class VideoPairs(Sequence):
    """(features, labels) pairs of a list of videos, read lazily (memory-mapped).

    ``remap`` translates the videos' class indices into the reference mapping's.
    """

    def __init__(self, videos: Sequence[Video], remap: np.ndarray | None = None) -> None:
        self.videos = list(videos)
        self.remap = remap

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i):  # type: ignore[override]
        video = self.videos[i]
        labels = video.labels if self.remap is None else self.remap[video.labels]
        return video.features(), labels  # (D, T) memmap, (T,)


@dataclass(frozen=True)
class TrainSource:
    """Training data for the protocol: a name, lazily read videos, and what they cost to store."""

    name: str
    videos: Sequence[tuple[np.ndarray, np.ndarray]]
    storage_bytes: int
    path: Path | None = None
    method: str | None = None
    """What made it, for archives (their ``settings["method"]``): ``blind`` marks the floor."""


def original_source(data: Dataset) -> TrainSource:
    """The reference dataset's own train split."""
    if not data.train:
        raise DataError(f"{data.root}: the train split is not opened")
    return TrainSource(ORIGINAL, VideoPairs(data.train), feature_bytes(data.train), data.root)


def folder_source(path: Path | str, data: Dataset, name: str | None = None) -> TrainSource:
    """A folder in the MS-TCN layout (e.g. a restored archive), trained on its train split.

    Its split ``data.split`` is used when present, otherwise its only split. Its
    action names must all be in the reference mapping (order may differ) and its
    feature dimension must match.
    """
    path = Path(path)
    splits = available_splits(path)
    if data.split in splits or not splits:
        split = data.split
    elif len(splits) == 1:
        split = splits[0]
    else:
        raise DataError(
            f"{path}: has no train.split{data.split}.bundle and several other splits "
            f"({', '.join(map(str, splits))}); pass --split"
        )
    source = open_dataset(path, split=split, parts=("train",))
    missing = [n for n in source.mapping.names if n not in data.mapping]
    if missing:
        raise DataError(f"{path / 'mapping.txt'}: action {missing[0]!r} is not in {data.root / 'mapping.txt'}")
    if source.dim != data.dim:
        raise DataError(f"{path}: features are {source.dim}-d, but {data.root} has {data.dim}-d features")
    remap = np.array([data.mapping.index(n) for n in source.mapping.names], dtype=np.int64)
    identity = np.array_equal(remap, np.arange(len(remap)))
    pairs = VideoPairs(source.train, None if identity else remap)
    return TrainSource(name or path.name, pairs, feature_bytes(source.train), path)


class _ArchivePairs(Sequence):
    """(features, labels) of an archive's videos, decoded on the fly (nothing written to disk)."""

    def __init__(self, decoder, remap: np.ndarray | None) -> None:
        self.decoder = decoder
        self.remap = remap

    def __len__(self) -> int:
        return len(self.decoder)

    def __getitem__(self, i):  # type: ignore[override]
        x, y = self.decoder[i]
        return x, (y if self.remap is None else self.remap[y])


def archive_source(path: Path | str, data: Dataset, name: str | None = None, device: str = "cpu") -> TrainSource:
    """A ``.tcd`` archive, decoded on the fly; its storage is the archive file's size.

    Its action names must all be in the reference mapping and its feature dimension must match. The
    archive is opened for random access (:func:`~tascond_cli.archive.open_archive`): a chunked archive's
    codes are read video by video as training asks for them, never whole.
    """
    from tascond_cli.archive import open_archive

    path = Path(path)
    archive = open_archive(path)
    method = archive.settings.get("method")
    return TrainSource(
        name or path.name, archive_pairs(archive, data, str(path), device), path.stat().st_size, path,
        method if isinstance(method, str) else None,
    )


def archive_pairs(archive, data: Dataset, label: str, device: str = "cpu") -> Sequence:
    """A read archive's videos as (features, labels) pairs in ``data``'s class indices, decoded on the fly.

    Its action names must all be in ``data``'s mapping and its dimension must match (errors name ``label``).
    """
    from tascond_cli.restore import ArchiveDecoder

    missing = [n for n in archive.class_names if n not in data.mapping]
    if missing:
        raise DataError(f"{label}: action {missing[0]!r} is not in {data.root / 'mapping.txt'}")
    if archive.dim != data.dim:
        raise DataError(f"{label}: restores {archive.dim}-d features, but {data.root} has {data.dim}-d features")
    remap = np.array([data.mapping.index(n) for n in archive.class_names], dtype=np.int64)
    identity = np.array_equal(remap, np.arange(len(remap)))
    return _ArchivePairs(ArchiveDecoder(archive, device), None if identity else remap)


@dataclass
class SourceResult:
    """One source's scores: per seed, then mean and std over seeds."""

    name: str
    storage_bytes: int
    per_seed: list[dict[str, float]] = field(default_factory=list)
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    retention: dict[str, float] | None = None  # % of the original's mean, per metric and "avg"
    above_floor: dict[str, float] | None = None  # % of the original's gain over the blind floor
    predictions: list[list[np.ndarray]] | None = None  # [seed][test video] (T,) int64, when kept

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "storage_bytes": self.storage_bytes,
            "mean": self.mean,
            "std": self.std,
            "per_seed": self.per_seed,
            "retention": self.retention,
            "above_floor": self.above_floor,
        }


@dataclass
class EvalReport:
    """The whole protocol's outcome; ``results[0]`` is the original when it was run."""

    results: list[SourceResult]
    background: tuple[str, ...]
    config: TrainConfig
    seeds: list[int]
    split: int
    test_videos: list[str]
    floor: str | None = None
    """The name of the blind source the ``above_floor`` figures are measured from, if any."""

    def to_dict(self) -> dict:
        return {
            "model": self.config.model,
            "split": self.split,
            "seeds": self.seeds,
            "epochs": self.config.epochs,
            "lr": self.config.lr,
            "sample_rate": self.config.sample_rate,
            "background": list(self.background),
            "test_videos": len(self.test_videos),
            "floor": self.floor,
            "results": [r.to_dict() for r in self.results],
        }


def retention(source: dict[str, float], original: dict[str, float]) -> dict[str, float]:
    """Each metric of ``source`` as a percentage of ``original``'s, plus their average ("avg").

    A metric on which the original scores 0 has no retention (NaN) and is left out of the average.
    This is :func:`above_floor` with a floor of 0.
    """
    return above_floor(source, original, dict.fromkeys(METRIC_NAMES, 0.0))


def above_floor(source: dict[str, float], original: dict[str, float], floor: dict[str, float]) -> dict[str, float]:
    """Each metric's ``(source - floor) / (original - floor)`` in percent, plus their average ("avg").

    A metric where the original does not beat the floor has no value (NaN) and is left out of the average.
    """
    out = {
        m: (100.0 * (source[m] - floor[m]) / (original[m] - floor[m]) if original[m] > floor[m] else float("nan"))
        for m in METRIC_NAMES
    }
    defined = [out[m] for m in METRIC_NAMES if not np.isnan(out[m])]
    out["avg"] = float(np.mean(defined)) if defined else float("nan")
    return out


def evaluate_sources(
    data: Dataset,
    sources: Sequence[TrainSource],
    config: TrainConfig,
    seeds: int = 3,
    background: Sequence[str] = DEFAULT_BACKGROUND,
    keep_predictions: bool = False,
    on_progress: ProgressCallback | None = None,
) -> EvalReport:
    """Train ``config.model`` on each source with seeds ``config.seed .. config.seed + seeds - 1``; score on ``data.test``.

    Retention is filled in for every source when one of them is named "original", and retention above
    the floor when one is also a ``blind`` archive (the first, if several).

    Under ``torchrun`` (a process group initialised, :func:`tascond_cli.distributed.init`) the
    (source, seed) runs are spread over the ranks, every ``world-size``-th run to each, and every rank
    returns the whole report. A run's result does not depend on which rank trained it.
    """
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if not data.test:
        raise DataError(f"{data.root}: the test split is not opened")
    background = tuple(background)
    names = [data.mapping.names[i] for i in range(data.num_classes)]
    gts = [[names[i] for i in v.labels] for v in data.test]
    seed_values = [config.seed + i for i in range(seeds)]
    # every (source, seed) run; under torchrun each rank trains every world-size-th and the scores (and
    # predictions) are summed over ranks as tensors, each run's row filled by exactly one rank
    runs = [(s, k) for s in range(len(sources)) for k in range(seeds)]
    lengths = [v.num_frames for v in data.test]
    table = torch.zeros((len(runs), len(METRIC_NAMES)), dtype=torch.float64)
    kept = torch.zeros((len(runs) if keep_predictions else 0, sum(lengths)), dtype=torch.int64)
    for r in world().mine(len(runs)):
        s, k = runs[r]
        source, run_config = sources[s], replace(config, seed=seed_values[k])

        def on_epoch(epoch: int, _loss: float, _acc: float, _name=source.name, _k=k) -> None:
            if on_progress is not None:
                on_progress(_name, _k, epoch + 1, run_config.epochs)

        model = train_model(source.videos, data.num_classes, run_config, on_epoch=on_epoch)
        preds = predict_many(model, FeatureSequence(data.test), config.sample_rate)  # one test video mapped at a time
        scores = score([[names[i] for i in p] for p in preds], gts, background)
        table[r] = torch.tensor([scores[m] for m in METRIC_NAMES], dtype=torch.float64)
        if keep_predictions:
            kept[r] = torch.from_numpy(np.concatenate(preds))
    table, kept = sum_tensor(table).numpy(), sum_tensor(kept).numpy()
    results = []
    for s, source in enumerate(sources):
        result = SourceResult(source.name, source.storage_bytes, predictions=[] if keep_predictions else None)
        rows = [runs.index((s, k)) for k in range(seeds)]
        result.per_seed = [dict(zip(METRIC_NAMES, table[r].tolist())) for r in rows]
        if result.predictions is not None:
            bounds = np.cumsum([0, *lengths])
            result.predictions = [[kept[r, a:b].copy() for a, b in zip(bounds[:-1], bounds[1:])] for r in rows]
        result.mean = dict(zip(METRIC_NAMES, table[rows].mean(axis=0).tolist()))
        result.std = dict(zip(METRIC_NAMES, table[rows].std(axis=0).tolist()))
        results.append(result)
    original = next((r for r in results if r.name == ORIGINAL), None)
    floor = next((r for r, s in zip(results, sources) if s.method == "blind"), None)
    if original is not None:
        for r in results:
            r.retention = retention(r.mean, original.mean)
            if floor is not None:
                r.above_floor = above_floor(r.mean, original.mean, floor.mean)
    floor_name = floor.name if floor is not None and original is not None else None
    return EvalReport(results, background, config, seed_values, data.split, [v.name for v in data.test], floor_name)


def score_predictions(
    data: Dataset, predictions: Sequence[np.ndarray], background: Sequence[str] = DEFAULT_BACKGROUND
) -> dict[str, float]:
    """Score class-index predictions of ``data.test`` (same order) with the standard metrics."""
    names = data.mapping.names
    return score(
        [[names[i] for i in p] for p in predictions],
        [[names[i] for i in v.labels] for v in data.test],
        tuple(background),
    )
