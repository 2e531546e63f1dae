"""The comparison on the hard yardstick (issue 10): ``lowrank`` (``tascond condense``'s default) against
the baselines, at full feature dimension, with paired intervals and whole-archive ratios.

1. Synthesizes features with ``tascond synth --features hard`` (docs/synth.md, "The hard yardstick")
   over the real Breakfast label files, splits and mapping of ``$TASCOND_REALDATA/breakfast`` (default:
   ``shared/realdata/breakfast`` next to the checkout), split 1: ``--videos`` training and as many test
   videos, every ``--subsample``-th frame, D = ``--dim``.
2. Makes each source's archive with the library (``make_baseline``), timing it: ``lowrank`` with its
   defaults, ``mean``, ``coreset``, ``blind``, and the generator methods ``tascond``, ``encoded`` and
   ``random`` from one trained generator (its training time is counted in each of theirs).
3. Trains MS-TCN (the recipe: 4 x 10 layers, 64 maps, Adam 5e-4, 50 epochs, one torch thread per run)
   on the original training split and on each archive (decoded on the fly), once per seed, and tests
   every model on the original test videos.

Every archive and run is appended to ``WORK/runs.jsonl`` as it finishes, and a later call skips what
is recorded: an interrupted run resumes. The table (``--out``/``hard[_quick].{md,json}``) gives per
source the mean of each metric over seeds, its retention of the original per metric, the whole-archive
size and ratio (training feature bytes / archive bytes), the condense time against one MS-TCN training
on the original, and the paired difference of five-metric average retention against ``lowrank`` over
the same seeds with a Student-t 95% interval (``evaluate.stats.paired_difference``).

Run from the repository root::

    python3 benchmarks/hard.py                      # 90 + 90 videos, D = 2048, every 4th frame, 3 seeds
    python3 benchmarks/hard.py --quick              # 48 + 48 videos, D = 256, 2 seeds, no generator methods
    python3 benchmarks/hard.py --report             # the table from what WORK/runs.jsonl holds

One run at the default scale takes about 6 minutes per source and seed on one core (two run at once).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from yardstick import METRICS, _one_thread, realdata, train_one  # noqa: E402

GENERATOR_SOURCES = ("tascond", "encoded", "random")
DEFAULT_SOURCES = ("original", "lowrank", "mean", "coreset", "encoded", "random", "blind")
QUICK_SOURCES = ("original", "lowrank", "mean", "coreset", "blind")


def _records(work: Path) -> list[dict]:
    path = work / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _append(work: Path, record: dict) -> None:
    with open(work / "runs.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")


def prepare_data(args: argparse.Namespace, work: Path) -> None:
    """Synthesize the data once (``WORK/data``); a spec file guards against reusing other data."""
    from tascond_cli.synth import SynthConfig, feature_model, synthesize

    spec = {"videos": args.videos, "dim": args.dim, "subsample": args.subsample, "data_seed": args.data_seed,
            "features": "hard"}
    marker = work / "data.json"
    if marker.exists() and json.loads(marker.read_text()) == spec and (work / "data").is_dir():
        return
    config = SynthConfig(labels_from=realdata() / "breakfast", videos=args.videos, split=1, subsample=args.subsample,
                         dim=args.dim, seed=args.data_seed, model=feature_model("hard"))
    synthesize(work / "data", config, overwrite=True)
    (work / "runs.jsonl").unlink(missing_ok=True)
    marker.write_text(json.dumps(spec))


def source_config(source: str, base):
    """``METHOD`` or ``METHOD:key=value,...`` (``lowrank:texture=4``): the method and its Config, the
    keys being the method's own config fields (``lowrank`` fields for ``lowrank``)."""
    method, _, options = source.partition(":")
    if not options:
        return method, base
    section = "lowrank" if method == "lowrank" else "generator"
    changes = {}
    for item in options.split(","):
        key, value = item.split("=")
        for cast in (int, float, str):
            try:
                changes[f"{section}__{key}"] = cast(value)
                break
            except ValueError:
                continue
    return method, base.with_(**changes)


def build_archives(sources: list[str], work: Path, done: set[str]) -> None:
    """Write ``WORK/<source>.tcd`` for every archive source not yet recorded, timing each."""
    from tascond_cli.archive import write_archive
    from tascond_cli.data import open_dataset
    from tascond_cli.methods import Config, make_baseline, train_generator

    dataset = open_dataset(work / "data", parts=("train",))
    base = Config(device="cpu")
    prior, prior_seconds = None, 0.0
    for source in sources:
        if source == "original" or source in done:
            continue
        method, config = source_config(source, base)
        if method in GENERATOR_SOURCES and prior is None:
            t0 = time.perf_counter()
            prior = train_generator(dataset, config)
            prior_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = make_baseline(method, dataset, config, prior=prior)
        seconds = time.perf_counter() - t0 + (prior_seconds if method in GENERATOR_SOURCES else 0.0)
        size = write_archive(result.archive, work / f"{source}.tcd", overwrite=True)
        record = {"build": source, "bytes": size, "seconds": round(seconds, 1), "train_bytes": result.train_bytes,
                  "error": result.error}
        print(json.dumps(record), file=sys.stderr, flush=True)
        _append(work, record)


def train_all(sources: list[str], seeds: list[int], epochs: int, work: Path, workers: int, done: set) -> None:
    jobs = [(s, seed) for seed in seeds for s in sources if (s, seed) not in done]
    if not jobs:
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_one_thread) as pool:
        futures = {job: pool.submit(train_one, job[0], job[1], epochs, work, "cpu") for job in jobs}
        for (source, seed), future in futures.items():
            r = future.result()
            print(f"{source} seed {seed}: " + " ".join(f"{m} {r['scores'][m]:.1f}" for m in METRICS)
                  + f" ({r['seconds']:.0f} s)", file=sys.stderr, flush=True)
            _append(work, {"source": source, "seed": seed, **r})


def summarise(work: Path, sources: list[str], against: str = "lowrank") -> dict:
    """Per source: mean per metric, retention per metric and average, storage, ratio, condense time,
    paired difference of average retention against ``against``."""
    from tascond_cli.evaluate.stats import average_retention, paired_difference

    runs: dict[str, dict[int, dict]] = {}
    builds: dict[str, dict] = {}
    for rec in _records(work):
        if "build" in rec:
            builds[rec["build"]] = rec
        else:
            runs.setdefault(rec["source"], {})[rec["seed"]] = rec
    if "original" not in runs:
        raise SystemExit(f"{work / 'runs.jsonl'}: no run on the original yet")
    seeds = sorted(runs["original"])
    original = {m: float(np.mean([runs["original"][k]["scores"][m] for k in seeds])) for m in METRICS}
    train_seconds = float(np.mean([runs["original"][k]["seconds"] for k in seeds]))
    train_bytes = next((b["train_bytes"] for b in builds.values()), None)
    rows = {}
    for source in sources:
        by_seed = runs.get(source, {})
        if not by_seed:
            continue
        ks = sorted(by_seed)
        mean = {m: float(np.mean([by_seed[k]["scores"][m] for k in ks])) for m in METRICS}
        row = {"seeds": ks, "mean": mean, "std": {m: float(np.std([by_seed[k]["scores"][m] for k in ks])) for m in METRICS},
               "retention": {m: 100 * mean[m] / original[m] for m in METRICS},
               "retention_avg": average_retention(mean, original)}
        if source in builds:
            b = builds[source]
            row.update(bytes=b["bytes"], ratio=b["train_bytes"] / b["bytes"], condense_seconds=b["seconds"],
                       error=b["error"])
        common = [k for k in ks if k in runs.get(against, {})]
        if source != against and len(common) >= 2:
            d = paired_difference([runs[against][k]["scores"] for k in common], [by_seed[k]["scores"] for k in common],
                                  original)
            row["paired"] = d.to_dict()
        rows[source] = row
    return {"original": original, "train_seconds": train_seconds, "train_bytes": train_bytes, "rows": rows,
            "against": against}


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"


def markdown(summary: dict, meta: dict) -> str:
    a = meta["args"]
    lines = [
        f"# The hard yardstick: lowrank against the baselines ({meta['date']})", "",
        f"Command: `{meta['command']}` ({meta['cpus']} CPU cores, {meta['machine']}).", "",
        f"`tascond synth --features hard` over real Breakfast label files (split 1), {a['videos']} training and "
        f"{a['videos']} test videos, every {a['subsample']}th frame, D = {a['dim']}; MS-TCN {a['epochs']} epochs, one "
        f"torch thread per run. Training features: {_size(summary['train_bytes'] or 0)}. One MS-TCN training on the "
        f"original took {summary['train_seconds']:.0f} s.", "",
        "| train on | seeds | Acc | Edit | F1@10 | F1@25 | F1@50 | retention per metric (%) | avg | archive | x | "
        f"condense | {summary['against']} − it, paired (95%) |",
        "|---|---|" + "---:|" * 11,
    ]
    for source, row in summary["rows"].items():
        ret = " / ".join(f"{row['retention'][m]:.0f}" for m in METRICS)
        size = f"{_size(row['bytes'])} | {row['ratio']:.0f}" if "bytes" in row else "- | -"
        cond = f"{row['condense_seconds']:.0f} s" if "condense_seconds" in row else "-"
        p = row.get("paired")
        diff = f"{p['mean']:+.1f} [{p['low']:+.1f}, {p['high']:+.1f}]" if p else "-"
        lines.append(f"| {source} | {len(row['seeds'])} | " + " | ".join(f"{row['mean'][m]:.1f}" for m in METRICS)
                     + f" | {ret} | {row['retention_avg']:.1f} | {size} | {cond} | {diff} |")
    lines += ["", f"Paired: {summary['against']}'s five-metric average retention minus the source's, over the same "
              f"seeds (positive: {summary['against']} is better; an interval holding 0 is no difference). Retention "
              "is of the original's mean over its seeds; x is the training features' bytes over the whole archive's.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="48 + 48 videos, D = 256, seeds 0 1, no generator methods.")
    parser.add_argument("--videos", type=int, help="Training and test videos each (default 90).")
    parser.add_argument("--dim", type=int, help="Feature dimension (default 2048).")
    parser.add_argument("--subsample", type=int, default=4)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seeds", nargs="+", type=int, help="MS-TCN seeds (default 0 1 2).")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--sources", nargs="+", help=f"Default: {' '.join(DEFAULT_SOURCES)}.")
    parser.add_argument("--workers", type=int, default=2, help="Parallel training processes (one torch thread each).")
    parser.add_argument("--work", type=Path, help="Scratch folder (default benchmarks/work/hard[_quick]).")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--report", action="store_true", help="Only print and write the table of what is recorded.")
    parser.add_argument("--build-only", action="store_true", help="Make the data and the archives, train nothing.")
    args = parser.parse_args(argv)
    args.videos = args.videos or (48 if args.quick else 90)
    args.dim = args.dim or (256 if args.quick else 2048)
    args.seeds = args.seeds or ([0, 1] if args.quick else [0, 1, 2])
    sources = args.sources or list(QUICK_SOURCES if args.quick else DEFAULT_SOURCES)
    tag = "hard_quick" if args.quick else "hard"
    work = args.work or HERE / "work" / tag
    work.mkdir(parents=True, exist_ok=True)
    if not args.report:
        if not (realdata() / "breakfast").is_dir():
            print(f"skipping: real label files not found at {realdata() / 'breakfast'} (set TASCOND_REALDATA)",
                  file=sys.stderr)
            return 0
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        prepare_data(args, work)
        records = _records(work)
        build_archives(sources, work, {r["build"] for r in records if "build" in r})
        if args.build_only:
            return 0
        train_all(sources, args.seeds, args.epochs, work, args.workers,
                  {(r["source"], r["seed"]) for r in records if "source" in r})
    summary = summarise(work, sources)
    command = shlex.join(["python3", "benchmarks/hard.py", *(sys.argv[1:] if argv is None else argv)])
    meta = {"date": date.today().isoformat(), "command": command, "cpus": os.cpu_count(), "machine": platform.machine(),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{tag}.json").write_text(json.dumps({**meta, "summary": summary}, indent=2) + "\n")
    text = markdown(summary, meta)
    (args.out / f"{tag}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
