"""Evaluation: the standard TAS metrics (MS-TCN ``eval.py``) and the MS-TCN model, loss and trainer."""

from .metrics import (
    DEFAULT_BACKGROUND,
    METRIC_NAMES,
    edit_score,
    f1_counts,
    frame_accuracy_counts,
    get_segments,
    score,
)
from .mstcn import MSTCN, mstcn_loss
from tascond_cli.device import resolve_device

from .train import TrainConfig, predict, predict_many, train_mstcn

__all__ = [
    "DEFAULT_BACKGROUND",
    "METRIC_NAMES",
    "MSTCN",
    "TrainConfig",
    "edit_score",
    "f1_counts",
    "frame_accuracy_counts",
    "get_segments",
    "mstcn_loss",
    "predict",
    "predict_many",
    "resolve_device",
    "score",
    "train_mstcn",
]
