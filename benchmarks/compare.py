"""The comparison table: our method against every baseline, on Breakfast-, 50Salads- and GTEA-like data.

For each dataset the script

1. synthesizes features over the real label files, splits and mapping of ``$TASCOND_REALDATA/<name>``
   (default: ``shared/realdata/<name>`` next to the checkout; ``tascond synth --labels-from``) at a
   scale two CPU cores can train on (table below);
2. trains our generator once and makes every archive from it or from the features:
   ``tascond`` (our method, the defaults: 8 codes per segment for half the videos, chosen by diverse
   sampling; the other half by their structure, their segments reusing kept codes),
   ``tascond-drop`` (the paper's setting: the other half dropped, ``--others drop``), ``tascond-all``
   (codes for every video: ``--ratio 1``), and the baselines ``mean``, ``coreset``, ``tca``,
   ``encoded``, ``random``, ``fp16``, ``pca`` and ``blind`` with their defaults (``tascond
   baseline``; ``tca``, ``encoded`` and ``random`` differ from ``tascond`` in one thing each). Sharing the generator gives the same archives as separate ``condense`` / ``baseline``
   runs (tested in ``tests/test_baselines.py``) in a quarter of the time;
3. trains MS-TCN (the standard 4x10x64 model), or each judge of ``--model mstcn asformer`` (ASFormer:
   encoder + 3 decoders of 10 blocks, 64 channels), on the original training split and on each archive
   (decoded on the fly), over 3 seeds, and tests every model on the real test split.

``lowrank`` is ``tascond condense``'s default; when it is among the sources, the baselines are compared
with it, otherwise with ``tascond`` (the generator method, the default before lowrank). ``--sources``
restricts the table (the original is always trained; ``blind`` gives the ">blind" column);
``--features hard`` synthesizes the hard yardstick (docs/synth.md) instead of the default features.

It writes ``benchmarks/results/compare[_quick].{md,json}``: Acc, Edit, F1@{10,25,50} (mean ± std over
seeds), archive bytes (everything: codes, structure, decoder, metadata), code bytes, the storage ratio
(training feature bytes / archive bytes), retention (mean over metrics of method / original) and
retention above the blind floor (mean over metrics of (method - blind) / (original - blind)).

=========  =====================  ===========  =====  ======  ================================
dataset    videos (train / test)  every S-th   D      epochs  seeds
=========  =====================  ===========  =====  ======  ================================
breakfast  48 / 48 of split 1     4            256    20      3
50salads   40 / 10 (all split 1)  16           256    20      3
gtea       21 / 7 (all split 1)   2            256    20      3
=========  =====================  ===========  =====  ======  ================================

``--quick`` (about 10 minutes on 2 cores): breakfast only, at the same scale, 2 seeds. (Smaller runs
are not worth having: with 24 videos and 10 epochs MS-TCN stays at the blind floor whatever it is fed.) Jobs run in ``--workers`` processes of one torch thread each. Run from the
repository root::

    python3 benchmarks/compare.py [--quick] [--datasets breakfast gtea] [--workers 2]
        [--model mstcn asformer] [--sources lowrank mean blind] [--features hard]
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
from dataclasses import dataclass
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
METRICS = ("acc", "edit", "f1@10", "f1@25", "f1@50")
HEAD = {"acc": "Acc", "edit": "Edit", "f1@10": "F1@10", "f1@25": "F1@25", "f1@50": "F1@50"}
SOURCES = ("original", "lowrank", "tascond", "tascond-drop", "tascond-all", "random", "encoded", "tca", "mean", "coreset", "fp16",
           "pca", "blind")
COMPARED = ("mean", "coreset", "tca", "encoded", "random")
"""The baselines issue 5 asks our method (the defaults) to beat on the average of the five metrics."""
MODELS = ("mstcn", "asformer")
MODEL_NAMES = {"mstcn": "MS-TCN (4 stages x 10 layers, 64 maps)",
               "asformer": "ASFormer (encoder + 3 decoders, 10 blocks, 64 channels)"}


def ours(rows: dict) -> str:
    """The row the baselines are compared with: ``lowrank`` (``tascond condense``'s default) when run."""
    return "lowrank" if "lowrank" in rows else "tascond"


@dataclass(frozen=True)
class Scale:
    videos: int | None
    subsample: int
    dim: int = 256
    epochs: int = 20
    seeds: int = 3
    steps: int = 1500


FULL = {
    "breakfast": Scale(videos=48, subsample=4),
    "50salads": Scale(videos=None, subsample=16),
    "gtea": Scale(videos=None, subsample=2),
}
QUICK = {"breakfast": Scale(videos=48, subsample=4, seeds=2)}


def realdata() -> Path:
    env = os.environ.get("TASCOND_REALDATA")
    return Path(env) if env else REPO.parent / "shared" / "realdata"


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def synthesize(name: str, scale: Scale, work: Path, features: str = "default") -> Path:
    """``tascond synth --labels-from`` the real label files of ``name`` (once; reused when present)."""
    data = work / name / "data"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "tascond_cli", "synth", str(data), "--labels-from", str(realdata() / name),
               "--subsample", str(scale.subsample), "--dim", str(scale.dim), "--seed", "0", "--features", features]
        if scale.videos:
            cmd += ["--videos", str(scale.videos)]
        subprocess.run(cmd, check=True, capture_output=True)
    return data


def make_archives(name: str, scale: Scale, work: Path, device: str, sources: tuple[str, ...] = SOURCES) -> dict:
    """Write every archive of ``sources`` for one synthesized dataset; returns bytes and timings."""
    from tascond_cli.archive import storage_breakdown, write_archive
    from tascond_cli.data import open_dataset
    from tascond_cli.methods import METHODS, Config, condense_dataset, make_baseline, train_generator

    data = work / name / "data"
    dataset = open_dataset(data, parts=("train",))
    gen = Config(device=device).with_(generator__steps=scale.steps)
    needs_prior = any(s.startswith("tascond") or (s in METHODS and METHODS[s].needs_generator) for s in sources)
    t0 = time.perf_counter()
    prior = train_generator(dataset, gen) if needs_prior else None
    prior_seconds = time.perf_counter() - t0
    out: dict = {"train_feature_bytes": None, "archives": {}, "prior_seconds": round(prior_seconds, 1)}
    jobs = {
        "lowrank": lambda: make_baseline("lowrank", dataset, Config(device=device)),
        "tascond": lambda: condense_dataset(dataset, gen, prior=prior),
        "tascond-drop": lambda: condense_dataset(dataset, gen.with_(sampling__others="drop"), prior=prior),
        "tascond-all": lambda: condense_dataset(dataset, gen.with_(sampling__ratio=1.0), prior=prior),
    }
    for method in ("random", "encoded", "tca", "mean", "coreset", "fp16", "pca", "blind"):
        jobs[method] = lambda m=method: make_baseline(m, dataset, gen, prior=prior)
    jobs = {label: job for label, job in jobs.items() if label in sources}
    for label, job in jobs.items():
        t0 = time.perf_counter()
        result = job()
        seconds = time.perf_counter() - t0
        path = work / name / f"{label}.tcd"
        size = write_archive(result.archive, path, overwrite=True)
        parts = storage_breakdown(result.archive, total=size)
        out["train_feature_bytes"] = result.train_bytes
        out["archives"][label] = {
            "bytes": size,
            "code_bytes": parts["codes"]["share"],
            "kept_videos": result.kept_videos,
            "seconds": round(seconds + (prior_seconds if label.startswith("tascond") or METHODS[label].needs_generator
                                        else 0), 1),
        }
    return out


def train_source(name: str, source: str, scale: Scale, work: Path, device: str, model: str = "mstcn") -> dict:
    """``model`` trained on one source over the seeds, tested on the real test split."""
    from tascond_cli.data import open_dataset
    from tascond_cli.evaluate.protocol import archive_source, evaluate_sources, original_source
    from tascond_cli.evaluate.train import TrainConfig

    dataset = open_dataset(work / name / "data")
    src = original_source(dataset) if source == "original" else archive_source(work / name / f"{source}.tcd", dataset, source)
    t0 = time.perf_counter()
    config = TrainConfig(model=model, epochs=scale.epochs, device=device)
    report = evaluate_sources(dataset, [src], config, seeds=scale.seeds)
    r = report.results[0]
    return {"mean": r.mean, "std": r.std, "per_seed": r.per_seed, "storage_bytes": r.storage_bytes,
            "train_seconds": round(time.perf_counter() - t0, 1), "test_videos": len(report.test_videos)}


def summarise(name: str, scale: Scale, made: dict, scores: dict, model: str = "mstcn") -> dict:
    from tascond_cli.evaluate.protocol import above_floor, retention

    orig = scores["original"]["mean"]
    blind = scores["blind"]["mean"] if "blind" in scores else None
    rows = {}
    for source in [s for s in SOURCES if s in scores]:
        s = scores[source]
        row = {"mean": s["mean"], "std": s["std"], "per_seed": s["per_seed"],
               "retention": retention(s["mean"], orig),
               "above_floor": above_floor(s["mean"], orig, blind) if blind else None}
        if source == "original":
            row.update(bytes=made["train_feature_bytes"], code_bytes=made["train_feature_bytes"], kept_videos=None)
        else:
            row.update(made["archives"][source])
        row["storage_ratio"] = made["train_feature_bytes"] / row["bytes"]
        rows[source] = row
    return {"dataset": name, "model": model, "scale": scale.__dict__, "prior_seconds": made["prior_seconds"], "rows": rows,
            "verdict": verdicts(rows), "test_videos": scores["original"]["test_videos"]}


def verdicts(rows: dict) -> dict:
    """Our method against each baseline: the paired difference of average retention over the seeds."""
    from tascond_cli.evaluate.stats import paired_difference

    out = {}
    for m in [m for m in COMPARED if m in rows]:
        a, b = rows[ours(rows)], rows[m]
        diff = paired_difference(a["per_seed"], b["per_seed"], rows["original"]["mean"])
        out[m] = {
            "ours_avg": a["retention"]["avg"], "theirs_avg": b["retention"]["avg"],
            "paired_difference": diff.to_dict(), "beats": diff.verdict == "better",
            "ours_bytes": a["bytes"], "theirs_bytes": b["bytes"],
            "ours_code_bytes": a["code_bytes"], "theirs_code_bytes": b["code_bytes"],
        }
    return out


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def markdown(results: list[dict], command: str, seconds: float, day: str | None = None) -> str:
    models = ", ".join(dict.fromkeys(MODEL_NAMES[r.get("model", "mstcn")] for r in results))
    lines = [
        f"# tascond against the baselines ({day or date.today().isoformat()})",
        "",
        f"Command: `{command}` ({seconds / 60:.0f} min on {os.cpu_count()} CPU cores, {platform.machine()}).",
        f"{models}; mean ± std over seeds, tested on the real test split of each",
        "synthetic dataset. `archive` counts the whole file (codes, structure, decoder, metadata); `codes` is the",
        "code array alone (the paper's storage measure); `x` = training feature bytes / archive bytes.",
        "`ret.` = mean over the five metrics of method / original; `>blind` = mean over metrics of",
        "(method - blind) / (original - blind).",
        "",
    ]
    for res in results:
        sc = res["scale"]
        vids = f"{sc['videos']} + {sc['videos']}" if sc["videos"] else "all of split 1"
        model = {"mstcn": "MS-TCN", "asformer": "ASFormer"}[res.get("model", "mstcn")]
        lines += [
            f"## {model}, {res['dataset']}-like: {vids} videos, every {sc['subsample']}th frame, D = {sc['dim']}, "
            f"{sc['epochs']} epochs, {sc['seeds']} seeds, {res['test_videos']} test videos",
            "",
            "| train on | kept | " + " | ".join(HEAD[m] for m in METRICS) + " | archive | codes | x | ret. | >blind |",
            "|---|---:|" + "---:|" * len(METRICS) + "---:|---:|---:|---:|---:|",
        ]
        for source, row in res["rows"].items():
            kept = "all" if row["kept_videos"] is None else str(row["kept_videos"])
            cells = [f"{row['mean'][m]:.1f} ± {row['std'][m]:.1f}" for m in METRICS]
            lines.append(
                f"| {source} | {kept} | " + " | ".join(cells)
                + f" | {human(row['bytes'])} | {human(row['code_bytes'])} | {row['storage_ratio']:.0f}"
                + f" | {row['retention']['avg']:.1f}% | "
                + (f"{row['above_floor']['avg']:.1f}% |" if row["above_floor"] else "- |")
            )
        lines += ["", f"Our method (`{ours(res['rows'])}`, the defaults) against each baseline: the paired difference in five-metric average"
                  " retention over the same seeds, with its 95% interval (inside the noise: no difference); whole"
                  " archive; codes alone:", ""]
        for m, v in res["verdict"].items():
            d = v["paired_difference"]
            word = {"better": "beats", "worse": "loses to"}.get(d["verdict"], "is no different from")
            size = "smaller" if v["ours_bytes"] <= v["theirs_bytes"] else "larger"
            codes = "smaller" if v["ours_code_bytes"] <= v["theirs_code_bytes"] else "larger"
            lines.append(
                f"- {ours(res['rows'])} {word} {m}: {v['ours_avg']:.1f}% vs {v['theirs_avg']:.1f}%, paired difference "
                f"{d['mean']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}] points; archive "
                f"{human(v['ours_bytes'])} vs {human(v['theirs_bytes'])} ({size}); codes "
                f"{human(v['ours_code_bytes'])} vs {human(v['theirs_code_bytes'])} ({codes})"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Breakfast only, small: about 10 minutes.")
    parser.add_argument("--datasets", nargs="+", choices=sorted(FULL), help="Only these datasets.")
    parser.add_argument("--workers", type=int, default=2, help="Parallel processes (one torch thread each).")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto.")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="Scratch folder (datasets, archives).")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="Where the table goes.")
    parser.add_argument("--model", nargs="+", choices=MODELS, default=["mstcn"], help="The judges (default mstcn).")
    parser.add_argument("--sources", nargs="+", choices=SOURCES, help="Only these sources (original always).")
    parser.add_argument("--features", choices=("default", "hard"), default="default",
                        help="tascond synth's feature model (hard: the yardstick on which Mean loses).")
    parser.add_argument("--render", type=Path, metavar="RESULTS_JSON",
                        help="Train nothing: recompute the comparisons of a results file and rewrite it and its table.")
    args = parser.parse_args(argv)
    if args.render:
        return render(args.render)
    if not realdata().is_dir():
        print(f"skipping: real label files not found at {realdata()}", file=sys.stderr)
        return 0
    scales = QUICK if args.quick else FULL
    names = [n for n in scales if not args.datasets or n in args.datasets]
    sources = tuple(s for s in SOURCES if s == "original" or not args.sources or s in args.sources)
    models = list(dict.fromkeys(args.model))
    tag = ("compare_quick" if args.quick else "compare") + ("_hard" if args.features == "hard" else "")
    work = args.work / tag
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for n in names:
        synthesize(n, scales[n], work, args.features)
    with ProcessPoolExecutor(max_workers=args.workers, initializer=_one_thread) as pool:
        made_f = {n: pool.submit(make_archives, n, scales[n], work, args.device, sources) for n in names}
        # the original's training needs no archive: start it while the archives are made
        score_f = {(n, m, "original"): pool.submit(train_source, n, "original", scales[n], work, args.device, m)
                   for n in names for m in models}
        for n in names:
            made_f[n].result()
            print(f"[{time.perf_counter() - t_start:6.0f} s] {n}: archives written", file=sys.stderr, flush=True)
            for m in models:
                for source in sources[1:]:
                    score_f[(n, m, source)] = pool.submit(train_source, n, source, scales[n], work, args.device, m)
        scores: dict = {(n, m): {} for n in names for m in models}
        for (n, m, source), f in score_f.items():
            scores[n, m][source] = f.result()
            print(f"[{time.perf_counter() - t_start:6.0f} s] {n}/{m}/{source}: "
                  f"acc {scores[n, m][source]['mean']['acc']:.1f} edit {scores[n, m][source]['mean']['edit']:.1f}",
                  file=sys.stderr, flush=True)
    results = [summarise(n, scales[n], made_f[n].result(), scores[n, m], m) for n in names for m in models]
    seconds = time.perf_counter() - t_start
    command = "python3 benchmarks/compare.py" + (" --quick" if args.quick else "")
    if args.datasets:
        command += " --datasets " + " ".join(args.datasets)
    if args.features != "default":
        command += f" --features {args.features}"
    if models != ["mstcn"]:
        command += " --model " + " ".join(models)
    if args.sources:
        command += " --sources " + " ".join(args.sources)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{tag}.json").write_text(json.dumps(
        {"date": date.today().isoformat(), "command": command, "seconds": round(seconds), "results": results},
        indent=2) + "\n")
    (args.out / f"{tag}.md").write_text(markdown(results, command, seconds))
    print(markdown(results, command, seconds))
    return 0


def render(path: Path) -> int:
    """Recompute the verdicts of a results file (``compare[_quick].json``) and rewrite it and its table."""
    data = json.loads(path.read_text())
    for res in data["results"]:
        res["verdict"] = verdicts(res["rows"])
    path.write_text(json.dumps(data, indent=2) + "\n")
    table = markdown(data["results"], data["command"], data["seconds"], data["date"])
    path.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
