"""Labels of a profile: which recordings the full dataset has, and the frame labels of each one.

A recording's labels are drawn from a generator seeded by (seed, profile, recording key) alone, so a
video's labels are the same whichever other videos are chosen (see :mod:`tascond_cli.synth.seeding`).
The camera views of one Breakfast take share a key, and so share their labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tascond_cli.synth.grammar import Node, atoms, expand, parse_grammar
from tascond_cli.synth.profiles import (
    BACKGROUND_NAMES,
    BREAKFAST,
    BREAKFAST_CAMERAS,
    BREAKFAST_CAMERA_COUNTS,
    BREAKFAST_GROUP_SIZE,
    BREAKFAST_MISSING,
    BREAKFAST_SUBJECTS,
    GTEA,
    GTEA_SUBJECTS,
    PROFILE_TABLES,
    SALADS,
    SALADS_GROUP_SIZE,
    SALADS_SUBJECTS,
    SALADS_TAKES,
    Profile,
)
from tascond_cli.synth.seeding import stable_rng


@dataclass(frozen=True)
class Recording:
    """One video of a profile's full dataset."""

    name: str  # video name (file stem)
    activity: str
    key: str  # recordings with the same key share their labels (camera views of one take)
    group: int  # subject group: the test part of split `group`


def _parse(profile: Profile) -> dict[str, Node]:
    """The profile's grammars, parsed; every step must be an action of the vocabulary with a duration."""
    parsed = {activity: parse_grammar(text) for activity, text in profile.grammars.items()}
    for activity, node in parsed.items():
        unknown = atoms(node) - (set(profile.classes) & set(profile.durations))
        if unknown:
            raise ValueError(f"profile {profile.name}, {activity}: steps {sorted(unknown)} lack a class or duration")
    return parsed


_GRAMMARS = {name: _parse(prof) for name, prof in PROFILE_TABLES.items()}


def _breakfast_population() -> list[Recording]:
    recs: list[Recording] = []
    counts = [c for c, _ in BREAKFAST_CAMERA_COUNTS]
    probs = [p for _, p in BREAKFAST_CAMERA_COUNTS]
    for pid in BREAKFAST_SUBJECTS:
        rng = stable_rng(0, "population", BREAKFAST.name, pid)
        n_cams = int(rng.choice(counts, p=probs))
        chosen = sorted(rng.choice(len(BREAKFAST_CAMERAS), n_cams, replace=False).tolist())
        group = (pid - BREAKFAST_SUBJECTS[0]) // BREAKFAST_GROUP_SIZE + 1
        for activity in BREAKFAST.grammars:
            if rng.random() < BREAKFAST_MISSING:
                continue  # a few recordings are missing, as in the real dataset
            for c in chosen:
                name = f"P{pid:02d}_{BREAKFAST_CAMERAS[c]}_P{pid:02d}_{activity}"
                recs.append(Recording(name, activity, f"P{pid:02d}_{activity}", group))
    return recs


def _salads_population() -> list[Recording]:
    recs: list[Recording] = []
    (activity,) = SALADS.grammars
    for i, sid in enumerate(SALADS_SUBJECTS):
        for take in SALADS_TAKES:
            name = f"rgb-{sid:02d}-{take}"
            recs.append(Recording(name, activity, name, i // SALADS_GROUP_SIZE + 1))
    return recs


def _gtea_population() -> list[Recording]:
    recs: list[Recording] = []
    for sid in GTEA_SUBJECTS:
        for activity in GTEA.grammars:
            name = f"S{sid}_{activity}_C1"
            recs.append(Recording(name, activity, name, sid))
    return recs


_POPULATIONS = {
    BREAKFAST.name: _breakfast_population,
    SALADS.name: _salads_population,
    GTEA.name: _gtea_population,
}


def population(profile: str) -> list[Recording]:
    """Every video the full dataset would have, sorted by name (fixed, independent of the seed)."""
    return sorted(_POPULATIONS[profile](), key=lambda r: r.name)


def _steps(prof: Profile, activity: str, rng: np.random.Generator) -> list[str]:
    """The recording's step order: a grammar draw, neighbour swaps, background, repeats merged."""
    steps: list[str] = []
    expand(_GRAMMARS[prof.name][activity], rng, steps)
    for i in range(len(steps) - 1):  # loose order: neighbours sometimes swap
        a, b = steps[i], steps[i + 1]
        if a not in BACKGROUND_NAMES and b not in BACKGROUND_NAMES and rng.random() < prof.swap_prob:
            steps[i], steps[i + 1] = b, a
    if prof.between_background is not None:
        bg, p = prof.between_background
        spaced: list[str] = []
        for i, s in enumerate(steps):
            if i and rng.random() < p:
                spaced.append(bg)
            spaced.append(s)
        steps = spaced
    if prof.start_background is not None and rng.random() < prof.start_background[1]:
        steps.insert(0, prof.start_background[0])
    if prof.end_background is not None and rng.random() < prof.end_background[1]:
        steps.append(prof.end_background[0])
    return [s for i, s in enumerate(steps) if i == 0 or s != steps[i - 1]]


def profile_labels(profile: str, activity: str, seed: int, key: str) -> list[str]:
    """The frame labels of one recording of a profile (full frame rate), drawn from (seed, key)."""
    prof = PROFILE_TABLES[profile]
    rng = stable_rng(seed, "labels", profile, key)
    merged = _steps(prof, activity, rng)
    speed = float(np.exp(rng.normal(0.0, prof.speed_sigma)))
    labels: list[str] = []
    for s in merged:
        med = prof.durations[s] * prof.duration_scale * speed
        n = max(prof.min_length, int(round(med * float(np.exp(rng.normal(0.0, prof.duration_sigma))))))
        labels.extend([s] * n)
    return labels
