"""The content of a ``.tcd`` archive as Python objects: :class:`Archive` and :class:`VideoEntry`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tascond_cli.archive.constants import BASE_VERSION, SHARED_CODES_VERSION, VERSION_OF_KIND, VERSION_OF_WEIGHT
from tascond_cli.chunks import frame_code_index, offsets_from_counts
from tascond_cli.errors import TascondError

__all__ = ["Archive", "ArchiveError", "VideoEntry"]


class ArchiveError(TascondError):
    """An archive is malformed, or an :class:`Archive` breaks the format's rules."""


@dataclass(frozen=True)
class VideoEntry:
    """One video of an archive: its segments and the codes they own (views, not copies)."""

    name: str
    labels: np.ndarray
    """Class index of each segment, ``(S_v,)``."""
    lengths: np.ndarray
    """Frames of each segment, ``(S_v,)``."""
    code_counts: np.ndarray
    """Codes of each segment, ``(S_v,)`` (all 0 for code-less decoders)."""
    codes: np.ndarray
    """This video's codes, ``(N_v, d)``."""

    @property
    def frames(self) -> int:
        """Number of frames ``T``."""
        return int(self.lengths.sum())

    def frame_labels(self) -> np.ndarray:
        """Class index of every frame, ``(T,)``."""
        return np.repeat(self.labels, self.lengths)

    def frame_code_rows(self) -> np.ndarray:
        """For every frame, the row of its code in :attr:`codes` (the chunk rule)."""
        return frame_code_index(self.lengths, self.code_counts)


@dataclass(eq=False)
class Archive:
    """The content of a ``.tcd`` archive (docs/format.md, section 4, documents every rule).

    Equality (``==``) compares content; :attr:`written_by` is ignored.
    """

    settings: dict[str, Any]
    """JSON object: how the archive was made. Needs ``method`` (str) and ``dim`` (int, D). ``/settings``."""
    class_names: list[str]
    """Class names in index order (the mapping). ``/classes/names``."""
    video_names: list[str]
    """Kept videos (file stems). ``/videos/names``."""
    video_segments: np.ndarray
    """``(V+1,)`` int64 offsets: video v owns segments ``[o[v], o[v+1])``. ``/videos/segment_offsets``."""
    segment_labels: np.ndarray
    """``(S,)`` int32 class index of each segment. ``/segments/labels``."""
    segment_lengths: np.ndarray
    """``(S,)`` int64 frames of each segment (>= 1). ``/segments/lengths``."""
    segment_codes: np.ndarray
    """``(S+1,)`` int64 offsets: segment s owns rows ``[o[s], o[s+1])`` of codes. ``/segments/code_offsets``."""
    codes: np.ndarray
    """``(N, d)`` float16 or float32 codes. ``/codes``."""
    decoder_kind: str
    """A key of :data:`tascond_cli.archive.decoders.DECODERS`. ``/decoder/kind``."""
    decoder_config: dict[str, Any] = field(default_factory=dict)
    """JSON object: decoder hyperparameters. ``/decoder/config``."""
    decoder_weights: dict[str, np.ndarray] = field(default_factory=dict)
    """Named numeric arrays (float16/float32/integer). ``/decoder/weights/<name>``."""
    segment_sources: np.ndarray | None = None
    """``(S,)`` int64 or None (format 1.1, ``/segments/code_source``): -1 where a segment owns its codes,
    else the index of the segment whose codes it reuses (then it owns none). See :meth:`segment_code_rows`."""
    written_by: str = ""
    """Version of the tascond that wrote the file (filled by the reader; the writer records its own)."""

    # ---- sizes

    @property
    def num_videos(self) -> int:
        """``V``."""
        return len(self.video_names)

    @property
    def num_segments(self) -> int:
        """``S``."""
        return int(np.shape(self.segment_labels)[0])

    @property
    def num_classes(self) -> int:
        """``C``."""
        return len(self.class_names)

    @property
    def num_codes(self) -> int:
        """``N``, rows of :attr:`codes`."""
        return int(np.shape(self.codes)[0])

    @property
    def code_dim(self) -> int:
        """``d``, columns of :attr:`codes`."""
        return int(np.shape(self.codes)[1])

    @property
    def dim(self) -> int:
        """``D``, the dimension of restored frame features (``settings["dim"]``)."""
        return int(self.settings["dim"])

    @property
    def video_frames(self) -> np.ndarray:
        """``(V,)`` int64 frames of each video."""
        cum = offsets_from_counts(self.segment_lengths)
        vs = np.asarray(self.video_segments, dtype=np.int64)
        return cum[vs[1:]] - cum[vs[:-1]]

    @property
    def total_frames(self) -> int:
        """Frames of all videos together."""
        return int(np.sum(self.segment_lengths, dtype=np.int64))

    @property
    def segment_code_counts(self) -> np.ndarray:
        """``(S,)`` int64 codes each segment owns (stores); 0 for one that reuses another's."""
        return np.diff(np.asarray(self.segment_codes, dtype=np.int64))

    @property
    def version(self) -> tuple[int, int]:
        """The oldest format version that has what this content uses: 1.3 for ``lowrank`` DCT codes, 1.2
        for a ``lowrank`` decoder, 1.1 when segments share codes, else 1.0."""
        needs = [BASE_VERSION, VERSION_OF_KIND.get(self.decoder_kind, BASE_VERSION)]
        needs += [VERSION_OF_WEIGHT[name] for name in self.decoder_weights if name in VERSION_OF_WEIGHT]
        if self.segment_sources is not None:
            needs.append(SHARED_CODES_VERSION)
        return max(needs)

    def segment_code_rows(self, s: int) -> np.ndarray:
        """Rows of :attr:`codes` that segment ``s`` decodes with, in chunk order (int64).

        A segment that owns codes uses them. One that reuses segment ``r``'s ``n_r`` codes has
        ``n = min(n_r, L)`` chunks, and chunk ``i`` uses ``r``'s code ``floor(i * n_r / n)``.
        """
        off = self.segment_codes
        src = -1 if self.segment_sources is None else int(self.segment_sources[s])
        if src < 0:
            return np.arange(int(off[s]), int(off[s + 1]), dtype=np.int64)
        n_r = int(off[src + 1] - off[src])
        n = min(n_r, int(self.segment_lengths[s]))
        return int(off[src]) + (np.arange(n, dtype=np.int64) * n_r) // n

    # ---- per video

    def _video_index(self, i: int) -> int:
        v = self.num_videos
        if not -v <= i < v:
            raise IndexError(f"video {i} out of range ({v} videos)")
        return i % v

    def segments_of_video(self, i: int) -> slice:
        """The segments of video ``i``, as a slice into the segment arrays."""
        i = self._video_index(i)
        return slice(int(self.video_segments[i]), int(self.video_segments[i + 1]))

    def video(self, i: int) -> VideoEntry:
        """Video ``i``: name, segment labels and lengths, and its codes (reused ones resolved)."""
        i = self._video_index(i)
        segs = self.segments_of_video(i)
        first, last = int(self.segment_codes[segs.start]), int(self.segment_codes[segs.stop])
        if self.segment_sources is not None and (self.segment_sources[segs] >= 0).any():
            rows = [self.segment_code_rows(s) for s in range(segs.start, segs.stop)]  # >= 1 segment
            counts = np.array([len(r) for r in rows], dtype=np.int64)
            codes = self.codes[np.concatenate(rows)]
        else:
            counts = np.diff(self.segment_codes[segs.start : segs.stop + 1]).astype(np.int64)
            codes = self.codes[first:last]
        return VideoEntry(
            name=self.video_names[i],
            labels=self.segment_labels[segs],
            lengths=self.segment_lengths[segs],
            code_counts=counts,
            codes=codes,
        )

    def index_of(self, name: str) -> int:
        """Index of the video called ``name`` (``KeyError`` if absent)."""
        try:
            return self.video_names.index(name)
        except ValueError:
            raise KeyError(name) from None

    # ---- checks and comparison

    def validate(self) -> Archive:
        """Check every rule of the format; return a copy with canonical dtypes.

        Raises :class:`ArchiveError` naming the first broken rule.
        """
        from tascond_cli.archive.validate import validate_archive  # validate builds Archives: imported here

        return validate_archive(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Archive):
            return NotImplemented
        ints = ("video_segments", "segment_labels", "segment_lengths", "segment_codes")
        return (
            self.settings == other.settings
            and list(self.class_names) == list(other.class_names)
            and list(self.video_names) == list(other.video_names)
            and all(np.array_equal(getattr(self, f), getattr(other, f)) for f in ints)
            and _same_array(self.codes, other.codes)
            and (self.segment_sources is None) == (other.segment_sources is None)
            and (self.segment_sources is None or np.array_equal(self.segment_sources, other.segment_sources))
            and self.decoder_kind == other.decoder_kind
            and self.decoder_config == other.decoder_config
            and sorted(self.decoder_weights) == sorted(other.decoder_weights)
            and all(_same_array(w, other.decoder_weights[k]) for k, w in self.decoder_weights.items())
        )

    __hash__ = None  # type: ignore[assignment]


def _same_array(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)

