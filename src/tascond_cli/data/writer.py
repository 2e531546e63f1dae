"""Writing a dataset in the MS-TCN layout, atomically: :class:`DatasetWriter`."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from tascond_cli.data.files import BUNDLE_RE
from tascond_cli.data.model import ClassMapping
from tascond_cli.fsio import atomic_dir

__all__ = ["DatasetWriter"]


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
        if not BUNDLE_RE.match(filename):
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
