"""The flow of the methods whose codes are as big as the data (``fp16``, ``pca``): codes on disk.

``fp16`` stores every frame at half precision and ``pca`` every frame's projection: on a 28 GB training
split their codes are 14 GB and more, so they must not be built in memory. :func:`build_on_disk` is
:func:`~tascond_cli.methods._features.build_from_features` with one difference: each video's codes are
appended, as they are encoded, to an unnamed temporary file (:func:`spill_codes`), and the archive's
codes are that file mapped back read-only as an ``np.memmap``. The archive writer reads such codes in
slices, and the reconstruction error reads them video by video, so memory holds one video at a time.

The temporary file is created in the system's temporary folder (``TMPDIR``, else ``/tmp``), and is
unnamed from the start (``tempfile.TemporaryFile``): its disk space comes back when the last view of the
codes is gone, and nothing is left behind even when the process is killed. The archive's bytes are the
same as from the in-memory flow: the same codes, in the same order. Under ``torchrun`` (which ``tascond
baseline`` refuses, but the Python API allows) the in-memory flow runs, which gathers every rank's codes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable

import numpy as np

from tascond_cli.distributed import joined
from tascond_cli.methods._base import CondenseResult, PhaseCallback
from tascond_cli.methods._features import (
    FeatureMethod,
    build_from_features,
    finish_build,
    segment_structure,
    start_build,
)
from tascond_cli.methods.config import Config

__all__ = ["build_on_disk", "spill_codes"]


def spill_codes(pieces: Iterable[np.ndarray], width: int, dtype: np.dtype | str,
                tmp_dir: str | None = None) -> np.ndarray:
    """The row-wise concatenation of ``pieces`` (each ``(n_i, width)``), as a read-only ``np.memmap``
    over an unnamed temporary file in ``tmp_dir`` (default: the system's temporary folder).

    Pieces are written one at a time as they come (a generator is consumed lazily), so memory holds one
    piece. No rows at all give an ordinary empty array (a file of 0 bytes cannot be mapped).
    """
    dtype = np.dtype(dtype)
    rows = 0
    with tempfile.TemporaryFile(prefix=".tascond-codes-", dir=tmp_dir) as f:
        for piece in pieces:
            piece = np.ascontiguousarray(piece, dtype=dtype)
            if piece.ndim != 2 or piece.shape[1] != width:
                raise ValueError(f"codes of shape {piece.shape}, expected (n, {width})")
            if piece.size:
                f.write(memoryview(piece).cast("B"))
                rows += piece.shape[0]
            del piece  # dropped before the next piece is made
        if rows == 0:
            return np.zeros((0, width), dtype=dtype)
        f.flush()
        return np.memmap(f, dtype=dtype, mode="r", shape=(rows, width))  # the map outlives the closed file


def build_on_disk(method: FeatureMethod, data, config: Config, report: PhaseCallback) -> CondenseResult:
    """Encode every kept video (phase ``encode``) into codes on disk and build the archive (see the module
    docstring); ``config`` has the method's defaults."""
    if joined().size > 1:
        return build_from_features(method, data, config, report)
    dataset, kept, settings, (weights, decoder_config), timing = start_build(method, data, config, report)
    dtype = np.dtype(config.storage.code_dtype)
    labels, lengths, starts, per_video = segment_structure(kept)
    counts: list[np.ndarray] = []

    def pieces():
        for i, video in enumerate(kept):
            x = np.asarray(video.features(), dtype=np.float32)  # (D, T): one video in memory at a time
            code, count = method.encode_with(x, starts[i], lengths[i], dtype, weights, config)
            counts.append(np.asarray(count, dtype=np.int64))
            report("encode", i + 1, len(kept))
            yield code

    codes = spill_codes(pieces(), method.code_dim(dataset.dim, decoder_config), dtype)
    return finish_build(method, dataset, kept, settings, (labels, lengths, per_video, counts), codes,
                        (weights, decoder_config), config, report, timing)
