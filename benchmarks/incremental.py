"""Incremental action segmentation with replay (issue 13): which replay of earlier tasks forgets least.

The protocol is ``tascond evaluate --protocol incremental`` (docs/evaluation.md, "The incremental
protocol"): Breakfast's ten activities, one per task in :data:`~tascond_cli.evaluate.incremental.BREAKFAST_ORDER`,
one model trained task after task, scored after each task on the test videos of every task seen so far.
Replay of the earlier tasks: ``none`` (fine-tuning), ``exemplar`` (real frames at float16 in the byte budget
of the task's archive), ``archive`` (each task condensed by ``tascond condense``'s defaults) and ``full``
(all earlier training videos).

The data: ``tascond synth --features hard`` over the real Breakfast label files of split 1 (``--videos``
training and as many test videos, every 8th frame (``--subsample``), ``--dim``). Each (replay, seed) run is one job, run in
``--workers`` processes of one torch thread each. Writes ``benchmarks/results/incremental[_quick].{md,json}``
with, per replay source: the bytes it stores, the five metrics after the last task and averaged over tasks,
forgetting, and the paired difference (same seeds, 95% interval) of ``archive`` against each other source
on the five-metric mean of the average over tasks.

Run from the repository root (``$TASCOND_REALDATA`` or ``../shared/realdata`` must hold ``breakfast``)::

    python3 benchmarks/incremental.py              # 120 + 120 videos, every 8th frame, D = 256, 10 epochs a task, 3 seeds
    python3 benchmarks/incremental.py --quick      # 60 + 60 videos, 4 epochs a task, 2 seeds (a few minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

from compare import human  # noqa: E402  (benchmarks/ is the script's folder, first on sys.path)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
METRICS = ("acc", "edit", "f1@10", "f1@25", "f1@50")
HEAD = {"acc": "Acc", "edit": "Edit", "f1@10": "F1@10", "f1@25": "F1@25", "f1@50": "F1@50"}


def realdata() -> Path:
    env = os.environ.get("TASCOND_REALDATA")
    return Path(env) if env else REPO.parent / "shared" / "realdata"


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def synthesize(out: Path, videos: int, dim: int, subsample: int) -> Path:
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "tascond_cli", "synth", str(out), "--labels-from",
                        str(realdata() / "breakfast"), "--videos", str(videos), "--subsample", str(subsample), "--dim", str(dim),
                        "--seed", "0", "--features", "hard"], check=True, capture_output=True)  # fmt: skip
    return out


def run_one(data: str, replay: str, seed: int, epochs: int, model: str) -> dict:
    """One replay source, one seed: its curve and buffer bytes."""
    from tascond_cli.data import open_dataset
    from tascond_cli.evaluate.incremental import evaluate_incremental
    from tascond_cli.evaluate.train import TrainConfig

    t0 = time.perf_counter()
    report = evaluate_incremental(open_dataset(data), TrainConfig(model=model, epochs=epochs, seed=seed), [replay],
                                  seeds=1)  # fmt: skip
    r = report.results[0]
    return {"replay": replay, "seed": seed, "curve": r.to_dict()["per_seed"][0], "buffer_bytes": r.buffer_bytes,
            "seconds": round(time.perf_counter() - t0, 1), "tasks": report.tasks,
            "train_counts": report.train_counts, "test_counts": report.test_counts}  # fmt: skip


def _curve(saved: list[dict]) -> list[dict]:
    """A curve from its JSON form (``seen`` / ``task<j>`` keys) back to ``seen`` / int keys."""
    return [{(k if k == "seen" else int(k[4:])): v for k, v in step.items()} for step in saved]


def summarise(runs: list[dict], replays: list[str], seeds: list[int]) -> dict:
    from tascond_cli.evaluate.incremental import ReplayResult, average_over_tasks, summarise
    from tascond_cli.evaluate.stats import paired_difference

    by = {(r["replay"], r["seed"]): r for r in runs}
    rows = {}
    for replay in replays:
        result = summarise(ReplayResult(replay, by[replay, seeds[0]]["buffer_bytes"],
                                        [_curve(by[replay, s]["curve"]) for s in seeds]))  # fmt: skip
        rows[replay] = {
            "buffer_bytes": result.buffer_bytes, "final": result.final, "average": result.average,
            "forgetting": result.forgetting, "per_seed_average": [average_over_tasks(c) for c in result.curves],
            "per_seed_final": [c[-1]["seen"] for c in result.curves],
            "seconds": sum(by[replay, s]["seconds"] for s in seeds),
        }  # fmt: skip
    points = dict.fromkeys(METRICS, 100.0)  # average_retention against 100: the five-metric mean in points
    verdicts = {}
    if "archive" in rows:
        for other in [r for r in replays if r != "archive"]:
            verdicts[other] = {
                "average": paired_difference(rows["archive"]["per_seed_average"], rows[other]["per_seed_average"],
                                             points).to_dict(),
                "final": paired_difference(rows["archive"]["per_seed_final"], rows[other]["per_seed_final"],
                                           points).to_dict(),
            }  # fmt: skip
    first = runs[0]
    return {"rows": rows, "verdicts": verdicts, "tasks": first["tasks"], "train_counts": first["train_counts"],
            "test_counts": first["test_counts"]}  # fmt: skip


def markdown(res: dict, meta: dict) -> str:
    lines = [
        f"# Incremental action segmentation with replay ({meta['date']})",
        "",
        f"Command: `{meta['command']}` ({meta['seconds'] / 60:.0f} min on {os.cpu_count()} CPU cores, "
        f"{platform.machine()}).",
        "",
        f"`tascond synth --features hard` over real Breakfast label files (split 1): {meta['videos']} training and "
        f"{meta['videos']} test videos, every {meta['subsample']}th frame, D = {meta['dim']}; {meta['model']}, {meta['epochs']} epochs per "
        f"task, seeds {', '.join(map(str, meta['seeds']))}. Tasks, in order (training / test videos): "
        + "; ".join(f"{', '.join(t)} ({a} / {b})" for t, a, b in zip(res["tasks"], res["train_counts"],
                                                                     res["test_counts"])) + ".",
        "",
        "| replay | stored | " + " | ".join(f"{HEAD[m]} last" for m in METRICS) + " | "
        + " | ".join(f"{HEAD[m]} avg" for m in METRICS) + " | Acc forgetting |",
        "|---|---:|" + "---:|" * (2 * len(METRICS) + 1),
    ]
    for name, row in res["rows"].items():
        fm, fs = row["final"]["mean"], row["final"]["std"]
        am = row["average"]["mean"]
        lines.append(
            f"| {name} | {human(sum(row['buffer_bytes']))} | "
            + " | ".join(f"{fm[m]:.1f} ± {fs[m]:.1f}" for m in METRICS) + " | "
            + " | ".join(f"{am[m]:.1f}" for m in METRICS)
            + f" | {row['forgetting']['mean']['acc']:.1f} ± {row['forgetting']['std']['acc']:.1f} |"
        )
    lines += [
        "",
        "\"last\": after the last task, on all test videos (mean ± std over seeds); \"avg\": the mean over tasks of "
        "the score after each task on the test videos of the tasks seen so far; forgetting: for each task but the "
        "last, its best Acc after any earlier task minus its Acc after the last, averaged. \"stored\": bytes kept "
        "of all earlier tasks (exemplar: float16 real frames in each task archive's byte budget; full: float32).",
        "",
        "`archive` replay against each other source, paired over the same seeds (95% interval; an interval "
        "holding 0 is no difference), in points of the five-metric mean:",
        "",
    ]
    for other, v in res["verdicts"].items():
        a, f = v["average"], v["final"]
        word = {"better": "beats", "worse": "loses to"}.get(a["verdict"], "is no different from")
        lines.append(f"- archive {word} {other} on the average over tasks: {a['mean']:+.1f} [{a['low']:+.1f}, "
                     f"{a['high']:+.1f}]; after the last task: {f['mean']:+.1f} [{f['low']:+.1f}, {f['high']:+.1f}] "
                     f"({f['verdict']})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 + 60 videos, 4 epochs a task, 2 seeds.")
    parser.add_argument("--videos", type=int, help="Training (and test) videos (default 120; quick 60).")
    parser.add_argument("--dim", type=int, default=256, help="Feature dimension D.")
    parser.add_argument("--subsample", type=int, default=8, help="Keep every S-th frame (default 8).")
    parser.add_argument("--epochs", type=int, help="Epochs per task (default 10; quick 4).")
    parser.add_argument("--seeds", type=int, nargs="+", help="Seeds (default 0 1 2; quick 0 1).")
    parser.add_argument("--model", choices=("mstcn", "asformer"), default="mstcn")
    parser.add_argument("--replay", nargs="+", default=["none", "exemplar", "archive", "full"],
                        choices=("none", "exemplar", "archive", "full"))
    parser.add_argument("--workers", type=int, default=2, help="Parallel processes (one torch thread each).")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="Scratch folder.")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="Where the table goes.")
    args = parser.parse_args(argv)
    if not (realdata() / "breakfast").is_dir():
        print(f"skipping: real Breakfast label files not found at {realdata() / 'breakfast'}", file=sys.stderr)
        return 0
    videos = args.videos or (60 if args.quick else 120)
    epochs = args.epochs or (4 if args.quick else 10)
    seeds = args.seeds or ([0, 1] if args.quick else [0, 1, 2])
    tag = "incremental_quick" if args.quick else "incremental"
    data = synthesize(args.work / "incremental" / f"breakfast_v{videos}_s{args.subsample}_d{args.dim}", videos, args.dim,
                      args.subsample)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    runs = []
    with ProcessPoolExecutor(max_workers=args.workers, initializer=_one_thread) as pool:
        jobs = [pool.submit(run_one, str(data), r, s, epochs, args.model) for s in seeds for r in args.replay]
        for job in jobs:
            run = job.result()
            runs.append(run)
            last = run["curve"][-1]["seen"]
            print(f"[{time.perf_counter() - t0:6.0f} s] {run['replay']} seed {run['seed']}: acc {last['acc']:.1f} "
                  f"edit {last['edit']:.1f} f1@50 {last['f1@50']:.1f}", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - t0
    res = summarise(runs, args.replay, seeds)
    command = "python3 benchmarks/incremental.py" + (" --quick" if args.quick else "")
    for flag, value, default in (("--videos", args.videos, None), ("--epochs", args.epochs, None),
                                 ("--dim", args.dim, 256), ("--subsample", args.subsample, 8),
                                 ("--model", args.model, "mstcn")):  # fmt: skip
        if value is not None and value != default:
            command += f" {flag} {value}"
    if args.seeds:
        command += " --seeds " + " ".join(map(str, args.seeds))
    meta = {"date": date.today().isoformat(), "command": command, "seconds": round(seconds), "videos": videos,
            "dim": args.dim, "subsample": args.subsample, "epochs": epochs, "seeds": seeds,
            "model": {"mstcn": "MS-TCN", "asformer": "ASFormer"}[args.model]}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{tag}.json").write_text(json.dumps({**meta, **res, "runs": runs}, indent=2) + "\n")
    table = markdown(res, meta)
    (args.out / f"{tag}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
