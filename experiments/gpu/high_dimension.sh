#!/usr/bin/env bash
# B2 (linear-quadratic, Gaussian) and B7 (separable crowd) in high dimension on one GPU:
#   first, 10^8 agents in 1D under B3's exact policy (issue 16: agent-steps/s, histogram L1 to m(T)),
#   B2 neural solves at d = 50 and d = 100 (float32, solver.device=cuda, Hutchinson Laplacian),
#   a d = 10 solve and the simulation of 10^6 agents under its policy and under the exact one,
#   then B7 at d = 100 against (2D grid) ⊗ (exact LQ), last, so that a cut keeps B2.
# Prints a table; writes high_dimension.{json,md} under the folder given as argument, else
# under $OUT if set, else results/gpu/high_dimension.
#
#   experiments/gpu/high_dimension.sh [OUT_DIR]          # on the GPU machine
#   experiments/gpu/high_dimension.sh --cpu-smoke [DIR]  # tiny sizes on a CPU (tests)
#
# Sizing, from the H200 runs (results/gpu/high_dimension/README.md): the 10^8-agent simulation
# 0.085 s with the device-side draw (18 s before, on the CPU); a B2 step with 2048 interior points
# 0.07 s at d = 10 and 50, 0.09-0.11 s at d = 100 (launch-bound: ~2100 kernels per step); B7 at
# d = 100 0.10 s.  So 500 steps at d = 50 and 100 and B7 at d = 100 for 400 steps: 178 s in all on
# the second run, plus B7's reference since the twenty-eighth session (Richardson on 64 and 128 planar grid
# cells, on the host's CPU: ~110 s on the 2-core development machine).  The python run is capped by `timeout` at 480 s and writes its table after every
# row, so an estimate gone wrong keeps what ran.
# PYTHON names the interpreter that holds torch (default python3).
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
PY="${PYTHON:-python3}"
if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "$PY cannot import torch: set PYTHON to the interpreter that holds it" >&2
    exit 2
fi

if [[ "$SMOKE" == 1 ]]; then
    # d = 8 > 6 so that the Hutchinson path runs; sizes for seconds, not for accuracy.
    "$PY" experiments/gpu/high_dimension.py --device cpu --solve-dims 8 --solve-steps 3 --n-interior 64 \
        --sim-dim 3 --sim-solve-steps 3 --n-agents 2000 --sim-steps 5 --b7-dims 3 --b7-steps 3 --b7-cells 16 \
        --sim1d-agents 100000 --out "$DIR"
else
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    start=$(date +%s)
    rc=0
    timeout 480 "$PY" experiments/gpu/high_dimension.py --device cuda --solve-dims 50 100 --solve-steps 500 \
        --n-interior 2048 --sim-dim 10 --sim-solve-steps 300 --n-agents 1000000 --sim-steps 50 \
        --b7-dims 100 --b7-steps 400 --out "$DIR" || rc=$?
    echo "total wall time: $(( $(date +%s) - start )) s"
    if [[ "$rc" != 0 ]]; then
        # Cut (124: the time cap) or failed: show what ran, then fail.
        echo "python exited with $rc; rows written so far:" >&2
        cat "$DIR/high_dimension.md" >&2 || true
        exit "$rc"
    fi
fi
echo "results in $DIR"
