"""What every command shares: consoles, error reporting, progress bars, reading and writing archives,
and the one summary of an archive (``condense``, ``baseline`` and ``info`` print it).

Messages, warnings and progress go to stderr so that stdout stays clean for
pipelines (``--json``). Errors the user can cause are one red line on stderr
and exit code 1; usage errors exit 2 (Typer's own).
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tascond_cli.errors import TascondError

F = TypeVar("F", bound=Callable[..., Any])


def out() -> Console:
    """A console on the current stdout (created per call: tests swap sys.stdout).

    Tables sent to a pipe or file get a wide page rather than rich's default 80 columns.
    """
    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = max(console.width, 160)
    return console


def err() -> Console:
    """A console on the current stderr."""
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line on stderr and return the Exit to raise."""
    err().print(f"[bold red]error:[/] {_escape(message)}")
    return typer.Exit(code)


def warn(message: str) -> None:
    err().print(f"[yellow]warning:[/] {_escape(message)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(" ".join(str(text).split()))


def handle_errors(func: F) -> F:
    """Turn engine errors into one line on stderr and a non-zero exit, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from tascond_cli.methods.config import ConfigError

        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            from tascond_cli.cli.options import flag_message

            raise fail(flag_message(exc.field, exc.problem)) from None
        except TascondError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except MemoryError:
            raise fail("out of memory") from None
        except OSError as exc:
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            raise fail(f"{where}{exc.strerror or exc}") from None

    return wrapper  # type: ignore[return-value]


def print_json(obj: Any) -> None:
    """Strict JSON on stdout: NaN and infinities become null."""
    sys.stdout.write(json.dumps(_finite(obj), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def progress(transient: bool = True, enabled: bool = True) -> Progress:
    """A rich progress display on stderr, silent when stderr is not a terminal (or not ``enabled``)."""
    console = Console(file=sys.stderr)
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=not (enabled and console.is_terminal),
    )


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def check_output(output: str, force: bool) -> None:
    """Refuse to replace an existing OUTPUT without --force (before any work is done)."""
    if output != "-" and Path(output).exists() and not force:
        raise TascondError(f"{output}: already exists (use --force to replace it)")


def read_archive_arg(source: str, max_restore_bytes: str | None = None, *, lazy: bool = False):
    """Read ARCHIVE (a path, or ``-`` for stdin) into a validated Archive; ``max_restore_bytes`` is the
    ``--max-restore-bytes`` option (a size such as 200GB), replacing the default expansion limit. With
    ``lazy``, a path is opened for random access (:func:`~tascond_cli.archive.open_archive`: a chunked
    archive reads only what each video needs; stdin is always read whole)."""
    from tascond_cli.archive import open_archive, read_archive

    limit = None
    if max_restore_bytes is not None:
        from tascond_cli.methods.budget import parse_size

        limit = parse_size(max_restore_bytes, "max_restore_bytes")
    if source == "-":
        return read_archive(sys.stdin.buffer, name="<stdin>", max_restore_bytes=limit)
    path = Path(source)
    if not path.exists():
        raise TascondError(f"{path}: no such archive")
    if path.is_dir():
        raise TascondError(f"{path}: is a folder, not a .tcd archive")
    return (open_archive if lazy else read_archive)(path, max_restore_bytes=limit)


def write_archive_arg(archive, dest: str, overwrite: bool) -> int:
    """Write to a path atomically, or to stdout for ``-``; returns the bytes written."""
    from tascond_cli.archive import write_archive

    if dest == "-":
        if sys.stdout.isatty():
            raise TascondError("refusing to write a binary archive to a terminal; redirect stdout or use -o FILE")
        return write_archive(archive, sys.stdout.buffer)
    return write_archive(archive, Path(dest), overwrite=overwrite)


def run_phases(work):
    """Run ``work(on_phase)`` with one progress bar per phase on stderr; return its result."""
    from tascond_cli.methods import PHASES

    with progress() as bar:
        tasks: dict[str, int] = {}

        def on_phase(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(PHASES.get(name, name), total=total)
            bar.update(tasks[name], completed=done, total=total)

        return work(on_phase)


def archive_summary(archive, size: int, version: str | None, written_by: str | None = None) -> dict[str, Any]:
    """What an archive of ``size`` bytes holds (``info``'s JSON; ``condense`` and ``baseline`` add how it
    was made). ``version``: the format version in its header, when known; ``written_by``: the tascond
    version that wrote it (default: the archive's record)."""
    import numpy as np

    from tascond_cli.archive import storage_breakdown

    parts = storage_breakdown(archive, total=size)
    frames = archive.video_frames
    return {
        "format_version": version,
        "written_by": archive.written_by if written_by is None else written_by,
        "method": archive.settings.get("method"),
        "settings": archive.settings,
        "classes": archive.num_classes,
        "feature_dim": archive.dim,
        "videos": archive.num_videos,
        "segments": archive.num_segments,
        "frames": int(archive.total_frames),
        "frames_median": float(np.median(frames)) if len(frames) else 0.0,
        "codes": archive.num_codes,
        "sharing_segments": 0 if archive.segment_sources is None else int((archive.segment_sources >= 0).sum()),
        "code_dim": archive.code_dim,
        "code_dtype": str(archive.codes.dtype),
        "decoder": archive.decoder_kind,
        "decoder_parameters": int(sum(np.asarray(w).size for w in archive.decoder_weights.values())),
        "bytes": size,
        "storage": {k: v["share"] for k, v in parts.items() if k != "total"},
    }


def header_version(path: Path | str) -> str:
    from tascond_cli.archive import read_version

    return ".".join(map(str, read_version(path)))


def report_archive(result, output: str, force: bool, as_json: bool, verb: str,
                   extra: dict[str, Any] | None = None) -> None:
    """Write the archive of a :class:`~tascond_cli.methods.CondenseResult` and report what it holds
    (``extra``: more entries of the JSON summary, such as ``condense --budget``'s plan)."""
    from tascond_cli import __version__

    size = write_archive_arg(result.archive, output, force)
    error = result.error if math.isfinite(result.error) else None
    version = None if output == "-" else header_version(output)
    summary = {
        "archive": output,
        **archive_summary(result.archive, size, version, written_by=result.archive.written_by or __version__),
        "train_videos": result.train_videos,
        "kept_videos": result.kept_videos,
        "borrowing_videos": result.borrowing_videos,
        "train_feature_bytes": result.train_bytes,
        "storage_ratio": result.train_bytes / size if size else None,
        "reconstruction_error": error,
        "codes_error": result.codes_error if math.isfinite(result.codes_error) else None,
        "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
        **(extra or {}),
    }
    if as_json and output != "-":
        print_json(summary)
        return
    if as_json:
        sys.stderr.write(json.dumps(_finite(summary), indent=2) + "\n")
        return
    codes = summary["codes_error"]
    alone = f"; {codes:.3f} from the codes alone, without restore's noise" if codes not in (None, error) else ""
    fit = "" if error is None else f"; reconstruction error {error:.3f} (fraction of variance unexplained{alone})"
    ratio = summary["storage_ratio"] or 0.0
    than = f"the {human_bytes(result.train_bytes)} of training features"
    scale = f"{ratio:.0f}x smaller than {than}" if ratio >= 1 else f"{1 / ratio:.1f}x larger than {than}"
    more = f" (+{result.borrowing_videos} by their structure, reusing kept codes)" if result.borrowing_videos else ""
    err().print(
        f"{verb} {result.kept_videos} of {result.train_videos} training videos{more} "
        f"({result.segments:,} segments, {result.frames:,} frames) into {human_bytes(size)}: "
        f"{scale}{fit}"
    )
