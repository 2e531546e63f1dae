"""The label profiles as data: vocabularies, activities, action grammars, durations, recordings.

Each profile hard-codes the real dataset's class vocabulary (the real action names, in the real
``mapping.txt`` order), its activities, a loose grammar per activity (a mostly fixed order of steps with
optional, repeated, shuffled or alternative steps, plus rare swaps of neighbours; the grammar language is
described in :mod:`tascond_cli.synth.grammar`), a median duration per action, its frame rate, its
background labels, its video names and its splits by subject groups (see docs/synth.md):

- ``breakfast``: 48 classes, 10 activities, 15 fps, ``SIL`` at both ends, ~6 segments, median ~1,400
  frames; 52 subjects P03..P54 filmed by 2-4 of 5 cameras (the views of one recording share their
  labels), ~1,700 videos; 4 splits, split k tests subjects P03..P15, P16..P28, P29..P41, P42..P54.
- ``50salads``: 19 classes incl. ``action_start``/``action_end``, 30 fps, ~19 segments, ~11,800 frames;
  25 subjects x 2 videos ``rgb-XX-Y``; 5 splits of 5 test subjects.
- ``gtea``: 11 classes incl. ``background``, 15 fps, ~34 short segments, ~1,100 frames; 4 subjects x 7
  activities ``S<k>_<Activity>_C1``; 4 leave-one-subject-out splits.

Nothing here draws random numbers; :mod:`tascond_cli.synth.labels` turns these tables into recordings
and frame labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Labels that are not actions: no verb/object identity, never swapped, no related-action borrowing.
BACKGROUND_NAMES = frozenset({"SIL", "background", "action_start", "action_end"})
# Frame rate for a vocabulary that matches no profile (labels taken from another dataset).
DEFAULT_FPS = 15.0


@dataclass(frozen=True)
class Profile:
    """The label statistics of one real dataset."""

    name: str
    fps: float
    classes: tuple[str, ...]  # the real mapping.txt, in order
    grammars: dict[str, str]  # activity -> grammar of its steps (in the real dataset's activity order)
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


# --------------------------------------------------------------------------- Breakfast

BREAKFAST = Profile(
    name="breakfast",
    fps=15.0,
    classes=tuple(
        "SIL pour_cereals pour_milk stir_cereals take_bowl pour_coffee take_cup spoon_sugar stir_coffee "
        "pour_sugar pour_oil crack_egg add_saltnpepper fry_egg take_plate put_egg2plate take_eggs butter_pan "
        "take_knife cut_orange squeeze_orange pour_juice take_glass take_squeezer spoon_powder stir_milk "
        "spoon_flour stir_dough pour_dough2pan fry_pancake put_pancake2plate pour_flour cut_fruit "
        "put_fruit2bowl peel_fruit stir_fruit cut_bun smear_butter take_topping put_toppingOnTop "
        "put_bunTogether take_butter stir_egg pour_egg2pan stirfry_egg add_teabag pour_water stir_tea".split()
    ),
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
BREAKFAST_SUBJECTS = range(3, 55)  # P03..P54; split k tests 13 subjects: (pid - 3) // 13 + 1
BREAKFAST_CAMERAS = ("cam01", "cam02", "stereo01", "webcam01", "webcam02")
BREAKFAST_CAMERA_COUNTS = ((2, 0.15), (3, 0.45), (4, 0.4))  # (cameras per subject, probability)
BREAKFAST_MISSING = 0.03  # share of (subject, activity) recordings that do not exist, as in the real data
BREAKFAST_GROUP_SIZE = 13

# --------------------------------------------------------------------------- 50Salads

_SALADS_VEG = (
    "{(cut_tomato place_tomato_into_bowl)+0.3 (cut_cheese place_cheese_into_bowl)+0.1 "
    "(cut_lettuce place_lettuce_into_bowl)+0.25 (peel_cucumber cut_cucumber place_cucumber_into_bowl)+0.1}"
)
_SALADS_DRESS = "{add_salt add_pepper (add_vinegar add_oil)} mix_dressing"

SALADS = Profile(
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
SALADS_SUBJECTS = tuple(s for s in range(1, 28) if s not in (8, 12))  # 25 subjects; split k tests 5 of them
SALADS_TAKES = (1, 2)
SALADS_GROUP_SIZE = 5

# --------------------------------------------------------------------------- GTEA

GTEA = Profile(
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
GTEA_SUBJECTS = range(1, 5)  # S1..S4, leave-one-subject-out: split k tests subject k

# --------------------------------------------------------------------------- all of them

PROFILE_TABLES: dict[str, Profile] = {p.name: p for p in (BREAKFAST, SALADS, GTEA)}
PROFILES = tuple(PROFILE_TABLES)  # ("breakfast", "50salads", "gtea")


def vocabulary_fps(classes: Sequence[str]) -> float:
    """The frame rate of the profile with exactly this vocabulary (in any order), else :data:`DEFAULT_FPS`."""
    for prof in PROFILE_TABLES.values():
        if set(prof.classes) == set(classes):
            return prof.fps
    return DEFAULT_FPS
