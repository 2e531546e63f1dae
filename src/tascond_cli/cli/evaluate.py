"""``tascond evaluate``: score predictions, or train MS-TCN on sources and score it on the real test split."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from tascond_cli.cli._common import err, fail, handle_errors, human_bytes, out, print_json, progress, warn
from tascond_cli.data import open_dataset
from tascond_cli.errors import TascondError
from tascond_cli.evaluate.metrics import DEFAULT_BACKGROUND, METRIC_NAMES
from tascond_cli.fsio import atomic_dir

MODEL_NAMES = {"mstcn": "MS-TCN", "asformer": "ASFormer"}
HEADERS = {"acc": "Acc", "edit": "Edit", "f1@10": "F1@10", "f1@25": "F1@25", "f1@50": "F1@50"}


class Model(str, Enum):
    mstcn = "mstcn"
    asformer = "asformer"


class Protocol(str, Enum):
    standard = "standard"
    incremental = "incremental"


class Replay(str, Enum):
    none = "none"
    exemplar = "exemplar"
    archive = "archive"
    full = "full"


ProtocolOption = Annotated[
    Protocol,
    typer.Option(help="standard: train once per source; incremental: task after task, with replay.",
                 rich_help_panel="Mode"),
]
TasksOption = Annotated[
    Optional[int],
    typer.Option(min=2, help="Incremental: number of tasks (default: one activity per task).",
                 rich_help_panel="Incremental"),
]
ReplayOption = Annotated[
    Optional[list[Replay]],
    typer.Option(help="Incremental: a replay source for earlier tasks (repeatable). Default: all four.",
                 rich_help_panel="Incremental"),
]
TaskOrderOption = Annotated[
    Optional[str],
    typer.Option(help="Incremental: the activities in learning order, comma-separated.", rich_help_panel="Incremental"),
]
EpochsOption = Annotated[
    Optional[int],
    typer.Option(min=1, help="Training epochs (per task, incremental). Default: mstcn 50, asformer 120.",
                 rich_help_panel="Training"),
]
StagesOption = Annotated[
    int, typer.Option(min=1, help="MS-TCN stages; ASFormer: encoder + decoders.", rich_help_panel="Model size")
]
LayersOption = Annotated[
    int, typer.Option(min=1, help="Dilated layers (ASFormer: blocks) per stage.", rich_help_panel="Model size")
]


@handle_errors
def evaluate(
    data: Annotated[Path, typer.Option("--data", "-d", help="Reference dataset: its test split is what is scored.")],
    predictions: Annotated[
        Optional[Path],
        typer.Option(help="Score the prediction files in this folder (one per test video).", rich_help_panel="Mode"),
    ] = None,
    model: Annotated[
        Optional[Model], typer.Option(help="Train this model and score it.", rich_help_panel="Mode")
    ] = None,
    train: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--train",
            help="A training source: an MS-TCN-layout folder or a .tcd archive (decoded on the fly); repeatable. Default: DATA's own train split.",
            rich_help_panel="Training",
        ),
    ] = None,
    protocol: ProtocolOption = Protocol.standard,
    tasks: TasksOption = None,
    replay: ReplayOption = None,
    task_order: TaskOrderOption = None,
    split: Annotated[int, typer.Option("--split", "-s", min=1, help="Which split of DATA.")] = 1,
    bg: Annotated[
        Optional[list[str]],
        typer.Option("--bg", help="A background label, dropped from segments (repeatable). Default: background."),
    ] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Training runs per source.", rich_help_panel="Training")] = 3,
    seed: Annotated[int, typer.Option(min=0, help="First seed.", rich_help_panel="Training")] = 0,
    epochs: EpochsOption = None,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam learning rate.", rich_help_panel="Training")] = 5e-4,
    sample_rate: Annotated[
        int, typer.Option(min=1, help="Train on every S-th frame (50Salads: 2).", rich_help_panel="Training")
    ] = 1,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].", rich_help_panel="Training")] = "auto",
    stages: StagesOption = 4,
    layers: LayersOption = 10,
    f_maps: Annotated[int, typer.Option(min=1, help="Feature maps per layer.", rich_help_panel="Model size")] = 64,
    save_predictions: Annotated[
        Optional[Path],
        typer.Option(help="Write predictions here: <source>/seed<S>/<video>.txt.", rich_help_panel="Outputs"),
    ] = None,
    plot: Annotated[
        Optional[Path],
        typer.Option(help="Write a colour-barcode PNG per test video here.", rich_help_panel="Outputs"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace existing output folders.", rich_help_panel="Outputs")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON on stdout.")] = False,
) -> None:
    """Score predictions (--predictions) or train a model (--model mstcn|asformer) and score it on the real test split.

    Reports Acc, Edit and F1@{10,25,50}; with --model, mean ± std over seeds per training source, its
    bytes and retention. --protocol incremental: activities task after task, with --replay sources.
    """
    background = tuple(bg) if bg else DEFAULT_BACKGROUND
    _check_modes(predictions, model, protocol, tasks, replay, task_order, train, save_predictions, plot)
    if predictions is not None:
        _score_folder(data, predictions, split, background, as_json)
        return
    from tascond_cli.device import resolve_device
    from tascond_cli.distributed import finish, init, rank_device
    from tascond_cli.evaluate.train import DEFAULT_EPOCHS, TrainConfig

    resolved = rank_device(resolve_device(device))  # under torchrun: this rank's GPU
    init(resolved)
    config = TrainConfig(
        model=model.value, epochs=DEFAULT_EPOCHS[model.value] if epochs is None else epochs, lr=lr, sample_rate=sample_rate, seed=seed, device=str(resolved),
        num_stages=stages, num_layers=layers, num_f_maps=f_maps,
    )  # fmt: skip
    try:
        if protocol is Protocol.incremental:
            _incremental(data, split, background, seeds, config, tasks, _order(task_order),
                         [r.value for r in replay] if replay else None, save_predictions, plot, force, as_json)
        else:
            _train_and_score(data, train or [], split, background, seeds, config, save_predictions, plot, force,
                             as_json)
    finally:
        finish()


def _order(task_order: str | None) -> list[str] | None:
    return [a.strip() for a in task_order.split(",") if a.strip()] if task_order else None


def _check_modes(predictions, model, protocol, tasks, replay, task_order, train, save_predictions, plot) -> None:
    """Usage errors between the modes and protocols (exit code 2)."""
    if (predictions is None) == (model is None):
        raise fail("give exactly one of --predictions DIR or --model mstcn|asformer", 2)
    if protocol is Protocol.standard:
        for option, value in (("--tasks", tasks), ("--replay", replay), ("--task-order", task_order)):
            if value:
                raise fail(f"{option} goes with --protocol incremental", 2)
    elif predictions is not None:
        raise fail("--protocol incremental goes with --model, not --predictions", 2)
    elif train:
        raise fail("--train goes with --protocol standard (incremental replays DATA's own train split)", 2)
    if predictions is not None:
        for option, value in (("--train", train), ("--save-predictions", save_predictions), ("--plot", plot)):
            if value:
                raise fail(f"{option} goes with --model, not --predictions", 2)


def _score_folder(data: Path, folder: Path, split: int, background: tuple[str, ...], as_json: bool) -> None:
    from tascond_cli.evaluate.predictions import read_predictions
    from tascond_cli.evaluate.protocol import score_predictions

    dataset = open_dataset(data, split=split, parts=("test",), with_features=False)
    for message in dataset.warnings:
        warn(message)
    preds = read_predictions(folder, dataset.test, dataset.mapping)
    scores = score_predictions(dataset, preds, background)
    if as_json:
        print_json({"split": split, "background": list(background), "videos": len(preds), **scores})
        return
    table = Table(show_edge=False, pad_edge=False, title=f"{folder}: {len(preds)} test videos of split {split}")
    for m in METRIC_NAMES:
        table.add_column(HEADERS[m], justify="right")
    table.add_row(*(f"{scores[m]:.2f}" for m in METRIC_NAMES))
    out().print(table)
    err().print(f"background labels: {', '.join(background) or '(none)'}")


def _train_and_score(data, train, split, background, seeds, config, save_predictions, plot, force, as_json) -> None:
    from tascond_cli.distributed import world
    from tascond_cli.evaluate.protocol import archive_source, folder_source, original_source

    main = world().main  # under torchrun only rank 0 talks and writes
    _check_targets(save_predictions, plot, force)
    dataset = open_dataset(data, split=split)
    for message in dataset.warnings if main else ():
        warn(message)
    sources = [original_source(dataset)]
    taken = {sources[0].name}
    for path in train:
        name = path.name or str(path)
        while name in taken:
            name += "'"
        taken.add(name)
        if path.is_file():
            sources.append(archive_source(path, dataset, name, device=config.device))
        else:
            sources.append(folder_source(path, dataset, name))
    report = train_sources(dataset, sources, config, seeds, background, keep_predictions=bool(save_predictions or plot))
    if main:
        _output(report, dataset, save_predictions, plot, force, as_json, print_report)


def train_sources(dataset, sources, config, seeds, background=DEFAULT_BACKGROUND, keep_predictions=False):
    """:func:`~tascond_cli.evaluate.protocol.evaluate_sources` with one progress bar over every epoch
    (under torchrun: rank 0's, over its share of the runs)."""
    from tascond_cli.distributed import world
    from tascond_cli.evaluate.protocol import evaluate_sources

    w = world()
    with progress(transient=True, enabled=w.main) as bar:
        task = bar.add_task("training", total=len(w.mine(len(sources) * seeds)) * config.epochs)
        done = {"n": 0}

        def on_progress(name: str, k: int, epoch: int, total: int) -> None:
            done["n"] += 1
            bar.update(task, completed=done["n"], description=f"{name} seed {config.seed + k} epoch {epoch}/{total}")

        return evaluate_sources(
            dataset, sources, config, seeds, background, keep_predictions=keep_predictions, on_progress=on_progress
        )


def print_report(report) -> None:
    """The comparison table of an :class:`~tascond_cli.evaluate.protocol.EvalReport` (stdout), legend on stderr."""
    table = Table(
        show_edge=False,
        pad_edge=False,
        title=(
            f"{MODEL_NAMES.get(report.config.model, report.config.model)}, split {report.split}, {len(report.test_videos)} test videos, "
            f"{report.config.epochs} epochs, seeds {report.seeds[0]}..{report.seeds[-1]}"
        ),
    )
    table.add_column("train on", justify="left")
    for m in METRIC_NAMES:
        table.add_column(HEADERS[m], justify="right")
    table.add_column("storage", justify="right")
    multi = len(report.results) > 1
    if multi:
        table.add_column("retention", justify="right")
    if report.floor:
        table.add_column("above blind", justify="right")
    for r in report.results:
        cells = [r.name, *(f"{r.mean[m]:.1f}±{r.std[m]:.1f}" for m in METRIC_NAMES), human_bytes(r.storage_bytes)]
        if multi:
            cells.append(_percent(r.retention))
        if report.floor:
            cells.append(_percent(r.above_floor))
        table.add_row(*cells)
    out().print(table)
    floor = f"; above blind = mean over metrics of (source - {report.floor}) / (original - {report.floor})"
    err().print(
        f"background labels: {', '.join(report.background) or '(none)'}; "
        "mean ± std over seeds; retention = mean over metrics of (source / original)"
        + (floor if report.floor else "")
    )


def _percent(values: dict | None) -> str:
    import math

    if not values:
        return ""
    return "n/a" if math.isnan(values["avg"]) else f"{values['avg']:.1f}%"


def _write_predictions(folder: Path, report, dataset, force: bool) -> None:
    from tascond_cli.evaluate.predictions import format_prediction

    with atomic_dir(folder, overwrite=force) as tmp:
        for r in report.results:
            for seed_value, preds in zip(report.seeds, r.predictions):
                target = tmp / r.name / f"seed{seed_value}"
                target.mkdir(parents=True)
                for name, labels in zip(report.test_videos, preds):
                    (target / f"{name}.txt").write_text(format_prediction(labels, dataset.mapping), encoding="utf-8")


def _check_targets(save_predictions: Path | None, plot: Path | None, force: bool) -> None:
    for target in (save_predictions, plot):
        if target is not None and target.exists() and not force:
            raise TascondError(f"{target}: already exists (pass --force to replace it)")


def _output(report, dataset, save_predictions, plot, force, as_json, printer, row="{}", title="{}") -> None:
    """Rank 0's outputs of a report: predictions, plots, then JSON or the table (``printer``)."""
    if save_predictions is not None:
        _write_predictions(save_predictions, report, dataset, force)
    if plot is not None:
        _write_plots(plot, report, dataset, force, row, title)
    if as_json:
        print_json(report.to_dict())
        return
    printer(report)


def _write_plots(folder: Path, report, dataset, force: bool, row: str = "{}", title: str = "{}") -> None:
    """One barcode PNG per test video: the ground truth, then each result's first-seed prediction.

    ``row`` and ``title`` format the result's and the video's name."""
    from tascond_cli.evaluate.plot import plot_barcode

    with atomic_dir(folder, overwrite=force) as tmp:
        for i, video in enumerate(dataset.test):
            rows = [("ground truth", video.labels)]
            rows += [(f"{row.format(r.name)} (seed {report.seeds[0]})", r.predictions[0][i]) for r in report.results]
            plot_barcode(tmp / f"{video.name}.png", title.format(video.name), rows, dataset.mapping.names)


def _incremental(data, split, background, seeds, config, tasks, order, replays, save_predictions, plot, force,
                 as_json) -> None:
    from tascond_cli.distributed import world
    from tascond_cli.evaluate.incremental import REPLAYS, evaluate_incremental, make_tasks

    w = world()  # under torchrun only rank 0 talks and writes
    _check_targets(save_predictions, plot, force)
    dataset = open_dataset(data, split=split)
    for message in dataset.warnings if w.main else ():
        warn(message)
    replays = list(dict.fromkeys(replays or REPLAYS))
    groups = make_tasks(dataset, tasks, order)  # checked before any training
    with progress(transient=True, enabled=w.main) as bar:
        task = bar.add_task("incremental", total=len(w.mine(len(replays) * seeds)) * len(groups) * config.epochs)
        done = {"n": 0}

        def on_progress(name: str, k: int, t: int, epoch: int, total: int) -> None:
            done["n"] += 1
            bar.update(task, completed=done["n"],
                       description=f"{name} seed {config.seed + k} task {t + 1}/{len(groups)} epoch {epoch}/{total}")

        def on_phase(text: str) -> None:
            bar.update(task, description=text)

        report = evaluate_incremental(
            dataset, config, replays, tasks, order, seeds, background, keep_predictions=bool(save_predictions or plot),
            on_progress=on_progress, on_phase=on_phase,
        )  # fmt: skip
    if w.main:
        _output(report, dataset, save_predictions, plot, force, as_json, print_incremental,
                row="replay {}", title="{}: after the last task")


def print_incremental(report) -> None:
    """The incremental protocol's table (stdout), legend on stderr."""
    table = Table(
        show_edge=False,
        pad_edge=False,
        title=(
            f"{MODEL_NAMES.get(report.config.model, report.config.model)}, incremental, {len(report.tasks)} tasks, "
            f"split {report.split}, {len(report.test_videos)} test videos, {report.config.epochs} epochs per task, "
            f"seeds {report.seeds[0]}..{report.seeds[-1]}"
        ),
    )
    table.add_column("replay", justify="left")
    table.add_column("stored", justify="right")
    for m in METRIC_NAMES:
        table.add_column(f"{HEADERS[m]} last", justify="right")
    table.add_column("Acc avg", justify="right")
    table.add_column("F1@50 avg", justify="right")
    table.add_column("Acc forgot", justify="right")
    for r in report.results:
        table.add_row(
            r.name,
            human_bytes(sum(r.buffer_bytes)),
            *(f"{r.final['mean'][m]:.1f}±{r.final['std'][m]:.1f}" for m in METRIC_NAMES),
            f"{r.average['mean']['acc']:.1f}",
            f"{r.average['mean']['f1@50']:.1f}",
            f"{r.forgetting['mean']['acc']:.1f}",
        )
    out().print(table)
    err().print(
        "tasks: " + " | ".join(", ".join(g) for g in report.tasks) + "; "
        f"background labels: {', '.join(report.background) or '(none)'}; last = after the last task, on every test "
        "video (mean ± std over seeds); avg = mean over tasks of the score on the tasks seen so far; forgot = mean "
        "over earlier tasks of best minus last Acc; stored = bytes the replay keeps of the earlier tasks; "
        "--json has every metric"
    )
