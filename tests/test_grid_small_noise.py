"""The grid solver at small ν: continuation in ν (issue 16), and the GMRES it leans on."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from mfgnet.grid import solve_grid
from mfgnet.grid.config import GridSolverConfig
from mfgnet.grid.linalg import gmres
from mfgnet.grid.solver import viscosity_stages
from mfgnet.problems import ProblemError
from mfgnet.problems.examples import crowd_aversion


def test_stages_fall_geometrically_to_the_problems_viscosity():
    default = GridSolverConfig()
    assert viscosity_stages(1e-3, default) == pytest.approx([0.2, 0.02, 1e-3])
    assert viscosity_stages(0.0, default) == pytest.approx([0.2, 0.02, 0.002, 0.0])
    assert viscosity_stages(0.05, default) == [0.05]  # within one ratio of the start: no stage
    assert viscosity_stages(0.3, default) == [0.3]
    assert viscosity_stages(1e-3, default.replace(continuation="off")) == [1e-3]
    assert viscosity_stages(1e-3, default.replace(method="picard")) == [1e-3]
    assert viscosity_stages(1e-3, default.replace(continuation_ratio=4.0)) == pytest.approx(
        [0.2, 0.05, 0.0125, 1e-3])
    for field, value in (("continuation_ratio", 1.0), ("continuation_from", 0.0), ("continuation", "on")):
        with pytest.raises(ProblemError, match=field):
            GridSolverConfig.from_dict({field: value})


@pytest.mark.parametrize("nu", [1e-3, 0.0])
def test_continuation_reaches_the_same_solution_in_few_newton_steps(nu):
    """Crowd aversion, T = 1, 32 cells: each stage takes a handful of Newton steps, and the answer is the
    one Newton finds without continuation (the discrete system has one solution)."""
    problem = crowd_aversion(viscosity=nu, horizon=1.0)
    staged = solve_grid(problem, cells=32, progress=False)
    plain = solve_grid(problem, cells=32, progress=False, continuation="off")
    stages = staged.diagnostics.extra["continuation"]
    assert staged.diagnostics.converged and plain.diagnostics.converged
    assert [s["viscosity"] for s in stages][-1] == nu and len(stages) >= 3
    assert all(s["stopped_on"] in ("tol", "residual_floor", "small_step") for s in stages)
    assert max(s["newton_iterations"] for s in stages) <= 8
    assert staged.diagnostics.extra["newton_iterations"] == sum(s["newton_iterations"] for s in stages)
    assert "continuation" not in plain.diagnostics.extra
    for a, b in ((staged.m, plain.m), (staged.u, plain.u)):
        assert np.max(np.abs(a - b)) <= 1e-8 * np.max(np.abs(b))
    assert staged.diagnostics.extra["mass_error"] < 1e-12


def test_a_failed_stage_is_reported_not_hidden(caplog):
    """One Newton step per stage cannot converge: converged is False, the stage and its ν are named in
    one warning that says what to try, and the residual is that of the problem's own ν."""
    problem = crowd_aversion(viscosity=1e-3, horizon=1.0)
    with caplog.at_level(logging.WARNING, logger="mfgnet.grid.solver"):
        sol = solve_grid(problem, cells=32, progress=False, max_iterations=1)
    d = sol.diagnostics
    assert not d.converged
    assert d.extra["stopped_on"] == "continuation: max_iterations at ν=0.2 (stage 1 of 3)"
    assert len(d.extra["continuation"]) == 1
    assert caplog.text.count("WARNING") == 1  # one message, with the stage and what to try
    assert "not converged" in caplog.text and "stage 1 of 3" in caplog.text
    assert "continuation_ratio=4" in caplog.text and "more solver.max_iterations" in caplog.text
    assert d.residual > 1e-6 and np.isfinite(d.residual)


def test_gmres_solves_a_nonsymmetric_system_and_reports_its_iterations():
    rng = np.random.default_rng(0)
    n = 120
    A = np.eye(n) + 1.5 * rng.normal(size=(n, n)) / np.sqrt(n)
    b = rng.normal(size=n)
    x, iterations = gmres(lambda v: A @ v, b, np.zeros(n), 1e-11, 200)
    assert np.linalg.norm(A @ x - b) <= 1e-10 * np.linalg.norm(b)
    assert 10 < iterations <= n
    x_capped, capped = gmres(lambda v: A @ v, b, np.zeros(n), 1e-11, 5)
    assert capped == 5  # the best answer in 5 dimensions: better than the start, not solved
    assert 1e-10 < np.linalg.norm(A @ x_capped - b) / np.linalg.norm(b) < 1.0
    x_exact, none = gmres(lambda v: A @ v, b, np.linalg.solve(A, b), 1e-11, 200)
    assert none == 0 and np.allclose(x_exact, np.linalg.solve(A, b))


def test_metrics_json_lists_the_stages(run_mfgnet, tmp_path):
    metrics = run_mfgnet(["problem=crowd_aversion", "problem.viscosity=0.001", "solver=grid", "solver.cells=32",
                          "solver.progress=false"], tmp_path)
    stages = metrics["continuation"]
    assert [s["viscosity"] for s in stages] == pytest.approx([0.2, 0.02, 0.001])
    assert metrics["converged"] and metrics["newton_iterations"] == sum(s["newton_iterations"] for s in stages)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["continuation"] == stages


def test_a_tiny_step_from_an_inexact_solve_is_not_convergence():
    """Newton on r(x) = x - 1 whose linear solver returns a tiny step and says it stopped short (as GMRES
    at its cap does): the step is taken, stopped on "inexact_direction", not converged (the residual is
    not below tol); the same tiny step from an exact solve is the usual small-step stop."""
    from mfgnet.grid.newton import newton

    class TinyStep:
        def __init__(self, inexact):
            self.inexact = inexact

        def solve(self, rhs):
            return 1e-14 * rhs

    class System:
        def __init__(self, inexact):
            self.inexact = inexact

        def evaluate(self, x, jacobian=False):
            return x - 1.0, TinyStep(self.inexact) if jacobian else None

    stopped = newton(System(True), np.zeros(3), tol=1e-10, max_iterations=20)
    assert stopped.stopped_on == "inexact_direction" and not stopped.converged and stopped.iterations == 1
    usual = newton(System(False), np.zeros(3), tol=1e-10, max_iterations=20)
    assert usual.stopped_on == "small_step" and usual.converged


def test_the_gmres_cap_is_a_setting_and_its_hits_are_counted(caplog):
    problem = crowd_aversion(viscosity=1e-3, horizon=1.0)
    plain = solve_grid(problem, cells=32, progress=False)
    assert plain.diagnostics.converged and plain.diagnostics.extra["gmres_capped"] == 0
    with caplog.at_level(logging.WARNING, logger="mfgnet.grid.solver"):
        capped = solve_grid(problem, cells=32, progress=False, gmres_max_iterations=10)
    assert capped.diagnostics.extra["gmres_capped"] > 0
    assert capped.diagnostics.converged or "raise solver.gmres_max_iterations" in caplog.text
    with pytest.raises(ProblemError, match="gmres_max_iterations"):
        GridSolverConfig.from_dict({"gmres_max_iterations": 5})


def test_the_line_search_measures_the_residual_by_its_root_mean_square():
    """B2 with lq_sharp_pull_1d's data at ν = 0.05, T = 2, 128 cells (dt = h): with the max norm as the line
    search's measure, Newton's steps were cut to 1/16-1/4 for 20 iterations (25 in all); the Newton direction
    descends on the sum of squares, and with its root mean square 14 steps converge (fortieth session:
    results/grid_small_noise_lq_pull.md).  The convergence test stays the max norm."""
    from mfgnet.benchmarks.lq_gaussian import lq_gaussian
    from mfgnet.grid.newton import merit, residual_norm
    from mfgnet.problems.zoo import LQ_SHARP_PULL_PARAMS

    r = np.array([3.0, -4.0, 0.0, 0.0])
    assert merit(r) == pytest.approx(2.5) and residual_norm(r) == 4.0
    assert merit(np.array([1.0, np.nan])) == float("inf")
    problem = lq_gaussian(1, **{**LQ_SHARP_PULL_PARAMS, "viscosity": 0.05, "horizon": 2.0}).problem
    d = solve_grid(problem, cells=128, progress=False).diagnostics
    assert d.converged and d.residual <= 1e-9 and d.extra["newton_iterations"] <= 16
