"""The condensation engine: generative prior, network inversion and diverse sequence sampling.

- :mod:`.prior`: the conditional VAE over frames; its decoder exports to plain arrays.
- :mod:`.invert`: fit latent codes to segments with the decoder frozen; restore segments from codes.
- :mod:`.sampling`: transcript distances and furthest-point sampling of videos.

These modules never print; progress goes through callbacks. The condensation methods built on this
engine (``tascond`` and the generator baselines) live in :mod:`tascond_cli.methods`.
"""

from tascond_cli.condense.invert import (
    InvertConfig,
    Inversion,
    chunk_bounds,
    chunk_position,
    codes_per_segment,
    decode_segments,
    encode_segments,
    frame_code_index,
    invert_segments,
    segment_position,
)
from tascond_cli.condense.prior import (
    Decoder,
    Prior,
    PriorConfig,
    decoder_state,
    encode,
    load_decoder,
    train_prior,
)
from tascond_cli.condense.sampling import (
    distance_matrix,
    furthest_point_sampling,
    random_sampling,
    sample_size,
    transcript_distance,
)

__all__ = [
    "Decoder",
    "InvertConfig",
    "Inversion",
    "Prior",
    "PriorConfig",
    "chunk_bounds",
    "chunk_position",
    "codes_per_segment",
    "decode_segments",
    "decoder_state",
    "distance_matrix",
    "encode",
    "encode_segments",
    "frame_code_index",
    "furthest_point_sampling",
    "invert_segments",
    "load_decoder",
    "random_sampling",
    "sample_size",
    "segment_position",
    "train_prior",
    "transcript_distance",
]
