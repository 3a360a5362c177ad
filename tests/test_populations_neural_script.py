"""experiments/populations_neural.py: ``--grid-config`` reaches the grid reference solve, and the
reference is cached (a second run reads it instead of solving); a tiny 1D case, seconds."""

import json

import numpy as np
import pytest

import mfgnet

TINY = {"dtype": "float64", "log_every": 50, "n_eval": 256, "warm_start": "off",
        "model": {"width": 16, "depth": 2},
        "sampler": {"n_interior": 64, "n_boundary": 16, "n_quadrature": 32, "time_slices": 4, "n_conv": 32,
                    "particles": 128, "particle_steps": 4}}

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore:neural solver on:RuntimeWarning")]


def test_grid_config_reaches_the_reference_and_the_reference_is_cached(tmp_path, monkeypatch, experiment_script):
    script = experiment_script("populations_neural")
    monkeypatch.setattr(script, "OUT", tmp_path)
    argv = ["--problem", "segregation", "--steps", "2", "--cells", "16", "--config", json.dumps(TINY),
            "--grid-config", '{"max_iterations": 1, "populations_solve": "sweeps"}', "--tag", "tiny"]
    script.main(argv)
    (cached,) = (tmp_path / "references").glob("segregation_1d_16_*.npz")
    with np.load(cached) as data:
        info = json.loads(str(data["info"]))
        spec = json.loads(str(data["spec"]))
        m1 = data["m_1"]
    # the settings reached the solver: one sweep, not converged (Newton converges at 16 cells)
    assert spec["grid_config"] == {"max_iterations": 1, "populations_solve": "sweeps"}
    assert info["iterations"] == 1 and info["solve"] == "sweeps" and not info["converged"]
    assert m1.shape == (17, 16)
    first = (tmp_path / "neural_tiny.md").read_text()
    assert "(sweeps, 1 iterations, converged: False" in first and "rel L2 of m at each time" in first

    def no_grid(problem, solver="grid", *args, **kwargs):
        assert solver != "grid", "the cached reference should be read, not solved again"
        return solve(problem, solver, *args, **kwargs)

    solve = mfgnet.solve
    monkeypatch.setattr(mfgnet, "solve", no_grid)
    script.main(argv)
    second = (tmp_path / "neural_tiny.md").read_text()
    assert "read from" in second and cached.name in second and "read from" not in first
    # the same reference gives the same errors (the table rows match)
    rows = [line for line in first.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert rows and all(row in second for row in rows)
