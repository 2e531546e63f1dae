"""Opening a dataset folder in the MS-TCN layout, checking everything that can be checked without reading
feature values; and the plain-data summary ``tascond info`` shows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tascond_cli.data.files import BUNDLE_RE, folder_bytes, read_npy_header, read_text
from tascond_cli.data.model import PARTS, ClassMapping, Dataset, Video, feature_bytes
from tascond_cli.errors import DataError

__all__ = ["available_splits", "describe", "open_dataset", "read_bundle", "read_label_names", "read_labels"]


def available_splits(root: Path | str) -> list[int]:
    """The split numbers k for which ``splits/train.split<k>.bundle`` exists."""
    found = set()
    splits_dir = Path(root) / "splits"
    if splits_dir.is_dir():
        for entry in splits_dir.iterdir():
            m = BUNDLE_RE.match(entry.name)
            if m and m.group(1) == "train":
                found.add(int(m.group(2)))
    return sorted(found)


def open_dataset(
    root: Path | str,
    split: int = 1,
    *,
    sample_rate: int = 1,
    parts: Sequence[str] = PARTS,
    check_values: bool = False,
    with_features: bool = True,
) -> Dataset:
    """Open and validate a dataset folder in the MS-TCN layout.

    Parameters
    ----------
    root
        The dataset folder.
    split
        Which ``splits/{train,test}.split<k>.bundle`` pair to read.
    sample_rate
        Frames the models will use: every ``sample_rate``-th (50Salads uses 2).
        Recorded on the dataset; labels and features stay at the full rate.
    parts
        Which bundles to read ("train", "test").
    check_values
        Also scan every feature value for NaN or infinity (reads all the data).
    with_features
        False opens the labels alone (no ``features/`` needed), e.g. to score
        predictions; such videos have no ``feature_path``.

    Raises
    ------
    DataError
        With a one-line message naming the offending file.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such dataset folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    if sample_rate < 1:
        raise DataError(f"sample rate must be at least 1, got {sample_rate}")
    if split < 1:
        raise DataError(f"split must be at least 1, got {split}")
    for part in parts:
        if part not in PARTS:
            raise DataError(f"unknown part {part!r}: expected one of {', '.join(PARTS)}")
    mapping_path = root / "mapping.txt"
    if not mapping_path.is_file():
        raise DataError(f"{mapping_path}: missing (every dataset needs its class mapping)")
    mapping = ClassMapping.read(mapping_path)
    for sub in ("splits", "groundTruth", "features") if with_features else ("splits", "groundTruth"):
        if not (root / sub).is_dir():
            raise DataError(f"{root / sub}: missing folder")

    dataset = Dataset(root=root, mapping=mapping, split=split, parts={}, sample_rate=sample_rate)
    dim: int | None = None
    dim_source: Path | None = None
    for part in parts:
        bundle = root / "splits" / f"{part}.split{split}.bundle"
        if not bundle.is_file():
            have = available_splits(root)
            hint = f" (splits here: {', '.join(map(str, have))})" if have else ""
            raise DataError(f"{bundle}: missing{hint}")
        videos = []
        for name in read_bundle(bundle):
            video = _open_video(root, name, mapping, bundle, dataset.warnings, with_features)
            if with_features and dim is None:
                dim, dim_source = video.dim, video.feature_path
            elif with_features and video.dim != dim:
                raise DataError(
                    f"{video.feature_path}: feature dimension {video.dim} differs from "
                    f"{dim} in {dim_source}"
                )
            videos.append(video)
        dataset.parts[part] = videos
    if check_values and with_features:
        dataset.check_values()
    return dataset


def read_bundle(path: Path) -> list[str]:
    """Video names (file stems) listed in a split bundle, in order.

    Entries are "<video>.txt" (the ``.txt`` is optional); blank lines are ignored.
    """
    names: list[str] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        entry = line.strip()
        if not entry:
            continue
        if "/" in entry or "\\" in entry or entry.startswith("#") or entry in (".", ".."):
            raise DataError(f"{path}:{lineno}: {entry!r} is not a video file name (expected '<video>.txt')")
        name = entry[:-4] if entry.endswith(".txt") else entry
        if name in seen:
            raise DataError(f"{path}:{lineno}: video {name!r} is listed twice (first on line {seen[name]})")
        seen[name] = lineno
        names.append(name)
    if not names:
        raise DataError(f"{path}: lists no videos")
    return names


def read_label_names(path: Path) -> list[str]:
    """The per-frame action names of a groundTruth file."""
    return [line.strip() for line in read_text(path).splitlines()]


def _open_video(
    root: Path, name: str, mapping: ClassMapping, bundle: Path, warnings: list[str], with_features: bool = True
) -> Video:
    gt_path = root / "groundTruth" / f"{name}.txt"
    feat_path = root / "features" / f"{name}.npy"
    if not gt_path.is_file():
        raise DataError(f"{gt_path}: missing, but {bundle.name} lists video {name!r}")
    if with_features and not feat_path.is_file():
        raise DataError(f"{feat_path}: missing, but {bundle.name} lists video {name!r}")
    _, labels = read_labels(gt_path, mapping)
    if not with_features:
        labels.setflags(write=False)
        return Video(name, labels, None, (0, len(labels)), np.dtype(np.float32))
    shape, dtype = read_npy_header(feat_path)
    if len(shape) != 2:
        raise DataError(f"{feat_path}: features must be 2-D (D, T), got shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise DataError(f"{feat_path}: empty features, shape {shape}")
    t_feat = shape[1]
    if t_feat != len(labels):
        warnings.append(
            f"{name}: {t_feat} feature frames but {len(labels)} labels; using the first "
            f"{min(t_feat, len(labels))}"
        )
        labels = labels[:t_feat]
    labels.setflags(write=False)
    return Video(name, labels, feat_path, (int(shape[0]), int(shape[1])), dtype)


def read_labels(path: Path, mapping: ClassMapping) -> tuple[list[str], np.ndarray]:
    """A groundTruth file's frame labels, as names and as class indices (int64).

    Raises :class:`DataError` naming the file (and line) for an empty video or a label not in ``mapping``.
    """
    names = read_label_names(path)
    if not names:
        raise DataError(f"{path}: empty video (no frame labels)")
    labels = np.empty(len(names), dtype=np.int64)
    for i, label in enumerate(names):
        if label not in mapping:
            raise DataError(f"{path}:{i + 1}: label {label!r} is not in mapping.txt")
        labels[i] = mapping.index(label)
    return names, labels



def describe(dataset: Dataset) -> dict:
    """Plain-data summary of an opened dataset (what ``tascond info`` shows).

    Per part: videos, frames (total, mean, median, min, max), segments per video,
    distinct transcripts and feature bytes on disk; plus the whole folder's bytes.
    """
    parts = {}
    for part, videos in dataset.parts.items():
        frames = np.array([v.num_frames for v in videos], dtype=np.int64)
        segs = np.array([len(v.segments()) for v in videos], dtype=np.int64)
        parts[part] = {
            "videos": len(videos),
            "frames": int(frames.sum()),
            "frames_mean": float(frames.mean()),
            "frames_median": float(np.median(frames)),
            "frames_min": int(frames.min()),
            "frames_max": int(frames.max()),
            "segments_per_video": float(segs.mean()),
            "distinct_transcripts": len({v.transcript() for v in videos}),
            "feature_bytes": feature_bytes(videos),
        }
    first = next(dataset.videos())
    return {
        "dataset": str(dataset.root),
        "split": dataset.split,
        "splits_available": available_splits(dataset.root),
        "classes": dataset.num_classes,
        "feature_dim": first.dim,
        "feature_dtype": str(first.feature_dtype),
        "sample_rate": dataset.sample_rate,
        "parts": parts,
        "bytes_on_disk": folder_bytes(dataset.root),
        "warnings": list(dataset.warnings),
    }
