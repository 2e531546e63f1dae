"""Signal helpers of the feature generator: smoothing along time, unit vectors, action names, segments.

Shared by :mod:`~tascond_cli.synth.features` and :mod:`~tascond_cli.synth.mechanisms`; pure functions of
their arguments (randomness comes in as a seeded generator).
"""

from __future__ import annotations

import numpy as np


def gauss_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.exp(-0.5 * (x / sigma) ** 2)


def convolve_time(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'Valid' convolution of every column of ``x`` (N, L) with ``kernel`` (K,), via FFT: (N-K+1, L)."""
    n, k = x.shape[0], kernel.shape[0]
    size = 1 << int(np.ceil(np.log2(n + k - 1)))
    fx = np.fft.rfft(x, size, axis=0)
    fk = np.fft.rfft(kernel, size)
    full = np.fft.irfft(fx * fk[:, None], size, axis=0)
    return full[k - 1 : n]


def smooth_noise(rng: np.random.Generator, t: int, dims: int, sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise (t, dims) with unit variance, correlated over ``sigma`` frames."""
    if sigma < 0.5:
        return rng.standard_normal((t, dims))
    kernel = gauss_kernel(sigma)
    kernel /= np.sqrt(np.sum(kernel**2))
    white = rng.standard_normal((t + kernel.size - 1, dims))
    return convolve_time(white, kernel)


def blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur along time (axis 0), edges extended."""
    if sigma < 0.5 or x.shape[0] < 2:
        return x
    kernel = gauss_kernel(sigma)
    kernel /= kernel.sum()
    r = kernel.size // 2
    padded = np.concatenate([np.repeat(x[:1], r, axis=0), x, np.repeat(x[-1:], r, axis=0)])
    return convolve_time(padded, kernel)


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal(n)
    return v * (np.sqrt(n) / max(np.linalg.norm(v), 1e-12))  # exactly unit variance per dimension


def split_name(name: str) -> tuple[str, str]:
    """(verb, object) of an action name such as ``pour_milk`` or ``place_tomato_into_bowl``."""
    parts = name.split("_")
    return parts[0], "_".join(parts[1:]) if len(parts) > 1 else ""


def segments(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class of each segment (S,), segment of each frame (T,), position of each frame in its segment in [0, 1])."""
    t = labels.shape[0]
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [t])))
    seg = np.repeat(np.arange(starts.size), lengths)  # (T,)
    pos = (np.arange(t) - starts[seg]) / np.maximum(lengths[seg] - 1, 1)  # (T,) in [0, 1]
    return labels[starts], seg, pos
