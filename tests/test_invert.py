"""Network inversion and restoration: exact lengths, vectorised == per segment, determinism.

The chunk rule itself is tested against brute force in test_chunks.py."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from conftest import make_tiny_dataset
from tascond_cli.archive.decoders.network import decode_segments, decoder_state, load_decoder
from tascond_cli.chunks import chunk_bounds, chunk_position, codes_per_segment, frame_code_index, segment_position
from tascond_cli.condense.invert import InvertConfig, encode_segments, invert_segments
from tascond_cli.condense.prior import PriorConfig, train_prior
from tascond_cli.data import open_dataset

PRIOR = PriorConfig(latent=6, hidden=32, layers=2, embed=4, fourier=2, steps=200, batch=64, lr=3e-3)
FAST = InvertConfig(lr=0.05, max_iters=40, patience=5, chunk_frames=0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small models run fastest on one thread (and do not fight other jobs for the cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    ds = open_dataset(make_tiny_dataset(tmp_path_factory.mktemp("inv") / "tiny", n_train=3, n_test=1, dim=8))
    prior = train_prior(ds.train, ds.num_classes, PRIOR)
    segments, labels = [], []
    for v in ds.train:
        feats = v.features()  # memory-mapped: the inversion reads each batch when it gets there
        for s in v.segments():
            segments.append(feats[:, s.start : s.end])
            labels.append(s.label)
    # awkward lengths: shorter than K, not a multiple of K, a single frame
    feats = ds.train[0].features()
    for length in (3, 10, 1):
        segments.append(feats[:, :length])
        labels.append(int(ds.train[0].labels[0]))
    return prior, segments, np.array(labels)


# --------------------------------------------------------------------------- inversion


def test_inversion_improves_on_the_encoder_init(setup):
    prior, segments, labels = setup
    enc = encode_segments(prior, segments, labels, 8)
    inv = invert_segments(prior, segments, labels, 8, FAST)
    assert inv.counts.tolist() == codes_per_segment([s.shape[1] for s in segments], 8).tolist()
    assert inv.codes.shape == (inv.counts.sum(), PRIOR.latent) and inv.codes.dtype == np.float32
    assert np.array_equal(enc.counts, inv.counts)
    assert inv.error < 0.97 * enc.error


def test_encoder_init_is_the_chunk_mean_of_mu(setup):
    prior, segments, labels = setup
    enc = encode_segments(prior, segments[:1], labels[:1], 4)
    x = torch.from_numpy(np.asarray(segments[0], np.float32).T.copy())
    length = x.shape[0]
    c = torch.from_numpy(segment_position([length]).astype(np.float32))
    a = torch.full((length,), int(labels[0]))
    with torch.no_grad():
        u = torch.from_numpy(chunk_position([length], [4]).astype(np.float32))
        mu = prior.encoder(x, a, c, torch.full((length,), length), u)[0].numpy()
    b = chunk_bounds(length, 4)
    expected = np.stack([mu[lo:hi].mean(0) for lo, hi in zip(b[:-1], b[1:])])
    np.testing.assert_allclose(enc.codes, expected, rtol=1e-5, atol=1e-6)


def test_error_is_the_fraction_of_variance_unexplained(setup):
    prior, segments, labels = setup
    inv = invert_segments(prior, segments, labels, 8, FAST)
    lengths = np.array([s.shape[1] for s in segments])
    restored = decode_segments(prior.decoder, labels, lengths, inv.codes, inv.counts)
    x = np.concatenate([np.asarray(s, np.float64) for s in segments], axis=1)
    fvu = ((restored - x) ** 2).sum() / ((x - x.mean(1, keepdims=True)) ** 2).sum()
    assert inv.error == pytest.approx(fvu, rel=1e-4)


def test_vectorised_equals_one_segment_at_a_time(setup):
    prior, segments, labels = setup
    # a fixed number of iterations for every segment: results must agree up to float summation order
    fixed = InvertConfig(max_iters=25, patience=1000, chunk_frames=0)
    together = invert_segments(prior, segments, labels, 8, fixed)
    alone = invert_segments(prior, segments, labels, 8, dataclasses.replace(fixed, batch_frames=1))
    np.testing.assert_allclose(together.codes, alone.codes, atol=2e-4)
    assert together.error == pytest.approx(alone.error, rel=1e-4)
    # with per-segment stopping too
    batches: list[dict] = []
    a = invert_segments(prior, segments, labels, 8, FAST, on_batch=batches.append)
    b = invert_segments(prior, segments, labels, 8, dataclasses.replace(FAST, batch_frames=40))
    assert len(batches) == 1 and batches[0]["segments"] == len(segments)
    assert a.error == pytest.approx(b.error, rel=1e-3)


def test_batches_respect_the_frame_budget(setup):
    prior, segments, labels = setup
    seen: list[dict] = []
    invert_segments(prior, segments, labels, 8, dataclasses.replace(FAST, max_iters=2, batch_frames=60),
                    on_batch=seen.append)
    assert sum(b["segments"] for b in seen) == len(segments)
    longest = max(s.shape[1] for s in segments)
    assert all(b["frames"] <= max(60, longest) for b in seen)
    assert [b["batch"] for b in seen] == list(range(1, len(seen) + 1))


@pytest.mark.parametrize("chunk_frames", [0, 2])
def test_network_passes_take_at_most_a_block_of_frames(setup, monkeypatch, chunk_frames):
    """On the CPU the encoder, the fit and the error sums pass FRAME_BLOCK frames at a time whatever the
    batch (their temporaries are (block, D)); the cut changes the codes only in the last bits."""
    import tascond_cli.condense.invert as inv_mod

    prior, segments, labels = setup
    fixed = InvertConfig(max_iters=25, patience=1000, chunk_frames=chunk_frames)
    whole = invert_segments(prior, segments, labels, 8, fixed)
    rows: list[int] = []
    for net, name in ((prior.encoder, "forward"), (prior.decoder, "forward"), (prior.decoder, "preact")):
        original = getattr(net, name)
        monkeypatch.setattr(net, name, lambda *a, _f=original, **k: rows.append(a[0].shape[0]) or _f(*a, **k))
    monkeypatch.setattr(inv_mod, "FRAME_BLOCK", 7)
    blocked = invert_segments(prior, segments, labels, 8, fixed)
    assert sum(s.shape[1] for s in segments) > 7 and rows and max(rows) <= 7
    np.testing.assert_allclose(blocked.codes, whole.codes, atol=2e-4)
    assert blocked.error == pytest.approx(whole.error, rel=1e-4)


@pytest.mark.parametrize("chunk_frames", [0, 2])
def test_inversion_is_deterministic(setup, chunk_frames):
    prior, segments, labels = setup
    cfg = dataclasses.replace(FAST, chunk_frames=chunk_frames)
    a = invert_segments(prior, segments, labels, 8, cfg)
    b = invert_segments(prior, segments, labels, 8, cfg)
    assert np.array_equal(a.codes, b.codes) and a.error == b.error


def test_subsampled_frames_still_improve(setup):
    prior, segments, labels = setup
    enc = encode_segments(prior, segments, labels, 2)
    inv = invert_segments(prior, segments, labels, 2, dataclasses.replace(FAST, chunk_frames=3))
    assert inv.error < enc.error


def test_decoder_stays_frozen_and_untouched(setup):
    prior, segments, labels = setup
    before = decoder_state(prior)[1]
    flags = [p.requires_grad for p in prior.decoder.parameters()]
    invert_segments(prior, segments, labels, 4, dataclasses.replace(FAST, max_iters=5))
    after = decoder_state(prior)[1]
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert [p.requires_grad for p in prior.decoder.parameters()] == flags


def test_bare_decoder_with_given_init(setup):
    prior, segments, labels = setup
    dec = load_decoder(*decoder_state(prior))
    enc = encode_segments(prior, segments, labels, 8)
    from_init = invert_segments(dec, segments, labels, 8, FAST, init=enc.codes)
    from_prior = invert_segments(prior, segments, labels, 8, FAST)
    np.testing.assert_allclose(from_init.codes, from_prior.codes, atol=1e-5)
    zeros = invert_segments(dec, segments, labels, 8, dataclasses.replace(FAST, max_iters=0))
    assert not zeros.codes.any()
    with pytest.raises(ValueError, match="init codes must have shape"):
        invert_segments(dec, segments, labels, 8, FAST, init=enc.codes[1:])


def test_bad_inputs_are_refused(setup):
    prior, segments, labels = setup
    with pytest.raises(ValueError, match="features must be"):
        invert_segments(prior, [np.zeros((5, 4), np.float32)], [0], 8)
    with pytest.raises(ValueError, match="features must be"):
        invert_segments(prior, [np.zeros((8, 0), np.float32)], [0], 8)
    with pytest.raises(ValueError, match="labels must be in"):
        invert_segments(prior, segments[:1], [99], 8)
    with pytest.raises(ValueError, match="one integer class per segment"):
        invert_segments(prior, segments[:2], [0], 8)
    with pytest.raises(ValueError, match="codes per segment"):
        invert_segments(prior, segments[:1], labels[:1], 0)
    with pytest.raises(ValueError, match="lr must be"):
        invert_segments(prior, segments[:1], labels[:1], 8, InvertConfig(lr=float("nan")))


# --------------------------------------------------------------------------- restoration


def test_decode_exact_length_and_per_frame_rule(setup):
    prior, _, _ = setup
    lengths = np.array([3, 10, 1, 17])
    labels = np.array([0, 1, 2, 3])
    counts = codes_per_segment(lengths, 8)
    codes = np.random.default_rng(0).normal(size=(counts.sum(), PRIOR.latent)).astype(np.float32)
    out = decode_segments(prior.decoder, labels, lengths, codes, counts, batch_frames=7)
    assert out.shape == (8, lengths.sum()) and out.dtype == np.float32
    assert (out >= 0).all()
    rows = frame_code_index(lengths, counts)
    seg = np.repeat(np.arange(4), lengths)
    with torch.no_grad():
        ref = prior.decoder(torch.from_numpy(codes[rows]), torch.from_numpy(labels[seg]),
                            torch.from_numpy(segment_position(lengths).astype(np.float32)),
                            torch.from_numpy(lengths[seg]),
                            torch.from_numpy(chunk_position(lengths, counts).astype(np.float32))).numpy().T
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    # decoding in one block or many gives the same frames
    np.testing.assert_allclose(decode_segments(prior.decoder, labels, lengths, codes, counts), out, atol=1e-6)


def test_decode_refuses_inconsistent_layout(setup):
    prior, _, _ = setup
    codes = np.zeros((4, PRIOR.latent), np.float32)
    with pytest.raises(ValueError, match="codes must have shape"):
        decode_segments(prior.decoder, [0, 1], [3, 10], codes, [2, 3])
    with pytest.raises(ValueError, match="between 1 and its length"):
        decode_segments(prior.decoder, [0, 1], [3, 10], codes, [4, 0])
    with pytest.raises(ValueError, match="labels must be in"):
        decode_segments(prior.decoder, [0, 9], [3, 10], codes, [1, 3])
    assert decode_segments(prior.decoder, [], np.zeros(0, np.int64), np.zeros((0, PRIOR.latent)),
                           np.zeros(0, np.int64)).shape == (8, 0)
