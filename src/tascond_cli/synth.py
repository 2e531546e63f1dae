"""Synthetic temporal action segmentation datasets in the MS-TCN layout.

:func:`synthesize` writes a dataset folder (``features/``, ``groundTruth/``, ``mapping.txt``,
``splits/``) that every TAS codebase reads. Labels either come from a built-in *profile* that imitates
Breakfast, 50Salads or GTEA, or are taken unchanged from a real dataset (``labels_from``); the features
are always synthetic.

Labels (profiles)
-----------------
Each profile hard-codes the real dataset's class vocabulary (the real action names, in the real
``mapping.txt`` order), its activities, a loose grammar per activity (a mostly fixed order of steps with
optional, repeated, shuffled or alternative steps, plus rare swaps of neighbours), a median duration
per action, its frame rate, its background labels, its video names and its splits by subject groups:

- ``breakfast``: 48 classes, 10 activities, 15 fps, ``SIL`` at both ends, ~6 segments, median ~1,400
  frames; 52 subjects P03..P54 filmed by 2-4 of 5 cameras (the views of one recording share their
  labels), ~1,700 videos; 4 splits, split k tests subjects P03..P15, P16..P28, P29..P41, P42..P54.
- ``50salads``: 19 classes incl. ``action_start``/``action_end``, 30 fps, ~19 segments, ~11,800 frames;
  25 subjects x 2 videos ``rgb-XX-Y``; 5 splits of 5 test subjects.
- ``gtea``: 11 classes incl. ``background``, 15 fps, ~34 short segments, ~1,100 frames; 4 subjects x 7
  activities ``S<k>_<Activity>_C1``; 4 leave-one-subject-out splits.

Every video's labels are drawn from a random generator seeded by (seed, recording), its features from
one seeded by (seed, video name), both through a stable hash (BLAKE2b, not Python's ``hash``): a video
is the same whichever other videos are chosen, and the same seed gives the same bytes.

Features: the generative model
------------------------------
Features are made in a small latent space (``FeatureModel.latent`` = 48 dimensions) and mapped to D
channels by a fixed random projection and a ReLU, like averaged ReLU outputs of I3D: non-negative,
sparse-ish (about ``active_fraction`` of the values are non-zero), smooth in time. For frame t of a
video with style s, in a segment of action c::

    z_t = g * ( A_t + s + nuisance_scale * n_t + noise_scale * e_t )      (latent, 48-d)
    x_t = out_scale * relu(W z_t + b)                                       (features, D-d)

- ``A_t``, the action trajectory. Each action c has ``phases`` (3) anchors, for its start, middle and
  end. An anchor is the action's identity vector plus ``phase_scale`` times a mix of a *generic motion
  primitive* (reach, grasp, place, ...; shared by many actions, weight ``primitive_share``) and a
  phase-specific part. The identity vector (scale ``class_scale``) mixes a vector of the verb
  (``pour``), of the object (``milk``) and of the action itself, so ``pour_milk`` resembles
  ``pour_coffee`` and ``stir_milk``. Within a segment the trajectory runs through its anchors (knots
  jittered per segment), so the start, middle and end of an action look different and the segment's
  mean frame looks like none of them. Every segment instance perturbs its anchors by
  ``instance_scale`` (how this person does it this time). With probability ``confuse_prob`` a segment
  contains a stretch (10-40% of it) that blends, up to ``confuse_strength``, into the middle of another
  action (one sharing its verb or object when there is one). Finally ``A`` is blurred over
  ``blend_seconds``, so boundaries blend.
- ``s``, the video's style (subject, kitchen, camera): a constant offset of scale ``style_scale``;
  ``g``, a per-video gain per latent dimension (log-normal, ``gain_scale``).
- ``n_t``, action-irrelevant content that drifts slowly (hands, clutter, lighting, camera motion):
  Gaussian-smoothed noise over ``nuisance_seconds``, unit variance per dimension, as large as the
  action signal or larger. It does not average out within a segment.
- ``e_t``, fast noise correlated over ``noise_seconds``.
- ``W`` (D x latent, Gaussian) and ``b`` (per channel, negative on average) are fixed per dataset
  (seed, D); ``out_scale`` puts typical values around 0.3-0.5.

Time constants are in seconds and use the profile's frame rate (with ``labels_from``: the frame rate of
the profile whose vocabulary the mapping matches, else 15 fps). The difficulty knobs are the fields of
:class:`FeatureModel`; the defaults are calibrated (``benchmarks/calibrate_synth.py``) so that MS-TCN
trained on Breakfast-like data scores in the range of real Breakfast, and the paper's Mean baseline
(each segment's mean feature repeated) loses clearly, as it does on real Breakfast.

Scaling down
------------
``videos=N`` keeps N videos of the train part and N of the test part of ``split`` (all if fewer),
chosen reproducibly from the seed; every split bundle is rewritten with only the kept videos, in their
original order (bundles that end up empty are left out). ``subsample=S`` keeps every S-th frame of the
labels and features (the same video at a lower frame rate). Without ``videos``, a profile writes a
small default selection (Breakfast 40 train + 10 test of the split, 50Salads 8 + 2, GTEA all 28) and
``labels_from`` writes every video of the source's ``groundTruth/``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tascond_cli.data import ClassMapping, DatasetWriter, folder_bytes, read_bundle, read_labels
from tascond_cli.errors import DataError, TascondError

__all__ = [
    "PROFILES",
    "FeatureModel",
    "SynthConfig",
    "SynthSummary",
    "FeatureWorld",
    "profile_labels",
    "synthesize",
]

PROFILES = ("breakfast", "50salads", "gtea")
BACKGROUND_NAMES = frozenset({"SIL", "background", "action_start", "action_end"})
_BUNDLE_RE = re.compile(r"^(train|test)\.split(\d+)\.bundle$")
_DEFAULT_FPS = 15.0
_PARTS = ("train", "test")


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class FeatureModel:
    """The knobs of the feature generator (see the module docstring for the model).

    Scales are in latent units (an action identity vector has about unit variance per dimension when
    ``class_scale`` is 1); times are in seconds.
    """

    latent: int = 48  # latent dimension
    phases: int = 3  # anchors per action: start, middle, end
    primitives: int = 8  # generic motion primitives shared between actions
    class_scale: float = 1.5  # spread of action identities (verb + object + own)
    phase_scale: float = 1.0  # how far start / middle / end anchors lie from the identity
    primitive_share: float = 0.7  # weight of the shared primitive in a phase anchor (0..1)
    borrow_share: float = 0.6  # how much the start and end of an action look like a related action
    instance_scale: float = 0.5  # per-segment variation of the anchors
    style_scale: float = 0.8  # per-video constant offset
    gain_scale: float = 0.2  # per-video log-normal gain per latent dimension
    nuisance_scale: float = 1.0  # slowly drifting, action-irrelevant content
    nuisance_seconds: float = 6.0
    noise_scale: float = 2.0  # fast, temporally correlated noise
    noise_seconds: float = 1.0
    confuse_prob: float = 0.3  # chance that a segment holds a stretch resembling another action
    confuse_strength: float = 0.8  # peak blend weight of that stretch
    blend_seconds: float = 0.5  # Gaussian blur of the action trajectory (blended boundaries)
    active_fraction: float = 0.4  # share of non-zero feature values (sets the ReLU bias)

    def check(self) -> None:
        """Raise :class:`TascondError` on an impossible value."""
        if self.latent < 1 or self.phases < 2 or self.primitives < 1:
            raise TascondError("feature model: latent >= 1, phases >= 2 and primitives >= 1 are required")
        for name in (
            "class_scale", "phase_scale", "instance_scale", "style_scale", "gain_scale", "nuisance_scale",
            "nuisance_seconds", "noise_scale", "noise_seconds", "confuse_strength", "blend_seconds",
        ):
            if not getattr(self, name) >= 0:
                raise TascondError(f"feature model: {name} must be >= 0, got {getattr(self, name)}")
        for name in ("primitive_share", "borrow_share", "confuse_prob", "confuse_strength"):
            if not 0 <= getattr(self, name) <= 1:
                raise TascondError(f"feature model: {name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 < self.active_fraction < 1:
            raise TascondError(f"feature model: active_fraction must be in (0, 1), got {self.active_fraction}")


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`synthesize` makes.

    profile
        ``breakfast``, ``50salads`` or ``gtea`` (ignored when ``labels_from`` is set).
    labels_from
        A real dataset folder: its label files, mapping and splits are kept, features synthesized.
    videos
        Videos per part (train and test of ``split``), sampled reproducibly; None: every video of
        ``labels_from``, or the profile's small default (Breakfast 40 + 10, 50Salads 8 + 2, GTEA all).
    split
        The split whose parts ``videos`` samples from.
    subsample
        Keep every S-th frame of labels and features.
    dim
        Feature dimension D.
    seed
        Same seed, same bytes.
    model
        The feature generator's knobs (calibrated defaults).
    """

    profile: str = "breakfast"
    labels_from: Path | None = None
    videos: int | None = None
    split: int = 1
    subsample: int = 1
    dim: int = 2048
    seed: int = 0
    model: FeatureModel = field(default_factory=FeatureModel)

    def check(self) -> None:
        """Raise :class:`TascondError` on a bad option value."""
        if self.labels_from is None and self.profile not in PROFILES:
            raise TascondError(f"unknown profile {self.profile!r}: expected one of {', '.join(PROFILES)}")
        if self.videos is not None and self.videos < 1:
            raise TascondError(f"videos must be at least 1, got {self.videos}")
        if self.split < 1:
            raise TascondError(f"split must be at least 1, got {self.split}")
        if self.subsample < 1:
            raise TascondError(f"subsample must be at least 1, got {self.subsample}")
        if self.dim < 1:
            raise TascondError(f"feature dimension must be at least 1, got {self.dim}")
        if self.seed < 0:
            raise TascondError(f"seed must be >= 0, got {self.seed}")
        self.model.check()


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`synthesize` wrote."""

    out: Path
    source: str  # "profile breakfast" or the labels_from folder
    videos: int
    train: int  # videos in the train part of `split`
    test: int  # videos in the test part of `split`
    frames: int  # frames written, all videos
    classes: int
    dim: int
    splits: tuple[int, ...]
    bytes: int  # size of the written folder


ProgressCallback = Callable[[int, int], None]


# --------------------------------------------------------------------------- stable randomness


def _rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator seeded by ``seed`` and a stable hash of ``parts`` (independent of PYTHONHASHSEED)."""
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    digest = hashlib.blake2b(text, digest_size=16).digest()
    words = np.frombuffer(digest, dtype="<u4").tolist()
    return np.random.default_rng([int(seed), *words])


# --------------------------------------------------------------------------- grammars

_TOKEN_RE = re.compile(r"\s*(?:([(){}\[\]|])|([?+])([0-9.]+)|([A-Za-z0-9_]+))")


class _Node:
    __slots__ = ("kind", "value", "opt", "rep")

    def __init__(self, kind: str, value: object) -> None:
        self.kind = kind  # "atom" | "seq" | "shuffle" | "alt"
        self.value = value
        self.opt: float | None = None  # present with this probability
        self.rep: float | None = None  # repeated again with this probability (up to 3 more times)


def _parse_grammar(text: str) -> _Node:
    """Parse a grammar: ``a b?0.4 (c d)+0.5 {e f} [g|h i|]`` (see the profiles)."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"bad grammar near {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.group(1):
            tokens.append(("punct", m.group(1)))
        elif m.group(2):
            tokens.append((m.group(2), m.group(3)))
        else:
            tokens.append(("word", m.group(4)))
    it = 0

    def parse_seq(stop: str) -> list[_Node]:
        nonlocal it
        items: list[_Node] = []
        while it < len(tokens):
            kind, val = tokens[it]
            if kind == "punct" and val in stop:
                return items
            it += 1
            if kind == "word":
                items.append(_Node("atom", val))
            elif kind in "?+":
                if not items:
                    raise ValueError(f"modifier {kind}{val} without an element")
                if kind == "?":
                    items[-1].opt = float(val)
                else:
                    items[-1].rep = float(val)
            elif val == "(":
                items.append(_Node("seq", parse_seq(")")))
                it += 1
            elif val == "{":
                items.append(_Node("shuffle", parse_seq("}")))
                it += 1
            elif val == "[":
                alts = [_Node("seq", parse_seq("|]"))]
                while tokens[it][1] == "|":
                    it += 1
                    alts.append(_Node("seq", parse_seq("|]")))
                it += 1
                items.append(_Node("alt", alts))
            else:
                raise ValueError(f"unexpected {val!r} in grammar")
        if stop:
            raise ValueError(f"grammar: missing {stop!r}")
        return items

    return _Node("seq", parse_seq(""))


def _expand(node: _Node, rng: np.random.Generator, out: list[str]) -> None:
    if node.opt is not None and rng.random() >= node.opt:
        return
    times = 1
    if node.rep is not None:
        while times < 4 and rng.random() < node.rep:
            times += 1
    for _ in range(times):
        if node.kind == "atom":
            out.append(node.value)  # type: ignore[arg-type]
        elif node.kind == "seq":
            for child in node.value:  # type: ignore[attr-defined]
                _expand(child, rng, out)
        elif node.kind == "shuffle":
            children = node.value  # type: ignore[assignment]
            for i in rng.permutation(len(children)):
                _expand(children[int(i)], rng, out)
        else:  # alt
            children = node.value  # type: ignore[assignment]
            _expand(children[int(rng.integers(len(children)))], rng, out)


def _atoms(node: _Node) -> set[str]:
    if node.kind == "atom":
        return {node.value}  # type: ignore[return-value]
    found: set[str] = set()
    for child in node.value:  # type: ignore[attr-defined]
        found |= _atoms(child)
    return found


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class _Recording:
    name: str  # video name (file stem)
    activity: str
    key: str  # recordings with the same key share their labels (camera views of one take)
    group: int  # subject group: the test part of split `group`


@dataclass(frozen=True)
class _Profile:
    name: str
    fps: float
    classes: tuple[str, ...]
    grammars: dict[str, str]
    durations: dict[str, float]  # median segment length in frames at `fps`
    n_splits: int
    default_videos: tuple[int, int] | None  # (train, test) of the split; None = all
    swap_prob: float = 0.05  # neighbouring steps swap places
    duration_sigma: float = 0.5  # log-normal spread of one segment's length
    speed_sigma: float = 0.25  # log-normal spread of a recording's overall pace
    start_background: tuple[str, float] | None = None  # label and probability before the first action
    end_background: tuple[str, float] | None = None
    between_background: tuple[str, float] | None = None  # between actions (GTEA)
    min_length: int = 3
    duration_scale: float = 1.0  # the medians understate the skewed real lengths

    def parsed(self) -> dict[str, _Node]:
        return {a: _parse_grammar(g) for a, g in self.grammars.items()}


_BREAKFAST_CLASSES = (
    "SIL pour_cereals pour_milk stir_cereals take_bowl pour_coffee take_cup spoon_sugar stir_coffee "
    "pour_sugar pour_oil crack_egg add_saltnpepper fry_egg take_plate put_egg2plate take_eggs butter_pan "
    "take_knife cut_orange squeeze_orange pour_juice take_glass take_squeezer spoon_powder stir_milk "
    "spoon_flour stir_dough pour_dough2pan fry_pancake put_pancake2plate pour_flour cut_fruit "
    "put_fruit2bowl peel_fruit stir_fruit cut_bun smear_butter take_topping put_toppingOnTop "
    "put_bunTogether take_butter stir_egg pour_egg2pan stirfry_egg add_teabag pour_water stir_tea"
).split()

_BREAKFAST = _Profile(
    name="breakfast",
    fps=15.0,
    classes=tuple(_BREAKFAST_CLASSES),
    grammars={
        "cereals": "take_bowl?0.5 pour_cereals pour_milk stir_cereals?0.4",
        "coffee": "take_cup?0.3 pour_coffee (spoon_sugar stir_coffee?0.6)?0.15 pour_sugar?0.08 pour_milk?0.6",
        "friedegg": "take_eggs?0.1 [butter_pan|pour_oil|] crack_egg add_saltnpepper?0.45 fry_egg "
        "take_plate?0.5 put_egg2plate",
        "juice": "take_plate?0.07 take_knife?0.05 take_squeezer?0.15 cut_orange squeeze_orange "
        "take_glass?0.6 pour_juice",
        "milk": "take_cup?0.3 {spoon_powder pour_milk} stir_milk?0.9",
        "pancake": "take_eggs?0.1 crack_egg spoon_flour pour_flour?0.1 pour_milk stir_dough "
        "(spoon_flour stir_dough)?0.2 [butter_pan|pour_oil|] pour_dough2pan fry_pancake take_plate?0.7 "
        "put_pancake2plate",
        "salat": "take_plate?0.2 take_knife?0.1 (peel_fruit?0.5 cut_fruit take_bowl?0.1 put_fruit2bowl)+0.7 "
        "stir_fruit?0.2",
        "sandwich": "take_knife?0.1 cut_bun take_butter?0.08 smear_butter?0.85 take_topping?0.2 "
        "put_toppingOnTop put_bunTogether?0.5",
        "scrambledegg": "[butter_pan|pour_oil] crack_egg add_saltnpepper?0.3 (stir_egg pour_egg2pan)?0.45 "
        "stirfry_egg (add_saltnpepper stirfry_egg)?0.4 take_plate?0.6 put_egg2plate",
        "tea": "take_cup?0.4 add_teabag pour_water (spoon_sugar stir_tea?0.5)?0.06",
    },
    durations={
        "SIL": 47, "add_saltnpepper": 224, "add_teabag": 140, "butter_pan": 485, "crack_egg": 283,
        "cut_bun": 230, "cut_fruit": 405, "cut_orange": 140, "fry_egg": 1361, "fry_pancake": 2557,
        "peel_fruit": 615, "pour_cereals": 260, "pour_coffee": 220, "pour_dough2pan": 288,
        "pour_egg2pan": 290, "pour_flour": 189, "pour_juice": 150, "pour_milk": 190, "pour_oil": 214,
        "pour_sugar": 156, "pour_water": 200, "put_bunTogether": 60, "put_egg2plate": 184,
        "put_fruit2bowl": 85, "put_pancake2plate": 149, "put_toppingOnTop": 290, "smear_butter": 560,
        "spoon_flour": 296, "spoon_powder": 285, "spoon_sugar": 190, "squeeze_orange": 656,
        "stir_cereals": 116, "stir_coffee": 152, "stir_dough": 562, "stir_egg": 343, "stir_fruit": 175,
        "stir_milk": 190, "stir_tea": 104, "stirfry_egg": 664, "take_bowl": 93, "take_butter": 100,
        "take_cup": 95, "take_eggs": 200, "take_glass": 100, "take_knife": 90, "take_plate": 118,
        "take_squeezer": 60, "take_topping": 165,
    },
    n_splits=4,
    default_videos=(40, 10),
    swap_prob=0.05,
    duration_scale=1.1,
    start_background=("SIL", 0.97),
    end_background=("SIL", 0.85),
)

_SALADS_VEG = (
    "{(cut_tomato place_tomato_into_bowl)+0.3 (cut_cheese place_cheese_into_bowl)+0.1 "
    "(cut_lettuce place_lettuce_into_bowl)+0.25 (peel_cucumber cut_cucumber place_cucumber_into_bowl)+0.1}"
)
_SALADS_DRESS = "{add_salt add_pepper (add_vinegar add_oil)} mix_dressing"

_SALADS = _Profile(
    name="50salads",
    fps=30.0,
    classes=tuple(
        "cut_tomato place_tomato_into_bowl cut_cheese place_cheese_into_bowl cut_lettuce "
        "place_lettuce_into_bowl add_salt add_vinegar add_oil add_pepper mix_dressing peel_cucumber "
        "cut_cucumber place_cucumber_into_bowl add_dressing mix_ingredients serve_salad_onto_plate "
        "action_start action_end".split()
    ),
    grammars={
        "salad": f"action_start [{_SALADS_DRESS} {_SALADS_VEG} mix_ingredients add_dressing?0.6|"
        f"{_SALADS_VEG} mix_ingredients?0.7 {_SALADS_DRESS} add_dressing?0.6 mix_ingredients?0.4] "
        "serve_salad_onto_plate add_dressing?0.3 action_end",
    },
    durations={
        "action_start": 511, "action_end": 705, "add_dressing": 472, "add_oil": 504, "add_pepper": 239,
        "add_salt": 225, "add_vinegar": 447, "cut_cheese": 859, "cut_cucumber": 776, "cut_lettuce": 783,
        "cut_tomato": 924, "mix_dressing": 341, "mix_ingredients": 410, "peel_cucumber": 1157,
        "place_cheese_into_bowl": 188, "place_cucumber_into_bowl": 259, "place_lettuce_into_bowl": 232,
        "place_tomato_into_bowl": 180, "serve_salad_onto_plate": 608,
    },
    n_splits=5,
    default_videos=(8, 2),
    swap_prob=0.04,
    duration_sigma=0.4,
    speed_sigma=0.15,
)

_GTEA = _Profile(
    name="gtea",
    fps=15.0,
    classes=tuple("take open pour close shake scoop stir put fold spread background".split()),
    grammars={
        "Cheese": "take take open put take open pour close put (take open pour close put)?0.7 take put",
        "CofHoney": "take take open take scoop pour (scoop pour)?0.7 close put take open pour close put "
        "take open pour close put stir",
        "Coffee": "take take open take (scoop pour)+0.6 close put take open (scoop pour)?0.5 pour?0.5 close "
        "put take open pour close put stir",
        "Hotdog": "take take put take open pour close put take open pour close put fold",
        "Pealate": "take take open take scoop spread close put take open scoop spread close put take open "
        "pour close put take put",
        "Peanut": "take take open take scoop spread (scoop spread)?0.3 close put take open pour close put "
        "take put",
        "Tea": "take take open pour close put take put open shake take open take (scoop pour)+0.5 close put "
        "stir",
    },
    durations={
        "background": 13, "take": 30, "open": 33, "pour": 49, "close": 22, "put": 22, "scoop": 33,
        "shake": 219, "spread": 131, "stir": 90, "fold": 63,
    },
    n_splits=4,
    default_videos=None,
    swap_prob=0.03,
    duration_sigma=0.45,
    speed_sigma=0.15,
    start_background=("background", 0.95),
    end_background=("background", 0.9),
    between_background=("background", 0.7),
    min_length=2,
)

_PROFILES = {p.name: p for p in (_BREAKFAST, _SALADS, _GTEA)}
_GRAMMARS = {p.name: p.parsed() for p in _PROFILES.values()}


def _population(profile: _Profile) -> list[_Recording]:
    """Every video the full dataset would have, sorted by name (fixed, independent of the seed)."""
    recs: list[_Recording] = []
    if profile.name == "breakfast":
        cams = ("cam01", "cam02", "stereo01", "webcam01", "webcam02")
        for pid in range(3, 55):
            rng = _rng(0, "population", profile.name, pid)
            n_cams = int(rng.choice([2, 3, 4], p=[0.15, 0.45, 0.4]))
            chosen = sorted(rng.choice(len(cams), n_cams, replace=False).tolist())
            for activity in profile.grammars:
                if rng.random() < 0.03:
                    continue  # a few recordings are missing, as in the real dataset
                for c in chosen:
                    name = f"P{pid:02d}_{cams[c]}_P{pid:02d}_{activity}"
                    recs.append(_Recording(name, activity, f"P{pid:02d}_{activity}", (pid - 3) // 13 + 1))
    elif profile.name == "50salads":
        subjects = [s for s in range(1, 28) if s not in (8, 12)]
        for i, sid in enumerate(subjects):
            for take in (1, 2):
                name = f"rgb-{sid:02d}-{take}"
                recs.append(_Recording(name, "salad", name, i // 5 + 1))
    else:  # gtea
        for sid in range(1, 5):
            for activity in profile.grammars:
                name = f"S{sid}_{activity}_C1"
                recs.append(_Recording(name, activity, name, sid))
    return sorted(recs, key=lambda r: r.name)


def profile_labels(profile: str, activity: str, seed: int, key: str) -> list[str]:
    """The frame labels of one recording of a profile (full frame rate), drawn from (seed, key)."""
    prof = _PROFILES[profile]
    rng = _rng(seed, "labels", profile, key)
    steps: list[str] = []
    _expand(_GRAMMARS[profile][activity], rng, steps)
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
    merged = [s for i, s in enumerate(steps) if i == 0 or s != steps[i - 1]]
    speed = float(np.exp(rng.normal(0.0, prof.speed_sigma)))
    labels: list[str] = []
    for s in merged:
        med = prof.durations[s] * prof.duration_scale * speed
        n = max(prof.min_length, int(round(med * float(np.exp(rng.normal(0.0, prof.duration_sigma))))))
        labels.extend([s] * n)
    return labels


# --------------------------------------------------------------------------- features


def _gauss_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.exp(-0.5 * (x / sigma) ** 2)


def _convolve_time(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'Valid' convolution of every column of ``x`` (N, L) with ``kernel`` (K,), via FFT: (N-K+1, L)."""
    n, k = x.shape[0], kernel.shape[0]
    size = 1 << int(np.ceil(np.log2(n + k - 1)))
    fx = np.fft.rfft(x, size, axis=0)
    fk = np.fft.rfft(kernel, size)
    full = np.fft.irfft(fx * fk[:, None], size, axis=0)
    return full[k - 1 : n]


def _smooth_noise(rng: np.random.Generator, t: int, dims: int, sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise (t, dims) with unit variance, correlated over ``sigma`` frames."""
    if sigma < 0.5:
        return rng.standard_normal((t, dims))
    kernel = _gauss_kernel(sigma)
    kernel /= np.sqrt(np.sum(kernel**2))
    white = rng.standard_normal((t + kernel.size - 1, dims))
    return _convolve_time(white, kernel)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur along time (axis 0), edges extended."""
    if sigma < 0.5 or x.shape[0] < 2:
        return x
    kernel = _gauss_kernel(sigma)
    kernel /= kernel.sum()
    r = kernel.size // 2
    padded = np.concatenate([np.repeat(x[:1], r, axis=0), x, np.repeat(x[-1:], r, axis=0)])
    return _convolve_time(padded, kernel)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal(n)
    return v * (np.sqrt(n) / max(np.linalg.norm(v), 1e-12))  # exactly unit variance per dimension


def _split_name(name: str) -> tuple[str, str]:
    """(verb, object) of an action name such as ``pour_milk`` or ``place_tomato_into_bowl``."""
    parts = name.split("_")
    return parts[0], "_".join(parts[1:]) if len(parts) > 1 else ""


class FeatureWorld:
    """Everything shared by the videos of one dataset: action anchors, primitives, projection.

    Built from (seed, class names, dim, frame rate, model); per-class parts depend only on the class
    name, so an action looks the same in any vocabulary that contains it.
    """

    def __init__(self, classes: Sequence[str], dim: int, seed: int, fps: float, model: FeatureModel) -> None:
        self.classes = tuple(classes)
        self.dim = dim
        self.seed = seed
        self.fps = fps
        self.model = m = model
        lat = m.latent
        prim = np.stack([_unit(_rng(seed, "primitive", i), lat) for i in range(m.primitives)])  # (G, L)
        identity = np.zeros((len(self.classes), lat))
        for ci, name in enumerate(self.classes):
            verb, obj = _split_name(name)
            own = _unit(_rng(seed, "class", name), lat)
            if name in BACKGROUND_NAMES or not obj:
                ident = own
            else:
                ident = 0.55 * _unit(_rng(seed, "verb", verb), lat) + 0.55 * _unit(_rng(seed, "object", obj), lat)
                ident = ident + 0.63 * own
            identity[ci] = m.class_scale * ident
        # related actions: sharing the verb or the object, else any non-background action
        foreground = [i for i, n in enumerate(self.classes) if n not in BACKGROUND_NAMES] or list(
            range(len(self.classes))
        )
        self.partners: list[np.ndarray] = []
        for ci, name in enumerate(self.classes):
            verb, obj = _split_name(name)
            close = [
                j
                for j in foreground
                if j != ci
                and (_split_name(self.classes[j])[0] == verb or (obj and _split_name(self.classes[j])[1] == obj))
            ]
            self.partners.append(np.array(close or [j for j in foreground if j != ci] or [ci]))
        anchors = np.zeros((len(self.classes), m.phases, lat))
        for ci, name in enumerate(self.classes):
            for p in range(m.phases):
                r = _rng(seed, "phase", name, p)
                shared = prim[int(r.integers(m.primitives))]
                dev = m.primitive_share * shared + np.sqrt(1 - m.primitive_share**2) * _unit(r, lat)
                base = identity[ci]
                if p in (0, m.phases - 1) and name not in BACKGROUND_NAMES:
                    # the start and the end look like a related action (reach for it, put it down)
                    other = int(r.choice(self.partners[ci]))
                    base = (1.0 - m.borrow_share) * identity[ci] + m.borrow_share * identity[other]
                anchors[ci, p] = base + m.phase_scale * dev
        self.identity = identity  # (C, L)
        self.anchors = anchors  # (C, P, L)
        # projection to D channels: relu(W z + b), bias set for the wanted share of active values
        rp = _rng(seed, "projection", dim, lat)
        self.weight = (rp.standard_normal((dim, lat)) / np.sqrt(lat)).astype(np.float32)  # (D, L)
        var = (
            m.class_scale**2 + m.phase_scale**2 + m.instance_scale**2 + m.style_scale**2
            + m.nuisance_scale**2 + m.noise_scale**2
        )
        spread = float(np.sqrt(max(var, 1e-6)))
        from statistics import NormalDist

        q = NormalDist().inv_cdf(1.0 - m.active_fraction)
        self.bias = (spread * (-q + 0.3 * rp.standard_normal(dim))).astype(np.float32)  # (D,)
        self.out_scale = np.float32(1.0 / spread)

    def features(self, labels: np.ndarray, name: str, subsample: int = 1) -> np.ndarray:
        """Features (D, ceil(T / subsample)) float32 of one video with class-index ``labels`` (T,).

        Drawn from (seed, video name): the same name and labels give the same bytes.
        """
        m = self.model
        lat = m.latent
        labels = np.asarray(labels, dtype=np.int64)
        t = labels.shape[0]
        rng = _rng(self.seed, "video", name)
        # segments
        change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
        starts = np.concatenate(([0], change))
        lengths = np.diff(np.concatenate((starts, [t])))
        cls = labels[starts]
        nseg = starts.size
        seg = np.repeat(np.arange(nseg), lengths)  # (T,)
        pos = (np.arange(t) - starts[seg]) / np.maximum(lengths[seg] - 1, 1)  # (T,) in [0, 1]
        # per-segment anchors and knots
        anchors = self.anchors[cls] + m.instance_scale * rng.standard_normal((nseg, m.phases, lat))
        inner = np.linspace(0.0, 1.0, m.phases)[1:-1]
        jitter = rng.uniform(-0.35, 0.35, (nseg, inner.size)) / (m.phases - 1)
        knots = np.concatenate(
            [np.zeros((nseg, 1)), np.sort(inner + jitter, axis=1), np.ones((nseg, 1))], axis=1
        )  # (S, P)
        k = np.minimum((pos[:, None] >= knots[seg, 1:-1]).sum(axis=1), m.phases - 2)  # (T,) interval
        lo, hi = knots[seg, k], knots[seg, k + 1]
        f = np.clip((pos - lo) / np.maximum(hi - lo, 1e-9), 0.0, 1.0)
        f = f * f * (3.0 - 2.0 * f)  # smoothstep
        a_lo = anchors[seg, k]  # (T, L)
        a_hi = anchors[seg, k + 1]
        traj = a_lo + f[:, None] * (a_hi - a_lo)  # (T, L)
        # stretches that look like another action
        confused = rng.random(nseg) < m.confuse_prob
        other = np.array([int(rng.choice(self.partners[c])) for c in cls])
        center = rng.uniform(0.2, 0.8, nseg)
        half = rng.uniform(0.05, 0.2, nseg)
        strength = m.confuse_strength * rng.uniform(0.6, 1.0, nseg) * confused
        d = np.clip(np.abs(pos - center[seg]) / half[seg], 0.0, 1.0)
        w = strength[seg] * np.cos(0.5 * np.pi * d) ** 2  # (T,)
        mid = self.anchors[other, m.phases // 2]  # (S, L)
        traj += w[:, None] * (mid[seg] - traj)
        traj = _blur(traj, m.blend_seconds * self.fps)
        # video style, drifting nuisance, fast noise
        style = m.style_scale * rng.standard_normal(lat)
        gain = np.exp(m.gain_scale * rng.standard_normal(lat))
        nuisance = _smooth_noise(rng, t, lat, m.nuisance_seconds * self.fps)
        noise = _smooth_noise(rng, t, lat, m.noise_seconds * self.fps)
        z = (traj + style + m.nuisance_scale * nuisance + m.noise_scale * noise) * gain  # (T, L)
        z = np.ascontiguousarray(z[::subsample], dtype=np.float32)
        h = self.weight @ z.T  # (D, T')
        h += self.bias[:, None]
        np.maximum(h, 0.0, out=h)
        h *= self.out_scale
        return h


# --------------------------------------------------------------------------- datasets


def _select(names: Sequence[str], n: int | None, seed: int, *tag: object) -> list[str]:
    """``n`` of ``names`` (all if fewer), chosen from (seed, tag), in their original order."""
    if n is None or n >= len(names):
        return list(names)
    idx = _rng(seed, "select", *tag).choice(len(names), n, replace=False)
    keep = set(int(i) for i in idx)
    return [x for i, x in enumerate(names) if i in keep]


def _profile_fps(classes: Sequence[str]) -> float:
    for prof in _PROFILES.values():
        if set(prof.classes) == set(classes):
            return prof.fps
    return _DEFAULT_FPS


def synthesize(
    out: Path | str,
    config: SynthConfig,
    *,
    overwrite: bool = False,
    on_video: ProgressCallback | None = None,
) -> SynthSummary:
    """Write a synthetic dataset to ``out`` (atomically) and return what was written.

    Raises
    ------
    TascondError
        On a bad option value or an existing ``out`` without ``overwrite``.
    DataError
        When ``labels_from`` is not a valid dataset (the message names the file).
    """
    config.check()
    out = Path(out)
    if config.labels_from is not None:
        return _from_labels(out, config, overwrite, on_video)
    return _from_profile(out, config, overwrite, on_video)


def _from_profile(out: Path, config: SynthConfig, overwrite: bool, on_video: ProgressCallback | None) -> SynthSummary:
    prof = _PROFILES[config.profile]
    if config.split > prof.n_splits:
        raise TascondError(
            f"profile {prof.name} has splits 1..{prof.n_splits}, not split {config.split}"
        )
    recs = _population(prof)
    by_name = {r.name: r for r in recs}
    parts = {
        "train": [r.name for r in recs if r.group != config.split],
        "test": [r.name for r in recs if r.group == config.split],
    }
    chosen: dict[str, list[str]] = {}
    for i, part in enumerate(_PARTS):
        n = config.videos
        if n is None and prof.default_videos is not None:
            n = prof.default_videos[i]
        chosen[part] = _select(parts[part], n, config.seed, prof.name, config.split, part)
    keep = set(chosen["train"]) | set(chosen["test"])
    names = [r.name for r in recs if r.name in keep]
    mapping = ClassMapping(prof.classes)
    world = FeatureWorld(prof.classes, config.dim, config.seed, prof.fps, config.model)
    frames = 0
    with DatasetWriter(out, overwrite=overwrite) as w:
        w.write_mapping(mapping)
        for done, name in enumerate(names, 1):
            rec = by_name[name]
            label_names = profile_labels(prof.name, rec.activity, config.seed, rec.key)
            labels = np.array([mapping.index(s) for s in label_names], dtype=np.int64)
            feats = world.features(labels, name, config.subsample)
            kept = label_names[:: config.subsample]
            w.write_video(name, feats, kept)
            frames += len(kept)
            if on_video is not None:
                on_video(done, len(names))
        splits = []
        for k in range(1, prof.n_splits + 1):
            wrote = False
            for part in _PARTS:
                listed = [r.name for r in recs if (r.group == k) == (part == "test") and r.name in keep]
                if listed:
                    w.write_bundle(f"{part}.split{k}.bundle", listed)
                    wrote = True
            if wrote:
                splits.append(k)
    return SynthSummary(
        out=out,
        source=f"profile {prof.name}",
        videos=len(names),
        train=len(chosen["train"]),
        test=len(chosen["test"]),
        frames=frames,
        classes=len(mapping),
        dim=config.dim,
        splits=tuple(splits),
        bytes=folder_bytes(out),
    )


def _from_labels(out: Path, config: SynthConfig, overwrite: bool, on_video: ProgressCallback | None) -> SynthSummary:
    root = Path(config.labels_from)  # type: ignore[arg-type]
    if not root.exists():
        raise DataError(f"{root}: no such dataset folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    mapping_path = root / "mapping.txt"
    if not mapping_path.is_file():
        raise DataError(f"{mapping_path}: missing (every dataset needs its class mapping)")
    mapping = ClassMapping.read(mapping_path)
    gt_dir, splits_dir = root / "groundTruth", root / "splits"
    for sub in (gt_dir, splits_dir):
        if not sub.is_dir():
            raise DataError(f"{sub}: missing folder")
    bundles: dict[str, list[str]] = {}
    for entry in sorted(splits_dir.iterdir(), key=lambda p: p.name):
        if _BUNDLE_RE.match(entry.name) and entry.is_file():
            listed = read_bundle(entry)
            for name in listed:
                if not (gt_dir / f"{name}.txt").is_file():
                    raise DataError(f"{gt_dir / (name + '.txt')}: missing, but {entry.name} lists video {name!r}")
            bundles[entry.name] = listed
    split_ids = sorted({int(_BUNDLE_RE.match(b).group(2)) for b in bundles})  # type: ignore[union-attr]
    if not bundles:
        raise DataError(f"{splits_dir}: no split files (expected train.split<k>.bundle, test.split<k>.bundle)")
    part_names: dict[str, list[str]] = {}
    for part in _PARTS:
        bundle = f"{part}.split{config.split}.bundle"
        if bundle not in bundles:
            have = ", ".join(map(str, split_ids))
            raise DataError(f"{splits_dir / bundle}: missing (splits here: {have})")
        part_names[part] = bundles[bundle]
    if config.videos is None:
        names = sorted(p.stem for p in gt_dir.glob("*.txt") if p.is_file())
        if not names:
            raise DataError(f"{gt_dir}: no label files")
        chosen = part_names
    else:
        chosen = {
            part: _select(part_names[part], config.videos, config.seed, "labels_from", config.split, part)
            for part in _PARTS
        }
        keep = set(chosen["train"]) | set(chosen["test"])
        names = sorted(keep)
    keep = set(names)
    world = FeatureWorld(mapping.names, config.dim, config.seed, _profile_fps(mapping.names), config.model)
    frames = 0
    written_splits: set[int] = set()
    with DatasetWriter(out, overwrite=overwrite) as w:
        w.copy_file(mapping_path, "mapping.txt")
        for done, name in enumerate(names, 1):
            gt = gt_dir / f"{name}.txt"
            label_names, labels = read_labels(gt, mapping)
            feats = world.features(labels, name, config.subsample)
            if config.subsample == 1:
                w.write_features(name, feats)
                w.copy_file(gt, f"groundTruth/{name}.txt")
            else:
                w.write_video(name, feats, label_names[:: config.subsample])
            frames += feats.shape[1]
            if on_video is not None:
                on_video(done, len(names))
        for bundle, listed in bundles.items():
            if config.videos is None:
                w.copy_file(splits_dir / bundle, f"splits/{bundle}")
            else:
                kept = [n for n in listed if n in keep]
                if not kept:
                    continue
                w.write_bundle(bundle, kept)
            written_splits.add(int(_BUNDLE_RE.match(bundle).group(2)))  # type: ignore[union-attr]
    return SynthSummary(
        out=out,
        source=str(root),
        videos=len(names),
        train=len(chosen["train"]),
        test=len(chosen["test"]),
        frames=frames,
        classes=len(mapping),
        dim=config.dim,
        splits=tuple(sorted(written_splits)),
        bytes=folder_bytes(out),
    )
