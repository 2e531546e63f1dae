#!/usr/bin/env bash
# The GPU check of issue 12 ("the GPU path, measured"): print the environment, then run
# benchmarks/gpu.py from the repository root with this script's arguments (see its docstring).
#   bash benchmarks/gpu.sh [--quick] [--out DIR] [--device cuda|cpu] ...
# Through the device tool: run with command `bash benchmarks/gpu.sh --out $OUT/gpu` (timeout_s 600).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== environment ($(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(uname -srm), $(nproc 2>/dev/null || echo '?') CPUs)"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi || echo "nvidia-smi failed (exit $?)"
else
    echo "nvidia-smi: not found"
fi
python3 --version
python3 - <<'PY' || echo "torch: cannot be imported"
import torch
print(f"torch {torch.__version__} (built with CUDA {torch.version.cuda}); torch.cuda.is_available() = {torch.cuda.is_available()}")
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        print(f"  cuda:{i}: {torch.cuda.get_device_name(i)}")
PY
echo "== benchmarks/gpu.py $*"
exec python3 benchmarks/gpu.py "$@"
