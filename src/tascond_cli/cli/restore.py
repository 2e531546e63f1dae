"""``tascond restore``: an archive back to a dataset folder in the MS-TCN layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tascond_cli.cli import options as o
from tascond_cli.cli._common import err, handle_errors, print_json, progress, read_archive_arg
from tascond_cli.archive.model import ArchiveError
from tascond_cli.errors import TascondError


def default_output(archive: str) -> Path:
    """The archive's name without ``.tcd`` (or with ``.restored`` added), beside it."""
    if archive == "-":
        raise TascondError("restoring from stdin needs -o DIR")
    name = Path(archive).name
    return Path(archive).with_name(name[: -len(".tcd")] if name.endswith(".tcd") and len(name) > 4 else name + ".restored")


def video_names(archive, values: list[str]) -> list[str]:
    """The names ``--video`` gives: each value is a video's name, or else a comma-separated list of names."""
    known = set(archive.video_names)
    names: list[str] = []
    for value in values:
        names += [value] if value in known else [v.strip() for v in value.split(",") if v.strip()]
    return names


@handle_errors
def restore(
    archive: Annotated[str, typer.Argument(metavar="ARCHIVE", help="A .tcd archive, or - for stdin.", show_default=False)],
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Folder to write (default: the archive's name).")
    ] = None,
    video: Annotated[
        Optional[list[str]],
        typer.Option(
            "--video", metavar="NAME",
            help="Restore only this video (repeatable, or a comma-separated list). From a chunked archive "
            "(format 1.4) only that video's part is decompressed.",
        ),
    ] = None,
    device: o.Device = o.DEFAULTS.device,
    force: Annotated[bool, typer.Option("--force", help="Replace the output folder if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a summary as JSON on stdout.")] = False,
    max_restore_bytes: Annotated[
        Optional[str],
        typer.Option(
            "--max-restore-bytes", metavar="SIZE",
            help="Allow restoring up to SIZE (e.g. 200GB) instead of the default limit, 4,194,304 times the "
            "archive's size (a guard against restore bombs).",
        ),
    ] = None,
) -> None:
    """Restore an archive's videos as an MS-TCN-layout dataset (features, groundTruth, mapping, splits)."""
    from tascond_cli.restore import restore_archive

    output = default_output(archive) if output is None else output
    # a path is opened for random access: a chunked archive's codes are read video by video, so memory does
    # not grow with the archive (read whole, the codes of a large archive were all in memory at once)
    loaded = read_archive_arg(archive, max_restore_bytes, lazy=True)
    try:
        with progress() as bar:
            task = bar.add_task("restoring", total=None)
            try:
                summary = restore_archive(
                    loaded, output, videos=None if video is None else video_names(loaded, video), device=device,
                    overwrite=force, on_video=lambda done, total: bar.update(task, completed=done, total=total),
                )
            except ArchiveError as e:  # found while decoding (a broken decoder): name the archive
                name = "<stdin>" if archive == "-" else archive
                raise ArchiveError(f"{name}: {e}") from None
    finally:
        getattr(loaded, "close", lambda: None)()
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
