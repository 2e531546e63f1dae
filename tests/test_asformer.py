"""ASFormer model on tiny inputs: shapes, padding, determinism, local attention, a few training steps."""

from __future__ import annotations

import math

import pytest
import torch

from tascond_cli.evaluate.asformer import (
    RECIPE,
    ASFormer,
    asformer_optimizer,
    decoder_alpha,
    sliding_window_attention,
)
from tascond_cli.evaluate.mstcn import mstcn_loss

SMALL = {"num_decoders": 2, "num_layers": 3, "num_f_maps": 16}


def authors_sliding_attention(q, k, v, mask, bl):
    """The authors' ``_sliding_window_self_att`` core (batch 1, before ReLU / conv_out), written out per block."""
    _, c1, length = q.shape
    nb = -(-length // bl)
    pad = nb * bl - length
    q, k, v = (torch.cat([x, x.new_zeros(1, x.shape[1], pad)], dim=-1) for x in (q, k, v))
    pm = torch.cat([mask, mask.new_zeros(1, 1, pad)], dim=-1)
    half = bl // 2
    k, v, pm = (
        torch.cat([x.new_zeros(1, x.shape[1], half), x, x.new_zeros(1, x.shape[1], half)], -1)
        for x in (k, v, pm)
    )
    window = torch.zeros(bl, bl + 2 * half)
    for i in range(bl):  # the authors' loop: every row gets columns i : i + bl
        window[:, i : i + bl] = 1
    out = []
    for b in range(nb):
        qb = q[0, :, b * bl : (b + 1) * bl]  # (c1, bl)
        sl = slice(b * bl, (b + 1) * bl + 2 * half)
        final = window * pm[0, :, sl]  # (bl, W)
        att = qb.T @ k[0, :, sl] / math.sqrt(c1) + torch.log(final + 1e-6)
        att = torch.softmax(att, dim=-1) * final
        out.append(v[0, :, sl] @ att.T)  # (c3, bl)
    return torch.cat(out, dim=-1)[None, :, :length]


@pytest.mark.parametrize("bl", [1, 2, 4, 8])
@pytest.mark.parametrize("length", [1, 5, 13, 16])
def test_sliding_attention_matches_authors(bl, length):
    torch.manual_seed(bl * 100 + length)
    q, k = torch.randn(1, 4, length), torch.randn(1, 4, length)
    v = torch.randn(1, 3, length)
    mask = torch.ones(1, 1, length)
    mask[..., length // 2 + 1 :] = 0  # a padded tail
    for m in (torch.ones(1, 1, length), mask):
        ours = sliding_window_attention(q, k, v, m, bl)
        ref = authors_sliding_attention(q, k, v, m, bl)
        assert ours.shape == (1, 3, length)
        assert torch.allclose(ours, ref, atol=1e-4)
    ref = authors_sliding_attention(q, k, v, torch.ones(1, 1, length), bl)
    assert torch.allclose(sliding_window_attention(q, k, v, None, bl), ref, atol=1e-4)


def test_sliding_attention_window_all_padding_is_zero_not_nan():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 20, requires_grad=True), torch.randn(2, 4, 20), torch.randn(2, 3, 20)
    mask = torch.ones(2, 1, 20)
    mask[1, :, 3:] = 0  # video 2: frames 3.. padded, so blocks of 4 from frame 8 on see no valid key
    out = sliding_window_attention(q, k, v, mask, 4)
    assert torch.isfinite(out).all()
    assert torch.all(out[1, :, 8:] == 0)
    out.sum().backward()
    assert torch.isfinite(q.grad).all()
    with pytest.raises(ValueError):
        sliding_window_attention(q, k, v, mask, 0)


@pytest.mark.parametrize("length", [1, 3, 7, 8, 13, 50])
def test_output_shape(length):
    torch.manual_seed(0)
    model = ASFormer(5, 4, **SMALL).eval()  # largest block 4: windows of 7 keys
    out = model(torch.randn(2, 5, length), torch.ones(2, 4, length))
    assert out.shape == (3, 2, 4, length)  # (S, B, C, T)
    assert torch.isfinite(out).all()
    assert model(torch.randn(1, 5, length)).shape == (3, 1, 4, length)  # mask None


def test_structure_defaults():
    model = ASFormer(8, 4)
    assert model.num_stages == 4 and len(model.decoders) == 3
    blocks = [layer.att_layer.block for layer in model.encoder.layers]
    assert blocks == [2**i for i in range(10)]
    assert [layer.feed_forward.dilation[0] for layer in model.encoder.layers] == blocks
    assert [d.layers[0].alpha for d in model.decoders] == pytest.approx([1.0, math.exp(-3), math.exp(-6)])
    assert model.encoder.layers[0].alpha == 1.0
    att = model.encoder.layers[0].att_layer
    assert att.query_conv.out_channels == att.key_conv.out_channels == 32 and att.value_conv.out_channels == 32
    assert model.encoder.channel_masking.p == 0.3 and model.encoder.layers[0].dropout.p == 0.5
    assert decoder_alpha(2) == pytest.approx(math.exp(-6))
    assert ASFormer(8, 4, num_decoders=0)(torch.randn(1, 8, 9)).shape == (1, 1, 4, 9)


def test_padding_matches_unpadded_and_is_zero():
    torch.manual_seed(0)
    model = ASFormer(6, 5, **SMALL).eval()
    long_x, short_x = torch.randn(1, 6, 40), torch.randn(1, 6, 11)
    x = torch.zeros(2, 6, 40)
    x[0], x[1, :, :11] = long_x[0], short_x[0]
    mask = torch.zeros(2, 5, 40)
    mask[0], mask[1, :, :11] = 1, 1
    with torch.no_grad():
        both = model(x, mask)  # (S, 2, C, 40)
        alone = model(short_x, None)  # (S, 1, C, 11)
        alone_ones = model(short_x, torch.ones(1, 1, 11))
        long_alone = model(long_x)
    assert torch.isfinite(both).all()
    assert torch.all(both[:, 1, :, 11:] == 0)
    assert torch.allclose(both[:, 1, :, :11], alone[:, 0], atol=1e-5)
    assert torch.allclose(alone_ones, alone, atol=1e-5)
    assert torch.allclose(both[:, 0], long_alone[:, 0], atol=1e-5)
    # garbage in the padded frames changes nothing
    x[1, :, 11:] = 100 * torch.randn(6, 29)
    with torch.no_grad():
        assert torch.allclose(model(x, mask), both, atol=1e-5)


def test_padding_with_large_blocks_no_nan():
    torch.manual_seed(0)
    model = ASFormer(6, 5, num_decoders=1, num_layers=6, num_f_maps=8).eval()  # blocks up to 32
    x = torch.randn(3, 6, 70)
    mask = torch.ones(3, 5, 70)
    mask[1, :, 2:] = 0  # 2 valid frames: many windows see only padding
    mask[2, :, :] = 0  # an entirely padded video
    out = model(x, mask)
    assert torch.isfinite(out).all()
    assert torch.all(out[:, 2] == 0) and torch.all(out[:, 1, :, 2:] == 0)
    with torch.no_grad():
        assert torch.allclose(out[:, 1, :, :2], model(x[1:2, :, :2])[:, 0], atol=1e-5)
    model.train()
    target = torch.randint(0, 5, (3, 70))
    target[mask[:, 0] == 0] = -100
    target[2, 0] = 1  # keep the cross-entropy defined
    loss = mstcn_loss(model(x, mask), target, mask, 5)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_eval_deterministic_train_stochastic():
    torch.manual_seed(0)
    model = ASFormer(32, 4, **SMALL, dropout=0.0)
    x = torch.randn(1, 32, 30)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        ref = model(x)
        model.train()  # dropout 0: only channel masking is random
        a, b = model(x), model(x)
    assert not torch.allclose(a, ref) and not torch.allclose(a, b)
    model.encoder.channel_masking.p = 0.0
    with torch.no_grad():
        assert torch.allclose(model(x), ref, atol=1e-6)


def test_channel_masking_drops_whole_channels():
    torch.manual_seed(0)
    drop = ASFormer(200, 3, **SMALL).encoder.channel_masking.train()
    y = drop(torch.ones(4, 200, 10))
    per_channel = y[:, :, 0]
    assert torch.equal(y, per_channel[:, :, None].expand_as(y))  # constant along time
    assert torch.unique(per_channel).tolist() == [0.0, pytest.approx(1 / 0.7)]
    assert 0.2 < (per_channel == 0).float().mean().item() < 0.4


def test_training_lowers_loss():
    torch.manual_seed(0)
    t, c, d = 60, 3, 8
    labels = torch.zeros(t, dtype=torch.long)
    labels[20:40], labels[40:] = 1, 2
    x = 0.3 * torch.randn(1, d, t)
    x[0, labels, torch.arange(t)] += 1.0
    target = labels[None]
    model = ASFormer(d, c, **SMALL, dropout=0.0, channel_masking_rate=0.0)
    opt, sched = asformer_optimizer(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = mstcn_loss(model(x), target, None, c)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    sched.step(losses[-1])
    with torch.no_grad():
        final = mstcn_loss(model.eval()(x), target, None, c).item()
    assert final < 0.5 * losses[0]
    assert (model(x)[-1].argmax(1)[0] == labels).float().mean() > 0.9


def test_recipe_and_optimizer():
    assert RECIPE["epochs"] == 120 and RECIPE["lr"] == 5e-4 and RECIPE["weight_decay"] == 1e-5
    model = ASFormer(4, 3, num_decoders=0, num_layers=1, num_f_maps=4)
    opt, sched = asformer_optimizer(model.parameters())
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["lr"] == 5e-4 and opt.defaults["weight_decay"] == 1e-5
    assert isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    for _ in range(5):
        sched.step(1.0)  # no improvement for more than `patience` = 3 epochs
    assert opt.param_groups[0]["lr"] == pytest.approx(2.5e-4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_decoders": -1},
        {"num_layers": 0},
        {"num_f_maps": 0},
        {"r1": 0},
        {"num_f_maps": 4, "r2": 8},
        {"channel_masking_rate": 1.0},
        {"dropout": -0.1},
    ],
)
def test_constructor_validation(kwargs):
    with pytest.raises(ValueError):
        ASFormer(4, 3, **kwargs)


def test_trainer_builds_and_trains_asformer():
    """``TrainConfig(model="asformer")``: the trainer's model, its optimiser and scheduler, deterministic."""
    import numpy as np

    from tascond_cli.evaluate.train import TrainConfig, build_model, predict, train_model

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 6)).astype(np.float32)
    videos = []
    for _ in range(4):
        y = np.repeat(rng.permutation(3), rng.integers(10, 20, size=3))
        videos.append(((centres[y].T + 0.2 * rng.normal(size=(6, len(y)))).astype(np.float32), y))
    config = TrainConfig(model="asformer", epochs=25, lr=5e-3, num_stages=2, num_layers=3, num_f_maps=16)
    model = build_model(6, 3, config)
    assert isinstance(model, ASFormer) and len(model.decoders) == 1
    losses = []
    trained = train_model(videos, 3, config, on_epoch=lambda e, loss, acc: losses.append(loss))
    assert losses[-1] < 0.5 * losses[0]
    again = train_model(videos, 3, config)
    x, y = videos[0]
    np.testing.assert_array_equal(predict(trained, x), predict(again, x))
    assert (predict(trained, x) == y).mean() > 0.8


def test_evaluate_cli_trains_asformer(tmp_path):
    import json

    from typer.testing import CliRunner

    from conftest import make_tiny_dataset
    from tascond_cli.cli import app

    data = make_tiny_dataset(tmp_path / "tiny")
    result = CliRunner().invoke(app, ["evaluate", "--data", str(data), "--model", "asformer", "--epochs", "2",
                                      "--seeds", "1", "--stages", "2", "--layers", "2", "--f-maps", "8",
                                      "--device", "cpu", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == "asformer" and report["epochs"] == 2
    table = CliRunner().invoke(app, ["evaluate", "--data", str(data), "--model", "asformer", "--epochs", "1",
                                     "--seeds", "1", "--stages", "2", "--layers", "2", "--f-maps", "8"])  # fmt: skip
    assert table.exit_code == 0 and "ASFormer" in table.stdout
