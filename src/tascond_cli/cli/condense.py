"""``tascond condense`` and ``tascond restore``: dataset to archive, archive to dataset."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from tascond_cli.cli._common import err, handle_errors, human_bytes, print_json, progress
from tascond_cli.errors import TascondError

_PHASES = {
    "sample": "sampling videos",
    "prior": "training the prior",
    "invert": "inverting segments",
    "pca": "fitting the projection",
    "encode": "encoding videos",
}


def read_archive_arg(source: str):
    """Read ARCHIVE (a path, or ``-`` for stdin) into a validated Archive."""
    from tascond_cli.archive import read_archive

    if source == "-":
        return read_archive(sys.stdin.buffer, name="<stdin>")
    path = Path(source)
    if not path.exists():
        raise TascondError(f"{path}: no such archive")
    if path.is_dir():
        raise TascondError(f"{path}: is a folder, not a .tcd archive")
    return read_archive(path)


def write_archive_arg(archive, dest: str, overwrite: bool) -> int:
    """Write to a path atomically, or to stdout for ``-``; returns the bytes written."""
    from tascond_cli.archive import write_archive

    if dest == "-":
        if sys.stdout.isatty():
            raise TascondError("refusing to write a binary archive to a terminal; redirect stdout or use -o FILE")
        return write_archive(archive, sys.stdout.buffer)
    return write_archive(archive, Path(dest), overwrite=overwrite)


@handle_errors
def condense(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Dataset folder (MS-TCN layout).", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="Archive to write (.tcd), or - for stdout.")],
    split: Annotated[int, typer.Option("--split", "-s", min=1, help="Condense this split's training videos.")] = 1,
    ips: Annotated[
        str, typer.Option(help="Latent codes (instances) per segment, or 'frame': one code per frame.")
    ] = "8",
    ratio: Annotated[float, typer.Option(min=0.0, max=1.0, help="Fraction of training videos kept.")] = 0.5,
    sampling: Annotated[str, typer.Option(help="fps (diverse, furthest-point) or random.")] = "fps",
    others: Annotated[
        str,
        typer.Option(
            help="Videos not kept: borrow (store their action order and lengths; their segments reuse kept "
            "segments' codes) or drop.",
        ),
    ] = "borrow",
    latent: Annotated[int, typer.Option(min=1, help="Latent code size d.", rich_help_panel="Generator")] = 64,
    hidden: Annotated[int, typer.Option(min=1, help="Hidden width of the generator.", rich_help_panel="Generator")] = 512,
    steps: Annotated[int, typer.Option(min=1, help="Training steps of the generator.", rich_help_panel="Generator")] = 1500,
    invert_iters: Annotated[
        int, typer.Option(min=0, help="Most inversion iterations (stops earlier when converged).", rich_help_panel="Generator")
    ] = 300,
    invert_frames: Annotated[
        int,
        typer.Option(
            min=0,
            help="Frames of each chunk used per inversion iteration, sampled afresh each time (0: all). "
            "Bounds the cost on long videos.",
            rich_help_panel="Generator",
        ),
    ] = 16,
    residual: Annotated[
        bool,
        typer.Option(
            help="Store the size and time correlation of what the codes miss; restore adds seeded noise like it.",
            rich_help_panel="Generator",
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    seed: Annotated[int, typer.Option(min=0, help="Same data, settings and seed: same archive.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON (on stderr with -o -).")] = False,
) -> None:
    """Condense a dataset's training split into one small .tcd archive."""
    from tascond_cli.pipeline import CondenseConfig, condense_dataset, parse_ips

    check_output(output, force)
    config = CondenseConfig(
        split=split, ips=parse_ips(ips), ratio=ratio, sampling=sampling, others=others, latent=latent, hidden=hidden, steps=steps,
        invert_iters=invert_iters, invert_frames=invert_frames, residual=residual, device=device, seed=seed,
    )
    config.check()
    result = run_phases(lambda on_phase: condense_dataset(data, config, on_phase))
    report_archive(result, output, force, as_json, "condensed")


def check_output(output: str, force: bool) -> None:
    """Refuse to replace an existing OUTPUT without --force (before any work is done)."""
    if output != "-" and Path(output).exists() and not force:
        raise TascondError(f"{output}: already exists (use --force to replace it)")


def run_phases(work):
    """Run ``work(on_phase)`` with one progress bar per phase on stderr; return its result."""
    with progress() as bar:
        tasks: dict[str, int] = {}

        def on_phase(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(_PHASES.get(name, name), total=total)
            bar.update(tasks[name], completed=done, total=total)

        return work(on_phase)


def report_archive(result, output: str, force: bool, as_json: bool, verb: str) -> None:
    """Write the archive of a :class:`~tascond_cli.pipeline.CondenseResult` and report what it holds."""
    import math

    from tascond_cli.archive import storage_breakdown

    size = write_archive_arg(result.archive, output, force)
    parts = storage_breakdown(result.archive, total=size)
    error = result.error if math.isfinite(result.error) else None
    summary = {
        "archive": output,
        "method": result.archive.settings.get("method"),
        "bytes": size,
        "train_videos": result.train_videos,
        "kept_videos": result.kept_videos,
        "borrowing_videos": result.borrowing_videos,
        "segments": result.segments,
        "frames": result.frames,
        "train_feature_bytes": result.train_bytes,
        "storage_ratio": result.train_bytes / size if size else None,
        "reconstruction_error": error,
        "breakdown": {k: v["share"] for k, v in parts.items() if k != "total"},
        "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
    }
    if as_json and output != "-":
        print_json(summary)
        return
    if as_json:
        import json

        sys.stderr.write(json.dumps(summary, indent=2) + "\n")
        return
    fit = "" if error is None else f"; reconstruction error {error:.3f} (fraction of variance unexplained)"
    ratio = summary["storage_ratio"] or 0.0
    than = f"the {human_bytes(result.train_bytes)} of training features"
    scale = f"{ratio:.0f}x smaller than {than}" if ratio >= 1 else f"{1 / ratio:.1f}x larger than {than}"
    more = f" (+{result.borrowing_videos} by their structure, reusing kept codes)" if result.borrowing_videos else ""
    err().print(
        f"{verb} {result.kept_videos} of {result.train_videos} training videos{more} "
        f"({result.segments:,} segments, {result.frames:,} frames) into {human_bytes(size)}: "
        f"{scale}{fit}"
    )


@handle_errors
def restore(
    archive: Annotated[str, typer.Argument(metavar="ARCHIVE", help="A .tcd archive, or - for stdin.", show_default=False)],
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Folder to write (default: the archive's name).")
    ] = None,
    video: Annotated[Optional[list[str]], typer.Option(help="Restore only this video (repeatable).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Replace the output folder if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a summary as JSON on stdout.")] = False,
) -> None:
    """Restore an archive's videos as an MS-TCN-layout dataset (features, groundTruth, mapping, splits)."""
    from tascond_cli.restore import restore_archive

    if output is None:
        if archive == "-":
            raise TascondError("restoring from stdin needs -o DIR")
        name = Path(archive).name
        output = Path(archive).with_name(name[: -len(".tcd")] if name.endswith(".tcd") and len(name) > 4 else name + ".restored")
    loaded = read_archive_arg(archive)
    with progress() as bar:
        task = bar.add_task("restoring", total=None)
        summary = restore_archive(
            loaded, output, videos=video, device=device, overwrite=force,
            on_video=lambda done, total: bar.update(task, completed=done, total=total),
        )
    data = {
        "out": str(summary.out),
        "videos": summary.videos,
        "frames": summary.frames,
        "dim": summary.dim,
        "split": summary.split,
        "seconds": round(summary.seconds, 3),
        "frames_per_second": round(summary.frames_per_second, 1),
    }
    if as_json:
        print_json(data)
    else:
        err().print(
            f"restored {summary.videos} videos ({summary.frames:,} frames, {summary.dim}-d) to {summary.out} "
            f"in {summary.seconds:.1f} s ({summary.frames_per_second:,.0f} frames/s)"
        )
