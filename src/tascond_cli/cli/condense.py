"""``tascond condense``: a dataset's training split in, one small archive out (method ``tascond``)."""

from __future__ import annotations

from tascond_cli.cli import options as o
from tascond_cli.cli._common import check_output, handle_errors, report_archive, run_phases
from tascond_cli.methods import METHODS

D = o.DEFAULTS


@handle_errors
def condense(
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
    result = run_phases(lambda on_phase: condense_dataset(data, config, on_phase))
    report_archive(result, output, force, as_json, "condensed")
