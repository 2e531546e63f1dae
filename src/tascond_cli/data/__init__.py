"""The MS-TCN dataset layout: read, validate and write.

The layout every temporal action segmentation codebase reads (Farha & Gall,
"MS-TCN", CVPR 2019, and its public data release)::

    <dataset>/features/<video>.npy          float array, shape (D, T), channels first
    <dataset>/groundTruth/<video>.txt       T lines, one action name per frame
    <dataset>/mapping.txt                   lines "<index> <action name>", index 0..C-1
    <dataset>/splits/train.split<k>.bundle  one "<video>.txt" per line (test.split<k>.bundle alike)

Features are opened lazily (memory-mapped), so a 28 GB dataset never has to fit
in memory. Opening a dataset checks everything that can be checked without
reading feature values: folders, files, bundle entries, labels against the
mapping, feature headers (2-D, numeric, not truncated, non-empty). Scanning the
values for NaN or infinity is a separate, explicit step
(:meth:`Dataset.check_values`). A length mismatch between a video's features and
its labels is not an error: MS-TCN uses the shorter length, and so do we, with a
warning recorded in :attr:`Dataset.warnings`.

Modules: :mod:`.model` (segments, mapping, videos, datasets), :mod:`.reader` (opening and checking a
folder, and its summary), :mod:`.writer` (:class:`DatasetWriter`) and :mod:`.files` (text, ``.npy`` and
bundle-name helpers).
"""

from tascond_cli.data.files import BUNDLE_RE, folder_bytes, read_npy_header
from tascond_cli.data.model import (
    PARTS,
    ClassMapping,
    Dataset,
    FeatureSequence,
    Segment,
    Video,
    feature_bytes,
    segments_of,
    transcript_of,
)
from tascond_cli.data.reader import (
    available_splits,
    describe,
    open_dataset,
    read_bundle,
    read_label_names,
    read_labels,
)
from tascond_cli.data.writer import DatasetWriter

__all__ = [
    "BUNDLE_RE",
    "PARTS",
    "ClassMapping",
    "Dataset",
    "DatasetWriter",
    "FeatureSequence",
    "Segment",
    "Video",
    "available_splits",
    "describe",
    "feature_bytes",
    "folder_bytes",
    "open_dataset",
    "read_bundle",
    "read_label_names",
    "read_labels",
    "read_npy_header",
    "segments_of",
    "transcript_of",
]
