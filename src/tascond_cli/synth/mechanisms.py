"""Optional extra mechanisms of the feature generator, toward a yardstick on which the Mean baseline loses.

:class:`HardMechanisms` holds their knobs (``FeatureModel(hard=HardMechanisms(...))``); every
mechanism is off by default, and with all of them off :class:`~tascond_cli.synth.FeatureWorld` never
builds a :class:`Mechanisms` and writes the same bytes as without this module. docs/synth.md, "Toward a
harder yardstick", says what each imitates and how to measure a setting (``benchmarks/yardstick.py``).

The mechanisms, by letter (the letters of the research that found them):

A. shared hand-pose *states*: ``state_count`` vectors in a shared ``state_rank``-dim latent subspace;
   each video runs a Markov chain over them (mean dwell ``state_seconds``, abrupt switches blurred over
   ``state_blur_seconds``), amplitude ``state_scale``, independent of the action.
B. *bursts* of action-irrelevant activity: Poisson, ``burst_rate`` per minute, durations of mean
   ``burst_seconds``, each a flat-topped push toward one of ``burst_pool`` distractor vectors
   (amplitude ``burst_scale``).
C. per-video *camera* subspace: a random rank-``camera_rank`` basis per video driven by smooth noise
   over ``camera_seconds``, amplitude ``camera_scale``.
D. within-segment *motion*: oscillations (``motion_hz_lo``-``motion_hz_hi`` Hz, random phase per
   segment) along the action's middle-phase direction and a per-verb direction, amplitude ``motion_scale``.
E. per-video *channel* domain shift: log-normal gain per output channel (``channel_gain_scale``) and an
   additive offset before the ReLU (``channel_shift_scale``, in units of the bias spread).
F. *look-alike stretches*: a share ``look_frac`` of each segment's frames, in stretches of mean
   ``look_seconds``, blended (up to ``look_strength``) into a phase anchor of another action: the previous
   or next segment's with probability ``look_neighbor``, else one sharing the verb or object; with
   probability ``look_generic`` a stretch blends instead into one of ``generic_pool`` *class-agnostic*
   looks shared by every action (idle hands, reaching, looking around), so the frames of the stretch
   carry no evidence of their action and only the context tells it.
G. flow-stream *motion energy*: the last ``flow_share`` of the channels multiplied by a still / moving
   on-off process (still ``still_frac`` of the time at level ``still_level``, dwell ``energy_seconds``).
H. *private nuisance latent*: ``private_dims`` extra latent dimensions with their own projection, carrying
   Markov states (``private_states``, dwell ``private_seconds``) mixed with smooth noise (share
   ``private_noise``), amplitude ``private_scale``; no action uses them, and segment means carry little.
I. *channel noise*: independent noise in every output channel before the ReLU (full rank, unlike the
   latent terms), smoothed over ``chan_noise_seconds``, amplitude ``chan_noise_scale`` in latent units;
   a single frame is then a poor picture of its segment, while a model trained on real frames learns to
   pool over channels and time.

Every mechanism draws from its own stable generators, seeded by the dataset seed and, per video, by the
video's name (:func:`~tascond_cli.synth.seeding.stable_rng`), so the base model's draws are unchanged
and the same name gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from tascond_cli.errors import TascondError
from tascond_cli.synth.seeding import stable_rng
from tascond_cli.synth.signals import blur, smooth_noise, split_name, unit

if TYPE_CHECKING:  # pragma: no cover
    from tascond_cli.synth.features import FeatureWorld

_AT_LEAST_ONE = ("state_count", "state_rank", "burst_pool", "camera_rank", "private_states", "generic_pool")
_SHARES = ("look_frac", "look_strength", "look_neighbor", "look_generic", "flow_share", "still_frac", "private_noise")
_POSITIVE = ("state_seconds", "burst_seconds", "camera_seconds", "look_seconds", "energy_seconds", "private_seconds",
             "chan_noise_seconds")


@dataclass(frozen=True)
class HardMechanisms:
    """The knobs of mechanisms A-H (module docstring); each mechanism's amplitude 0 switches it off."""

    # A. shared states
    state_scale: float = 0.0
    state_count: int = 16
    state_rank: int = 8
    state_seconds: float = 2.0
    state_blur_seconds: float = 0.2
    # B. bursts
    burst_scale: float = 0.0
    burst_rate: float = 0.0  # per minute
    burst_seconds: float = 2.0
    burst_pool: int = 12
    # C. per-video camera subspace
    camera_scale: float = 0.0
    camera_rank: int = 6
    camera_seconds: float = 2.0
    # D. within-segment motion
    motion_scale: float = 0.0
    motion_hz_lo: float = 0.15
    motion_hz_hi: float = 0.6
    # E. per-video channel gain and offset
    channel_gain_scale: float = 0.0
    channel_shift_scale: float = 0.0
    # F. look-alike stretches
    look_frac: float = 0.0
    look_seconds: float = 3.0
    look_strength: float = 0.9
    look_neighbor: float = 0.5
    look_generic: float = 0.0  # chance that a stretch is class-agnostic (a generic look) instead
    generic_pool: int = 6
    # G. flow-stream motion energy
    flow_share: float = 0.0
    still_frac: float = 0.4
    still_level: float = 0.15
    energy_seconds: float = 1.5
    # H. private nuisance latent
    private_scale: float = 0.0
    private_dims: int = 0
    private_states: int = 12
    private_seconds: float = 1.5
    private_noise: float = 0.5
    # I. channel noise
    chan_noise_scale: float = 0.0
    chan_noise_seconds: float = 0.5

    def enabled(self) -> bool:
        """Whether any mechanism is on (else the generator is exactly the base model)."""
        return any(
            (
                self.state_scale > 0,
                self.burst_scale > 0 and self.burst_rate > 0,
                self.camera_scale > 0,
                self.motion_scale > 0,
                self.channel_gain_scale > 0 or self.channel_shift_scale > 0,
                self.look_frac > 0,
                self.flow_share > 0,
                self.private_scale > 0 and self.private_dims > 0,
                self.chan_noise_scale > 0,
            )
        )

    def extra_variance(self) -> float:
        """Latent variance the mechanisms add (it widens the ReLU bias and output scale like base terms)."""
        private = self.private_scale**2 if self.private_dims > 0 else 0.0
        bursts = 0.3 * self.burst_scale**2 if self.burst_rate > 0 else 0.0
        return self.state_scale**2 + bursts + self.camera_scale**2 + self.motion_scale**2 + private + self.chan_noise_scale**2

    def check(self) -> None:
        """Raise :class:`TascondError` on an impossible value."""
        for f in fields(self):
            value = getattr(self, f.name)
            if not value >= 0:
                raise TascondError(f"feature model: hard.{f.name} must be >= 0, got {value}")
        for name in _AT_LEAST_ONE:
            if getattr(self, name) < 1:
                raise TascondError(f"feature model: hard.{name} must be at least 1, got {getattr(self, name)}")
        for name in _SHARES:
            if not getattr(self, name) <= 1:
                raise TascondError(f"feature model: hard.{name} must be in [0, 1], got {getattr(self, name)}")
        for name in _POSITIVE:
            if not getattr(self, name) > 0:
                raise TascondError(f"feature model: hard.{name} must be > 0, got {getattr(self, name)}")
        if self.motion_hz_lo > self.motion_hz_hi:
            raise TascondError("feature model: hard.motion_hz_lo must not exceed hard.motion_hz_hi")


def _markov_states(rng: np.random.Generator, t: int, count: int, dwell: float, *, change: bool) -> np.ndarray:
    """(t,) state indices: runs of geometric length (mean ``dwell`` frames); ``change`` forces a new state."""
    states = np.empty(t, dtype=np.int64)
    i = 0
    cur = int(rng.integers(count)) if change else 0
    while i < t:
        n = max(1, int(rng.geometric(1.0 / dwell)))
        if change:
            states[i : i + n] = cur
            nxt = int(rng.integers(count - 1)) if count > 1 else 0
            cur = nxt + (nxt >= cur) if count > 1 else 0
        else:
            states[i : i + n] = int(rng.integers(count))
        i += n
    return states


class Mechanisms:
    """The mechanisms of one :class:`FeatureWorld` (built by it only when ``model.hard.enabled()``)."""

    def __init__(self, world: FeatureWorld) -> None:
        self.world = world
        self.knobs = h = world.model.hard
        seed, lat, dim = world.seed, world.model.latent, world.dim
        if h.state_scale > 0:  # A: states in a shared subspace, unit variance per latent dimension
            rb = stable_rng(seed, "hard", "state-basis")
            basis = np.linalg.qr(rb.standard_normal((lat, h.state_rank)))[0].T  # (R, L) orthonormal
            coef = rb.standard_normal((h.state_count, basis.shape[0]))
            coef *= np.sqrt(basis.shape[0]) / np.maximum(np.linalg.norm(coef, axis=1, keepdims=True), 1e-9)
            self.states = coef @ basis * np.sqrt(lat / basis.shape[0])  # (K, L)
        if h.burst_scale > 0:  # B
            self.distractors = np.stack([unit(stable_rng(seed, "hard", "distractor", i), lat) for i in range(h.burst_pool)])
        if h.motion_scale > 0:  # D: the action's middle-phase direction, and one per verb
            self.motion_dir = np.zeros((len(world.classes), 2, lat))
            for ci, name in enumerate(world.classes):
                d1 = world.anchors[ci, world.model.phases // 2] - world.identity[ci]
                self.motion_dir[ci, 0] = d1 / max(np.linalg.norm(d1) / np.sqrt(lat), 1e-9)
                self.motion_dir[ci, 1] = unit(stable_rng(seed, "hard", "verb-motion", split_name(name)[0]), lat)
        if h.look_frac > 0 and h.look_generic > 0:  # F: class-agnostic looks, as large as an anchor
            size = float(np.sqrt(world.model.class_scale**2 + world.model.phase_scale**2))
            self.generic = np.stack([size * unit(stable_rng(seed, "hard", "generic", i), lat) for i in range(h.generic_pool)])
        if h.private_scale > 0 and h.private_dims > 0:  # H: own projection and states
            wp = stable_rng(seed, "hard-private-proj", dim, h.private_dims)
            self.private_weight = (wp.standard_normal((dim, h.private_dims)) / np.sqrt(h.private_dims)).astype(np.float32)
            self.private_vectors = stable_rng(seed, "hard-private-states").standard_normal((h.private_states, h.private_dims))

    # ----------------------------------------------------------------------- F: on the action trajectory

    def lookalike(self, traj: np.ndarray, cls: np.ndarray, seg: np.ndarray, name: str) -> np.ndarray:
        """F: stretches of each segment blended into an anchor of another action (a new array)."""
        h, w, m = self.knobs, self.world, self.world.model
        if h.look_frac <= 0:
            return traj
        rng = stable_rng(w.seed, "hard-look", name)
        on_len = max(1.0, h.look_seconds * w.fps)
        off_len = on_len * (1.0 - h.look_frac) / max(h.look_frac, 1e-6)
        lengths = np.bincount(seg, minlength=cls.size)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        out = traj.copy()
        for s in range(cls.size):
            a, length = int(starts[s]), int(lengths[s])
            if length < 3:
                continue
            neighbours = [cls[j] for j in (s - 1, s + 1) if 0 <= j < cls.size and cls[j] != cls[s]]
            i = int(rng.exponential(off_len))
            while i < length:
                lo, hi = i, min(length, i + max(2, int(round(rng.exponential(on_len)))))
                if h.look_generic > 0 and rng.random() < h.look_generic:
                    look = self.generic[int(rng.integers(h.generic_pool))]
                else:
                    if neighbours and rng.random() < h.look_neighbor:
                        other = int(neighbours[int(rng.integers(len(neighbours)))])
                    else:
                        other = int(rng.choice(w.partners[int(cls[s])]))
                    look = w.anchors[other, int(rng.integers(m.phases))]
                self._blend(out, a + lo, a + hi, look + m.instance_scale * rng.standard_normal(traj.shape[1]), rng)
                i = hi + int(rng.exponential(off_len)) + 1
        return out

    def _blend(self, out: np.ndarray, lo: int, hi: int, target: np.ndarray, rng: np.random.Generator) -> None:
        """F: blend frames ``[lo, hi)`` of ``out`` toward ``target`` with a flat-topped window (in place)."""
        x = np.linspace(-1, 1, hi - lo)
        weight = self.knobs.look_strength * rng.uniform(0.7, 1.0) * np.clip(1.5 * np.cos(0.5 * np.pi * x), 0, 1)
        out[lo:hi] += weight[:, None] * (target - out[lo:hi])

    # ----------------------------------------------------------------------- A-D: on the latent

    def add_latent(self, rng: np.random.Generator, z: np.ndarray, cls: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """A, B, C, D added to the latent ``z`` (T, L), before the per-video gain, drawn from ``rng`` in that order."""
        h, fps = self.knobs, self.world.fps
        t, lat = z.shape
        if h.state_scale > 0:
            st = _markov_states(rng, t, h.state_count, max(1.0, h.state_seconds * fps), change=True)
            own = self.states + 0.3 * rng.standard_normal((h.state_count, lat))  # this person's version
            z = z + h.state_scale * blur(own[st], h.state_blur_seconds * fps)
        if h.burst_scale > 0 and h.burst_rate > 0:
            z = z + h.burst_scale * self._bursts(rng, t, lat)
        if h.camera_scale > 0:
            basis = rng.standard_normal((h.camera_rank, lat))
            basis *= np.sqrt(lat / h.camera_rank) / np.linalg.norm(basis, axis=1, keepdims=True)
            z = z + h.camera_scale * (smooth_noise(rng, t, h.camera_rank, h.camera_seconds * fps) @ basis)
        if h.motion_scale > 0:
            nseg = cls.size
            freq = rng.uniform(h.motion_hz_lo, h.motion_hz_hi, (nseg, 2))
            phase = rng.uniform(0, 2 * np.pi, (nseg, 2))
            amp = rng.uniform(0.5, 1.5, (nseg, 2))
            tsec = np.arange(t) / fps
            osc = amp[seg] * np.sin(2 * np.pi * freq[seg] * tsec[:, None] + phase[seg])  # (T, 2)
            z = z + h.motion_scale * np.einsum("tk,tkl->tl", osc, self.motion_dir[cls][seg]) / np.sqrt(2.0)
        return z

    def _bursts(self, rng: np.random.Generator, t: int, lat: int) -> np.ndarray:
        """B: (T, L) sum of flat-topped pushes toward distractor vectors."""
        h, fps = self.knobs, self.world.fps
        env = np.zeros((t, lat))
        frames = np.arange(t)
        for _ in range(rng.poisson(h.burst_rate * t / fps / 60.0)):
            centre = int(rng.integers(t))
            duration = max(2.0, rng.exponential(h.burst_seconds * fps))
            e = np.exp(-0.5 * ((frames - centre) / (0.5 * duration)) ** 8)
            vec = self.distractors[int(rng.integers(len(self.distractors)))] * rng.uniform(0.6, 1.2)
            env += e[:, None] * vec[None, :]
        return env

    # ----------------------------------------------------------------------- H, E, G: on the output

    def output(self, rng: np.random.Generator, pre: np.ndarray, name: str, t: int, subsample: int) -> np.ndarray:
        """From ``pre`` = W z (D, T') to features: H, the bias (E offset), ReLU, output scale, G, E gain."""
        h, w = self.knobs, self.world
        if h.private_scale > 0 and h.private_dims > 0:
            zp = np.ascontiguousarray(self._private(name, t)[::subsample], dtype=np.float32)
            pre += h.private_scale * (self.private_weight @ zp.T)
        if h.chan_noise_scale > 0:
            pre += h.chan_noise_scale * self._channel_noise(name, t)[:, ::subsample]
        bias = w.bias
        if h.channel_shift_scale > 0:
            shift = h.channel_shift_scale * float(np.std(w.bias)) * rng.standard_normal(w.dim).astype(np.float32)
            bias = bias + shift
        pre += bias[:, None]
        np.maximum(pre, 0.0, out=pre)
        pre *= w.out_scale
        if h.flow_share > 0:
            c0 = int(round(w.dim * (1 - h.flow_share)))
            pre[c0:] *= self._energy(name, t)[::subsample][None, :].astype(np.float32)
        if h.channel_gain_scale > 0:
            pre *= np.exp(h.channel_gain_scale * rng.standard_normal(w.dim)).astype(np.float32)[:, None]
        return pre.astype(np.float32)

    def _channel_noise(self, name: str, t: int) -> np.ndarray:
        """I: (D, T) float32 unit-variance noise, independent per channel, smoothed over time."""
        w = self.world
        rng = stable_rng(w.seed, "hard-channel-noise", name)
        return smooth_noise(rng, t, w.dim, self.knobs.chan_noise_seconds * w.fps).T.astype(np.float32)

    def _private(self, name: str, t: int) -> np.ndarray:
        """H: (T, private_dims) private latent content of one video."""
        h, w = self.knobs, self.world
        rng = stable_rng(w.seed, "hard-private", name)
        st = _markov_states(rng, t, h.private_states, max(1.0, h.private_seconds * w.fps), change=False)
        states = blur(self.private_vectors[st], 0.15 * w.fps)
        noise = smooth_noise(rng, t, h.private_dims, 0.5 * w.fps)
        return np.sqrt(1 - h.private_noise**2) * states + h.private_noise * noise

    def _energy(self, name: str, t: int) -> np.ndarray:
        """G: (T,) flow motion energy with mean 1: alternating still and moving runs, lightly blurred."""
        h, w = self.knobs, self.world
        rng = stable_rng(w.seed, "hard-energy", name)
        dwell = max(1.0, h.energy_seconds * w.fps)
        energy = np.empty(t)
        i, still = 0, rng.random() < h.still_frac
        while i < t:
            mean_len = dwell * (h.still_frac if still else 1 - h.still_frac) * 2
            n = max(1, int(rng.exponential(mean_len)))
            energy[i : i + n] = h.still_level if still else float(np.exp(0.4 * rng.standard_normal()))
            i += n
            still = not still
        energy = blur(energy[:, None], 0.15 * w.fps)[:, 0]
        return energy / max(energy.mean(), 1e-6)
