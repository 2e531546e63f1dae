"""Write a synthetic dataset folder in the MS-TCN layout: labels from a profile or from a real dataset.

Labels either come from a built-in profile (:mod:`tascond_cli.synth.profiles`) or are taken unchanged
from a real dataset (``labels_from``); the features always come from the feature model
(:mod:`tascond_cli.synth.features`). See docs/synth.md.

Scaling down
------------
``videos=N`` keeps N videos of the train part and N of the test part of ``split`` (all if fewer),
chosen reproducibly from the seed; every split bundle is rewritten with only the kept videos, in their
original order (bundles that end up empty are left out). ``subsample=S`` keeps every S-th frame of the
labels and features (the same video at a lower frame rate). Without ``videos``, a profile writes a
small default selection (Breakfast 40 train + 10 test of the split, 50Salads 8 + 2, GTEA all 28) and
``labels_from`` writes every video of the source's ``groundTruth/``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tascond_cli.data import (
    BUNDLE_RE,
    PARTS,
    ClassMapping,
    DatasetWriter,
    folder_bytes,
    read_bundle,
    read_labels,
)
from tascond_cli.errors import DataError, TascondError
from tascond_cli.synth.config import SynthConfig, SynthSummary
from tascond_cli.synth.features import FeatureWorld
from tascond_cli.synth.labels import Recording, population, profile_labels
from tascond_cli.synth.profiles import PROFILE_TABLES, Profile, vocabulary_fps
from tascond_cli.synth.seeding import stable_rng

ProgressCallback = Callable[[int, int], None]  # (videos done, videos in all)


def synthesize(
    out: Path | str,
    config: SynthConfig,
    *,
    overwrite: bool = False,
    on_video: ProgressCallback | None = None,
) -> SynthSummary:
    """Write a synthetic dataset to ``out`` (atomically) and return what was written.

    Raises
    ------
    TascondError
        On a bad option value or an existing ``out`` without ``overwrite``.
    DataError
        When ``labels_from`` is not a valid dataset (the message names the file).
    """
    config.check()
    out = Path(out)
    if config.labels_from is not None:
        return _from_labels(out, config, overwrite, on_video)
    return _from_profile(out, config, overwrite, on_video)


def _select(names: Sequence[str], n: int | None, seed: int, *tag: object) -> list[str]:
    """``n`` of ``names`` (all if fewer), chosen from (seed, tag), in their original order."""
    if n is None or n >= len(names):
        return list(names)
    idx = stable_rng(seed, "select", *tag).choice(len(names), n, replace=False)
    keep = set(int(i) for i in idx)
    return [x for i, x in enumerate(names) if i in keep]


# --------------------------------------------------------------------------- from a profile


def _profile_selection(prof: Profile, config: SynthConfig) -> tuple[list[Recording], dict[str, list[str]]]:
    """The profile's recordings and the names chosen of each part of ``config.split``."""
    if config.split > prof.n_splits:
        raise TascondError(f"profile {prof.name} has splits 1..{prof.n_splits}, not split {config.split}")
    recs = population(prof.name)
    parts = {
        "train": [r.name for r in recs if r.group != config.split],
        "test": [r.name for r in recs if r.group == config.split],
    }
    chosen: dict[str, list[str]] = {}
    for i, part in enumerate(PARTS):
        n = config.videos
        if n is None and prof.default_videos is not None:
            n = prof.default_videos[i]
        chosen[part] = _select(parts[part], n, config.seed, prof.name, config.split, part)
    return recs, chosen


def _write_profile_bundles(w: DatasetWriter, prof: Profile, recs: list[Recording], keep: set[str]) -> list[int]:
    """Every split's bundles with only the kept videos (empty bundles left out); the splits written."""
    splits = []
    for k in range(1, prof.n_splits + 1):
        wrote = False
        for part in PARTS:
            listed = [r.name for r in recs if (r.group == k) == (part == "test") and r.name in keep]
            if listed:
                w.write_bundle(f"{part}.split{k}.bundle", listed)
                wrote = True
        if wrote:
            splits.append(k)
    return splits


def _from_profile(out: Path, config: SynthConfig, overwrite: bool, on_video: ProgressCallback | None) -> SynthSummary:
    prof = PROFILE_TABLES[config.profile]
    recs, chosen = _profile_selection(prof, config)
    keep = set(chosen["train"]) | set(chosen["test"])
    kept_recs = [r for r in recs if r.name in keep]
    mapping = ClassMapping(prof.classes)
    world = FeatureWorld(prof.classes, config.dim, config.seed, prof.fps, config.model)
    frames = 0
    with DatasetWriter(out, overwrite=overwrite) as w:
        w.write_mapping(mapping)
        for done, rec in enumerate(kept_recs, 1):
            label_names = profile_labels(prof.name, rec.activity, config.seed, rec.key)
            labels = np.array([mapping.index(s) for s in label_names], dtype=np.int64)
            feats = world.features(labels, rec.name, config.subsample)
            kept = label_names[:: config.subsample]
            w.write_video(rec.name, feats, kept)
            frames += len(kept)
            if on_video is not None:
                on_video(done, len(kept_recs))
        splits = _write_profile_bundles(w, prof, recs, keep)
    return SynthSummary(
        out=out,
        source=f"profile {prof.name}",
        videos=len(kept_recs),
        train=len(chosen["train"]),
        test=len(chosen["test"]),
        frames=frames,
        classes=len(mapping),
        dim=config.dim,
        splits=tuple(splits),
        bytes=folder_bytes(out),
    )


# --------------------------------------------------------------------------- from a real dataset


@dataclass(frozen=True)
class _Source:
    """A real dataset's labels: its mapping, label folder and split bundles (checked)."""

    mapping_path: Path
    mapping: ClassMapping
    gt_dir: Path
    splits_dir: Path
    bundles: dict[str, list[str]]  # bundle file name -> video names, in file-name order


def _bundle_split(filename: str) -> int:
    return int(BUNDLE_RE.match(filename).group(2))  # type: ignore[union-attr]


def _read_source(root: Path) -> _Source:
    """Check the folder, its mapping and every split bundle (each listed video has a label file)."""
    if not root.exists():
        raise DataError(f"{root}: no such dataset folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    mapping_path = root / "mapping.txt"
    if not mapping_path.is_file():
        raise DataError(f"{mapping_path}: missing (every dataset needs its class mapping)")
    mapping = ClassMapping.read(mapping_path)
    gt_dir, splits_dir = root / "groundTruth", root / "splits"
    for sub in (gt_dir, splits_dir):
        if not sub.is_dir():
            raise DataError(f"{sub}: missing folder")
    bundles: dict[str, list[str]] = {}
    for entry in sorted(splits_dir.iterdir(), key=lambda p: p.name):
        if BUNDLE_RE.match(entry.name) and entry.is_file():
            listed = read_bundle(entry)
            for name in listed:
                if not (gt_dir / f"{name}.txt").is_file():
                    raise DataError(f"{gt_dir / (name + '.txt')}: missing, but {entry.name} lists video {name!r}")
            bundles[entry.name] = listed
    if not bundles:
        raise DataError(f"{splits_dir}: no split files (expected train.split<k>.bundle, test.split<k>.bundle)")
    return _Source(mapping_path, mapping, gt_dir, splits_dir, bundles)


def _source_selection(src: _Source, config: SynthConfig) -> tuple[list[str], dict[str, list[str]]]:
    """The video names to write (sorted) and the names of each part of ``config.split`` among them."""
    part_names: dict[str, list[str]] = {}
    for part in PARTS:
        bundle = f"{part}.split{config.split}.bundle"
        if bundle not in src.bundles:
            have = ", ".join(map(str, sorted({_bundle_split(b) for b in src.bundles})))
            raise DataError(f"{src.splits_dir / bundle}: missing (splits here: {have})")
        part_names[part] = src.bundles[bundle]
    if config.videos is None:
        names = sorted(p.stem for p in src.gt_dir.glob("*.txt") if p.is_file())
        if not names:
            raise DataError(f"{src.gt_dir}: no label files")
        return names, part_names
    chosen = {
        part: _select(part_names[part], config.videos, config.seed, "labels_from", config.split, part)
        for part in PARTS
    }
    return sorted(set(chosen["train"]) | set(chosen["test"])), chosen


def _from_labels(out: Path, config: SynthConfig, overwrite: bool, on_video: ProgressCallback | None) -> SynthSummary:
    root = Path(config.labels_from)  # type: ignore[arg-type]
    src = _read_source(root)
    names, chosen = _source_selection(src, config)
    keep = set(names)
    world = FeatureWorld(src.mapping.names, config.dim, config.seed, vocabulary_fps(src.mapping.names), config.model)
    frames = 0
    written_splits: set[int] = set()
    with DatasetWriter(out, overwrite=overwrite) as w:
        w.copy_file(src.mapping_path, "mapping.txt")
        for done, name in enumerate(names, 1):
            gt = src.gt_dir / f"{name}.txt"
            label_names, labels = read_labels(gt, src.mapping)
            feats = world.features(labels, name, config.subsample)
            if config.subsample == 1:
                w.write_features(name, feats)
                w.copy_file(gt, f"groundTruth/{name}.txt")
            else:
                w.write_video(name, feats, label_names[:: config.subsample])
            frames += feats.shape[1]
            if on_video is not None:
                on_video(done, len(names))
        for bundle, listed in src.bundles.items():
            if config.videos is None:
                w.copy_file(src.splits_dir / bundle, f"splits/{bundle}")
            else:
                kept = [n for n in listed if n in keep]
                if not kept:
                    continue
                w.write_bundle(bundle, kept)
            written_splits.add(_bundle_split(bundle))
    return SynthSummary(
        out=out,
        source=str(root),
        videos=len(names),
        train=len(chosen["train"]),
        test=len(chosen["test"]),
        frames=frames,
        classes=len(src.mapping),
        dim=config.dim,
        splits=tuple(sorted(written_splits)),
        bytes=folder_bytes(out),
    )
