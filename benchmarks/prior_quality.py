"""How well does the generative prior + network inversion reconstruct real segments?

Synthesizes a small Breakfast-like dataset (``SynthConfig(profile="breakfast", videos=V, dim=D,
subsample=S)``), trains a prior on its train split for each decoder variant, inverts every train
segment with ``ips`` codes, and prints the reconstruction error (fraction of variance unexplained,
see ``tascond_cli.condense.invert``) of:

- ``inverted``: our inversion (decoder frozen, codes fitted);
- ``encoded``: the inversion's starting point, each code = its chunk's mean encoder output;
- ``mean``: each segment's mean feature repeated (the paper's Mean baseline, D floats per segment);
- ``chunk-mean``: each chunk's mean feature (an oracle with as many codes, but D-dim ones).

plus timings: prior training steps/s, inversion (frames inverted per second, end to end, and the
most iterations any batch ran) and decoding frames/s.

Run from the repository root (CPU, single thread by default)::

    PYTHONPATH=src python benchmarks/prior_quality.py --quick
    PYTHONPATH=src python benchmarks/prior_quality.py                 # the defaults below
    PYTHONPATH=src python benchmarks/prior_quality.py --variants default,latent256
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from tascond_cli.chunks import chunk_bounds, codes_per_segment  # noqa: E402
from tascond_cli.condense import (  # noqa: E402
    InvertConfig,
    PriorConfig,
    decode_segments,
    encode_segments,
    invert_segments,
    train_prior,
)
from tascond_cli.data import open_dataset  # noqa: E402
from tascond_cli.synth import FeatureModel, SynthConfig, synthesize  # noqa: E402

VARIANTS: dict[str, dict] = {
    "default": {},  # chunk training at the inversion's ips, position within the chunk, latent 64
    "no-chunk-pos": {"chunk_input": False},
    "frame-vae": {"ips": 0, "chunk_input": False},
    "latent32": {"latent": 32},
    "latent128": {"latent": 128},
    "latent256": {"latent": 256},
    "nofourier": {"fourier": 0},
    "hidden256": {"hidden": 256},
    "hidden1024": {"hidden": 1024},
    "layers3": {"layers": 3},
    "length": {"length_input": True},
    "linear-out": {"output": "linear"},
    "channel-loss": {"loss_space": "channel"},
    "beta0.1": {"beta": 0.1},
    "beta0.001": {"beta": 0.001},
    # the paper as we read it: single frames, latent 256, position c only, linear output, beta 1
    "paper": {"ips": 0, "chunk_input": False, "latent": 256, "fourier": 0, "output": "linear", "beta": 1.0},
}


def baselines(segments: list[np.ndarray], ips: int) -> dict[str, float]:
    """Mean and chunk-mean errors (fraction of variance unexplained)."""
    x = np.concatenate(segments, axis=1).astype(np.float64)  # (D, F)
    var = float(((x - x.mean(1, keepdims=True)) ** 2).sum())
    sse_mean = sse_chunk = 0.0
    for s in segments:
        s = s.astype(np.float64)
        sse_mean += float(((s - s.mean(1, keepdims=True)) ** 2).sum())
        b = chunk_bounds(s.shape[1], int(codes_per_segment([s.shape[1]], ips)[0]))
        for lo, hi in zip(b[:-1], b[1:]):
            part = s[:, lo:hi]
            sse_chunk += float(((part - part.mean(1, keepdims=True)) ** 2).sum())
    return {"mean": sse_mean / var, "chunk-mean": sse_chunk / var}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="8 videos, 600 steps, 60 iterations, 2 variants")
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--subsample", type=int, default=4)
    ap.add_argument("--ips", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--iters", type=int, default=300, help="inversion max_iters")
    ap.add_argument("--chunk-frames", type=int, default=InvertConfig.chunk_frames,
                    help="inversion chunk_frames (0: all frames)")
    ap.add_argument("--lr", type=float, default=InvertConfig.lr, help="inversion learning rate")
    ap.add_argument("--variants", default="default,no-chunk-pos,frame-vae,latent256,nofourier,paper")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", type=Path, help="use this dataset folder instead of synthesizing one")
    args = ap.parse_args()
    if args.quick:
        args.videos, args.steps, args.iters = 8, 600, 60
        if args.variants == ap.get_default("variants"):
            args.variants = "default,frame-vae"
    torch.set_num_threads(args.threads)
    names = args.variants.split(",")
    for n in names:
        if n not in VARIANTS:
            ap.error(f"unknown variant {n!r} (known: {', '.join(VARIANTS)})")

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = Path(tmp) / "synth"
            synthesize(root, SynthConfig(profile="breakfast", videos=args.videos, dim=args.dim,
                                         subsample=args.subsample, seed=0))
            # the synthetic features' knobs change as the generator is calibrated: say which were used
            knobs = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(FeatureModel()).items())
            print(f"synth: breakfast, videos={args.videos}, dim={args.dim}, subsample={args.subsample}; {knobs}")
        ds = open_dataset(root)
        segments, labels = [], []
        for v in ds.train:
            feats = np.asarray(v.features(), dtype=np.float32)
            for s in v.segments():
                segments.append(feats[:, s.start : s.end])
                labels.append(s.label)
        lengths = np.array([s.shape[1] for s in segments])
        frames = int(lengths.sum())
        print(f"data: {len(ds.train)} train videos, {len(segments)} segments, {frames} frames, "
              f"D={ds.dim}, {ds.num_classes} classes; ips={args.ips}; {args.steps} prior steps, "
              f"<= {args.iters} inversion iterations; {args.threads} thread(s), {args.device}")
        base = baselines(segments, args.ips)
        print(f"baselines: mean {base['mean']:.4f}   chunk-mean (oracle, D-dim codes) {base['chunk-mean']:.4f}")
        header = (f"{'variant':<13} {'encoded':>8} {'inverted':>8} {'train s':>8} {'steps/s':>8} "
                  f"{'invert s':>8} {'iters':>6} {'inv fr/s':>9} {'decode fr/s':>11} {'dec params':>10}")
        print(header)
        print("-" * len(header))
        for name in names:
            cfg = dataclasses.replace(PriorConfig(steps=args.steps, ips=args.ips), **VARIANTS[name])
            t0 = time.perf_counter()
            prior = train_prior(ds.train, ds.num_classes, cfg, device=args.device)
            t_train = time.perf_counter() - t0
            enc = encode_segments(prior, segments, labels, args.ips)
            iters: list[int] = []
            t0 = time.perf_counter()
            inv = invert_segments(prior, segments, labels, args.ips,
                                  InvertConfig(lr=args.lr, max_iters=args.iters, chunk_frames=args.chunk_frames),
                                  on_batch=lambda info: iters.append(info["iterations"]))
            t_inv = time.perf_counter() - t0
            t0 = time.perf_counter()
            decode_segments(prior.decoder, labels, lengths, inv.codes, inv.counts)
            t_dec = time.perf_counter() - t0
            n_params = sum(p.numel() for p in prior.decoder.parameters())
            print(f"{name:<13} {enc.error:>8.4f} {inv.error:>8.4f} {t_train:>8.1f} {args.steps / t_train:>8.1f} "
                  f"{t_inv:>8.1f} {max(iters):>6} {frames / t_inv:>9.0f} {frames / t_dec:>11.0f} "
                  f"{n_params:>10}", flush=True)


if __name__ == "__main__":
    main()
