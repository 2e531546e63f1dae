"""Shared fixtures: tiny datasets built on the spot, and the real reference data when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tascond_cli.data import ClassMapping, DatasetWriter

# tiny tensors: one thread avoids OpenMP oversubscription when tests share the CPU
torch.set_num_threads(1)

REALDATA = Path(os.environ.get("TASCOND_REALDATA", Path(__file__).resolve().parents[2] / "shared" / "realdata"))

TINY_CLASSES = ("background", "take", "pour", "stir")


def _tiny_labels(rng: np.random.Generator, t: int) -> list[str]:
    cuts = np.sort(rng.choice(np.arange(5, t - 5), size=3, replace=False))
    order = ["background", *rng.permutation(["take", "pour", "stir"]).tolist()]
    labels = []
    bounds = [0, *cuts.tolist(), t]
    for name, (a, b) in zip(order, zip(bounds[:-1], bounds[1:])):
        labels += [name] * (b - a)
    return labels


def make_tiny_dataset(root: Path, n_train: int = 4, n_test: int = 2, dim: int = 8, seed: int = 0,
                      features=None) -> Path:
    """A valid dataset of random non-negative features: 4 classes, 40-60 frames per video.

    ``features(rng, dim, t)``, when given, draws each video's (dim, t) features instead (after its length,
    before its labels, from the same generator).
    """
    rng = np.random.default_rng(seed)
    names = [f"vid{i:02d}" for i in range(n_train + n_test)]
    with DatasetWriter(root) as w:
        w.write_mapping(ClassMapping(TINY_CLASSES))
        for name in names:
            t = int(rng.integers(40, 61))
            x = rng.random((dim, t), dtype=np.float32) if features is None else features(rng, dim, t)
            w.write_video(name, np.asarray(x, dtype=np.float32), _tiny_labels(rng, t))
        w.write_bundle("train.split1.bundle", names[:n_train])
        w.write_bundle("test.split1.bundle", names[n_train:])
    return root


ACTIVITY_ACTIONS = {"coffee": ("pour_coffee", "stir_coffee"), "tea": ("add_teabag", "pour_water"), "juice": ("cut_orange", "squeeze")}
ACTIVITY_CLASSES = ("SIL", *(a for pair in ACTIVITY_ACTIONS.values() for a in pair))


def make_activity_dataset(root: Path, per_activity: tuple[int, int] = (3, 2), dim: int = 8, seed: int = 0) -> Path:
    """Breakfast-style names (P<person>_cam01_P<person>_<activity>), SIL + two actions per activity."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(ACTIVITY_CLASSES), dim)).astype(np.float32)
    parts: dict[str, list[str]] = {"train": [], "test": []}
    with DatasetWriter(root) as w:
        w.write_mapping(ClassMapping(ACTIVITY_CLASSES))
        person = 0
        for activity, actions in ACTIVITY_ACTIONS.items():
            for part, count in zip(("train", "test"), per_activity):
                for _ in range(count):
                    person += 1
                    name = f"P{person:02d}_cam01_P{person:02d}_{activity}"
                    lengths = rng.integers(8, 20, size=4)
                    labels = [c for c, n in zip(("SIL", *actions, "SIL"), lengths) for _ in range(int(n))]
                    idx = np.array([ACTIVITY_CLASSES.index(c) for c in labels])
                    x = centres[idx].T + 0.3 * rng.normal(size=(dim, len(labels))).astype(np.float32)
                    w.write_video(name, np.abs(x).astype(np.float32), labels)
                    parts[part].append(name)
        w.write_bundle("train.split1.bundle", parts["train"])
        w.write_bundle("test.split1.bundle", parts["test"])
    return root


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return make_tiny_dataset(tmp_path / "tiny")


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"real reference data not found at {REALDATA}")
    return REALDATA
