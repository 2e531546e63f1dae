"""ASFormer: transformer encoder-decoder for action segmentation, trained with the MS-TCN loss.

Architecture follows Yi, Wen & Jiang, "ASFormer: Transformer for Action Segmentation", BMVC 2021, and
the authors' code (github.com/ChinaYi/ASFormer, ``model.py`` / ``main.py``), in the configuration
their ``main.py`` runs (``sliding_att`` attention, one head, ``r1 = r2 = 2``):

- encoder: channel masking of the input (whole feature channels dropped with rate ``channel_masking_rate``,
  ``Dropout2d``-style, training only), 1x1 conv to ``num_f_maps``, ``num_layers`` attention modules with
  dilation / attention block ``2**i``, 1x1 conv to class logits (masked); alpha = 1;
- attention module: ``ff = ReLU(dilated conv(x))`` (kernel 3, ``padding = dilation``),
  ``out = alpha * att(instance_norm(ff), value_source) + ff``, 1x1 conv, dropout, ``(x + out) * mask``;
- attention layer: 1x1 convs to queries / keys (``F // r1`` channels) and values (``F // r2``), from the
  module's own (normalised) features in the encoder; in a decoder the values come from the previous
  stage's (masked) feature (cross-attention); scaled dot product (``1/sqrt(F // r1)``) over local windows,
  ReLU, 1x1 conv back to ``F = num_f_maps`` channels, masked;
- local ("sliding") window: the sequence is cut into blocks of ``bl = 2**i`` query frames; block ``b``
  (frames ``b*bl .. b*bl+bl-1``) attends the keys ``b*bl - bl//2 .. b*bl - bl//2 + 2*bl - 2``: the
  ``bl + 2*(bl//2)``-frame window centred on the block, less its last column when ``bl >= 2``, because the
  authors' window mask (a loop setting columns ``i : i + bl`` of every row, for ``i < bl``) lets through
  columns ``0 .. 2*bl - 2`` only; this is replicated (``2*bl - 1`` keys per block, every query of a block
  sees the same keys). Keys before frame 0, after the end and on padded frames are excluded from the
  softmax;
- decoders (``num_decoders``, 3 in the paper): each reads ``softmax(previous logits) * mask`` through a
  1x1 conv, runs ``num_layers`` attention modules cross-attending to the previous stage's feature, with
  alpha = ``exp(-3 * s)`` for decoder ``s = 0, 1, ...`` (the authors' ``exponential_descrease``), and a
  1x1 conv to logits (masked); its feature feeds the next decoder.

Training recipe (``main.py`` / ``Trainer.train`` of the authors' code; exported as :data:`RECIPE`, with
:func:`asformer_optimizer` building the optimiser and scheduler): Adam, lr 5e-4 (1e-4 for Breakfast),
weight decay 1e-5, batch size 1, 120 epochs, and a learning-rate scheduler: ``ReduceLROnPlateau(mode="min",
factor=0.5, patience=3)`` stepped once per epoch on the epoch's summed training loss; the model is
evaluated after the last epoch. ``channel_masking_rate`` is 0.3 (0.5 for GTEA); 50Salads features are
subsampled by 2 (as MS-TCN). The loss is the MS-TCN loss (:func:`tascond_cli.evaluate.mstcn.mstcn_loss`:
cross-entropy + 0.15 * truncated T-MSE, summed over the 1 + ``num_decoders`` stages).

Differences from the authors' code (none changes the computation for an unpadded video, which is the only
case their batch-size-1 code runs, except the O(1e-6) softmax leakage noted below):

- batches of padded videos are supported (the authors' sliding attention asserts batch size 1). To make a
  padded video's outputs equal those of the video run alone, the instance norm takes its statistics over
  the valid frames only, and the outputs of the encoder's / decoders' input 1x1 convs are multiplied by
  the mask (otherwise the first dilated conv would read the conv bias on padded frames);
- excluded keys get exactly zero attention (scores set to the dtype's minimum before the softmax, weights
  multiplied by the key mask after it, so a window with no valid key yields 0, not NaN); the authors add
  ``log(mask + 1e-6)`` to the scores and multiply by the mask after the softmax, which leaves the valid
  weights summing to 1 - O(1e-6);
- the window is computed with pad + unfold into blocks (no Python loop over blocks);
- dropout uses :class:`tascond_cli.evaluate.mstcn.Dropout` (same distribution as ``nn.Dropout``);
- parts of the authors' file that their model does not use (multi-head attention, positional encoding,
  ``normal_att`` / ``block_att``) are not implemented. Initialisation is PyTorch's default, as theirs.

Masks are ``(B, C, T)`` as in the MS-TCN batch generator; only ``mask[:, 0:1]`` is read, so ``(B, 1, T)``
works as well, and ``None`` means "no padding".
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .mstcn import Dropout, _time_mask

RECIPE: dict[str, Any] = {
    "epochs": 120,
    "lr": 5e-4,
    "weight_decay": 1e-5,
    "batch_size": 1,
    "optimizer": "adam",
    "scheduler": "reduce_lr_on_plateau",  # stepped once per epoch on the summed epoch training loss
    "scheduler_mode": "min",
    "scheduler_factor": 0.5,
    "scheduler_patience": 3,
    "channel_masking_rate": 0.3,
}
"""The authors' training recipe (``main.py`` defaults)."""

DATASET_OVERRIDES: dict[str, dict[str, Any]] = {
    "breakfast": {"lr": 1e-4},
    "gtea": {"channel_masking_rate": 0.5},
    "50salads": {"sample_rate": 2},
}
"""Per-dataset changes to :data:`RECIPE` in the authors' ``main.py`` (sample rate 1 elsewhere)."""


def asformer_optimizer(
    params: Any, lr: float | None = None, weight_decay: float | None = None
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.ReduceLROnPlateau]:
    """Adam and ``ReduceLROnPlateau`` as in the authors' trainer; call ``scheduler.step(epoch_loss)`` per epoch.

    ``lr`` / ``weight_decay`` default to :data:`RECIPE`'s.
    """
    optimizer = torch.optim.Adam(
        params,
        lr=RECIPE["lr"] if lr is None else lr,
        weight_decay=RECIPE["weight_decay"] if weight_decay is None else weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode=RECIPE["scheduler_mode"],
        factor=RECIPE["scheduler_factor"],
        patience=RECIPE["scheduler_patience"],
    )
    return optimizer, scheduler


def decoder_alpha(index: int, p: float = 3.0) -> float:
    """Attention weight of decoder ``index`` (0-based): ``exp(-p * index)``."""
    return math.exp(-p * index)


def _masked_instance_norm(x: torch.Tensor, mask: torch.Tensor | None, eps: float = 1e-5) -> torch.Tensor:
    """Instance norm (no affine, biased variance) with statistics over the valid frames only."""
    if mask is None:  # F.instance_norm, which however refuses T = 1
        var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)  # (B, F, 1) each
        return (x - mean) * torch.rsqrt(var + eps)  # (B, F, T)
    count = mask.sum(dim=-1, keepdim=True).clamp_min(1.0)  # (B, 1, 1)
    mean = (x * mask).sum(dim=-1, keepdim=True) / count  # (B, F, 1)
    centred = x - mean  # (B, F, T)
    var = (centred.square() * mask).sum(dim=-1, keepdim=True) / count  # (B, F, 1)
    return centred * torch.rsqrt(var + eps)


def sliding_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, block: int
) -> torch.Tensor:
    """Block-local scaled dot-product attention of the authors' ``sliding_att``.

    Parameters
    ----------
    q, k : torch.Tensor
        Queries and keys, shape (B, Ck, T).
    v : torch.Tensor
        Values, shape (B, Cv, T).
    mask : torch.Tensor or None
        (B, 1, T) valid-frame mask (keys on frames with 0 are excluded); None for no padding.
    block : int
        Block length ``bl``; block ``b`` attends keys ``b*bl - bl//2 .. b*bl - bl//2 + 2*bl - 2``.

    Returns
    -------
    torch.Tensor
        Attention output, shape (B, Cv, T); 0 for a query with no valid key in its window.
    """
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    b, ck, t = q.shape
    cv = v.shape[1]
    nb = -(-t // block)  # number of query blocks
    half = block // 2
    width = 2 * block - 1  # keys per block the authors' window mask lets through
    left, right = half, nb * block + block - 1 - half - t  # key padding: (nb - 1) * block + width frames in all
    qb = F.pad(q, (0, nb * block - t)).view(b, ck, nb, block).permute(0, 2, 3, 1)  # (B, nb, bl, Ck)
    kw = F.pad(k, (left, right)).unfold(-1, width, block).transpose(1, 2)  # (B, nb, Ck, W)
    vw = F.pad(v, (left, right)).unfold(-1, width, block).transpose(1, 2)  # (B, nb, Cv, W)
    valid = q.new_ones((b, 1, t)) if mask is None else mask.to(q.dtype)  # (B, 1, T)
    kmask = F.pad(valid, (left, right)).unfold(-1, width, block).transpose(1, 2)  # (B, nb, 1, W) in {0, 1}
    scores = torch.matmul(qb, kw) * (1.0 / math.sqrt(ck))  # (B, nb, bl, W)
    scores = scores.masked_fill(kmask == 0, torch.finfo(scores.dtype).min)
    att = torch.softmax(scores, dim=-1) * kmask  # (B, nb, bl, W); all-zero rows where no key is valid
    out = torch.matmul(vw, att.transpose(-1, -2))  # (B, nb, Cv, bl)
    return out.permute(0, 2, 1, 3).reshape(b, cv, nb * block)[:, :, :t]  # (B, Cv, T)


class SlidingAttention(nn.Module):
    """The authors' ``AttLayer`` (``sliding_att``): 1x1 projections, local attention, ReLU, 1x1 conv out."""

    def __init__(self, channels: int, block: int, r1: int = 2, r2: int = 2) -> None:
        super().__init__()
        if channels // r1 < 1 or channels // r2 < 1:
            raise ValueError(f"channels ({channels}) // r1 ({r1}) and // r2 ({r2}) must be >= 1")
        self.block = block
        self.query_conv = nn.Conv1d(channels, channels // r1, 1)
        self.key_conv = nn.Conv1d(channels, channels // r1, 1)
        self.value_conv = nn.Conv1d(channels, channels // r2, 1)
        self.conv_out = nn.Conv1d(channels // r2, channels, 1)

    def forward(self, x: torch.Tensor, source: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
        """``x`` (B, F, T) gives queries and keys, ``source`` (B, F, T) the values (``x`` when None)."""
        q = self.query_conv(x)  # (B, F/r1, T)
        k = self.key_conv(x)  # (B, F/r1, T)
        v = self.value_conv(x if source is None else source)  # (B, F/r2, T)
        out = sliding_window_attention(q, k, v, mask, self.block)  # (B, F/r2, T)
        out = self.conv_out(F.relu(out))  # (B, F, T)
        return out if mask is None else out * mask


class AttModule(nn.Module):
    """Dilated conv feed-forward + alpha-weighted local attention, 1x1 conv, dropout, residual, masked."""

    def __init__(self, dilation: int, channels: int, r1: int, r2: int, alpha: float, dropout: float = 0.5) -> None:
        super().__init__()
        self.feed_forward = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.att_layer = SlidingAttention(channels, dilation, r1, r2)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = Dropout(dropout)
        self.alpha = alpha

    def forward(self, x: torch.Tensor, source: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
        ff = F.relu(self.feed_forward(x))  # (B, F, T)
        out = self.alpha * self.att_layer(_masked_instance_norm(ff, mask), source, mask) + ff  # (B, F, T)
        out = self.dropout(self.conv_1x1(out))  # (B, F, T)
        out = x + out
        return out if mask is None else out * mask  # (B, F, T)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:.4g}"


class ChannelMasking(nn.Module):
    """Drop whole input channels (per sample) with probability ``p`` in training, scaling kept ones by 1/(1-p).

    The same as the authors' ``Dropout2d`` on ``x.unsqueeze(2)``.
    """

    def __init__(self, p: float = 0.3) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"channel masking rate must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], x.shape[1], 1, device=x.device).ge_(self.p).to(x.dtype)  # (B, D, 1)
        return x * keep.mul_(1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Encoder(nn.Module):
    """Channel masking, 1x1 conv in, self-attention modules, 1x1 conv to logits."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        num_layers: int,
        num_f_maps: int,
        r1: int,
        r2: int,
        channel_masking_rate: float,
        dropout: float,
    ) -> None:
        super().__init__()
        self.channel_masking = ChannelMasking(channel_masking_rate)
        self.conv_1x1 = nn.Conv1d(in_dim, num_f_maps, 1)
        self.layers = nn.ModuleList(
            [AttModule(2**i, num_f_maps, r1, r2, alpha=1.0, dropout=dropout) for i in range(num_layers)]
        )
        self.conv_out = nn.Conv1d(num_f_maps, num_classes, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D, T) features -> logits (B, C, T) and feature (B, F, T)."""
        feature = self.conv_1x1(self.channel_masking(x))  # (B, F, T)
        if mask is not None:
            feature = feature * mask
        for layer in self.layers:
            feature = layer(feature, None, mask)  # (B, F, T)
        out = self.conv_out(feature)  # (B, C, T)
        return (out if mask is None else out * mask), feature


class Decoder(nn.Module):
    """1x1 conv in, cross-attention modules (values from the previous stage's feature), 1x1 conv to logits."""

    def __init__(
        self, num_classes: int, num_layers: int, num_f_maps: int, r1: int, r2: int, alpha: float, dropout: float
    ) -> None:
        super().__init__()
        self.conv_1x1 = nn.Conv1d(num_classes, num_f_maps, 1)
        self.layers = nn.ModuleList(
            [AttModule(2**i, num_f_maps, r1, r2, alpha=alpha, dropout=dropout) for i in range(num_layers)]
        )
        self.conv_out = nn.Conv1d(num_f_maps, num_classes, 1)

    def forward(
        self, x: torch.Tensor, source: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, T) masked probabilities and (B, F, T) masked previous feature -> logits, feature."""
        feature = self.conv_1x1(x)  # (B, F, T)
        if mask is not None:
            feature = feature * mask
        for layer in self.layers:
            feature = layer(feature, source, mask)  # (B, F, T)
        out = self.conv_out(feature)  # (B, C, T)
        return (out if mask is None else out * mask), feature


class ASFormer(nn.Module):
    """ASFormer (the authors' ``MyTransformer``): an encoder and ``num_decoders`` decoders.

    Parameters
    ----------
    in_dim : int
        Feature channels D.
    num_classes : int
        Number of action classes C.
    num_decoders : int
        Decoders (>= 0); the model has ``1 + num_decoders`` stages.
    num_layers : int
        Attention modules per stage (dilations / attention blocks 1 .. 2**(num_layers-1)).
    num_f_maps : int
        Hidden channels F.
    r1, r2 : int
        Channel reduction of queries / keys (``F // r1``) and of values (``F // r2``).
    channel_masking_rate : float
        Probability of dropping a whole input channel (training only).
    dropout : float
        Dropout probability inside each attention module.
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        num_decoders: int = 3,
        num_layers: int = 10,
        num_f_maps: int = 64,
        r1: int = 2,
        r2: int = 2,
        channel_masking_rate: float = 0.3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if in_dim < 1 or num_classes < 1:
            raise ValueError("in_dim and num_classes must be >= 1")
        if num_decoders < 0:
            raise ValueError(f"num_decoders must be >= 0, got {num_decoders}")
        if num_layers < 1 or num_f_maps < 1:
            raise ValueError("num_layers and num_f_maps must be >= 1")
        if r1 < 1 or r2 < 1 or num_f_maps // r1 < 1 or num_f_maps // r2 < 1:
            raise ValueError(f"need r1, r2 >= 1 and num_f_maps // r1, num_f_maps // r2 >= 1, got {r1}, {r2}")
        self.in_dim = in_dim
        self.num_classes = num_classes
        self.num_stages = 1 + num_decoders
        self.encoder = Encoder(in_dim, num_classes, num_layers, num_f_maps, r1, r2, channel_masking_rate, dropout)
        self.decoders = nn.ModuleList(
            [
                Decoder(num_classes, num_layers, num_f_maps, r1, r2, decoder_alpha(s), dropout)
                for s in range(num_decoders)
            ]
        )

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-stage logits.

        Parameters
        ----------
        inputs : torch.Tensor
            Features, shape (B, D, T).
        mask : torch.Tensor or None
            (B, C, T) (or (B, 1, T)) with 1 on valid frames, 0 on padding; None for unpadded input.

        Returns
        -------
        torch.Tensor
            Logits of every stage, shape (1 + num_decoders, B, C, T), 0 on padded frames.
        """
        m = _time_mask(mask)  # (B, 1, T) or None
        if m is not None:
            m = m.to(inputs.dtype)
        out, feature = self.encoder(inputs, m)  # (B, C, T), (B, F, T)
        outputs = [out]
        for decoder in self.decoders:
            probs = F.softmax(out, dim=1)  # (B, C, T)
            if m is not None:
                probs, feature = probs * m, feature * m
            out, feature = decoder(probs, feature, m)  # (B, C, T), (B, F, T)
            outputs.append(out)
        return torch.stack(outputs, dim=0)  # (S, B, C, T)
