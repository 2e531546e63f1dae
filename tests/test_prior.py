"""The generative prior: training, determinism, bounded frame pool, decoder export and strict import."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tascond_cli.archive.decoders.network import Decoder, decoder_state, load_decoder, position_features
from tascond_cli.condense.prior import _FramePool, PriorConfig, encode, segment_frames, train_prior
from tascond_cli.data import open_dataset
from tascond_cli.synth import SynthConfig, synthesize

from conftest import make_tiny_dataset

# ips=0 (single frames): the tiny dataset is i.i.d. noise, only frame by frame can it be fitted
SMALL = PriorConfig(latent=8, hidden=32, layers=2, embed=4, fourier=2, steps=150, batch=64, lr=3e-3, ips=0,
                    chunk_input=False)

@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small models run fastest on one thread (and do not fight other jobs for the cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)



@pytest.fixture(scope="module")
def tiny_ds(tmp_path_factory):
    root = make_tiny_dataset(tmp_path_factory.mktemp("prior") / "tiny", n_train=4, n_test=1, dim=8)
    return open_dataset(root)


@pytest.fixture(scope="module")
def trained(tiny_ds):
    losses: list[float] = []
    prior = train_prior(tiny_ds.train, tiny_ds.num_classes, SMALL, on_step=lambda s, d: losses.append(d["recon"]))
    return prior, losses


def test_loss_decreases_frame_vae(trained):
    prior, losses = trained  # ips=0: the paper's single-frame VAE
    assert len(losses) == SMALL.steps
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:20])
    assert not prior.training


def test_loss_decreases_chunk_training(tmp_path):
    """Chunk training on structured (synthetic) features: the chunk code explains most of the variance."""
    root = tmp_path / "gtea"
    synthesize(root, SynthConfig(profile="gtea", videos=3, dim=16, subsample=2, seed=0))
    ds = open_dataset(root)
    losses: list[float] = []
    cfg = dataclasses.replace(SMALL, ips=4, chunk_input=True, chunk_frames=4, steps=200)
    train_prior(ds.train, ds.num_classes, cfg, on_step=lambda s, d: losses.append(d["recon"]))
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])


def test_same_seed_same_weights_other_seed_differs(tiny_ds, trained):
    prior, _ = trained
    cfg = dataclasses.replace(SMALL, steps=30)
    a = decoder_state(train_prior(tiny_ds.train, tiny_ds.num_classes, cfg))[1]
    b = decoder_state(train_prior(tiny_ds.train, tiny_ds.num_classes, cfg))[1]
    c = decoder_state(train_prior(tiny_ds.train, tiny_ds.num_classes, dataclasses.replace(cfg, seed=1)))[1]
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_training_leaves_global_rng_alone(tiny_ds):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_prior(tiny_ds.train, tiny_ds.num_classes, dataclasses.replace(SMALL, steps=2))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("ips", [0, 4])
def test_streaming_pool_when_data_does_not_fit(tiny_ds, ips):
    """A pool smaller than the dataset streams windows; training still works and stays deterministic."""
    frames = sum(v.num_frames for v in tiny_ds.train)
    cfg = dataclasses.replace(SMALL, steps=60, pool_mb=64 * 8 * 4 / 2**20, refresh=16, batch=32, ips=ips,
                              chunk_input=ips > 0, chunk_frames=4)
    assert 64 < frames
    losses: list[float] = []
    p1 = train_prior(tiny_ds.train, tiny_ds.num_classes, cfg, on_step=lambda s, d: losses.append(d["loss"]))
    p2 = train_prior(tiny_ds.train, tiny_ds.num_classes, cfg)
    assert np.isfinite(losses).all()
    w1, w2 = decoder_state(p1)[1], decoder_state(p2)[1]
    assert all(np.array_equal(w1[k], w2[k]) for k in w1)


@pytest.mark.parametrize("capacity", [10**6, 64])
def test_pool_chunks_follow_the_chunk_rule(tiny_ds, capacity):
    """Sampled chunk frames lie in one chunk of one segment (clipped to the loaded window) with the right u."""
    rng = np.random.default_rng(0)
    pool = _FramePool(tiny_ds.train, 8, capacity, 16, rng)
    for _ in range(5):
        idx, u = pool.sample(50, 6, 4)
        j = idx[:, :1]
        same_run = (pool.run_lo[idx] == pool.run_lo[j]) & (idx >= pool.run_lo[j]) & (idx < pool.run_hi[j])
        assert same_run.all()
        t, length = pool.t[idx], pool.length[idx]
        n = np.minimum(4, length)
        chunk = ((t + 1) * n - 1) // length
        assert (chunk == chunk[:, :1]).all()
        lo, hi = chunk * length // n, (chunk + 1) * length // n
        np.testing.assert_allclose(u, (t - lo + 0.5) / (hi - lo))
        pool.step()
    assert pool.static == (capacity > 200)


def test_normalisation_buffers_come_from_the_data(tiny_ds, trained):
    prior, _ = trained
    x = np.concatenate([np.asarray(v.features(), np.float64) for v in tiny_ds.train], axis=1)
    np.testing.assert_allclose(prior.decoder.mean.numpy(), x.mean(1), rtol=1e-5)
    np.testing.assert_allclose(prior.decoder.std.numpy(), x.std(1), rtol=1e-5)


def test_decoder_output_is_non_negative(trained):
    prior, _ = trained
    z = torch.randn(50, SMALL.latent) * 5
    y = prior.decoder(z, torch.randint(0, 4, (50,)), torch.rand(50), None, torch.rand(50))
    assert (y >= 0).all()


def test_segment_frames_and_position_features():
    t, length = segment_frames(np.array([3, 3, 3, 1, 2, 2]))
    assert t.tolist() == [0, 1, 2, 0, 0, 1]
    assert length.tolist() == [3, 3, 3, 1, 2, 2]
    feats = position_features(torch.tensor([0.25]), 2, torch.tensor([8]))
    np.testing.assert_allclose(
        feats.numpy()[0],
        [0.25, np.sin(np.pi / 4), np.sin(np.pi / 2), np.cos(np.pi / 4), np.cos(np.pi / 2), np.log(8) / 8],
        atol=1e-6,
    )


def test_encode_returns_mean(trained, tiny_ds):
    prior, _ = trained
    v = tiny_ds.train[0]
    x = np.asarray(v.features()).T
    t, length = segment_frames(v.labels)
    c = (t + 0.5) / length
    mu = encode(prior, x, v.labels, c)
    assert mu.shape == (v.num_frames, SMALL.latent)
    assert torch.equal(mu, encode(prior, x, v.labels, c))  # no sampling


def test_decoder_state_round_trip(trained):
    prior, _ = trained
    config, weights = decoder_state(prior)
    assert config["arch"] == "tascond-mlp-v1" and config["latent"] == SMALL.latent
    assert all(isinstance(w, np.ndarray) and w.dtype == np.float32 for w in weights.values())
    import json

    config = json.loads(json.dumps(config))  # survives JSON
    dec = load_decoder(config, weights)
    z, a, c, u = torch.randn(20, SMALL.latent), torch.randint(0, 4, (20,)), torch.rand(20), torch.rand(20)
    with torch.no_grad():
        assert torch.equal(dec(z, a, c, None, u), prior.decoder(z, a, c, None, u))
    half = load_decoder(config, {k: w.astype(np.float16) for k, w in weights.items()})
    with torch.no_grad():
        torch.testing.assert_close(half(z, a, c, None, u), prior.decoder(z, a, c, None, u), atol=0.05, rtol=0.05)


def test_load_decoder_leaves_global_rng_alone(trained):
    config, weights = decoder_state(trained[0])
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    load_decoder(config, weights)
    assert torch.equal(torch.rand(2), expected)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c, w: c.update(latent=9), r"net.0.weight has shape \(32, 17\), expected \(32, 18\)"),
        (lambda c, w: c.update(chunk_input=True), r"net.0.weight has shape \(32, 17\), expected \(32, 20\)"),
        (lambda c, w: c.update(hidden=True), "hidden must be an integer"),
        (lambda c, w: c.update(layers=0), "layers must be an integer in"),
        (lambda c, w: c.update(dim=10**9), "dim must be an integer in"),
        (lambda c, w: c.update(output="softmax"), "output must be one of"),
        (lambda c, w: c.update(activation="exec"), "activation must be one of"),
        (lambda c, w: c.update(arch="other"), "arch must be"),
        (lambda c, w: c.update(length_input="yes"), "length_input must be"),
        (lambda c, w: c.update(extra=1), "unknown entries extra"),
        (lambda c, w: c.pop("fourier"), "lacks fourier"),
        (lambda c, w: w.pop("mean"), "weights lack mean"),
        (lambda c, w: w.update(bonus=np.zeros(1, np.float32)), "unexpected bonus"),
        (lambda c, w: w.update(mean=np.zeros(9, np.float32)), r"mean has shape \(9,\), expected \(8,\)"),
        (lambda c, w: w.update(mean=np.zeros(8, np.int64)), "must be a float16/32/64 array"),
        (lambda c, w: w.update(mean=[0.0] * 8), "must be a float16/32/64 array"),
        (lambda c, w: w.update(mean=np.full(8, np.nan, np.float32)), "non-finite"),
        (lambda c, w: w.update(std=np.zeros(8, np.float32)), "std must be positive"),
    ],
)
def test_load_decoder_refuses_mismatches(trained, change, message):
    config, weights = decoder_state(trained[0])
    change(config, weights)
    with pytest.raises(ValueError, match=message):
        load_decoder(config, weights)


def test_load_decoder_refuses_non_mappings():
    with pytest.raises(ValueError, match="config must be a mapping"):
        load_decoder([1, 2], {})


@pytest.mark.parametrize("bad", [{"latent": 0}, {"output": "tanh"}, {"beta": -1.0}, {"steps": 1.5},
                                 {"length_input": 1}, {"lr": 0.0}, {"ips": 0}, {"batch": 4}])
def test_prior_config_check(bad):
    with pytest.raises(ValueError):
        dataclasses.replace(PriorConfig(), **bad).check()


def test_train_refuses_bad_labels(tiny_ds):
    with pytest.raises(ValueError, match="labels outside"):
        train_prior(tiny_ds.train, 2, SMALL)


def test_decoder_needs_lengths_when_configured():
    dec = Decoder(4, 3, 2, 8, 1, 2, 0, True, False, "linear", "silu")
    with pytest.raises(ValueError, match="needs segment lengths"):
        dec(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), torch.zeros(1))
    assert dec(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), torch.zeros(1), torch.ones(1)).shape == (1, 4)
