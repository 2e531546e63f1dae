"""The ``tascond`` command-line tool: one module per command, assembled here."""

from __future__ import annotations

from typing import Annotated

import typer

from tascond_cli import __version__
from tascond_cli.cli import baseline as _baseline
from tascond_cli.cli import condense as _condense
from tascond_cli.cli import demo as _demo
from tascond_cli.cli import evaluate as _evaluate
from tascond_cli.cli import info as _info
from tascond_cli.cli import restore as _restore
from tascond_cli.cli import synth as _synth

app = typer.Typer(
    name="tascond",
    help="Condense temporal action segmentation datasets into tiny .tcd archives, and restore them.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"tascond {__version__}")
        raise typer.Exit()


DISTRIBUTED = ("condense", "evaluate")
"""The commands that spread their work over torchrun's ranks; the others refuse to run under it."""


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Condense temporal action segmentation datasets into tiny .tcd archives, and restore them."""
    from tascond_cli.cli._common import fail
    from tascond_cli.distributed import world
    from tascond_cli.errors import TascondError

    try:
        size = world().size
    except TascondError as exc:
        raise fail(str(exc), 2) from None
    if ctx.invoked_subcommand not in DISTRIBUTED and size > 1:
        raise fail(f"tascond {ctx.invoked_subcommand} runs as one process: start it without torchrun "
                   f"(under torchrun: {', '.join(DISTRIBUTED)})", 2)  # fmt: skip


app.command("demo", rich_help_panel="Start here")(_demo.demo)
app.command("info", rich_help_panel="Data")(_info.info)
app.command("synth", rich_help_panel="Data")(_synth.synth)
app.command("condense", rich_help_panel="Condensation")(_condense.condense)
app.command("baseline", rich_help_panel="Condensation")(_baseline.baseline)
app.command("restore", rich_help_panel="Condensation")(_restore.restore)
app.command("evaluate", rich_help_panel="Evaluation")(_evaluate.evaluate)


def main() -> None:
    """Console-script entry point."""
    app()
