"""Command-line options shared by several commands, each declared once.

Each alias is an ``Annotated`` type for a Typer parameter; the commands take the default from the
library's dataclasses (:data:`DEFAULTS`), so the two cannot disagree. :data:`FIELDS` maps each
option to its :class:`~tascond_cli.methods.Config` field: :func:`config_from` builds the config from a
command's options, and an error naming a field is reported with the flag the user typed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tascond_cli.errors import TascondError
from tascond_cli.methods.config import Config

DEFAULTS = Config()
"""The library's defaults: ``DEFAULTS.generator.steps`` and so on."""

GENERATOR = "Generator"
"""Help panel of the generator's options."""
LOWRANK = "Low-rank codec"
"""Help panel of the ``lowrank`` method's options."""

FIELDS = {
    "split": "split",
    "ratio": "sampling.ratio",
    "sampling": "sampling.strategy",
    "others": "sampling.others",
    "ips": "generator.ips",
    "latent": "generator.latent",
    "hidden": "generator.hidden",
    "steps": "generator.steps",
    "invert_iters": "inversion.iters",
    "invert_frames": "inversion.frames",
    "code_dtype": "storage.code_dtype",
    "residual": "storage.residual",
    "pca_dim": "storage.pca_dim",
    "code_dim": "lowrank.dim",
    "stride": "lowrank.stride",
    "interp": "lowrank.interp",
    "floor": "lowrank.floor",
    "noise": "lowrank.noise",
    "device": "device",
    "seed": "seed",
}
"""The :class:`~tascond_cli.methods.Config` field of each option (by its parameter name)."""
FLAGS = {field: "--" + name.replace("_", "-") for name, field in FIELDS.items()} | {"budget": "--budget"}
"""The flag of each :class:`~tascond_cli.methods.Config` field that has one (and of ``budget``, which
:mod:`tascond_cli.methods.budget` errors name)."""


def config_from(**options) -> Config:
    """The :class:`~tascond_cli.methods.Config` of a command's options, given by parameter name
    (:data:`FIELDS`; ``ips`` as typed); the rest keep their defaults."""
    if "ips" in options:
        options["ips"] = parse_ips(options["ips"])
    return DEFAULTS.with_(**{FIELDS[name].replace(".", "__"): value for name, value in options.items()})


def flag_message(field: str, problem: str) -> str:
    """A :class:`~tascond_cli.methods.ConfigError`'s message with the field's flag in place of its name."""
    return f"{FLAGS.get(field, field)} {problem}"


def parse_ips(value: str) -> int | None:
    """``--ips``: a positive integer, or ``frame`` (one code per frame: None)."""
    text = str(value).strip().lower()
    if text == "frame":
        return None
    try:
        ips = int(text)
    except ValueError:
        ips = 0
    if ips < 1:
        raise TascondError(f"--ips must be a positive integer or 'frame', got {value!r}")
    return ips


def _method_defaults(attr: str, fmt: str = "{}") -> str:
    """``0.5 for tca, encoded, random; 1 for mean, ...``: a baseline default by value, from the registry."""
    from tascond_cli.methods import BASELINES, METHODS

    groups: dict[str, list[str]] = {}
    for name in BASELINES:
        groups.setdefault(fmt.format(getattr(METHODS[name], attr)), []).append(name)
    return "; ".join(f"{value} for {', '.join(names)}" for value, names in groups.items())


Data = Annotated[Path, typer.Argument(metavar="DATA", help="Dataset folder (MS-TCN layout).", show_default=False)]
Output = Annotated[str, typer.Option("--output", "-o", help="Archive to write (.tcd), or - for stdout.")]
Split = Annotated[int, typer.Option("--split", "-s", min=1, help="Use this split's training videos.")]
Ratio = Annotated[float, typer.Option(min=0.0, max=1.0, help="Fraction of training videos kept.")]
MethodRatio = Annotated[
    Optional[float],
    typer.Option(min=0.0, max=1.0, help=f"Fraction of training videos kept. Default: {_method_defaults('default_ratio', '{:g}')}."),
]
Sampling = Annotated[str, typer.Option(help="fps (diverse, furthest-point) or random.")]
Others = Annotated[
    str,
    typer.Option(
        help="Videos not kept: borrow (store their action order and lengths; their segments reuse kept "
        "segments' codes) or drop.",
    ),
]
Ips = Annotated[
    str, typer.Option(help="Latent codes (instances) per segment, or 'frame': one code per frame.", rich_help_panel=GENERATOR)
]
Latent = Annotated[int, typer.Option(min=1, help="Latent code size d.", rich_help_panel=GENERATOR)]
Hidden = Annotated[int, typer.Option(min=1, help="Hidden width of the generator.", rich_help_panel=GENERATOR)]
Steps = Annotated[int, typer.Option(min=1, help="Training steps of the generator.", rich_help_panel=GENERATOR)]
InvertIters = Annotated[
    int,
    typer.Option(min=0, help="Most inversion iterations (stops earlier when converged).", rich_help_panel=GENERATOR),
]
InvertFrames = Annotated[
    int,
    typer.Option(
        min=0,
        help="Frames of each chunk used per inversion iteration, sampled afresh each time (0: all). "
        "Bounds the cost on long videos.",
        rich_help_panel=GENERATOR,
    ),
]
Residual = Annotated[
    bool,
    typer.Option(
        help="Store the size and time correlation of what the codes miss; restore adds seeded noise like it.",
        rich_help_panel=GENERATOR,
    ),
]
CodeDtype = Annotated[
    Optional[str],
    typer.Option(help=f"float16 or float32 (lowrank: also int8). Default: {_method_defaults('default_code_dtype')}."),
]
CondenseCodeDtype = Annotated[
    Optional[str],
    typer.Option("--code-dtype", help="int8 (with a scale per dimension), float16 or float32. Default: int8 for "
                 "lowrank, float16 for tascond."),
]
PcaDim = Annotated[int, typer.Option(min=1, help="pca: dimensions kept.")]
CodeDim = Annotated[
    int, typer.Option(min=1, help="Principal directions kept: the width of every code.", rich_help_panel=LOWRANK)
]
Stride = Annotated[
    float,
    typer.Option(min=1.0, help="Frames per code: a segment of L frames gets round(L / STRIDE) codes.",
                 rich_help_panel=LOWRANK),
]
Interp = Annotated[
    str, typer.Option(help="linear (between chunk centres), step (each chunk holds its code) or dct (each code is "
                      "one of the segment's most energetic cosine frequencies).", rich_help_panel=LOWRANK)
]
Floor = Annotated[
    str,
    typer.Option(help="Clamp restored features at 0: none (default), auto (when every training feature is >= 0) "
                 "or zero.",
                 rich_help_panel=LOWRANK),
]
Noise = Annotated[
    str,
    typer.Option(help="Seeded noise shaped like what the codes miss: split (outside the kept directions and "
                 "along each of them, each sized on its own), complement (only outside), full or none.",
                 rich_help_panel=LOWRANK),
]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")]
Seed = Annotated[int, typer.Option(min=0, help="Same data, settings and seed: same archive.")]
Budget = Annotated[
    Optional[str],
    typer.Option(
        metavar="SIZE",
        help="Fit the archive to SIZE: bytes with a unit (40MB, 512KB, 1.5GB; KiB/MiB/GiB) or a factor "
        "(500x: the training features' size / 500). Chooses --stride and --code-dim (lowrank), or the kept "
        "ratio, --ips, --hidden and the precision (tascond); those you set stay. An archive over SIZE is an error.",
        show_default=False,
    ),
]
BudgetTarget = Annotated[
    bool,
    typer.Option("--budget-target", help="Treat --budget as a target: an archive over it is a warning, not an error."),
]
Force = Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")]
ArchiveJson = Annotated[bool, typer.Option("--json", help="Print the summary as JSON (on stderr with -o -).")]
