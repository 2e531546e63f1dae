"""The condensation floors of issue 4, measured through the real command line.

Two benchmarks, each a sequence of ``tascond`` commands on data synthesized from the real Breakfast
label files (``$TASCOND_REALDATA/breakfast``, or ``shared/realdata/breakfast`` next to the checkout):

``quality``
    ``tascond synth`` (N train + N test videos of split 1, every S-th frame, D dims), then
    ``tascond condense``, then ``tascond evaluate --model mstcn --train ARCHIVE`` over 3 seeds, which
    trains on the original and on the archive (decoded on the fly) under the same protocol and tests
    both on the real test split. Reports every metric, retention per metric and on average, the
    archive's size, condense wall time next to the wall time of one MS-TCN training run on the original
    with the standard recipe (50 epochs; the speed floor), and restore throughput (``tascond restore``,
    frames per second).
    ``--quick``: 48 + 48 videos, S = 4, D = 256, 20 epochs; default: 100 + 100 videos, 30 epochs.

``storage``
    ``tascond synth`` of at least 300 training videos at full temporal resolution and D = 2048 (the
    size of real I3D features), ``tascond condense`` with the default settings, and the ratio between
    the bytes of the training features and of the archive file (decoder included), plus restore
    throughput. ``--quick``: 40 videos (a smoke run of the same path; the floor needs the default).

Results go to ``benchmarks/results/condense_<bench>.{json,md}``. Run from the repository root::

    python3 benchmarks/condense_bench.py quality [--quick] [--condense "--ratio 1"]
    python3 benchmarks/condense_bench.py storage [--quick] [--condense "--ratio 1"]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
METRICS = ("acc", "edit", "f1@10", "f1@25", "f1@50")
HEAD = {"acc": "Acc", "edit": "Edit", "f1@10": "F1@10", "f1@25": "F1@25", "f1@50": "F1@50"}


def default_labels() -> Path:
    env = os.environ.get("TASCOND_REALDATA")
    return (Path(env) if env else REPO.parent / "shared" / "realdata") / "breakfast"


class Runner:
    """Runs tascond commands, timing each and recording them with short, portable paths."""

    def __init__(self, tmp: Path, labels: Path) -> None:
        self.tmp, self.labels = tmp, labels
        self.commands: list[str] = []

    def __call__(self, *args: str) -> tuple[str, float]:
        cmd = ["tascond", *args]
        shown = shlex.join(cmd).replace(str(self.tmp) + "/", "").replace(str(self.labels), "$TASCOND_REALDATA/breakfast")
        print("+ " + shown, file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - t0
        self.commands.append(shown)
        return done.stdout, seconds


def quality(args: argparse.Namespace, run: Runner, tmp: Path) -> tuple[dict, list[str]]:
    videos, sub, dim, epochs = (48, 4, 256, 20) if args.quick else (100, 4, 256, 30)
    videos = args.videos or videos
    epochs = args.epochs or epochs
    data, arch = tmp / "bf", tmp / "bf.tcd"
    synth = json.loads(run("synth", str(data), "--labels-from", str(run.labels), "--videos", str(videos),
                           "--subsample", str(sub), "--dim", str(dim), "--json")[0])
    condense_out, condense_s = run("condense", str(data), "-o", str(arch), "--device", args.device,
                                   "--seed", "0", *args.condense_args, "--json")
    condensed = json.loads(condense_out)
    restore_out, _ = run("restore", str(arch), "-o", str(tmp / "restored"), "--device", args.device, "--json")
    restored = json.loads(restore_out)
    # one MS-TCN training run on the original with the standard recipe (50 epochs), timed alone: the
    # speed floor's yardstick (the quality comparison below uses the preset's epochs for both sides)
    _, one_run_s = run("evaluate", "--model", "mstcn", "--data", str(data), "--seeds", "1", "--epochs", "50",
                       "--device", args.device, "--json")
    report = json.loads(run("evaluate", "--model", "mstcn", "--data", str(data), "--train", str(arch), "--seeds",
                            str(args.seeds), "--epochs", str(epochs), "--device", args.device, "--json")[0])
    orig, ours = report["results"]
    result = {
        "bench": "quality",
        "data": {k: synth[k] for k in ("train", "test", "frames", "dim", "bytes")},
        "subsample": sub,
        "epochs": epochs,
        "seeds": args.seeds,
        "background": report["background"],
        "original": orig,
        "archive": ours,
        "condense": condensed,
        "condense_seconds": round(condense_s, 1),
        "one_mstcn_run_seconds": round(one_run_s, 1),
        "restore": restored,
    }
    ret = ours["retention"]
    lines = [
        "| trained on | " + " | ".join(HEAD[m] for m in METRICS) + " | storage | retention (avg) |",
        "|---|" + "---|" * (len(METRICS) + 2),
        "| original | " + " | ".join(f"{orig['mean'][m]:.1f} ± {orig['std'][m]:.1f}" for m in METRICS)
        + f" | {orig['storage_bytes'] / 1e6:.1f} MB | 100% |",
        "| tascond archive | " + " | ".join(f"{ours['mean'][m]:.1f} ± {ours['std'][m]:.1f}" for m in METRICS)
        + f" | {ours['storage_bytes'] / 1e6:.2f} MB | {ret['avg']:.1f}% |",
        "| retention per metric | " + " | ".join(f"{ret[m]:.1f}%" for m in METRICS) + " | | |",
        "",
        f"{synth['train']} train / {synth['test']} test videos (split 1), every {sub}th frame, D = {dim}; "
        f"MS-TCN {epochs} epochs, {args.seeds} seeds; background {{{', '.join(repr(b) for b in report['background'])}}}. "
        f"Archive: {condensed['kept_videos']} of {condensed['train_videos']} training videos, "
        f"{condensed['bytes']:,} bytes ({condensed['storage_ratio']:.0f}x smaller than the training features), "
        f"reconstruction error {condensed['reconstruction_error']:.3f}. "
        f"Condense took {condense_s:.0f} s; one MS-TCN training run on the original (standard recipe, 50 epochs, "
        f"with scoring) took {one_run_s:.0f} s. "
        f"Restore: {restored['frames_per_second']:,.0f} frames/s.",
    ]
    return result, lines


def storage(args: argparse.Namespace, run: Runner, tmp: Path) -> tuple[dict, list[str]]:
    videos = args.videos or (40 if args.quick else 300)
    data, arch = tmp / "bf", tmp / "bf.tcd"
    synth = json.loads(run("synth", str(data), "--labels-from", str(run.labels), "--videos", str(videos),
                           "--dim", "2048", "--json")[0])
    condense_out, condense_s = run("condense", str(data), "-o", str(arch), "--device", args.device,
                                   *args.condense_args, "--json")
    condensed = json.loads(condense_out)
    restore_out, _ = run("restore", str(arch), "-o", str(tmp / "restored"), "--device", args.device, "--json")
    restored = json.loads(restore_out)
    result = {
        "bench": "storage",
        "data": {k: synth[k] for k in ("train", "test", "frames", "dim", "bytes")},
        "condense": condensed,
        "condense_seconds": round(condense_s, 1),
        "restore": restored,
    }
    b = condensed["storage"]
    lines = [
        "| training videos | training features | archive | ratio | codes | structure | decoder | metadata |",
        "|---|---|---|---|---|---|---|---|",
        f"| {condensed['train_videos']} (kept {condensed['kept_videos']}) | {condensed['train_feature_bytes'] / 1e9:.2f} GB "
        f"| {condensed['bytes'] / 1e6:.2f} MB | {condensed['storage_ratio']:.0f}x | {b['codes'] / 1e6:.2f} MB "
        f"| {b['structure'] / 1e3:.1f} KB | {b['decoder'] / 1e6:.2f} MB | {b['metadata'] / 1e3:.1f} KB |",
        "",
        f"Full temporal resolution, D = 2048. Condense took {condense_s:.0f} s "
        f"(phases: {', '.join(f'{k} {v:.0f} s' for k, v in condensed['seconds'].items())}); reconstruction error "
        f"{condensed['reconstruction_error']:.3f}; restore {restored['frames_per_second']:,.0f} frames/s "
        f"({restored['frames']:,} frames).",
    ]
    return result, lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bench", choices=["quality", "storage"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--videos", type=int, help="videos per part (overrides the preset)")
    p.add_argument("--epochs", type=int, help="MS-TCN epochs (quality; overrides the preset)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--labels-from", type=Path, default=None)
    p.add_argument("--tmp", type=Path, default=None, help="working folder (default: a temporary one)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--condense", default="", metavar="OPTIONS", help='extra options for tascond condense, e.g. "--ratio 1"')
    args = p.parse_args(argv)
    args.condense_args = shlex.split(args.condense)
    labels = args.labels_from or default_labels()
    if not labels.is_dir():
        print(f"real Breakfast labels not found at {labels} (set --labels-from or TASCOND_REALDATA)", file=sys.stderr)
        return 2
    out = args.out or HERE / "results" / f"condense_{args.bench}{'_quick' if args.quick else ''}"
    tmp = Path(tempfile.mkdtemp(prefix="tascond-bench-", dir=args.tmp))
    t0 = time.perf_counter()
    try:
        run = Runner(tmp, labels)
        result, lines = (quality if args.bench == "quality" else storage)(args, run, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["commands"] = run.commands
    result["date"] = time.strftime("%Y-%m-%d")
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    text = "\n".join([f"{args.bench} benchmark, {result['date']}:", "", "```sh", *run.commands, "```", "", *lines, ""])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
