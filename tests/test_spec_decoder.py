"""A decoder written from docs/format.md alone reproduces what ``tascond restore`` restores.

The reader and decoder in the first half of this file follow the format document only (sections 2, 3,
4.6, 5 and 6): they read the container and the HDF5 payload with ``zstandard`` and ``h5py`` and
decode with plain numpy. They import nothing from tascond. The tests then compare them with
``tascond_cli.restore.ArchiveDecoder(...).features(i)`` on:

- the committed golden archives (tests/data/golden-*.tcd): a 1.1 ``generator`` archive with shared
  codes, chunk and log-length inputs and a residual model; a ``random`` (TCA) archive; a ``linear`` one;
- an archive made by ``tascond condense`` (the CLI, tiny settings, ``--residual``, borrowing): what the
  real writer produces, float16 weights of a trained network;
- in-memory variants: other network configurations (activations, layers, F = 0, no chunk or length
  input, linear output with a residual), ``rho = 0``, the ``identity`` and ``zeros`` kinds.

Tolerance. The network (section 6.3) is float32 arithmetic in which the order of a matrix product's
sums is not specified (section 6.6): numpy here and torch in tascond differ by a few float32 ulps per
layer (measured: at most ~2e-7 on these archives, whose features are of order 1; tascond's own output
changes by as much with its batch size). ``rtol=1e-4, atol=1e-5`` is 100x that, yet 1e4 times smaller
than any real mistake (a wrong position feature, code row, chunk, RNG stream or normalisation moves
values by 1e-2 or more). Where the spec makes a result exact (``identity``, ``zeros``, the residual
noise on a constant network output) the tests demand equal bytes.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zstandard

DATA = Path(__file__).parent / "data"
RTOL, ATOL = 1e-4, 1e-5

# =========================================================================== the spec-only reader

MAGIC = b"\x89TCD\r\n\x1a\n"


def spec_read(data: bytes) -> dict[str, Any]:
    """Container (format.md §2) and payload (§3) into plain Python/numpy values (checks kept minimal)."""
    assert data[:8] == MAGIC
    major, minor, size, zsize = struct.unpack("<HHQQ", data[8:28])
    assert major == 1 and len(data) == 28 + zsize
    payload = zstandard.ZstdDecompressor().decompress(data[28:], max_output_size=size)
    assert len(payload) == size
    with h5py.File(io.BytesIO(payload), "r") as f:
        text = lambda path: f[path][()].decode("utf-8") if isinstance(f[path][()], bytes) else str(f[path][()])
        names = lambda path: [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in f[path][()]]
        ints = lambda path: np.asarray(f[path][()], dtype=np.int64)
        return {
            "version": (major, minor),
            "settings": json.loads(text("settings")),
            "classes": names("classes/names"),
            "videos": names("videos/names"),
            "segment_offsets": ints("videos/segment_offsets"),
            "labels": ints("segments/labels"),
            "lengths": ints("segments/lengths"),
            "code_offsets": ints("segments/code_offsets"),
            "source": ints("segments/code_source") if "code_source" in f["segments"] else None,
            "codes": np.asarray(f["codes"][()]),
            "kind": text("decoder/kind"),
            "config": json.loads(text("decoder/config")),
            "weights": {name: np.asarray(ds[()]) for name, ds in f["decoder/weights"].items()},
        }


# =========================================================================== the spec-only decoder


def _segment_codes(a: dict, s: int) -> np.ndarray:
    """The codes segment ``s`` decodes with, in chunk order, float32 (§4.6, §6.2)."""
    off = a["code_offsets"]
    r = -1 if a["source"] is None else int(a["source"][s])
    if r < 0:
        rows = np.arange(off[s], off[s + 1])
    else:
        n_r = int(off[r + 1] - off[r])
        n = min(n_r, int(a["lengths"][s]))
        rows = off[r] + np.arange(n) * n_r // n
    return a["codes"][rows].astype(np.float32)


def _frames(seg_codes: list[np.ndarray], labels: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per frame of a video: its code (F, d) float32, class, c and u (float32), L (§5, §6.2)."""
    z, a, c, u, big_l = [], [], [], [], []
    for codes, label, length in zip(seg_codes, labels.tolist(), lengths.tolist()):
        n = codes.shape[0]
        t = np.arange(length)
        i = ((t + 1) * n - 1) // length
        lo, hi = i * length // n, (i + 1) * length // n
        z.append(codes[i])
        a.append(np.full(length, label))
        c.append(((t + 0.5) / length).astype(np.float32))  # float64 division, then float32
        u.append(((t - lo + 0.5) / (hi - lo)).astype(np.float32))
        big_l.append(np.full(length, length))
    return tuple(np.concatenate(x) for x in (z, a, c, u, big_l))


def _fourier(x: np.ndarray, count: int) -> list[np.ndarray]:
    """``x, sin(pi 2^k x) for k < count, cos(pi 2^k x) for k < count``, each angle a float32 product."""
    w = np.float32(np.pi) * np.float32(2.0) ** np.arange(count, dtype=np.float32)  # (count,)
    ang = x[:, None] * w[None, :]  # float32
    return [x[:, None], np.sin(ang), np.cos(ang)]


_erf = np.vectorize(math.erf, otypes=[np.float64])

ACTIVATIONS = {
    "silu": lambda x: x / (np.float32(1) + np.exp(-x)),
    "relu": lambda x: np.maximum(x, np.float32(0)),
    "gelu": lambda x: (x * (np.float32(1) + _erf(x.astype(np.float64) / math.sqrt(2.0)).astype(np.float32))
                       / np.float32(2)),
}


def mlp_v1(cfg: dict, weights: dict, z, a, c, u, big_l) -> np.ndarray:
    """The ``tascond-mlp-v1`` network (§6.3) on per-frame inputs: (F, D) float32."""
    assert cfg["arch"] == "tascond-mlp-v1"
    w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    parts = [z, w["embed.weight"][a], *_fourier(c, cfg["fourier"])]
    if cfg["length_input"]:
        parts.append((np.log(big_l.astype(np.float32)) / np.float32(8))[:, None])
    if cfg["chunk_input"]:
        parts += _fourier(u, 1)
    h = np.concatenate(parts, axis=1).astype(np.float32)
    act = ACTIVATIONS[cfg["activation"]]
    with np.errstate(over="ignore"):  # silu: exp(-x) may overflow to inf, giving -0
        for j in range(cfg["layers"]):
            h = act(h @ w[f"net.{2 * j}.weight"].T + w[f"net.{2 * j}.bias"])
    q = 2 * cfg["layers"]
    y = w["mean"] + w["std"] * (h @ w[f"net.{q}.weight"].T + w[f"net.{q}.bias"])
    return np.maximum(y, np.float32(0)) if cfg["output"] == "relu" else y


def ar1_noise(seed: int, v: int, dim: int, frames: int, rho: float) -> np.ndarray:
    """The residual noise e (D, T) float32 of §6.5."""
    rng = np.random.default_rng([seed, v, 1])
    w = rng.standard_normal((dim, frames), dtype=np.float32)
    if rho == 0 or frames == 0:
        return w
    w[:, 1:] *= np.float32(math.sqrt(1.0 - rho * rho))
    e = np.empty_like(w)
    e[:, 0] = w[:, 0]
    r = np.float32(rho)
    for t in range(1, frames):
        e[:, t] = r * e[:, t - 1] + w[:, t]
    return e


def spec_features(a: dict, v: int) -> np.ndarray:
    """Video ``v``'s restored features (D, T) float32, from format.md §6 alone."""
    segs = range(int(a["segment_offsets"][v]), int(a["segment_offsets"][v + 1]))
    labels, lengths = a["labels"][segs.start : segs.stop], a["lengths"][segs.start : segs.stop]
    dim, total, kind = int(a["settings"]["dim"]), int(lengths.sum()), a["kind"]
    if kind == "zeros":
        return np.zeros((dim, total), dtype=np.float32)
    if kind == "random":  # §6.4
        ips, latent = a["settings"]["ips"], a["config"]["latent"]
        counts = np.minimum(lengths, ips)
        drawn = np.random.default_rng([a["settings"]["seed"], v]).standard_normal((int(counts.sum()), latent))
        drawn = drawn.astype(np.float32)
        starts = np.concatenate([[0], np.cumsum(counts)])
        seg_codes = [drawn[starts[k] : starts[k + 1]] for k in range(len(counts))]
    else:
        seg_codes = [_segment_codes(a, s) for s in segs]
    z, cls, c, u, big_l = _frames(seg_codes, labels, lengths)
    if kind == "identity":
        return np.ascontiguousarray(z.T)
    if kind == "linear":
        comp = a["weights"]["components"].astype(np.float32)
        return np.ascontiguousarray((z @ comp + a["weights"]["mean"].astype(np.float32)).T)
    assert kind in ("generator", "random"), kind
    cfg = dict(a["config"])
    weights = dict(a["weights"])
    rho = cfg.pop("residual_rho", None)
    std = weights.pop("residual.std", None)
    x = np.ascontiguousarray(mlp_v1(cfg, weights, z, cls, c, u, big_l).T)  # (D, T)
    if rho is not None:  # §6.5
        e = ar1_noise(int(a["settings"].get("seed", 0)), v, dim, total, float(rho))
        x = np.maximum(x + std.astype(np.float32)[:, None] * e, np.float32(0))
    return x


# =========================================================================== the comparisons


def _tascond_features(data: bytes) -> list[np.ndarray]:
    from tascond_cli.archive import read_archive
    from tascond_cli.restore import ArchiveDecoder

    dec = ArchiveDecoder(read_archive(data), "cpu")
    return [dec.features(i) for i in range(len(dec))]


def _compare(data: bytes, exact: bool = False) -> dict:
    a = spec_read(data)
    ours = [spec_features(a, v) for v in range(len(a["videos"]))]
    theirs = _tascond_features(data)
    assert len(ours) == len(theirs) == len(a["videos"]) > 0
    for v, (x, y) in enumerate(zip(ours, theirs)):
        assert x.dtype == y.dtype == np.float32 and x.shape == y.shape, (v, x.shape, y.shape)
        if exact:
            np.testing.assert_array_equal(x, y, err_msg=f"video {v}")
        else:
            np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL, err_msg=f"video {v}")
    return a


def _make_golden():
    spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _bytes(archive) -> bytes:
    from tascond_cli.archive import archive_bytes

    return archive_bytes(archive, level=3)


# --------------------------------------------------------------------------- golden files


def test_golden_generator_with_borrowing_chunk_input_and_residual() -> None:
    a = _compare((DATA / "golden-v1.1.tcd").read_bytes())
    assert a["version"] == (1, 1) and a["kind"] == "generator"
    assert (a["source"] >= 0).sum() == 3  # shared codes, one of them cut down to a shorter segment (§4.6)
    assert a["config"]["chunk_input"] and a["config"]["length_input"] and "residual.std" in a["weights"]


def test_golden_random_kind() -> None:
    a = _compare((DATA / "golden-v1.0-random.tcd").read_bytes())
    assert a["kind"] == "random" and a["codes"].shape[0] == 0
    assert a["config"]["activation"] == "gelu" and a["config"]["fourier"] == 0


def test_golden_linear_kind() -> None:
    assert _compare((DATA / "golden-v1.0-linear.tcd").read_bytes())["kind"] == "linear"


# --------------------------------------------------------------------------- what the writer writes


def test_condensed_archive(tmp_path: Path) -> None:
    """A real ``tascond condense --residual`` archive: trained float16 weights, borrowing videos."""
    from conftest import make_tiny_dataset

    data = make_tiny_dataset(tmp_path / "tiny", n_train=4, dim=8)
    out = tmp_path / "c.tcd"
    subprocess.run(
        [sys.executable, "-m", "tascond_cli", "condense", str(data), "-o", str(out), "--ips", "3", "--latent", "4",
         "--hidden", "16", "--steps", "3", "--invert-iters", "5", "--residual", "--device", "cpu", "--seed", "3"],
        check=True, capture_output=True, timeout=120,
    )
    a = _compare(out.read_bytes())
    assert a["kind"] == "generator" and a["source"] is not None and (a["source"] >= 0).any()
    assert a["weights"]["net.0.weight"].dtype == np.float16 and "residual.std" in a["weights"]
    assert a["config"]["chunk_input"] and 0 <= a["config"]["residual_rho"] < 1


# --------------------------------------------------------------------------- in-memory variants


@pytest.mark.parametrize(
    "change",
    [
        {"activation": "relu", "fourier": 0, "length_input": False},
        {"activation": "gelu", "layers": 1, "chunk_input": False, "output": "linear"},
        {"activation": "silu", "layers": 3, "fourier": 4, "length_input": False},
    ],
    ids=["relu-F0", "gelu-1layer-linear-out", "silu-3layers-F4"],
)
def test_network_configurations(change: dict) -> None:
    """Other ``tascond-mlp-v1`` configurations on the 1.1 golden's structure, float32 weights, residual kept
    (with ``output = "linear"`` the residual's clamp at 0 still applies, §6.5)."""
    mg = _make_golden()
    arc = mg.golden_v11_archive()
    cfg = {**arc.decoder_config, **change}
    n_in = (cfg["latent"] + cfg["embed"] + 1 + 2 * cfg["fourier"] + int(cfg["length_input"])
            + 3 * int(cfg["chunk_input"]))
    weights = mg._net_weights(np.random.default_rng(len(str(change))), cfg, n_in, np.float32)
    weights["residual.std"] = arc.decoder_weights["residual.std"]
    arc.decoder_config, arc.decoder_weights = cfg, weights
    _compare(_bytes(arc))


def _constant_network(arc, rho: float):
    """The network's output layer zeroed: ``y = mean`` exactly, so only the residual noise varies."""
    q = 2 * arc.decoder_config["layers"]
    for name in (f"net.{q}.weight", f"net.{q}.bias"):
        arc.decoder_weights[name] = np.zeros_like(arc.decoder_weights[name])
    arc.decoder_weights["mean"] = np.full(arc.decoder_config["dim"], 0.05, dtype=np.float16)
    arc.decoder_weights["residual.std"] = np.linspace(0.0, 1.0, arc.decoder_config["dim"]).astype(np.float16)
    arc.decoder_config["residual_rho"] = rho
    return arc


@pytest.mark.parametrize("rho", [0.6, 0.0, 0.99])
def test_residual_noise_is_exact(rho: float) -> None:
    """§6.5 states the RNG stream and every float32 operation, so the noise matches bit for bit."""
    mg = _make_golden()
    a = _compare(_bytes(_constant_network(mg.golden_v11_archive(), rho)), exact=True)
    x = spec_features(a, 2)
    assert (x == 0).any() and (x > 0.05).any()  # the clamp and the noise both show
    e = ar1_noise(a["settings"]["seed"], 2, 16, x.shape[1], rho)
    if rho:  # the recursion: lag-1 correlation near rho over 16 x 22 samples
        assert abs(np.corrcoef(e[:, 1:].ravel(), e[:, :-1].ravel())[0, 1] - rho) < 0.3


def test_random_kind_with_residual_and_other_seed() -> None:
    mg = _make_golden()
    arc = mg.golden_random_archive()
    arc.settings["seed"] = 123456789012
    arc.decoder_weights["residual.std"] = np.full(8, 0.25, dtype=np.float32)
    arc.decoder_config["residual_rho"] = 0.3
    _compare(_bytes(arc))


def _plain_archive(kind: str):
    from tascond_cli.archive import Archive

    lengths = np.array([5, 1, 7, 3], dtype=np.int64)
    counts = np.array([2, 1, 7, 0]) if kind == "identity" else np.zeros(4, dtype=np.int64)
    rng = np.random.default_rng(0)
    d = 6 if kind == "identity" else 2
    return Archive(
        settings={"method": kind, "dim": 6},
        class_names=["a", "b"],
        video_names=["v0", "v1"],
        video_segments=np.array([0, 2, 4], dtype=np.int64),
        segment_labels=np.array([0, 1, 0, 1], dtype=np.int32),
        segment_lengths=lengths,
        segment_codes=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        codes=rng.standard_normal((int(counts.sum()), d)).astype(np.float16),
        decoder_kind=kind,
        segment_sources=np.array([-1, -1, -1, 0]) if kind == "identity" else None,
    )


@pytest.mark.parametrize("kind", ["identity", "zeros"])
def test_exact_kinds(kind: str) -> None:
    a = _compare(_bytes(_plain_archive(kind)), exact=True)
    if kind == "identity":  # segment 3 (3 frames) reuses segment 0's 2 codes
        x = spec_features(a, 1)
        np.testing.assert_array_equal(x[:, 7:], a["codes"][[0, 1, 1]].astype(np.float32).T)
