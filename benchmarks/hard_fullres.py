"""The archive ratio at full temporal resolution (issue 10: at least 500x).

Synthesizes the hard yardstick's 90 Breakfast training videos (real label files, split 1) at every
frame, D = 2048 (1.24 GB of training features), then condenses them with ``lowrank``: once with the
stride ``tascond condense --budget 500x`` plans, once with a code every 12 frames (the default's
3 frames at every 4th frame, in seconds). Prints one JSON line each and writes them to
``results/hard_fullres.json``. Run from the repository root (about 15 minutes on 2 CPU cores)::

    python3 benchmarks/hard_fullres.py [WORK]
"""
import sys, json, time
from pathlib import Path
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from yardstick import realdata
from tascond_cli.synth import SynthConfig, feature_model, synthesize
from tascond_cli.methods import make_baseline, Config
from tascond_cli.archive import write_archive
from tascond_cli.data import open_dataset
out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "work" / "hard_fullres"
out.mkdir(parents=True, exist_ok=True)
results = []
if not (out / "data").exists():
    synthesize(out / "data", SynthConfig(labels_from=realdata() / "breakfast", videos=90, split=1, subsample=1, dim=2048, seed=0, model=feature_model("hard")), overwrite=True)
ds = open_dataset(out / "data", parts=("train",))
from tascond_cli.methods.budget_lowrank import plan_lowrank
plan = plan_lowrank(ds, Config(device="cpu").for_method(__import__("tascond_cli.methods", fromlist=["METHODS"]).METHODS["lowrank"]), "500x")[0]
print("plan", plan.describe(), plan.estimate["total"], flush=True)
for stride in [plan.config.lowrank.stride, 12.0]:
    t0 = time.perf_counter()
    r = make_baseline("lowrank", ds, Config(device="cpu").with_(lowrank__stride=stride))
    n = write_archive(r.archive, out / f"lowrank-s{int(stride)}.tcd", overwrite=True)
    results.append({"stride": stride, "bytes": n, "train_bytes": r.train_bytes, "ratio": r.train_bytes / n, "seconds": round(time.perf_counter() - t0, 1), "frames": r.frames, "error": r.error})
    print(json.dumps(results[-1]), flush=True)
from datetime import date
cfg = Config().lowrank
(HERE / "results" / "hard_fullres.json").write_text(json.dumps({"plan": plan.describe(), "runs": results, "date": date.today().isoformat(), "command": "python3 benchmarks/hard_fullres.py", "defaults": f"lowrank --noise {cfg.noise} --floor {cfg.floor}"}, indent=2) + "\n")
