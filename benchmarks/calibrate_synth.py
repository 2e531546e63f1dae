"""Calibrate the synthetic feature generator against real Breakfast (docs/synth.md).

Synthesizes Breakfast-like features on the REAL Breakfast labels and splits (``--labels-from``), then
trains MS-TCN (the official recipe: 4 stages x 10 layers, 64 maps, Adam 5e-4, batch 1, last epoch) on

(a) the original synthetic training features, and
(b) the paper's Mean baseline: each training segment's mean feature repeated over the segment,

and tests both on the original synthetic test videos of the split. Metrics: Acc, Edit, F1@{10,25,50}
with background set {"background"} (so Breakfast's SIL counts as an action, as in docs/evaluation.md).

Target (real Breakfast, paper: Original 67.2 Acc / 60.6 Edit, Mean 47.6 / 31.8): original Acc about
60-80 and a realistic Edit; Mean keeps about 60-80% of the original's Acc and clearly less Edit
(about 40-65% of the original's).

Scales (CPU; the data is a sample of real Breakfast, at a lower frame rate and a small D):

- ``--quick``: ``--videos 48`` (48 train + 48 test videos of split 1), ``--subsample 4`` (15 -> 3.75 fps),
  ``--dim 256``, 20 epochs (the recipe says 50), seeds 0 and 1.
- ``--full``: ``--videos 200``, ``--subsample 2``, ``--dim 512``, 50 epochs, seeds 0, 1, 2.
- any option overrides the preset; ``--set name=value`` overrides a ``FeatureModel`` knob.

Writes ``benchmarks/results/calibration.json`` and ``calibration.md`` (``--out`` to change) and prints
the table. Run from the repository root::

    PYTHONPATH=src python benchmarks/calibrate_synth.py --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

from tascond_cli.data import open_dataset, segments_of  # noqa: E402
from tascond_cli.synth import FeatureModel, SynthConfig, synthesize  # noqa: E402

PRESETS = {
    "quick": dict(videos=48, subsample=4, dim=256, epochs=20, seeds=[0, 1]),
    "full": dict(videos=200, subsample=2, dim=512, epochs=50, seeds=[0, 1, 2]),
}
METRICS = ("acc", "edit", "f1@10", "f1@25", "f1@50")
BACKGROUND = ("background",)
PAPER = {
    "original": (67.2, 60.6, 50.5, 46.3, 36.8),
    "mean": (47.6, 31.8, 27.8, 23.3, 15.6),
}


def default_realdata() -> Path:
    env = os.environ.get("TASCOND_REALDATA")
    base = Path(env) if env else REPO.parent / "shared" / "realdata"
    return base / "breakfast"


def mean_features(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The Mean baseline: every segment's mean feature repeated over the segment (D, T)."""
    out = np.empty_like(features)
    for seg in segments_of(labels):
        out[:, seg.start : seg.end] = features[:, seg.start : seg.end].mean(axis=1, keepdims=True)
    return out


def _train_and_score(job: dict) -> dict:
    """One training run (in a worker process): train on job['train'], score on job['test']."""
    import torch

    torch.set_num_threads(1)
    from tascond_cli.evaluate.metrics import score
    from tascond_cli.evaluate.train import TrainConfig, predict, train_mstcn

    data = np.load(job["data"], allow_pickle=False)
    n_train, n_test = int(data["n_train"]), int(data["n_test"])
    train = []
    for i in range(n_train):
        x, y = data[f"train_x{i}"], data[f"train_y{i}"]
        if job["condition"] == "mean":
            x = mean_features(x, y)
        train.append((x, y))
    config = TrainConfig(epochs=job["epochs"], seed=job["seed"], sample_rate=1)
    t0 = time.perf_counter()
    model = train_mstcn(train, int(data["num_classes"]), config)
    train_s = time.perf_counter() - t0
    preds, gts = [], []
    for i in range(n_test):
        preds.append(predict(model, data[f"test_x{i}"], 1))
        gts.append(data[f"test_y{i}"])
    names = [str(n) for n in data["class_names"]]
    scores = score([[names[j] for j in p] for p in preds], [[names[j] for j in g] for g in gts], background=BACKGROUND)
    return {
        "condition": job["condition"],
        "seed": job["seed"],
        "train_seconds": round(train_s, 1),
        **{k: float(scores[k]) for k in METRICS},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small CPU run (the default)")
    mode.add_argument("--full", action="store_true", help="bigger run")
    p.add_argument("--labels-from", type=Path, default=None, help="real Breakfast folder (default: shared/realdata/breakfast)")
    p.add_argument("--videos", type=int, help="videos per part (train, test) of the split")
    p.add_argument("--split", type=int, default=1)
    p.add_argument("--subsample", type=int)
    p.add_argument("--dim", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic features")
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE", help="override a FeatureModel knob")
    p.add_argument("--conditions", nargs="+", default=["original", "mean"], choices=["original", "mean"])
    p.add_argument("--jobs", type=int, default=1, help="training runs in parallel (1 thread each)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "calibration", help="output path without suffix")
    args = p.parse_args(argv)
    preset = PRESETS["full" if args.full else "quick"]
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.preset = "full" if args.full else "quick"
    return args


def feature_model(overrides: list[str]) -> FeatureModel:
    fields = {f.name: f.type for f in dataclasses.fields(FeatureModel)}
    values = {}
    for item in overrides:
        key, _, raw = item.partition("=")
        if key not in fields:
            raise SystemExit(f"--set: unknown knob {key!r} (knobs: {', '.join(fields)})")
        values[key] = int(raw) if fields[key] in ("int", int) else float(raw)
    return dataclasses.replace(FeatureModel(), **values)


def summarize(runs: list[dict]) -> dict:
    out: dict = {}
    for cond in ("original", "mean"):
        rs = [r for r in runs if r["condition"] == cond]
        if not rs:
            continue
        out[cond] = {
            k: {"mean": float(np.mean([r[k] for r in rs])), "std": float(np.std([r[k] for r in rs]))} for k in METRICS
        }
    if "original" in out and "mean" in out:
        out["mean/original"] = {k: out["mean"][k]["mean"] / max(out["original"][k]["mean"], 1e-9) for k in METRICS}
    return out


def markdown(summary: dict, runs: list[dict], meta: dict) -> str:
    lines = [
        "# Synthetic Breakfast calibration (MS-TCN)",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Data: real Breakfast labels/splits (split {meta['split']}), {meta['train_videos']} train / "
        f"{meta['test_videos']} test videos, subsample {meta['subsample']}, D = {meta['dim']}, data seed "
        f"{meta['data_seed']}. MS-TCN recipe, {meta['epochs']} epochs, seeds {meta['seeds']}. "
        "Background set {\"background\"} (SIL counts as an action).",
        "",
        "| features | Acc | Edit | F1@10 | F1@25 | F1@50 |",
        "|---|---|---|---|---|---|",
    ]
    for cond in ("original", "mean"):
        if cond in summary:
            cells = [f"{summary[cond][k]['mean']:.1f} ± {summary[cond][k]['std']:.1f}" for k in METRICS]
            lines.append(f"| {cond} | " + " | ".join(cells) + " |")
    if "mean/original" in summary:
        lines.append("| mean / original | " + " | ".join(f"{summary['mean/original'][k]:.2f}" for k in METRICS) + " |")
    for cond, vals in PAPER.items():
        lines.append(f"| paper, real Breakfast: {cond} | " + " | ".join(f"{v:.1f}" for v in vals) + " |")
    lines.append(
        "| paper: mean / original | "
        + " | ".join(f"{m / o:.2f}" for m, o in zip(PAPER["mean"], PAPER["original"]))
        + " |"
    )
    lines += ["", "Per run:", "", "| features | seed | Acc | Edit | F1@10 | F1@25 | F1@50 | train s |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(
            f"| {r['condition']} | {r['seed']} | " + " | ".join(f"{r[k]:.1f}" for k in METRICS) + f" | {r['train_seconds']} |"
        )
    lines += ["", f"Synthesis {meta['synth_seconds']:.1f} s, total {meta['total_seconds']:.0f} s.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    source = args.labels_from or default_realdata()
    if not source.is_dir():
        print(f"real Breakfast labels not found at {source} (set --labels-from or TASCOND_REALDATA)", file=sys.stderr)
        return 2
    model = feature_model(args.set)
    with tempfile.TemporaryDirectory(prefix="tascond-calib-") as tmp:
        tmp = Path(tmp)
        cfg = SynthConfig(
            labels_from=source, videos=args.videos, split=args.split, subsample=args.subsample, dim=args.dim,
            seed=args.data_seed, model=model,
        )
        t0 = time.perf_counter()
        summary = synthesize(tmp / "data", cfg)
        synth_s = time.perf_counter() - t0
        ds = open_dataset(tmp / "data", args.split)
        arrays: dict[str, np.ndarray] = {
            "n_train": np.array(len(ds.train)),
            "n_test": np.array(len(ds.test)),
            "num_classes": np.array(ds.num_classes),
            "class_names": np.array(ds.mapping.names),
        }
        for part, videos in (("train", ds.train), ("test", ds.test)):
            for i, v in enumerate(videos):
                arrays[f"{part}_x{i}"] = np.asarray(v.features(), dtype=np.float32)
                arrays[f"{part}_y{i}"] = np.asarray(v.labels, dtype=np.int64)
        np.savez(tmp / "arrays.npz", **arrays)
        jobs = [
            {"data": str(tmp / "arrays.npz"), "condition": c, "seed": s, "epochs": args.epochs}
            for s in args.seeds
            for c in args.conditions
        ]
        if args.jobs > 1:
            with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
                runs = list(pool.map(_train_and_score, jobs))
        else:
            runs = [_train_and_score(j) for j in jobs]
    summ = summarize(runs)
    meta = {
        "command": "PYTHONPATH=src python benchmarks/calibrate_synth.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "preset": args.preset,
        "source": str(source),
        "split": args.split,
        "train_videos": summary.train,
        "test_videos": summary.test,
        "frames": summary.frames,
        "subsample": args.subsample,
        "dim": args.dim,
        "data_seed": args.data_seed,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "background": list(BACKGROUND),
        "feature_model": dataclasses.asdict(model),
        "synth_seconds": round(synth_s, 2),
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }
    table = markdown(summ, runs, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "summary": summ, "runs": runs}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
