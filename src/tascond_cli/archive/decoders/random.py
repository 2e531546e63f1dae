"""The ``random`` decoder (the TCA baseline): the generator network fed codes drawn from a seed.

No codes are stored. Video ``v`` decodes with ``n = sum(min(ips, L))`` codes over its segments, in
segment order, drawn as ``numpy.random.default_rng([seed, v]).standard_normal((n, latent))`` (float64,
then rounded to float32); ``seed`` and ``ips`` are the settings :data:`SEED` and :data:`IPS`. Everything
else, the residual model included, is as for ``generator`` (:mod:`.generator`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tascond_cli.archive.constants import MAX_SEGMENT_FRAMES, P_SETTINGS
from tascond_cli.archive.decoders.base import BoundDecoder
from tascond_cli.archive.decoders.generator import BoundGenerator, GeneratorKind
from tascond_cli.archive.model import Archive, ArchiveError, VideoEntry
from tascond_cli.chunks import codes_per_segment

__all__ = ["IPS", "RANDOM", "SEED", "RandomKind"]

SEED = "seed"
"""The setting that seeds the codes: an integer (checked when the archive is read)."""
IPS = "ips"
"""The setting that gives the codes per segment, ``min(ips, L)``: an integer from 1 to the longest segment
the format allows (checked when bound)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class RandomKind(GeneratorKind):
    name = "random"
    stores_codes = False
    takes_weights = True

    def check(self, archive: Archive) -> str | None:
        seed = archive.settings.get(SEED)
        if not _is_int(seed):
            return f"{P_SETTINGS}: random decoder needs an integer 'seed' setting, not {seed!r}"
        return super().check(archive)

    def _check_network(self, archive: Archive, net: Any) -> None:
        ips = archive.settings.get(IPS)
        if not _is_int(ips) or not 1 <= ips <= MAX_SEGMENT_FRAMES:
            raise ArchiveError(f"/settings: a random decoder needs an integer ips from 1 to {MAX_SEGMENT_FRAMES}, "
                               f"got {ips!r}")
        if archive.settings[SEED] < 0:  # an integer: checked on read
            raise ArchiveError(f"/settings: a random decoder needs a seed >= 0, got {archive.settings[SEED]!r}")

    def _bound(self, archive: Archive, net: Any, residual: Any, batch_frames: int) -> BoundDecoder:
        return _BoundRandom(archive, net, residual, batch_frames)


class _BoundRandom(BoundGenerator):
    def codes(self, index: int, entry: VideoEntry) -> tuple[np.ndarray, np.ndarray]:
        settings = self.archive.settings
        counts = codes_per_segment(entry.lengths.astype(np.int64), int(settings[IPS]))
        rng = np.random.default_rng([int(settings[SEED]), index])
        return rng.standard_normal((int(counts.sum()), self.net.latent)).astype(np.float32), counts


RANDOM = RandomKind()
