"""Levers on the yardstick: build candidate archives of a yardstick's data and train MS-TCN on them.

Run ``benchmarks/yardstick.py`` first; its work folder (``--work``/NAME) holds ``data/`` (the
synthesized set) and the ``mean``/``blind`` archives. This script adds archives to that folder and
trains MS-TCN (the recipe, 50 epochs, one torch thread per run, the yardstick's own ``train_one``) on
them, appending one JSON line per archive built and per run to ``WORK/lever.jsonl``::

    python3 benchmarks/levers.py WORK --build tascond encoded cpca-64-4 'tascond+sampling__ratio=1.0'
    python3 benchmarks/levers.py WORK --train tascond cpca-64-4 --seeds 0 1

A name is a method of the registry (``tascond``, ``encoded``, ``coreset``, ...), optionally with
``+field__path=JSON`` config overrides, or ``cpca-K-S``: a research codec that is not (yet) a method,
the training frames' top K principal components with one code per chunk of about S frames (the chunk
rule; each code the projection of its chunk's mean), restored by the ``linear`` decoder. ``cpca-K-1``
is ``tascond baseline pca --pca-dim K``.
"""
import argparse, json, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parent))

def chunk_pca_archive(dataset, k, stride, dtype=np.float16):
    from tascond_cli.archive import Archive
    from tascond_cli.chunks import chunk_bounds, offsets_from_counts
    from tascond_cli.methods.pca import principal_components
    videos = dataset.train
    mean, comp = principal_components(videos, k, lambda *a: None)
    labels, lengths, counts, per_video, codes = [], [], [], [], []
    for v in videos:
        x = np.asarray(v.features(), dtype=np.float64)
        segs = v.segments(); per_video.append(len(segs))
        for s in segs:
            L = s.end - s.start
            n = max(1, int(round(L / stride)))
            b = chunk_bounds(L, n)
            part = x[:, s.start:s.end]
            cm = np.stack([part[:, b[i]:b[i+1]].mean(1) for i in range(n)])  # (n, D)
            codes.append(((cm - mean) @ comp.T).astype(dtype))
            labels.append(s.label); lengths.append(L); counts.append(n)
    settings = {"method": "pca", "dim": dataset.dim, "pca_dim": int(comp.shape[0]), "split": 1}
    return Archive(settings=settings, class_names=list(dataset.mapping.names), video_names=[v.name for v in videos],
        video_segments=offsets_from_counts(per_video), segment_labels=np.array(labels, np.int32),
        segment_lengths=np.array(lengths, np.int64), segment_codes=offsets_from_counts(counts),
        codes=np.concatenate(codes), decoder_kind="linear", decoder_config={"pca_dim": int(comp.shape[0])},
        decoder_weights={"components": comp.astype(dtype), "mean": mean.astype(dtype)})

def build(name, data, work):
    from tascond_cli.archive import write_archive
    from tascond_cli.data import open_dataset
    from tascond_cli.methods import Config, make_baseline
    ds = open_dataset(data, parts=("train",))
    t0 = time.perf_counter()
    if name.startswith("cpca"):  # cpca-K-S
        _, k, s = name.split("-")
        arch = chunk_pca_archive(ds, int(k), float(s))
        info = {}
    else:
        method, *opts = name.split("+")
        cfg = Config(device="cpu")
        for o in opts:
            key, val = o.split("=")
            cfg = cfg.with_(**{key: json.loads(val)})
        res = make_baseline(method, ds, cfg)
        arch = res.archive
        info = {"error": res.error}
    n = write_archive(arch, work / f"{name}.tcd", overwrite=True)
    return {"name": name, "bytes": n, "seconds": time.perf_counter() - t0, **info}

def one_thread():
    import torch; torch.set_num_threads(1)

def train(src, seed, work, epochs):
    from yardstick import train_one  # reads WORK/data and WORK/<src>.tcd

    return train_one(src, seed, epochs, work, "cpu")

METRICS = ("acc", "edit", "f1@10", "f1@25", "f1@50")


def report(work: Path, yardstick_json: Path, against: str) -> str:
    """A markdown table: every source's mean per metric over the seeds it has, its retention of the
    original per metric and averaged, its storage, and its paired difference with ``against`` over the
    seeds both have (``evaluate.stats.paired_difference``, Student-t 95%)."""
    from tascond_cli.evaluate.stats import average_retention, paired_difference

    runs: dict[str, dict[int, dict]] = {}
    sizes: dict[str, int] = {}
    ys = json.loads(yardstick_json.read_text())
    for r in ys["runs"]:
        runs.setdefault(r["source"], {})[r["seed"]] = r["scores"]
    sizes.update({k: v for k, v in ys["prepared"]["archives"].items()})
    for line in (work / "lever.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "build" in rec:
            sizes[rec["build"]["name"]] = rec["build"]["bytes"]
        else:
            runs.setdefault(rec["source"], {})[rec["seed"]] = rec["scores"]
    seeds = sorted(runs["original"])
    original = {m: float(np.mean([runs["original"][k][m] for k in seeds])) for m in METRICS}
    train_bytes = ys["prepared"]["train_feature_bytes"]
    lines = ["| train on | seeds | " + " | ".join(METRICS) + " | retention (per metric) | avg | archive | x | "
             f"paired − {against} (95%) |", "|---|---|" + "---:|" * (len(METRICS) + 5)]
    for src, by_seed in runs.items():
        ks = sorted(by_seed)
        mean = {m: float(np.mean([by_seed[k][m] for k in ks])) for m in METRICS}
        ret = [100 * mean[m] / original[m] for m in METRICS]
        size = sizes.get(src)
        common = [k for k in ks if k in runs.get(against, {})]
        if src != against and len(common) >= 2:
            d = paired_difference([by_seed[k] for k in common], [runs[against][k] for k in common], original)
            diff = f"{d.mean:+.1f} [{d.low:+.1f}, {d.high:+.1f}]"
        else:
            diff = "-"
        lines.append(f"| {src} | {','.join(map(str, ks))} | " + " | ".join(f"{mean[m]:.1f}" for m in METRICS)
                     + " | " + " / ".join(f"{r:.0f}" for r in ret) + f" | {average_retention(mean, original):.1f}"
                     + (f" | {size / 1e3:.0f} KB | {train_bytes / size:.0f}" if size else " | - | -") + f" | {diff} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("work", type=Path, help="A yardstick work folder (holds data/).")
    ap.add_argument("--build", nargs="*", default=[])
    ap.add_argument("--train", nargs="*", default=[])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--report", type=Path, metavar="YARDSTICK_JSON",
                    help="Print the table of every run so far (original and mean from this yardstick result).")
    ap.add_argument("--against", default="tascond", help="The source the paired differences are taken against.")
    a = ap.parse_args()
    if a.report:
        print(report(a.work, a.report, a.against))
        sys.exit(0)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = a.work / "lever.jsonl"
    for name in a.build:
        r = build(name, a.work / "data", a.work)
        print(json.dumps(r), flush=True)
        with open(out, "a") as f: f.write(json.dumps({"build": r}) + "\n")
    if a.train:
        with ProcessPoolExecutor(a.workers, initializer=one_thread) as pool:
            futs = {(s, seed): pool.submit(train, s, seed, a.work, a.epochs) for seed in a.seeds for s in a.train}
            for key, f in futs.items():
                r = f.result(); sc = r["scores"]
                print(key, {k: round(v, 1) for k, v in sc.items()}, r["seconds"], flush=True)
                with open(out, "a") as fh: fh.write(json.dumps({"source": key[0], "seed": key[1], **r}) + "\n")
