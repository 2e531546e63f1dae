"""Where does a restore-trained MS-TCN lose? Train on one ``lowrank_levers.py`` variant, then score the
model on the real test features and on the test features taken through the same basis (``proj``),
clamped (``proj_clamp``) and with the variant's noise outside the basis (``proj+cnoise_clamp``, the
training distribution applied to the test videos). Run from the repository root::

    python3 benchmarks/lowrank_diagnose.py WORK "K=32,S=1,clamp=1,noise=1,comp=1" 1
"""
import sys, json, numpy as np, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import lowrank_levers as E

def main(work, spec, seed):
    import torch; torch.set_num_threads(1)
    from tascond_cli.data import open_dataset
    from tascond_cli.evaluate.train import TrainConfig, train_mstcn, predict_many
    from tascond_cli.evaluate.metrics import score
    p = E.parse(spec)
    base, labels, resid, info = E.build(work, spec)
    pairs = E.Pairs(base, labels, p, resid, seed); pairs.P = E.build.P; pairs.zstd = E.build.zstd; pairs.zrho = E.build.zrho
    ds = open_dataset(work / "data")
    cfg = TrainConfig(epochs=50, seed=seed, device="cpu")
    model = train_mstcn(pairs, ds.num_classes, cfg)
    P = E.build.P.astype(np.float64)
    X = np.concatenate([np.asarray(v.features(), np.float64) for v in ds.train], 1); mu = X.mean(1)
    gt = [np.asarray(v.labels) for v in ds.test]
    real = [np.asarray(v.features(), np.float32) for v in ds.test]
    proj = [(P.T @ (P @ (x - mu[:, None])) + mu[:, None]).astype(np.float32) for x in real]
    std, rho, U, s = resid
    rng = np.random.default_rng(5)
    def cnoise(x):
        n = std[:, None] * E.ar1(rng, x.shape, rho); n -= E.build.P.T @ (E.build.P @ n); return n
    variants = {"real": real, "proj": proj, "proj_clamp": [np.maximum(x, 0) for x in proj],
                "proj+cnoise_clamp": [np.maximum(x + cnoise(x), 0) for x in proj]}
    # features of the test set restored the way training was (codec + noise)
    res = {}
    for k, feats in variants.items():
        preds = predict_many(model, feats)
        sc = score(preds, gt)
        res[k] = {m: round(v, 1) for m, v in sc.items()}
        print(spec, seed, k, res[k], flush=True)
    return res

if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
