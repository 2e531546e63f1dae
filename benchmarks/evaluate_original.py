"""MS-TCN on synthetic Breakfast-like data, through the real command line (issue 3's benchmark).

Runs exactly the two commands a user would::

    tascond synth DATA --labels-from $TASCOND_REALDATA/breakfast --videos N --subsample S --dim D
    tascond evaluate --model mstcn --data DATA --seeds 3 --epochs E --json

and writes ``benchmarks/results/evaluate_original.{json,md}`` with the commands, the data's size, the
mean ± std of Acc, Edit and F1@{10,25,50} over seeds and the wall time.

Scales (2 CPU cores):

- ``--quick`` (default): 48 train + 48 test videos of split 1, every 4th frame, D = 256, 20 epochs.
- ``--full``: 100 + 100 videos, every 2nd frame, D = 512, 50 epochs (the recipe's epochs).

Run from the repository root after the README's set-up::

    python3 benchmarks/evaluate_original.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PRESETS = {
    "quick": dict(videos=48, subsample=4, dim=256, epochs=20),
    "full": dict(videos=100, subsample=2, dim=512, epochs=50),
}
METRICS = ("acc", "edit", "f1@10", "f1@25", "f1@50")


def default_labels() -> Path:
    env = os.environ.get("TASCOND_REALDATA")
    return (Path(env) if env else REPO.parent / "shared" / "realdata") / "breakfast"


def run(cmd: list[str]) -> str:
    print("+ " + shlex.join(cmd), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small CPU run (the default)")
    mode.add_argument("--full", action="store_true", help="bigger run")
    p.add_argument("--labels-from", type=Path, default=None)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=HERE / "results" / "evaluate_original")
    args = p.parse_args(argv)
    preset = "full" if args.full else "quick"
    cfg = PRESETS[preset]
    labels = args.labels_from or default_labels()
    if not labels.is_dir():
        print(f"real Breakfast labels not found at {labels} (set --labels-from or TASCOND_REALDATA)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tascond-eval-") as tmp:
        data = Path(tmp) / "bf"
        synth_cmd = [
            "tascond", "synth", str(data), "--labels-from", str(labels), "--videos", str(cfg["videos"]),
            "--subsample", str(cfg["subsample"]), "--dim", str(cfg["dim"]), "--json",
        ]
        synth = json.loads(run(synth_cmd))
        eval_cmd = [
            "tascond", "evaluate", "--model", "mstcn", "--data", str(data), "--seeds", str(args.seeds),
            "--epochs", str(cfg["epochs"]), "--device", args.device, "--json",
        ]
        t1 = time.perf_counter()
        report = json.loads(run(eval_cmd))
        eval_s = time.perf_counter() - t1
    original = report["results"][0]
    shown = lambda cmd: shlex.join(["tascond", *cmd[1:]]).replace(str(data), "bf").replace(str(labels), "$TASCOND_REALDATA/breakfast")  # noqa: E731
    result = {
        "preset": preset,
        "commands": [shown(synth_cmd), shown(eval_cmd)],
        "data": {k: synth[k] for k in ("train", "test", "frames", "dim", "bytes")},
        "original": original,
        "evaluate_seconds": round(eval_s, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "date": time.strftime("%Y-%m-%d"),
    }
    mean = original["mean"]
    std = original["std"]
    lines = [
        f"MS-TCN on synthetic Breakfast-like data ({preset}, {result['date']}):",
        "",
        "```sh",
        *result["commands"],
        "```",
        "",
        "| trained on | " + " | ".join(m.replace("acc", "Acc").replace("edit", "Edit").replace("f1", "F1") for m in METRICS) + " |",
        "|---|" + "---|" * len(METRICS),
        "| original | " + " | ".join(f"{mean[m]:.1f} ± {std[m]:.1f}" for m in METRICS) + " |",
        "",
        f"{synth['train']} train / {synth['test']} test videos, {synth['frames']:,} frames, D = {synth['dim']}; "
        f"{args.seeds} seeds, background set {{{', '.join(repr(b) for b in report['background'])}}}; "
        f"training and scoring took {eval_s:.0f} s on this machine.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
