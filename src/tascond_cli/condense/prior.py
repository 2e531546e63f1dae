"""The generative prior: a conditional VAE over frames of segment chunks (see docs/method.md).

Ding, Chen & Yao (CVPR 2025) train an encoder ``E(x, onehot(a), c) -> (mu, logvar)`` and a decoder
``G(z, onehot(a), c) -> x`` (two-layer MLPs, latent 256) with MSE + KL over single frames, where
``a`` is the frame's action and ``c`` its position in its segment. Network inversion
(:mod:`.invert`) then freezes ``G`` and fits one code per *chunk* of a segment (``K`` chunks per
segment). What matters is how well ``G`` reproduces a chunk of frames from one code, so we train
for exactly that, and add cheap inputs:

- Chunk training (``ips`` = K > 0): a training example is a chunk of a real segment, cut by the
  archive's chunk rule (``n = min(K, L)`` chunks, chunk ``i`` = frames ``[floor(iL/n),
  floor((i+1)L/n))``). The chunk's code is the mean of the per-frame encoder outputs over
  ``chunk_frames`` frames sampled from it, which is also how inversion initialises a code; the
  decoder reconstructs those frames from that one code. ``ips=0`` is the paper's frame VAE.
- Position within the chunk, ``u = (t - lo + 0.5) / (hi - lo)`` (``chunk_input``), besides the
  position in the segment ``c = (t + 0.5) / L`` (the archive's convention): one code can then
  describe how its chunk *changes*, not only its level. Slow drifts are a large part of real
  features, so this is worth more than extra codes (``benchmarks/prior_quality.py``). The encoder
  sees ``u`` too, so its mean over a chunk can carry a slope.
- A learned class embedding (``embed`` wide) instead of a one-hot vector; Fourier features of the
  position, ``c, sin(2^k pi c), cos(2^k pi c)`` for ``k < fourier`` (start, middle and end of an
  action look different); optionally ``log L`` (``length_input``).
- Per-channel normalisation: the encoder sees ``(x - mean) / std`` and the decoder predicts
  ``mean + std * net(...)``; ``mean`` and ``std`` come from training frames and are decoder buffers.
- Non-negative output (``output="relu"``): features are averaged ReLU outputs, often exactly 0.
  Training uses a *censored* error, ``y - x`` where ``x > 0`` and ``relu(y)`` where ``x == 0``:
  the error of ``relu(y)``, except that a frame predicted below 0 where the target is positive
  still gets a gradient.
- A small KL weight ``beta`` (an almost-deterministic autoencoder with a tame latent scale), AdamW
  with a cosine learning-rate decay, and a step budget instead of epochs.

Loss per frame (averaged over the batch): ``sum_ch w_ch * err_ch^2 / D + beta * KL / D`` (KL of the
chunk's code), with ``w_ch = 1 / mean_ch(var)`` (``loss_space="raw"``: raw feature units, what
restoration is judged by) or ``w_ch = 1 / var_ch`` (``"channel"``: every channel counts alike).

Memory stays bounded whatever the dataset size: frames come from a pool of at most ``pool_mb``
megabytes. A dataset that fits is loaded once. Otherwise the pool is a ring of slots of ``refresh``
frames, filled with windows of random videos (drawn in proportion to their length); every step one
slot is refilled with a fresh window, so training streams through the data. Chunks never cross a
window's edge (a chunk cut by one is clipped to it). The normalisation statistics come from the
initial pool. Training is deterministic for a given seed on CPU and leaves torch's global RNG alone.

Several processes (``torchrun``, :func:`tascond_cli.distributed.joined`): the prior is trained with
``DistributedDataParallel``. The training videos are dealt to the ranks (even frames per rank), each
rank's pool holds only its videos and draws its part of every batch (``batch`` split evenly, rounded
up) from them with its own random streams, seeded by ``(seed, world size, rank)``; the gradients are
averaged over the ranks, and the normalisation statistics summed over them, so every rank holds the
same prior. Deterministic for a given seed and world size; one process trains exactly as it always did.

The decoder network itself belongs to the archive format (:mod:`tascond_cli.archive.decoders.network`),
which exports it to plain arrays and rebuilds it from them; this module trains it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from tascond_cli.archive.decoders.network import ACTIVATIONS as _ACTIVATIONS
from tascond_cli.archive.decoders.network import OUTPUTS as _OUTPUTS
from tascond_cli.archive.decoders.network import Decoder, conditions, mlp, n_conditions
from tascond_cli.chunks import codes_per_segment, frame_chunk, frame_segments, position, run_lengths
from tascond_cli.distributed import World, joined, sum_arrays

__all__ = [
    "Encoder",
    "Prior",
    "PriorConfig",
    "encode",
    "segment_frames",
    "train_prior",
]

_LOSS_SPACES = ("raw", "channel")
_STD_FLOOR = 1e-4  # relative to the mean std: channels that never vary do not blow up


class VideoLike(Protocol):
    """What training needs of a video (:class:`tascond_cli.data.Video` has it)."""

    labels: np.ndarray

    def features(self) -> np.ndarray: ...


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class PriorConfig:
    """Architecture and training of the prior.

    latent, hidden, layers, embed, fourier, length_input, chunk_input, output, activation
        Architecture: latent size d, hidden width, hidden layers per MLP, class embedding size,
        segment-position frequencies, whether log(L) and the position within the chunk are
        inputs, output non-linearity, hidden activation.
    ips, chunk_frames
        Train on chunks of ``min(ips, L)`` per segment (use the ``ips`` you will invert with;
        0: single frames, as the paper), sampling ``chunk_frames`` frames of each chunk.
    steps, batch, lr, weight_decay, beta, beta_warmup, loss_space
        Training: AdamW steps of ``batch`` frames (``batch // chunk_frames`` chunks), peak learning
        rate (cosine decay to 5% of it), KL weight, fraction of steps over which it ramps up from
        0, and how channels are weighted.
    pool_mb, refresh
        Frame pool size in megabytes, and frames replaced per step when the data does not fit.
    seed
        Everything random (initialisation, batches, the VAE noise) derives from it.
    """

    latent: int = 64
    hidden: int = 512
    layers: int = 2
    embed: int = 32
    fourier: int = 4
    length_input: bool = False
    chunk_input: bool = True
    output: str = "relu"
    activation: str = "silu"
    ips: int = 8
    chunk_frames: int = 8
    steps: int = 1500
    batch: int = 512
    lr: float = 1e-3
    weight_decay: float = 0.0
    beta: float = 0.01
    beta_warmup: float = 0.0
    loss_space: str = "raw"
    pool_mb: float = 256.0
    refresh: int = 256
    seed: int = 0

    def check(self) -> PriorConfig:
        """Raise ValueError naming the first bad field; return self."""
        for name in ("latent", "hidden", "layers", "embed", "steps", "batch", "refresh", "chunk_frames"):
            _check_int(name, getattr(self, name), 1, 1 << 20)
        _check_int("fourier", self.fourier, 0, 16)
        _check_int("ips", self.ips, 0, 1 << 20)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        for name in ("length_input", "chunk_input"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.chunk_input and self.ips == 0:
            raise ValueError("chunk_input needs chunk training (ips > 0)")
        if self.ips and self.batch < self.chunk_frames:
            raise ValueError(f"batch ({self.batch}) must hold at least one chunk of {self.chunk_frames} frames")
        _check_choice("output", self.output, _OUTPUTS)
        _check_choice("activation", self.activation, tuple(_ACTIVATIONS))
        _check_choice("loss_space", self.loss_space, _LOSS_SPACES)
        for name, lo, hi in (("lr", 0.0, 10.0), ("weight_decay", 0.0, 10.0), ("beta", 0.0, 1e6),
                             ("beta_warmup", 0.0, 1.0), ("pool_mb", 0.0, 1e7)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or not lo <= v <= hi:
                raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {v!r}")
        if self.lr <= 0 or self.pool_mb <= 0:
            raise ValueError("lr and pool_mb must be positive")
        return self


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


# --------------------------------------------------------------------------- modules


class Encoder(nn.Module):
    """``E(x, a, c[, L][, u]) -> (mu, logvar)`` per frame; sees per-channel normalised frames."""

    def __init__(self, dim: int, num_classes: int, cfg: PriorConfig) -> None:
        super().__init__()
        self.fourier, self.length_input, self.chunk_input = cfg.fourier, cfg.length_input, cfg.chunk_input
        self.embed = nn.Embedding(num_classes, cfg.embed)
        n_in = dim + cfg.embed + n_conditions(cfg.fourier, cfg.length_input, cfg.chunk_input)
        self.net = mlp(n_in, cfg.hidden, cfg.layers, 2 * cfg.latent, cfg.activation)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def forward(self, x: torch.Tensor, a: torch.Tensor, c: torch.Tensor, length: torch.Tensor | None = None,
                u: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([(x - self.mean) / self.std, self.embed(a), conditions(self, c, length, u)], dim=1)
        mu, logvar = self.net(h).chunk(2, dim=1)  # (N, d) each
        return mu, logvar.clamp(-12.0, 8.0)


class Prior(nn.Module):
    """The trained conditional VAE: ``encoder``, ``decoder`` and the ``config`` that made them."""

    def __init__(self, dim: int, num_classes: int, config: PriorConfig) -> None:
        super().__init__()
        self.config, self.dim, self.num_classes = config, dim, num_classes
        self.encoder = Encoder(dim, num_classes, config)
        self.decoder = Decoder(dim, num_classes, config.latent, config.hidden, config.layers, config.embed,
                               config.fourier, config.length_input, config.chunk_input, config.output,
                               config.activation)

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        for m in (self.encoder, self.decoder):
            m.mean.copy_(mean)
            m.std.copy_(std)


# --------------------------------------------------------------------------- frame pool


def segment_frames(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every frame of a label sequence: its index t in its segment and the segment's length L.

    ``(t + 0.5) / L`` is the frame's position ``c``. Both int64, (T,).
    """
    _, local, length = frame_segments(run_lengths(labels)[1])
    return local, length


class _FramePool:
    """A bounded pool of training frames, with per frame its class, t, L and its run in the pool.

    A *run* is the stretch of the pool holding consecutive frames of one segment (a whole segment
    when the dataset fits, else the part of it inside one loaded window).
    """

    def __init__(self, videos: Sequence[VideoLike], dim: int, capacity: int, refresh: int,
                 rng: np.random.Generator) -> None:
        self.videos, self.rng = videos, rng
        self.frames = np.array([len(v.labels) for v in videos], dtype=np.int64)
        total = int(self.frames.sum())
        if total == 0:
            raise ValueError("no training frames")
        self.static = total <= capacity
        self.slot = min(refresh, capacity)
        self.size = total if self.static else capacity // self.slot * self.slot
        self.x = np.empty((self.size, dim), np.float32)  # (P, D)
        self.a, self.t, self.length = (np.empty(self.size, np.int64) for _ in range(3))
        self.run_lo, self.run_hi = np.empty(self.size, np.int64), np.empty(self.size, np.int64)
        self.next_slot = 0
        if self.static:
            at = 0
            for i in range(len(videos)):
                at = self._put(i, 0, int(self.frames[i]), at)
        else:
            # many small windows first, so that the statistics see many videos
            window = max(1, min(self.slot, capacity // 256))
            for s in range(self.size // self.slot):
                self._fill_slot(s, window)

    def _put(self, i: int, t0: int, n: int, at: int) -> int:
        v = self.videos[i]
        feats = v.features()
        if feats.shape[1] < self.frames[i]:
            raise ValueError(f"video {i}: {feats.shape[1]} feature frames but {self.frames[i]} labels")
        sl = slice(at, at + n)
        self.x[sl] = np.asarray(feats[:, t0 : t0 + n], dtype=np.float32).T
        t, length = segment_frames(v.labels)
        self.a[sl], self.t[sl], self.length[sl] = v.labels[t0 : t0 + n], t[t0 : t0 + n], length[t0 : t0 + n]
        starts, runs = run_lengths(self.a[sl])
        self.run_lo[sl] = at + np.repeat(starts, runs)
        self.run_hi[sl] = at + np.repeat(starts + runs, runs)
        return at + n

    def _fill_slot(self, s: int, window: int) -> None:
        at, end = s * self.slot, (s + 1) * self.slot
        p = self.frames / self.frames.sum()
        while at < end:
            i = int(self.rng.choice(len(self.videos), p=p))
            w = int(min(window, end - at, self.frames[i]))
            t0 = int(self.rng.integers(0, self.frames[i] - w + 1))
            at = self._put(i, t0, w, at)

    def step(self) -> None:
        """Refill the oldest slot with a fresh window, unless the whole dataset is loaded."""
        if not self.static:
            self._fill_slot(self.next_slot, self.slot)
            self.next_slot = (self.next_slot + 1) % (self.size // self.slot)

    def sample(self, n_chunks: int, per_chunk: int, ips: int) -> tuple[np.ndarray, np.ndarray]:
        """Pool indices (n_chunks, per_chunk) of frames of random chunks, and their positions u.

        A chunk is picked through a uniformly random frame, i.e. in proportion to its length;
        its frames are drawn uniformly with replacement. ``ips=0``: single frames, u = 0.5.
        """
        j = self.rng.integers(0, self.size, size=n_chunks)  # (B,)
        if ips == 0:
            return j[:, None], np.full((n_chunks, 1), 0.5)
        length, t = self.length[j], self.t[j]
        _, lo, hi = frame_chunk(t, length, codes_per_segment(length, ips))  # frame j's chunk, in segment frames
        plo = np.maximum(j - t + lo, self.run_lo[j])  # in pool rows, clipped to the loaded run
        phi = np.minimum(j - t + hi, self.run_hi[j])
        r = self.rng.random((n_chunks, per_chunk))
        idx = plo[:, None] + (r * (phi - plo)[:, None]).astype(np.int64)  # (B, F)
        u = position(self.t[idx], lo[:, None], hi[:, None])
        return idx, u

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        s1, s2 = np.zeros(self.x.shape[1]), np.zeros(self.x.shape[1])
        for r in range(0, self.size, 8192):  # float64 sums, a block at a time
            block = self.x[r : r + 8192].astype(np.float64)
            s1 += block.sum(0)
            s2 += np.square(block).sum(0)
        s1, s2, n = sum_arrays(s1, s2, self.size)  # every rank's pool (itself with one process)
        mean = s1 / n
        std = np.sqrt(np.maximum(s2 / n - mean**2, 0.0))
        std = np.maximum(std, _STD_FLOOR * max(float(std.mean()), 1e-12))
        return mean, std


# --------------------------------------------------------------------------- training


class _Objective(nn.Module):
    """The loss of one batch of chunks as a module's forward, which is what ``DistributedDataParallel``
    wraps: ``(loss, recon, kl)`` for frames ``(B*F, ...)`` of ``B`` chunks and the VAE noise ``eps`` (B, d)."""

    def __init__(self, prior: Prior, weight: torch.Tensor) -> None:
        super().__init__()
        self.prior, self.weight = prior, weight

    def forward(self, x: torch.Tensor, a: torch.Tensor, c: torch.Tensor, length: torch.Tensor, u: torch.Tensor,
                eps: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        prior, dim = self.prior, self.prior.dim
        n_chunks = eps.shape[0]
        mu, logvar = prior.encoder(x, a, c, length, u)  # (B*F, d) each
        mu = mu.view(n_chunks, -1, mu.shape[1]).mean(1)  # (B, d): the chunk's code
        logvar = logvar.view(n_chunks, -1, logvar.shape[1]).mean(1)
        z = (mu + eps * torch.exp(0.5 * logvar)).repeat_interleave(x.shape[0] // n_chunks, dim=0)  # (B*F, d)
        err = prior.decoder.error(z, a, c, length, u, x)  # (B*F, D)
        recon = (err.square() * self.weight).sum(1).mean() / dim
        kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(1).mean() / dim
        return recon + beta * kl, recon, kl


def _rank_part(videos: Sequence[VideoLike], config: PriorConfig, w: World) -> tuple[list, np.random.Generator, int]:
    """This rank's videos, its pool's random generator and the seed of its VAE noise (with one process:
    every video, and the seed itself, as ever)."""
    if w.size == 1:
        return list(videos), np.random.default_rng(config.seed), config.seed
    if len(videos) < w.size:
        raise ValueError(f"{w.size} processes need at least {w.size} training videos, got {len(videos)}")
    mine = [videos[i] for i in w.share([len(v.labels) for v in videos])]
    seq = np.random.SeedSequence([config.seed, w.size, w.rank])
    return mine, np.random.default_rng(seq), int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _parallel(objective: _Objective, device: torch.device, w: World) -> nn.Module:
    """``objective`` wrapped in ``DistributedDataParallel`` under ``torchrun`` (itself with one process)."""
    if w.size == 1:
        return objective
    from torch.nn.parallel import DistributedDataParallel

    ids = None if device.type != "cuda" else [device.index if device.index is not None else torch.cuda.current_device()]
    return DistributedDataParallel(objective, device_ids=ids)


def _check_videos(videos: Sequence[VideoLike], num_classes: int) -> int:
    """The feature dimension; raise ValueError on no videos or labels outside the classes."""
    _check_int("num_classes", num_classes, 1, 1 << 20)
    if not videos:
        raise ValueError("no training videos")
    for i, v in enumerate(videos):
        labels = np.asarray(v.labels)
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"video {i}: labels outside 0..{num_classes - 1}")
    return int(videos[0].features().shape[0])


def train_prior(videos: Sequence[VideoLike], num_classes: int, config: PriorConfig = PriorConfig(),
                device: str | torch.device = "cpu",
                on_step: Callable[[int, dict[str, float]], None] | None = None) -> Prior:
    """Train the conditional VAE on chunks of ``videos`` for ``config.steps`` steps.

    ``on_step(step, {"loss", "recon", "kl", "lr"})`` is called after every step (1-based; under
    ``torchrun`` the loss is this rank's). Returns the prior in eval mode on ``device``.
    """
    config.check()
    dim = _check_videos(videos, num_classes)
    device = torch.device(device)
    w = joined()
    mine, rng, noise_seed = _rank_part(videos, config, w)
    per_chunk = config.chunk_frames if config.ips else 1
    n_chunks = -(-(config.batch // per_chunk) // w.size)  # this rank's part of the batch
    capacity = max(config.batch, int(config.pool_mb * 2**20 / (4 * dim)))
    pool = _FramePool(mine, dim, capacity, config.refresh, rng)
    mean, std = pool.stats()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        prior = Prior(dim, num_classes, config)
    prior.set_normalisation(torch.from_numpy(mean).float(), torch.from_numpy(std).float())
    prior.to(device).train()
    weight = 1.0 / (std**2 if config.loss_space == "channel" else np.full(dim, (std**2).mean()))
    objective = _parallel(_Objective(prior, torch.from_numpy(weight).float().to(device)), device, w)
    gen = torch.Generator(device=device)
    gen.manual_seed(noise_seed)
    opt = torch.optim.AdamW(prior.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    if pool.static:  # the whole dataset lives on the device; batches are index gathers
        stored = [torch.from_numpy(arr).to(device) for arr in (pool.x, pool.a, pool.t, pool.length)]
    for step in range(1, config.steps + 1):
        idx, u_np = pool.sample(n_chunks, per_chunk, config.ips)  # (B, F) each
        flat = idx.reshape(-1)
        if pool.static:
            it = torch.from_numpy(flat).to(device)
            x, a, t, length = (arr[it] for arr in stored)
        else:
            x, a, t, length = (torch.from_numpy(arr[flat]).to(device) for arr in (pool.x, pool.a, pool.t, pool.length))
        c = (t.float() + 0.5) / length.float()
        u = torch.from_numpy(u_np.reshape(-1).astype(np.float32)).to(device)
        lr = config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - 1) / max(1, config.steps))))
        for g in opt.param_groups:
            g["lr"] = lr
        warm = config.beta_warmup * config.steps
        beta = config.beta * (min(1.0, step / warm) if warm > 0 else 1.0)
        eps = torch.randn((n_chunks, config.latent), generator=gen, device=device)
        loss, recon, kl = objective(x, a, c, length, u, eps, beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        pool.step()
        if on_step is not None:
            on_step(step, {"loss": loss.item(), "recon": recon.item(), "kl": kl.item(), "lr": lr})
    return prior.eval()


@torch.no_grad()
def encode(prior: Prior, x: Any, a: Any, c: Any, length: Any = None, u: Any = None) -> torch.Tensor:
    """The encoder's mean ``mu`` for raw frames ``x`` (N, D) with classes ``a``, positions ``c`` (N,).

    ``length`` (segment lengths) and ``u`` (positions within chunks) are needed when the prior
    was built with ``length_input`` / ``chunk_input``. Arrays or tensors; returns a float32 tensor
    (N, d) on the prior's device.
    """
    dev = next(prior.parameters()).device

    def tensor(v: Any, dtype: torch.dtype) -> torch.Tensor:
        if torch.is_tensor(v):
            return v.to(device=dev, dtype=dtype)
        return torch.tensor(np.asarray(v), dtype=dtype, device=dev)  # a copy: inputs may be read-only

    x, a, c = tensor(x, torch.float32), tensor(a, torch.long), tensor(c, torch.float32)
    length = None if length is None else tensor(length, torch.long)
    u = None if u is None else tensor(u, torch.float32)
    return prior.encoder(x, a, c, length, u)[0]
