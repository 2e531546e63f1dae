"""What an opened dataset is: segments, the class mapping, videos (labels in memory, features on disk)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tascond_cli.chunks import run_lengths
from tascond_cli.data.files import open_npy, read_text
from tascond_cli.errors import DataError

__all__ = [
    "PARTS",
    "ClassMapping",
    "Dataset",
    "FeatureSequence",
    "Segment",
    "Video",
    "feature_bytes",
    "segments_of",
    "transcript_of",
]

PARTS = ("train", "test")
# Feature values are scanned in windows of this many frames, to bound memory.
_SCAN_FRAMES = 8192


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
        text = read_text(path)
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
        arr = open_npy(self.feature_path)
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
        arr = open_npy(self.feature_path)
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


class FeatureSequence(Sequence):
    """The features of a list of videos, each mapped only when it is asked for.

    A list ``[v.features() for v in videos]`` keeps every video's file mapped while the list lives, so
    the pages a reader touches stay resident and memory grows with the number of videos; item ``i`` of
    this sequence is ``videos[i].features(sample_rate)``, mapped on access and unmapped once the caller
    drops it (one video at a time when read in a loop).
    """

    def __init__(self, videos: Sequence[Video], sample_rate: int = 1) -> None:
        self.videos = list(videos)
        self.sample_rate = sample_rate

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return FeatureSequence(self.videos[i], self.sample_rate)
        return self.videos[i].features(self.sample_rate)


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



def feature_bytes(videos: Iterable[Video]) -> int:
    """Bytes of the videos' feature files on disk (videos opened without features count 0)."""
    return sum(v.feature_path.stat().st_size for v in videos if v.feature_path is not None)
