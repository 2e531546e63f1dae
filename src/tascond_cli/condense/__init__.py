"""The condensation engine: generative prior, network inversion and diverse sequence sampling.

- :mod:`.prior`: the conditional VAE over frames (its decoder network is the archive format's,
  :mod:`tascond_cli.archive.decoders.network`, which also restores segments from codes).
- :mod:`.invert`: fit latent codes to segments with the decoder frozen.
- :mod:`.sampling`: transcript distances and furthest-point sampling of videos.

The chunk rule they share is :mod:`tascond_cli.chunks`. These modules never print; progress goes through callbacks. The condensation methods built on this
engine (``tascond`` and the generator baselines) live in :mod:`tascond_cli.methods`.
"""

from tascond_cli.archive.decoders.network import Decoder, decode_segments, decoder_state, load_decoder
from tascond_cli.condense.invert import InvertConfig, Inversion, encode_segments, invert_segments
from tascond_cli.condense.prior import Prior, PriorConfig, encode, train_prior
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
    "decode_segments",
    "decoder_state",
    "distance_matrix",
    "encode",
    "encode_segments",
    "furthest_point_sampling",
    "invert_segments",
    "load_decoder",
    "random_sampling",
    "sample_size",
    "train_prior",
    "transcript_distance",
]
