"""What every method shares: the :class:`Method` interface, its result, the progress phases, and the
steps every method takes (open the data, sample the videos, the settings every archive records)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from tascond_cli.archive import Archive
from tascond_cli.data import Dataset
from tascond_cli.errors import TascondError
from tascond_cli.methods.config import Config

PhaseCallback = Callable[[str, int, int], None]
"""``on_phase(name, done, total)``: progress of phase ``name`` (a key of :data:`PHASES`)."""

PHASES = {
    "sample": "sampling videos",
    "prior": "training the prior",
    "invert": "inverting segments",
    "pca": "fitting the projection",
    "encode": "encoding videos",
    "residual": "measuring the noise model",
}
"""Every progress phase a method may report, with its description (the CLI's progress bars)."""


@dataclass(frozen=True)
class CondenseResult:
    """The archive and what it took to make it."""

    archive: Archive
    train_videos: int
    kept_videos: int
    segments: int
    frames: int
    train_bytes: int
    error: float
    """Reconstruction error of the kept videos: fraction of variance unexplained (NaN: not measured)."""
    seconds: dict[str, float]
    borrowing_videos: int = 0
    """Videos stored by their structure only, their segments reusing kept segments' codes (``others="borrow"``)."""
    codes_error: float = math.nan
    """The same error for the codes alone, without the noise (and floor) that restore adds on purpose
    (``lowrank``; NaN for methods without that distinction)."""


class Method:
    """A condensation method: how it turns a dataset's training split into an :class:`Archive`.

    Subclasses set the class attributes and implement :meth:`build`; the registry
    (:data:`tascond_cli.methods.METHODS`) holds one instance of each.
    """

    name: ClassVar[str]
    """The name on the command line and in the archive's ``settings["method"]``."""
    summary: ClassVar[str]
    """One line: what the method is."""
    stores: ClassVar[str]
    """What the archive keeps for the features (the structure is always kept)."""
    needs_generator: ClassVar[bool] = False
    """Whether the method trains (or takes, ``prior=``) the generator."""
    default_ratio: ClassVar[float] = 1.0
    """Fraction of the training videos kept when the config says None."""
    default_code_dtype: ClassVar[str] = "float16"
    """Precision of the stored codes when the config says None."""
    code_dtypes: ClassVar[tuple[str, ...]] = ("float16", "float32")
    """The precisions its codes may be stored at."""
    decoder_kind: ClassVar[str]
    """The archive's decoder kind (docs/format.md)."""
    phases: ClassVar[tuple[str, ...]] = ("sample",)
    """The progress phases it reports, in order (keys of :data:`PHASES`)."""

    def check(self, config: Config) -> None:
        """Rules of this method beyond :meth:`Config.check` (raise :class:`~.config.ConfigError`)."""

    def build(self, dataset: Dataset, config: Config, *, prior=None,
              on_phase: PhaseCallback | None = None) -> CondenseResult:
        """Condense ``dataset``'s training split; ``config`` has the method's defaults filled in
        (:meth:`Config.for_method`). ``prior``: a generator from
        :func:`~tascond_cli.methods.train_generator`, for methods that need one."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<method {self.name}>"


def report_to(on_phase: PhaseCallback | None) -> PhaseCallback:
    return on_phase or (lambda name, done, total: None)


def open_train(data, split: int) -> Dataset:
    """Open ``data``'s training split (or take an open :class:`Dataset`)."""
    from tascond_cli.data import open_dataset

    dataset = data if isinstance(data, Dataset) else open_dataset(data, split, parts=("train",))
    if not dataset.train:
        raise TascondError(f"{dataset.root}: split {split} has no training videos")
    return dataset


def select_videos(train: list, ratio: float, sampling: str, seed: int) -> list[int]:
    """Indices of the kept training videos: diverse (``fps``) or ``random``, ``ratio`` of them."""
    from tascond_cli.condense import furthest_point_sampling, random_sampling

    if sampling == "fps":
        return furthest_point_sampling([v.transcript() for v in train], ratio)
    return random_sampling(len(train), ratio, seed)


def sample(dataset: Dataset, config: Config, strategy: str, report: PhaseCallback,
           seconds: dict[str, float]) -> list[int]:
    """The kept videos' indices (phase ``sample``), timed into ``seconds``."""
    t0 = time.perf_counter()
    keep = select_videos(dataset.train, config.sampling.ratio, strategy, config.seed)
    seconds["sample"] = time.perf_counter() - t0
    report("sample", 1, 1)
    return keep


def base_settings(method: str, dataset: Dataset, config: Config, strategy: str) -> dict:
    """The settings every archive records, whatever made it."""
    return {
        "method": method,
        "dim": int(dataset.dim),
        "source": dataset.root.name,
        "split": config.split,
        "ratio": config.sampling.ratio,
        "sampling": strategy,
        "seed": config.seed,
        "train_videos": len(dataset.train),
    }
