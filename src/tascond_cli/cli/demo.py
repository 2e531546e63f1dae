"""``tascond demo``: the whole tool in a few minutes, on a small synthetic dataset made on the spot."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer

from tascond_cli.cli._common import err, handle_errors, human_bytes, print_json, progress, run_phases
from tascond_cli.errors import TascondError


@handle_errors
def demo(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Where the demo's data, archives and restore go.")] = Path("demo"),
    videos: Annotated[
        Optional[int], typer.Option(min=2, help="Training (and test) videos of the GTEA-like set. Default: all 21 + 7.")
    ] = None,
    dim: Annotated[int, typer.Option(min=1, help="Feature dimension.")] = 128,
    epochs: Annotated[int, typer.Option(min=1, help="MS-TCN training epochs.")] = 20,
    seeds: Annotated[int, typer.Option(min=1, help="MS-TCN runs per source.")] = 2,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    seed: Annotated[int, typer.Option(min=0, help="Seed of the data, the archive and the first MS-TCN run.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace DIR if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON on stdout.")] = False,
) -> None:
    """Synthesize a small GTEA-like dataset, condense it, make the mean and blind baselines, restore
    the archive, train MS-TCN on each and print the comparison table.

    Every step is a command you can run yourself; the demo prints them as it goes.
    """
    from tascond_cli.cli.evaluate import print_report
    from tascond_cli.device import resolve_device
    from tascond_cli.restore import restore_archive

    resolved = str(resolve_device(device))
    if folder.exists():
        if not force:
            raise TascondError(f"{folder}: already exists (use --force to replace it)")
        if not folder.is_dir():
            raise TascondError(f"{folder}: is not a folder")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    data = folder / "data"
    _synthesize(data, videos, dim, seed)
    archive, made, size, baselines = _make_archives(folder, data, seed)
    restored = folder / "restored"
    _step(f"tascond restore {archive} -o {restored}")
    restore_summary = restore_archive(made, restored, device=resolved)
    _say(f"  {restore_summary.videos} videos, {restore_summary.frames:,} frames in {restore_summary.seconds:.1f} s")
    report = _evaluate(data, archive, size, restored, baselines, epochs, seeds, resolved, seed)
    if as_json:
        print_json(report.to_dict())
        return
    print_report(report)
    _say(f"everything is in {folder}/; the demo's scale is tiny, so differences of a few points are seed noise")


def _say(message: str) -> None:
    err().print(message)


def _step(command: str) -> None:
    _say(f"[bold]$ {command}[/]")


def _synthesize(data: Path, videos: int | None, dim: int, seed: int) -> None:
    from tascond_cli.synth import SynthConfig, synthesize

    subsample = 2
    count = f" --videos {videos}" if videos else ""
    _step(f"tascond synth {data} --profile gtea{count} --subsample {subsample} --dim {dim} --seed {seed}")
    with progress() as bar:
        task = bar.add_task("synthesizing", total=None)
        summary = synthesize(
            data, SynthConfig(profile="gtea", videos=videos, subsample=subsample, dim=dim, seed=seed),
            on_video=lambda done, total: bar.update(task, completed=done, total=total),
        )
    _say(f"  {summary.train} training and {summary.test} test videos, {summary.frames:,} frames, "
         f"{summary.classes} actions, {human_bytes(summary.bytes)}")


def _make_archives(folder: Path, data: Path, seed: int):
    """Our archive (its path, the archive and its size) and the mean and blind baselines' paths."""
    from tascond_cli.archive import write_archive
    from tascond_cli.methods import Config, make_baseline

    archive = folder / "tascond.tcd"
    _step(f"tascond condense {data} -o {archive} --seed {seed}")
    result = run_phases(lambda on_phase: make_baseline("lowrank", data, Config(seed=seed), on_phase))
    size = write_archive(result.archive, archive)
    _say(f"  {human_bytes(result.train_bytes)} of training features -> {human_bytes(size)} "
         f"({result.train_bytes / size:.1f}x), reconstruction error {result.error:.3f}")
    baselines = {}
    for method in ("mean", "blind"):
        path = folder / f"{method}.tcd"
        _step(f"tascond baseline {method} {data} -o {path}")
        made = make_baseline(method, data, Config(seed=seed))
        baselines[method] = path
        _say(f"  {human_bytes(write_archive(made.archive, path))}")
    return archive, result.archive, size, baselines


def _evaluate(data, archive, size, restored, baselines, epochs, seeds, device, seed):
    from tascond_cli.cli.evaluate import train_sources
    from tascond_cli.data import open_dataset
    from tascond_cli.evaluate.protocol import archive_source, folder_source, original_source
    from tascond_cli.evaluate.train import TrainConfig

    _step(
        f"tascond evaluate --model mstcn --data {data} --train {restored} --train {baselines['mean']} "
        f"--train {baselines['blind']} --epochs {epochs} --seeds {seeds} --seed {seed}"
    )
    dataset = open_dataset(data)
    sources = [
        original_source(dataset),
        folder_source(restored, dataset, "tascond (restored)"),
        archive_source(baselines["mean"], dataset, "mean", device=device),
        archive_source(baselines["blind"], dataset, "blind", device=device),
    ]
    # the restored folder costs what its archive costs
    sources[1] = dataclasses.replace(sources[1], storage_bytes=size, path=archive, method="lowrank")
    return train_sources(dataset, sources, TrainConfig(epochs=epochs, seed=seed, device=device), seeds)
