"""The feature model: I3D-like per-frame features generated from labels through a small latent space.

docs/synth.md documents the model and its calibration; in short, for frame t of a video with style s, in
a segment of action c::

    z_t = g * ( A_t + s + nuisance_scale * n_t + noise_scale * e_t )      (latent, 48-d)
    x_t = out_scale * relu(W z_t + b)                                       (features, D-d)

- ``A_t``, the action trajectory. Each action c has ``phases`` (3) anchors, for its start, middle and
  end. An anchor is the action's identity vector plus ``phase_scale`` times a mix of a *generic motion
  primitive* (reach, grasp, place, ...; shared by many actions, weight ``primitive_share``) and a
  phase-specific part. The identity vector (scale ``class_scale``) mixes a vector of the verb
  (``pour``), of the object (``milk``) and of the action itself, so ``pour_milk`` resembles
  ``pour_coffee`` and ``stir_milk``; the start and end anchors borrow ``borrow_share`` of a related
  action's identity. Within a segment the trajectory runs through its anchors (knots jittered per
  segment), so the start, middle and end of an action look different and the segment's mean frame
  looks like none of them. Every segment instance perturbs its anchors by ``instance_scale`` (how this
  person does it this time). With probability ``confuse_prob`` a segment contains a stretch (10-40% of
  it) that blends, up to ``confuse_strength``, into the middle of another action (one sharing its verb
  or object when there is one). Finally ``A`` is blurred over ``blend_seconds``, so boundaries blend.
- ``s``, the video's style (subject, kitchen, camera): a constant offset of scale ``style_scale``;
  ``g``, a per-video gain per latent dimension (log-normal, ``gain_scale``).
- ``n_t``, action-irrelevant content that drifts slowly (hands, clutter, lighting, camera motion):
  Gaussian-smoothed noise over ``nuisance_seconds``, unit variance per dimension, as large as the
  action signal or larger. It does not average out within a segment.
- ``e_t``, fast noise correlated over ``noise_seconds``.
- ``W`` (D x latent, Gaussian) and ``b`` (per channel, negative on average) are fixed per dataset
  (seed, D); ``out_scale`` puts typical values around 0.3-0.5; about ``active_fraction`` of the values
  are non-zero.

``hard`` (:class:`~tascond_cli.synth.mechanisms.HardMechanisms`) adds optional mechanisms A-H toward a
harder yardstick (module :mod:`~tascond_cli.synth.mechanisms`); all are off by default, and then the
features are exactly the model above.

Time constants are in seconds and use the dataset's frame rate. The defaults of :class:`FeatureModel`
are calibrated (``benchmarks/calibrate_synth.py``) so that MS-TCN trained on Breakfast-like data scores
in the range of real Breakfast, and the Mean baseline (each segment's mean feature repeated) loses
clearly, as it does on real Breakfast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from tascond_cli.errors import TascondError
from tascond_cli.synth.mechanisms import HardMechanisms, Mechanisms
from tascond_cli.synth.profiles import BACKGROUND_NAMES
from tascond_cli.synth.seeding import stable_rng
from tascond_cli.synth.signals import blur, segments, smooth_noise, split_name, unit


@dataclass(frozen=True)
class FeatureModel:
    """The knobs of the feature generator (see the module docstring and docs/synth.md for the model).

    Scales are in latent units (an action identity vector has about unit variance per dimension when
    ``class_scale`` is 1); times are in seconds.
    """

    latent: int = 48  # latent dimension
    phases: int = 3  # anchors per action: start, middle, end
    primitives: int = 8  # generic motion primitives shared between actions
    class_scale: float = 1.5  # spread of action identities (verb + object + own)
    phase_scale: float = 1.0  # how far start / middle / end anchors lie from the identity
    primitive_share: float = 0.7  # weight of the shared primitive in a phase anchor (0..1)
    borrow_share: float = 0.6  # how much the start and end of an action look like a related action
    instance_scale: float = 0.5  # per-segment variation of the anchors
    style_scale: float = 0.8  # per-video constant offset
    gain_scale: float = 0.2  # per-video log-normal gain per latent dimension
    nuisance_scale: float = 1.0  # slowly drifting, action-irrelevant content
    nuisance_seconds: float = 6.0
    noise_scale: float = 2.0  # fast, temporally correlated noise
    noise_seconds: float = 1.0
    confuse_prob: float = 0.3  # chance that a segment holds a stretch resembling another action
    confuse_strength: float = 0.8  # peak blend weight of that stretch
    blend_seconds: float = 0.5  # Gaussian blur of the action trajectory (blended boundaries)
    active_fraction: float = 0.4  # share of non-zero feature values (sets the ReLU bias)
    hard: HardMechanisms = field(default_factory=HardMechanisms)  # optional mechanisms A-H, all off

    def check(self) -> None:
        """Raise :class:`TascondError` on an impossible value."""
        if self.latent < 1 or self.phases < 2 or self.primitives < 1:
            raise TascondError("feature model: latent >= 1, phases >= 2 and primitives >= 1 are required")
        for name in (
            "class_scale", "phase_scale", "instance_scale", "style_scale", "gain_scale", "nuisance_scale",
            "nuisance_seconds", "noise_scale", "noise_seconds", "confuse_strength", "blend_seconds",
        ):
            if not getattr(self, name) >= 0:
                raise TascondError(f"feature model: {name} must be >= 0, got {getattr(self, name)}")
        for name in ("primitive_share", "borrow_share", "confuse_prob", "confuse_strength"):
            if not 0 <= getattr(self, name) <= 1:
                raise TascondError(f"feature model: {name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 < self.active_fraction < 1:
            raise TascondError(f"feature model: active_fraction must be in (0, 1), got {self.active_fraction}")
        self.hard.check()


# --------------------------------------------------------------------------- the world of one dataset


class FeatureWorld:
    """Everything shared by the videos of one dataset: action anchors, primitives, projection.

    Built from (seed, class names, dim, frame rate, model); per-class parts depend only on the class
    name, so an action looks the same in any vocabulary that contains it.
    """

    def __init__(self, classes: Sequence[str], dim: int, seed: int, fps: float, model: FeatureModel) -> None:
        self.classes = tuple(classes)
        self.dim = dim
        self.seed = seed
        self.fps = fps
        self.model = model
        self.identity = self._identities()  # (C, L)
        self.partners = self._partners()  # per class: indices of related actions
        self.anchors = self._anchors()  # (C, P, L)
        self.weight, self.bias, self.out_scale = self._projection()  # (D, L), (D,), scalar
        self.mechanisms = Mechanisms(self) if model.hard.enabled() else None  # mechanisms.py; None: all off

    def _identities(self) -> np.ndarray:
        """Each action's identity: verb + object + own vector (own only for background or verb-only names)."""
        m, lat = self.model, self.model.latent
        identity = np.zeros((len(self.classes), lat))
        for ci, name in enumerate(self.classes):
            verb, obj = split_name(name)
            own = unit(stable_rng(self.seed, "class", name), lat)
            if name in BACKGROUND_NAMES or not obj:
                ident = own
            else:
                ident = 0.55 * unit(stable_rng(self.seed, "verb", verb), lat)
                ident = ident + 0.55 * unit(stable_rng(self.seed, "object", obj), lat)
                ident = ident + 0.63 * own
            identity[ci] = m.class_scale * ident
        return identity

    def _partners(self) -> list[np.ndarray]:
        """Related actions: sharing the verb or the object, else any other non-background action."""
        classes = self.classes
        foreground = [i for i, n in enumerate(classes) if n not in BACKGROUND_NAMES] or list(range(len(classes)))
        partners: list[np.ndarray] = []
        for ci, name in enumerate(classes):
            verb, obj = split_name(name)
            close = [
                j
                for j in foreground
                if j != ci and (split_name(classes[j])[0] == verb or (obj and split_name(classes[j])[1] == obj))
            ]
            partners.append(np.array(close or [j for j in foreground if j != ci] or [ci]))
        return partners

    def _anchors(self) -> np.ndarray:
        """(C, P, L): identity (start and end partly a related action's) plus a primitive-based deviation."""
        m, lat, seed = self.model, self.model.latent, self.seed
        prim = np.stack([unit(stable_rng(seed, "primitive", i), lat) for i in range(m.primitives)])  # (G, L)
        anchors = np.zeros((len(self.classes), m.phases, lat))
        for ci, name in enumerate(self.classes):
            for p in range(m.phases):
                r = stable_rng(seed, "phase", name, p)
                shared = prim[int(r.integers(m.primitives))]
                dev = m.primitive_share * shared + np.sqrt(1 - m.primitive_share**2) * unit(r, lat)
                base = self.identity[ci]
                if p in (0, m.phases - 1) and name not in BACKGROUND_NAMES:
                    # the start and the end look like a related action (reach for it, put it down)
                    other = int(r.choice(self.partners[ci]))
                    base = (1.0 - m.borrow_share) * self.identity[ci] + m.borrow_share * self.identity[other]
                anchors[ci, p] = base + m.phase_scale * dev
        return anchors

    def _projection(self) -> tuple[np.ndarray, np.ndarray, np.float32]:
        """``W`` (D, L), ``b`` (D,) and ``out_scale`` of relu(W z + b): bias set for the wanted active share."""
        m, lat, dim = self.model, self.model.latent, self.dim
        rp = stable_rng(self.seed, "projection", dim, lat)
        weight = (rp.standard_normal((dim, lat)) / np.sqrt(lat)).astype(np.float32)
        var = (
            m.class_scale**2 + m.phase_scale**2 + m.instance_scale**2 + m.style_scale**2
            + m.nuisance_scale**2 + m.noise_scale**2
        )
        spread = float(np.sqrt(max(var, 1e-6)))
        q = NormalDist().inv_cdf(1.0 - m.active_fraction)
        bias = (spread * (-q + 0.3 * rp.standard_normal(dim))).astype(np.float32)
        extra = m.hard.extra_variance() if m.hard.enabled() else 0.0
        if extra > 0:  # the mechanisms' latent terms widen the spread like the base terms
            ratio = np.sqrt((var + extra) / max(var, 1e-6))
            return weight, (bias * ratio).astype(np.float32), np.float32(np.float32(1.0 / spread) / ratio)
        return weight, bias, np.float32(1.0 / spread)

    def features(self, labels: np.ndarray, name: str, subsample: int = 1) -> np.ndarray:
        """Features (D, ceil(T / subsample)) float32 of one video with class-index ``labels`` (T,).

        Drawn from (seed, video name): the same name and labels give the same bytes.
        """
        m = self.model
        labels = np.asarray(labels, dtype=np.int64)
        t = labels.shape[0]
        rng = stable_rng(self.seed, "video", name)
        cls, seg, pos = segments(labels)
        traj = self._trajectory(rng, cls, seg, pos)
        traj = self._confuse(rng, traj, cls, seg, pos)
        if self.mechanisms is not None:
            traj = self.mechanisms.lookalike(traj, cls, seg, name)
        traj = blur(traj, m.blend_seconds * self.fps)
        # video style, drifting nuisance, fast noise
        style = m.style_scale * rng.standard_normal(m.latent)
        gain = np.exp(m.gain_scale * rng.standard_normal(m.latent))
        nuisance = smooth_noise(rng, t, m.latent, m.nuisance_seconds * self.fps)
        noise = smooth_noise(rng, t, m.latent, m.noise_seconds * self.fps)
        z = traj + style + m.nuisance_scale * nuisance + m.noise_scale * noise  # (T, L)
        if self.mechanisms is not None:
            hard_rng = stable_rng(self.seed, "hard", name)
            z = self.mechanisms.add_latent(hard_rng, z, cls, seg)
        z = np.ascontiguousarray((z * gain)[::subsample], dtype=np.float32)
        h = self.weight @ z.T  # (D, T')
        if self.mechanisms is not None:
            return self.mechanisms.output(hard_rng, h, name, t, subsample)
        h += self.bias[:, None]
        np.maximum(h, 0.0, out=h)
        h *= self.out_scale
        return h

    def _trajectory(self, rng: np.random.Generator, cls: np.ndarray, seg: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """(T, L): each segment runs smoothly through its own perturbed anchors, at jittered knots."""
        m = self.model
        nseg = cls.size
        anchors = self.anchors[cls] + m.instance_scale * rng.standard_normal((nseg, m.phases, m.latent))
        inner = np.linspace(0.0, 1.0, m.phases)[1:-1]
        jitter = rng.uniform(-0.35, 0.35, (nseg, inner.size)) / (m.phases - 1)
        knots = np.concatenate(
            [np.zeros((nseg, 1)), np.sort(inner + jitter, axis=1), np.ones((nseg, 1))], axis=1
        )  # (S, P)
        k = np.minimum((pos[:, None] >= knots[seg, 1:-1]).sum(axis=1), m.phases - 2)  # (T,) interval
        lo, hi = knots[seg, k], knots[seg, k + 1]
        f = np.clip((pos - lo) / np.maximum(hi - lo, 1e-9), 0.0, 1.0)
        f = f * f * (3.0 - 2.0 * f)  # smoothstep
        a_lo = anchors[seg, k]  # (T, L)
        a_hi = anchors[seg, k + 1]
        return a_lo + f[:, None] * (a_hi - a_lo)

    def _confuse(
        self, rng: np.random.Generator, traj: np.ndarray, cls: np.ndarray, seg: np.ndarray, pos: np.ndarray
    ) -> np.ndarray:
        """Blend a stretch of some segments into the middle anchor of a related action (in place)."""
        m = self.model
        nseg = cls.size
        confused = rng.random(nseg) < m.confuse_prob
        other = np.array([int(rng.choice(self.partners[c])) for c in cls])
        center = rng.uniform(0.2, 0.8, nseg)
        half = rng.uniform(0.05, 0.2, nseg)
        strength = m.confuse_strength * rng.uniform(0.6, 1.0, nseg) * confused
        d = np.clip(np.abs(pos - center[seg]) / half[seg], 0.0, 1.0)
        w = strength[seg] * np.cos(0.5 * np.pi * d) ** 2  # (T,)
        mid = self.anchors[other, m.phases // 2]  # (S, L)
        traj += w[:, None] * (mid[seg] - traj)
        return traj


# --------------------------------------------------------------------------- named settings

FEATURE_MODELS: dict[str, FeatureModel] = {
    "default": FeatureModel(),
    "hard": FeatureModel(class_scale=1.0, hard=HardMechanisms(motion_scale=3.0, motion_hz_lo=0.3, motion_hz_hi=1.0)),
}
"""Named feature models (``tascond synth --features NAME``). ``default``: the calibrated base model.
``hard``: the yardstick of issue 10 (docs/synth.md, "The hard yardstick"): weaker action identities
(``class_scale`` 1) and strong within-segment motion along each action's and each verb's own
directions (mechanism D, amplitude 3, 0.3-1 Hz), so a segment's dynamics, not only its mean, tell the
action; the Mean baseline then keeps 0.79 of the original's Acc and 0.67 of its Edit under MS-TCN over
two seeds (``benchmarks/results/yardstick_D3.md``), 0.84 and 0.73 over three (benchmarks/README.md)."""


def feature_model(name: str) -> FeatureModel:
    """The named feature model of :data:`FEATURE_MODELS` (TascondError naming the choices otherwise)."""
    try:
        return FEATURE_MODELS[name]
    except KeyError:
        raise TascondError(f"feature model must be one of {', '.join(FEATURE_MODELS)}, got {name!r}") from None
