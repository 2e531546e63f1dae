"""``tascond condense``: a dataset's training split in, one small archive out (``--method lowrank``, the
default, or ``tascond``, the generator and network inversion of the paper).

Under ``torchrun`` every rank runs the command and shares the work (:mod:`tascond_cli.distributed`);
every rank ends with the same archive, and rank 0 alone checks the output, shows progress, writes the
archive and prints the summary."""

from __future__ import annotations

from typing import Annotated

import typer

from tascond_cli.cli import options as o
from tascond_cli.cli._common import check_output, err, handle_errors, human_bytes, report_archive, run_phases, warn
from tascond_cli.errors import TascondError
from tascond_cli.methods import CONDENSERS, METHODS

D = o.DEFAULTS

BUDGET_KNOBS = {"ratio": "sampling.ratio", "ips": "generator.ips", "hidden": "generator.hidden"}
"""The options a budget may choose for ``tascond``, by parameter name: a budget never changes one the user typed."""
LOWRANK_BUDGET_KNOBS = {"stride": "lowrank.stride", "code_dim": "lowrank.dim"}
"""The same for ``lowrank``."""
TRIES = 4
"""``lowrank`` archives built at most to fit a budget (the finest candidates first)."""
GENERATOR_ONLY = ("ips", "ratio", "sampling", "others", "latent", "hidden", "steps", "invert_iters", "invert_frames",
                  "residual")
"""Options of the generator method (``--method tascond``) alone."""
LOWRANK_ONLY = ("code_dim", "stride", "interp", "floor", "noise")
"""Options of ``--method lowrank`` alone."""
MethodName = Annotated[
    str, typer.Option("--method", "-m", help=f"{' or '.join(CONDENSERS)}: {METHODS[CONDENSERS[0]].summary} "
                      f"(the default), or {METHODS[CONDENSERS[1]].summary}.")
]


@handle_errors
def condense(
    ctx: typer.Context,
    data: o.Data,
    output: o.Output,
    method: MethodName = CONDENSERS[0],
    split: o.Split = D.split,
    code_dim: o.CodeDim = D.lowrank.dim,
    stride: o.Stride = D.lowrank.stride,
    interp: o.Interp = D.lowrank.interp,
    floor: o.Floor = D.lowrank.floor,
    noise: o.Noise = D.lowrank.noise,
    code_dtype: o.CondenseCodeDtype = D.storage.code_dtype,
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
    from tascond_cli.distributed import finish

    if method not in CONDENSERS:
        raise TascondError(f"--method must be one of {', '.join(CONDENSERS)}, got {method!r}")
    _check_options(ctx, method)
    device = _join(device)
    try:
        _condense(ctx, data, output, method, budget, budget_target, force, as_json, dict(
            split=split, code_dim=code_dim, stride=stride, interp=interp, floor=floor, noise=noise,
            code_dtype=code_dtype, ips=ips, ratio=ratio, sampling=sampling, others=others, latent=latent,
            hidden=hidden, steps=steps, invert_iters=invert_iters, invert_frames=invert_frames, residual=residual,
            device=device, seed=seed))  # fmt: skip
    finally:
        finish()


def _join(device: str) -> str:
    """Under ``torchrun``: join the process group and return this rank's device (``cuda`` becomes the GPU
    numbered ``LOCAL_RANK``); with one process the option as given."""
    from tascond_cli.device import resolve_device
    from tascond_cli.distributed import init, rank_device, world

    if world().size == 1:
        return device
    resolved = rank_device(resolve_device(device))
    init(resolved)
    return str(resolved)


def _main() -> bool:
    """Whether this process talks and writes: rank 0 under ``torchrun``, the one process otherwise."""
    from tascond_cli.distributed import joined

    return joined().main


def _phases(work):
    """``run_phases(work)`` on rank 0; the other ranks work without progress bars."""
    return run_phases(work) if _main() else work(lambda name, done, total: None)


def _condense(ctx: typer.Context, data, output: str, method: str, budget, budget_target: bool, force: bool,
              as_json: bool, given: dict) -> None:
    """The command once the process group (if any) is up; ``given``: the options that make the config."""
    from tascond_cli.methods import make_baseline

    if _main():
        check_output(output, force)
    options = {k: given[k] for k in ("split", "code_dtype", "device", "seed")}
    own = LOWRANK_ONLY if method == "lowrank" else GENERATOR_ONLY
    options.update({k: given[k] for k in own})
    config = o.config_from(**options)
    config.for_method(METHODS[method])  # checked before any work
    if budget is None:
        if budget_target:
            raise TascondError("--budget-target needs --budget SIZE")
        result = _phases(lambda on_phase: make_baseline(method, data, config, on_phase))
        if _main():
            report_archive(result, output, force, as_json, "condensed")
        return
    if method == "lowrank":
        _lowrank_within(ctx, data, output, config, budget, budget_target, force, as_json)
    else:
        _condense_within(ctx, data, output, config, budget, budget_target, force, as_json)


def _typed(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave option ``name`` (by name: typer's context may come from its own copy of click)."""
    return getattr(ctx.get_parameter_source(name), "name", None) not in ("DEFAULT", None)


def _check_options(ctx: typer.Context, method: str) -> None:
    """An option of the other method is an error, not silently ignored."""
    other = GENERATOR_ONLY if method == "lowrank" else LOWRANK_ONLY
    typed = [name for name in other if _typed(ctx, name)]
    if typed:
        flag = "--" + typed[0].replace("_", "-")
        owner = "tascond" if method == "lowrank" else "lowrank"
        raise TascondError(f"{flag} applies to --method {owner}, not {method}")


def _archive_size(result) -> int:
    """The bytes ``write_archive`` will write for the result's archive."""
    from tascond_cli.archive import archive_bytes

    return len(archive_bytes(result.archive))


def _check_size(size: int, plan, target: bool) -> None:
    """The real archive's ``size`` against the budget: an error (nothing written), or a warning with ``target``."""
    over = (f"the archive is {human_bytes(size)} ({size:,} bytes), over the budget {plan.spec} "
            f"({plan.budget:,} bytes; estimated at most {plan.estimate['total']:,})")
    if size > plan.budget and not target:
        raise TascondError(f"{over}; nothing written (--budget-target makes this a warning)")
    if size > plan.budget and _main():
        warn(over)


def _lowrank_within(ctx: typer.Context, data, output: str, config, spec: str, target: bool, force: bool,
                    as_json: bool) -> None:
    """``--budget`` for ``lowrank``: plan from the labels, condense, check the real size, report."""
    from dataclasses import replace

    from tascond_cli.methods import METHODS, make_baseline
    from tascond_cli.methods.budget_lowrank import plan_lowrank

    fixed = [f for name, f in LOWRANK_BUDGET_KNOBS.items() if _typed(ctx, name)]
    resolved = config.for_method(METHODS["lowrank"])
    plans = plan_lowrank(data, resolved, spec, fixed)[:TRIES]

    def work(on_phase):  # int8 codes are estimated, not bounded: the next candidate when one is over
        for plan in plans:
            result = make_baseline("lowrank", data, plan.config, on_phase)
            archive = replace(result.archive, settings={**result.archive.settings, "budget": plan.record()})
            result = replace(result, archive=archive)
            size = _archive_size(result)
            if size <= plan.budget:
                break
        return result, plan, size

    result, plan, size = _phases(work)
    _check_size(size, plan, target)
    if not _main():
        return
    if not as_json:
        err().print(f"budget {plan.spec} ({human_bytes(plan.budget)}): chose {plan.describe()}; "
                    f"estimated {human_bytes(plan.estimate['total'])}")
    report_archive(result, output, force, as_json, "condensed", extra={"budget": plan.record()})


def _condense_within(ctx: typer.Context, data, output: str, config, spec: str, target: bool, force: bool,
                     as_json: bool) -> None:
    """``--budget`` for ``tascond``: plan (errors before any training), condense, check the real size, report."""
    from tascond_cli.methods import ConfigError
    from tascond_cli.methods.budget import condense_within, describe, parse_budget

    wanted = parse_budget(spec)
    fixed = [f for name, f in BUDGET_KNOBS.items() if _typed(ctx, name)]
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

    result = _phases(work)
    plan = plans[0]
    _check_size(_archive_size(result), plan, target)
    if not _main():
        return
    if not as_json:
        err().print(
            f"budget {plan.spec} ({human_bytes(plan.budget)}): chose {describe(plan)}; "
            f"estimated at most {human_bytes(plan.estimate['total'])}"
        )
    report_archive(result, output, force, as_json, "condensed", extra={"budget": plan.record()})
