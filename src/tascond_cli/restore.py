"""Decode a ``.tcd`` archive back into frame features: to an MS-TCN-layout folder, or on the fly.

Every decoder kind of ``docs/format.md`` §6 is restored here:

- ``generator``: the archive's neural decoder (:mod:`tascond_cli.condense.prior`) applied to the stored
  codes, chunk by chunk, with the position running over the whole segment (format.md §5).
- ``random``: the same decoder fed codes drawn from ``settings["seed"]`` (the TCA baseline). Video ``v``'s
  codes are ``numpy.random.default_rng([seed, v]).standard_normal((n, latent))`` with
  ``n = sum(min(settings["ips"], L))`` over its segments, in segment order.
- ``identity``: every frame of a chunk is its code.
- ``linear``: ``code @ components + mean`` for every frame of a chunk.
- ``zeros``: all-zero features.

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

from tascond_cli.archive import Archive, ArchiveError, frame_code_index
from tascond_cli.data import ClassMapping, DatasetWriter

__all__ = ["ArchiveDecoder", "ArchiveDataset", "RestoreSummary", "restore_archive"]

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

    The neural decoder (``generator`` and ``random`` kinds) is rebuilt from the archive's plain arrays
    once, with every shape checked; a mismatch raises :class:`ArchiveError`.
    """

    def __init__(self, archive: Archive, device: str | torch.device = "cpu", batch_frames: int = 32768) -> None:
        self.archive = archive
        from tascond_cli.device import resolve_device

        self.device = resolve_device(device)
        self.batch_frames = batch_frames
        self.kind = archive.decoder_kind
        self._net = None
        self.residual = None
        if self.kind in ("generator", "random"):
            from tascond_cli.condense.prior import load_decoder

            config, weights, self.residual = split_residual(archive)
            try:
                net = load_decoder(config, weights)
            except (ValueError, KeyError, TypeError) as exc:
                raise ArchiveError(f"/decoder: {exc}") from None
            if net.dim != archive.dim:
                raise ArchiveError(f"/decoder: decodes {net.dim}-d features but settings say dim {archive.dim}")
            if net.num_classes != archive.num_classes:
                raise ArchiveError(
                    f"/decoder: knows {net.num_classes} classes but the archive has {archive.num_classes}"
                )
            if self.kind == "generator" and archive.code_dim != net.latent:
                raise ArchiveError(f"/codes: {archive.code_dim}-d codes but the decoder takes {net.latent}-d")
            self._net = net.to(self.device).eval()
        if self.kind == "random":
            ips = archive.settings.get("ips")
            if isinstance(ips, bool) or not isinstance(ips, int) or ips < 1:
                raise ArchiveError(f"/settings: a random decoder needs an integer ips >= 1, got {ips!r}")

    @property
    def names(self) -> list[str]:
        return list(self.archive.video_names)

    def __len__(self) -> int:
        return self.archive.num_videos

    def labels(self, index: int) -> np.ndarray:
        """Frame labels (T,) int64 of video ``index``."""
        entry = self.archive.video(index)
        return np.repeat(entry.labels.astype(np.int64), entry.lengths)

    def features(self, index: int) -> np.ndarray:
        """Restored features (D, T) float32 of video ``index``."""
        a = self.archive
        entry = a.video(index)
        lengths = entry.lengths.astype(np.int64)
        total = int(lengths.sum())
        if self.kind == "zeros":
            return np.zeros((a.dim, total), dtype=np.float32)
        if self.kind in ("identity", "linear"):
            rows = frame_code_index(lengths, entry.code_counts)  # (T,)
            codes = np.asarray(entry.codes, dtype=np.float32)
            if self.kind == "identity":
                return np.ascontiguousarray(codes[rows].T)
            comp = np.asarray(a.decoder_weights["components"], dtype=np.float32)  # (d, D)
            mean = np.asarray(a.decoder_weights["mean"], dtype=np.float32)  # (D,)
            out = np.empty((a.dim, total), dtype=np.float32)
            for s in range(0, total, self.batch_frames):
                sl = slice(s, min(total, s + self.batch_frames))
                out[:, sl] = (codes[rows[sl]] @ comp + mean).T
            return out
        from tascond_cli.condense.invert import codes_per_segment, decode_segments

        if self.kind == "random":
            counts = codes_per_segment(lengths, int(a.settings["ips"]))
            rng = np.random.default_rng([int(a.settings["seed"]), index])
            codes = rng.standard_normal((int(counts.sum()), self._net.latent)).astype(np.float32)
        else:
            counts = entry.code_counts
            codes = np.asarray(entry.codes, dtype=np.float32)
        x = decode_segments(self._net, entry.labels, lengths, codes, counts, batch_frames=self.batch_frames)
        if self.residual is not None:
            std, rho = self.residual
            rng = np.random.default_rng([int(a.settings.get("seed", 0)), index, 1])
            x += std[:, None] * ar1_noise(rng, x.shape, rho)
            np.maximum(x, 0.0, out=x)
        return x

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.features(index), self.labels(index)


RESIDUAL_STD = "residual.std"
RESIDUAL_RHO = "residual_rho"


def split_residual(archive: Archive) -> tuple[dict, dict, tuple[np.ndarray, float] | None]:
    """Separate the optional residual model from the decoder's own config and weights.

    A ``generator`` archive may carry ``weights["residual.std"]`` (D,) and ``config["residual_rho"]``:
    what the codes could not explain, as per-channel standard deviations of the inversion residual and
    its lag-1 autocorrelation over time. Restoration then adds seeded AR(1) noise of that size and
    correlation before the non-negativity, so restored features vary within a chunk as real ones do.
    """
    config = dict(archive.decoder_config)
    weights = dict(archive.decoder_weights)
    has_std, has_rho = RESIDUAL_STD in weights, RESIDUAL_RHO in config
    if not has_std and not has_rho:
        return config, weights, None
    if has_std != has_rho:
        raise ArchiveError(f"/decoder: {RESIDUAL_STD} and config {RESIDUAL_RHO} must come together")
    std = np.asarray(weights.pop(RESIDUAL_STD), dtype=np.float32)
    rho = config.pop(RESIDUAL_RHO)
    if std.shape != (archive.dim,):
        raise ArchiveError(f"/decoder/weights/{RESIDUAL_STD}: shape {std.shape}, expected ({archive.dim},)")
    if not np.isfinite(std).all() or (std < 0).any():
        raise ArchiveError(f"/decoder/weights/{RESIDUAL_STD}: values must be finite and >= 0")
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 <= rho < 1:
        raise ArchiveError(f"/decoder/config: {RESIDUAL_RHO} must be a number in [0, 1), got {rho!r}")
    return config, weights, (std, float(rho))


def ar1_noise(rng: np.random.Generator, shape: tuple[int, int], rho: float) -> np.ndarray:
    """Unit-variance AR(1) noise (D, T) float32, correlated over time with lag-1 coefficient ``rho``."""
    d, t = shape
    white = rng.standard_normal((d, t), dtype=np.float32)
    if rho == 0 or t == 0:
        return white
    white[:, 1:] *= np.float32(np.sqrt(1.0 - rho * rho))
    out = np.empty_like(white)
    out[:, 0] = white[:, 0]
    r = np.float32(rho)
    for i in range(1, t):  # D-wide vector ops; T steps
        out[:, i] = r * out[:, i - 1] + white[:, i]
    return out


class ArchiveDataset(torch.utils.data.Dataset):
    """A PyTorch dataset over an archive's videos, decoded on the fly (nothing is written to disk).

    Item ``i`` is ``(features, labels)``: a float32 tensor (D, T) and an int64 tensor (T,) of class
    indices (``mapping`` gives their names). ``sample_rate`` keeps every S-th frame, as TAS loaders do.

    >>> ds = ArchiveDataset("bf.tcd")                # doctest: +SKIP
    >>> x, y = ds[0]; x.shape, y.shape               # doctest: +SKIP
    """

    def __init__(self, archive: Archive | str | Path, device: str | torch.device = "cpu", sample_rate: int = 1) -> None:
        if not isinstance(archive, Archive):
            from tascond_cli.archive import read_archive

            archive = read_archive(archive)
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


def restore_archive(
    archive: Archive,
    out: Path | str,
    *,
    videos: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    overwrite: bool = False,
    on_video: ProgressCallback | None = None,
) -> RestoreSummary:
    """Write the archive's videos (or only ``videos``) to ``out`` in the MS-TCN layout, atomically.

    ``features/<video>.npy`` float32 (D, T), ``groundTruth/<video>.txt``, ``mapping.txt`` and
    ``splits/train.split<k>.bundle`` listing the restored videos (k = the archive's split).
    """
    import time

    decoder = ArchiveDecoder(archive, device)
    if videos is None:
        indices = list(range(len(decoder)))
    else:
        indices = []
        for name in videos:
            try:
                indices.append(archive.index_of(name))
            except (KeyError, ValueError):
                raise ArchiveError(f"no video named {name!r} in the archive") from None
    split = archive_split(archive)
    names = archive.class_names
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


def decode_all(archive: Archive, device: str | torch.device = "cpu") -> list[tuple[np.ndarray, np.ndarray]]:
    """Every video of the archive as ``(features (D, T), labels (T,))``, in archive order."""
    decoder = ArchiveDecoder(archive, device)
    return [decoder[i] for i in range(len(decoder))]

