"""Synthetic temporal action segmentation datasets in the MS-TCN layout.

:func:`synthesize` writes a dataset folder (``features/``, ``groundTruth/``, ``mapping.txt``,
``splits/``) that every TAS codebase reads. Labels either come from a built-in *profile* that imitates
Breakfast, 50Salads or GTEA, or are taken unchanged from a real dataset (``labels_from``); the features
are always synthetic. docs/synth.md documents the feature model and its calibration.

Every video's labels are drawn from a random generator seeded by (seed, recording), its features from
one seeded by (seed, video name), both through a stable hash: a video is the same whichever other videos
are chosen, and the same seed gives the same bytes.

Modules, from data to writers:

- :mod:`~tascond_cli.synth.profiles`: the profiles as data (vocabularies, activities, grammars,
  durations, recordings, splits);
- :mod:`~tascond_cli.synth.grammar`: the grammar language, its parser and expander;
- :mod:`~tascond_cli.synth.seeding`: the stable, per-purpose random generators;
- :mod:`~tascond_cli.synth.labels`: a profile's recordings and each one's frame labels;
- :mod:`~tascond_cli.synth.signals`: smoothing along time and other helpers of the feature model;
- :mod:`~tascond_cli.synth.mechanisms`: optional extra mechanisms of the feature model
  (:class:`HardMechanisms`, all off by default);
- :mod:`~tascond_cli.synth.features`: the feature model (:class:`FeatureModel`, :class:`FeatureWorld`);
- :mod:`~tascond_cli.synth.config`: :class:`SynthConfig` and :class:`SynthSummary`;
- :mod:`~tascond_cli.synth.writers`: :func:`synthesize` (from a profile or from ``labels_from``).
"""

from __future__ import annotations

from tascond_cli.synth.config import SynthConfig, SynthSummary
from tascond_cli.synth.features import FEATURE_MODELS, FeatureModel, FeatureWorld, feature_model
from tascond_cli.synth.labels import profile_labels
from tascond_cli.synth.mechanisms import HardMechanisms
from tascond_cli.synth.profiles import BACKGROUND_NAMES, PROFILES
from tascond_cli.synth.writers import ProgressCallback, synthesize

__all__ = [
    "FEATURE_MODELS",
    "BACKGROUND_NAMES",
    "PROFILES",
    "FeatureModel",
    "FeatureWorld",
    "feature_model",
    "HardMechanisms",
    "ProgressCallback",
    "SynthConfig",
    "SynthSummary",
    "profile_labels",
    "synthesize",
]
