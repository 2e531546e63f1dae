"""The ``lowrank`` codec: the chunk-centre interpolation (docs/format.md 6.7), the ``lowrank`` decoder
kind's rules, the method (fit, quantization, floor, noise), its config, its byte budget and the CLI."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import struct
from fractions import Fraction
from pathlib import Path

import h5py
import numpy as np
import pytest
import zstandard
from typer.testing import CliRunner

from tascond_cli.archive import (
    HEADER_SIZE,
    Archive,
    ArchiveError,
    archive_bytes,
    read_archive,
    read_version,
    validate_archive,
    write_archive,
)
from tascond_cli.archive.decoders import DECODERS
from tascond_cli.archive.decoders.lowrank import BoundLowRank
from tascond_cli.chunks import frame_interpolation
from tascond_cli.cli import app
from tascond_cli.data import feature_bytes, open_dataset
from tascond_cli.methods import METHODS, Config, ConfigError, LowRankConfig, make_baseline
from tascond_cli.methods import lowrank as lowrank_mod
from tascond_cli.methods.budget_lowrank import estimate_lowrank
from tascond_cli.methods.lowrank import codes_per_chunking, fit_codes, quantize
from tascond_cli.restore import ArchiveDecoder

from conftest import make_tiny_dataset
from test_archive import make_archive

runner = CliRunner()
DIM = 8


def make_dataset(root: Path, n_train: int = 4, n_test: int = 1, dim: int = DIM, seed: int = 0,
                 negative: bool = False) -> Path:
    """Conftest's tiny dataset (40-60 frames, 4 classes) with features that are smooth over time plus
    noise; ``negative``: centred, so some values are below 0."""

    def smooth(rng, dim, t):
        phase = rng.uniform(0, 2 * np.pi, size=(dim, 1))
        x = np.sin(np.arange(t)[None, :] / 7.0 + phase) + 0.3 * rng.standard_normal((dim, t))
        return x if negative else np.abs(x)

    return make_tiny_dataset(root, n_train, n_test, dim, seed, features=smooth)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("lowrank") / "data", seed=1)


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("lowrank") / "signed", seed=2, negative=True)


def originals(data: Path, names: list[str]) -> list[np.ndarray]:
    by_name = {v.name: v for v in open_dataset(data).train}
    return [np.asarray(by_name[n].features(), dtype=np.float32) for n in names]


def config(**lowrank) -> Config:
    """The method's config with some ``lowrank`` fields (``code_dtype``/``weight_dtype``: storage)."""
    storage = {f"storage__{k}": lowrank.pop(k) for k in ("code_dtype", "weight_dtype") if k in lowrank}
    return Config().with_(**storage, **{f"lowrank__{k}": v for k, v in lowrank.items()})


EXACT = dict(dim=DIM, stride=1.0, noise="none", floor="none", code_dtype="float32", weight_dtype="float32")
"""Every frame its own code on the full basis, nothing quantized or added: restore is the data."""


# =========================================================================== frame_interpolation


def spec_interpolation(length: int, n: int) -> tuple[list[int], list[int], list[float]]:
    """Per frame of one segment: the two code indices and the weight, as docs/format.md 6.7 words them."""
    lo = lambda k: k * length // n  # noqa: E731  (§5)
    hi = lambda k: (k + 1) * length // n  # noqa: E731
    a, b, w = [], [], []
    for t in range(length):
        if n == 1:
            a.append(0), b.append(0), w.append(0.0)
            continue
        i = ((t + 1) * n - 1) // length
        j = i if 2 * t >= lo(i) + hi(i) - 1 else i - 1
        j = min(max(j, 0), n - 2)
        num, den = 2 * t - (lo(j) + hi(j) - 1), (lo(j + 1) + hi(j + 1)) - (lo(j) + hi(j))
        a.append(j), b.append(j + 1), w.append(min(max(num / den, 0.0), 1.0))
    return a, b, w


def geometric_weights(length: int, n: int) -> list[list[Fraction]]:
    """Per frame, the exact weight of each code: the piecewise-linear curve through the chunk centres
    ``(lo + hi - 1) / 2``, constant before the first and after the last (an independent brute force)."""
    centres = [Fraction(k * length // n + (k + 1) * length // n - 1, 2) for k in range(n)]
    rows = []
    for t in range(length):
        row = [Fraction(0)] * n
        if t <= centres[0]:
            row[0] = Fraction(1)
        elif t >= centres[-1]:
            row[-1] = Fraction(1)
        else:
            k = max(k for k in range(n) if centres[k] <= t)
            w = (t - centres[k]) / (centres[k + 1] - centres[k])
            row[k], row[k + 1] = 1 - w, w
        rows.append(row)
    return rows


def coefficients(row_a, row_b, w, n_rows: int) -> np.ndarray:
    """The (frames, rows) matrix of code weights that ``(row_a, row_b, w)`` describes."""
    out = np.zeros((len(w), n_rows))
    np.add.at(out, (np.arange(len(w)), row_a), 1 - w)
    np.add.at(out, (np.arange(len(w)), row_b), w)
    return out


def test_interpolation_is_the_spec_for_every_small_segment() -> None:
    for length in range(1, 31):
        for n in range(1, length + 1):
            row_a, row_b, w = frame_interpolation([length], [n])
            a, b, ww = spec_interpolation(length, n)
            assert row_a.tolist() == a and row_b.tolist() == b, (length, n)
            assert w.dtype == np.float64 and np.array_equal(w, np.array(ww)), (length, n)
            assert ((w >= 0) & (w <= 1)).all()
            if n == 1:
                assert (row_a == row_b).all() and (w == 0).all()
            exact = np.array([[float(f) for f in r] for r in geometric_weights(length, n)])
            np.testing.assert_allclose(coefficients(row_a, row_b, w, n), exact, rtol=0, atol=1e-15)


def test_interpolation_of_many_segments_is_each_segment_with_its_row_offset() -> None:
    rng = np.random.default_rng(7)
    for _ in range(40):
        lengths = rng.integers(1, 41, size=int(rng.integers(1, 9)))
        counts = np.array([int(rng.integers(1, L + 1)) for L in lengths])
        row_a, row_b, w = frame_interpolation(lengths, counts)
        assert row_a.shape == row_b.shape == w.shape == (int(lengths.sum()),)
        assert ((w >= 0) & (w <= 1)).all() and row_a.dtype.kind == "i"
        starts, rows = np.concatenate([[0], np.cumsum(lengths)]), np.concatenate([[0], np.cumsum(counts)])
        for s, (length, n) in enumerate(zip(lengths.tolist(), counts.tolist())):
            sl = slice(starts[s], starts[s + 1])
            a, b, ww = spec_interpolation(length, n)
            assert (row_a[sl] - rows[s]).tolist() == a and (row_b[sl] - rows[s]).tolist() == b
            assert np.array_equal(w[sl], np.array(ww))


def test_a_piecewise_linear_sequence_through_the_knots_is_reproduced() -> None:
    rng = np.random.default_rng(3)
    for length in range(1, 31):
        for n in range(1, length + 1):
            t = np.arange(length)
            lo, hi = np.arange(n) * length // n, (np.arange(n) + 1) * length // n
            centres = (lo + hi - 1) / 2
            values = rng.standard_normal(n)  # the sequence's value at each knot
            row_a, row_b, w = frame_interpolation([length], [n])
            restored = (1 - w) * values[row_a] + w * values[row_b]
            # the piecewise-linear curve through (centre, value), held flat outside the knots
            np.testing.assert_allclose(restored, np.interp(t, centres, values), rtol=0, atol=1e-12)
            # a straight line sampled at the centres comes back on every frame between them
            line = 0.25 + 1.5 * t
            inside = (t >= centres[0]) & (t <= centres[-1])
            back = (1 - w) * (0.25 + 1.5 * centres[row_a]) + w * (0.25 + 1.5 * centres[row_b])
            np.testing.assert_allclose(back[inside], line[inside], rtol=0, atol=1e-12)


# =========================================================================== the decoder kind


def lowrank_archive(**change) -> Archive:
    """A valid ``lowrank`` archive (test_archive's builder): 3 videos, codes of width 5, 6-d features."""
    a = make_archive("lowrank", dim=6)
    for key, value in change.items():
        setattr(a, key, value)
    return a


def with_int8(a: Archive, residual: str | None = None, floor=0.0) -> Archive:
    """``a`` with int8 codes and their scale, a floor, and optionally a residual model."""
    scale = (np.abs(a.codes.astype(np.float32)).max(0) / 127).astype(np.float32)
    codes = np.rint(a.codes.astype(np.float32) / scale).astype(np.int8)
    weights = {**a.decoder_weights, "code_scale": scale}
    cfg = {**a.decoder_config, "floor": floor}
    if residual:
        weights["residual.std"] = np.linspace(0, 0.5, a.dim).astype(np.float16)
        cfg.update(residual_rho=0.4, residual_space=residual)
    return dataclasses.replace(a, codes=codes, decoder_weights=weights, decoder_config=cfg)


def with_split(a: Archive, **change) -> Archive:
    """``a`` with int8 codes and a ``"split"`` residual model (noise outside the basis and along it)."""
    b = with_int8(a, "split")
    weights = {**b.decoder_weights, "residual.basis_std": np.linspace(0.1, 0.3, a.code_dim).astype(np.float16)}
    cfg = {**b.decoder_config, "residual_basis_rho": 0.2}
    for key, value in change.items():
        target = weights if key.startswith("residual.") else cfg
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return dataclasses.replace(b, decoder_weights=weights, decoder_config=cfg)


def refused(a: Archive, *fragments: str) -> str:
    with pytest.raises(ArchiveError) as info:
        validate_archive(a)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def changed_config(**change) -> Archive:
    a = lowrank_archive()
    a.decoder_config = {**a.decoder_config, **change}
    return a


def changed_weights(drop=(), **change) -> Archive:
    a = lowrank_archive()
    a.decoder_weights = {k: v for k, v in {**a.decoder_weights, **change}.items() if k not in drop}
    return a


def test_the_kind_takes_int8_codes_and_the_other_kinds_do_not() -> None:
    assert DECODERS["lowrank"].code_dtypes == ("float16", "float32", "int8")
    for name, kind in DECODERS.items():
        if name != "lowrank":
            assert "int8" not in kind.code_dtypes
    identity = make_archive("identity")
    identity.codes = identity.codes.astype(np.int8)
    refused(identity, "/codes: dtype must be float16 or float32 for decoder kind 'identity', not int8")
    a = lowrank_archive()
    a.codes = a.codes.astype(np.float64)
    refused(a, "/codes: dtype must be", "for decoder kind 'lowrank', not float64")


@pytest.mark.parametrize(
    "make, fragments",
    [
        (lambda: changed_config(bogus=1), ("/decoder/config", "unknown key 'bogus'")),
        (lambda: changed_config(code_dim=6), ("/decoder/config", "code_dim must be the codes' width 5")),
        (lambda: changed_config(code_dim=5.0), ("/decoder/config", "code_dim")),
        (lambda: changed_config(code_dim=True), ("/decoder/config", "code_dim")),
        (lambda: changed_config(interp="cubic"), ("/decoder/config", "interp must be one of step, linear")),
        (lambda: changed_config(interp=None), ("/decoder/config", "interp")),
        (lambda: changed_config(floor=float("nan")), ("/decoder/config",)),
        (lambda: changed_config(floor=float("inf")), ("/decoder/config",)),
        (lambda: changed_config(floor=10**400), ("/decoder/config", "floor must be a number within float32's range or null")),
        (lambda: changed_config(floor="0"), ("/decoder/config", "floor must be a number within float32's range or null")),
        (lambda: changed_config(floor=True), ("/decoder/config", "floor must be a number within float32's range or null")),
        (lambda: changed_config(residual_space="complement"), ("/decoder/config", "residual_space needs")),
        (lambda: changed_config(residual_space="half", residual_rho=0.5), ("/decoder/config", "residual_space")),
        (lambda: changed_weights(drop=("mean",)), ("/decoder/weights", "needs 'components' and 'mean'")),
        (lambda: changed_weights(drop=("components",)), ("/decoder/weights", "needs 'components' and 'mean'")),
        (lambda: changed_weights(bias=np.zeros(6, np.float32)), ("/decoder/weights", "'bias'")),
        (lambda: changed_weights(components=np.zeros((5, 7), np.float32)),
         ("/decoder/weights/components", "shape (5, 7), expected (5, 6)")),
        (lambda: changed_weights(components=np.zeros((4, 6), np.float32)), ("/decoder/weights/components", "shape")),
        (lambda: changed_weights(mean=np.zeros((1, 6), np.float32)), ("/decoder/weights/mean", "shape")),
        (lambda: changed_weights(code_scale=np.ones(6, np.float32)), ("/decoder/weights/code_scale", "shape")),
        (lambda: changed_weights(mean=np.full(6, np.nan, np.float32)), ("/decoder/weights/mean", "finite")),
        (lambda: changed_weights(components=np.full((5, 6), np.inf, np.float16)),
         ("/decoder/weights/components", "finite")),
        (lambda: changed_weights(code_scale=np.array([1, 1, np.inf, 1, 1], np.float32)),
         ("/decoder/weights/code_scale", "finite")),
        (lambda: changed_weights(mean=np.zeros(6, np.int32)), ("/decoder/weights/mean", "float16 or float32")),
        (lambda: dataclasses.replace(with_int8(lowrank_archive()), decoder_weights=lowrank_archive().decoder_weights),
         ("/decoder/weights", "int8 codes need the weight 'code_scale'")),
        (lambda: changed_weights(**{"residual.std": np.ones(6, np.float32)}), ("/decoder", "residual_rho")),
        (lambda: changed_config(residual_rho=0.5), ("/decoder", "residual.std")),
        (lambda: dataclasses.replace(with_int8(lowrank_archive(), "full"),
                                     decoder_config={**with_int8(lowrank_archive(), "full").decoder_config,
                                                     "residual_rho": 1.0}),
         ("/decoder/config", "residual_rho")),
        (lambda: changed_config(floor=1e300), ("/decoder/config", "floor must be a number within float32's range")),
        (lambda: dataclasses.replace(with_int8(lowrank_archive(), "full"),
                                     settings={**lowrank_archive().settings, "seed": -1}),
         ("/settings", "seed must be an integer >= 0")),
        (lambda: dataclasses.replace(with_int8(lowrank_archive(), "full"),
                                     settings={**lowrank_archive().settings, "seed": 1.5}),
         ("/settings", "seed must be an integer >= 0")),
        (lambda: with_split(lowrank_archive(), residual_basis_rho=None), ("/decoder/config", "needs residual_basis_rho")),
        (lambda: with_split(lowrank_archive(), **{"residual.basis_std": None}), ("/decoder/config", "split")),
        (lambda: with_split(lowrank_archive(), residual_space="complement"),
         ("/decoder/config", "only with residual_space \"split\"")),
        (lambda: with_split(lowrank_archive(), **{"residual.basis_std": np.ones(6, np.float32)}),
         ("/decoder/weights/residual.basis_std", "must be 5 floats")),
        (lambda: with_split(lowrank_archive(), **{"residual.basis_std": -np.ones(5, np.float32)}),
         ("/decoder/weights/residual.basis_std", ">= 0")),
        (lambda: with_split(lowrank_archive(), **{"residual.basis_std": np.full(5, np.nan, np.float32)}),
         ("/decoder/weights/residual.basis_std", "finite")),
        (lambda: with_split(lowrank_archive(), residual_basis_rho=1.0), ("/decoder/config", "residual_basis_rho")),
        (lambda: with_split(lowrank_archive(), residual_basis_rho=True), ("/decoder/config", "residual_basis_rho")),
    ],
    ids=["unknown-key", "code-dim", "code-dim-float", "code-dim-bool", "interp", "interp-missing", "floor-nan",
         "floor-inf", "floor-huge", "floor-string", "floor-bool", "space-without-rho", "space-bad", "no-mean",
         "no-components", "extra-weight", "components-shape", "components-rows", "mean-shape", "scale-shape",
         "mean-nan", "components-inf", "scale-inf", "mean-int", "int8-no-scale", "std-without-rho",
         "rho-without-std", "rho-one", "floor-beyond-float32", "seed-negative", "seed-float", "split-no-rho",
         "split-no-std", "basis-without-split", "basis-shape", "basis-negative", "basis-nan", "basis-rho-one",
         "basis-rho-bool"],
)
def test_every_rule_of_the_kind_is_checked(make, fragments) -> None:
    refused(make(), *fragments)
    with pytest.raises(ArchiveError, match="^cannot write archive: "):  # the writer refuses it too
        archive_bytes(make())


def test_the_reader_checks_the_kind_in_the_file() -> None:
    """The rules hold on read: a valid file edited with h5py is refused in one line."""
    good = archive_bytes(with_int8(lowrank_archive()))

    def edited(edit) -> bytes:
        bio = io.BytesIO(zstandard.ZstdDecompressor().decompress(good[HEADER_SIZE:]))
        with h5py.File(bio, "r+") as f:
            edit(f)
        payload = bio.getvalue()
        frame = zstandard.ZstdCompressor(level=3, write_checksum=True, write_content_size=True).compress(payload)
        return good[:8] + struct.pack("<HHQQ", 1, 2, len(payload), len(frame)) + frame

    def drop_scale(f):
        del f["decoder/weights/code_scale"]

    def bad_config(f):
        del f["decoder/config"]
        f.create_dataset("decoder/config", data=json.dumps({"code_dim": 5, "interp": "cubic", "floor": 0}),
                         dtype=h5py.string_dtype())

    for edit, fragment in [(drop_scale, "int8 codes need the weight 'code_scale'"), (bad_config, "interp")]:
        with pytest.raises(ArchiveError) as info:
            read_archive(edited(edit))
        assert "\n" not in str(info.value) and fragment in str(info.value)
    assert read_archive(edited(lambda f: None)) == read_archive(good)


@pytest.mark.parametrize("variant", ["float16", "int8-complement", "int8-full"])
def test_a_valid_archive_round_trips_as_version_1_2(variant: str, tmp_path: Path) -> None:
    a = lowrank_archive()
    if variant != "float16":
        a = with_int8(a, variant.split("-")[1], floor=-0.25)
    path = tmp_path / "a.tcd"
    write_archive(a, path)
    assert read_version(path) == a.version == (1, 2)
    data = path.read_bytes()
    assert struct.unpack("<HH", data[8:12]) == (1, 2)
    with h5py.File(io.BytesIO(zstandard.ZstdDecompressor().decompress(data[HEADER_SIZE:])), "r") as f:
        assert f.attrs["format_version"] in ("1.2", b"1.2")
    back = read_archive(path)
    assert back == a and back.codes.dtype == a.codes.dtype
    assert archive_bytes(back) == data
    x, y = ArchiveDecoder(validate_archive(a)), ArchiveDecoder(back)
    for i in range(a.num_videos):
        assert np.array_equal(x.features(i), y.features(i))


def test_decoding_scales_int8_codes_and_leaves_the_archive_alone() -> None:
    """``smooth`` is the codes times their scale, interpolated, on the basis; decoding twice changes nothing
    (also with float32 codes and a scale, where the codes are a view of the archive's)."""
    for a in (with_int8(lowrank_archive()), lowrank_archive(codes=lowrank_archive().codes.astype(np.float32))):
        a.decoder_weights = {**a.decoder_weights, "code_scale": np.linspace(0.5, 2, 5).astype(np.float32)}
        a = validate_archive(a)
        before = a.codes.copy()
        bound = BoundLowRank(a)
        entry = a.video(2)
        z = entry.codes.astype(np.float32) * a.decoder_weights["code_scale"]
        row_a, row_b, w = frame_interpolation(entry.lengths, entry.code_counts)
        w32 = w.astype(np.float32)[:, None]
        frames = z[row_a] + w32 * (z[row_b] - z[row_a])
        expected = (frames @ a.decoder_weights["components"].astype(np.float32)
                    + a.decoder_weights["mean"].astype(np.float32)).T
        first = bound.smooth(2)
        np.testing.assert_allclose(first, expected, rtol=1e-6, atol=1e-6)
        assert np.array_equal(bound.smooth(2), first) and np.array_equal(bound.features(2), bound.features(2))
        assert np.array_equal(a.codes, before)


# =========================================================================== the method


def test_codes_per_chunking_rule() -> None:
    lengths = np.array([1, 2, 3, 4, 5, 6, 7, 10, 14, 18, 100, 2**31 - 1], dtype=np.int64)
    for stride in (1, 1.5, 2, 4, 4.5, 7, 1000):
        counts = codes_per_chunking(lengths, stride)
        assert counts.dtype == np.int64
        # round half to even, as Python's round and numpy's rint
        assert counts.tolist() == [max(1, min(L, round(L / stride))) for L in lengths.tolist()], stride
    assert codes_per_chunking(lengths, 1).tolist() == lengths.tolist()
    assert codes_per_chunking([6, 10], 4).tolist() == [2, 2]  # 1.5 -> 2, 2.5 -> 2


@pytest.mark.parametrize("interp", ["linear", "step"])
def test_fit_codes_is_the_least_squares_optimum(interp: str) -> None:
    rng = np.random.default_rng(11)
    lengths = np.array([1, 2, 9, 17, 4, 30], dtype=np.int64)
    counts = np.array([1, 2, 3, 17, 1, 8], dtype=np.int64)
    z = rng.standard_normal((int(lengths.sum()), 3))
    codes = fit_codes(z, lengths, counts, interp)
    assert codes.shape == (int(counts.sum()), 3)
    if interp == "linear":
        row_a, row_b, w = frame_interpolation(lengths, counts)
        basis = coefficients(row_a, row_b, w, int(counts.sum()))
    else:
        from tascond_cli.chunks import frame_code_index

        basis = np.eye(int(counts.sum()))[frame_code_index(lengths, counts)]
    best = np.linalg.lstsq(basis, z, rcond=None)[0]
    np.testing.assert_allclose(codes, best, rtol=1e-6, atol=1e-7)
    residual = np.square(basis @ codes - z).sum()
    for _ in range(5):  # and nothing nearby does better
        assert np.square(basis @ (codes + 1e-3 * rng.standard_normal(codes.shape)) - z).sum() > residual


@pytest.mark.parametrize("interp", ["linear", "step"])
def test_one_code_per_frame_on_the_full_basis_restores_the_frames(data, interp: str) -> None:
    result = make_baseline("lowrank", data, config(interp=interp, **EXACT))
    a = result.archive
    assert a.decoder_kind == "lowrank" and a.codes.dtype == np.float32 and a.code_dim == DIM
    assert a.decoder_config == {"code_dim": DIM, "interp": interp, "floor": None}
    assert a.num_codes == a.total_frames
    decoder = ArchiveDecoder(a)
    for i, real in enumerate(originals(data, decoder.names)):
        np.testing.assert_allclose(decoder.features(i), real, rtol=1e-5, atol=1e-5)
    assert a.settings["reconstruction_error"] < 1e-9
    assert a.settings["lowrank"] == {**dataclasses.asdict(Config().lowrank), "interp": interp, "dim": DIM,
                                     "stride": 1.0, "noise": "none", "floor": "none"}


def test_codes_error_leaves_out_the_noise_restore_adds(data) -> None:
    """``reconstruction_error`` measures what restore gives (noise included); ``codes_error`` the codes
    alone, recomputed here from ``smooth``. Without noise or floor the two are the same number."""
    noisy = make_baseline("lowrank", data)
    assert math.isfinite(noisy.codes_error) and noisy.codes_error < noisy.error
    assert noisy.archive.settings["codes_error"] == round(noisy.codes_error, 6)
    decoder = BoundLowRank(noisy.archive)
    real = [np.asarray(x, dtype=np.float64) for x in originals(data, noisy.archive.video_names)]
    every = np.concatenate(real, axis=1)
    variance = np.square(every - every.mean(1, keepdims=True)).sum()
    sse = sum(np.square(x - decoder.smooth(i)).sum() for i, x in enumerate(real))
    assert noisy.codes_error == pytest.approx(sse / variance, rel=1e-9)
    sse = sum(np.square(x - decoder.features(i)).sum() for i, x in enumerate(real))  # restore as it runs alone
    assert noisy.error == pytest.approx(sse / variance, rel=1e-9)
    quiet = make_baseline("lowrank", data, config(noise="none"))
    assert quiet.codes_error == pytest.approx(quiet.error, rel=1e-12)
    assert math.isnan(make_baseline("mean", data).codes_error)
    assert "codes_error" not in make_baseline("mean", data).archive.settings


def test_the_error_is_the_same_summed_over_blocks_of_frames(data, monkeypatch) -> None:
    """reconstruction_error compares ERROR_BLOCK frames at a time: the same fractions as one block per video."""
    from tascond_cli.methods import _features

    archive = make_baseline("lowrank", data).archive
    videos = open_dataset(data, parts=("train",)).train
    by_name = {v.name: v for v in videos}
    kept = [by_name[n] for n in archive.video_names]
    whole = _features.reconstruction_error(archive, kept)
    monkeypatch.setattr(_features, "ERROR_BLOCK", 7)
    blocked = _features.reconstruction_error(archive, kept)
    assert blocked[1] == whole[1] and max(v.num_frames for v in kept) > 7
    assert blocked[0] == pytest.approx(whole[0], rel=1e-12) and blocked[2] == pytest.approx(whole[2], rel=1e-12)


def test_the_scatter_matrix_on_torch_is_numpy_s_up_to_rounding(data) -> None:
    """On a GPU ``lowrank`` and ``pca`` sum the scatter matrix with torch on the device; here the same code
    runs on the CPU's torch and must give numpy's sums up to float64 summation order."""
    import torch

    from tascond_cli.methods.pca import scatter_sums

    videos = open_dataset(data, parts=("train",)).train
    dim = int(videos[0].features().shape[0])
    calls: list[tuple] = []
    s1, s2, n = scatter_sums(videos, dim, lambda *a: calls.append(a), torch.device("cpu"), on_torch=False)
    t1, t2, m = scatter_sums(videos, dim, lambda *a: None, torch.device("cpu"), on_torch=True)
    assert isinstance(t2, np.ndarray) and t2.dtype == np.float64 and t2.shape == s2.shape == (dim, dim)
    assert n == m == sum(v.num_frames for v in videos) and len(calls) == len(videos)
    np.testing.assert_array_equal(t1, s1)
    np.testing.assert_allclose(t2, s2, rtol=1e-12, atol=1e-9 * np.abs(s2).max())


def test_same_data_same_archive_bytes(data) -> None:
    first = archive_bytes(make_baseline("lowrank", data).archive)
    assert first == archive_bytes(make_baseline("lowrank", data).archive)
    other = archive_bytes(make_baseline("lowrank", data, config(stride=2.0)).archive)
    assert other != first


def test_the_defaults(data) -> None:
    method = METHODS["lowrank"]
    assert (method.default_ratio, method.default_code_dtype, method.decoder_kind) == (1, "int8", "lowrank")
    assert method.code_dtypes == ("int8", "float16", "float32") and not method.needs_generator
    a = make_baseline("lowrank", data).archive
    assert a.version == (1, 4) and a.codes.dtype == np.int8 and a.num_videos == 4  # every training video
    cfg = a.decoder_config
    assert cfg["interp"] == "linear" and cfg["floor"] is None and cfg["residual_space"] == "split"
    assert 0 <= cfg["residual_rho"] <= 0.99 and 0 <= cfg["residual_basis_rho"] <= 0.99
    assert set(a.decoder_weights) == {"components", "mean", "code_scale", "residual.std", "residual.basis_std"}
    assert a.code_dim == DIM  # min(lowrank.dim, D)
    assert a.settings["method"] == "lowrank" and a.settings["code_dtype"] == "int8"
    comp = a.decoder_weights["components"].astype(np.float64)  # orthonormal, largest entry positive
    np.testing.assert_allclose(comp @ comp.T, np.eye(DIM), atol=2e-3)
    assert (comp[np.arange(DIM), np.abs(comp).argmax(1)] > 0).all()
    counts = np.diff(a.segment_codes)
    assert np.array_equal(counts, codes_per_chunking(a.segment_lengths, LowRankConfig().stride))


def test_int8_quantization_error_is_at_most_half_a_step(data) -> None:
    plain = make_baseline("lowrank", data, config(noise="none", code_dtype="float32")).archive
    small = make_baseline("lowrank", data, config(noise="none", code_dtype="int8")).archive
    assert small.codes.dtype == np.int8 and plain.codes.dtype == np.float32
    exact = plain.codes.astype(np.float64)
    scale = small.decoder_weights["code_scale"]
    assert scale.dtype == np.float32 and scale.shape == (small.code_dim,) and (scale > 0).all()
    assert (np.abs(small.codes.astype(np.int64)) <= 127).all()
    assert (scale >= np.abs(exact).max(0) / 127 * (1 - 1e-6)).all()  # nothing clipped
    back = small.codes.astype(np.float64) * scale.astype(np.float64)
    assert (np.abs(back - exact) <= scale / 2 * (1 + 1e-5) + 1e-12).all()
    codes, again = quantize(plain.codes, Config().lowrank.step)
    assert np.array_equal(codes, small.codes) and np.array_equal(again, scale)
    # the restore differs from the float codes' restore by the quantization alone: small
    x, y = ArchiveDecoder(small), ArchiveDecoder(plain)
    worst = max(float(np.abs(x.features(i) - y.features(i)).max()) for i in range(len(x)))
    assert 0 < worst <= float(np.abs(scale).sum()) / 2 * 1.01


def test_quantize_corner_cases() -> None:
    codes, scale = quantize(np.zeros((0, 3), np.float32), 0.25)
    assert codes.shape == (0, 3) and codes.dtype == np.int8 and np.array_equal(scale, np.ones(3, np.float32))
    values = np.zeros((2001, 3), np.float32)
    values[:, 2] = np.random.default_rng(0).standard_normal(2001)
    values[7, 1] = -254.0  # one outlier: its peak / 127 is above a quarter of the dimension's std
    codes, scale = quantize(values, 0.25)
    assert scale[0] == 1.0 and not codes[:, 0].any()  # an all-zero dimension
    assert scale[1] == np.float32(2.0) and codes[7, 1] == -127  # the peak sets the scale: nothing clipped
    assert scale[2] == pytest.approx(0.25 * values[:, 2].astype(np.float64).std(), rel=1e-6)  # the step does
    assert (np.abs(codes.astype(np.float32) * scale - values) <= scale / 2 * (1 + 1e-6)).all()


def test_floor_auto_follows_the_sign_of_the_training_features(data, signed) -> None:
    assert make_baseline("lowrank", data).archive.decoder_config["floor"] is None  # the default: no clamp
    non_negative = make_baseline("lowrank", data, config(floor="auto")).archive
    assert non_negative.decoder_config["floor"] == 0
    decoder = ArchiveDecoder(non_negative)
    assert min(float(decoder.features(i).min()) for i in range(len(decoder))) >= 0
    free = make_baseline("lowrank", signed, config(floor="auto")).archive
    assert free.decoder_config["floor"] is None
    decoder = ArchiveDecoder(free)
    assert min(float(decoder.features(i).min()) for i in range(len(decoder))) < 0
    assert make_baseline("lowrank", signed, config(floor="zero")).archive.decoder_config["floor"] == 0
    assert make_baseline("lowrank", data, config(floor="none")).archive.decoder_config["floor"] is None


@pytest.mark.parametrize("weight_dtype, tol", [("float32", 1e-5), ("float16", 2e-2)])
def test_complement_noise_is_orthogonal_to_the_basis(signed, weight_dtype: str, tol: float) -> None:
    a = make_baseline("lowrank", signed, config(dim=3, noise="complement", weight_dtype=weight_dtype)).archive
    assert a.decoder_config["floor"] is None and a.decoder_config["residual_space"] == "complement"
    std = a.decoder_weights["residual.std"]
    assert std.shape == (DIM,) and (std > 0).all() and 0 <= a.decoder_config["residual_rho"] <= 0.99
    bound = BoundLowRank(a)
    comp = bound.components
    for i in range(a.num_videos):
        noise = bound.features(i) - bound.smooth(i)
        assert np.abs(noise).max() > 0.05
        assert np.abs(comp @ noise).max() <= tol * np.abs(noise).max(), i
        assert not np.array_equal(bound.features(i, draw=1), bound.features(i))  # another draw
        assert np.array_equal(bound.features(i), bound.features(i))
    full = make_baseline("lowrank", signed, config(dim=3, noise="full", weight_dtype=weight_dtype)).archive
    assert "residual_space" not in full.decoder_config
    bound = BoundLowRank(full)
    noise = bound.features(0) - bound.smooth(0)
    assert np.abs(bound.components @ noise).max() > 0.1 * np.abs(noise).max()  # full: in the basis too
    assert set(make_baseline("lowrank", signed, config(noise="none")).archive.decoder_weights) == {
        "components", "mean", "code_scale"}


def test_the_noise_model_measures_what_the_codes_miss(signed) -> None:
    """Complement noise: ``residual.std`` is the per-channel RMS of the data less its smooth restore, off the
    basis, measured after quantization; ``rho`` its lag-1 correlation."""
    a = make_baseline("lowrank", signed, config(dim=3)).archive
    bound = BoundLowRank(a)
    comp = bound.components.astype(np.float64)
    parts = []
    for i, real in enumerate(originals(signed, a.video_names)):
        r = real.astype(np.float64) - bound.smooth(i)
        parts.append(r - comp.T @ (comp @ r))
    sq = sum(np.square(p).sum(1) for p in parts) / sum(p.shape[1] for p in parts)
    np.testing.assert_allclose(a.decoder_weights["residual.std"].astype(np.float64), np.sqrt(sq), rtol=2e-3)
    lag = sum(float((p[:, 1:] * p[:, :-1]).sum()) for p in parts)
    norm = sum(float(np.square(p[:, :-1]).sum()) for p in parts)
    assert a.decoder_config["residual_rho"] == pytest.approx(min(max(lag / norm, 0), 0.99), abs=1e-6)


def test_split_noise_is_sized_along_each_direction_of_the_basis(signed) -> None:
    """``noise="split"``: the complement noise as ``"complement"``, plus noise along each kept direction whose
    size is the RMS of what the codes miss along it (measured after quantization), from the same stream."""
    a = make_baseline("lowrank", signed, config(dim=3, noise="split", weight_dtype="float32")).archive
    cfg = a.decoder_config
    assert cfg["residual_space"] == "split" and 0 <= cfg["residual_basis_rho"] <= 0.99
    complement = make_baseline("lowrank", signed, config(dim=3, noise="complement", weight_dtype="float32")).archive
    np.testing.assert_array_equal(a.decoder_weights["residual.std"], complement.decoder_weights["residual.std"])
    bound = BoundLowRank(a)
    comp = bound.components.astype(np.float64)
    missed = [comp @ (real.astype(np.float64) - bound.smooth(i))
              for i, real in enumerate(originals(signed, a.video_names))]
    rms = np.sqrt(sum(np.square(z).sum(1) for z in missed) / sum(z.shape[1] for z in missed))
    np.testing.assert_allclose(a.decoder_weights["residual.basis_std"], rms, rtol=1e-4)
    inside = np.concatenate([comp @ (bound.features(i) - bound.smooth(i)) for i in range(a.num_videos)], axis=1)
    ratio = inside.std(axis=1) / rms
    assert (ratio > 0.6).all() and (ratio < 1.5).all(), ratio  # drawn at the measured size
    plain = BoundLowRank(complement)
    outside = bound.features(0) - bound.smooth(0)
    outside -= bound.components.T @ (bound.components @ outside)
    np.testing.assert_allclose(outside, plain.features(0) - plain.smooth(0), atol=1e-4)  # same draw outside
    assert np.array_equal(bound.features(1), bound.features(1))


# =========================================================================== the config


@pytest.mark.parametrize(
    "field, value",
    [("dim", 0), ("dim", 2.5), ("dim", True), ("stride", 0.5), ("stride", float("nan")), ("stride", float("inf")),
     ("stride", "4"), ("stride", True), ("interp", "cubic"), ("floor", "always"), ("floor", None), ("noise", "pink"),
     ("step", 0), ("step", 1.5)],
)
def test_bad_lowrank_fields_name_the_field(field: str, value) -> None:
    with pytest.raises(ConfigError) as info:
        Config().with_(**{f"lowrank__{field}": value}).check()
    assert info.value.field == f"lowrank.{field}" and str(info.value).startswith(f"lowrank.{field}")
    assert "--" not in str(info.value)


def test_int8_codes_are_the_lowrank_method_s_alone() -> None:
    int8 = Config().with_(storage__code_dtype="int8")
    assert int8.check().for_method(METHODS["lowrank"]).storage.code_dtype == "int8"
    for name in ("mean", "pca", "fp16", "tascond"):
        with pytest.raises(ConfigError) as info:
            int8.for_method(METHODS[name])
        assert info.value.field == "storage.code_dtype" and "int8" in str(info.value)
    with pytest.raises(ConfigError, match="^storage.weight_dtype"):
        Config().with_(storage__weight_dtype="int8").check()
    assert Config().for_method(METHODS["lowrank"]).storage.code_dtype == "int8"
    assert Config().for_method(METHODS["mean"]).storage.code_dtype == "float32"


# =========================================================================== the byte budget


@pytest.mark.parametrize("stride, dim, code_dtype, noise", [
    (1.0, 8, "float32", "complement"), (4.0, 3, "int8", "complement"), (2.5, 5, "float16", "none"),
    (16.0, 1, "int8", "full"),
])
def test_estimate_is_an_upper_bound(data, stride, dim, code_dtype, noise) -> None:
    cfg = config(stride=stride, dim=dim, code_dtype=code_dtype, noise=noise).for_method(METHODS["lowrank"])
    a = make_baseline("lowrank", data, cfg).archive
    est = estimate_lowrank(data, cfg)
    assert len(archive_bytes(a)) <= est["total"]
    if code_dtype == "int8":  # counted at their estimated compressed size: at most a byte each
        assert 0 < est["codes"] <= a.codes.nbytes
    else:  # the same codes, counted from the labels alone
        assert est["codes"] == a.codes.nbytes
    assert est["decoder"] >= sum(w.nbytes for w in a.decoder_weights.values())
    assert est["kept_videos"] == a.num_videos


def test_estimate_bounds_int8_codes_where_they_dominate(wide) -> None:
    """int8 codes are counted at their estimated compressed size (not a byte each); on 100 KB of them the
    archive still stays under the estimate."""
    cfg = config(stride=1.0, dim=64, code_dtype="int8").for_method(METHODS["lowrank"])
    a = make_baseline("lowrank", wide, cfg).archive
    est = estimate_lowrank(wide, cfg)
    assert a.codes.nbytes > 90_000 and est["codes"] < a.codes.nbytes
    assert len(archive_bytes(a)) <= est["total"]


# =========================================================================== the command


def test_cli_condense_defaults_to_lowrank(data, tmp_path) -> None:
    out = tmp_path / "x.tcd"
    r = runner.invoke(app, ["condense", str(data), "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["method"] == "lowrank" and report["format_version"] == "1.4" and report["code_dtype"] == "int8"
    assert report["bytes"] == out.stat().st_size and read_version(out) == (1, 4)
    info = runner.invoke(app, ["info", str(out), "--json"])
    assert info.exit_code == 0, info.output
    facts = json.loads(info.stdout)
    assert facts["method"] == "lowrank" and facts["format_version"] == "1.4" and facts["decoder"] == "lowrank"
    text = runner.invoke(app, ["info", str(out)])
    assert text.exit_code == 0 and "format 1.4, method lowrank" in text.output
    # its options reach the archive
    other = tmp_path / "y.tcd"
    r = runner.invoke(app, ["condense", str(data), "-o", str(other), "--code-dim", "3", "--stride", "2",
                            "--interp", "step", "--floor", "none", "--noise", "none", "--code-dtype", "float16"])
    assert r.exit_code == 0, r.output
    a = read_archive(other)
    assert a.code_dim == 3 and a.codes.dtype == np.float16
    assert a.decoder_config == {"code_dim": 3, "interp": "step", "floor": None}
    assert np.array_equal(np.diff(a.segment_codes), codes_per_chunking(a.segment_lengths, 2.0))


def test_cli_condense_method_tascond(tmp_path) -> None:
    data = make_tiny_dataset(tmp_path / "data", n_train=2, n_test=1, dim=4, seed=2)
    out = tmp_path / "t.tcd"
    r = runner.invoke(app, ["condense", str(data), "-o", str(out), "--method", "tascond", "--steps", "5",
                            "--invert-iters", "1", "--hidden", "8", "--latent", "2", "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["method"] == "tascond" and report["decoder"] == "generator" and report["format_version"] != "1.2"


@pytest.mark.parametrize("method, args, flag, owner", [
    ("lowrank", ["--steps", "5"], "--steps", "tascond"),
    ("lowrank", ["--ratio", "0.5"], "--ratio", "tascond"),
    ("lowrank", ["--invert-iters", "3"], "--invert-iters", "tascond"),
    ("lowrank", ["--residual"], "--residual", "tascond"),
    ("tascond", ["--stride", "2"], "--stride", "lowrank"),
    ("tascond", ["--code-dim", "4"], "--code-dim", "lowrank"),
])
def test_cli_an_option_of_the_other_method_is_an_error(data, tmp_path, method, args, flag, owner) -> None:
    out = tmp_path / "x.tcd"
    given = [] if method == "lowrank" else ["--method", method]
    r = runner.invoke(app, ["condense", str(data), "-o", str(out), *given, *args])
    assert r.exit_code == 1
    assert r.stderr == f"error: {flag} applies to --method {owner}, not {method}\n"
    assert "Traceback" not in r.output and not out.exists()


def test_cli_bad_lowrank_values_are_one_line(data, tmp_path) -> None:
    out = tmp_path / "x.tcd"
    for args, fragment in [(["--interp", "cubic"], "--interp"), (["--noise", "pink"], "--noise"),
                           (["--floor", "always"], "--floor"), (["-m", "tascond", "--code-dtype", "int8"], "int8"),
                           (["--code-dtype", "int4"], "--code-dtype")]:
        r = runner.invoke(app, ["condense", str(data), "-o", str(out), *args])
        assert r.exit_code == 1 and r.stderr.count("\n") == 1 and fragment in r.stderr, (args, r.output)
        assert "Traceback" not in r.output and not out.exists()


def test_cli_a_missing_gpu_is_one_line_for_the_default_method_too(data, tmp_path) -> None:
    """``lowrank`` sums its scatter matrix on ``--device``: one that is not there is an error, as for the
    generator methods, not silently the CPU."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "x.tcd"
    r = runner.invoke(app, ["condense", str(data), "-o", str(out), "--device", "cuda"])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "CUDA is not available" in r.stderr, r.output
    assert "Traceback" not in r.output and not out.exists()


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    """1.6 MB of 256-d training features: a 50x budget (32 KB) is above the archive's fixed overhead."""
    return make_tiny_dataset(tmp_path_factory.mktemp("wide") / "data", n_train=32, n_test=1, dim=256, seed=4)


def test_cli_budget_fits(wide, tmp_path) -> None:
    out = tmp_path / "b.tcd"
    r = runner.invoke(app, ["condense", str(wide), "-o", str(out), "--budget", "50x", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    b = report["budget"]
    assert b["spec"] == "50x" and b["bytes"] == feature_bytes(open_dataset(wide).train) // 50
    assert out.stat().st_size == report["bytes"] <= b["estimate"] <= b["bytes"]
    assert set(b["chose"]) == {"kept_videos", "stride", "dim", "code_dtype"} and b["fixed"] == []
    a = read_archive(out)
    assert a.settings["budget"] == b and a.code_dim == b["chose"]["dim"] < 64  # narrowed to fit
    assert a.settings["lowrank"]["stride"] == b["chose"]["stride"]
    # a fixed stride stays fixed
    r = runner.invoke(app, ["condense", str(wide), "-o", str(tmp_path / "c.tcd"), "--budget", "50x", "--stride", "8",
                            "--json"])
    assert r.exit_code == 0, r.output
    b = json.loads(r.stdout)["budget"]
    assert b["chose"]["stride"] == 8 and b["fixed"] == ["lowrank.stride"]


def test_cli_budget_too_small_errors_before_any_work(data, tmp_path, monkeypatch) -> None:
    def no_work(*_a, **_k):
        raise AssertionError("condensed despite an impossible budget")

    monkeypatch.setattr(lowrank_mod.LowRank, "fit", no_work)
    out = tmp_path / "x.tcd"
    r = runner.invoke(app, ["condense", str(data), "-o", str(out), "--budget", "1KB"])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert "--budget 1KB" in r.stderr and "smallest" in r.stderr and "Traceback" not in r.output
    assert not out.exists() and not list(tmp_path.iterdir())
    r = runner.invoke(app, ["condense", str(data), "-o", str(out), "--budget", "1KB", "--code-dim", "2"])
    assert r.exit_code == 1 and "with lowrank.dim fixed" in " ".join(r.stderr.split())


def test_cli_restore_of_a_lowrank_archive(data, tmp_path) -> None:
    arch = tmp_path / "x.tcd"
    assert runner.invoke(app, ["condense", str(data), "-o", str(arch)]).exit_code == 0
    outs = []
    for name in ("r1", "r2"):
        r = runner.invoke(app, ["restore", str(arch), "-o", str(tmp_path / name), "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["videos"] == 4
        outs.append(tmp_path / name)
    real = {v.name: v for v in open_dataset(data).train}
    files = sorted(p.name for p in (outs[0] / "features").iterdir())
    assert files == sorted(f"{n}.npy" for n in real)
    for f in files:
        x = np.load(outs[0] / "features" / f)
        assert x.dtype == np.float32 and x.shape == real[f[:-4]].features().shape
        assert (outs[0] / "features" / f).read_bytes() == (outs[1] / "features" / f).read_bytes()
    restored = open_dataset(outs[0], parts=("train",))
    for video in restored.train:
        assert np.array_equal(video.labels, real[video.name].labels)
    assert (outs[0] / "mapping.txt").read_text() == (data / "mapping.txt").read_text()
    assert math.isfinite(read_archive(arch).settings["reconstruction_error"])
