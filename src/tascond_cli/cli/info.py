"""``tascond info``: what a dataset holds, and whether it is valid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tascond_cli.cli._common import archive_summary, err, handle_errors, header_version, human_bytes, out, print_json, warn
from tascond_cli.data import PARTS, describe, open_dataset


@handle_errors
def info(
    path: Annotated[
        Path, typer.Argument(help="A dataset folder in the MS-TCN layout, or a .tcd archive.", show_default=False)
    ],
    split: Annotated[int, typer.Option("--split", "-s", min=1, help="Which split's bundles to read.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
) -> None:
    """Summarise and validate a dataset or an archive: videos, classes, frames, segments, bytes.

    Runs every check of the MS-TCN layout except scanning feature values, and
    refuses a bad dataset with one line naming the file. For a .tcd archive:
    its settings and a storage breakdown (codes, structure, decoder, metadata).
    """
    if path.is_file():
        return _archive_info(path, as_json)
    test_bundle = path / "splits" / f"test.split{split}.bundle"
    train_only = (path / "splits" / f"train.split{split}.bundle").is_file() and not test_bundle.exists()
    dataset = open_dataset(path, split=split, parts=("train",) if train_only else PARTS)
    if train_only:
        warn(f"{test_bundle}: missing; a training-only dataset (such as a restored archive), showing its train part")
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


def _archive_info(path: Path, as_json: bool) -> None:
    from tascond_cli.archive import container_layout, read_archive

    archive = read_archive(path, max_restore_bytes=2**63)  # info restores nothing: no expansion limit
    size = path.stat().st_size
    summary = {"archive": str(path), **archive_summary(archive, size, header_version(path)),
               "container": container_layout(path)}
    if as_json:
        print_json(summary)
        return
    console = out()
    layout = summary["container"]
    size_text = lambda c: f"{c >> 20} MiB" if c % 2**20 == 0 else f"{c >> 10} KiB"  # noqa: E731
    chunks = (f", {layout['chunks']} chunks of {size_text(layout['chunk_size'])} (random access)"
              if layout["layout"] == "chunked" else "")
    console.print(
        f"[bold]{path.name}[/]  tascond archive, format {summary['format_version']}{chunks}, method {summary['method']}"
        + (f", written by tascond {archive.written_by}" if archive.written_by else "")
    )
    console.print(
        f"{summary['videos']} videos, {summary['segments']:,} segments, {summary['frames']:,} frames, "
        f"{summary['classes']} classes, restores {summary['feature_dim']}-d features"
    )
    shared = f"; {summary['sharing_segments']:,} segments reuse other segments' codes" if summary["sharing_segments"] else ""
    console.print(
        f"{summary['codes']:,} codes of {summary['code_dim']} ({summary['code_dtype']}){shared}; "
        f"decoder {summary['decoder']} ({summary['decoder_parameters']:,} parameters)"
    )
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("part")
    table.add_column("bytes", justify="right")
    table.add_column("share", justify="right")
    for part, share in summary["storage"].items():
        table.add_row(part, human_bytes(share), f"{100 * share / size:.1f}%" if size else "-")
    table.add_row("total", human_bytes(size), "100%")
    console.print(table)
    settings = ", ".join(f"{k}={_setting(v)}" for k, v in sorted(archive.settings.items()))
    console.print(f"settings: {settings}")


def _setting(value) -> str:
    """A setting as ``info`` shows it: nested ones (``budget``) as compact JSON."""
    import json

    return json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else str(value)
