"""Run archive mutants in restartable, memory-capped worker processes, and classify each one.

A run makes mutants ``0 .. count-1`` of each family of :mod:`fuzz.mutate` and hands them, one at a time,
to long-lived worker processes (``workers`` of them). A worker makes the mutant from its
``(family, index)`` (so nothing untrusted crosses a process boundary, and nothing is pickled: parent and
worker talk in JSON lines over pipes; the parent makes a finding's mutant again to keep its bytes), then:

1. reads it with :func:`tascond_cli.archive.read_archive` (a chunked archive, format 1.4, then again
   with :func:`tascond_cli.archive.open_archive`, which reads it lazily);
2. if that accepts it, restores it with :func:`tascond_cli.restore.restore_archive` to ``run/out``;
3. checks what the restore wrote: every ``features/*.npy`` finite, nothing outside ``run/out`` (nor in
   the worker's working folder), nothing left behind after a refusal.

Each mutant gets one class:

``refused``
    the reader (or the restore) raised the package's clean error (:class:`TascondError`, e.g.
    :class:`ArchiveError`): what a hostile archive should get;
``accepted``
    read and restored, every feature finite, nothing written where it should not be;
``crash``
    any other Python exception, or the worker died from a signal or exited on its own;
``hang``
    no answer within the per-mutant timeout: the worker is killed (its whole process group) and
    a fresh one continues with the next mutant;
``oom``
    :class:`MemoryError` (or torch's allocation failure) under the worker's address-space cap
    (``RLIMIT_AS``), or the worker killed by the kernel, or aborted on a failed allocation;
``nonfinite``
    the restore succeeded but wrote NaN or infinity;
``escape``
    a file written outside the output folder (or the worker's working folder touched, or files left
    behind by a restore that failed).

The last five are findings (:data:`BAD`). The work folder keeps everything needed to resume and to
reproduce::

    seeds/*.tcd                        the seed archives: a mutant index names a mutant of these
    meta.json                          library versions and the seeds' SHA-256
    results.jsonl                      one JSON object per finished mutant (family, index, seed,
                                       what, class, detail, seconds); --resume skips those done
    found/<class>/<family>-<index>.tcd the bytes of every finding
    summary.json                       counts per family and class
    workers/w<k>/                      a worker's scratch folder (run/, cwd/) and its stderr (log.txt)

This module imports only the standard library at import time (the worker imports the rest).
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BAD", "CLASSES", "Options", "Report", "parse_size", "prepare", "run", "worker_main"]

CLASSES: tuple[str, ...] = ("refused", "accepted", "crash", "hang", "oom", "nonfinite", "escape")
"""Every outcome of a mutant, in report order."""
BAD: tuple[str, ...] = ("crash", "hang", "oom", "nonfinite", "escape")
"""The outcomes that are findings."""

TESTS_DIR = Path(__file__).resolve().parents[1]
"""``tests/``: the worker puts it on ``sys.path`` to import this package."""

_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from fuzz.runner import worker_main; worker_main(sys.argv[2])"
_ALLOC_WORDS = ("bad_alloc", "out of memory", "cannot allocate memory", "can't allocate memory",
                "not enough memory", "memoryerror")


@dataclass(frozen=True)
class Options:
    """How mutants run: per-mutant ``timeout`` (s), worker address-space cap ``mem`` (bytes, 0: none)."""

    timeout: float = 10.0
    mem: int = 2 * 2**30
    workers: int = 1
    parse_timeout: float | None = 5.0
    """Passed to ``read_archive(parse_timeout=...)`` when the reader has that watchdog deadline (its
    default is longer than ``timeout``): below ``timeout``, so that a payload the watchdog refuses in
    time is classified ``refused``, not ``hang``. ``None``: the reader's default."""
    startup_timeout: float = 300.0
    """Seconds a new worker may take to import its libraries and load the seeds."""


@dataclass
class Report:
    """Per-family class counts of a run (resumed runs include the earlier results) and its findings."""

    families: tuple[str, ...]
    counts: dict[str, collections.Counter] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    read_options: dict[str, Any] = field(default_factory=dict)
    """What the workers passed to ``read_archive`` (``parse_timeout`` when the reader takes it)."""

    def add(self, record: dict[str, Any]) -> None:
        self.counts.setdefault(record["family"], collections.Counter())[record["class"]] += 1
        if record["class"] in BAD:
            self.findings.append(record)

    def bad(self, family: str | None = None) -> int:
        """How many findings (of ``family``, or of every family)."""
        families = self.families if family is None else (family,)
        return sum(self.counts.get(f, collections.Counter())[c] for f in families for c in BAD)

    def table(self) -> str:
        """A plain-text table: one row per family, one column per class."""
        head = ["family", *CLASSES, "total"]
        rows = [head]
        for f in self.families:
            c = self.counts.get(f, collections.Counter())
            rows.append([f, *(str(c[k]) for k in CLASSES), str(sum(c.values()))])
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        return "\n".join(
            "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
            for r in rows
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "families": list(self.families),
            "counts": {f: {k: self.counts.get(f, collections.Counter())[k] for k in CLASSES} for f in self.families},
            "findings": len(self.findings),
            "seconds": round(self.seconds, 1),
            "read_options": self.read_options,
        }


def parse_size(text: str | int) -> int:
    """Bytes from ``2GiB``, ``512MiB``, ``2G``, ``1.5GB`` or a plain integer (``0``: no limit)."""
    if isinstance(text, int):
        return text
    s = text.strip().lower().replace(" ", "")
    units = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
             "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}
    number = s.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = s[len(number):]
    if unit not in units or not number:
        raise ValueError(f"not a size: {text!r} (e.g. 2GiB, 512MiB, 0 for no limit)")
    return int(float(number) * units[unit])


# ----------------------------------------------------------------------------------------------- parent


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _versions() -> dict[str, str]:
    import h5py
    import numpy
    import zstandard

    import tascond_cli

    return {"python": sys.version.split()[0], "tascond": tascond_cli.__version__, "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version, "numpy": numpy.__version__, "zstandard": zstandard.__version__}


def prepare(work: Path | str, resume: bool = False) -> Path:
    """Make the work folder: seeds (kept when resuming), ``meta.json``; start afresh unless ``resume``.

    Returns the seeds folder.
    """
    from fuzz.mutate import build_seeds

    work = Path(work)
    seeds = work / "seeds"
    if not resume:
        for name in ("results.jsonl", "summary.json", "meta.json"):
            (work / name).unlink(missing_ok=True)
        for name in ("found", "seeds", "workers"):
            shutil.rmtree(work / name, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    if not any(seeds.glob("*.tcd")):
        build_seeds(seeds)
    meta = {"seeds": {p.name: _sha256(p) for p in sorted(seeds.glob("*.tcd"))}, "versions": _versions()}
    (work / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return seeds


def _done(results: Path) -> list[dict[str, Any]]:
    """The records already in ``results.jsonl`` (a torn last line is dropped)."""
    if not results.exists():
        return []
    records = []
    with open(results, encoding="utf-8") as fh:
        for line in fh:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


class _Worker:
    """One worker process: its pipes, its scratch folder and the mutant it is running."""

    def __init__(self, k: int, work: Path, seeds: Path, options: Options) -> None:
        self.k, self.work, self.seeds, self.options = k, work, seeds, options
        self.dir = work / "workers" / f"w{k}"
        self.log = self.dir / "log.txt"
        self.proc: subprocess.Popen | None = None
        self.buf = b""
        self.ready = False
        self.spawned = 0.0
        self.task: tuple[str, int] | None = None
        self.sent = 0.0
        self.log_at = 0

    def start(self) -> None:
        (self.dir / "cwd").mkdir(parents=True, exist_ok=True)
        config = {"seeds": str(self.seeds), "dir": str(self.dir), "mem": self.options.mem,
                  "parse_timeout": self.options.parse_timeout}
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   CUDA_VISIBLE_DEVICES="", PYTHONDONTWRITEBYTECODE="1")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(TESTS_DIR), json.dumps(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=self.dir / "cwd", env=env,
                start_new_session=True,
            )
        self.buf, self.ready, self.task, self.spawned = b"", False, None, time.monotonic()

    def send(self, task: tuple[str, int]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.task, self.sent = task, time.monotonic()
        self.log_at = self.log.stat().st_size if self.log.exists() else 0
        self.proc.stdin.write((json.dumps({"family": task[0], "index": task[1]}) + "\n").encode())
        self.proc.stdin.flush()

    def finish(self, grace: float = 0.0) -> int | None:
        """Give the worker ``grace`` seconds to exit, then kill its whole process group (what it started
        too) and reap it; its exit status (negative: the signal that ended it).

        The group is killed before the worker is reaped, while its process id cannot be reused.
        """
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return None if proc is None else proc.returncode
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not self._exited():
            time.sleep(0.01)
        if hasattr(os, "waitid") or proc.poll() is None:  # (without waitid, poll() has reaped it: leave the group)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        code = proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        return code

    def _exited(self) -> bool:
        """Whether the worker has exited, without reaping it where the platform allows."""
        assert self.proc is not None
        if hasattr(os, "waitid"):
            return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        return self.proc.poll() is not None

    def messages(self) -> list[dict[str, Any]] | None:
        """The complete JSON lines the worker has written, or ``None`` at end of stream."""
        assert self.proc is not None and self.proc.stdout is not None
        chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
        if not chunk:
            return None
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def log_tail(self, since: int = 0, n: int = 2000) -> str:
        try:
            with open(self.log, "rb") as fh:
                fh.seek(max(since, self.log.stat().st_size - n))
                return fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""


def _death(worker: _Worker) -> tuple[str, str]:
    """Class and detail of a mutant whose worker died under it."""
    rc = worker.finish(grace=10.0)
    tail = worker.log_tail(worker.log_at)
    last = " | ".join(line.strip() for line in tail.strip().splitlines()[-3:])[-400:]
    alloc = any(word in tail.lower() for word in _ALLOC_WORDS)
    if rc is not None and rc < 0:
        name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
        if -rc == signal.SIGKILL or alloc:
            return "oom", f"worker killed by {name}: {last}"
        return "crash", f"worker killed by {name}: {last}"
    return ("oom" if alloc else "crash"), f"worker exited with code {rc}: {last}"


def run(
    families: Iterable[str],
    count: int,
    work: Path | str,
    options: Options = Options(),
    *,
    resume: bool = False,
    on_result: Callable[[dict[str, Any], Report], None] | None = None,
) -> Report:
    """Run mutants ``0 .. count-1`` of each family; return the counts (earlier results included).

    ``resume`` keeps the work folder's seeds and results and skips the mutants already done; without
    it the work folder starts afresh. ``on_result(record, report)`` is called after each mutant.
    """
    from fuzz.mutate import FAMILIES, load_seeds, mutate

    families = tuple(families)
    if options.parse_timeout is not None and options.parse_timeout >= options.timeout:
        raise ValueError(f"parse_timeout ({options.parse_timeout:g} s) must be below timeout ({options.timeout:g} s)")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families {unknown} (known: {', '.join(FAMILIES)})")
    work = Path(work).resolve()
    seeds = prepare(work, resume)
    seed_list = load_seeds(seeds)
    results = work / "results.jsonl"
    report = Report(families)
    done = set()
    for record in _done(results):
        if record.get("family") in families and record.get("index", count) < count:
            report.add(record)
            done.add((record["family"], record["index"]))
    pending = collections.deque((f, i) for i in range(count) for f in families if (f, i) not in done)
    t0 = time.monotonic()
    workers = [_Worker(k, work, seeds, options) for k in range(min(max(1, options.workers), len(pending)))]
    sel = selectors.DefaultSelector()
    out = open(results, "a", encoding="utf-8")

    def record(worker: _Worker, cls: str, detail: str, seconds: float, info: dict[str, Any] | None = None) -> None:
        family, index = worker.task  # type: ignore[misc]
        info = info or {}
        rec = {"family": family, "index": index, "seed": info.get("seed"), "what": info.get("what"),
               "class": cls, "detail": detail[:1000], "seconds": round(seconds, 3)}
        if cls in BAD:  # keep its bytes: made again here, the same as the worker made them
            mutant = mutate(family, seed_list, index)
            rec["seed"], rec["what"] = mutant.seed, mutant.what
            dest = work / "found" / cls / f"{family}-{index:07d}.tcd"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(mutant.data)
            rec["file"] = str(dest.relative_to(work))
        out.write(json.dumps(rec) + "\n")
        out.flush()
        report.add(rec)
        worker.task = None
        if on_result is not None:
            on_result(rec, report)

    def restart(worker: _Worker) -> None:
        if worker.proc is not None and worker.proc.stdout is not None:
            try:
                sel.unregister(worker.proc.stdout)
            except (KeyError, ValueError):
                pass
        worker.finish()
        worker.start()
        assert worker.proc is not None
        sel.register(worker.proc.stdout, selectors.EVENT_READ, worker)

    try:
        for w in workers:
            restart(w)
        while pending or any(w.task for w in workers):
            for w in workers:
                if w.ready and w.task is None and pending:
                    task = pending.popleft()
                    try:
                        w.send(task)
                    except (BrokenPipeError, OSError):  # died while idle: run the mutant on a fresh one
                        pending.appendleft(task)
                        restart(w)
            now = time.monotonic()
            deadlines = [w.sent + options.timeout for w in workers if w.task] + \
                        [w.spawned + options.startup_timeout for w in workers if not w.ready]
            wait = max(0.0, min(deadlines) - now) if deadlines else 1.0
            for key, _ in sel.select(timeout=min(wait, 5.0)):
                w = key.data
                msgs = w.messages()
                if msgs is None:  # the worker is gone
                    if w.task is not None:
                        cls, detail = _death(w)
                        record(w, cls, detail, time.monotonic() - w.sent)
                    elif not w.ready:
                        raise RuntimeError(f"fuzz worker {w.k} failed to start: {w.log_tail()[-2000:]}")
                    restart(w)
                    continue
                for msg in msgs:
                    if msg.get("ready"):
                        w.ready = True
                        report.read_options = msg.get("read_options", {})
                    elif "class" in msg and w.task is not None:
                        record(w, msg["class"], msg.get("detail", ""), msg.get("seconds", 0.0), msg)
            now = time.monotonic()
            for w in workers:
                if w.task is not None and now - w.sent > options.timeout:
                    record(w, "hang", f"no answer in {options.timeout:g} s", now - w.sent)
                    restart(w)
                elif not w.ready and now - w.spawned > options.startup_timeout:
                    raise RuntimeError(f"fuzz worker {w.k} did not start in {options.startup_timeout:g} s")
    finally:
        for w in workers:
            if w.proc is not None and w.proc.stdin is not None:
                try:
                    w.proc.stdin.close()  # end of input: the worker exits
                except OSError:
                    pass
            w.finish(grace=5.0)
        sel.close()
        out.close()
        report.seconds = time.monotonic() - t0
        (work / "summary.json").write_text(json.dumps(report.as_json(), indent=2) + "\n")
    return report


# ----------------------------------------------------------------------------------------------- worker


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


def _alloc_failure(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and any(w in str(exc).lower() for w in _ALLOC_WORDS)
    )


def _where(exc: BaseException) -> str:
    """Where ``exc`` was raised: the innermost frame of tascond's code, and the innermost of all."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    ours = [f for f in frames if "tascond_cli" in f.filename]
    shown = [f for f in (ours[-1] if ours else None, frames[-1]) if f is not None]
    if len(shown) == 2 and shown[0] is shown[1]:
        shown = shown[:1]
    return " (at " + " > ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in shown) + ")"


def _check_output(run_dir: Path, out: Path, cwd: Path, restored: bool) -> tuple[str, str] | None:
    """``("escape", ...)`` or ``("nonfinite", ...)`` for what a restore left behind, else ``None``."""
    import numpy as np

    stray = [p for p in run_dir.iterdir() if p != out or not restored] + list(cwd.iterdir())
    if stray:
        names = ", ".join(str(p.relative_to(run_dir.parent)) for p in stray[:5])
        return "escape", f"{'restored' if restored else 'refused'}, but wrote {names}"
    if not restored:
        return None
    links = [p for p in _entries(out) if p.is_symlink()]
    if links:
        return "escape", f"symbolic link in the output: {links[0].relative_to(out)}"
    for path in sorted((out / "features").glob("*.npy")):
        x = np.load(path, mmap_mode="r", allow_pickle=False)
        if x.dtype.kind in "fc" and not np.isfinite(x).all():
            return "nonfinite", f"{path.relative_to(out)}: {int((~np.isfinite(x)).sum())} non-finite values"
    return None


def _is_chunked(data: bytes) -> bool:
    """Whether ``data`` looks like a chunked archive (format 1.4 and later: no zstd frame after the header)."""
    import struct

    return (len(data) >= 32 and data[:8] == b"\x89TCD\r\n\x1a\n" and struct.unpack_from("<H", data, 10)[0] >= 4
            and data[28:32] != b"\x28\xb5\x2f\xfd")


def _classify(data: bytes, wdir: Path, read_options: dict[str, Any]) -> tuple[str, str]:
    """Read (and restore) one mutant in this process: its class and a one-line detail.

    A chunked archive is read whole (``read_archive``) and then lazily (``open_archive``): when the whole
    read accepted it, every video read lazily must give the same segments and codes (a difference, or a
    refusal, is a ``crash``); when it refused it, the lazy one is restored as well. A finding of either
    counts.
    """
    from tascond_cli.archive import open_archive, read_archive

    whole = _classify_with(read_archive, data, wdir, read_options)
    if whole[0] in BAD or not _is_chunked(data):
        return whole
    if whole[0] == "accepted":
        lazy = _compare_lazy(data, read_options)
    else:
        lazy = _classify_with(open_archive, data, wdir, read_options)
    return (lazy[0], f"lazily: {lazy[1]}") if lazy[0] in BAD else whole


def _compare_lazy(data: bytes, read_options: dict[str, Any]) -> tuple[str, str]:
    """``("accepted", "")`` when the lazy read of an accepted chunked archive gives every video as the
    whole read does, else a ``crash`` saying where they differ."""
    import numpy as np

    from tascond_cli.archive import open_archive, read_archive

    try:
        whole = read_archive(data, name="mutant.tcd", **read_options)
        lazy = open_archive(data, name="mutant.tcd", **read_options)
        for i in range(whole.num_videos):
            a, b = whole.video(i), lazy.video(i)
            same = [np.array_equal(getattr(a, f), getattr(b, f)) for f in ("labels", "lengths", "code_counts", "codes")]
            if not all(same) or a.codes.dtype != b.codes.dtype:
                return "crash", f"the lazy read of video {i} differs from the whole read"
    except Exception as e:  # RecursionError included
        return _failure(e, " where the whole read accepted")
    return "accepted", ""


def _failure(e: BaseException, context: str = "") -> tuple[str, str]:
    """An unexpected exception as a finding: ``oom`` for an allocation failure, else ``crash``."""
    message = f"{str(e)[:300]}{_where(e)}"
    if isinstance(e, RecursionError):
        return "crash", f"RecursionError: {message}"
    if _alloc_failure(e):
        return "oom", f"{type(e).__name__}: {message}"
    return "crash", f"{type(e).__name__}{context}: {message}"


def _classify_with(reader: Callable[..., Any], data: bytes, wdir: Path, read_options: dict[str, Any]) -> tuple[str, str]:
    from tascond_cli.errors import TascondError
    from tascond_cli.restore import restore_archive

    run_dir, cwd = wdir / "run", wdir / "cwd"
    out = run_dir / "out"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    try:
        try:
            archive = reader(data, name="mutant.tcd", **read_options)
        except TascondError as e:
            return _check_output(run_dir, out, cwd, False) or ("refused", f"read: {e}")
        try:
            restore_archive(archive, out, device="cpu")
        except TascondError as e:
            return _check_output(run_dir, out, cwd, False) or ("refused", f"restore: {e}")
        return _check_output(run_dir, out, cwd, True) or ("accepted", "")
    except Exception as e:  # RecursionError included
        return _failure(e)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        for stray in list(cwd.iterdir()):
            shutil.rmtree(stray, ignore_errors=True) if stray.is_dir() and not stray.is_symlink() else stray.unlink()


def worker_main(config_json: str) -> None:
    """The worker: cap memory, import, load the seeds, then run the mutants named on stdin.

    Protocol (JSON lines): the worker says ``{"ready", "read_options"}`` once it has started; then the
    parent sends ``{"family", "index"}`` and the worker answers ``{"class", "detail", "seconds", "seed",
    "what"}``. It exits at end of input. ``read_archive`` gets the configured
    ``parse_timeout`` when it takes one (a reader with an HDF5 watchdog).
    """
    config = json.loads(config_json)
    if config.get("mem"):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (config["mem"], config["mem"]))
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # anything else written to stdout (by C libraries too) goes to the log, not the protocol
    sys.stdout = sys.stderr

    import warnings

    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(1)
    import inspect

    import tascond_cli.restore  # noqa: F401  (imported before the first mutant: not timed)
    from fuzz.mutate import load_seeds, mutate
    from tascond_cli.archive import read_archive

    read_options = {}
    if config.get("parse_timeout") is not None and "parse_timeout" in inspect.signature(read_archive).parameters:
        read_options["parse_timeout"] = config["parse_timeout"]

    seeds = load_seeds(config["seeds"])
    wdir = Path(config["dir"])
    proto.write(json.dumps({"ready": True, "read_options": read_options}) + "\n")
    for line in sys.stdin:
        task = json.loads(line)
        t0 = time.perf_counter()
        m = mutate(task["family"], seeds, int(task["index"]))
        cls, detail = _classify(m.data, wdir, read_options)
        proto.write(json.dumps({"class": cls, "detail": detail, "seconds": time.perf_counter() - t0,
                                "seed": m.seed, "what": m.what}) + "\n")
