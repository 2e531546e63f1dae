"""``tascond synth``: make a synthetic dataset in the MS-TCN layout."""

from __future__ import annotations

import dataclasses
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from tascond_cli.cli._common import err, handle_errors, human_bytes, print_json, progress
from tascond_cli.synth import FEATURE_MODELS, PROFILES, SynthConfig, feature_model, synthesize

# The choices come from the profile tables, the defaults from SynthConfig.
Profile = Enum("Profile", {name: name for name in PROFILES}, type=str)
Features = Enum("Features", {name: name for name in FEATURE_MODELS}, type=str)
_DEFAULT = SynthConfig()


@handle_errors
def synth(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT", help="Folder to create.", show_default=False)],
    profile: Annotated[Profile, typer.Option(help="Which real dataset to imitate.")] = Profile(_DEFAULT.profile),
    labels_from: Annotated[
        Optional[Path],
        typer.Option(help="Take labels, mapping and splits from this real dataset; synthesize features only."),
    ] = _DEFAULT.labels_from,
    videos: Annotated[
        Optional[int], typer.Option(min=1, help="Videos per part (train, test) of --split, sampled reproducibly.")
    ] = _DEFAULT.videos,
    split: Annotated[int, typer.Option(min=1, help="The split whose parts --videos samples from.")] = _DEFAULT.split,
    subsample: Annotated[int, typer.Option(min=1, help="Keep every S-th frame.")] = _DEFAULT.subsample,
    dim: Annotated[int, typer.Option(min=1, help="Feature dimension D.")] = _DEFAULT.dim,
    seed: Annotated[int, typer.Option(min=0, help="Same seed, same bytes.")] = _DEFAULT.seed,
    features: Annotated[
        Features,
        typer.Option(help="Feature model: default, or hard (the yardstick on which the Mean baseline loses; docs/synth.md)."),
    ] = Features.default,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a summary as JSON on stdout.")] = False,
) -> None:
    """Make a synthetic dataset: realistic labels and splits, I3D-like features."""
    config = SynthConfig(
        profile=profile.value,
        labels_from=labels_from,
        videos=videos,
        split=split,
        subsample=subsample,
        dim=dim,
        seed=seed,
        model=feature_model(features.value),
    )
    with progress() as bar:
        task = bar.add_task("synthesizing", total=None)
        summary = synthesize(
            out_dir, config, overwrite=force, on_video=lambda done, total: bar.update(task, completed=done, total=total)
        )
    data = dataclasses.asdict(summary)
    if as_json:
        print_json({k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()})
    else:
        err().print(f"wrote {out_dir}: {_describe(data)}")


def _describe(data: dict) -> str:
    parts = []
    for key in ("videos", "frames", "classes", "dim"):
        if key in data:
            parts.append(f"{data[key]:,} {key}" if isinstance(data[key], int) else f"{data[key]} {key}")
    if "bytes" in data:
        parts.append(human_bytes(data["bytes"]))
    return ", ".join(parts)
