"""MS-TCN model, loss and trainer on tiny synthetic problems (seconds on CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tascond_cli.evaluate import MSTCN, TrainConfig, mstcn_loss, predict, predict_many, resolve_device, train_mstcn

TINY = dict(num_stages=2, num_layers=3, num_f_maps=8)


def synthetic_videos(n: int = 4, d: int = 6, c: int = 3, seed: int = 0, lengths=None):
    """Videos of a few segments whose class is written into the features (plus noise)."""
    rng = np.random.default_rng(seed)
    videos = []
    for i in range(n):
        t = lengths[i] if lengths is not None else int(rng.integers(30, 50))
        bounds = np.sort(rng.choice(np.arange(5, t - 5), size=2, replace=False))
        labels = np.zeros(t, dtype=np.int64)
        labels[bounds[0] : bounds[1]] = 1
        labels[bounds[1] :] = 2 % c
        features = rng.normal(0.0, 0.3, size=(d, t)).astype(np.float32)
        features[labels, np.arange(t)] += 2.0
        videos.append((features, labels))
    return videos


class CountingVideos:
    """A lazy Sequence that counts how often items are read."""

    def __init__(self, videos):
        self.videos = videos
        self.reads = 0

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, i):
        self.reads += 1
        return self.videos[i]


def official_loss(outputs, target, mask, num_classes):
    """The loss exactly as written in the official model.py."""
    ce = torch.nn.CrossEntropyLoss(ignore_index=-100)
    mse = torch.nn.MSELoss(reduction="none")
    loss = 0
    for p in outputs:
        loss += ce(p.transpose(2, 1).contiguous().view(-1, num_classes), target.view(-1))
        loss += 0.15 * torch.mean(
            torch.clamp(
                mse(F.log_softmax(p[:, :, 1:], dim=1), F.log_softmax(p.detach()[:, :, :-1], dim=1)), min=0, max=16
            )
            * mask[:, :, 1:]
        )
    return loss


def test_forward_shapes_and_mask():
    torch.manual_seed(0)
    model = MSTCN(in_dim=5, num_classes=4, **TINY).eval()
    x = torch.randn(2, 5, 17)  # (B, D, T)
    mask = torch.ones(2, 4, 17)
    mask[1, :, 11:] = 0
    out = model(x, mask)
    assert out.shape == (2, 2, 4, 17)  # (S, B, C, T)
    assert torch.all(out[:, 1, :, 11:] == 0)
    # no mask == mask of ones
    assert torch.allclose(model(x, None), model(x, torch.ones(2, 4, 17)))
    # default recipe: 4 stages, dilations 1 .. 512
    full = MSTCN(in_dim=5, num_classes=4)
    assert len(full.stages) == 3
    assert [layer.conv_dilated.dilation[0] for layer in full.stage1.layers] == [2**i for i in range(10)]


def test_dropout_is_inverted_dropout():
    from tascond_cli.evaluate.mstcn import Dropout

    torch.manual_seed(0)
    drop = Dropout(0.25)
    x = torch.ones(4, 8, 500)
    y = drop(x)
    values = torch.unique(y).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / 0.75)
    assert (y == 0).float().mean().item() == pytest.approx(0.25, abs=0.02)
    assert torch.equal(drop.eval()(x), x)
    with pytest.raises(ValueError):
        Dropout(1.0)


def test_loss_matches_official_formula_with_padding():
    torch.manual_seed(1)
    outputs = torch.randn(3, 2, 4, 12, requires_grad=True)  # (S, B, C, T)
    target = torch.randint(0, 4, (2, 12))
    target[1, 8:] = -100
    mask = torch.ones(2, 4, 12)
    mask[1, :, 8:] = 0
    ours = mstcn_loss(outputs, target, mask, 4)
    ref = official_loss(outputs, target, mask, 4)
    assert torch.isfinite(ours)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    (g1,) = torch.autograd.grad(ours, outputs)
    (g2,) = torch.autograd.grad(ref, outputs)
    assert torch.allclose(g1, g2, atol=1e-6)
    # mask None == mask of ones
    full = torch.randint(0, 4, (2, 12))
    assert mstcn_loss(outputs, full, None, 4).item() == pytest.approx(
        official_loss(outputs, full, torch.ones(2, 4, 12), 4).item(), rel=1e-6
    )


def test_loss_decreases_on_tiny_problem():
    torch.manual_seed(0)
    (features, labels), = synthetic_videos(1)
    model = MSTCN(6, 3, dropout=0.0, **TINY)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    x = torch.from_numpy(features)[None]
    y = torch.from_numpy(labels)[None]
    losses = []
    for _ in range(15):
        loss = mstcn_loss(model(x, None), y, None, 3)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0]


def test_train_deterministic_and_leaves_global_rng_alone():
    videos = synthetic_videos(3)
    config = TrainConfig(epochs=2, lr=5e-3, seed=7, **TINY)
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = train_mstcn(videos, 3, config)
    assert torch.equal(torch.rand(3), before)  # caller's RNG stream unchanged
    b = train_mstcn(videos, 3, config)
    assert not a.training
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    pred_a = predict_many(a, [f for f, _ in videos])
    pred_b = predict_many(b, [f for f, _ in videos])
    assert all(np.array_equal(p, q) for p, q in zip(pred_a, pred_b))
    c = train_mstcn(videos, 3, TrainConfig(epochs=2, lr=5e-3, seed=8, **TINY))
    assert not torch.equal(a.stage1.conv_out.weight, c.stage1.conv_out.weight)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_prefetching_trains_the_same_model(batch_size):
    """The next batch loads in a background thread (in order, one at a time): the same reads, the same
    batches and the same weights as a plain loop, bit for bit."""
    import threading

    class Recording(CountingVideos):
        def __getitem__(self, i):
            self.threads.add(threading.current_thread().name)
            self.order.append(i)
            return super().__getitem__(i)

    def run(prefetch: bool):
        videos = Recording(synthetic_videos(5, lengths=[30, 45, 38, 22, 51]))
        videos.threads, videos.order = set(), []
        config = TrainConfig(epochs=3, lr=5e-3, seed=3, batch_size=batch_size, prefetch=prefetch, **TINY)
        return train_mstcn(videos, 3, config), videos

    (plain, seen_plain), (ahead, seen_ahead) = run(False), run(True)
    for (name, pa), pb in zip(plain.state_dict().items(), ahead.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert seen_ahead.order[-15:] == seen_plain.order[-15:]  # every epoch's reads, in the same order
    assert any(t.startswith("tascond-prefetch") for t in seen_ahead.threads)
    assert not any(t.startswith("tascond-prefetch") for t in seen_plain.threads)


def test_train_learns_and_reports_epochs():
    lazy = CountingVideos(synthetic_videos(4))
    log = []
    model = train_mstcn(lazy, 3, TrainConfig(epochs=5, lr=1e-2, **TINY), on_epoch=lambda *a: log.append(a))
    assert [e for e, _, _ in log] == list(range(5))
    assert all(np.isfinite(loss) and 0.0 <= acc <= 1.0 for _, loss, acc in log)
    assert log[-1][1] < log[0][1]
    assert lazy.reads <= 4 * 5 + 1  # one read per video-step (plus the dimension probe)
    preds = predict_many(model, [f for f, _ in lazy.videos])
    acc = np.mean(np.concatenate([p == y for p, (_, y) in zip(preds, lazy.videos)]))
    assert acc > 0.6


def test_sample_rate_prediction_length_and_repeats():
    videos = synthetic_videos(2, lengths=[41, 37])
    model = train_mstcn(videos, 3, TrainConfig(epochs=1, sample_rate=2, **TINY))
    features = videos[0][0]  # (6, 41)
    pred = predict(model, features, sample_rate=3)
    assert pred.shape == (41,) and pred.dtype == np.int64
    assert np.array_equal(pred[::3].repeat(3)[:41], pred)
    with torch.no_grad():
        sub = model(torch.from_numpy(np.ascontiguousarray(features[:, ::3]))[None])[-1].argmax(1)[0].numpy()
    assert np.array_equal(pred[::3], sub)
    assert predict(model, features).shape == (41,)
    assert predict(model, features[:, :1], sample_rate=4).shape == (1,)


def test_batch_size_two_pads():
    videos = synthetic_videos(3, lengths=[30, 45, 38])
    log = []
    model = train_mstcn(videos, 3, TrainConfig(epochs=2, batch_size=2, **TINY), on_epoch=lambda *a: log.append(a))
    assert len(log) == 2 and all(np.isfinite(loss) for _, loss, _ in log)
    assert [len(p) for p in predict_many(model, [f for f, _ in videos])] == [30, 45, 38]


def test_config_validation():
    with pytest.raises(ValueError):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError):
        TrainConfig(sample_rate=0)
    with pytest.raises(ValueError):
        train_mstcn([], 3, TrainConfig(epochs=1))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        resolve_device("not-a-device")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_resolve_device_cuda_absent():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError):
        train_mstcn(synthetic_videos(1), 3, TrainConfig(epochs=1, device="cuda", **TINY))
