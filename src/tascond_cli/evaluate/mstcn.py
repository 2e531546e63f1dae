"""MS-TCN: multi-stage temporal convolutional network for action segmentation, and its loss.

Architecture and loss follow Farha & Gall, "MS-TCN: Multi-Stage Temporal Convolutional Network for
Action Segmentation", CVPR 2019, and its official code (github.com/yabufarha/ms-tcn, ``model.py``):

- a stage is a 1x1 conv to ``num_f_maps`` channels, ``num_layers`` dilated residual layers
  (dilation ``2**i``, kernel 3, ``padding = dilation``, ReLU, 1x1 conv, dropout, residual, mask multiply)
  and a 1x1 conv to ``num_classes`` logits, masked;
- stage 1 reads the features, every later stage the (masked) softmax of the previous stage's logits;
- loss per stage: cross-entropy (``ignore_index=-100``) plus ``0.15 *`` the mean of the truncated
  (clamped to ``[0, 16]``) squared difference of frame-to-frame log-probabilities, the earlier frame
  detached (the "T-MSE" smoothing loss).

Masks are ``(B, C, T)`` as in the official batch generator; only ``mask[:, 0:1]`` is read, so a ``(B, 1, T)``
mask works as well and ``None`` means "no padding" (all ones).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _time_mask(mask: torch.Tensor | None) -> torch.Tensor | None:
    """``mask[:, 0:1, :]`` or None."""
    return None if mask is None else mask[:, 0:1, :]  # (B, 1, T)


class Dropout(nn.Module):
    """Inverted dropout with the same distribution as ``nn.Dropout``, but a faster mask on CPU.

    ``nn.Dropout`` draws its mask with ``bernoulli_``, which on CPU costs several times a uniform draw;
    thresholding ``rand_like`` in place is about 2x faster forward + backward and is 0/1 * 1/(1-p) alike.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))  # (B, F, T) in {0, 1/(1-p)}
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DilatedResidualLayer(nn.Module):
    """Dilated conv (kernel 3) -> ReLU -> 1x1 conv -> dropout, added to the input, masked."""

    def __init__(self, dilation: int, num_f_maps: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv_dilated = nn.Conv1d(num_f_maps, num_f_maps, 3, padding=dilation, dilation=dilation)
        self.conv_1x1 = nn.Conv1d(num_f_maps, num_f_maps, 1)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        out = F.relu(self.conv_dilated(x))  # (B, F, T)
        out = self.dropout(self.conv_1x1(out))  # (B, F, T)
        out = x + out
        return out if mask is None else out * mask  # (B, F, T)


class SingleStageModel(nn.Module):
    """One MS-TCN stage: 1x1 conv in, dilated residual layers, 1x1 conv to class logits."""

    def __init__(self, num_layers: int, num_f_maps: int, in_dim: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv_1x1 = nn.Conv1d(in_dim, num_f_maps, 1)
        self.layers = nn.ModuleList([DilatedResidualLayer(2**i, num_f_maps, dropout) for i in range(num_layers)])
        self.conv_out = nn.Conv1d(num_f_maps, num_classes, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        out = self.conv_1x1(x)  # (B, F, T)
        for layer in self.layers:
            out = layer(out, mask)  # (B, F, T)
        out = self.conv_out(out)  # (B, C, T)
        return out if mask is None else out * mask


class MSTCN(nn.Module):
    """Multi-stage TCN (the official ``MultiStageModel``).

    Parameters
    ----------
    in_dim : int
        Feature channels D.
    num_classes : int
        Number of action classes C.
    num_stages, num_layers, num_f_maps : int
        Stages, dilated layers per stage (dilations 1 .. 2**(num_layers-1)), hidden channels.
    dropout : float
        Dropout probability inside each residual layer.
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        num_stages: int = 4,
        num_layers: int = 10,
        num_f_maps: int = 64,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if num_stages < 1 or num_layers < 1:
            raise ValueError("num_stages and num_layers must be >= 1")
        self.in_dim = in_dim
        self.num_classes = num_classes
        self.stage1 = SingleStageModel(num_layers, num_f_maps, in_dim, num_classes, dropout)
        self.stages = nn.ModuleList(
            [SingleStageModel(num_layers, num_f_maps, num_classes, num_classes, dropout) for _ in range(num_stages - 1)]
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-stage logits.

        Parameters
        ----------
        x : torch.Tensor
            Features, shape (B, D, T).
        mask : torch.Tensor or None
            (B, C, T) (or (B, 1, T)) with 1 on valid frames, 0 on padding; None for unpadded input.

        Returns
        -------
        torch.Tensor
            Logits of every stage, shape (num_stages, B, C, T).
        """
        m = _time_mask(mask)  # (B, 1, T) or None
        out = self.stage1(x, m)  # (B, C, T)
        outputs = [out]
        for stage in self.stages:
            probs = F.softmax(out, dim=1)  # (B, C, T)
            out = stage(probs if m is None else probs * m, m)  # (B, C, T)
            outputs.append(out)
        return torch.stack(outputs, dim=0)  # (S, B, C, T)


def mstcn_loss(
    outputs: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None,
    num_classes: int,
    lambda_smooth: float = 0.15,
) -> torch.Tensor:
    """Official MS-TCN training loss, summed over stages.

    Parameters
    ----------
    outputs : torch.Tensor
        Stage logits, shape (S, B, C, T).
    target : torch.Tensor
        Long class indices, shape (B, T); -100 marks padding (ignored).
    mask : torch.Tensor or None
        (B, C, T) (or (B, 1, T)) valid-frame mask; None for unpadded input.
    num_classes : int
        C; checked against ``outputs``.
    lambda_smooth : float
        Weight of the truncated smoothing loss (0.15 in the paper).

    Returns
    -------
    torch.Tensor
        Scalar loss: sum over stages of ``CE + lambda * mean(clamp(dlogp**2, 0, 16) * mask)``, where the mean
        runs over all B * C * (T - 1) entries, padding included, exactly as in the official code.
    """
    if outputs.shape[2] != num_classes:
        raise ValueError(f"outputs have {outputs.shape[2]} classes, expected {num_classes}")
    m = _time_mask(mask)  # (B, 1, T) or None
    loss = outputs.new_zeros(())
    for p in outputs:  # p: (B, C, T)
        logp = F.log_softmax(p, dim=1)  # (B, C, T); per-frame, so equal to the official two calls
        loss = loss + F.nll_loss(logp, target, ignore_index=-100)  # == cross_entropy(p, target)
        diff = (logp[:, :, 1:] - logp.detach()[:, :, :-1]) ** 2  # (B, C, T-1)
        smooth = torch.clamp(diff, min=0, max=16)
        if m is not None:
            smooth = smooth * m[:, :, 1:]
        loss = loss + lambda_smooth * smooth.mean()
    return loss
