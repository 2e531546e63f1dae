"""The generator network of ``generator`` and ``random`` archives: its definition, export and restoration.

``G(z, a, c[, L][, u]) -> x`` (docs/format.md, section 6; docs/method.md for how it is trained): the code
``z``, a learned embedding of the class ``a`` and position features of ``c`` (position in the segment),
optionally ``log L`` and ``u`` (position in the chunk) go through an MLP whose output is de-normalised
per channel (``mean + std * net(...)``) and, for ``output="relu"``, clipped at 0.

The archive stores it as plain arrays (:func:`decoder_state`) and it is rebuilt from them, checking
everything, by :func:`load_decoder` (the archive is untrusted input; no pickle anywhere).
:func:`decode_segments` restores segments from their codes by the chunk rule (:mod:`tascond_cli.chunks`).
This module imports torch; the rest of the format package does not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from tascond_cli.chunks import check_layout, frame_layout

__all__ = [
    "ACTIVATIONS",
    "DECODER_ARCH",
    "OUTPUTS",
    "Decoder",
    "conditions",
    "decode_segments",
    "decoder_state",
    "load_decoder",
    "mlp",
    "n_conditions",
    "parameter_count",
    "position_features",
]

DECODER_ARCH = "tascond-mlp-v1"
"""Name of the decoder architecture in :func:`decoder_state`'s config (``"arch"``)."""

ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU}
OUTPUTS = ("relu", "linear")
_LOG_LENGTH_SCALE = 8.0  # log(L) / 8 stays within about [0, 1.5] for any real segment
_CHUNK_FOURIER = 1  # u, sin(pi u), cos(pi u)


# --------------------------------------------------------------------------- the network


def position_features(c: torch.Tensor, fourier: int, length: torch.Tensor | None = None) -> torch.Tensor:
    """``[c, sin(2^k pi c) for k < F, cos(2^k pi c) for k < F, (log L / 8)]`` -> (N, 1 + 2F (+1))."""
    c = c.float()
    feats = [c[:, None]]  # (N, 1)
    if fourier:
        freqs = math.pi * 2.0 ** torch.arange(fourier, device=c.device, dtype=torch.float32)  # (F,)
        ang = c[:, None] * freqs  # (N, F)
        feats += [torch.sin(ang), torch.cos(ang)]
    if length is not None:
        feats.append((torch.log(length.float()) / _LOG_LENGTH_SCALE)[:, None])
    return torch.cat(feats, dim=1)


def n_conditions(fourier: int, length_input: bool, chunk_input: bool) -> int:
    """How many position features :func:`conditions` gives a network built with these settings."""
    return 1 + 2 * fourier + int(length_input) + (1 + 2 * _CHUNK_FOURIER) * int(chunk_input)


def conditions(mod: nn.Module, c: torch.Tensor, length: torch.Tensor | None,
               u: torch.Tensor | None) -> torch.Tensor:
    """Position features of (c, L, u) as the module was built to see them, (N, P)."""
    if mod.length_input and length is None:
        raise ValueError("this model needs segment lengths")
    if mod.chunk_input and u is None:
        raise ValueError("this model needs positions within chunks (u)")
    feats = [position_features(c, mod.fourier, length if mod.length_input else None)]
    if mod.chunk_input:
        feats.append(position_features(u, _CHUNK_FOURIER))
    return torch.cat(feats, dim=1)


def mlp(n_in: int, hidden: int, layers: int, n_out: int, activation: str) -> nn.Sequential:
    """``layers`` hidden ``Linear`` + activation pairs of width ``hidden``, then a ``Linear`` to ``n_out``."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(n_in if i == 0 else hidden, hidden), ACTIVATIONS[activation]()]
    mods.append(nn.Linear(hidden, n_out))
    return nn.Sequential(*mods)


class Decoder(nn.Module):
    """``G(z, a, c[, L][, u]) -> x``: code, class index and positions to a raw feature frame."""

    def __init__(self, dim: int, num_classes: int, latent: int, hidden: int, layers: int, embed: int,
                 fourier: int, length_input: bool, chunk_input: bool, output: str, activation: str) -> None:
        super().__init__()
        self.dim, self.num_classes, self.latent = dim, num_classes, latent
        self.hidden, self.layers, self.embed_dim = hidden, layers, embed
        self.fourier, self.length_input, self.chunk_input = fourier, length_input, chunk_input
        self.output, self.activation = output, activation
        self.embed = nn.Embedding(num_classes, embed)
        n_in = latent + embed + n_conditions(fourier, length_input, chunk_input)
        self.net = mlp(n_in, hidden, layers, dim, activation)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def config(self) -> dict[str, Any]:
        """The JSON-able hyperparameters that, with the weights, rebuild this decoder."""
        return {
            "arch": DECODER_ARCH, "dim": self.dim, "num_classes": self.num_classes, "latent": self.latent,
            "hidden": self.hidden, "layers": self.layers, "embed": self.embed_dim, "fourier": self.fourier,
            "length_input": self.length_input, "chunk_input": self.chunk_input, "output": self.output,
            "activation": self.activation,
        }

    def preact(self, z: torch.Tensor, a: torch.Tensor, c: torch.Tensor, length: torch.Tensor | None = None,
               u: torch.Tensor | None = None) -> torch.Tensor:
        """Raw-space output before the output non-linearity, (N, D)."""
        h = torch.cat([z, self.embed(a), conditions(self, c, length, u)], dim=1)  # (N, d + E + P)
        return self.mean + self.std * self.net(h)  # (N, D)

    def forward(self, z: torch.Tensor, a: torch.Tensor, c: torch.Tensor, length: torch.Tensor | None = None,
                u: torch.Tensor | None = None) -> torch.Tensor:
        y = self.preact(z, a, c, length, u)
        return torch.relu(y) if self.output == "relu" else y

    def error(self, z: torch.Tensor, a: torch.Tensor, c: torch.Tensor, length: torch.Tensor | None,
              u: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        """Fitting error ``prediction - x`` per element, (N, D); censored at 0 for relu output."""
        y = self.preact(z, a, c, length, u)
        if self.output == "relu":
            return torch.where(x > 0, y - x, torch.relu(y))
        return y - x



# --------------------------------------------------------------------------- export / import


def decoder_state(model: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The decoder as ``(config, weights)``: a JSON-able dict and named float32 arrays (copies).

    ``model`` is a :class:`Decoder` or holds one as ``.decoder`` (a trained prior).
    """
    dec = model if isinstance(model, Decoder) else model.decoder
    weights = {name: t.detach().cpu().float().numpy().copy() for name, t in dec.state_dict().items()}
    return dec.config(), weights


_CONFIG_INTS = {  # name: (min, max); bounds keep an untrusted config from asking for absurd tensors
    "dim": (1, 1 << 16), "num_classes": (1, 1 << 16), "latent": (1, 1 << 14), "hidden": (1, 1 << 14),
    "layers": (1, 16), "embed": (1, 1 << 12), "fourier": (0, 16),
}
_CONFIG_BOOLS = ("length_input", "chunk_input")


def _expected_shapes(cfg: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    n_in = cfg["latent"] + cfg["embed"] + n_conditions(cfg["fourier"], cfg["length_input"], cfg["chunk_input"])
    shapes: dict[str, tuple[int, ...]] = {"embed.weight": (cfg["num_classes"], cfg["embed"]),
                                          "mean": (cfg["dim"],), "std": (cfg["dim"],)}
    width = n_in
    for i in range(cfg["layers"]):  # nn.Sequential: Linear at 2i, activation at 2i + 1
        shapes[f"net.{2 * i}.weight"] = (cfg["hidden"], width)
        shapes[f"net.{2 * i}.bias"] = (cfg["hidden"],)
        width = cfg["hidden"]
    shapes[f"net.{2 * cfg['layers']}.weight"] = (cfg["dim"], width)
    shapes[f"net.{2 * cfg['layers']}.bias"] = (cfg["dim"],)
    return shapes


def parameter_count(config: Mapping[str, Any]) -> int:
    """How many numbers :func:`decoder_state` stores for a decoder of this config (its ``config()``):
    every weight, bias, the class embedding and the per-channel mean and std, counted from the
    network's definition without building it (byte budgets, docs/method.md)."""
    return int(sum(math.prod(shape) for shape in _expected_shapes(config).values()))


def load_decoder(config: Mapping[str, Any], weights: Mapping[str, Any]) -> Decoder:
    """Rebuild a decoder from :func:`decoder_state`'s output, trusting nothing.

    Raises ValueError naming the problem when the config has a missing, unknown or out-of-range
    entry, or a weight is missing, unexpected, not a float array, wrongly shaped or not finite.
    Returns the decoder in eval mode on the CPU, float32.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"decoder config must be a mapping, got {type(config).__name__}")
    expected_keys = {"arch", *_CONFIG_INTS, *_CONFIG_BOOLS, "output", "activation"}
    missing, unknown = expected_keys - set(config), set(config) - expected_keys
    if missing:
        raise ValueError(f"decoder config lacks {', '.join(sorted(missing))}")
    if unknown:
        raise ValueError(f"decoder config has unknown entries {', '.join(sorted(map(str, unknown)))}")
    if config["arch"] != DECODER_ARCH:
        raise ValueError(f"decoder arch must be {DECODER_ARCH!r}, got {config['arch']!r}")
    cfg: dict[str, Any] = {}
    for name, (lo, hi) in _CONFIG_INTS.items():
        v = config[name]
        if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)) or not lo <= v <= hi:
            raise ValueError(f"decoder config {name} must be an integer in [{lo}, {hi}], got {v!r}")
        cfg[name] = int(v)
    for name in _CONFIG_BOOLS:
        if not isinstance(config[name], (bool, np.bool_)):
            raise ValueError(f"decoder config {name} must be true or false, got {config[name]!r}")
        cfg[name] = bool(config[name])
    if config["output"] not in OUTPUTS:
        raise ValueError(f"decoder config output must be one of {', '.join(OUTPUTS)}, got {config['output']!r}")
    if config["activation"] not in ACTIVATIONS:
        raise ValueError(f"decoder config activation must be one of {', '.join(ACTIVATIONS)}, "
                         f"got {config['activation']!r}")
    cfg["output"], cfg["activation"] = str(config["output"]), str(config["activation"])

    if not isinstance(weights, Mapping):
        raise ValueError(f"decoder weights must be a mapping, got {type(weights).__name__}")
    shapes = _expected_shapes(cfg)
    missing, unknown = set(shapes) - set(weights), set(weights) - set(shapes)
    if missing:
        raise ValueError(f"decoder weights lack {', '.join(sorted(missing))}")
    if unknown:
        raise ValueError(f"decoder weights have unexpected {', '.join(sorted(map(str, unknown)))}")
    state = {}
    for name, shape in shapes.items():
        w = weights[name]
        if not isinstance(w, np.ndarray) or w.dtype.kind != "f" or w.dtype.itemsize not in (2, 4, 8):
            raise ValueError(f"decoder weight {name} must be a float16/32/64 array, got "
                             f"{getattr(w, 'dtype', type(w).__name__)}")
        if w.shape != shape:
            raise ValueError(f"decoder weight {name} has shape {w.shape}, expected {shape}")
        w32 = w.astype(np.float32)
        if not np.isfinite(w32).all():
            raise ValueError(f"decoder weight {name} has non-finite values")
        state[name] = torch.from_numpy(np.ascontiguousarray(w32))
    if (state["std"] <= 0).any():
        raise ValueError("decoder weight std must be positive")
    with torch.random.fork_rng(devices=[]):  # the initial values are overwritten; leave the RNG alone
        dec = Decoder(cfg["dim"], cfg["num_classes"], cfg["latent"], cfg["hidden"], cfg["layers"], cfg["embed"],
                      cfg["fourier"], cfg["length_input"], cfg["chunk_input"], cfg["output"], cfg["activation"])
    dec.load_state_dict(state, strict=True)
    return dec.eval()


# --------------------------------------------------------------------------- restoration


@torch.no_grad()
def decode_segments(decoder: Decoder, labels: Any, lengths: Any, codes: Any, counts: Any,
                    batch_frames: int = 32768) -> np.ndarray:
    """Restore consecutive segments at their exact lengths: a (D, sum(lengths)) float32 array.

    Frame ``t`` of a segment of ``L`` frames with ``n`` codes uses code ``i = floor(((t+1) n - 1) / L)``
    of that segment, position ``c = (t + 0.5) / L`` and (for ``chunk_input`` decoders) position
    ``u = (t - lo + 0.5) / (hi - lo)`` in its chunk ``[lo, hi) = [floor(iL/n), floor((i+1)L/n))``.
    Memory is bounded by ``batch_frames`` frames at a time (plus the output).
    """
    lengths, counts = check_layout(lengths, counts)
    labels = np.asarray(labels)
    if labels.shape != lengths.shape or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError("labels must be one integer class per segment")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= decoder.num_classes):
        raise ValueError(f"segment labels must be in 0..{decoder.num_classes - 1}")
    codes = np.asarray(codes, dtype=np.float32)
    if codes.shape != (int(counts.sum()), decoder.latent):
        raise ValueError(f"codes must have shape {(int(counts.sum()), decoder.latent)}, got {codes.shape}")
    if batch_frames < 1:
        raise ValueError("batch_frames must be positive")
    device = decoder.mean.device
    seg, rows, c, u = frame_layout(lengths, counts)
    total = seg.shape[0]
    out = np.empty((decoder.dim, total), dtype=np.float32)
    z_all = torch.from_numpy(codes).to(device)
    was_training = decoder.training
    decoder.eval()
    try:
        for s in range(0, total, batch_frames):
            sl = slice(s, min(total, s + batch_frames))
            idx = torch.from_numpy(rows[sl]).to(device)
            a = torch.from_numpy(labels[seg[sl]]).to(device)
            cc = torch.from_numpy(c[sl].astype(np.float32)).to(device)
            length = torch.from_numpy(lengths[seg[sl]]).to(device)
            uu = torch.from_numpy(u[sl].astype(np.float32)).to(device)
            out[:, sl] = decoder(z_all[idx], a, cc, length, uu).float().cpu().numpy().T
    finally:
        decoder.train(was_training)
    return out
