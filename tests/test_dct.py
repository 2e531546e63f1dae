"""``lowrank`` with ``interp: "dct"`` (format 1.3): each code the amplitude of one of its segment's most
energetic cosine frequencies (docs/format.md 6.7, docs/method.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tascond_cli.archive import ArchiveError, archive_bytes, get_decoder_kind, read_archive, read_version, validate_archive
from tascond_cli.archive.decoders.lowrank import BoundLowRank, cosine_basis
from tascond_cli.cli import app
from tascond_cli.data import open_dataset
from tascond_cli.methods import Config, make_baseline
from tascond_cli.methods.lowrank import dct_amplitudes, fit_dct

from test_archive import make_archive
from test_lowrank import DIM, EXACT, make_dataset, originals

runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("dct") / "data", seed=4)


@pytest.mark.parametrize("length", [1, 2, 3, 7, 64, 101])
def test_amplitudes_are_the_projections_on_the_decoder_s_cosines(length: int) -> None:
    z = np.random.default_rng(length).standard_normal((length, 3))
    basis = cosine_basis(length, np.arange(length)).astype(np.float64)  # (L, L)
    np.testing.assert_allclose(dct_amplitudes(z), basis.T @ z / length, atol=1e-6)
    np.testing.assert_allclose(basis.T @ basis, length * np.eye(length), atol=1e-4)  # orthogonal, norm^2 L
    np.testing.assert_allclose(basis @ dct_amplitudes(z), z, atol=1e-5)  # every frequency: exact


def test_fit_keeps_the_mean_and_the_most_energetic_frequencies() -> None:
    t = np.arange(40)[:, None]
    z = 3.0 + 2.0 * np.cos(np.pi * (2 * t + 1) * 13 / 80) + 0.5 * np.cos(np.pi * (2 * t + 1) * 5 / 80) * [1, -1]
    codes, freqs = fit_dct(z, np.array([40]), np.array([3]))
    assert freqs.tolist() == [0, 5, 13]
    np.testing.assert_allclose(codes[0], [3.0, 3.0], atol=1e-9)
    np.testing.assert_allclose(np.abs(codes[2]), [2 / np.sqrt(2)] * 2, atol=1e-9)
    codes, freqs = fit_dct(z, np.array([40]), np.array([1]))
    assert freqs.tolist() == [0]


def test_every_frequency_on_the_full_basis_restores_the_frames(data) -> None:
    config = Config().with_(**{f"lowrank__{k}" if k not in ("code_dtype", "weight_dtype") else f"storage__{k}": v
                               for k, v in {**EXACT, "interp": "dct"}.items()})
    a = make_baseline("lowrank", open_dataset(data), config).archive
    assert a.version == (1, 3) and a.decoder_config["interp"] == "dct"
    assert a.decoder_weights["frequencies"].dtype == np.uint16
    dec = BoundLowRank(a)
    for i, x in enumerate(originals(data, a.video_names)):
        np.testing.assert_allclose(dec.features(i), x, atol=2e-4)


def test_dct_fits_better_than_linear_at_the_same_count(data) -> None:
    errors = {}
    for interp in ("linear", "dct"):
        config = Config().with_(lowrank__dim=DIM, lowrank__stride=4.0, lowrank__interp=interp, lowrank__noise="none",
                                lowrank__floor="none", storage__code_dtype="float32", storage__weight_dtype="float32")
        result = make_baseline("lowrank", open_dataset(data), config)
        errors[interp] = result.error
        assert result.archive.num_codes == int(np.sum(np.clip(np.rint(result.archive.segment_lengths / 4), 1, None)))
    assert errors["dct"] <= errors["linear"] + 1e-9, errors


def dct_archive(**weights):
    a = make_archive("lowrank", dim=6)
    counts = np.diff(a.segment_codes)
    freqs = np.concatenate([np.arange(n) for n in counts.tolist()]).astype(np.uint16)
    cfg = {**a.decoder_config, "interp": "dct"}
    w = {**a.decoder_weights, "frequencies": freqs, **weights}
    return dataclasses.replace(a, decoder_config=cfg, decoder_weights={k: v for k, v in w.items() if v is not None})


def _refused(a, fragment: str) -> None:
    with pytest.raises(ArchiveError) as info:
        validate_archive(a)
    assert fragment in str(info.value)
    with pytest.raises(ArchiveError, match="^cannot write archive: "):
        archive_bytes(a)


def test_every_dct_rule_is_checked() -> None:
    good = validate_archive(dct_archive())
    assert good.version == (1, 3)
    n = good.num_codes
    _refused(dct_archive(frequencies=None), "interp \"dct\" needs the weight 'frequencies'")
    linear = dataclasses.replace(good, decoder_config={**good.decoder_config, "interp": "linear"})
    _refused(linear, "frequencies: only allowed with interp \"dct\"")
    _refused(dct_archive(frequencies=np.zeros(n + 1, np.uint16)), f"must be {n} integers (one per code)")
    _refused(dct_archive(frequencies=np.zeros(n, np.float32)), "integers")
    big = good.decoder_weights["frequencies"].astype(np.int64)
    big[0] = 10**6
    _refused(dct_archive(frequencies=big), "every frequency must lie in [0, L) of its segment")
    neg = good.decoder_weights["frequencies"].astype(np.int64)
    neg[0] = -1
    _refused(dct_archive(frequencies=neg), "every frequency must lie in [0, L)")
    counts = np.diff(good.segment_codes)
    s = int(np.argmax(counts >= 2))
    same = good.decoder_weights["frequencies"].astype(np.int64)
    same[good.segment_codes[s] + 1] = same[good.segment_codes[s]]
    _refused(dct_archive(frequencies=same), "strictly increasing within a segment")
    shared = dataclasses.replace(good, segment_sources=np.array([-1] * good.num_segments))
    validate_archive(shared)  # all -1: nothing shared
    a = make_archive("lowrank", dim=6)
    assert a.version == (1, 2)


def test_dct_restores_stay_within_the_declared_bound() -> None:
    a = validate_archive(dct_archive())
    bound = get_decoder_kind("lowrank").output_bound(a)
    dec = BoundLowRank(a)
    for i in range(a.num_videos):
        assert np.abs(dec.features(i)).max() <= bound


def test_cli_interp_dct(data, tmp_path: Path) -> None:
    out = tmp_path / "d.tcd"
    result = runner.invoke(app, ["condense", str(data), "-o", str(out), "--interp", "dct", "--stride", "2", "--noise", "complement"])
    assert result.exit_code == 0, result.output
    assert read_version(out) == (1, 3) and read_archive(out).decoder_config["interp"] == "dct"
    result = runner.invoke(app, ["restore", str(out), "-o", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "r" / "features").glob("*.npy"))) == read_archive(out).num_videos
