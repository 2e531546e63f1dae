"""Peak resident memory of every command at two dataset sizes (issue 12: memory that does not grow).

The script

1. synthesizes a Breakfast-like set at full resolution (every frame, D = 2048) with ``tascond synth``,
   over the real label files of ``$TASCOND_REALDATA/breakfast`` (default: ``shared/realdata/breakfast``
   next to the checkout) when they are there, else over ``tascond synth``'s own Breakfast profile:
   4N training and 4N test videos of split 1;
2. makes the small set from it: N of its training videos, the longest of them among these (so both sets
   share their longest video, and a buffer of one video is the same size in both), and the same N test
   videos in both sets (files hard-linked, not copied);
3. runs, on each set, every command below in a fresh process and reads that process's peak resident
   set size (``ru_maxrss`` from ``os.wait4``: anonymous memory plus the file pages it mapped and touched,
   as the kernel counts it): ``tascond condense`` (default method, ``lowrank``), ``tascond baseline``
   with every method of :data:`tascond_cli.methods.BASELINES`, ``tascond restore`` of the ``lowrank``
   and of the ``fp16`` archive, and ``tascond evaluate --model mstcn`` (one seed, ``--epochs``) trained
   on the original training split and on the ``lowrank`` archive (decoded on the fly).

It reports per command the peak at N and at 4N, their ratio, the archive's own size at both, and the
ratio once the growth of the archive is taken off the larger peak (``(peak_4N - (archive_4N -
archive_N)) / peak_N``): the goal of issue 12 is a ratio under 1.2 for every command, excepting growth
equal to the archive's own size. The methods with a generator run ``--steps`` prior steps and
``--invert-iters`` inversion iterations (defaults 100 and 20, not the 1500 and 300 of a real run): their
batches, and so their memory, do not depend on the number of steps.

Results go to ``benchmarks/results/memory[_quick].{md,json}`` with the command and the date (``--only``:
to ``memory_partial``, and its rows replace those of the full table, which says when they were measured
again). Run from the
repository root (N = 16: about an hour on 2 CPU cores; ``--quick``: N = 2, about 5 minutes)::

    python3 benchmarks/memory.py [--quick] [--n 16] [--work benchmarks/work/memory]

Why N = 16: the commands hold buffers of a fixed size, whatever the dataset (the generator methods'
prior trains from a frame pool of at most 256 MiB, :class:`tascond_cli.condense.prior.PriorConfig`
``pool_mb``; inversion reads batches of at most 32,768 frames, 256 MiB at D = 2048). A set smaller than
those buffers fills them only in part, so its peak still grows with the data up to them, as designed.
At N = 16 the small set's training features (about 270 MiB) already exceed both, so the ratio measures
what the issue asks: growth beyond the batch sizes. The table's header gives both sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GOAL = 1.2
"""Issue 12's bound on peak(4N) / peak(N)."""


sys.path.insert(0, str(HERE))
from yardstick import realdata  # noqa: E402  ($TASCOND_REALDATA, else shared/realdata next to the checkout)


def run_peak(cmd: list[str], log: Path) -> tuple[int, float]:
    """Run ``cmd`` (stdout and stderr to ``log``); its peak resident set size in bytes and wall seconds.

    ``os.wait4`` returns the resource usage of exactly this child (and its own waited children), so every
    command is measured in a fresh process of its own. A command that fails stops the benchmark.
    """
    t0 = time.perf_counter()
    with open(log, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"failed ({proc.returncode}): {shlex.join(cmd)}\n{tail}")
    return int(usage.ru_maxrss) * 1024, seconds  # ru_maxrss is in KiB on Linux


def synth(out: Path, videos: int, labels: Path | None, seed: int) -> None:
    """``tascond synth`` of ``videos`` train and test videos of split 1, every frame, D = 2048."""
    cmd = ["tascond", "synth", str(out), "--videos", str(videos), "--dim", "2048", "--seed", str(seed), "--force"]
    if labels is not None:
        cmd += ["--labels-from", str(labels)]
    print("+ " + shlex.join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def _bundle(path: Path) -> list[str]:
    return [line.strip()[:-4] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def subset(large: Path, small: Path, n: int) -> dict[str, list[str]]:
    """``small``: ``n`` of ``large``'s training videos (its longest first, then the bundle's order) and its
    first ``n`` test videos, hard-linked; returns the chosen names per part."""
    from tascond_cli.data import read_npy_header

    train, test = _bundle(large / "splits/train.split1.bundle"), _bundle(large / "splits/test.split1.bundle")
    frames = {name: read_npy_header(large / "features" / f"{name}.npy")[0][1] for name in train}
    longest = max(train, key=lambda name: (frames[name], name))
    chosen = {"train": [longest] + [v for v in train if v != longest][: n - 1], "test": test[:n]}
    if small.exists():
        shutil.rmtree(small)
    for sub in ("features", "groundTruth", "splits"):
        (small / sub).mkdir(parents=True)
    shutil.copyfile(large / "mapping.txt", small / "mapping.txt")
    for name in chosen["train"] + chosen["test"]:
        for sub, ext in (("features", "npy"), ("groundTruth", "txt")):
            _link(large / sub / f"{name}.{ext}", small / sub / f"{name}.{ext}")
    for part, names in chosen.items():
        (small / "splits" / f"{part}.split1.bundle").write_text("".join(f"{v}.txt\n" for v in names))
    return chosen


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _sizes(small: Path, large: Path) -> tuple[int, int] | None:
    """Training videos of the two sets of an earlier run (None when there is none)."""
    bundles = [root / "splits/train.split1.bundle" for root in (small, large)]
    return tuple(len(_bundle(b)) for b in bundles) if all(b.is_file() for b in bundles) else None


def keep_test(large: Path, names: list[str]) -> None:
    """Rewrite ``large``'s test bundle to ``names`` (both sets test on the same videos)."""
    (large / "splits/test.split1.bundle").write_text("".join(f"{v}.txt\n" for v in names))


def commands(data: Path, out: Path, args: argparse.Namespace) -> list[tuple[str, list[str], Path | None]]:
    """``(row name, command, archive it writes or None)`` for every measured command, in order."""
    from tascond_cli.methods import BASELINES, METHODS

    rows = [("condense", ["tascond", "condense", str(data), "-o", str(out / "lowrank.tcd"), "--device", "cpu",
                          "--force"], out / "lowrank.tcd")]
    for name in BASELINES:
        cmd = ["tascond", "baseline", name, str(data), "-o", str(out / f"{name}.tcd"), "--device", "cpu", "--force"]
        if METHODS[name].needs_generator:
            cmd += ["--steps", str(args.steps), "--invert-iters", str(args.invert_iters)]
        rows.append((f"baseline {name}", cmd, out / f"{name}.tcd"))
    for name in ("lowrank", "fp16"):
        rows.append((f"restore ({name})", ["tascond", "restore", str(out / f"{name}.tcd"), "-o",
                                           str(out / f"restored_{name}"), "--device", "cpu", "--force"], None))
    train = {"original": [], "lowrank": ["--train", str(out / "lowrank.tcd")]}
    for source, extra in train.items():
        rows.append((f"evaluate ({source})", ["tascond", "evaluate", "--data", str(data), "--model", "mstcn",
                                              *extra, "--seeds", "1", "--epochs", str(args.epochs),
                                              "--device", "cpu", "--json"], None))
    return rows


def measure(data: Path, out: Path, args: argparse.Namespace) -> dict[str, dict]:
    """Every command of :func:`commands` on ``data``: peak bytes, seconds and the archive's bytes."""
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, cmd, archive in commands(data, out, args):
        if args.only and not any(name.startswith(prefix) for prefix in args.only):
            continue
        peak, seconds = run_peak(cmd, out / (name.replace(" ", "_").replace("(", "").replace(")", "") + ".log"))
        size = archive.stat().st_size if archive is not None else None
        results[name] = {"peak_bytes": peak, "seconds": round(seconds, 1), "archive_bytes": size}
        print(f"  {name}: peak {peak / 2**20:.0f} MiB, {seconds:.0f} s", file=sys.stderr, flush=True)
    reads = {"restore (lowrank)": out / "lowrank.tcd", "restore (fp16)": out / "fp16.tcd",
             "evaluate (lowrank)": out / "lowrank.tcd"}
    for name, archive in reads.items():  # the archive a command reads
        if name in results:
            results[name]["archive_bytes"] = archive.stat().st_size
    return results


def rows(small: dict, large: dict) -> list[dict]:
    """Per command: both peaks, the ratio, and the ratio with the archive's growth taken off."""
    table = []
    for name in small:
        a, b = small[name], large[name]
        growth = (b["archive_bytes"] or 0) - (a["archive_bytes"] or 0)
        ratio = b["peak_bytes"] / a["peak_bytes"]
        net = (b["peak_bytes"] - max(growth, 0)) / a["peak_bytes"]
        table.append({"command": name, "peak_n": a["peak_bytes"], "peak_4n": b["peak_bytes"], "ratio": round(ratio, 3),
                      "archive_n": a["archive_bytes"], "archive_4n": b["archive_bytes"], "ratio_less_archive":
                      round(net, 3), "ok": net < GOAL, "seconds_n": a["seconds"], "seconds_4n": b["seconds"]})
    return table


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.1f}"


def markdown(report: dict) -> str:
    """The results table, with how it was made."""
    lines = [
        f"# Peak resident memory at N = {report['n']} and 4N = {4 * report['n']} training videos",
        "",
        f"{report['date']}, {report['machine']}. Command: `{report['command']}`",
        "",
        f"Data: {report['data']}; training features {_mib(report['train_bytes_n'])} MiB at N and "
        f"{_mib(report['train_bytes_4n'])} MiB at 4N (longest video {report['longest_frames']:,} frames in both).",
        *([] if "buffers" not in report else [
            "Fixed buffers, filled at both sizes when the small set exceeds them: " + ", ".join(
                f"{name} {_mib(size)} MiB" for name, size in report["buffers"].items()) + "."]),
        "Peak: the process's maximum resident set size (`ru_maxrss`). Goal: ratio under "
        f"{GOAL}, excepting growth equal to the archive's own size (`ratio - archive`: "
        "(peak 4N - archive growth) / peak N).",
        "",
        "| command | peak N (MiB) | peak 4N (MiB) | ratio | archive N (MiB) | archive 4N (MiB) | ratio - archive "
        "| under 1.2 | seconds N / 4N |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for again in report.get("remeasured", []):
        lines[2] += f"; measured again on {again['date']}: {', '.join(again['rows'])}, with `{again['command']}`"
    for r in report["rows"]:
        lines.append(
            f"| `{r['command']}` | {_mib(r['peak_n'])} | {_mib(r['peak_4n'])} | {r['ratio']:.2f} | "
            f"{_mib(r['archive_n'])} | {_mib(r['archive_4n'])} | {r['ratio_less_archive']:.2f} | "
            f"{'yes' if r['ok'] else '**no**'} | {r['seconds_n']:.0f} / {r['seconds_4n']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def fixed_buffers(dim: int) -> dict[str, int]:
    """Bytes of the largest buffers whose size does not depend on the dataset, at feature dimension ``dim``."""
    from tascond_cli.condense.invert import InvertConfig
    from tascond_cli.condense.prior import PriorConfig

    return {"prior frame pool": int(PriorConfig.pool_mb * 2**20),
            "inversion batch": InvertConfig.batch_frames * 4 * dim}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 2: a smoke run of the same path (minutes).")
    parser.add_argument("--n", type=int, default=None, help="Training videos of the small set (default 16; quick 2).")
    parser.add_argument("--work", type=Path, default=HERE / "work" / "memory", help="Scratch folder.")
    parser.add_argument("--results", type=Path, default=HERE / "results", help="Where the tables go.")
    parser.add_argument("--steps", type=int, default=100, help="Prior steps of the generator methods.")
    parser.add_argument("--invert-iters", type=int, default=20, help="Inversion iterations of the generator methods.")
    parser.add_argument("--epochs", type=int, default=1, help="MS-TCN epochs of evaluate.")
    parser.add_argument("--seed", type=int, default=0, help="tascond synth's seed.")
    parser.add_argument("--only", nargs="+", default=None, metavar="PREFIX",
                        help="Measure only the commands whose row starts so (e.g. 'baseline fp16' restore); the "
                        "archives they read must be there from an earlier run. Results go to memory_partial, and "
                        "replace those rows of memory[_quick] (the other rows kept) when that run used the same sets.")
    args = parser.parse_args(argv)
    n = args.n or (2 if args.quick else 16)
    labels = realdata() / "breakfast"
    labels = labels if (labels / "mapping.txt").is_file() else None
    large, small = args.work / "data_4n", args.work / "data_n"
    args.work.mkdir(parents=True, exist_ok=True)
    if not (args.only and _sizes(small, large) == (n, 4 * n)):  # --only reuses the sets of an earlier run
        synth(large, 4 * n, labels, args.seed)
        chosen = subset(large, small, n)
        keep_test(large, chosen["test"])
    from tascond_cli.data import feature_bytes, open_dataset

    sets = {key: open_dataset(path, parts=("train",)) for key, path in (("n", small), ("4n", large))}
    measured = {}
    for key, path in (("n", small), ("4n", large)):
        print(f"{key}: {len(sets[key].train)} training videos", file=sys.stderr, flush=True)
        measured[key] = measure(path, args.work / f"out_{key}", args)
    report = {
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}",
        "command": "python3 benchmarks/memory.py" + (" --quick" if args.quick else "") + (
            f" --n {args.n}" if args.n else ""),
        "n": n,
        "data": ("tascond synth --labels-from $TASCOND_REALDATA/breakfast" if labels else "tascond synth (profile "
                 "breakfast)") + ", every frame, D = 2048",
        "train_bytes_n": feature_bytes(sets["n"].train),
        "train_bytes_4n": feature_bytes(sets["4n"].train),
        "longest_frames": max(v.num_frames for v in sets["4n"].train),
        "buffers": fixed_buffers(2048),
        "steps": args.steps, "invert_iters": args.invert_iters, "epochs": args.epochs,
        "measured": measured,
        "rows": rows(measured["n"], measured["4n"]),
    }
    if args.only:
        report["command"] += " --only " + shlex.join(args.only)
    tag = "memory_partial" if args.only else "memory_quick" if args.quick else "memory"
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{tag}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.results / f"{tag}.md").write_text(markdown(report))
    print(markdown(report))
    full = args.results / ("memory_quick.json" if args.quick else "memory.json")
    if args.only and full.is_file():
        merged = merge(json.loads(full.read_text()), report)
        if merged is not None:
            full.write_text(json.dumps(merged, indent=2) + "\n")
            full.with_suffix(".md").write_text(markdown(merged))
            print(f"updated {len(report['rows'])} rows of {full} and {full.with_suffix('.md').name}", file=sys.stderr)


def merge(full: dict, partial: dict) -> dict | None:
    """``full`` (a whole run's report) with the rows ``partial`` (an ``--only`` run) measured again, the
    others kept as they were; ``None`` (nothing merged) when the two runs are not of the same sets."""
    if (full["n"], full["train_bytes_n"], full["train_bytes_4n"]) != (
            partial["n"], partial["train_bytes_n"], partial["train_bytes_4n"]):
        print("not merged: the sets differ from the full run's", file=sys.stderr)
        return None
    out = dict(full)
    out["measured"] = {key: {**full["measured"][key], **partial["measured"][key]} for key in ("n", "4n")}
    out["rows"] = rows(out["measured"]["n"], out["measured"]["4n"])
    out["remeasured"] = [*full.get("remeasured", []), {"date": partial["date"], "command": partial["command"],
                                                        "rows": [r["command"] for r in partial["rows"]]}]
    return out


if __name__ == "__main__":
    main()
