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
  input, linear output with a residual), ``rho = 0``, the ``identity`` and ``zeros`` kinds;
- the ``lowrank`` kind (section 6.7, version 1.2): archives made by ``tascond condense`` (its default
  method) and in-memory ones covering ``step`` and ``linear``, int8 codes with ``code_scale``, float codes,
  the residual noise in the ``full`` and ``complement`` spaces, a floor, and shared codes.

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
    return ar1_draw(np.random.default_rng([seed, v, 1]), dim, frames, rho)


def ar1_draw(rng: np.random.Generator, dim: int, frames: int, rho: float) -> np.ndarray:
    """The next ``dim x frames`` standard normals of ``rng`` through the AR(1) recursion of §6.5."""
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


def lowrank_codes(seg_codes: list[np.ndarray], lengths: np.ndarray, interp: str) -> np.ndarray:
    """Per frame of a video, its code ``z_t`` (F, d) float32 (§6.7 step 2)."""
    out = []
    for codes, length in zip(seg_codes, lengths.tolist()):
        n = codes.shape[0]
        t = np.arange(length)
        i = ((t + 1) * n - 1) // length  # the frame's chunk (§5)
        if interp == "step" or n == 1:
            out.append(codes[i])
            continue
        assert interp == "linear", interp
        lo, hi = (lambda k: k * length // n), (lambda k: (k + 1) * length // n)
        j = np.clip(np.where(2 * t >= lo(i) + hi(i) - 1, i, i - 1), 0, n - 2)
        num = 2 * t - (lo(j) + hi(j) - 1)
        den = (lo(j + 1) + hi(j + 1)) - (lo(j) + hi(j))
        w = np.clip(num / den, 0.0, 1.0).astype(np.float32)[:, None]  # float64 division, then float32
        a, b = codes[j], codes[j + 1]
        out.append(a + w * (b - a))
    return np.concatenate(out)


def dct_codes(seg_codes: list[np.ndarray], seg_freqs: list[np.ndarray], lengths: np.ndarray) -> np.ndarray:
    """``interp: "dct"`` (§6.7 step 2, version 1.3): per frame, the sum of its segment's codes times
    their cosines, the cosines in float64 rounded to float32."""
    out = []
    for codes, freqs, length in zip(seg_codes, seg_freqs, lengths.tolist()):
        t = np.arange(length)[:, None]
        psi = np.where(freqs[None, :] == 0, 1.0, math.sqrt(2) * np.cos(math.pi * (2 * t + 1) * freqs[None, :] / (2 * length)))
        out.append(psi.astype(np.float32) @ codes)
    return np.concatenate(out)


def lowrank_features(a: dict, v: int, seg_codes: list[np.ndarray], lengths: np.ndarray) -> np.ndarray:
    """The ``lowrank`` kind (§6.7): scaled codes, interpolated, on the basis; noise; floor."""
    cfg, weights = a["config"], a["weights"]
    assert set(cfg) <= {"code_dim", "interp", "floor", "residual_rho", "residual_space", "residual_basis_rho"}
    assert cfg["code_dim"] == a["codes"].shape[1] and a["version"] >= (1, 2)
    if "code_scale" in weights:  # step 1
        seg_codes = [z * weights["code_scale"].astype(np.float32) for z in seg_codes]
    if cfg["interp"] == "dct":  # step 2, version 1.3
        assert a["version"] >= (1, 3) and a["source"] is None
        offsets = a["code_offsets"]
        segs = range(int(a["segment_offsets"][v]), int(a["segment_offsets"][v + 1]))
        freqs = weights["frequencies"].astype(np.int64)
        seg_freqs = [freqs[int(offsets[s]) : int(offsets[s + 1])] for s in segs]
        z = dct_codes(seg_codes, seg_freqs, lengths)
    else:
        z = lowrank_codes(seg_codes, lengths, cfg["interp"])  # step 2
    comp = weights["components"].astype(np.float32)  # (d, D)
    x = np.ascontiguousarray((z @ comp + weights["mean"].astype(np.float32)).T)  # step 3: (D, T)
    if "residual_rho" in cfg:  # step 4
        dim, total = x.shape
        space = cfg.get("residual_space", "full")
        rng = np.random.default_rng([int(a["settings"].get("seed", 0)), v, 1])
        e = ar1_draw(rng, dim, total, float(cfg["residual_rho"]))
        noise = weights["residual.std"].astype(np.float32)[:, None] * e
        if space in ("complement", "split"):
            noise = noise - comp.T @ (comp @ noise)
        if space == "split":  # version 1.4: then noise along each direction, the next draws of the stream
            assert a["version"] >= (1, 4)
            b = ar1_draw(rng, comp.shape[0], total, float(cfg["residual_basis_rho"]))
            noise = noise + comp.T @ (weights["residual.basis_std"].astype(np.float32)[:, None] * b)
        x = x + noise
    if cfg["floor"] is not None:  # step 5
        x = np.maximum(x, np.float32(cfg["floor"]))
    return x


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
    if kind == "lowrank":
        return lowrank_features(a, v, seg_codes, lengths)
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
        [sys.executable, "-m", "tascond_cli", "condense", str(data), "-o", str(out), "--method", "tascond",
         "--ips", "3", "--latent", "4", "--hidden", "16", "--steps", "3", "--invert-iters", "5", "--residual",
         "--device", "cpu", "--seed", "3"],
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


# --------------------------------------------------------------------------- the lowrank kind (§6.7)


@pytest.mark.parametrize("args", [[], ["--interp", "step", "--noise", "full", "--code-dtype", "float16", "--floor", "auto"]],
                         ids=["defaults", "step-full-float16"])
def test_condensed_lowrank_archive(tmp_path: Path, args: list[str]) -> None:
    """``tascond condense`` (default method ``lowrank``): int8 codes, linear, split noise, no floor (1.4);
    and step, full noise, float16 codes, floor 0 (1.2)."""
    from conftest import make_tiny_dataset
    from typer.testing import CliRunner  # in-process: start-up is most of a subprocess's time

    from tascond_cli.cli import app

    data = make_tiny_dataset(tmp_path / "tiny", n_train=4, dim=8)
    out = tmp_path / "l.tcd"
    result = CliRunner().invoke(app, ["condense", str(data), "-o", str(out), "--code-dim", "3", "--seed", "5", *args])
    assert result.exit_code == 0, result.output
    a = _compare(out.read_bytes())
    assert a["kind"] == "lowrank" and "residual.std" in a["weights"] and a["settings"]["seed"] == 5
    if args:
        assert a["version"] == (1, 2) and a["config"]["floor"] == 0
        assert a["codes"].dtype == np.float16 and a["config"]["interp"] == "step"
        assert "residual_space" not in a["config"] and "code_scale" not in a["weights"]
    else:
        assert a["codes"].dtype == np.int8 and a["config"]["interp"] == "linear"
        assert a["version"] == (1, 4) and a["config"]["floor"] is None and "residual.basis_std" in a["weights"]
        assert a["config"]["residual_space"] == "split" and "code_scale" in a["weights"]


def _lowrank_archive(interp: str, codes: str, residual: str | None, floor, shared: bool):
    """5 segments over 2 videos (1 to 23 frames, 1 code to one per frame); d = 3, D = 6."""
    from tascond_cli.archive import Archive

    rng = np.random.default_rng(len(interp) + 7 * len(codes) + (residual is None))
    lengths = np.array([5, 1, 23, 9, 12], dtype=np.int64)
    counts = np.array([2, 1, 6, 9, 0 if shared else 4])
    values = rng.standard_normal((int(counts.sum()), 3)).astype(np.float32) * 3
    components = np.linalg.qr(rng.standard_normal((6, 3)))[0].T  # orthonormal rows (3, 6)
    weights = {"components": components.astype(np.float16), "mean": rng.standard_normal(6).astype(np.float32)}
    config = {"code_dim": 3, "interp": interp, "floor": floor}
    if codes == "int8":
        scale = (np.abs(values).max(0) / 127).astype(np.float32)
        weights["code_scale"] = scale
        stored = np.rint(values / scale).astype(np.int8)
    else:
        stored = values.astype(codes)
        if codes == "float32":  # a scale is allowed with float codes too
            weights["code_scale"] = np.array([0.5, 1.0, 2.0], np.float32)
    if residual:
        weights["residual.std"] = np.linspace(0.1, 1.0, 6).astype(np.float16)
        config.update(residual_rho=0.7, residual_space=residual)
    if residual == "split":
        weights["residual.basis_std"] = np.array([0.5, 0.0, 2.0], np.float32)
        config["residual_basis_rho"] = 0.3
    return Archive(
        settings={"method": "lowrank", "dim": 6, "seed": 12},
        class_names=["a", "b", "c"],
        video_names=["v0", "v1"],
        video_segments=np.array([0, 3, 5], dtype=np.int64),
        segment_labels=np.array([0, 1, 2, 0, 1], dtype=np.int32),
        segment_lengths=lengths,
        segment_codes=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        codes=stored,
        decoder_kind="lowrank",
        decoder_config=config,
        decoder_weights=weights,
        segment_sources=np.array([-1, -1, -1, -1, 2]) if shared else None,
    )


@pytest.mark.parametrize(
    "interp, codes, residual, floor, shared",
    [
        ("step", "float16", None, None, False),
        ("linear", "float32", None, None, False),
        ("linear", "int8", "full", 0, False),
        ("linear", "int8", "complement", -0.5, True),
        ("step", "int8", "complement", 0.25, False),
        ("linear", "float16", "full", None, True),
        ("linear", "int8", "split", None, True),
        ("step", "float32", "split", 0.0, False),
    ],
    ids=["step-f16", "linear-f32-scaled", "linear-int8-full-floor0", "linear-int8-complement-shared",
         "step-int8-complement-floor", "linear-f16-full-shared", "linear-int8-split-shared", "step-f32-split-floor0"],
)
def test_lowrank_variants(interp: str, codes: str, residual, floor, shared: bool) -> None:
    a = _compare(_bytes(_lowrank_archive(interp, codes, residual, floor, shared)))
    assert a["version"] == ((1, 4) if residual == "split" else (1, 2)) and a["codes"].dtype == np.dtype(codes)
    x = spec_features(a, 1)
    if floor is not None:
        assert x.min() >= np.float32(floor) and (x == np.float32(floor)).any()
    if residual == "complement":  # the noise has no part in the basis
        comp = a["weights"]["components"].astype(np.float32)
        smooth = dict(a, config={k: v for k, v in a["config"].items() if k not in ("residual_rho", "residual_space")},
                      weights={k: v for k, v in a["weights"].items() if k != "residual.std"})
        noisy = dict(a, config={**a["config"], "floor": None})
        smooth["config"]["floor"] = None
        noise = spec_features(noisy, 1) - spec_features(smooth, 1)
        assert np.abs(noise).max() > 0.1 and np.abs(comp @ noise).max() < 1e-2 * np.abs(noise).max()


@pytest.mark.parametrize("codes, residual", [("int8", "complement"), ("float16", None)])
def test_lowrank_dct(codes: str, residual) -> None:
    """Version 1.3: ``interp: "dct"``, each code the amplitude of one cosine of its segment (§6.7)."""
    a = _lowrank_archive("linear", codes, residual, None, False)
    counts = np.diff(a.segment_codes)
    rng = np.random.default_rng(3)
    freqs = np.concatenate([np.sort(np.concatenate([[0], 1 + rng.choice(length - 1, n - 1, replace=False)]))
                            for length, n in zip(a.segment_lengths.tolist(), counts.tolist())])
    a.decoder_config = {**a.decoder_config, "interp": "dct"}
    a.decoder_weights = {**a.decoder_weights, "frequencies": freqs.astype(np.uint16)}
    a = _compare(_bytes(a))
    assert a["version"] == (1, 3) and a["config"]["interp"] == "dct"
