"""Decode a ``.tcd`` archive back into frame features: to an MS-TCN-layout folder, or on the fly.

How each decoder kind of ``docs/format.md`` §6 restores is the kind's own business
(:mod:`tascond_cli.archive.decoders`); :class:`ArchiveDecoder` binds the archive's kind once and adds the
labels.

Restored features are float32 (D, T) with T the exact number of frames of the original video; labels
are the stored segments run-length decoded. The same archive always restores to the same bytes (on a
given device; CPU and CUDA may differ in the last bits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tascond_cli.archive import Archive, ArchiveError, get_decoder_kind
from tascond_cli.data import ClassMapping, DatasetWriter
from tascond_cli.device import resolve_device

__all__ = ["ArchiveDecoder", "ArchiveDataset", "RestoreSummary", "restore_archive", "video_indices"]

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class RestoreSummary:
    """What :func:`restore_archive` wrote."""

    out: Path
    videos: int
    frames: int
    dim: int
    split: int
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


class ArchiveDecoder:
    """Decodes the videos of one validated :class:`Archive`.

    The archive's decoder kind is bound once (the neural decoder of ``generator`` and ``random`` archives
    is rebuilt from the archive's plain arrays, with every shape checked); a mismatch raises
    :class:`ArchiveError`.
    """

    def __init__(self, archive: Archive, device: str | torch.device = "cpu", batch_frames: int = 32768) -> None:
        self.archive = archive
        self.device = resolve_device(device)
        self.batch_frames = batch_frames
        self.kind = archive.decoder_kind
        self._bound = get_decoder_kind(self.kind).bind(archive, self.device, batch_frames)

    @property
    def residual(self) -> tuple[np.ndarray, float] | None:
        """The residual model ``(std, rho)`` the decoder adds, or ``None``."""
        return self._bound.residual

    @property
    def names(self) -> list[str]:
        return list(self.archive.video_names)

    def __len__(self) -> int:
        return self.archive.num_videos

    def labels(self, index: int) -> np.ndarray:
        """Frame labels (T,) int64 of video ``index`` (from its segments alone: no codes are read)."""
        segs = self.archive.segments_of_video(index)
        return np.repeat(self.archive.segment_labels[segs], self.archive.segment_lengths[segs]).astype(np.int64)

    def features(self, index: int) -> np.ndarray:
        """Restored features (D, T) float32 of video ``index``; an :class:`ArchiveError` when any value is
        not finite (the archive's decoder overflows), so no caller ever sees NaN or infinity."""
        x = self._bound.features(index)
        if not np.isfinite(x).all():
            raise ArchiveError(
                f"video {self.archive.video_names[index]!r} restores to non-finite values (NaN or infinity); "
                "the archive's decoder is broken"
            )
        return x

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.features(index), self.labels(index)


class ArchiveDataset(torch.utils.data.Dataset):
    """A PyTorch dataset over an archive's videos, decoded on the fly (nothing is written to disk).

    Item ``i`` is ``(features, labels)``: a float32 tensor (D, T) and an int64 tensor (T,) of class
    indices (``mapping`` gives their names). ``sample_rate`` keeps every S-th frame, as TAS loaders do.
    A path is opened for random access (:func:`~tascond_cli.archive.open_archive`): for a chunked archive
    (format 1.4) item ``i`` decompresses only the chunks that hold video ``i``'s codes.

    >>> ds = ArchiveDataset("bf.tcd")                # doctest: +SKIP
    >>> x, y = ds[0]; x.shape, y.shape               # doctest: +SKIP
    """

    def __init__(self, archive: Archive | str | Path, device: str | torch.device = "cpu", sample_rate: int = 1) -> None:
        if not isinstance(archive, Archive):
            from tascond_cli.archive import open_archive

            archive = open_archive(archive)
        if sample_rate < 1:
            raise ValueError(f"sample_rate must be >= 1, got {sample_rate}")
        self.decoder = ArchiveDecoder(archive, device)
        self.archive = archive
        self.sample_rate = sample_rate
        self.mapping = ClassMapping(tuple(archive.class_names))

    @property
    def names(self) -> list[str]:
        return self.decoder.names

    @property
    def num_classes(self) -> int:
        return self.archive.num_classes

    @property
    def dim(self) -> int:
        return self.archive.dim

    def __len__(self) -> int:
        return len(self.decoder)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"video index {index} out of range for {len(self)} videos")
        index %= len(self)
        x, y = self.decoder[index]
        s = self.sample_rate
        return torch.from_numpy(np.ascontiguousarray(x[:, ::s])), torch.from_numpy(np.ascontiguousarray(y[::s]))


def archive_split(archive: Archive) -> int:
    """The split the archive was condensed from (``settings["split"]``, default 1)."""
    split = archive.settings.get("split", 1)
    if isinstance(split, bool) or not isinstance(split, int) or split < 1:
        raise ArchiveError(f"/settings: split must be an integer >= 1, got {split!r}")
    return split


def video_indices(archive: Archive, videos: Sequence[str]) -> list[int]:
    """The indices of the videos named ``videos``, in that order, each once; an :class:`ArchiveError`
    names the first name the archive does not have."""
    where = {name: i for i, name in enumerate(archive.video_names)}
    indices: list[int] = []
    seen: set[int] = set()
    for name in videos:
        if name not in where:
            raise ArchiveError(f"no video named {name!r} in the archive ({archive.num_videos} videos)")
        if where[name] not in seen:  # a name given twice is restored once
            seen.add(where[name])
            indices.append(where[name])
    return indices


def restore_bytes(archive: Archive, indices: Sequence[int]) -> int:
    """Bytes a restore of the videos ``indices`` writes, at most: float32 features with their ``.npy``
    headers, one label line per frame, and the mapping and bundle files."""
    longest_label = max((len(n.encode("utf-8")) for n in archive.class_names), default=1) + 1
    frames = archive.video_frames
    total = 0
    for i in indices:
        t = int(frames[i])
        total += 4 * archive.dim * t + 128 + longest_label * t + len(archive.video_names[i].encode("utf-8")) + 8
    return total + sum(len(n.encode("utf-8")) + 8 for n in archive.class_names) + 4096


def _check_free_space(archive: Archive, indices: Sequence[int], out: Path) -> None:
    import shutil

    from tascond_cli.errors import TascondError

    need = restore_bytes(archive, indices)
    where = out.parent if str(out.parent) else Path(".")
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return  # the writer reports a missing or unwritable folder itself
    if need > free:
        raise TascondError(f"{out}: restoring needs {need:,} bytes, only {free:,} are free on its disk")


def restore_archive(
    archive: Archive,
    out: Path | str,
    *,
    videos: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    overwrite: bool = False,
    on_video: ProgressCallback | None = None,
    check_space: bool = True,
) -> RestoreSummary:
    """Write the archive's videos (or only ``videos``) to ``out`` in the MS-TCN layout, atomically.

    ``features/<video>.npy`` float32 (D, T), ``groundTruth/<video>.txt``, ``mapping.txt`` and
    ``splits/train.split<k>.bundle`` listing the restored videos (k = the archive's split).
    Before writing anything, ``check_space`` makes sure the disk of ``out`` has room for all of it
    (:func:`restore_bytes`); every video is checked finite before it is written.
    """
    import time

    indices = list(range(archive.num_videos)) if videos is None else video_indices(archive, videos)
    decoder = ArchiveDecoder(archive, device)
    split = archive_split(archive)
    names = archive.class_names
    if check_space:
        _check_free_space(archive, indices, Path(out))
    t0 = time.perf_counter()
    frames = 0
    with DatasetWriter(out, overwrite=overwrite) as w:
        w.write_mapping(ClassMapping(tuple(names)))
        for done, i in enumerate(indices, 1):
            x, y = decoder[i]
            name = archive.video_names[i]
            w.write_video(name, x, [names[j] for j in y])
            frames += int(y.shape[0])
            if on_video is not None:
                on_video(done, len(indices))
        w.write_bundle(f"train.split{split}.bundle", [archive.video_names[i] for i in indices])
    return RestoreSummary(
        out=Path(out), videos=len(indices), frames=frames, dim=archive.dim, split=split,
        seconds=time.perf_counter() - t0,
    )
