"""Stable randomness: every random draw of the synthesizer comes from a generator named by its purpose.

A generator is seeded by the user's seed and a BLAKE2b hash of a few names (``"video"``, the video name;
``"class"``, an action name; ...), never by Python's ``hash`` (which changes with ``PYTHONHASHSEED``) and
never by the global numpy state. So a video's labels and features do not depend on which other videos
are written, and the same seed gives the same bytes.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stable_rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator seeded by ``seed`` and a stable hash of ``parts`` (independent of PYTHONHASHSEED)."""
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    digest = hashlib.blake2b(text, digest_size=16).digest()
    words = np.frombuffer(digest, dtype="<u4").tolist()
    return np.random.default_rng([int(seed), *words])
