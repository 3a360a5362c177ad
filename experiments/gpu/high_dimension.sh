#!/usr/bin/env bash
# B2 (linear-quadratic, Gaussian) and B7 (separable crowd) in high dimension on one GPU:
#   first, 10^8 agents in 1D under B3's exact policy (issue 16: agent-steps/s, histogram L1 to m(T)),
#   B2 neural solves at d = 50 and d = 100 (float32, solver.device=cuda, Hutchinson Laplacian),
#   a d = 10 solve and the simulation of 10^6 agents under its policy and under the exact one,
#   then B7 at d = 50 and 100 against (2D grid) ⊗ (exact LQ), last, so that a cut keeps B2.
# Prints a table; writes high_dimension.{json,md} under the folder given as argument, else
# under $OUT if set, else results/gpu/high_dimension.
#
#   experiments/gpu/high_dimension.sh [OUT_DIR]          # on the GPU machine
#   experiments/gpu/high_dimension.sh --cpu-smoke [DIR]  # tiny sizes on a CPU (tests)
#
# Sizing (each run <= 2 min on an H200): 1000 Adam steps with 2048 interior points per step
# at d = 50 and d = 100, 300 at d = 10.  Measured on this project's shared CPU (1 thread, load ~5,
# 2048 points, float32, Hutchinson): 0.58 s/step at d = 10, 0.81 at d = 50, 1.25 at d = 100, so
# the cost grows slowly with d (the input layer and one d-vector gradient; the probes do not
# grow).  A step is ~1 GFLOP on 64-wide MLPs: microseconds of H200 arithmetic, so the GPU step
# is bound by kernel launches (~1-2 thousand at 5-10 us: 10-20 ms); even at 100 ms/step,
# 1000 steps take 100 s.  The simulation adds 50 policy calls on 2^20 agents (about a second).
# B7 adds its 2D grid reference (64 cells: 94 s on this project's loaded 2-core CPU, once for
# both d) and two 1000-step solves.  The python run is capped by `timeout` at 420 s and writes
# its table after every row, so an estimate gone wrong costs at most that and keeps what ran.
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
        --sim-dim 3 --sim-solve-steps 3 --n-agents 2000 --sim-steps 5 --b7-dims 3 --b7-steps 3 --b7-cells 16 \
        --sim1d-agents 100000 --out "$DIR"
else
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    start=$(date +%s)
    rc=0
    timeout 420 python experiments/gpu/high_dimension.py --device cuda --solve-dims 50 100 --solve-steps 1000 \
        --n-interior 2048 --sim-dim 10 --sim-solve-steps 300 --n-agents 1000000 --sim-steps 50 \
        --b7-dims 50 100 --b7-steps 1000 --out "$DIR" || rc=$?
    echo "total wall time: $(( $(date +%s) - start )) s"
    if [[ "$rc" != 0 ]]; then
        # Cut (124: the time cap) or failed: show what ran, then fail.
        echo "python exited with $rc; rows written so far:" >&2
        cat "$DIR/high_dimension.md" >&2 || true
        exit "$rc"
    fi
fi
echo "results in $DIR"
