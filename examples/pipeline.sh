#!/usr/bin/env bash
# A tascond shell pipeline: condense straight into restore, read numbers out of --json, and compare
# our archive with a baseline under the standard protocol.
#
#   examples/pipeline.sh DATA WORK [condense options...]
#
# DATA is any MS-TCN-layout dataset (e.g. made by `tascond synth`), WORK a folder to create.
# EPOCHS and SEEDS (environment) set the MS-TCN training of the last step (default 50 and 3).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 DATA WORK [condense options...]" >&2
    exit 2
fi
data=$1
work=$2
shift 2
mkdir -p "$work"

# 1. Condense to stdout and restore from stdin: no archive touches the disk.
tascond condense "$data" -o - "$@" | tascond restore - -o "$work/restored"

# 2. Keep an archive, and pull what matters out of `info --json` with a filter.
tascond condense "$data" -o "$work/ours.tcd" "$@"
tascond info "$work/ours.tcd" --json | python3 -c '
import json, sys
info = json.load(sys.stdin)
parts = info["storage"]
print("%s: %d videos, %d frames, %d bytes (codes %d, decoder %d)" % (
    info["archive"], info["videos"], info["frames"], info["bytes"], parts["codes"], parts["decoder"]))
'

# 3. A baseline at the same storage, and the floor.
tascond baseline mean "$data" -o "$work/mean.tcd"
tascond baseline blind "$data" -o "$work/blind.tcd"

# 4. Train MS-TCN on each (archives are decoded on the fly) and print name, Acc, Edit, retention.
tascond evaluate --model mstcn --data "$data" --train "$work/ours.tcd" --train "$work/mean.tcd" \
    --train "$work/blind.tcd" --epochs "${EPOCHS:-50}" --seeds "${SEEDS:-3}" --json > "$work/evaluate.json"
python3 - "$work/evaluate.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
pct = lambda part: "n/a" if not part or part["avg"] is None else "%.1f%%" % part["avg"]  # null: undefined
for r in report["results"]:
    print("%-12s acc %5.1f  edit %5.1f  retention %6s  above blind %6s  %d bytes" % (
        r["name"], r["mean"]["acc"], r["mean"]["edit"], pct(r["retention"]), pct(r["above_floor"]),
        r["storage_bytes"]))
PY
