"""Condense at scale (issue 12): the full-resolution Breakfast-like training split of split 1.

The script

1. makes a label folder holding split 1's training videos of the real Breakfast label files
   (``$TASCOND_REALDATA/breakfast``, default ``shared/realdata/breakfast`` next to the checkout; 1,460
   videos, 3.1M frames) and one test video, so that ``tascond synth`` writes the training split alone;
   without the real files, ``tascond synth``'s own Breakfast profile stands in;
2. synthesizes ``--fraction`` of those training videos (chosen reproducibly by ``tascond synth
   --videos``) at every frame and D = 2048: all of them are about 25 GB of float32 features;
3. condenses them with the default method (``lowrank``, default settings, on the CPU) in a fresh
   process, as ``tascond condense`` does (``make_baseline`` then ``write_archive``), timing every phase
   from the progress callback (a phase ends at its last report; ``error`` is the reconstruction error
   measured after the last phase; ``write`` is writing the archive), and reads that process's peak
   resident set size (``ru_maxrss``, from ``os.wait4``).

It reports the wall time per phase, the peak memory, the training feature bytes, the archive's bytes and
the whole-archive ratio (training feature bytes / archive bytes), in
``benchmarks/results/scale[_quick|_FRACTION].{md,json}`` with the command and the date. Run from the repository root::

    python3 benchmarks/scale.py --quick                     # 5% of the videos (73): a few minutes on 2 cores
    python3 benchmarks/scale.py --fraction 1 --work DIR     # the whole split: ~26 GB of features under DIR
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
QUICK_FRACTION = 0.05


sys.path.insert(0, str(HERE))
from yardstick import realdata  # noqa: E402  ($TASCOND_REALDATA, else shared/realdata next to the checkout)


def _bundle(path: Path) -> list[str]:
    return [line.strip()[:-4] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def label_folder(source: Path, out: Path) -> int:
    """``out``: the mapping, split 1's training bundle and one test video of ``source``, label files
    linked; returns the number of training videos."""
    train = _bundle(source / "splits/train.split1.bundle")
    test = _bundle(source / "splits/test.split1.bundle")[:1]
    if out.exists():
        shutil.rmtree(out)
    (out / "groundTruth").mkdir(parents=True)
    (out / "splits").mkdir()
    shutil.copyfile(source / "mapping.txt", out / "mapping.txt")
    for name in train + test:
        (out / "groundTruth" / f"{name}.txt").symlink_to((source / "groundTruth" / f"{name}.txt").resolve())
    (out / "splits/train.split1.bundle").write_text("".join(f"{v}.txt\n" for v in train))
    (out / "splits/test.split1.bundle").write_text("".join(f"{v}.txt\n" for v in test))
    return len(train)


def synth(out: Path, videos: int, labels: Path | None) -> float:
    """``tascond synth`` of ``videos`` training videos (every frame, D = 2048); its wall seconds."""
    cmd = ["tascond", "synth", str(out), "--videos", str(videos), "--dim", "2048", "--force"]
    cmd += ["--labels-from", str(labels)] if labels is not None else ["--profile", "breakfast"]
    print("+ " + shlex.join(cmd), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def child(data: Path, archive: Path, report: Path) -> None:
    """In the measured process: condense ``data`` as ``tascond condense`` does, timing every phase."""
    from tascond_cli.archive import write_archive
    from tascond_cli.data import feature_bytes, open_dataset
    from tascond_cli.methods import Config, make_baseline

    t0 = time.perf_counter()
    dataset = open_dataset(data, parts=("train",))
    marks = {"open": time.perf_counter() - t0}  # phase -> seconds since t0 of its last report

    def on_phase(name: str, done: int, total: int) -> None:
        marks[name] = time.perf_counter() - t0

    result = make_baseline("lowrank", dataset, Config(device="cpu"), on_phase)
    marks["error"] = time.perf_counter() - t0
    size = write_archive(result.archive, archive, overwrite=True)
    marks["write"] = time.perf_counter() - t0
    phases, before = {}, 0.0
    for name, end in marks.items():  # phases run one after the other: each from the end of the one before
        phases[name] = round(end - before, 2)
        before = end
    report.write_text(json.dumps({
        "phases": phases, "seconds": round(before, 2), "archive_bytes": size, "videos": len(dataset.train),
        "frames": int(sum(v.num_frames for v in dataset.train)), "train_bytes": feature_bytes(dataset.train),
        "reconstruction_error": result.error,
    }))


def measured_child(data: Path, archive: Path, report: Path) -> dict:
    """Run :func:`child` in a fresh process; its report with the process's peak resident set size."""
    cmd = [sys.executable, __file__, "--child", str(data), str(archive), str(report)]
    proc = subprocess.Popen(cmd)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"condense failed ({proc.returncode})")
    return {**json.loads(report.read_text()), "peak_bytes": int(usage.ru_maxrss) * 1024}


def markdown(r: dict) -> str:
    gb = 1e9
    lines = [
        f"# Condense at scale: {r['videos']:,} of {r['split_videos']:,} training videos ({r['fraction']:g})",
        "",
        f"{r['date']}, {r['machine']}. Command: `{r['command']}`",
        "",
        f"Data: {r['data']}; {r['frames']:,} frames, {r['train_bytes'] / gb:.2f} GB of training features "
        f"(synthesized in {r['synth_seconds']:.0f} s). Condense: `lowrank`, the defaults, on the CPU.",
        "",
        "| phase | seconds |",
        "|---|---|",
        *[f"| {name} | {sec:.1f} |" for name, sec in r["phases"].items()],
        f"| **total** | **{r['seconds']:.1f}** |",
        "",
        "| peak RSS | archive | whole-archive ratio | reconstruction error |",
        "|---|---|---|---|",
        f"| {r['peak_bytes'] / 2**20:,.0f} MiB | {r['archive_bytes']:,} bytes | {r['ratio']:.0f}x | "
        f"{r['reconstruction_error']:.3f} |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(*map(Path, argv[1:4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fraction", type=float, default=1.0, help="Fraction of the training videos (default: all).")
    parser.add_argument("--quick", action="store_true", help=f"--fraction {QUICK_FRACTION}: about 10 minutes.")
    parser.add_argument("--work", type=Path, default=HERE / "work" / "scale", help="Scratch folder (the data).")
    parser.add_argument("--results", type=Path, default=HERE / "results", help="Where the tables go.")
    parser.add_argument("--keep", action="store_true", help="Keep the synthesized data afterwards.")
    args = parser.parse_args(argv)
    fraction = QUICK_FRACTION if args.quick else args.fraction
    if not 0 < fraction <= 1:
        raise SystemExit(f"--fraction must be in (0, 1], got {fraction}")
    source = realdata() / "breakfast"
    args.work.mkdir(parents=True, exist_ok=True)
    labels = args.work / "labels" if (source / "mapping.txt").is_file() else None
    total = label_folder(source, labels) if labels is not None else 1460
    videos = max(1, round(fraction * total))
    data = args.work / "data"
    synth_seconds = synth(data, videos, labels)
    run = measured_child(data, args.work / "lowrank.tcd", args.work / "report.json")
    report = {
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}",
        "command": "python3 benchmarks/scale.py" + (" --quick" if args.quick else f" --fraction {fraction:g}"),
        "data": ("tascond synth --labels-from $TASCOND_REALDATA/breakfast (split 1, training videos)" if labels
                 else "tascond synth --profile breakfast") + ", every frame, D = 2048",
        "fraction": fraction, "split_videos": total, "synth_seconds": round(synth_seconds, 1), **run,
        "ratio": run["train_bytes"] / run["archive_bytes"],
    }
    if not args.keep:
        shutil.rmtree(data)
    tag = "scale_quick" if args.quick else "scale" if fraction == 1 else f"scale_{fraction:g}"
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{tag}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.results / f"{tag}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
