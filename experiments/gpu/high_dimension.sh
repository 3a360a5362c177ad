#!/usr/bin/env bash
# B2 (linear-quadratic, Gaussian) in high dimension on one GPU, in under 5 minutes of device time:
#   neural solves at d = 50 and d = 100 (float32, solver.device=cuda, Hutchinson Laplacian),
#   a d = 10 solve and the simulation of 10^6 agents under its policy and under the exact one.
# Prints a table; writes high_dimension.{json,md} under the folder given as argument, else
# under $OUT if set, else results/gpu/high_dimension.
#
#   experiments/gpu/high_dimension.sh [OUT_DIR]          # on the GPU machine
#   experiments/gpu/high_dimension.sh --cpu-smoke [DIR]  # tiny sizes on a CPU (tests)
#
# Sizing (each run <= 2 min on an H200): 1000 Adam steps with 2048 interior points per step
# at d = 50 and d = 100; on the CPU a d = 10 step with 512 points took about 0.5 s, which is
# kernel-bound work a GPU does at launch latency (tens of ms per step for 64-wide MLPs), so
# 1000 steps should take 0.5-1 min per dimension.  The whole python run is capped by
# `timeout` at 280 s, so an estimate gone wrong costs at most that.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SMOKE=0
DIR="${OUT:-$ROOT/results/gpu/high_dimension}"
for arg in "$@"; do
    case "$arg" in
        --cpu-smoke) SMOKE=1 ;;
        -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
        -*) echo "unknown option: $arg" >&2; exit 2 ;;
        *) DIR="$arg" ;;
    esac
done
mkdir -p "$DIR"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"

if [[ "$SMOKE" == 1 ]]; then
    # d = 8 > 6 so that the Hutchinson path runs; sizes for seconds, not for accuracy.
    python experiments/gpu/high_dimension.py --device cpu --solve-dims 8 --solve-steps 3 --n-interior 64 \
        --sim-dim 3 --sim-solve-steps 3 --n-agents 2000 --sim-steps 5 --out "$DIR"
else
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    start=$(date +%s)
    timeout 280 python experiments/gpu/high_dimension.py --device cuda --solve-dims 50 100 --solve-steps 1000 \
        --n-interior 2048 --sim-dim 10 --sim-solve-steps 300 --n-agents 1000000 --sim-steps 50 --out "$DIR"
    echo "total wall time: $(( $(date +%s) - start )) s"
fi
echo "results in $DIR"
