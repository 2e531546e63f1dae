"""Train MS-TCN or ASFormer on (features, labels) pairs and predict frame labels: the official recipes.

Follows the official MS-TCN ``main.py`` / ``model.py`` / ``batch_gen.py`` (github.com/yabufarha/ms-tcn)
and ``docs/evaluation.md`` ("The MS-TCN recipe"): Adam (lr 5e-4), 50 epochs, batch 1, a fresh shuffle every epoch, features
and labels subsampled by ``sample_rate`` for training; at test time the prediction on the subsampled
sequence is repeated ``sample_rate`` times (and cut to the full length) before scoring. Batches larger
than 1 are zero-padded with -100 targets and a mask, as the official ``BatchGenerator`` does.

No printing here: progress goes through the ``on_epoch`` callback. Training is deterministic for a given
seed on CPU; the caller's global RNG state is left untouched (``torch.random.fork_rng``).

ASFormer (``TrainConfig(model="asformer")``, :mod:`.asformer`) trains the same way, with its authors'
optimiser: Adam with weight decay 1e-5 and ``ReduceLROnPlateau`` (factor 0.5, patience 3) stepped on
each epoch's summed loss; ``num_stages`` is its encoder plus ``num_stages - 1`` decoders (4: the paper's
three decoders). Its epochs (120 in the recipe, :data:`DEFAULT_EPOCHS`) are ``TrainConfig.epochs``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from tascond_cli.device import resolve_device

from .asformer import ASFormer, asformer_optimizer
from .mstcn import MSTCN, mstcn_loss

Video = tuple[np.ndarray, np.ndarray]  # features (D, T) float, labels (T,) int
EpochCallback = Callable[[int, float, float], None]


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; the defaults are MS-TCN's recipe (4 stages x 10 layers, 64 maps).

    ``model="asformer"``: the same sizes are one encoder and three decoders of 10 blocks, 64 channels
    (the ASFormer paper's); set ``epochs=120`` for its recipe (:data:`DEFAULT_EPOCHS`).
    """

    epochs: int = 50
    lr: float = 5e-4
    batch_size: int = 1
    num_stages: int = 4
    num_layers: int = 10
    num_f_maps: int = 64
    dropout: float = 0.5
    sample_rate: int = 1
    seed: int = 0
    device: str = "cpu"
    model: str = "mstcn"
    prefetch: bool | None = None
    """Load the next batch (read, subsample, decode an archive's video, pin on CUDA) in a background thread
    while the current one trains; the same batches in the same order either way, so the same model.
    None: on a GPU only (on 2 CPU cores the loader and the training share the cores: 2 epochs on the
    hard set's archive took 34-40 s either way)."""

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r} (known: {', '.join(MODELS)})")
        for name in ("batch_size", "num_stages", "num_layers", "num_f_maps", "sample_rate"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def _subsample(video: Video, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Read one video's features (D, T') float32 and labels (T',) int64 at the training rate.

    Only the subsampled frames are copied out of a (possibly memory-mapped) array; if features and
    labels disagree in length the shorter wins (as the official loader does).
    """
    features, labels = video
    t = min(features.shape[1], len(labels))
    # np.array copies: a memory-mapped file is read-only and torch needs a writable buffer
    x = np.array(features[:, :t:sample_rate], dtype=np.float32, order="C")  # (D, T')
    y = np.array(labels[:t:sample_rate], dtype=np.int64, order="C")  # (T',)
    return x, y


def _host_batch(
    items: list[tuple[np.ndarray, np.ndarray]], num_classes: int, pin: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Stack videos into (B, D, T) inputs, (B, T) targets and a (B, C, T) mask (None when unpadded), on the
    host, in page-locked memory when ``pin`` (so that the copy to a GPU is asynchronous)."""
    host = _stack(items, num_classes)
    return tuple(t.pin_memory() if pin and t is not None else t for t in host)  # type: ignore[return-value]


def _stack(
    items: list[tuple[np.ndarray, np.ndarray]], num_classes: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    if len(items) == 1:
        x, y = items[0]
        inputs = torch.from_numpy(x).unsqueeze(0)  # (1, D, T)
        target = torch.from_numpy(y).unsqueeze(0)  # (1, T)
        return inputs, target, None  # a mask of ones is a no-op
    lengths = [len(y) for _, y in items]
    t_max = max(lengths)
    d = items[0][0].shape[0]
    x_pad = np.zeros((len(items), d, t_max), dtype=np.float32)  # (B, D, T)
    y_pad = np.full((len(items), t_max), -100, dtype=np.int64)  # (B, T)
    m_pad = np.zeros((len(items), num_classes, t_max), dtype=np.float32)  # (B, C, T)
    for i, (x, y) in enumerate(items):
        x_pad[i, :, : len(y)] = x
        y_pad[i, : len(y)] = y
        m_pad[i, :, : len(y)] = 1.0
    return torch.from_numpy(x_pad), torch.from_numpy(y_pad), torch.from_numpy(m_pad)


Batch = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None"]
"""(B, D, T) inputs, (B, T) targets, (B, C, T) mask or None."""


def _batches(videos: Sequence[Video], order: np.ndarray, num_classes: int, config: TrainConfig,
             device: torch.device) -> Iterator[tuple[list[Video], Batch]]:
    """Each batch of ``order`` as its items (subsampled videos) and its tensors on ``device``.

    With ``config.prefetch`` (default: on a GPU) one background thread loads batch ``k + 1`` (reads,
    subsamples, decodes, pins on CUDA) while the caller trains on batch ``k``; the loads run one at a
    time, in order, so the batches are those of a plain loop.
    """
    pin = device.type == "cuda"

    def load(b: int):
        items = [_subsample(videos[int(i)], config.sample_rate) for i in order[b : b + config.batch_size]]
        return items, _host_batch(items, num_classes, pin)

    def on_device(loaded):
        items, host = loaded
        return items, tuple(None if t is None else t.to(device, non_blocking=True) for t in host)

    starts = list(range(0, len(order), config.batch_size))
    if not (config.prefetch if config.prefetch is not None else device.type != "cpu"):
        for b in starts:
            yield on_device(load(b))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tascond-prefetch") as pool:
        pending = pool.submit(load, starts[0]) if starts else None
        for k in range(len(starts)):
            loaded = pending.result()
            pending = pool.submit(load, starts[k + 1]) if k + 1 < len(starts) else None
            yield on_device(loaded)


MODELS = ("mstcn", "asformer")
"""The models ``evaluate --model`` trains: MS-TCN (Farha & Gall 2019) and ASFormer (Yi et al. 2021)."""

DEFAULT_EPOCHS = {"mstcn": 50, "asformer": 120}
"""Each model's epochs in its authors' recipe (``TrainConfig.epochs`` is what is run)."""


def _rng_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose RNG ``fork_rng`` must save and restore for ``device``."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def build_model(in_dim: int, num_classes: int, config: TrainConfig) -> torch.nn.Module:
    """A freshly initialised model named by ``config.model`` (weights drawn from torch's global RNG).

    Every model maps ``(inputs (B, D, T), mask (B, C, T) or None)`` to per-stage logits ``(S, B, C, T)``
    and trains with ``mstcn_loss``.
    """
    if config.model == "mstcn":
        return MSTCN(in_dim, num_classes, config.num_stages, config.num_layers, config.num_f_maps, config.dropout)
    if config.model == "asformer":  # one encoder and num_stages - 1 decoders
        return ASFormer(in_dim, num_classes, num_decoders=config.num_stages - 1, num_layers=config.num_layers,
                        num_f_maps=config.num_f_maps, dropout=config.dropout)  # fmt: skip
    raise ValueError(f"unknown model {config.model!r} (known: {', '.join(MODELS)})")


def fit(
    model: torch.nn.Module,
    videos: Sequence[Video],
    num_classes: int,
    config: TrainConfig,
    on_epoch: EpochCallback | None = None,
) -> torch.nn.Module:
    """Train ``model`` (fresh or already trained) on ``videos`` for ``config.epochs`` epochs, a new Adam.

    The shuffle order and dropout are seeded by ``config.seed``; the caller's RNG state is left untouched.
    Used by ``train_model`` (from scratch) and by the incremental protocol (one call per task).
    Returns the model, on ``config.device``, in eval mode.
    """
    if len(videos) == 0:
        raise ValueError("no training videos")
    device = resolve_device(config.device)
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(config.seed)  # dropout
        order_rng = np.random.default_rng(config.seed)  # shuffle order
        model.to(device)
        _fit_loop(model, videos, num_classes, config, device, order_rng, on_epoch)
    model.eval()
    return model


def _fit_loop(
    model: torch.nn.Module,
    videos: Sequence[Video],
    num_classes: int,
    config: TrainConfig,
    device: torch.device,
    order_rng: np.random.Generator,
    on_epoch: EpochCallback | None,
) -> None:
    scheduler = None
    if config.model == "asformer":  # the authors' Adam (weight decay 1e-5) and ReduceLROnPlateau on the epoch loss
        optimizer, scheduler = asformer_optimizer(model.parameters(), lr=config.lr)
    else:  # the fused kernel is the same Adam update in one pass (5x faster per step on CPU than the loop)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=device.type in ("cpu", "cuda"))
    model.train()
    for epoch in range(config.epochs):
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        total = 0
        steps = 0
        order = order_rng.permutation(len(videos))
        for items, (inputs, target, mask) in _batches(videos, order, num_classes, config, device):
            # (B, D, T), (B, T), (B, C, T) or None
            outputs = model(inputs, mask)  # (S, B, C, T)
            loss = mstcn_loss(outputs, target, mask, num_classes)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            predicted = outputs[-1].detach().argmax(dim=1)  # (B, T)
            correct += (predicted == target).sum()  # padding targets are -100, never equal
            total += sum(len(y) for _, y in items)
            steps += 1
        if scheduler is not None:
            scheduler.step(loss_sum.item())  # the summed epoch loss, as the authors' trainer
        if on_epoch is not None:
            on_epoch(epoch, loss_sum.item() / steps, correct.item() / max(total, 1))


def train_model(
    videos: Sequence[Video],
    num_classes: int,
    config: TrainConfig,
    on_epoch: EpochCallback | None = None,
) -> torch.nn.Module:
    """Train the model named by ``config.model`` from scratch with its recipe.

    Parameters
    ----------
    videos : sequence of (features, labels)
        ``features`` float array (D, T) and ``labels`` int array (T,) in ``[0, num_classes)``, at the full
        frame rate; items are read (and subsampled) one step at a time, so lazy sequences and memmaps work.
    num_classes : int
        Number of classes C.
    config : TrainConfig
        Model, recipe and seed.
    on_epoch : callable, optional
        Called as ``on_epoch(epoch_index, mean_loss, train_acc)`` after each epoch, with the 0-based epoch
        index, the loss averaged over optimisation steps (the official figure when ``batch_size == 1``) and
        the frame accuracy on the training batches as a fraction in [0, 1] (padding excluded).

    Returns
    -------
    torch.nn.Module
        The trained model, on ``config.device``, in eval mode.
    """
    if len(videos) == 0:
        raise ValueError("no training videos")
    device = resolve_device(config.device)
    in_dim = int(videos[0][0].shape[0])
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(config.seed)  # weights and dropout
        order_rng = np.random.default_rng(config.seed)  # shuffle order
        model = build_model(in_dim, num_classes, config).to(device)
        _fit_loop(model, videos, num_classes, config, device, order_rng, on_epoch)
    model.eval()
    return model


def train_mstcn(
    videos: Sequence[Video],
    num_classes: int,
    config: TrainConfig,
    on_epoch: EpochCallback | None = None,
) -> torch.nn.Module:
    """``train_model`` (kept for callers that predate ``TrainConfig.model``)."""
    return train_model(videos, num_classes, config, on_epoch)


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def _predict_one(model: MSTCN, features: np.ndarray, sample_rate: int, device: torch.device) -> np.ndarray:
    t_full = features.shape[1]
    x = np.array(features[:, ::sample_rate], dtype=np.float32, order="C")  # (D, T'), a writable copy
    inputs = torch.from_numpy(x).unsqueeze(0).to(device)  # (1, D, T')
    logits = model(inputs, None)[-1]  # (1, C, T')
    predicted = logits.argmax(dim=1)[0].cpu().numpy().astype(np.int64)  # (T',)
    return np.repeat(predicted, sample_rate)[:t_full]  # (T_full,)


def predict_many(
    model: MSTCN,
    feature_list: Sequence[np.ndarray],
    sample_rate: int = 1,
    device: str | torch.device | None = None,
) -> list[np.ndarray]:
    """Frame labels for several videos (see ``predict``); each video is run on its own, unpadded."""
    if sample_rate < 1:
        raise ValueError(f"sample_rate must be >= 1, got {sample_rate}")
    dev = _model_device(model) if device is None else resolve_device(device)
    model.to(dev)
    was_training = model.training
    model.eval()
    try:
        return [_predict_one(model, features, sample_rate, dev) for features in feature_list]
    finally:
        model.train(was_training)


def predict(
    model: MSTCN,
    features: np.ndarray,
    sample_rate: int = 1,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Frame labels of one video, the official way.

    Parameters
    ----------
    model : MSTCN
        A trained model (run in eval mode here; its mode is restored afterwards).
    features : np.ndarray
        (D, T_full) features at the full frame rate.
    sample_rate : int
        The model sees ``features[:, ::sample_rate]``; each predicted label is repeated ``sample_rate``
        times and the result cut to ``T_full``.
    device : str or torch.device, optional
        Where to run; defaults to the model's device. The model is moved there.

    Returns
    -------
    np.ndarray
        int64 class indices, shape (T_full,), argmax of the last stage.
    """
    return predict_many(model, [features], sample_rate, device)[0]
