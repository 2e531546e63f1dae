"""Random access into archives (issue 12): one video from a chunked 1.4 archive vs a single-frame 1.3 one.

    python3 benchmarks/random_access.py            # ~40 MB fp16 archive of a Breakfast-like set (minutes)
    python3 benchmarks/random_access.py --quick    # ~4 MB, zstd level 3 (about a minute)

Makes a Breakfast-like dataset (``tascond synth``), its ``fp16`` archive, and writes that archive twice:
one zstd frame (what 1.0 to 1.3 write; every read decompresses and parses everything) and chunked (format
1.4, 1 MiB chunks). Then times, median of ``--repeat`` runs:

- the whole restore (``read_archive`` + ``restore_archive`` of every video, in this process);
- one video, in this process: ``open_archive`` + ``restore_archive(videos=[name])``, and
  ``ArchiveDataset(path)[i]``, for a few videos (first, middle, last);
- the command line, as a user runs it: ``tascond restore A --video NAME`` and ``tascond restore A``
  (Python start-up and imports included).

Prints a markdown table and writes it, with the raw timings, under ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _synth(work: Path, videos: int, dim: int, subsample: int) -> Path:
    data = work / "data"
    if not (data / "mapping.txt").exists():
        subprocess.run(["tascond", "synth", str(data), "--videos", str(videos), "--subsample", str(subsample),
                        "--dim", str(dim), "--force"], check=True, stdout=subprocess.DEVNULL)
    return data


def _archives(work: Path, data: Path, level: int) -> dict[str, Path]:
    """The fp16 archive of ``data`` written as one frame (1.x single frame) and chunked (1.4)."""
    from tascond_cli.archive import read_archive, write_archive
    from tascond_cli.methods import Config, make_baseline

    paths = {"single frame (1.0)": work / "single.tcd", "chunked (1.4)": work / "chunked.tcd"}
    if all(p.exists() for p in paths.values()):
        return paths
    archive = make_baseline("fp16", data, Config(device="cpu")).archive
    for (label, path), chunked in zip(paths.items(), (False, True)):
        t0 = time.perf_counter()
        write_archive(archive, path, level=level, overwrite=True, chunked=chunked)
        print(f"wrote {label}: {path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s", flush=True)
    assert read_archive(paths["chunked (1.4)"]) == read_archive(paths["single frame (1.0)"])
    return paths


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _in_process(path: Path, names: list[str], work: Path, repeat: int) -> dict[str, float]:
    from tascond_cli.archive import open_archive, read_archive
    from tascond_cli.restore import ArchiveDataset, restore_archive

    out = work / "out"

    def whole() -> None:
        shutil.rmtree(out, ignore_errors=True)
        restore_archive(read_archive(path), out)

    def one(name: str) -> None:
        shutil.rmtree(out, ignore_errors=True)
        archive = open_archive(path)
        restore_archive(archive, out, videos=[name])
        getattr(archive, "close", lambda: None)()

    def item(name: str) -> None:
        ds = ArchiveDataset(path)
        ds[ds.names.index(name)]

    opened = open_archive(path)
    chunks = getattr(opened, "chunks_read", None)
    if chunks is not None:
        for name in names:
            opened.video(opened.index_of(name))
    result = {
        "whole restore": _median(whole, repeat),
        "one video": statistics.median(_median(lambda n=n: one(n), repeat) for n in names),
        "ArchiveDataset[i]": statistics.median(_median(lambda n=n: item(n), repeat) for n in names),
        "chunks to open": chunks,
        "chunks for the videos": None if chunks is None else opened.chunks_read - chunks,
        "chunks": None if chunks is None else opened.reader.index.count,
    }
    shutil.rmtree(out, ignore_errors=True)
    return result


def _cli(path: Path, name: str, work: Path, repeat: int) -> dict[str, float]:
    out = work / "cli-out"
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def run(*extra: str) -> None:
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(["tascond", "restore", str(path), "-o", str(out), *extra], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    result = {"CLI --video": _median(lambda: run("--video", name), repeat), "CLI whole": _median(run, repeat)}
    shutil.rmtree(out, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~4 MB archive at zstd level 3")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "random_access")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (the median is reported)")
    parser.add_argument("--dim", type=int, default=672, help="feature dimension (672: a ~42 MB archive)")
    args = parser.parse_args(argv)
    videos, dim, level = (12, 512, 3) if args.quick else (115, args.dim, 19)
    work = args.work / ("quick" if args.quick else f"full-D{dim}")
    work.mkdir(parents=True, exist_ok=True)
    data = _synth(work, videos, dim, subsample=4)
    paths = _archives(work, data, level)
    from tascond_cli.archive import read_archive

    names = read_archive(paths["chunked (1.4)"]).video_names
    picks = [names[0], names[len(names) // 2], names[-1]]
    rows = {}
    for label, path in paths.items():
        rows[label] = {"MB": path.stat().st_size / 1e6, **_in_process(path, picks, work, args.repeat),
                       **_cli(path, picks[1], work, args.repeat)}
        print(label, json.dumps(rows[label]), flush=True)
    lines = _table(rows, len(names))
    print("\n".join(lines))
    (work / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    (work / "results.md").write_text("\n".join(lines) + "\n")
    return 0


def _table(rows: dict[str, dict], videos: int) -> list[str]:
    lines = [f"{videos} videos; one video: median over the first, middle and last video",
             "", "| archive | MB | whole restore (s) | one video (s) | ArchiveDataset[i] (s) | one / whole | "
             "CLI whole (s) | CLI --video (s) | chunks read (open + videos) |", "|---|---|---|---|---|---|---|---|---|"]
    for label, r in rows.items():
        chunks = "all" if r["chunks"] is None else f"{r['chunks to open']} + {r['chunks for the videos']} of {r['chunks']}"
        lines.append(f"| {label} | {r['MB']:.1f} | {r['whole restore']:.2f} | {r['one video']:.3f} | "
                     f"{r['ArchiveDataset[i]']:.3f} | {r['one video'] / r['whole restore']:.1%} | {r['CLI whole']:.2f} | "
                     f"{r['CLI --video']:.2f} | {chunks} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
