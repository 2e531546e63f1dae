"""Network inversion: fit the codes of segments with the decoder frozen (see docs/method.md).

With the decoder ``G`` frozen, every segment of ``L`` frames gets ``n = min(K, L)`` latent codes
(``K`` = instances per segment, ``ips``). Code ``i`` is held over chunk ``i``, frames
``[floor(i*L/n), floor((i+1)*L/n))``, while the position ``c = (t + 0.5) / L`` runs over the
whole segment (the chunk rule and position convention of :mod:`tascond_cli.chunks`); decoders built with
``chunk_input`` also see ``u = (t - lo + 0.5) / (hi - lo)``, the position within the chunk
``[lo, hi)``, derived from the same rule (nothing more to store). The codes minimise
``sum_t ||G(z_chunk(t), a, c_t) - x_t||^2`` over the segment's real frames.

How (the paper leaves it open; these are our choices):

- Vectorised. The frames of many segments are flattened into one batch with, per frame, the row of
  its code; a forward pass gathers the codes by that index, so one matrix product serves every
  segment. Segments are grouped in batches of at most ``batch_frames`` frames, so memory is bounded.
  Within a batch, on the CPU, the networks see :data:`FRAME_BLOCK` frames at a time (the gradient
  accumulates over the blocks), so their temporaries are (block, D); a batch holds its frames once.
- Initialised from the encoder: each code starts at the mean of ``mu = E(x_t, a, c_t)`` over its
  chunk (the ``encoded`` baseline), not from noise.
- Per-segment Adam, written out so that each code row has its own step count and each segment its
  own learning rate and stopping: a segment whose loss has not improved by ``rel_tol`` (relative)
  for ``patience`` iterations has its learning rate multiplied by ``decay_factor``; after
  ``decays`` such reductions (or ``max_iters`` iterations) it stops.
- Optional frame subsampling (``chunk_frames``): each iteration a frame of a chunk of ``m`` frames
  is used with probability ``min(1, chunk_frames / m)`` and weighted by its inverse, which keeps
  the loss unbiased and the cost per iteration bounded by the number of codes, not of frames.
  The draws are per segment: the uniform number of frame ``t`` of segment ``s`` (its index in
  ``segments``) at iteration ``i`` is a hash of ``(seed, s, t, i)`` (:func:`uniforms`), not a draw
  from a stream shared by the batch.
- So segments never interact: nothing (statistics, optimiser state, random numbers) is shared by a
  batch, and the codes of a segment do not depend on which other segments share its batch, up to
  the float summation order of the batch's matrix products (last bits).
- Several processes (``torchrun``, :func:`tascond_cli.distributed.joined`): the batches, cut from all
  segments as with one process, are dealt to the ranks (even frames per rank), and the codes and
  the error's per-batch sums are gathered to every rank as exact bytes. Each batch is the same
  computation whatever the number of ranks, so 1 and N ranks give the same codes, bit for bit, and
  the same error.
- Non-negative decoders are fitted with the censored error of :meth:`Decoder.error`.

The reported error is the *fraction of variance unexplained* over all inverted frames::

    error = sum_t ||G(...) - x_t||^2 / sum_t ||x_t - mean||^2

with ``mean`` the per-channel mean of those frames, and ``G`` including its output non-linearity
(exactly what restoration produces). 0 is perfect, 1 is as bad as predicting the mean frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from tascond_cli.archive.decoders.network import Decoder
from tascond_cli.chunks import codes_per_segment, frame_layout, offsets_from_counts, segment_batches
from tascond_cli.condense.prior import Prior
from tascond_cli.distributed import gather_arrays, joined

__all__ = ["InvertConfig", "Inversion", "encode_segments", "invert_segments", "uniforms"]


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class InvertConfig:
    """How codes are fitted (see the module docstring)."""

    lr: float = 0.05
    max_iters: int = 300
    patience: int = 15
    rel_tol: float = 1e-3
    decays: int = 2
    decay_factor: float = 0.3
    chunk_frames: int = 16
    """0: every frame every iteration; else about this many frames per chunk per iteration. At the
    full frame rate (chunks of tens of frames) 8-16 cost nothing in quality and bound the cost."""
    batch_frames: int = 32768
    seed: int = 0

    def check(self) -> InvertConfig:
        for name, lo in (("max_iters", 0), ("patience", 1), ("decays", 0), ("chunk_frames", 0),
                         ("batch_frames", 1), ("seed", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        for name, lo, hi in (("lr", 0.0, 1e3), ("rel_tol", 0.0, 1.0), ("decay_factor", 0.0, 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
                raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {v!r}")
        return self


class Inversion(NamedTuple):
    """What :func:`invert_segments` returns."""

    codes: np.ndarray
    """(N, d) float32, the codes of all segments, one segment after the other."""
    counts: np.ndarray
    """(S,) int64, codes per segment: ``min(ips, L)``."""
    error: float
    """Fraction of variance unexplained over all frames (module docstring)."""


# --------------------------------------------------------------------------- inversion


def _parts(model: Prior | Decoder) -> tuple[Decoder, nn.Module | None]:
    if isinstance(model, Prior):
        return model.decoder, model.encoder
    if isinstance(model, Decoder):
        return model, None
    raise TypeError(f"expected a Prior or a Decoder, got {type(model).__name__}")


_MASK = 0xFFFFFFFF


def _mix(h: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash of int64 values in ``[0, 2**32)`` (xor-shift-multiply rounds; every multiplier
    is below ``2**31``, so no product leaves int64)."""
    h = ((h ^ (h >> 16)) * 0x7FEB352D) & _MASK
    h = ((h ^ (h >> 15)) * 0x2C1B3C6D) & _MASK
    h = ((h ^ (h >> 13)) * 0x297A2D39) & _MASK
    return h ^ (h >> 16)


def _frame_keys(seed: int, segment: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per frame, a 32-bit key of ``(seed, segment index, frame index in the segment)`` (int64 tensors)."""
    h = _mix(torch.full_like(segment, seed & _MASK))
    h = _mix(h ^ ((seed >> 32) & _MASK))
    h = _mix(h ^ (segment & _MASK))
    return _mix(h ^ (t & _MASK))


def uniforms(keys: torch.Tensor, iteration: int) -> torch.Tensor:
    """Uniform float32 numbers in ``[0, 1)`` (24 bits), one per frame key, for ``iteration``: a frame's
    number depends on its key and the iteration alone (module docstring)."""
    i = _mix(torch.tensor(iteration & _MASK, dtype=torch.int64))
    return (_mix(keys ^ i.to(keys.device)) >> 8).float() * (1.0 / (1 << 24))


class _Batch:
    """The frames of a range of segments, flattened, with per-frame indices (all on ``device``).

    ``first``: the index of the range's first segment among all segments (it keys the random numbers).
    """

    def __init__(self, segments: Sequence[Any], labels: np.ndarray, lengths: np.ndarray, counts: np.ndarray,
                 device: torch.device, first: int = 0, seed: int = 0) -> None:
        x = _frames(segments, lengths)  # (F, D)
        seg, rows, c, u = frame_layout(lengths, counts)
        self.n_seg, self.n_codes = len(lengths), int(counts.sum())
        self.x = torch.from_numpy(x).to(device)
        self.seg = torch.from_numpy(seg).to(device)
        self.rows = torch.from_numpy(rows).to(device)
        self.a = torch.from_numpy(labels[seg]).to(device)
        self.c = torch.from_numpy(c.astype(np.float32)).to(device)
        self.u = torch.from_numpy(u.astype(np.float32)).to(device)
        self.length = torch.from_numpy(lengths[seg]).to(device)
        chunk = np.bincount(rows, minlength=self.n_codes)  # (N,) frames per chunk
        self.chunk = torch.from_numpy(chunk).to(device)
        self.seg_of_code = torch.from_numpy(np.repeat(np.arange(len(lengths)), counts)).to(device)
        t = np.arange(len(seg), dtype=np.int64) - offsets_from_counts(lengths)[:-1][seg]  # frame in its segment
        self.key = _frame_keys(seed, self.seg + first, torch.from_numpy(t).to(device))

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.x[idx], self.a[idx], self.c[idx], self.length[idx], self.u[idx], self.rows[idx], self.seg[idx],
                self.key[idx])


def _frames(segments: Sequence[Any], lengths: np.ndarray) -> np.ndarray:
    """The segments' frames, one after the other, as float32 (F, D): each segment is read (and, for a
    memory-mapped view, mapped) in turn and dropped once copied, so no more than one is held at a time."""
    x = None
    at = 0
    for s, n in zip(segments, lengths):
        part = np.asarray(s, dtype=np.float32)  # (D, L)
        if x is None:
            x = np.empty((int(lengths.sum()), part.shape[0]), dtype=np.float32)
        x[at : at + int(n)] = part.T
        at += int(n)
        del s, part  # unmapped before the next one is mapped
    return x


FRAME_BLOCK = 4096
"""Frames passed through the encoder, or decoded for the error sums, at once: the temporaries of those
passes are (block, D), not (batch, D)."""


@torch.no_grad()
def _encoder_init(encoder: nn.Module, b: _Batch) -> torch.Tensor:
    block = FRAME_BLOCK
    mus = []
    for s in range(0, b.x.shape[0], block):
        sl = slice(s, s + block)
        mus.append(encoder(b.x[sl], b.a[sl], b.c[sl], b.length[sl], b.u[sl])[0])
    mu = torch.cat(mus)  # (F, d)
    codes = torch.zeros(b.n_codes, mu.shape[1], device=mu.device).index_add_(0, b.rows, mu)
    return codes / b.chunk[:, None].float()


def _fit(dec: Decoder, b: _Batch, codes: torch.Tensor, cfg: InvertConfig) -> int:
    """Optimise ``codes`` (N, d) in place; returns the iterations run."""
    dev = codes.device
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    m, v = torch.zeros_like(codes), torch.zeros_like(codes)
    steps = torch.zeros(b.n_codes, device=dev)  # Adam step count per code row
    lr = torch.full((b.n_seg,), float(cfg.lr), device=dev)
    best = torch.full((b.n_seg,), math.inf, device=dev, dtype=torch.float64)
    since = torch.zeros(b.n_seg, dtype=torch.long, device=dev)
    decays = torch.zeros(b.n_seg, dtype=torch.long, device=dev)
    active = torch.ones(b.n_seg, dtype=torch.bool, device=dev)
    keep_p = (cfg.chunk_frames / b.chunk.float()).clamp(max=1.0) if cfg.chunk_frames else None  # (N,)
    current = None
    it = 0
    for it in range(1, cfg.max_iters + 1):
        if current is None:  # the active segments' frames (again when some stop)
            current = _active_frames(b, active, keep_p)
        g, seg_loss = _loss_and_grad(dec, b, codes, current, keep_p is not None, it)

        # plateau bookkeeping, per segment, on the loss at the current codes
        improved = seg_loss < best * (1.0 - cfg.rel_tol)
        best = torch.minimum(best, seg_loss)
        since = torch.where(improved, torch.zeros_like(since), since + 1)
        plateau = active & (since >= cfg.patience)
        lr = torch.where(plateau, lr * cfg.decay_factor, lr)
        decays = decays + plateau.long()
        since = torch.where(plateau, torch.zeros_like(since), since)
        done = plateau & (decays > cfg.decays)
        if bool(done.any()):
            active = active & ~done
            current = None
            if not bool(active.any()):
                break

        # Adam on the rows of active segments
        row_on = active[b.seg_of_code]  # (N,)
        steps = steps + row_on.float()
        on = row_on[:, None]
        m = torch.where(on, beta1 * m + (1 - beta1) * g, m)
        v = torch.where(on, beta2 * v + (1 - beta2) * g.square(), v)
        t = steps.clamp(min=1)[:, None]
        update = lr[b.seg_of_code][:, None] * (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + eps)
        codes -= torch.where(on, update, torch.zeros_like(update))
    return it


def _loss_and_grad(dec: Decoder, b: _Batch, codes: torch.Tensor, current: tuple[torch.Tensor, ...], drawn: bool,
                   it: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient (N, d) of the batch's loss at ``codes`` and each segment's loss (float64), over the
    active frames (``current``, :func:`_active_frames`), or over those drawn at iteration ``it``
    (``drawn``: weighted by the inverse of their probability).

    The frames go through the decoder :data:`FRAME_BLOCK` at a time on the CPU (the gradient accumulates
    over the blocks), so the passes' temporaries are (block, D), not (frames, D); a GPU takes them at once.
    """
    if drawn:  # gathered from the batch block by block: no copy of all active frames
        idx, key, p = current
        keep = torch.nonzero(uniforms(key, it) < p).squeeze(1)
        chosen, weight = idx[keep], 1.0 / p[keep]
        n = int(chosen.shape[0])
    else:
        n = int(current[0].shape[0])
    block = FRAME_BLOCK if codes.device.type == "cpu" else max(n, 1)
    z = codes.detach().requires_grad_(True)
    seg_loss = torch.zeros(b.n_seg, dtype=torch.float64, device=codes.device)
    for s in range(0, n, block):
        sl = slice(s, s + block)
        x, a, c, length, u, rows, seg, _ = b.take(chosen[sl]) if drawn else (t[sl] for t in current)
        per_frame = dec.error(z[rows], a, c, length, u, x).square().sum(1)  # (block,)
        if drawn:
            per_frame = per_frame * weight[sl]
        per_frame.sum().backward()
        seg_loss.index_add_(0, seg, per_frame.detach().double())
    return (z.grad if z.grad is not None else torch.zeros_like(codes)), seg_loss


def _active_frames(b: _Batch, active: torch.Tensor, keep_p: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    """What :func:`_fit` holds between iterations for the frames of active segments.

    Without subsampling: their tensors (:meth:`_Batch.take`; the batch's own when every segment is
    active, so no copy). With it: their indices, keys and keep probabilities only (8 + 8 + 4 bytes a
    frame), from which each iteration gathers the frames it draws.
    """
    if keep_p is None and bool(active.all()):
        return (b.x, b.a, b.c, b.length, b.u, b.rows, b.seg, b.key)
    idx = torch.nonzero(active[b.seg]).squeeze(1)
    if keep_p is None:
        return b.take(idx)
    return idx, b.key[idx], keep_p[b.rows[idx]]


def _check_inputs(dec: Decoder, segments: Sequence[Any], labels: Any) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != len(segments) or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError("labels must be one integer class per segment")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= dec.num_classes):
        raise ValueError(f"segment labels must be in 0..{dec.num_classes - 1}")
    lengths = np.empty(len(segments), dtype=np.int64)
    for i, s in enumerate(segments):
        shape = np.shape(s)
        if len(shape) != 2 or shape[0] != dec.dim or shape[1] < 1:
            raise ValueError(f"segment {i}: features must be ({dec.dim}, L>=1), got shape {shape}")
        lengths[i] = shape[1]
    return labels, lengths


def invert_segments(model: Prior | Decoder, segments: Sequence[Any], labels: Any, ips: int | None,
                    config: InvertConfig = InvertConfig(), *, init: np.ndarray | None = None,
                    on_batch: Callable[[dict[str, Any]], None] | None = None) -> Inversion:
    """Fit ``min(ips, L)`` codes to each segment with the decoder frozen (``ips=None``: one per frame).

    model
        A :class:`Prior` (its encoder gives the initial codes) or a bare :class:`Decoder` (then the
        codes start at ``init``, or at 0).
    segments
        Features of each segment, (D, L) arrays (memory-mapped views are fine: a batch's frames are
        read when the batch is processed).
    labels
        Class of each segment.
    init
        Optional (N, d) initial codes, N = total codes; overrides the encoder.
    on_batch
        Called after each batch with ``{"batch", "batches", "segments", "frames", "iterations"}``
        (under ``torchrun``: this rank's batches).

    ``config.max_iters = 0`` returns the initial codes (the ``encoded`` baseline).
    """
    config.check()
    dec, encoder = _parts(model)
    labels, lengths = _check_inputs(dec, segments, labels)
    counts = codes_per_segment(lengths, ips)
    first = offsets_from_counts(counts)
    n_codes = int(first[-1])
    if init is not None:
        init = np.asarray(init, dtype=np.float32)
        if init.shape != (n_codes, dec.latent):
            raise ValueError(f"init codes must have shape {(n_codes, dec.latent)}, got {init.shape}")
    batches = segment_batches(lengths, config.batch_frames)
    grads = [p.requires_grad for p in dec.parameters()]
    was_training = dec.training
    dec.eval().requires_grad_(False)
    try:
        codes_of, stats_of = _my_batches(dec, encoder, segments, labels, lengths, counts, batches, init, config,
                                         on_batch)
    finally:
        for p, g in zip(dec.parameters(), grads):
            p.requires_grad_(g)
        dec.train(was_training)
    all_codes, all_stats = gather_arrays(codes_of, len(batches)), gather_arrays(stats_of, len(batches))
    out = np.zeros((n_codes, dec.latent), dtype=np.float32)
    sse, sum_x, sum_x2, n_frames = 0.0, np.zeros(dec.dim), np.zeros(dec.dim), 0
    for bi, (s0, s1) in enumerate(batches):  # in batch order, whichever rank inverted it
        out[int(first[s0]) : int(first[s1])] = all_codes[bi]
        stats = all_stats[bi]
        sse += float(stats[0])
        n_frames += int(stats[1])
        sum_x += stats[2 : 2 + dec.dim]
        sum_x2 += stats[2 + dec.dim :]
    variance = float((sum_x2 - sum_x**2 / max(n_frames, 1)).sum())
    error = sse / variance if variance > 0 else (0.0 if sse == 0 else math.inf)
    return Inversion(out, counts, error)


def _my_batches(dec: Decoder, encoder: nn.Module | None, segments: Sequence[Any], labels: np.ndarray,
                lengths: np.ndarray, counts: np.ndarray, batches: list[tuple[int, int]], init: np.ndarray | None,
                config: InvertConfig, on_batch: Callable[[dict[str, Any]], None] | None,
                ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Invert this rank's share of the batches (all of them with one process): per batch index, its codes
    and its error sums ``(sse, frames, sum_x (D), sum_x2 (D))`` in float64."""
    device = dec.mean.device
    first = offsets_from_counts(counts)
    mine = joined().share([int(lengths[s0:s1].sum()) for s0, s1 in batches])
    codes_of, stats_of = {}, {}
    for done, bi in enumerate(mine, 1):
        s0, s1 = batches[bi]
        b = _Batch(segments[s0:s1], labels[s0:s1], lengths[s0:s1], counts[s0:s1], device, s0, config.seed)
        r0, r1 = int(first[s0]), int(first[s1])
        if init is not None:
            codes = torch.from_numpy(init[r0:r1].copy()).to(device)
        elif encoder is not None:
            codes = _encoder_init(encoder, b)
        else:
            codes = torch.zeros(b.n_codes, dec.latent, device=device)
        iters = _fit(dec, b, codes, config) if config.max_iters else 0
        codes_of[bi] = codes.cpu().numpy()
        stats_of[bi] = _error_sums(dec, codes, b)
        if on_batch is not None:
            on_batch({"batch": done, "batches": len(mine), "segments": s1 - s0, "frames": int(b.x.shape[0]),
                      "iterations": iters})  # fmt: skip
        del b
    return codes_of, stats_of


@torch.no_grad()
def _error_sums(dec: Decoder, codes: torch.Tensor, b: _Batch) -> np.ndarray:
    """A batch's error sums ``(sse, frames, sum_x (D), sum_x2 (D))`` in float64, summed over blocks of
    :data:`FRAME_BLOCK` frames (a fixed cut, so the sums do not depend on the batch's size beyond it)."""
    dim, dev = b.x.shape[1], b.x.device
    sse = torch.zeros((), dtype=torch.float64, device=dev)
    sum_x = torch.zeros(dim, dtype=torch.float64, device=dev)
    sum_x2 = torch.zeros(dim, dtype=torch.float64, device=dev)
    for s in range(0, b.x.shape[0], FRAME_BLOCK):
        sl = slice(s, s + FRAME_BLOCK)
        x = b.x[sl]
        y = dec(codes[b.rows[sl]], b.a[sl], b.c[sl], b.length[sl], b.u[sl])  # (block, D)
        sse += y.sub_(x).double().square_().sum()
        xd = x.double()
        sum_x += xd.sum(0)
        sum_x2 += xd.square_().sum(0)
    head = torch.stack([sse, torch.tensor(float(b.x.shape[0]), dtype=torch.float64, device=dev)])
    return torch.cat([head, sum_x, sum_x2]).cpu().numpy()


def encode_segments(prior: Prior, segments: Sequence[Any], labels: Any, ips: int,
                    batch_frames: int = 32768) -> Inversion:
    """The ``encoded`` baseline: each code is its chunk's mean encoder output (no inversion)."""
    return invert_segments(prior, segments, labels, ips, InvertConfig(max_iters=0, batch_frames=batch_frames))
