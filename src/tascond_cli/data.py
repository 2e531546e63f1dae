"""The MS-TCN dataset layout: read, validate and write.

The layout every temporal action segmentation codebase reads (Farha & Gall,
"MS-TCN", CVPR 2019, and its public data release)::

    <dataset>/features/<video>.npy          float array, shape (D, T), channels first
    <dataset>/groundTruth/<video>.txt       T lines, one action name per frame
    <dataset>/mapping.txt                   lines "<index> <action name>", index 0..C-1
    <dataset>/splits/train.split<k>.bundle  one "<video>.txt" per line (test.split<k>.bundle alike)

Features are opened lazily (memory-mapped), so a 28 GB dataset never has to fit
in memory. Opening a dataset checks everything that can be checked without
reading feature values: folders, files, bundle entries, labels against the
mapping, feature headers (2-D, numeric, not truncated, non-empty). Scanning the
values for NaN or infinity is a separate, explicit step
(:meth:`Dataset.check_values`). A length mismatch between a video's features and
its labels is not an error: MS-TCN uses the shorter length, and so do we, with a
warning recorded in :attr:`Dataset.warnings`.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tascond_cli.chunks import run_lengths
from tascond_cli.errors import DataError
from tascond_cli.fsio import atomic_dir

PARTS = ("train", "test")
_BUNDLE_RE = re.compile(r"^(train|test)\.split(\d+)\.bundle$")
# Feature values are scanned in windows of this many frames, to bound memory.
_SCAN_FRAMES = 8192


# --------------------------------------------------------------------------- structure


@dataclass(frozen=True)
class Segment:
    """A maximal run of one action: frames ``start`` to ``start + length - 1``."""

    label: int
    start: int
    length: int

    @property
    def end(self) -> int:
        """One past the last frame."""
        return self.start + self.length


def segments_of(labels: np.ndarray) -> list[Segment]:
    """Run-length encode a label sequence into segments.

    >>> segments_of(np.array([0, 0, 2, 2, 2, 0]))
    [Segment(label=0, start=0, length=2), Segment(label=2, start=2, length=3), Segment(label=0, start=5, length=1)]
    """
    labels = np.asarray(labels)
    starts, lengths = run_lengths(labels)
    return [Segment(int(labels[s]), int(s), int(n)) for s, n in zip(starts, lengths)]


def transcript_of(labels: np.ndarray) -> tuple[int, ...]:
    """The run-length-collapsed label sequence (the video's action order)."""
    return tuple(s.label for s in segments_of(labels))


@dataclass(frozen=True)
class ClassMapping:
    """The action vocabulary: ``names[i]`` is the action with class index ``i``."""

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(self.names)})

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """The class index of an action name (KeyError if unknown)."""
        return self._index[name]  # type: ignore[attr-defined]

    def __contains__(self, name: object) -> bool:
        return name in self._index  # type: ignore[attr-defined]

    def to_text(self) -> str:
        """The ``mapping.txt`` content."""
        return "".join(f"{i} {n}\n" for i, n in enumerate(self.names))

    @classmethod
    def read(cls, path: Path) -> ClassMapping:
        """Parse a ``mapping.txt``; indices must be exactly 0..C-1, names unique."""
        text = _read_text(path)
        by_index: dict[int, str] = {}
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            parts = line.strip().split(maxsplit=1)
            if len(parts) != 2 or not re.fullmatch(r"\d+", parts[0]):
                raise DataError(f"{path}:{lineno}: expected '<index> <action name>', got {line.strip()!r}")
            idx, name = int(parts[0]), parts[1].strip()
            if idx in by_index:
                raise DataError(f"{path}:{lineno}: class index {idx} appears twice")
            by_index[idx] = name
        if not by_index:
            raise DataError(f"{path}: no classes")
        if sorted(by_index) != list(range(len(by_index))):
            raise DataError(f"{path}: class indices must run 0..{len(by_index) - 1} without gaps")
        names = tuple(by_index[i] for i in range(len(by_index)))
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise DataError(f"{path}: action name {dup!r} appears twice")
        return cls(names)


# --------------------------------------------------------------------------- videos


@dataclass(frozen=True, eq=False)
class Video:
    """One video of a dataset: its labels in memory, its features on disk.

    ``labels`` are class indices at the full frame rate, already cut to the
    shorter of the label and feature lengths.
    """

    name: str
    labels: np.ndarray  # (T,) int64
    feature_path: Path | None  # None when opened without features
    feature_shape: tuple[int, int]  # (D, T_stored) as stored on disk
    feature_dtype: np.dtype

    @property
    def num_frames(self) -> int:
        return int(self.labels.shape[0])

    @property
    def dim(self) -> int:
        return int(self.feature_shape[0])

    def features(self, sample_rate: int = 1) -> np.ndarray:
        """The features, memory-mapped, cut to ``num_frames``, every ``sample_rate``-th frame.

        Returns a read-only view of shape (D, ceil(T / sample_rate)); copy it
        (``np.asarray(..., dtype=np.float32)``) to own the data.
        """
        if self.feature_path is None:
            raise DataError(f"{self.name}: opened without features")
        arr = _open_npy(self.feature_path)
        return arr[:, : self.num_frames : sample_rate]  # (D, T')

    def sampled_labels(self, sample_rate: int = 1) -> np.ndarray:
        """The labels at every ``sample_rate``-th frame, as MS-TCN trains on them."""
        return self.labels[::sample_rate]

    def segments(self) -> list[Segment]:
        return segments_of(self.labels)

    def transcript(self) -> tuple[int, ...]:
        return transcript_of(self.labels)

    def check_values(self) -> None:
        """Raise :class:`DataError` if any feature value is NaN or infinite."""
        if self.feature_path is None:
            return
        arr = _open_npy(self.feature_path)
        if arr.dtype.kind != "f":
            return
        for t0 in range(0, self.num_frames, _SCAN_FRAMES):
            window = np.asarray(arr[:, t0 : min(t0 + _SCAN_FRAMES, self.num_frames)])
            if not np.isfinite(window).all():
                bad = np.argwhere(~np.isfinite(window))[0]
                raise DataError(
                    f"{self.feature_path}: non-finite value {window[tuple(bad)]} "
                    f"at channel {bad[0]}, frame {t0 + bad[1]}"
                )


@dataclass(eq=False)
class Dataset:
    """A dataset folder opened for one split.

    ``parts`` maps "train" and/or "test" to the videos listed in that part's
    bundle, in bundle order.
    """

    root: Path
    mapping: ClassMapping
    split: int
    parts: dict[str, list[Video]]
    sample_rate: int = 1
    warnings: list[str] = field(default_factory=list)

    @property
    def train(self) -> list[Video]:
        return self.parts.get("train", [])

    @property
    def test(self) -> list[Video]:
        return self.parts.get("test", [])

    @property
    def num_classes(self) -> int:
        return len(self.mapping)

    @property
    def dim(self) -> int:
        """Feature dimension (the same for every video)."""
        for videos in self.parts.values():
            if videos:
                return videos[0].dim
        raise DataError(f"{self.root}: no videos")

    def videos(self) -> Iterator[Video]:
        """Every video of the opened parts, train first."""
        for part in PARTS:
            yield from self.parts.get(part, [])

    def check_values(self) -> None:
        """Scan every feature file for NaN or infinity (reads all the data)."""
        for video in self.videos():
            video.check_values()


def available_splits(root: Path | str) -> list[int]:
    """The split numbers k for which ``splits/train.split<k>.bundle`` exists."""
    found = set()
    splits_dir = Path(root) / "splits"
    if splits_dir.is_dir():
        for entry in splits_dir.iterdir():
            m = _BUNDLE_RE.match(entry.name)
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
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
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
    return [line.strip() for line in _read_text(path).splitlines()]


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


def feature_bytes(videos: Iterable[Video]) -> int:
    """Bytes of the videos' feature files on disk (videos opened without features count 0)."""
    return sum(v.feature_path.stat().st_size for v in videos if v.feature_path is not None)


def read_npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file from its header alone; checks the file is whole."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                shape, _fortran, dtype = np.lib.format._read_array_header(f, version)  # noqa: SLF001
            offset = f.tell()
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({_one_line(exc)})") from None
    if dtype.hasobject or dtype.kind not in "fiu":
        raise DataError(f"{path}: features must be numeric, got dtype {dtype}")
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = os.path.getsize(path)
    if actual < expected:
        raise DataError(f"{path}: truncated ({actual} bytes, header promises {expected})")
    return tuple(int(s) for s in shape), dtype


def _open_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({_one_line(exc)})") from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# --------------------------------------------------------------------------- writing


class DatasetWriter:
    """Write a dataset in the MS-TCN layout, atomically.

    Use as a context manager; everything goes to a temporary folder beside
    ``root`` that is renamed to ``root`` only when the block ends without error.

    >>> with DatasetWriter(out) as w:                        # doctest: +SKIP
    ...     w.write_mapping(mapping)
    ...     w.write_video("v1", features, ["SIL", "pour_milk", ...])
    ...     w.write_bundle("train.split1.bundle", ["v1"])
    """

    def __init__(self, root: Path | str, overwrite: bool = False) -> None:
        self.root = Path(root)
        self.overwrite = overwrite
        self._ctx = None
        self.path: Path | None = None  # the temporary folder while open

    def __enter__(self) -> DatasetWriter:
        self._ctx = atomic_dir(self.root, overwrite=self.overwrite)
        self.path = self._ctx.__enter__()
        for sub in ("features", "groundTruth", "splits"):
            (self.path / sub).mkdir()
        return self

    def __exit__(self, *exc_info) -> bool | None:
        assert self._ctx is not None
        try:
            return self._ctx.__exit__(*exc_info)
        finally:
            self.path = None

    def _where(self, *parts: str) -> Path:
        if self.path is None:
            raise RuntimeError("DatasetWriter used outside its 'with' block")
        return self.path.joinpath(*parts)

    def write_mapping(self, mapping: ClassMapping) -> None:
        self._where("mapping.txt").write_text(mapping.to_text(), encoding="utf-8")

    def write_features(self, name: str, features: np.ndarray) -> None:
        """Save float32 features of shape (D, T)."""
        _check_name(name)
        features = np.asarray(features)
        if features.ndim != 2:
            raise ValueError(f"features of {name!r} must be (D, T), got shape {features.shape}")
        np.save(self._where("features", f"{name}.npy"), np.ascontiguousarray(features, dtype=np.float32))

    def write_labels(self, name: str, label_names: Iterable[str]) -> None:
        """One action name per line, newline-terminated."""
        _check_name(name)
        self._where("groundTruth", f"{name}.txt").write_text("".join(f"{n}\n" for n in label_names), encoding="utf-8")

    def write_video(self, name: str, features: np.ndarray, label_names: Sequence[str]) -> None:
        if np.asarray(features).shape[-1] != len(label_names):
            raise ValueError(f"{name!r}: {np.asarray(features).shape[-1]} feature frames but {len(label_names)} labels")
        self.write_features(name, features)
        self.write_labels(name, label_names)

    def write_bundle(self, filename: str, names: Iterable[str]) -> None:
        """A split file such as ``train.split1.bundle`` listing ``<video>.txt`` lines."""
        if not _BUNDLE_RE.match(filename):
            raise ValueError(f"not a split bundle name: {filename!r}")
        self._where("splits", filename).write_text("".join(f"{n}.txt\n" for n in names), encoding="utf-8")

    def copy_file(self, source: Path, relative: str) -> None:
        """Copy a file byte for byte (e.g. a real dataset's label files)."""
        target = self._where(*Path(relative).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def _check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"not a valid video name: {name!r}")


# --------------------------------------------------------------------------- summary


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


def folder_bytes(root: Path) -> int:
    """Total size of the regular files below ``root``."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total
