"""Prediction files: reading them for scoring, writing them in the MS-TCN results format.

Two formats are accepted, detected per file:

* the MS-TCN results format written by its ``predict``: a header line
  (``### Frame level recognition: ###``), then every frame's action name on the
  second line, separated by spaces;
* one action name per line, like a groundTruth file.

A file is looked up by the video's stem, with or without ``.txt``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tascond_cli.data import ClassMapping, Video
from tascond_cli.errors import DataError

MSTCN_HEADER = "### Frame level recognition: ###"


def find_prediction(folder: Path, video: str) -> Path:
    """The prediction file of ``video`` in ``folder`` (``<video>.txt`` or ``<video>``)."""
    for candidate in (folder / f"{video}.txt", folder / video):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder / (video + '.txt')}: missing prediction for test video {video!r}")


def parse_prediction(path: Path) -> list[str]:
    """Frame-wise action names of one prediction file, in either accepted format."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    lines = text.splitlines()
    if lines and lines[0].lstrip().startswith("#"):
        body = [line for line in lines[1:] if line.strip()]
        if len(body) != 1:
            raise DataError(f"{path}: expected the MS-TCN results format (a header line, then one line of labels)")
        return body[0].split()
    return [line.strip() for line in lines if line.strip()]


def read_predictions(folder: Path | str, videos: Sequence[Video], mapping: ClassMapping) -> list[np.ndarray]:
    """Predictions for ``videos`` as class indices, each cut to the video's length.

    A missing file, an unknown action name or a prediction shorter than its
    ground truth raises :class:`DataError` naming the file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such predictions folder")
    out = []
    for video in videos:
        path = find_prediction(folder, video.name)
        names = parse_prediction(path)
        if len(names) < video.num_frames:
            raise DataError(f"{path}: {len(names)} predicted frames, but the ground truth has {video.num_frames}")
        labels = np.empty(video.num_frames, dtype=np.int64)
        for i, name in enumerate(names[: video.num_frames]):
            if name not in mapping:
                raise DataError(f"{path}: frame {i + 1}: label {name!r} is not in mapping.txt")
            labels[i] = mapping.index(name)
        out.append(labels)
    return out


def format_prediction(labels: np.ndarray, mapping: ClassMapping) -> str:
    """The MS-TCN results format for one video."""
    return MSTCN_HEADER + "\n" + " ".join(mapping.names[i] for i in labels) + "\n"
