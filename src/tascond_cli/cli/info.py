"""``tascond info``: what a dataset holds, and whether it is valid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tascond_cli.cli._common import err, handle_errors, human_bytes, out, print_json, warn
from tascond_cli.data import describe, open_dataset


@handle_errors
def info(
    path: Annotated[Path, typer.Argument(help="A dataset folder in the MS-TCN layout.", show_default=False)],
    split: Annotated[int, typer.Option("--split", "-s", min=1, help="Which split's bundles to read.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
) -> None:
    """Summarise and validate a dataset: videos, classes, frames, segments, transcripts, bytes.

    Runs every check of the MS-TCN layout except scanning feature values, and
    refuses a bad dataset with one line naming the file.
    """
    dataset = open_dataset(path, split=split)
    summary = describe(dataset)
    for message in summary["warnings"]:
        warn(message)
    if as_json:
        print_json(summary)
        return
    console = out()
    console.print(
        f"[bold]{summary['dataset']}[/]  split {summary['split']} "
        f"(splits: {', '.join(map(str, summary['splits_available']))})"
    )
    console.print(
        f"{summary['classes']} classes, features {summary['feature_dim']}-d {summary['feature_dtype']}, "
        f"{human_bytes(summary['bytes_on_disk'])} on disk"
    )
    table = Table(show_edge=False, pad_edge=False)
    for col in ("part", "videos", "frames", "median T", "segs/vid", "transcripts", "features"):
        table.add_column(col, justify="left" if col == "part" else "right")
    for part, p in summary["parts"].items():
        table.add_row(
            part,
            str(p["videos"]),
            f"{p['frames']:,}",
            f"{p['frames_median']:.0f}",
            f"{p['segments_per_video']:.1f}",
            str(p["distinct_transcripts"]),
            human_bytes(p["feature_bytes"]),
        )
    console.print(table)
    if summary["warnings"]:
        err().print(f"{len(summary['warnings'])} warning(s)")
