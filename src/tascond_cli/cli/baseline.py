"""``tascond baseline``: the comparison methods, written as the same .tcd archive as ``condense``.

The choices, and the help's list of what each method does, come from the method registry
(:data:`tascond_cli.methods.METHODS`).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from tascond_cli.cli import options as o
from tascond_cli.cli._common import check_output, handle_errors, report_archive, run_phases
from tascond_cli.methods import BASELINES, METHODS

D = o.DEFAULTS
Method = Enum("Method", {name: name for name in BASELINES}, type=str)
"""``METHOD``: every method of the registry but ``tascond`` (that is ``tascond condense``)."""


def _choices() -> str:
    return f"{', '.join(BASELINES[:-1])} or {BASELINES[-1]}."


def _help() -> str:
    lines = "\n".join(f"{name}: {METHODS[name].summary}." for name in BASELINES)
    with_gen = ", ".join(name for name in BASELINES if METHODS[name].needs_generator)
    return (
        "Make a comparison method's archive: restore, info and evaluate treat it like condense's.\n\n"
        f"{lines}\n\nThe {o.GENERATOR} options apply to the methods with a generator ({with_gen})."
    )


@handle_errors
def baseline(
    method: Annotated[Method, typer.Argument(metavar="METHOD", help=_choices(), show_default=False)],
    data: o.Data,
    output: o.Output,
    split: o.Split = D.split,
    ratio: o.MethodRatio = D.sampling.ratio,
    sampling: o.Sampling = D.sampling.strategy,
    code_dtype: o.CodeDtype = D.storage.code_dtype,
    pca_dim: o.PcaDim = D.storage.pca_dim,
    ips: o.Ips = str(D.generator.ips),
    others: o.Others = D.sampling.others,
    latent: o.Latent = D.generator.latent,
    hidden: o.Hidden = D.generator.hidden,
    steps: o.Steps = D.generator.steps,
    invert_iters: o.InvertIters = D.inversion.iters,
    device: o.Device = D.device,
    seed: o.Seed = D.seed,
    force: o.Force = False,
    as_json: o.ArchiveJson = False,
) -> None:
    from tascond_cli.methods import make_baseline

    check_output(output, force)
    config = o.config_from(
        split=split, ratio=ratio, sampling=sampling, code_dtype=code_dtype, pca_dim=pca_dim, ips=ips,
        others=others, latent=latent, hidden=hidden, steps=steps, invert_iters=invert_iters, device=device,
        seed=seed,
    )
    config.for_method(METHODS[method.value])  # checked before any work
    result = run_phases(lambda on_phase: make_baseline(method.value, data, config, on_phase))
    report_archive(result, output, force, as_json, f"{method.value}:")


baseline.__doc__ = _help()
