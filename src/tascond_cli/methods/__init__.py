"""The condensation methods: ours (``tascond``) and the baselines, one module each, in one registry.

:data:`METHODS` is the only list of method names: the CLI's choices, its ``--help``, the progress
phases and the documentation's method table (:func:`markdown_table`) come from it. A method is a
:class:`Method` (see ``CONTRIBUTING.md`` to add one)::

    from tascond_cli.methods import Config, condense_dataset, make_baseline

    result = condense_dataset("data/gtea", Config(seed=1))            # method tascond
    mean = make_baseline("mean", "data/gtea")                         # any method of METHODS
    archive = result.archive                                          # write_archive(archive, "gtea.tcd")

Every function takes a dataset folder or an open :class:`~tascond_cli.data.Dataset`, reports progress
through ``on_phase(phase, done, total)`` (phases: :data:`PHASES`) and never prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from tascond_cli.data import Dataset
from tascond_cli.methods import blind, coreset, encoded, fp16, lowrank, mean, pca, random_subset, tascond, tca
from tascond_cli.methods._base import PHASES, CondenseResult, Method, PhaseCallback
from tascond_cli.methods._generator import borrow_sources, train_generator
from tascond_cli.methods.config import (
    Config,
    ConfigError,
    GeneratorConfig,
    InversionConfig,
    LowRankConfig,
    SamplingConfig,
    StorageConfig,
)

__all__ = [
    "BASELINES",
    "CONDENSERS",
    "METHODS",
    "PHASES",
    "CondenseResult",
    "Config",
    "ConfigError",
    "GeneratorConfig",
    "InversionConfig",
    "LowRankConfig",
    "Method",
    "PhaseCallback",
    "SamplingConfig",
    "StorageConfig",
    "borrow_sources",
    "condense_dataset",
    "get_method",
    "make_baseline",
    "markdown_table",
    "train_generator",
]

METHODS: Mapping[str, Method] = MappingProxyType({
    m.METHOD.name: m.METHOD
    for m in (lowrank, tascond, mean, coreset, tca, encoded, random_subset, fp16, pca, blind)
})
"""Every method, by name, in the order of the comparison table: ours, the paper's baselines (mean,
coreset, tca), the ablations of ours (encoded, random), then fp16, pca and the blind floor."""

CONDENSERS: tuple[str, ...] = ("lowrank", "tascond")
"""The methods of ``tascond condense --method`` (the first is the default): ours."""
BASELINES: tuple[str, ...] = tuple(name for name in METHODS if name not in CONDENSERS)
"""The methods of ``tascond baseline``: every method but :data:`CONDENSERS`."""


def get_method(name: str) -> Method:
    """The method called ``name`` (a :class:`ConfigError` naming the choices otherwise)."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ConfigError("method", f"must be one of {', '.join(METHODS)}, got {name!r}") from None


def make_baseline(
    method: str,
    data: Path | str | Dataset,
    config: Config = Config(),
    on_phase: PhaseCallback | None = None,
    *,
    prior=None,
) -> CondenseResult:
    """Make ``method``'s archive of ``data``'s training split (any name of :data:`METHODS`).

    ``config``'s None fields take the method's defaults. ``prior``: for methods that need a generator,
    one trained with ``config``'s generator settings (:func:`train_generator`) instead of training one
    (the other methods ignore it, so one call can serve a list of methods).
    """
    chosen = get_method(method)
    resolved = config.for_method(chosen)
    return chosen.build(data, resolved, prior=prior if chosen.needs_generator else None, on_phase=on_phase)


def condense_dataset(
    data: Path | str | Dataset,
    config: Config = Config(),
    on_phase: PhaseCallback | None = None,
    *,
    prior=None,
) -> CondenseResult:
    """Condense the training split of ``data`` with our method (``tascond condense``): see
    :mod:`tascond_cli.methods._generator` and docs/method.md. ``prior``: a generator from
    :func:`train_generator` with the same settings, instead of training one (its shape is checked)."""
    return make_baseline("tascond", data, config, on_phase, prior=prior)


def markdown_table() -> str:
    """The method table of README.md and docs/format.md, pasted after their ``<!-- methods-table -->`` marker."""
    lines = [
        "| method | stores | generator | default ratio | decoder kind |",
        "|---|---|---|---|---|",
    ]
    for m in METHODS.values():
        lines.append(
            f"| `{m.name}` | {m.stores} | {'yes' if m.needs_generator else 'no'} | {m.default_ratio:g} "
            f"| `{m.decoder_kind}` |"
        )
    return "\n".join(lines) + "\n"
