"""Evaluation: the standard TAS metrics (MS-TCN ``eval.py``), MS-TCN and ASFormer, their trainer, the protocols."""

from .metrics import (
    DEFAULT_BACKGROUND,
    METRIC_NAMES,
    edit_score,
    f1_counts,
    frame_accuracy_counts,
    get_segments,
    score,
)
from .asformer import ASFormer
from .mstcn import MSTCN, mstcn_loss
from tascond_cli.device import resolve_device

from .train import MODELS, TrainConfig, build_model, fit, predict, predict_many, train_model, train_mstcn

__all__ = [
    "ASFormer",
    "DEFAULT_BACKGROUND",
    "METRIC_NAMES",
    "MODELS",
    "MSTCN",
    "TrainConfig",
    "build_model",
    "edit_score",
    "f1_counts",
    "fit",
    "frame_accuracy_counts",
    "get_segments",
    "mstcn_loss",
    "predict",
    "predict_many",
    "resolve_device",
    "score",
    "train_model",
    "train_mstcn",
]
