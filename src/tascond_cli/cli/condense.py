"""``tascond condense``: a dataset's training split in, one small archive out (method ``tascond``)."""

from __future__ import annotations

import typer

from tascond_cli.cli import options as o
from tascond_cli.cli._common import check_output, err, handle_errors, human_bytes, report_archive, run_phases, warn
from tascond_cli.errors import TascondError
from tascond_cli.methods import METHODS

D = o.DEFAULTS

BUDGET_KNOBS = {"ratio": "sampling.ratio", "ips": "generator.ips", "hidden": "generator.hidden"}
"""The options a budget may choose, by parameter name: a budget never changes one the user typed."""


@handle_errors
def condense(
    ctx: typer.Context,
    data: o.Data,
    output: o.Output,
    split: o.Split = D.split,
    ips: o.Ips = str(D.generator.ips),
    ratio: o.Ratio = METHODS["tascond"].default_ratio,
    sampling: o.Sampling = D.sampling.strategy,
    others: o.Others = D.sampling.others,
    latent: o.Latent = D.generator.latent,
    hidden: o.Hidden = D.generator.hidden,
    steps: o.Steps = D.generator.steps,
    invert_iters: o.InvertIters = D.inversion.iters,
    invert_frames: o.InvertFrames = D.inversion.frames,
    residual: o.Residual = D.storage.residual,
    budget: o.Budget = None,
    budget_target: o.BudgetTarget = False,
    device: o.Device = D.device,
    seed: o.Seed = D.seed,
    force: o.Force = False,
    as_json: o.ArchiveJson = False,
) -> None:
    """Condense a dataset's training split into one small .tcd archive."""
    from tascond_cli.methods import condense_dataset

    check_output(output, force)
    config = o.config_from(
        split=split, ips=ips, ratio=ratio, sampling=sampling, others=others, latent=latent, hidden=hidden,
        steps=steps, invert_iters=invert_iters, invert_frames=invert_frames, residual=residual, device=device,
        seed=seed,
    )
    config.for_method(METHODS["tascond"])  # checked before any work
    if budget is None:
        if budget_target:
            raise TascondError("--budget-target needs --budget SIZE")
        result = run_phases(lambda on_phase: condense_dataset(data, config, on_phase))
        report_archive(result, output, force, as_json, "condensed")
        return
    _condense_within(ctx, data, output, config, budget, budget_target, force, as_json)


def _condense_within(ctx: typer.Context, data, output: str, config, spec: str, target: bool, force: bool,
                     as_json: bool) -> None:
    """``--budget``: plan (errors before any training), condense, check the real size, report."""
    from tascond_cli.archive import archive_bytes
    from tascond_cli.methods import ConfigError
    from tascond_cli.methods.budget import condense_within, describe, parse_budget

    wanted = parse_budget(spec)
    # by name: typer's context may come from its own copy of click, with its own ParameterSource
    fixed = [f for name, f in BUDGET_KNOBS.items() if getattr(ctx.get_parameter_source(name), "name", None) != "DEFAULT"]
    plans = []

    def work(on_phase):
        try:
            result, plan = condense_within(data, config, wanted, fixed, on_phase)
        except ConfigError as exc:  # the fields a budget holds, by the flags that set them
            if exc.field != "budget":
                raise
            problem = exc.problem
            for name, field in BUDGET_KNOBS.items():
                problem = problem.replace(field, o.FLAGS[field])
            raise ConfigError(exc.field, problem) from None
        plans.append(plan)
        return result

    result = run_phases(work)
    plan = plans[0]
    size = len(archive_bytes(result.archive))  # exactly the bytes write_archive writes
    over = (f"the archive is {human_bytes(size)} ({size:,} bytes), over the budget {plan.spec} "
            f"({plan.budget:,} bytes; estimated at most {plan.estimate['total']:,})")
    if size > plan.budget and not target:
        raise TascondError(f"{over}; nothing written (--budget-target makes this a warning)")
    if size > plan.budget:
        warn(over)
    if not as_json:
        err().print(
            f"budget {plan.spec} ({human_bytes(plan.budget)}): chose {describe(plan)}; "
            f"estimated at most {human_bytes(plan.estimate['total'])}"
        )
    report_archive(result, output, force, as_json, "condensed", extra={"budget": plan.record()})
