"""What :func:`tascond_cli.synth.synthesize` makes (:class:`SynthConfig`) and what it wrote (:class:`SynthSummary`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tascond_cli.errors import TascondError
from tascond_cli.synth.features import FeatureModel
from tascond_cli.synth.profiles import PROFILES


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`~tascond_cli.synth.synthesize` makes.

    profile
        ``breakfast``, ``50salads`` or ``gtea`` (ignored when ``labels_from`` is set).
    labels_from
        A real dataset folder: its label files, mapping and splits are kept, features synthesized.
    videos
        Videos per part (train and test of ``split``), sampled reproducibly; None: every video of
        ``labels_from``, or the profile's small default (Breakfast 40 + 10, 50Salads 8 + 2, GTEA all).
    split
        The split whose parts ``videos`` samples from.
    subsample
        Keep every S-th frame of labels and features.
    dim
        Feature dimension D.
    seed
        Same seed, same bytes.
    model
        The feature generator's knobs (calibrated defaults).
    """

    profile: str = "breakfast"
    labels_from: Path | None = None
    videos: int | None = None
    split: int = 1
    subsample: int = 1
    dim: int = 2048
    seed: int = 0
    model: FeatureModel = field(default_factory=FeatureModel)

    def check(self) -> None:
        """Raise :class:`TascondError` on a bad option value."""
        if self.labels_from is None and self.profile not in PROFILES:
            raise TascondError(f"unknown profile {self.profile!r}: expected one of {', '.join(PROFILES)}")
        if self.videos is not None and self.videos < 1:
            raise TascondError(f"videos must be at least 1, got {self.videos}")
        if self.split < 1:
            raise TascondError(f"split must be at least 1, got {self.split}")
        if self.subsample < 1:
            raise TascondError(f"subsample must be at least 1, got {self.subsample}")
        if self.dim < 1:
            raise TascondError(f"feature dimension must be at least 1, got {self.dim}")
        if self.seed < 0:
            raise TascondError(f"seed must be >= 0, got {self.seed}")
        self.model.check()


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`~tascond_cli.synth.synthesize` wrote."""

    out: Path
    source: str  # "profile breakfast" or the labels_from folder
    videos: int
    train: int  # videos in the train part of `split`
    test: int  # videos in the test part of `split`
    frames: int  # frames written, all videos
    classes: int
    dim: int
    splits: tuple[int, ...]
    bytes: int  # size of the written folder
