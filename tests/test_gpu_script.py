"""The prepared GPU script runs end to end on a CPU in smoke mode (tiny sizes)."""

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_high_dimension_script_smoke(tmp_path):
    out = subprocess.run(["bash", str(ROOT / "experiments/gpu/high_dimension.sh"), "--cpu-smoke", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads((tmp_path / "high_dimension.json").read_text())["rows"]
    assert [r["task"] for r in rows] == ["simulate/1d_b3", "solve", "simulate/exact", "simulate/neural", "solve",
                                         "solve/b7"]
    assert [r["d"] for r in rows] == [1, 3, 3, 3, 8, 3]
    # 10^5 agents on 256 bins under B3's exact policy: 0.066 when written (the 20-step scheme's bias, 0.057
    # at 10^7 agents in the bench, plus sampling noise); a wrong policy or noise gives O(1)
    assert 0 < rows[0]["hist_l1_to_exact"] < 0.12 and rows[0]["agent_steps_per_s"] > 0
    assert all(r["rel_l2_m"] > 0 for r in rows if r["task"].startswith("solve"))
    assert "| task |" in out.stdout and (tmp_path / "high_dimension.md").exists()


def test_step_profile_script_counts_a_step_on_cpu():
    """experiments/gpu/profile_step.py (run on the device) works on a CPU at tiny sizes: one B2 step is
    timed and profiled (no device kernels, no launches there)."""
    import sys
    sys.path.insert(0, str(ROOT / "experiments/gpu"))
    try:
        import profile_step
    finally:
        sys.path.pop(0)
    row = profile_step.profile_dim(8, "cpu", n_interior=32, warmup=1, steps=1, top=3)
    assert row["d"] == 8 and row["wall_per_step_s"] > 0
    assert row["kernel_per_step_s"] == 0 and row["launches_per_step"] == 0
