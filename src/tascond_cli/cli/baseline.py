"""``tascond baseline``: the comparison methods, written as the same .tcd archive as ``condense``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from tascond_cli.cli._common import handle_errors
from tascond_cli.cli.condense import check_output, report_archive, run_phases


class Method(str, Enum):
    mean = "mean"
    coreset = "coreset"
    tca = "tca"
    encoded = "encoded"
    random = "random"
    fp16 = "fp16"
    pca = "pca"
    blind = "blind"


_GEN = "Generator (tca, encoded, random)"


@handle_errors
def baseline(
    method: Annotated[Method, typer.Argument(metavar="METHOD", help="mean, coreset, tca, encoded, random, fp16, pca or blind.", show_default=False)],
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Dataset folder (MS-TCN layout).", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="Archive to write (.tcd), or - for stdout.")],
    split: Annotated[int, typer.Option("--split", "-s", min=1, help="Use this split's training videos.")] = 1,
    ratio: Annotated[
        Optional[float],
        typer.Option(min=0.0, max=1.0, help="Fraction of training videos kept. Default: 0.5 for tca, encoded and random (as condense), 1 for the rest."),
    ] = None,
    sampling: Annotated[str, typer.Option(help="fps (diverse, furthest-point) or random (random is always random).")] = "fps",
    code_dtype: Annotated[
        Optional[str],
        typer.Option(help="float16 or float32. Default: float32 for mean and coreset (exact), float16 otherwise."),
    ] = None,
    pca_dim: Annotated[int, typer.Option(min=1, help="pca: dimensions kept.")] = 64,
    ips: Annotated[
        str, typer.Option(help="Codes per segment, or 'frame' (one per frame).", rich_help_panel=_GEN)
    ] = "8",
    others: Annotated[
        str, typer.Option(help="Videos not kept: borrow or drop (as condense).", rich_help_panel=_GEN)
    ] = "borrow",
    latent: Annotated[int, typer.Option(min=1, help="Latent code size d.", rich_help_panel=_GEN)] = 64,
    hidden: Annotated[int, typer.Option(min=1, help="Hidden width of the generator.", rich_help_panel=_GEN)] = 512,
    steps: Annotated[int, typer.Option(min=1, help="Training steps of the generator.", rich_help_panel=_GEN)] = 1500,
    invert_iters: Annotated[
        int, typer.Option(min=0, help="random: most inversion iterations.", rich_help_panel=_GEN)
    ] = 300,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    seed: Annotated[int, typer.Option(min=0, help="Same data, settings and seed: same archive.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON (on stderr with -o -).")] = False,
) -> None:
    """Make a comparison method's archive: restore, info and evaluate treat it like condense's.

    mean: each segment's mean feature. coreset: the real frame nearest it. tca: our generator decoding
    random codes (none stored). encoded: the encoder's mean per chunk, no inversion. random: our method
    on a random subset of videos. fp16: the features as float16. pca: projected to --pca-dim dimensions.
    blind: all-zero features over the real action structure (the floor).
    """
    from tascond_cli.baselines import BaselineConfig, make_baseline
    from tascond_cli.pipeline import CondenseConfig, parse_ips

    check_output(output, force)
    config = BaselineConfig(
        split=split, ratio=ratio, sampling=sampling, code_dtype=code_dtype, pca_dim=pca_dim, device=device, seed=seed,
        condense=CondenseConfig(
            ips=parse_ips(ips), others=others, latent=latent, hidden=hidden, steps=steps, invert_iters=invert_iters,
        ),
    )
    config.check(method.value)
    result = run_phases(lambda on_phase: make_baseline(method.value, data, config, on_phase))
    report_archive(result, output, force, as_json, f"{method.value}:")
