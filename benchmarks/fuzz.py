"""Fuzz the archive reader and restore with hostile archives (issue 11); see tests/fuzz/runner.py.

    python3 benchmarks/fuzz.py --family byte payload hdf5 chunk --count 100000 --work benchmarks/work/fuzz \\
        [--timeout 10] [--mem 2GiB] [--workers 2] [--resume]
    python3 benchmarks/fuzz.py --quick

Runs mutants 0 .. count-1 of each family (tests/fuzz/mutate.py; ``chunk``: chunked format-1.4 archives,
read whole and lazily) in memory-capped worker processes,
prints a table of the outcome classes per family, and exits 1 if any mutant crashed, hung, ran out of
memory, restored non-finite features or wrote outside its output folder. Every such mutant's bytes are
kept under WORK/found/<class>/ and its record in WORK/results.jsonl; --resume continues a run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fuzz package (and conftest's tiny dataset)

from fuzz.mutate import FAMILIES  # noqa: E402
from fuzz.runner import CLASSES, Options, parse_size, run  # noqa: E402

QUICK_COUNT = 300


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", nargs="+", choices=FAMILIES, default=list(FAMILIES), help="mutation families")
    parser.add_argument("--count", type=int, default=None, help="mutants per family (default 10000)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_COUNT} mutants per family")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "fuzz", help="work folder")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per mutant before it is a hang")
    parser.add_argument("--mem", default="2GiB", help="address-space cap of a worker (0: none)")
    parser.add_argument("--parse-timeout", type=float, default=5.0,
                        help="the reader's HDF5 watchdog deadline, when it has one (below --timeout)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--resume", action="store_true", help="keep the work folder's results, skip those done")
    parser.add_argument("--show", type=int, default=20, help="findings to list at the end")
    args = parser.parse_args(argv)
    count = args.count if args.count is not None else QUICK_COUNT if args.quick else 10_000
    options = Options(timeout=args.timeout, mem=parse_size(args.mem), workers=args.workers,
                      parse_timeout=args.parse_timeout)

    last = [time.monotonic()]

    def progress(record: dict, report) -> None:
        if record["class"] in ("refused", "accepted"):
            now = time.monotonic()
            if now - last[0] < 10:
                return
            last[0] = now
        else:
            print(f"  {record['class']:9} {record['family']}-{record['index']} ({record['seed']}): "
                  f"{record['what']} -> {record['detail'][:200]}", flush=True)
        done = sum(sum(c.values()) for c in report.counts.values())
        print(f"[{done}/{count * len(args.family)}] " + ", ".join(
            f"{k} {sum(c[k] for c in report.counts.values())}" for k in CLASSES), flush=True)

    print(f"fuzzing {', '.join(args.family)}: {count} mutants each, {options.workers} workers, "
          f"timeout {options.timeout:g} s, memory cap {args.mem}; work folder {args.work}", flush=True)
    report = run(args.family, count, args.work, options, resume=args.resume, on_result=progress)
    print()
    print(report.table())
    watchdog = report.read_options.get("parse_timeout")
    print(f"\n{report.seconds:.0f} s; results in {args.work / 'results.jsonl'}; reader watchdog deadline: "
          + (f"{watchdog:g} s" if watchdog is not None else "none (or the reader's default)"))
    if report.findings:
        print(f"\n{len(report.findings)} findings (bytes under {args.work / 'found'}):")
        for rec in report.findings[: args.show]:
            print(f"  {rec['class']:9} {rec['family']}-{rec['index']} ({rec['seed']}): {rec['what']} -> "
                  f"{rec['detail'][:200]}")
    return 1 if report.bad() else 0


if __name__ == "__main__":
    sys.exit(main())
