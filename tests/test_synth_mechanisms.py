"""The optional feature mechanisms A-H (synth/mechanisms.py): off by default and then invisible; each one
alone changes the features, keeps them finite and non-negative, and is deterministic."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tascond_cli.errors import TascondError
from tascond_cli.synth import FeatureModel, FeatureWorld, HardMechanisms, SynthConfig, synthesize
from tascond_cli.synth.mechanisms import Mechanisms

CLASSES = ("SIL", "pour_milk", "stir_milk", "pour_coffee", "take_cup", "stir_coffee")
FPS = 15.0

# each mechanism switched on alone, strongly enough to show at tiny sizes
ALONE = {
    "A states": dict(state_scale=1.5),
    "B bursts": dict(burst_scale=1.5, burst_rate=30.0),
    "C camera": dict(camera_scale=1.0),
    "D motion": dict(motion_scale=1.0),
    "E channel gain": dict(channel_gain_scale=0.3),
    "E channel shift": dict(channel_shift_scale=0.5),
    "F look-alike": dict(look_frac=0.4, look_strength=1.0),
    "G flow energy": dict(flow_share=0.5),
    "H private latent": dict(private_dims=6, private_scale=1.5),
    "F generic looks": dict(look_frac=0.4, look_strength=1.0, look_generic=1.0),
    "I channel noise": dict(chan_noise_scale=1.0),
}


# F alone (look_frac 0.5, look_strength 1) as the code made it before look_generic existed
SUM_F, MOMENT_F = 2084.039785828485, 482977.822203138


def _labels(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, len(CLASSES), 10)
    cls[1:][cls[1:] == cls[:-1]] = (cls[1:][cls[1:] == cls[:-1]] + 1) % len(CLASSES)  # no repeated neighbours
    return np.repeat(cls, rng.integers(30, 120, cls.size))


def _features(hard: HardMechanisms | None, name: str = "P03_cam01_P03_coffee", seed: int = 1, **model) -> np.ndarray:
    m = FeatureModel(**model) if hard is None else FeatureModel(hard=hard, **model)
    return FeatureWorld(CLASSES, 24, seed, FPS, m).features(_labels(), name, subsample=2)


def test_all_off_is_the_base_model():
    assert not HardMechanisms().enabled()
    world = FeatureWorld(CLASSES, 24, 1, FPS, FeatureModel(hard=HardMechanisms()))
    assert world.mechanisms is None
    assert _features(HardMechanisms()).tobytes() == _features(None).tobytes()
    # knobs other than the amplitudes do not switch a mechanism on
    quiet = HardMechanisms(state_count=3, look_seconds=1.0, private_dims=4, burst_rate=5.0, still_frac=0.1)
    assert not quiet.enabled()
    assert _features(quiet).tobytes() == _features(None).tobytes()


def test_all_off_synthesize_is_byte_identical(tmp_path: Path):
    def digest(model: FeatureModel, out: Path) -> str:
        synthesize(out, SynthConfig(profile="gtea", videos=2, subsample=8, dim=16, seed=3, model=model))
        h = hashlib.sha256()
        for f in sorted(out.rglob("*")):
            if f.is_file():
                h.update(str(f.relative_to(out)).encode() + f.read_bytes())
        return h.hexdigest()

    assert digest(FeatureModel(hard=HardMechanisms()), tmp_path / "a") == digest(FeatureModel(), tmp_path / "b")


@pytest.mark.parametrize("knobs", list(ALONE.values()), ids=list(ALONE))
def test_each_mechanism_alone(knobs):
    hard = HardMechanisms(**knobs)
    assert hard.enabled()
    base = _features(None)
    x = _features(hard)
    assert x.shape == base.shape and x.dtype == np.float32
    assert np.isfinite(x).all() and (x >= 0).all()
    assert not np.array_equal(x, base)
    assert _features(hard).tobytes() == x.tobytes()  # same seed and name: same bytes
    assert not np.array_equal(_features(hard, seed=2), x)


def test_lookalike_stream_depends_on_the_video_name():
    """The look-alike draws come from (seed, video name), not from data values: same labels, other name,
    other stretches; and the trajectory it receives does not seed it."""
    world = FeatureWorld(CLASSES, 24, 1, FPS, FeatureModel(hard=HardMechanisms(look_frac=0.4, look_strength=1.0)))
    mech = world.mechanisms
    assert isinstance(mech, Mechanisms)
    labels = _labels()
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate(([0], change))
    cls = labels[starts]
    seg = np.repeat(np.arange(starts.size), np.diff(np.concatenate((starts, [labels.size]))))
    traj = np.zeros((labels.size, world.model.latent))
    a = mech.lookalike(traj, cls, seg, "P03_cam01_P03_coffee")
    b = mech.lookalike(traj, cls, seg, "P04_webcam02_P04_coffee")
    assert not np.array_equal(a, b)
    assert np.array_equal(a, mech.lookalike(traj, cls, seg, "P03_cam01_P03_coffee"))
    # a shifted trajectory moves every blended frame by the same amount: the stretches are the same
    shifted = mech.lookalike(traj + 1.0, cls, seg, "P03_cam01_P03_coffee")
    assert np.array_equal(np.abs(shifted - (traj + 1.0)) > 1e-12, np.abs(a - traj) > 1e-12)
    assert not np.array_equal(traj, a)  # the input is left alone, the output changed


def test_generic_looks_are_shared_by_every_action():
    """look_generic 1: every stretch blends toward one of the same few class-agnostic looks, whatever the
    action, so two segments of different actions get stretches drawn from one pool; 0 draws nothing more
    than the partner look-alikes (same bytes as without the knob)."""
    knobs = dict(look_frac=0.5, look_strength=1.0)
    world = FeatureWorld(CLASSES, 24, 1, FPS, FeatureModel(hard=HardMechanisms(look_generic=1.0, generic_pool=2, **knobs)))
    mech = world.mechanisms
    cls = np.array([1, 3])  # pour_milk, pour_coffee
    seg = np.repeat([0, 1], 400)
    traj = np.zeros((800, world.model.latent))
    out = mech.lookalike(traj, cls, seg, "P03_cam01_P03_coffee")
    blended = np.abs(out).sum(1) > 1e-9
    assert blended[:400].any() and blended[400:].any()
    # every blended frame points toward one of the two pool looks (plus per-stretch instance noise)
    peaks = out[blended]
    sims = np.abs(peaks @ mech.generic.T) / (np.linalg.norm(peaks, axis=1, keepdims=True) * np.linalg.norm(mech.generic, axis=1))
    assert np.median(sims.max(1)) > 0.7
    # with look_generic 0 the partner look-alikes are those from before the knob existed (measured then)
    x = _features(HardMechanisms(**knobs)).astype(np.float64)
    assert x.sum() == pytest.approx(SUM_F, rel=1e-9)
    assert (x * np.arange(x.shape[1])).sum() == pytest.approx(MOMENT_F, rel=1e-9)


def test_channel_noise_is_independent_per_channel():
    world = FeatureWorld(CLASSES, 64, 1, FPS, FeatureModel(hard=HardMechanisms(chan_noise_scale=1.0, chan_noise_seconds=0.2)))
    noise = world.mechanisms._channel_noise("P03_cam01_P03_coffee", 3000)
    assert noise.shape == (64, 3000) and noise.dtype == np.float32
    assert abs(float(noise.var()) - 1.0) < 0.15
    corr = np.corrcoef(noise)
    assert np.abs(corr[~np.eye(64, dtype=bool)]).max() < 0.25  # full rank: channels do not move together
    lag1 = float((noise[:, 1:] * noise[:, :-1]).mean())
    assert lag1 > 0.5  # smoothed over time (0.2 s at 15 fps: 3 frames)


def test_mechanisms_are_per_video_by_name():
    hard = HardMechanisms(state_scale=1.5, flow_share=0.5, private_dims=4, private_scale=1.0)
    assert not np.array_equal(_features(hard, name="P03_cam01_P03_coffee"), _features(hard, name="P05_cam01_P05_tea"))


@pytest.mark.parametrize(
    "knobs, fragment",
    [
        (dict(state_scale=-1.0), "hard.state_scale"),
        (dict(look_frac=1.5), "hard.look_frac"),
        (dict(state_count=0), "hard.state_count"),
        (dict(look_seconds=0.0), "hard.look_seconds"),
        (dict(motion_hz_lo=1.0, motion_hz_hi=0.5), "motion_hz_lo"),
    ],
)
def test_bad_knobs(tmp_path: Path, knobs, fragment):
    with pytest.raises(TascondError, match=fragment):
        synthesize(tmp_path / "x", SynthConfig(model=FeatureModel(hard=HardMechanisms(**knobs))))


def test_hard_feature_model_is_the_measured_yardstick():
    """`tascond synth --features hard` is the setting whose yardstick run is committed (benchmarks/results)."""
    import json
    import sys

    from tascond_cli.synth import FEATURE_MODELS, feature_model

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    try:
        import yardstick
    finally:
        sys.path.pop(0)
    measured = json.loads((root / "benchmarks" / "results" / "yardstick_D3.json").read_text())
    assert yardstick.feature_model(measured["spec"]) == FEATURE_MODELS["hard"]
    assert yardstick.feature_model({}, "hard") == FEATURE_MODELS["hard"]
    assert feature_model("default") == FeatureModel()
    with pytest.raises(TascondError, match="default, hard"):
        feature_model("easy")


def test_synth_cli_hard_features(tmp_path: Path):
    from typer.testing import CliRunner

    from tascond_cli.cli import app

    def run(out: str, *extra: str):
        args = ["synth", str(tmp_path / out), "--profile", "gtea", "--videos", "2", "--subsample", "8", "--dim", "16", *extra]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        return {f.name: np.load(f) for f in sorted((tmp_path / out / "features").glob("*.npy"))}

    hard, again, base = run("h", "--features", "hard"), run("h2", "--features", "hard"), run("b")
    assert hard.keys() == base.keys()
    for name in hard:
        assert np.array_equal(hard[name], again[name])  # deterministic
        assert not np.array_equal(hard[name], base[name])
        assert np.isfinite(hard[name]).all() and (hard[name] >= 0).all()
    bad = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--features", "easy"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
