"""``pca``: every frame projected on the top ``storage.pca_dim`` principal components of the kept
frames, with the projection stored (``linear`` decoder). The codes, one per frame, are built on disk
(:mod:`._ondisk`), never whole in memory."""

from __future__ import annotations

import numpy as np
import torch

from tascond_cli.distributed import joined, sum_arrays
from tascond_cli.methods._base import report_to
from tascond_cli.methods._features import FeatureMethod
from tascond_cli.methods._ondisk import build_on_disk


def principal_components(videos: list, k: int, report,
                         device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and the top ``min(k, D)`` principal directions (k, D) of the videos' frames.

    Accumulates the D x D scatter matrix in float64, one video at a time (phase ``pca``; under torchrun
    each rank sums its share of the videos and the sums are all-reduced in float64): with numpy on the
    CPU, with torch on ``device`` when that is a GPU (``auto``: CUDA when present), where the ``F D^2``
    products that dominate the cost run; the same sums up to float64 summation order. Each
    direction's sign is fixed (largest-magnitude entry positive) so the result does not depend on the
    eigen-solver, which runs on the CPU (numpy) either way.
    """
    from tascond_cli.device import resolve_device

    dim = int(videos[0].features().shape[0])
    device = resolve_device(device)
    s1, s2, n = scatter_sums(videos, dim, report, device, on_torch=device.type != "cpu")
    s1, s2, n = sum_arrays(s1, s2, n)
    mean = s1 / n
    cov = s2 / n - np.outer(mean, mean)
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    order = np.argsort(values)[::-1][: min(k, dim)]
    comp = vectors[:, order].T  # (k, D)
    flip = np.sign(comp[np.arange(comp.shape[0]), np.abs(comp).argmax(1)])
    comp *= np.where(flip == 0, 1.0, flip)[:, None]
    return mean, comp


def scatter_sums(videos: list, dim: int, report, device: torch.device,
                 on_torch: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """This rank's sums over its videos' frames: ``sum x`` (D,), ``sum x x^T`` (D, D), both float64, and the
    frame count; the scatter with numpy, or (``on_torch``) with torch on ``device``."""
    s1, n = np.zeros(dim), 0
    s2 = torch.zeros((dim, dim), dtype=torch.float64, device=device) if on_torch else np.zeros((dim, dim))
    for i in joined().mine(len(videos)):  # under torchrun: this rank's share, the sums all-reduced by the caller
        x = np.asarray(videos[i].features(), dtype=np.float64)  # (D, T)
        s1 += x.sum(1)
        if on_torch:
            xt = torch.from_numpy(x).to(device)
            s2.addmm_(xt, xt.T)
            del xt
        else:
            s2 += x @ x.T
        n += x.shape[1]
        report("pca", i + 1, len(videos))
    return s1, (s2.cpu().numpy() if on_torch else s2), n


class PCA(FeatureMethod):
    name = "pca"
    summary = "every frame projected on the kept frames' top principal components"
    stores = "`L` codes per segment: every frame projected on `pca_dim` components"
    decoder_kind = "linear"
    phases = ("sample", "pca", "encode")

    def fit(self, videos, config, report):
        dtype = np.dtype(config.storage.code_dtype)
        mean, components = principal_components(videos, config.storage.pca_dim, report, config.device)
        weights = {"components": components.astype(dtype), "mean": mean.astype(dtype)}
        return weights, {"pca_dim": int(components.shape[0])}

    def encode(self, x, starts, lengths, dtype, weights):
        comp, mu = weights["components"].astype(np.float32), weights["mean"].astype(np.float32)
        return ((x.T - mu) @ comp.T).astype(dtype), lengths

    def code_dim(self, dim, decoder_config):
        return decoder_config["pca_dim"]

    def build(self, dataset, config, *, prior=None, on_phase=None):
        return build_on_disk(self, dataset, config, report_to(on_phase))


METHOD = PCA()
