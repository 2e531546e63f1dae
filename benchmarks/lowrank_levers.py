"""Research levers of the ``lowrank`` codec on a yardstick's data (issue 10), in plain numpy.

Each variant restores the training videos of a yardstick work folder (``benchmarks/yardstick.py``
writes ``WORK/data``) in memory and trains MS-TCN on them (the recipe, 50 epochs, one torch thread
per run, tested on the original test videos), appending one JSON line per run to ``WORK/exp.jsonl``.
A variant is ``key=value`` pairs separated by commas:

- ``K``: principal directions kept (64); ``S``: frames per code (4); ``interp=1``: codes are the
  least-squares fit through linear interpolation between chunk centres (else chunk means, held);
- ``clamp=1``: clamp the restore at 0; ``cls=1``: subtract each frame's class mean first (a
  class-conditional linear decoder) and add it back at restore;
- ``noise=X``: add seeded AR(1) noise of X times the per-channel residual size; ``comp=1``: only its
  part outside the basis (measured on that part); ``sub=1``: also per-direction noise inside the
  basis; ``fresh=1``: a fresh draw every time a video is read (every epoch), else one draw per video.

The package's ``lowrank`` method is ``K=128,S=3,interp=1,clamp=1,noise=1,comp=1`` with int8 codes.
Run from the repository root, after ``yardstick.py`` made the folder::

    python3 benchmarks/lowrank_levers.py WORK "K=64,S=4,interp=1,clamp=1,noise=1,comp=1" --seeds 1 0
    python3 benchmarks/lowrank_levers.py WORK "K=64,S=4" --info    # sizes and errors only

Every run of issue 10 is in ``results/lowrank_levers_D3.jsonl``.
"""
import sys, os, json, time, argparse
from pathlib import Path
import numpy as np
METRICS = ("acc", "edit", "f1@10", "f1@25", "f1@50")

def parse(spec):
    d = dict(K=64, S=4.0, interp=0, clamp=0, noise=0.0, fresh=0, R=0, q="f16", cls=0, comp=0, sub=0, tex=0)
    for kv in spec.split(","):
        k, v = kv.split("=")
        d[k] = type(d[k])(float(v)) if k != "q" else v
    return d

def hat(L, n):
    """(L, n) linear-interpolation weights from n knots at chunk centres."""
    if n == 1: return np.ones((L, 1))
    centres = (np.arange(n) + 0.5) * L / n - 0.5
    t = np.arange(L)
    B = np.zeros((L, n))
    j = np.clip(np.searchsorted(centres, t, side="right") - 1, 0, n - 2)
    w = np.clip((t - centres[j]) / (centres[j + 1] - centres[j]), 0, 1)
    B[t, j] = 1 - w; B[t, j + 1] = w
    return B

def psi(L, freqs):
    """(L, n) cosine basis at DCT-II frequencies ``freqs``, scaled so a code is an amplitude (DC: the mean)."""
    t = np.arange(L)[:, None] + 0.5
    f = np.asarray(freqs)[None, :]
    return np.where(f == 0, 1.0, np.sqrt(2.0) * np.cos(np.pi * t * f / L))

def dct_select(zs, n):
    """The DC and the n-1 most energetic other DCT-II frequencies of ``zs`` (L, K), sorted."""
    L = zs.shape[0]
    if n >= L: return np.arange(L)
    energy = ((psi(L, np.arange(L)).T @ zs) ** 2).sum(1)
    rest = 1 + np.argsort(-energy[1:], kind="stable")[: n - 1]
    return np.sort(np.r_[0, rest])

def class_means(videos, X):
    y = np.concatenate([np.asarray(v.labels) for v in videos])
    M = np.zeros((X.shape[0], int(y.max()) + 1))
    for c in np.unique(y): M[:, c] = X[:, y == c].mean(1)
    return M

def encode(videos, p):
    X = np.concatenate([np.asarray(v.features(), np.float64) for v in videos], 1)  # (D, N)
    y = np.concatenate([np.asarray(v.labels) for v in videos])
    if p["cls"]:
        M = class_means(videos, X); encode.M = M
        Xc = X - M[:, y]
        mu = np.zeros(X.shape[0]); C = np.cov(Xc)
    else:
        encode.M = None
        mu = X.mean(1); C = np.cov(X)
    w, V = np.linalg.eigh(C); P = V[:, ::-1][:, :p["K"]].T  # (K, D)
    out = []
    for v in videos:
        x = np.asarray(v.features(), np.float64)
        if encode.M is not None: x = x - encode.M[:, np.asarray(v.labels)]
        z = P @ (x - mu[:, None])  # (K, T)
        codes = []
        for s in v.segments():
            L = s.end - s.start; n = max(1, int(round(L / p["S"])))
            n = min(n, L)
            zs = z[:, s.start:s.end].T  # (L, K)
            if p["interp"] == 2:
                f = dct_select(zs, n); B = psi(L, f); c = B.T @ zs / L
            elif p["interp"]:
                B = hat(L, n); c = np.linalg.lstsq(B, zs, rcond=None)[0]
            else:
                from tascond_cli.chunks import chunk_bounds
                b = chunk_bounds(L, n); c = np.stack([zs[b[i]:b[i+1]].mean(0) for i in range(n)])
            if p["q"] == "i8":
                sc = np.abs(c).max(0) / 127 + 1e-12; c = np.round(c / sc) * sc
            else:
                c = c.astype(np.float16).astype(np.float64)
            codes.append((L, n, c) if p["interp"] != 2 else (L, f, c))
        out.append(codes)
    return mu, P, out

def decode_mean(mu, P, codes, p):
    from tascond_cli.chunks import chunk_bounds
    parts = []
    for L, n, c in codes:
        if p["interp"] == 2: zs = psi(L, n) @ c
        elif p["interp"]: zs = hat(L, n) @ c
        else:
            b = chunk_bounds(L, n); zs = np.repeat(c, np.diff(b), axis=0)
        parts.append(zs)
    z = np.concatenate(parts).T
    return (P.T @ z + mu[:, None]).astype(np.float32)

def ar1(rng, shape, rho):
    d, t = shape; wn = rng.standard_normal((d, t)).astype(np.float32)
    wn[:, 1:] *= np.sqrt(1 - rho * rho); out = np.empty_like(wn); out[:, 0] = wn[:, 0]
    for i in range(1, t): out[:, i] = rho * out[:, i - 1] + wn[:, i]
    return out

class Pairs:
    def __init__(self, base, labels, p, resid, seed):
        self.base, self.labels, self.p, self.resid, self.seed = base, labels, p, resid, seed
        self.calls = 0
    def __len__(self): return len(self.base)
    def __getitem__(self, i):
        x = self.base[i].copy()
        if self.p["noise"] > 0:
            self.calls += 1
            rng = np.random.default_rng([self.seed, i, self.calls if self.p["fresh"] else 0])
            std, rho, U, s = self.resid
            if U is not None:
                x += (U.T * s) @ ar1(rng, (U.shape[0], x.shape[1]), rho) * self.p["noise"]
            n = (std[:, None] * ar1(rng, x.shape, rho)) * self.p["noise"]
            if self.p["comp"]:
                n -= self.P.T @ (self.P @ n)
            if self.p["sub"]:
                n += self.P.T @ (self.zstd[:, None] * ar1(rng, (self.P.shape[0], x.shape[1]), self.zrho)) * self.p["noise"]
            x += n
        if self.p["tex"]:
            rng = np.random.default_rng([self.seed, i, 7])
            y = self.labels[i]; zn = np.zeros((self.P.shape[0], x.shape[1]), np.float32)
            bounds = np.flatnonzero(np.diff(y)) + 1; starts = np.r_[0, bounds]; ends = np.r_[bounds, len(y)]
            for a, b in zip(starts, ends):
                U, s, rho = self.tex[int(y[a])]
                if U is None: continue
                zn[:, a:b] = (U * s) @ ar1(rng, (U.shape[1], b - a), rho)
            x += self.P.T @ zn
        if self.p["clamp"]: np.maximum(x, 0, out=x)
        return x, self.labels[i]

def build(work, spec):
    from tascond_cli.data import open_dataset
    p = parse(spec)
    ds = open_dataset(work / "data", parts=("train",))
    mu, P, codes = encode(ds.train, p)
    base, labels, R = [], [], []
    for v, c in zip(ds.train, codes):
        xr = decode_mean(mu, P, c, p)
        if encode.M is not None: xr = xr + encode.M[:, np.asarray(v.labels)].astype(np.float32)
        base.append(xr); labels.append(np.asarray(v.labels))
        R.append(np.asarray(v.features(), np.float32) - xr)
    Rc = np.concatenate(R, 1)
    fvu = float((Rc ** 2).sum() / ((np.concatenate([np.asarray(v.features(), np.float64) for v in ds.train], 1) - mu[:, None]) ** 2).sum())
    rho = float(np.mean([(r[:, 1:] * r[:, :-1]).sum() / max((r * r).sum(), 1e-9) for r in R]))
    U = s = None
    if p["comp"]:
        Rc = Rc - P.T @ (P @ Rc)
    if p["R"]:
        w, V = np.linalg.eigh(np.cov(Rc)); U = V[:, ::-1][:, :p["R"]].T; s = np.sqrt(np.maximum(w[::-1][:p["R"]], 0))
        Rc = Rc - U.T @ (U @ Rc)
    std = Rc.std(1).astype(np.float32)
    ncodes = sum(np.size(n) if p["interp"] == 2 else n for c in codes for (_, n, _) in c)
    nbytes = ncodes * p["K"] * (1 if p["q"] == "i8" else 2) + P.size * 2
    info = {"fvu": fvu, "rho": rho, "codes": ncodes, "bytes": nbytes}
    build.P = P.astype(np.float32)
    Zr = [P @ r for r in R]
    build.zstd = np.concatenate(Zr, 1).std(1).astype(np.float32)
    build.zrho = float(np.mean([(r[:, 1:] * r[:, :-1]).sum() / max((r * r).sum(), 1e-9) for r in Zr]))
    if p["tex"]:
        r = int(p["tex"]); Zc = np.concatenate(Zr, 1); yc = np.concatenate(labels)
        seg = np.r_[True, np.diff(yc) != 0]  # first frame of a segment (videos start segments too)
        starts = np.cumsum([0] + [z.shape[1] for z in Zr])[:-1]; seg[starts] = True
        tex = {}
        for c in np.unique(yc):
            m = yc == c
            if m.sum() < 2 * r: tex[int(c)] = (None, None, 0.0); continue
            w, V = np.linalg.eigh(np.cov(Zc[:, m])); Uc = V[:, ::-1][:, :r]; sv = np.sqrt(np.maximum(w[::-1][:r], 0))
            Y = Uc.T @ Zc; nxt = m[1:] & m[:-1] & ~seg[1:]
            rho = float((Y[:, 1:][:, nxt] * Y[:, :-1][:, nxt]).sum() / max((Y[:, :-1][:, nxt] ** 2).sum(), 1e-9))
            tex[int(c)] = (Uc.astype(np.float32), sv.astype(np.float32), float(np.clip(rho, -0.95, 0.95)))
        build.tex = tex; info["tex_rho"] = float(np.mean([t[2] for t in tex.values()]))
    info["zrho"] = build.zrho; info["zvar"] = float((build.zstd**2).sum()); info["cvar"] = float((std**2).sum())
    return base, labels, (std, rho, U, s), info

def run(work, spec, seed, epochs):
    import torch; torch.set_num_threads(1)
    from tascond_cli.data import open_dataset
    from tascond_cli.evaluate.protocol import evaluate_sources, TrainSource
    from tascond_cli.evaluate.train import TrainConfig
    t0 = time.time()
    base, labels, resid, info = build(work, spec)
    ds = open_dataset(work / "data")
    pairs = Pairs(base, labels, parse(spec), resid, seed); pairs.P = build.P; pairs.zstd = build.zstd; pairs.zrho = build.zrho; pairs.tex = getattr(build, 'tex', None)
    src = TrainSource(spec, pairs, info["bytes"])
    rep = evaluate_sources(ds, [src], TrainConfig(epochs=epochs, seed=seed, device="cpu"), seeds=1)
    return {"spec": spec, "seed": seed, "scores": rep.results[0].per_seed[0], "info": info, "seconds": time.time() - t0}

def report(path: Path, original: dict) -> str:
    """A markdown table of ``path`` (runs as JSON lines): per variant its seeds, each seed's five-metric
    average, their mean and its retention of ``original`` (the original's per-metric means)."""
    from tascond_cli.evaluate.stats import average_retention
    runs = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        runs.setdefault(r["spec"], {})[r["seed"]] = r["scores"]
    lines = ["| variant | seeds | average per seed | mean | retention |", "|---|---|---|---:|---:|"]
    for spec, by_seed in runs.items():
        ks = sorted(by_seed)
        avg = [float(np.mean([by_seed[k][m] for m in METRICS])) for k in ks]
        mean = {m: float(np.mean([by_seed[k][m] for k in ks])) for m in METRICS}
        lines.append(f"| `{spec}` | {','.join(map(str, ks))} | {' / '.join(f'{a:.1f}' for a in avg)} | "
                     f"{np.mean(avg):.1f} | {average_retention(mean, original):.0f}% |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--report":  # --report RUNS.jsonl YARDSTICK_AND_LEVERS_ORIGINAL_JSON
        print(report(Path(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text())))
        sys.exit()
    ap = argparse.ArgumentParser(); ap.add_argument("work", type=Path); ap.add_argument("specs", nargs="+")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1]); ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2); ap.add_argument("--info", action="store_true")
    a = ap.parse_args()
    if a.info:
        for s in a.specs: print(s, build(a.work, s)[3], flush=True)
        sys.exit()
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(a.workers) as pool:
        futs = [pool.submit(run, a.work, s, seed, a.epochs) for seed in a.seeds for s in a.specs]
        for f in futs:
            r = f.result(); sc = r["scores"]
            print(r["spec"], r["seed"], " ".join(f"{sc[m]:.1f}" for m in METRICS), f"avg {np.mean([sc[m] for m in METRICS]):.1f}", r["info"], f"{r['seconds']:.0f}s", flush=True)
            with open(a.work / "exp.jsonl", "a") as fh: fh.write(json.dumps(r) + "\n")
