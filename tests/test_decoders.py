"""The decoder-kind registry (tascond_cli.archive.decoders): every kind has a spec check and a decode."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tascond_cli.archive import Archive, ArchiveError, archive_bytes, offsets_from_counts, read_archive, validate_archive
from tascond_cli.archive.decoders import DECODERS, BoundDecoder, DecoderKind, get_decoder_kind
from tascond_cli.archive.decoders.generator import RESIDUAL_RHO, RESIDUAL_STD
from tascond_cli.archive.decoders.network import Decoder, decode_segments, decoder_state
from tascond_cli.archive.decoders.random import IPS, SEED
from tascond_cli.chunks import codes_per_segment
from tascond_cli.restore import ArchiveDecoder

from test_archive import make_archive

GOLDEN = Path(__file__).parent / "data" / "golden-v1.tcd"
DIM, LATENT, CLASSES = 6, 3, 4


def network_archive(kind: str, residual: bool = False) -> Archive:
    """A decodable ``generator`` or ``random`` archive: a real (untrained) network of 6-d features."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = Decoder(DIM, CLASSES, LATENT, hidden=8, layers=1, embed=2, fourier=1, length_input=False,
                      chunk_input=True, output="relu", activation="silu")
    config, weights = decoder_state(net)
    if residual:
        weights[RESIDUAL_STD] = np.full(DIM, 0.5, np.float32)
        config[RESIDUAL_RHO] = 0.3
    base = make_archive("identity", dim=DIM)
    counts = codes_per_segment(base.segment_lengths, 3) if kind == "generator" else np.zeros(base.num_segments, np.int64)
    codes = np.random.default_rng(1).standard_normal((int(counts.sum()), LATENT)).astype(np.float32)
    return dataclasses.replace(
        base, settings={**base.settings, "method": kind}, segment_codes=offsets_from_counts(counts), codes=codes,
        decoder_kind=kind, decoder_config=config, decoder_weights=weights,
    )


def archive_of(kind: str) -> Archive:
    return network_archive(kind) if kind in ("generator", "random") else make_archive(kind, dim=DIM)


# --------------------------------------------------------------------------- the registry


def test_every_kind_is_registered_with_its_check_and_decode() -> None:
    assert list(DECODERS) == ["generator", "identity", "linear", "zeros", "random", "lowrank"]
    for name, kind in DECODERS.items():
        assert isinstance(kind, DecoderKind) and kind.name == name
        assert isinstance(kind.stores_codes, bool) and isinstance(kind.takes_weights, bool)
        assert callable(kind.check) and type(kind).bind is not DecoderKind.bind, name
        assert get_decoder_kind(name) is kind
    assert [k for k, v in DECODERS.items() if not v.stores_codes] == ["zeros", "random"]
    assert [k for k, v in DECODERS.items() if v.takes_weights] == ["generator", "linear", "random", "lowrank"]
    assert {k: v.code_dtypes for k, v in DECODERS.items() if v.code_dtypes != ("float16", "float32")} == {
        "lowrank": ("float16", "float32", "int8")}
    with pytest.raises(TypeError):
        DECODERS["mine"] = DECODERS["zeros"]  # type: ignore[index]


@pytest.mark.parametrize("name", [None, 3, "", "hologram", "Generator"])
def test_unknown_kind_is_refused(name) -> None:
    with pytest.raises(ArchiveError, match="^/decoder/kind: unknown decoder kind .*this tascond knows generator, "):
        get_decoder_kind(name)
    archive = make_archive("zeros")
    archive.decoder_kind = name
    with pytest.raises(ArchiveError, match="/decoder/kind: unknown decoder kind"):
        validate_archive(archive)


@pytest.mark.parametrize("kind", list(DECODERS))
def test_every_kind_checks_and_decodes(kind: str) -> None:
    archive = validate_archive(archive_of(kind))
    assert DECODERS[kind].check(archive) is None
    bound = DECODERS[kind].bind(archive, "cpu", batch_frames=5)
    assert isinstance(bound, BoundDecoder)
    via_restore = ArchiveDecoder(archive, batch_frames=5)
    for i in range(archive.num_videos):
        x = bound.features(i)
        frames = int(archive.video_frames[i])
        assert x.shape == (DIM, frames) and x.dtype == np.float32 and x.flags.c_contiguous
        assert np.array_equal(via_restore.features(i), x)


def test_code_kinds_decode_by_the_chunk_rule() -> None:
    """Identity and linear, checked frame by frame against the codes (written from format.md §5-6)."""
    for kind in ("identity", "linear"):
        archive = validate_archive(make_archive(kind, dim=DIM))
        bound = get_decoder_kind(kind).bind(archive)
        for i in range(archive.num_videos):
            entry = archive.video(i)
            x, t = bound.features(i), 0
            for length, n, first in zip(entry.lengths, entry.code_counts, np.concatenate(([0], np.cumsum(entry.code_counts)))):
                for f in range(length):
                    code = entry.codes[first + ((f + 1) * n - 1) // length].astype(np.float32)
                    if kind == "linear":
                        w = archive.decoder_weights
                        code = code @ w["components"].astype(np.float32) + w["mean"].astype(np.float32)
                    np.testing.assert_allclose(x[:, t], code, rtol=1e-6, atol=1e-6)
                    t += 1
    zeros = validate_archive(make_archive("zeros"))
    assert not get_decoder_kind("zeros").bind(zeros).features(2).any()


def test_generator_decodes_stored_codes_and_random_decodes_seeded_codes() -> None:
    gen = validate_archive(network_archive("generator"))
    bound = get_decoder_kind("generator").bind(gen)
    entry = gen.video(2)
    expected = decode_segments(bound.net, entry.labels, entry.lengths, entry.codes, entry.code_counts)
    assert np.array_equal(bound.features(2), expected)

    rnd = validate_archive(network_archive("random"))
    bound = get_decoder_kind("random").bind(rnd)
    entry = rnd.video(2)
    counts = codes_per_segment(entry.lengths, rnd.settings[IPS])
    codes = np.random.default_rng([rnd.settings[SEED], 2]).standard_normal((int(counts.sum()), LATENT))
    expected = decode_segments(bound.net, entry.labels, entry.lengths, codes.astype(np.float32), counts)
    assert np.array_equal(bound.features(2), expected)
    assert np.array_equal(bound.features(2), get_decoder_kind("random").bind(rnd).features(2))


def test_residual_model_is_part_of_the_generator_kind() -> None:
    assert (RESIDUAL_STD, RESIDUAL_RHO) == ("residual.std", "residual_rho")
    plain = validate_archive(network_archive("generator"))
    noisy = read_archive(archive_bytes(network_archive("generator", residual=True)))
    bound = get_decoder_kind("generator").bind(noisy)
    std, rho = bound.residual
    assert std.shape == (DIM,) and rho == pytest.approx(0.3)
    assert get_decoder_kind("generator").bind(plain).residual is None
    x, y = bound.features(0), get_decoder_kind("generator").bind(plain).features(0)
    assert x.shape == y.shape and not np.array_equal(x, y) and x.min() >= 0
    assert np.array_equal(x, get_decoder_kind("generator").bind(noisy).features(0))


def test_kind_rules_at_bind_time() -> None:
    rnd = network_archive("random")
    rnd.settings = {**rnd.settings, IPS: "frame"}
    with pytest.raises(ArchiveError, match="random decoder needs an integer ips"):
        get_decoder_kind("random").bind(validate_archive(rnd))
    gen = network_archive("generator")
    gen.settings = {**gen.settings, "dim": DIM + 1}
    gen.codes = np.zeros((gen.num_codes, DIM + 1), np.float32)
    with pytest.raises(ArchiveError, match="decodes 6-d features but settings say dim 7"):
        get_decoder_kind("generator").bind(validate_archive(gen))


def test_reading_an_archive_does_not_import_torch() -> None:
    code = (
        "import sys; from tascond_cli.archive import read_archive, storage_breakdown; "
        f"a = read_archive({str(GOLDEN)!r}); storage_breakdown(a); "
        "assert 'torch' not in sys.modules, 'torch imported'; print(a.decoder_kind)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
