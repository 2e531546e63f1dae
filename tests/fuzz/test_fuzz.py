"""Hostile archives (issue 11): a few hundred mutants per family must all be refused or restore cleanly.

Mutants (:mod:`fuzz.mutate`) run in memory-capped worker processes (:mod:`fuzz.runner`); none may
crash, hang, run out of memory, restore non-finite features or write outside the output folder. The
run is deterministic: the same mutants every time (for the same library versions). Longer runs:
``python3 benchmarks/fuzz.py``; ``TASCOND_FUZZ_COUNT`` changes the count here.
"""

from __future__ import annotations

import json
import os

import pytest

from fuzz.mutate import FAMILIES, build_seeds, load_seeds, mutate
from fuzz.runner import BAD, Options, run

COUNT = int(os.environ.get("TASCOND_FUZZ_COUNT", "400"))
"""Mutants per family: about 60 s for the four families, with two workers on two busy cores (62 s on
2026-12-03)."""
OPTIONS = Options(timeout=10.0, mem=2 * 2**30, workers=2, parse_timeout=5.0)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz")
    return run(FAMILIES, COUNT, work, OPTIONS), work


def _describe(findings: list[dict]) -> str:
    return "\n".join(f"{r['class']} {r['family']}-{r['index']} ({r['seed']}): {r['what']} -> {r['detail'][:300]}"
                     for r in findings[:20])


@pytest.mark.parametrize("family", FAMILIES)
def test_every_mutant_is_refused_or_restores_cleanly(fuzzed, family):
    report, work = fuzzed
    counts = report.counts.get(family, {})
    assert sum(counts.values()) == COUNT
    findings = [r for r in report.findings if r["family"] == family]
    assert not findings, (
        f"{len(findings)} of {COUNT} {family} mutants: "
        + ", ".join(f"{counts[c]} {c}" for c in BAD if counts[c])
        + f" (bytes under {work / 'found'})\n" + _describe(findings)
    )
    assert counts["refused"] > 0  # the mutants do reach the reader's checks


def test_the_harness_restores_what_it_accepts(fuzzed):
    """Some mutants are accepted, so the restore and its output checks really run."""
    report, _ = fuzzed
    assert sum(report.counts[f]["accepted"] for f in FAMILIES) > 0


def test_mutants_are_deterministic(tmp_path):
    build_seeds(tmp_path, ("mean", "pca"))
    seeds = load_seeds(tmp_path)
    for family in FAMILIES:
        for index in (0, 1, 17):
            a, b = mutate(family, seeds, index), mutate(family, seeds, index)
            assert (a.data, a.what, a.seed) == (b.data, b.what, b.seed)
        assert mutate(family, seeds, 0).data != mutate(family, seeds, 2).data


def test_a_mutant_past_its_timeout_is_a_hang_and_the_run_resumes(tmp_path):
    """The kill-and-restart path: with a timeout no worker can meet, every mutant is a hang, its bytes are
    kept, a fresh worker takes the next one, and a resumed run skips what is done."""
    work = tmp_path / "work"
    options = Options(timeout=1e-6, mem=2 * 2**30, workers=1, parse_timeout=None)
    report = run(["byte"], 2, work, options)
    assert report.counts["byte"]["hang"] == 2
    records = [json.loads(line) for line in (work / "results.jsonl").read_text().splitlines()]
    assert [(r["index"], r["class"]) for r in records] == [(0, "hang"), (1, "hang")]
    assert all((work / r["file"]).stat().st_size > 0 for r in records)
    again = run(["byte"], 2, work, options, resume=True)
    assert again.counts["byte"]["hang"] == 2
    assert len((work / "results.jsonl").read_text().splitlines()) == 2
