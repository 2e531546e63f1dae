"""The GPU path, measured (issue 12): one prepared run that checks CUDA against the CPU and times the GPU.

What it measures, on a synthetic Breakfast-like dataset (``tascond synth --profile breakfast --videos N
--subsample 4 --dim 2048 --features hard``: N training and N test videos, about 600 frames each; no real
data needed), one guarded step at a time:

``matmul``
    The reference rates: float32 matmul TFLOP/s on the device (8192 x 8192; IEEE float32 and, reported
    separately, with TF32 allowed) and on the CPU (numpy, 2048 x 2048), plus a matmul of the lowrank
    decoder's own shape (1024 x 128 @ 128 x D: a video's frames times the basis) on both.
``synth``
    Makes the dataset (seconds, frames, bytes).
``lowrank``
    ``make_baseline("lowrank", data, Config(device=...))`` (the default method) on the CPU and on the
    device: seconds each, whether the two archives are the same bytes, max abs / relative difference of
    their codes and of every video restored from them, and whether the device was used at all
    (``cuda_bytes``: peak CUDA memory the step allocated; 0 means it ran on the CPU). From the code:
    ``lowrank`` sums its D x D scatter matrix (the ``F D^2`` products that dominate condensing) with
    torch on the device in float64, and does the rest with numpy on the CPU, so expect ``cuda_bytes``
    above 0, a faster ``pca`` phase, and archives equal up to float64 rounding of the scatter (the same
    bytes, or codes a quantization step apart at most). Its decoder is numpy (``LowRankKind.bind``
    ignores the device: the format's noise is drawn from numpy's generator on the CPU), so the "cuda" row
    of ``restore_lowrank`` measures the CPU; this run checks it.
``restore_lowrank``
    Every video of the CPU-made lowrank archive decoded by ``ArchiveDecoder(archive, "cpu")`` and by
    ``ArchiveDecoder(archive, "cuda")``: max abs difference (also relative to the features' largest
    magnitude and RMS), frames/s of each (after a warm-up video), and the decoder's FLOP/s as a fraction
    of the measured matmul rate. FLOPs per frame (``archive/decoders/lowrank.py``): ``2 d D`` for
    ``codes @ components``, ``3 d`` for the linear interpolation, ``D`` for the mean; with the residual
    noise ``5 D`` (AR(1) recursion, scale, add) and, with ``residual_space: "complement"`` (the
    default), ``4 d D + D`` for projecting it off the basis; ``D`` for the floor. The normal draws of
    the noise are not counted (they cost time, not FLOPs).
``forward``
    MS-TCN (and ASFormer) in eval mode, the same weights on the CPU and on the device, on the first
    training videos: max abs difference of the logits (all stages), relative to their largest
    magnitude, and the share of frames whose argmax agrees; on CUDA with torch's TF32 defaults (cuDNN
    convolutions in TF32) and with TF32 off everywhere.
``tascond_agree``
    ``make_baseline("tascond", ...)`` on a few training videos with few generator steps and inversion
    iterations, on the CPU and on the device: seconds each and the relative difference of their
    reconstruction errors (training on a GPU is not bitwise reproducible: a loose check, not equality).
``train_mstcn`` / ``train_asformer``
    ``train_model`` on all training videos with ``TrainConfig(epochs=2, device=...)`` (MS-TCN) and
    ``TrainConfig(model="asformer", epochs=1, ...)``, after a one-epoch warm-up on two videos: seconds
    per epoch and training frames/s.
``tascond``
    ``make_baseline("tascond", ...)`` on the device with the default generator steps (1500;
    ``--quick``: 300): seconds per phase (prior, invert) and the reconstruction error.
``restore_generator``
    The archive of ``tascond`` decoded on the CPU and on the device: max abs difference and frames/s
    (FLOPs estimated as 2 x the MLP's weights per frame).
``mstcn_cpu``
    One MS-TCN epoch on the CPU over a few videos, for the device's speed-up per video.

Every step is guarded: a failure is recorded (its error) and the next step runs. ``--budget-s`` (default
540) skips the steps that remain once it is spent (or that would not fit in what is left). Results are
rewritten after every step, so a run cut short still leaves what it measured: ``--out`` (default
``benchmarks/results/gpu``) gets ``gpu.json`` and ``gpu.md``; the markdown table is also printed.

Without CUDA (or with ``--device cpu``) both "sides" run on the CPU, ``--quick`` is implied, in a
reduced form (4 videos, 50 generator steps; see :data:`TIERS`), and the results say "no CUDA: CPU timings
only"; the comparison code paths still run (their differences are then 0). It exits 0 whatever failed:
the failures are in the results.

Run, from the repository root (``benchmarks/gpu.sh`` prints the environment first)::

    bash benchmarks/gpu.sh                         # N = 48: expected 4-5 minutes on an H200
    bash benchmarks/gpu.sh --quick                 # N = 12, fewer steps: expected about 2 minutes
    python3 benchmarks/gpu.py --quick --device cpu --out /tmp/gputest   # the CPU test: 4 minutes on 2 busy cores

The GPU times are estimates from the CPU run (not yet measured on a GPU). The budget (``--budget-s
540``) starts no step after 540 s, nor a long step (tascond, training) when less than its expected time
is left, so the run ends within 10 minutes unless one step alone runs far past its estimate.

Through the device tool, one call: ``run`` with command ``bash benchmarks/gpu.sh --out $OUT/gpu`` and
``timeout_s`` 600; the JSON and markdown come back under ``gpu/``.

Set-up on a fresh machine: a CUDA build of torch first (e.g. ``python3 -m pip install torch --index-url
https://download.pytorch.org/whl/cu128``; ``.ci/run`` installs the CPU build instead), then
``python3 -m pip install -e .``. This script installs nothing; it puts this checkout's ``src/`` first on
the import path, so it measures the code of the tree it runs in.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SRC = REPO / "src"
if SRC.is_dir() and str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

import numpy as np  # noqa: E402
import torch  # noqa: E402

NO_CUDA_NOTE = "no CUDA: CPU timings only"
AGREE_REL = 1e-3
"""Restored features / logits agree when the max abs difference is below this fraction of their largest magnitude."""
TIERS = {
    "full": dict(videos=48, steps=1500, agree_steps=100, agree_iters=20, agree_videos=6, matmul_n=8192, matmul_cpu_n=2048),
    "quick": dict(videos=12, steps=300, agree_steps=30, agree_iters=10, agree_videos=3, matmul_n=4096, matmul_cpu_n=1024),
    "cpu": dict(videos=4, steps=50, agree_steps=10, agree_iters=5, agree_videos=2, matmul_n=4096, matmul_cpu_n=1024),
}
"""The defaults of the options left unset: a GPU run, a GPU run with ``--quick``, and a run without CUDA
(the reduced form that tests the script on a CPU: few videos, few generator steps)."""
RESTORE_ROWS = 1024
"""Rows of the restore-shaped matmul: about one video's frames (the lowrank decoder multiplies a video at a time)."""
LOOSE_REL = 0.25
"""tascond on the two devices agrees loosely when the reconstruction errors differ by less than this fraction."""


# --------------------------------------------------------------------------- small helpers


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


@contextmanager
def timed(dev: torch.device, out: dict, key: str):
    """``out[key]`` = seconds of the block, with the device synchronized on both sides."""
    sync(dev)
    t0 = time.perf_counter()
    yield
    sync(dev)
    out[key] = time.perf_counter() - t0


@contextmanager
def cuda_peak(out: dict, key: str):
    """``out[key]`` = peak CUDA bytes allocated during the block (0 when CUDA is absent or unused)."""
    if not torch.cuda.is_available():
        out[key] = 0
        yield
        return
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    yield
    torch.cuda.synchronize()
    out[key] = int(torch.cuda.max_memory_allocated() - base)


def diff_stats(ref: np.ndarray, other: np.ndarray) -> dict:
    """Max abs difference, and relative to ``ref``'s largest magnitude and to its RMS."""
    ref = np.asarray(ref, dtype=np.float64)
    d = np.abs(ref - np.asarray(other, dtype=np.float64))
    peak = float(np.abs(ref).max()) if ref.size else 0.0
    rms = float(np.sqrt(np.mean(ref * ref))) if ref.size else 0.0
    mx = float(d.max()) if d.size else 0.0
    return {"max_abs": mx, "peak": peak, "rms": rms, "rel_peak": mx / peak if peak else 0.0,
            "rms_rel": float(np.sqrt(np.mean(d * d))) / rms if rms else 0.0}


class DiffAcc:
    """Accumulates :func:`diff_stats` over many arrays (max of maxima, pooled RMS)."""

    def __init__(self) -> None:
        self.max_abs = self.peak = 0.0
        self.sq_ref = self.sq_diff = 0.0
        self.n = 0

    def add(self, ref: np.ndarray, other: np.ndarray) -> None:
        ref = np.asarray(ref, dtype=np.float64)
        d = ref - np.asarray(other, dtype=np.float64)
        if not ref.size:
            return
        self.max_abs = max(self.max_abs, float(np.abs(d).max()))
        self.peak = max(self.peak, float(np.abs(ref).max()))
        self.sq_ref += float(np.sum(ref * ref))
        self.sq_diff += float(np.sum(d * d))
        self.n += ref.size

    def result(self) -> dict:
        rms = (self.sq_ref / self.n) ** 0.5 if self.n else 0.0
        drms = (self.sq_diff / self.n) ** 0.5 if self.n else 0.0
        return {"max_abs": self.max_abs, "peak": self.peak, "rms": rms,
                "rel_peak": self.max_abs / self.peak if self.peak else 0.0, "rms_rel": drms / rms if rms else 0.0}


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x == 0:
            return "0"
        if abs(x) >= 1e5 or abs(x) < 1e-3:
            return f"{x:.{digits - 1}e}"
        return f"{x:.{digits}g}" if abs(x) < 100 else f"{x:,.0f}"
    return str(x)


def tf32_state() -> dict:
    """The TF32 switches as torch reports them (new API where it exists, else the legacy flags)."""
    m = torch.backends.cuda.matmul
    if hasattr(m, "fp32_precision"):
        conv = getattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision", None)
        return {"matmul": m.fp32_precision, "cudnn_conv": conv}  # (the global getter raises while they differ)
    return {"matmul_allow_tf32": m.allow_tf32, "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision()}


@contextmanager
def tf32(matmul: bool | None = None, conv: bool | None = None):
    """Allow (True) or forbid (False) TF32 for CUDA matmuls / cuDNN convolutions inside the block."""
    m = torch.backends.cuda.matmul
    new = hasattr(m, "fp32_precision")
    conv_ns = getattr(torch.backends.cudnn, "conv", None)
    saved = (m.fp32_precision if new else m.allow_tf32,
             (conv_ns.fp32_precision if new and conv_ns is not None else torch.backends.cudnn.allow_tf32))
    try:
        if matmul is not None:
            if new:
                m.fp32_precision = "tf32" if matmul else "ieee"
            else:
                m.allow_tf32 = matmul
        if conv is not None:
            if new and conv_ns is not None:
                conv_ns.fp32_precision = "tf32" if conv else "ieee"
            else:
                torch.backends.cudnn.allow_tf32 = conv
        yield
    finally:
        if new:
            m.fp32_precision = saved[0]
            if conv_ns is not None:
                conv_ns.fp32_precision = saved[1]
        else:
            m.allow_tf32 = saved[0]
            torch.backends.cudnn.allow_tf32 = saved[1]


# --------------------------------------------------------------------------- the runner


class Bench:
    """Runs the steps under the time budget, recording each one's result or error, and writes the files."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.t0 = time.perf_counter()
        self.out = Path(args.out)
        self.state: dict = {}
        self.results: dict = {"benchmark": "gpu", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                              "settings": {}, "env": {}, "notes": [], "steps": {}, "running": None}

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def step(self, name: str, fn, need_s: float = 0.0, requires: tuple[str, ...] = (), skip: str | None = None) -> None:
        """Run ``fn`` as step ``name``, unless ``skip`` says why not, a result it ``requires`` (a key of
        :attr:`state`) is missing, or the budget has not ``need_s`` seconds left."""
        left = self.args.budget_s - self.elapsed()
        missing = [k for k in requires if k not in self.state]
        if skip or missing or left <= 0 or left < need_s:
            if skip:
                why = skip
            elif missing:
                why = f"needs the result of an earlier step ({', '.join(missing)}), which failed or was skipped"
            else:
                why = "budget spent" if left <= 0 else f"needs about {need_s:.0f} s, {left:.0f} s left"
            self.results["steps"][name] = {"status": "skipped", "why": why}
            print(f"[gpu] {name}: skipped ({why})", file=sys.stderr, flush=True)
            self.write()
            return
        self.results["running"] = name
        self.write()
        print(f"[gpu] {name} ... ({self.elapsed():.0f} s elapsed)", file=sys.stderr, flush=True)
        t = time.perf_counter()
        try:
            data = fn()
            entry = {"status": "ok", **(data or {})}
        except Exception as exc:  # every failure is a result; the next step still runs
            tb = traceback.format_exc().strip().splitlines()
            entry = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000], "traceback": tb[-12:]}
            print(f"[gpu] {name} FAILED: {entry['error']}", file=sys.stderr, flush=True)
            if torch.cuda.is_available():
                try:
                    torch.cuda.empty_cache()
                except Exception:
                    pass
        entry["step_s"] = round(time.perf_counter() - t, 3)
        self.results["steps"][name] = entry
        self.results["running"] = None
        self.write()

    # ----------------------------------------------------------------- output

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(step, measure, value, note) rows of the table, from every step's ``rows``."""
        out = []
        for name, entry in self.results["steps"].items():
            if entry["status"] == "ok":
                for row in entry.get("rows", []):
                    out.append((name, row[0], row[1], row[2] if len(row) > 2 else ""))
            elif entry["status"] == "failed":
                out.append((name, "**failed**", "-", entry["error"].splitlines()[0][:160].replace("|", "/")))
            else:
                out.append((name, "skipped", "-", entry["why"]))
        return out

    def markdown(self) -> str:
        r, env, s = self.results, self.results["env"], self.results["settings"]
        lines = [f"# GPU check ({r['date']})", ""]
        lines.append(f"`{r['command']}`; device under test **{s.get('device', '?')}**"
                     f" ({env.get('cuda_name') or env.get('cpu') or '?'}), torch {env.get('torch', '?')}"
                     f" (CUDA {env.get('torch_cuda') or '-'}), {env.get('cpu_count', '?')} CPUs, "
                     f"{env.get('torch_threads', '?')} torch threads.")
        synth = r["steps"].get("synth", {})
        if synth.get("status") == "ok" and synth.get("reused"):
            lines.append(f"Data: `{synth['data']}` (split 1), {synth['train_videos']} training videos, "
                         f"{synth['train_frames']:,} frames, D = {synth['dim']}.")
        elif s:
            lines.append(f"Data: synthetic Breakfast, {s.get('videos')} train + {s.get('videos')} test videos, "
                         f"every {s.get('subsample')}th frame, D = {s.get('dim')}, features `{s.get('features')}`"
                         f"{' (quick)' if s.get('quick') else ''}.")
        for note in r["notes"]:
            lines.append(f"\n**Note:** {note}")
        lines += ["", "| step | measure | value | note |", "|---|---|---:|---|"]
        for step, measure, value, note in self.rows():
            lines.append(f"| {step} | {measure} | {value} | {note} |")
        total = r.get("total_s")
        lines.append("")
        lines.append(f"Total {total:.0f} s." if total is not None else
                     f"Running ({r.get('running')}), {self.elapsed():.0f} s so far.")
        return "\n".join(lines) + "\n"

    def write(self) -> None:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "gpu.json").write_text(json.dumps(self.results, indent=1, default=str) + "\n")
            (self.out / "gpu.md").write_text(self.markdown())
        except OSError as exc:
            print(f"[gpu] cannot write results to {self.out}: {exc}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the steps


def env_info() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
            "torch_cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "numpy": np.__version__, "cuda_available": torch.cuda.is_available(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()}
    try:
        info["tf32"] = tf32_state()
    except Exception as exc:
        info["tf32"] = f"unknown ({exc})"
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(cuda_devices=torch.cuda.device_count(), cuda_name=p.name, cuda_capability=f"{p.major}.{p.minor}",
                    cuda_memory_gib=round(p.total_memory / 2**30, 1), cuda_sms=p.multi_processor_count)
    return info


def rate_torch(dev: torch.device, n: int, m: int, k: int, reps: int, min_s: float = 0.5) -> float:
    """FLOP/s of ``(n, k) @ (k, m)`` float32 on ``dev``: warm-up, then at least ``reps`` runs and ``min_s`` s."""
    g = torch.Generator(device=dev).manual_seed(0)
    a = torch.randn(n, k, device=dev, generator=g)
    b = torch.randn(k, m, device=dev, generator=g)
    for _ in range(2):
        torch.matmul(a, b)
    sync(dev)
    done, t0 = 0, time.perf_counter()
    while done < reps or time.perf_counter() - t0 < min_s:
        torch.matmul(a, b)
        done += 1
        if done >= 200 * reps:
            break
        if dev.type == "cuda" and done % reps == 0:
            sync(dev)
    sync(dev)
    return 2.0 * n * m * k * done / (time.perf_counter() - t0)


def rate_numpy(n: int, m: int, k: int, reps: int, min_s: float = 0.5) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, k), dtype=np.float32)
    b = rng.standard_normal((k, m), dtype=np.float32)
    a @ b
    done, t0 = 0, time.perf_counter()
    while done < reps or time.perf_counter() - t0 < min_s:
        a @ b
        done += 1
    return 2.0 * n * m * k * done / (time.perf_counter() - t0)


def step_matmul(b: Bench) -> dict:
    dev, a = b.state["dev"], b.args
    out: dict = {}
    dim = a.dim
    rows = []
    if dev.type == "cuda":
        n = a.matmul_n
        with tf32(matmul=False):
            out["cuda_fp32"] = rate_torch(dev, n, n, n, reps=10)
        with tf32(matmul=True):
            out["cuda_tf32"] = rate_torch(dev, n, n, n, reps=10)
        with tf32(matmul=False):
            out["cuda_fp32_restore_shape"] = rate_torch(dev, RESTORE_ROWS, dim, 128, reps=50)
        rows += [(f"float32 matmul {n}x{n}, {dev}", f"{out['cuda_fp32'] / 1e12:.1f} TFLOP/s", "IEEE float32"),
                 (f"float32 matmul {n}x{n}, {dev}, TF32 allowed", f"{out['cuda_tf32'] / 1e12:.1f} TFLOP/s",
                  "" if out["cuda_tf32"] > 1.5 * out["cuda_fp32"] else "no faster than IEEE: TF32 seems not in effect"),
                 (f"matmul {RESTORE_ROWS}x128 @ 128x{dim}, {dev}", f"{out['cuda_fp32_restore_shape'] / 1e12:.1f} TFLOP/s",
                  "the lowrank decoder's shape, IEEE")]
    n = a.matmul_cpu_n
    out["cpu_numpy_fp32"] = rate_numpy(n, n, n, reps=3)
    out["cpu_numpy_fp32_restore_shape"] = rate_numpy(RESTORE_ROWS, dim, 128, reps=5)
    rows += [(f"float32 matmul {n}x{n}, CPU (numpy)", f"{out['cpu_numpy_fp32'] / 1e9:.0f} GFLOP/s", ""),
             (f"matmul {RESTORE_ROWS}x128 @ 128x{dim}, CPU (numpy)", f"{out['cpu_numpy_fp32_restore_shape'] / 1e9:.0f} GFLOP/s",
              "the lowrank decoder's shape")]
    b.state["rates"] = out
    return {"flops_per_s": out, "rows": rows}


def step_synth(b: Bench) -> dict:
    a = b.args
    if a.data:
        data = Path(a.data)
        out = {"data": str(data), "reused": True}
    else:
        data = b.state["tmp"] / "bf"
        cmd = [sys.executable, "-m", "tascond_cli", "synth", str(data), "--profile", "breakfast",
               "--videos", str(a.videos), "--subsample", str(a.subsample), "--dim", str(a.dim),
               "--features", a.features, "--seed", "0", "--json"]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]))
        t0 = time.perf_counter()
        done = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"tascond synth failed ({done.returncode}): {done.stderr.strip()[-1000:]}")
        out = {"summary": json.loads(done.stdout), "seconds": seconds,
               "command": "tascond synth OUT " + " ".join(cmd[5:])}
    from tascond_cli.data import open_dataset

    ds = open_dataset(data, 1)
    b.state["data"], b.state["dataset"] = data, ds
    frames = sum(v.num_frames for v in ds.train)
    b.state["train_frames"] = frames
    out.update(train_videos=len(ds.train), test_videos=len(ds.test), train_frames=frames, dim=ds.dim,
               classes=ds.num_classes)
    rows = [("training videos / frames / D", f"{len(ds.train)} / {frames:,} / {ds.dim}", "")]
    if "seconds" in out:
        rows.append(("synth", f"{out['seconds']:.1f} s", f"{out['summary']['bytes'] / 1e6:.0f} MB, train + test"))
    return {**out, "rows": rows}


def _decode_all(decoder, n: int, keep: list) -> int:
    """Decode videos ``0 .. n-1`` into ``keep`` (compared later, outside the timed region); their frames."""
    frames = 0
    for i in range(n):
        x = decoder.features(i)
        frames += x.shape[1]
        keep.append(x)
    return frames


def _compare(refs: list, others: list) -> DiffAcc:
    acc = DiffAcc()
    for r, o in zip(refs, others, strict=True):
        acc.add(r, o)
    return acc


def step_lowrank(b: Bench) -> dict:
    from tascond_cli.archive import archive_bytes
    from tascond_cli.methods import Config, make_baseline
    from tascond_cli.restore import ArchiveDecoder

    dev, ds = b.state["dev"], b.state["dataset"]
    t: dict = {}
    make_baseline("lowrank", _subset(ds, 1), Config(device="cpu"))  # warm-up (imports, first BLAS calls)
    with timed(torch.device("cpu"), t, "cpu"):
        ref = make_baseline("lowrank", ds, Config(device="cpu"))
    peak: dict = {}
    with cuda_peak(peak, "bytes"), timed(dev, t, "dev"):
        other = make_baseline("lowrank", ds, Config(device=str(dev)))
    b.state["lowrank"] = ref.archive
    same = archive_bytes(ref.archive) == archive_bytes(other.archive)

    def codes(arc):
        from tascond_cli.archive.decoders.lowrank import CODE_SCALE

        c = np.asarray(arc.codes, dtype=np.float32)
        scale = arc.decoder_weights.get(CODE_SCALE)
        return c * np.asarray(scale, dtype=np.float32) if scale is not None else c

    code_diff = diff_stats(codes(ref.archive), codes(other.archive)) if ref.archive.codes.shape == other.archive.codes.shape \
        else {"shape_mismatch": [list(ref.archive.codes.shape), list(other.archive.codes.shape)]}
    acc = DiffAcc()
    cache: list = []
    d_ref = ArchiveDecoder(ref.archive, "cpu")
    d_oth = ArchiveDecoder(other.archive, "cpu")
    for i in range(len(d_ref)):
        x = d_ref.features(i)
        cache.append(x)
        acc.add(x, d_oth.features(i))
    b.state["lowrank_cpu_restored"] = cache
    restored = acc.result()
    agree = restored["rel_peak"] <= AGREE_REL
    settings = ref.archive.decoder_config
    rows = [
        ("condense lowrank, CPU", f"{t['cpu']:.2f} s", f"{ref.kept_videos} videos, {ref.frames:,} frames"),
        (f"condense lowrank, {dev}", f"{t['dev']:.2f} s",
         f"CUDA memory used: {peak['bytes']:,} B" + (" (the device was not used)" if peak["bytes"] == 0 and dev.type == "cuda" else "")),
        ("lowrank archives CPU vs device: same bytes", fmt(same), f"{len(archive_bytes(ref.archive)):,} B each"),
        ("lowrank codes, max abs diff", fmt(code_diff.get("max_abs")), f"rel {fmt(code_diff.get('rel_peak'))}"),
        ("lowrank restored, max abs diff", fmt(restored["max_abs"]),
         f"rel to peak {fmt(restored['rel_peak'])}, RMS rel {fmt(restored['rms_rel'])}; agree (<= {AGREE_REL:g}): {fmt(agree)}"),
        ("lowrank reconstruction error (FVU)", f"{ref.error:.4f}", f"device side {other.error:.4f}"),
    ]
    return {"seconds": t, "cuda_bytes": peak["bytes"], "same_bytes": same, "codes": code_diff, "restored": restored,
            "agree": agree, "error_cpu": ref.error, "error_dev": other.error, "archive_bytes": len(archive_bytes(ref.archive)),
            "phase_seconds_cpu": ref.seconds, "phase_seconds_dev": other.seconds, "decoder_config": settings, "rows": rows}


def lowrank_flops(archive) -> tuple[float, float]:
    """(FLOPs per frame, of which matmul) of the lowrank decoder for ``archive`` (see the module docstring)."""
    cfg = archive.decoder_config
    d, D = int(cfg["code_dim"]), int(archive.dim)
    matmul = 2.0 * d * D
    other = D + (3.0 * d if cfg.get("interp") == "linear" else 0.0)
    if "residual_rho" in cfg:
        other += 5.0 * D
        if cfg.get("residual_space") == "complement":
            matmul += 4.0 * d * D
            other += D
    if cfg.get("floor") is not None:
        other += D
    return matmul + other, matmul


def step_restore_lowrank(b: Bench) -> dict:
    from tascond_cli.restore import ArchiveDecoder

    dev, archive = b.state["dev"], b.state["lowrank"]
    cache = b.state.pop("lowrank_cpu_restored")
    n = archive.num_videos
    t: dict = {}
    dec_cpu = ArchiveDecoder(archive, "cpu")
    dec_cpu.features(0)  # warm-up
    rerun: list = []
    with timed(torch.device("cpu"), t, "cpu"):
        frames = _decode_all(dec_cpu, n, keep=rerun)
    acc_rerun = _compare(cache, rerun)
    del rerun
    peak: dict = {}
    restored: list = []
    with cuda_peak(peak, "bytes"):
        dec_dev = ArchiveDecoder(archive, str(dev))
        dec_dev.features(0)  # warm-up
        with timed(dev, t, "dev"):
            _decode_all(dec_dev, n, keep=restored)
    diff = _compare(cache, restored).result()
    del restored
    per_frame, matmul_per_frame = lowrank_flops(archive)
    rates = b.state.get("rates", {})
    fps = {"cpu": frames / t["cpu"], "dev": frames / t["dev"]}
    flops = {k: v * per_frame for k, v in fps.items()}
    ran_on_cuda = peak["bytes"] > 0
    out = {"frames": frames, "seconds": t, "frames_per_s": fps, "flops_per_frame": per_frame,
           "matmul_flops_per_frame": matmul_per_frame, "flops_per_s": flops, "cuda_bytes": peak["bytes"],
           "ran_on_cuda": ran_on_cuda, "diff": diff, "agree": diff["rel_peak"] <= AGREE_REL,
           "cpu_rerun_identical": acc_rerun.max_abs == 0.0}
    frac = {}
    if rates.get("cpu_numpy_fp32"):
        frac["cpu_vs_cpu_matmul"] = flops["cpu"] / rates["cpu_numpy_fp32"]
        frac["dev_vs_cpu_matmul"] = flops["dev"] / rates["cpu_numpy_fp32"]
    if rates.get("cuda_fp32"):
        frac["dev_vs_cuda_fp32"] = flops["dev"] / rates["cuda_fp32"]
        frac["dev_vs_cuda_tf32"] = flops["dev"] / rates["cuda_tf32"]
    out["fraction_of_matmul"] = frac
    where = "" if dev.type != "cuda" else (" (on the GPU)" if ran_on_cuda else " (no CUDA memory used: the lowrank decoder is numpy, it ran on the CPU)")
    rows = [
        ("restore lowrank, CPU", f"{fps['cpu']:,.0f} frames/s",
         f"{frames:,} frames in {t['cpu']:.2f} s; {flops['cpu'] / 1e9:.1f} GFLOP/s"
         + (f" = {frac['cpu_vs_cpu_matmul']:.1%} of CPU matmul" if "cpu_vs_cpu_matmul" in frac else "")),
        (f"restore lowrank, ArchiveDecoder(..., '{dev}')", f"{fps['dev']:,.0f} frames/s",
         f"{t['dev']:.2f} s; {flops['dev'] / 1e9:.1f} GFLOP/s{where}"
         + (f" = {frac['dev_vs_cuda_fp32']:.2%} of GPU fp32 matmul, {frac['dev_vs_cuda_tf32']:.2%} of TF32"
            if "dev_vs_cuda_fp32" in frac else "")
         + (f", {frac['dev_vs_cpu_matmul']:.1%} of CPU matmul" if dev.type == "cuda" and not ran_on_cuda else "")),
        ("restore lowrank FLOPs per frame", f"{per_frame / 1e6:.2f} M",
         f"matmul {matmul_per_frame / 1e6:.2f} M (d = {archive.decoder_config['code_dim']}, D = {archive.dim}"
         f"{', complement noise' if archive.decoder_config.get('residual_space') == 'complement' else ''})"),
        ("restore lowrank CPU vs device, max abs diff", fmt(diff["max_abs"]),
         f"rel to peak {fmt(diff['rel_peak'])}, RMS rel {fmt(diff['rms_rel'])}; agree: {fmt(out['agree'])}"),
    ]
    return {**out, "rows": rows}


def _models(in_dim: int, num_classes: int):
    from tascond_cli.evaluate import TrainConfig, build_model

    out = {}
    for name in ("mstcn", "asformer"):
        torch.manual_seed(0)
        out[name] = build_model(in_dim, num_classes, TrainConfig(model=name)).eval()
    return out


def step_forward(b: Bench) -> dict:
    dev, ds = b.state["dev"], b.state["dataset"]
    videos = ds.train[: b.args.forward_videos]
    inputs = [torch.from_numpy(np.array(v.features(), dtype=np.float32))[None] for v in videos]  # (1, D, T)
    out, rows = {}, []
    for name, model in _models(ds.dim, ds.num_classes).items():
        other = copy.deepcopy(model).to(dev)
        with torch.no_grad():
            ref = [model(x, None).numpy() for x in inputs]  # (S, 1, C, T)
        modes = [("defaults", None), ("ieee", False)] if dev.type == "cuda" else [("same", None)]
        for mode, allow in modes:
            acc, agree, frames = DiffAcc(), 0, 0
            with tf32(matmul=allow, conv=allow), torch.no_grad():
                for x, r in zip(inputs, ref):
                    y = other(x.to(dev), None).float().cpu().numpy()
                    acc.add(r, y)
                    agree += int((r[-1].argmax(1) == y[-1].argmax(1)).sum())
                    frames += r.shape[-1]
            res = {**acc.result(), "argmax_agree": agree / max(frames, 1), "frames": frames}
            out[f"{name}_{mode}"] = res
            label = {"defaults": "torch's TF32 defaults (cuDNN convolutions TF32, matmuls IEEE)",
                     "ieee": "TF32 off everywhere", "same": "both sides on the CPU"}[mode]
            rows.append((f"{name} forward CPU vs {dev}, max abs diff of logits", fmt(res["max_abs"]),
                         f"{label}; rel to peak {fmt(res['rel_peak'])}; argmax agrees on {res['argmax_agree']:.2%} of {frames:,} frames"))
        del other
    return {"results": out, "videos": len(videos), "rows": rows}


def _subset(ds, k: int):
    return dataclasses.replace(ds, parts={"train": list(ds.train[:k])})


def step_tascond_agree(b: Bench) -> dict:
    from tascond_cli.methods import Config, make_baseline

    a, dev = b.args, b.state["dev"]
    ds = _subset(b.state["dataset"], a.agree_videos)
    cfg = Config(seed=0).with_(generator__steps=a.agree_steps, inversion__iters=a.agree_iters)
    if dev.type == "cuda":
        torch.ones(1, device=dev).sum().item()  # CUDA context up before the clock starts
    t: dict = {}
    with timed(torch.device("cpu"), t, "cpu"):
        ref = make_baseline("tascond", ds, cfg.with_(device="cpu"))
    peak: dict = {}
    with cuda_peak(peak, "bytes"), timed(dev, t, "dev"):
        other = make_baseline("tascond", ds, cfg.with_(device=str(dev)))
    rel = abs(ref.error - other.error) / ref.error if ref.error else 0.0
    loose = rel <= LOOSE_REL
    b.state["tascond_small"] = ref.archive
    rows = [
        (f"condense tascond ({a.agree_steps} steps, {a.agree_iters} iters, {len(ds.train)} videos), CPU",
         f"{t['cpu']:.1f} s", _phases(ref.seconds)),
        (f"condense tascond (same), {dev}", f"{t['dev']:.1f} s", _phases(other.seconds) + f"; CUDA memory {peak['bytes'] / 2**20:.0f} MiB"),
        ("tascond reconstruction error CPU / device", f"{ref.error:.4f} / {other.error:.4f}",
         f"relative difference {rel:.2%}; loose agreement (<= {LOOSE_REL:.0%}): {fmt(loose)}"),
    ]
    return {"seconds": t, "phases_cpu": ref.seconds, "phases_dev": other.seconds, "error_cpu": ref.error,
            "error_dev": other.error, "rel_diff_error": rel, "loose_agree": loose, "cuda_bytes": peak["bytes"],
            "steps": a.agree_steps, "iters": a.agree_iters, "videos": len(ds.train), "rows": rows}


def _phases(seconds: dict) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items() if v >= 0.05) or "-"


def _epochs(dev: torch.device, videos, num_classes: int, config) -> list[float]:
    """Seconds of each epoch of ``train_model`` (the epoch callback reads the loss: a device sync)."""
    from tascond_cli.evaluate import train_model

    stamps: list[float] = []
    sync(dev)
    t0 = time.perf_counter()
    train_model(videos, num_classes, config, on_epoch=lambda *_: stamps.append(time.perf_counter()))
    sync(dev)
    return list(np.diff([t0, *stamps]))


def _train_videos(ds, k: int | None = None):
    return [(v.features(), v.labels) for v in (ds.train if k is None else ds.train[:k])]


def step_train(b: Bench, model: str) -> dict:
    from tascond_cli.evaluate import TrainConfig

    dev, ds = b.state["dev"], b.state["dataset"]
    videos = _train_videos(ds)
    epochs = 2 if model == "mstcn" else 1
    warm = _epochs(dev, videos[:2], ds.num_classes, TrainConfig(model=model, epochs=1, device=str(dev)))
    per = _epochs(dev, videos, ds.num_classes, TrainConfig(model=model, epochs=epochs, device=str(dev)))
    frames = b.state["train_frames"]
    steady = per[-1]
    b.state[f"epoch_{model}"] = steady / len(videos)
    rows = [(f"{model} training, {dev}, s per epoch", f"{steady:.2f} s",
             f"{len(videos)} videos, {frames / steady:,.0f} frames/s; epochs: "
             + ", ".join(f"{x:.2f}" for x in per) + f" s (warm-up on 2 videos {warm[0]:.2f} s)")]
    return {"epoch_seconds": per, "warmup_seconds": warm, "videos": len(videos), "frames": frames,
            "frames_per_s": frames / steady, "rows": rows}


def step_tascond(b: Bench) -> dict:
    from tascond_cli.methods import Config, make_baseline

    a, dev, ds = b.args, b.state["dev"], b.state["dataset"]
    torch.ones(1, device=dev).sum().item()
    t: dict = {}
    peak: dict = {}
    with cuda_peak(peak, "bytes"), timed(dev, t, "total"):
        res = make_baseline("tascond", ds, Config(seed=0, device=str(dev)).with_(generator__steps=a.steps))
    b.state["tascond"] = res.archive
    from tascond_cli.archive import archive_bytes

    size = len(archive_bytes(res.archive))
    rows = [(f"condense tascond ({a.steps} generator steps), {dev}", f"{t['total']:.1f} s",
             _phases(res.seconds) + f"; {res.kept_videos}/{res.train_videos} videos kept; peak CUDA {peak['bytes'] / 2**20:.0f} MiB"),
            ("tascond reconstruction error (FVU)", f"{res.error:.4f}", f"archive {size / 1e6:.2f} MB")]
    return {"seconds": t["total"], "phases": res.seconds, "error": res.error, "kept": res.kept_videos,
            "train_videos": res.train_videos, "archive_bytes": size, "cuda_bytes": peak["bytes"], "steps": a.steps, "rows": rows}


def step_restore_generator(b: Bench) -> dict:
    from tascond_cli.restore import ArchiveDecoder

    dev = b.state["dev"]
    archive = b.state.get("tascond") or b.state.get("tascond_small")
    if archive is None:
        raise RuntimeError("no tascond archive (its steps failed or were skipped)")
    n = archive.num_videos
    t: dict = {}
    dec_cpu = ArchiveDecoder(archive, "cpu")
    dec_cpu.features(0)
    cache: list = []
    with timed(torch.device("cpu"), t, "cpu"):
        frames = _decode_all(dec_cpu, n, keep=cache)
    peak: dict = {}
    restored: list = []
    with cuda_peak(peak, "bytes"):
        dec_dev = ArchiveDecoder(archive, str(dev))
        dec_dev.features(0)
        with timed(dev, t, "dev"):
            _decode_all(dec_dev, n, keep=restored)
    diff = _compare(cache, restored).result()
    del restored, cache
    weights = 0
    try:
        weights = sum(m.weight.numel() for m in dec_cpu._bound.net.modules() if isinstance(m, torch.nn.Linear))
    except Exception:
        pass
    per_frame = 2.0 * weights
    fps = {"cpu": frames / t["cpu"], "dev": frames / t["dev"]}
    rates = b.state.get("rates", {})
    note = ""
    if per_frame and rates.get("cuda_fp32"):
        note = f"; {fps['dev'] * per_frame / 1e12:.2f} TFLOP/s = {fps['dev'] * per_frame / rates['cuda_fp32']:.1%} of GPU fp32 matmul"
    rows = [("restore tascond (generator), CPU", f"{fps['cpu']:,.0f} frames/s", f"{frames:,} frames of {n} videos in {t['cpu']:.2f} s"),
            (f"restore tascond (generator), {dev}", f"{fps['dev']:,.0f} frames/s",
             f"{t['dev']:.2f} s; ~{per_frame / 1e6:.1f} MFLOP/frame{note}"),
            ("restore tascond CPU vs device, max abs diff", fmt(diff["max_abs"]),
             f"rel to peak {fmt(diff['rel_peak'])}, RMS rel {fmt(diff['rms_rel'])}; agree: {fmt(diff['rel_peak'] <= AGREE_REL)}")]
    return {"frames": frames, "videos": n, "seconds": t, "frames_per_s": fps, "flops_per_frame": per_frame,
            "cuda_bytes": peak["bytes"], "diff": diff, "rows": rows}


def step_mstcn_cpu(b: Bench) -> dict:
    from tascond_cli.evaluate import TrainConfig

    ds = b.state["dataset"]
    videos = _train_videos(ds, b.args.cpu_videos)
    per = _epochs(torch.device("cpu"), videos, ds.num_classes, TrainConfig(epochs=1, device="cpu"))
    per_video = per[0] / len(videos)
    gpu = b.state.get("epoch_mstcn")
    rows = [("mstcn training, CPU, s per video-epoch", f"{per_video:.2f} s",
             f"{len(videos)} videos, {torch.get_num_threads()} threads"
             + (f"; the device is {per_video / gpu:.0f}x faster per video" if gpu else ""))]
    return {"seconds": per[0], "videos": len(videos), "per_video": per_video,
            "speedup": per_video / gpu if gpu else None, "rows": rows}


# --------------------------------------------------------------------------- main


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu"), help="folder for gpu.json and gpu.md")
    p.add_argument("--quick", action="store_true", help="12 videos, fewer steps (implied without CUDA, with 4 videos)")
    p.add_argument("--device", default="auto", help="device under test: auto (cuda if available), cuda[:N] or cpu")
    p.add_argument("--videos", type=int, help="videos per part (train, test); default 48, quick 12, without CUDA 4")
    p.add_argument("--dim", type=int, default=2048, help="feature dimension D (default 2048)")
    p.add_argument("--subsample", type=int, default=4)
    p.add_argument("--features", default="hard", choices=("hard", "default"))
    p.add_argument("--data", help="use this dataset folder (split 1) instead of synthesizing one")
    p.add_argument("--steps", type=int, help="tascond generator steps for its timing (default 1500, quick 300, without CUDA 50)")
    p.add_argument("--agree-steps", type=int, help="generator steps of the CPU/device tascond check (default 100, quick 30, without CUDA 10)")
    p.add_argument("--agree-iters", type=int, help="inversion iterations of that check (default 20, quick 10, without CUDA 5)")
    p.add_argument("--agree-videos", type=int, help="training videos of that check (default 6, quick 3, without CUDA 2)")
    p.add_argument("--forward-videos", type=int, default=4, help="videos of the forward check (default 4)")
    p.add_argument("--cpu-videos", type=int, default=4, help="videos of the CPU MS-TCN epoch (default 4)")
    p.add_argument("--matmul-n", type=int, help="GPU matmul size (default 8192, quick 4096)")
    p.add_argument("--matmul-cpu-n", type=int, help="CPU matmul size (default 2048, quick 1024)")
    p.add_argument("--budget-s", type=float, default=540.0, help="skip the remaining steps after this many seconds (540)")
    p.add_argument("--keep", action="store_true", help="keep the synthesized data (its path is in the JSON)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    b = Bench(args)
    notes = b.results["notes"]
    want = args.device.strip().lower()
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda") and not torch.cuda.is_available():
        notes.append(f"--device {args.device} asked for CUDA, which is not available; running on the CPU")
        want = "cpu"
    dev = torch.device(want)
    if dev.type == "cuda" and dev.index is not None:
        torch.cuda.set_device(dev)
    if dev.type != "cuda":
        args.quick = True
        notes.insert(0, NO_CUDA_NOTE + "; both sides of every comparison ran on the CPU, so their differences "
                     "only exercise the code, and --quick is implied")
    q = args.quick
    tier = "cpu" if dev.type != "cuda" else ("quick" if q else "full")
    for key, value in TIERS[tier].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    b.state["dev"] = dev
    b.state["tmp"] = Path(tempfile.mkdtemp(prefix="tascond-gpu-"))
    b.results["settings"] = {"device": str(dev), "quick": q, "tier": tier, "videos": args.videos, "dim": args.dim,
                             "subsample": args.subsample, "features": args.features, "tascond_steps": args.steps,
                             "agree_steps": args.agree_steps, "agree_iters": args.agree_iters,
                             "agree_videos": args.agree_videos, "matmul_n": args.matmul_n,
                             "matmul_cpu_n": args.matmul_cpu_n, "budget_s": args.budget_s}
    b.results["env"] = env_info()
    if notes:
        print(f"[gpu] {notes[0]}", file=sys.stderr, flush=True)
    on_gpu = dev.type == "cuda"
    try:
        b.step("matmul", lambda: step_matmul(b))
        b.step("synth", lambda: step_synth(b))
        data = ("dataset",)
        b.step("lowrank", lambda: step_lowrank(b), requires=data)
        b.step("restore_lowrank", lambda: step_restore_lowrank(b), requires=("lowrank", "lowrank_cpu_restored"))
        b.step("forward", lambda: step_forward(b), requires=data)
        b.step("tascond_agree", lambda: step_tascond_agree(b), need_s=30, requires=data)
        b.step("train_mstcn", lambda: step_train(b, "mstcn"), need_s=15, requires=data)
        b.step("train_asformer", lambda: step_train(b, "asformer"), need_s=30, requires=data)
        b.step("tascond", lambda: step_tascond(b), need_s=60 if on_gpu else 30, requires=data)
        b.step("restore_generator", lambda: step_restore_generator(b), need_s=15, requires=data)
        b.step("mstcn_cpu", lambda: step_mstcn_cpu(b), need_s=30, requires=data,
               skip=None if on_gpu else "the device under test is the CPU: train_mstcn is the CPU figure")
    finally:
        if args.keep:
            b.results["data_kept"] = str(b.state["tmp"])
        else:
            shutil.rmtree(b.state["tmp"], ignore_errors=True)
        b.results["total_s"] = b.elapsed()
        b.write()
    print(b.markdown())
    failed = [k for k, v in b.results["steps"].items() if v["status"] == "failed"]
    print(f"[gpu] wrote {b.out / 'gpu.json'} and {b.out / 'gpu.md'}; {len(failed)} step(s) failed"
          + (f": {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
