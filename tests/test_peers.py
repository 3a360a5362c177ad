"""Peer comparisons (experiments/peers) and the speed table (mfgnet.bench), in tiny versions.

The mfgnet side of each comparison always runs; the peer side runs only when its virtual
environment ``.peers/<peer>`` exists (made by ``python experiments/peers/run.py <peer>``), and is
skipped otherwise.  No network: nothing is installed here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

PEERS_DIR = Path(__file__).resolve().parents[1] / "experiments" / "peers"
sys.path.insert(0, str(PEERS_DIR))

import common  # noqa: E402
from deepxde_mfgnet import run_mfgnet as run_neural_side  # noqa: E402
from mfglib_mfgnet import run_mfgnet as run_finite_side  # noqa: E402


def _need(peer: str) -> None:
    if not common.peer_available(peer):
        pytest.skip(f"peer {peer!r} not installed: run `python experiments/peers/run.py {peer}` once to create "
                    f".peers/{peer} (needs the package registry)")


# ----------------------------------------------------------------------------- MFGLib comparison
def test_finite_side_fictitious_play_lowers_exploitability():
    out = run_finite_side({"env": "beach_bar", "params": {}, "iterations": 20})
    e = np.array(out["exploitability"])
    assert e.shape == (21,) and out["dtype"] == "float64"
    assert np.all(np.diff(out["times"]) >= 0)
    # Fictitious play from the uniform policy: exploitability falls by an order of magnitude in 20 its.
    assert e[-1] < 0.1 * e[0]
    assert e.min() >= -1e-12


def test_finite_side_left_right_tends_to_equilibrium():
    # Left-right's equilibrium is known (go left with probability 2/3): exploitability -> 0.
    out = run_finite_side({"env": "left_right", "params": {}, "iterations": 200})
    assert out["exploitability"][-1] < 5e-3 < out["exploitability"][0]


def test_mfglib_trajectory_matches():
    _need("mfglib")
    spec = {"env": "beach_bar", "params": {}, "iterations": 8, "threads": 1}
    theirs = common.run_side(common.peer_python("mfglib"), "mfglib_peer.py", spec)
    ours = run_finite_side(spec)
    assert theirs["dtype"] == "float32"
    # Same definitions: trajectories agree to MFGLib's float32 round-off.
    np.testing.assert_allclose(ours["exploitability"], theirs["exploitability"], rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- DeepXDE comparison
def test_neural_side_error_falls():
    out = run_neural_side({"dim": 1, "steps": 60, "every": 20, "threads": 1, "n_eval": 256})
    h = out["history"]
    assert h["step"] == [20, 40, 60] and h["phase"] == ["adam"] * 3
    assert np.all(np.diff(h["time_s"]) > 0)
    # 60 Adam steps (seed 0) take rel L2(m) to a few 1e-2, well below its value after 20 steps
    # (the untrained networks are O(1) off).
    assert h["m"][-1] < 0.5 * h["m"][0]
    assert h["m"][-1] < 3e-2 and h["u"][-1] < 3e-2


def test_deepxde_side_runs_and_learns():
    _need("deepxde")
    spec = {"dim": 1, "adam_steps": 40, "every": 20, "stop_at": None, "budget_s": 60, "threads": 1}
    out = common.run_side(common.peer_python("deepxde"), "deepxde_peer.py", spec, timeout_s=120)
    h = out["history"]
    assert h["step"] == [20, 40]
    assert h["m"][-1] < h["m"][0]


def test_b2_sides_share_points_drawn_from_the_exact_crowd_and_learn(tmp_path):
    """B2 comparison (issue 13): the evaluation points are draws of the exact m(t) (the crowd's box
    holds them all, the bounding box too), and 60 mfgnet steps in d = 3 lower rel L2 m."""
    from deepxde_b2_mfgnet import run_mfgnet as run_b2_side
    from deepxde_b2_mfgnet import write_evaluation

    path = str(tmp_path / "points.npz")
    crowd = write_evaluation(path, 3, n=512, crowd_box=True)
    bounding = write_evaluation(path, 3, n=512)
    data = np.load(path)
    assert data["x"].shape == (512, 3) and data["t"].shape == (512, 1) and np.all(data["m"] > 0)
    assert crowd["params"]["rho"] == 0.5 and crowd["params"]["var0"] == 0.1  # lq_gaussian's defaults
    for box in (crowd, bounding):
        lower, upper = np.array(box["lower"]) - 1e-12, np.array(box["upper"]) + 1e-12
        assert np.all(data["x"] >= lower) and np.all(data["x"] <= upper)
    assert np.all(np.array(bounding["upper"]) - np.array(bounding["lower"])
                  > 1.5 * (np.array(crowd["upper"]) - np.array(crowd["lower"])))
    out = run_b2_side({"eval": path, "dim": 3, "steps": 60, "every": 20, "threads": 1})
    h = out["history"]
    assert h["step"] == [20, 40, 60]
    assert h["m"][-1] < 0.8 * h["m"][0]


def test_deepxde_b2_side_runs(tmp_path):
    _need("deepxde")
    from deepxde_b2_mfgnet import write_evaluation

    path = str(tmp_path / "points.npz")
    box = write_evaluation(path, 2, n=256)
    spec = {"eval": path, "dim": 2, "adam_steps": 40, "every": 20, "stop_at": None, "budget_s": 60, "threads": 1,
            **box}
    h = common.run_side(common.peer_python("deepxde"), "deepxde_b2_peer.py", spec, timeout_s=120)["history"]
    assert h["step"] == [20, 40] and np.isfinite(h["m"]).all() and np.isfinite(h["u"]).all()


# ----------------------------------------------------------------------------- plumbing and bench
def test_side_environment_pins_threads_and_path():
    env = common._env(3)
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"
    assert str(common.ROOT) in env["PYTHONPATH"].split(":")


def test_unknown_peer_is_refused():
    with pytest.raises(common.PeerError, match="unknown peer"):
        common.ensure_peer("not_a_peer", verbose=False)


def test_median():
    assert common.median([3.0, 1.0, 2.0]) == 2.0
    assert common.median([4.0, 1.0, 2.0, 3.0]) == 2.5


def test_bench_quick_table(tmp_path, capsys):
    from mfgnet import bench

    out = tmp_path / "bench.md"
    assert bench.main(["--quick", "--only", "finite", "agents", "--out", str(out)]) == 0
    text = out.read_text()
    assert text in capsys.readouterr().out
    rows = [ln for ln in text.splitlines() if ln.startswith("| finite") or ln.startswith("| agents")]
    from mfgnet.agents.simulation import fused

    # two finite rows; 1D with the numpy kernel (and the fused one with numba); 2D
    assert len(rows) == 4 + fused.AVAILABLE
    if fused.AVAILABLE:
        assert "× the numpy kernel" in text
    row_2d = next(r for r in rows if "simulation 2D" in r)
    l1 = float(row_2d.split("histogram L1 to the exact m at t = 0.05 ")[1].split(" ")[0])
    assert l1 < 0.1  # 5·10^4 agents on 8² cells: the sampling noise is a few 1e-2
    assert all("of the copy bound" in r for r in rows if r.startswith("| agents"))
    speeds = [float(r.split("|")[3]) for r in rows]
    assert all(s > 0 for s in speeds)
    assert "cores" in bench.machine_line() and "torch" in bench.machine_line()
