"""MFGs of controls (issue 14, part 3): the trade-crowding benchmark B8 (its exact solution checked
by substitution), the grid's fixed point on the mean control (first-order convergence to the exact
ᾱ, an honest `converged`), the neural solver's mean control per slice, and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from mfgnet import solve
from mfgnet.benchmarks.trade_crowding import trade_crowding
from mfgnet.compare import compose_config
from mfgnet.evaluation.metrics import mean_control_error
from mfgnet.neural.residuals import mfg_residuals, pde_residuals
from mfgnet.problems import Box, MFGProblem, ProblemError, Torus
from mfgnet.runner import run_experiment
from mfgnet.solution import Solution

CASES = [{}, {"impact": 3.0, "viscosity": 0.0, "terminal": 0.0},
         {"kappa": 0.1, "risk": 2.0, "horizon": 2.0, "mean0": -0.5, "impact": 0.5}]


@pytest.mark.parametrize("params", CASES)
def test_exact_solution_satisfies_the_mfg_of_controls(params):
    problem, exact = trade_crowding(**params)
    coef = exact.coefficients
    gen = torch.Generator().manual_seed(0)
    t = torch.rand(1000, 1, generator=gen, dtype=torch.float64) * problem.horizon
    x = exact.sample(t[:, 0], gen)
    hjb, fp = pde_residuals(problem, exact.value, exact.density, t, x, mean_control=exact.mean_control(t))
    assert float(hjb.detach().abs().max()) < 1e-11
    assert float((fp.detach() / exact.density(t, x)).abs().max()) < 1e-6
    # ᾱ is the crowd's own mean control: ∫ α m by quadrature (the base class's) against the formula
    times = torch.linspace(0, problem.horizon, 7, dtype=torch.float64)
    quadrature = Solution.mean_control(exact, times)
    assert torch.allclose(quadrature, exact.mean_control(times), rtol=1e-5, atol=1e-7)
    # the mean solves 2κE'' + γE' - 2φE = 0 with κE'(T) + A E(T) = 0, and E' = ᾱ
    h = 1e-4
    s = torch.linspace(0.1, problem.horizon - 0.1, 9, dtype=torch.float64)
    e, e_dot = coef.mean, coef.mean_control
    second = (e(s + h) - 2 * e(s) + e(s - h)) / h**2
    assert torch.allclose(2 * coef.kappa * second + coef.gamma * e_dot(s) - 2 * coef.phi * e(s),
                          torch.zeros_like(s), atol=1e-5)
    assert torch.allclose((e(s + h) - e(s - h)) / (2 * h), e_dot(s), atol=1e-7)
    T = torch.tensor([problem.horizon], dtype=torch.float64)
    assert abs(float(coef.kappa * e_dot(T) + coef.A * e(T))) < 1e-12
    xs = torch.linspace(-1, 1, 11, dtype=torch.float64)[:, None]
    assert torch.allclose(exact.value(problem.horizon, xs), coef.A * xs[:, 0] ** 2, atol=1e-13)


def test_the_crowd_effect_is_real():
    """With impact γ > 0 the selling crowd pushes each trader to sell faster than alone (γ = 0)."""
    _, alone = trade_crowding(impact=0.0)
    _, crowd = trade_crowding(impact=2.0)
    start, half = torch.tensor([0.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    assert float(crowd.mean_control(start)) < float(alone.mean_control(start)) - 0.1
    assert float(crowd.coefficients.mean(half)) < float(alone.coefficients.mean(half)) - 0.05


def test_grid_mean_control_converges_at_first_order():
    problem, exact = trade_crowding()
    errors = []
    for cells in (64, 128):
        solution = solve(problem, "grid", cells=cells, progress=False)
        assert solution.diagnostics.converged
        assert solution.diagnostics.extra["mean_control_gap"] <= 1e-8
        assert solution.diagnostics.extra["mass_error"] < 1e-12
        errors.append(mean_control_error(solution, exact))
    order = math.log2(errors[0] / errors[1])
    assert 0.8 < order < 1.3, errors
    assert errors[1] < 0.04
    second = solve(problem, "grid", cells=64, order=2, progress=False)
    assert mean_control_error(second, exact) < 0.3 * errors[0]


def test_grid_says_not_converged_when_the_fixed_point_is_cut_short():
    problem, _ = trade_crowding(impact=5.0)
    solution = solve(problem, "grid", cells=32, mean_control_iterations=2, progress=False)
    assert not solution.diagnostics.converged
    assert solution.diagnostics.extra["mean_control_gap"] > 1e-8
    assert "ᾱ" in solution.diagnostics.extra["diagnosis"]


def test_neural_mean_control_is_integrated_per_slice():
    problem, exact = trade_crowding()
    solution = solve(problem, "neural", steps=300, warm_start="off", progress=False, seed=0)
    # 0.07 measured; a solver that dropped the ᾱ term would head for the lone trader's ᾱ (γ = 0),
    # 33 % off at t = 0.  Full runs: results/mean_control.
    assert mean_control_error(solution, exact) < 0.2


def test_mean_control_problems_refuse_what_they_cannot_do():
    box = Box([0.0], [1.0])
    base = dict(horizon=1.0, viscosity=0.1, initial_density=lambda x: torch.ones(x.shape[0], dtype=x.dtype))
    with pytest.raises(ProblemError, match="3 arguments"):
        MFGProblem(box, mean_control_cost=lambda t, a: a[:, 0], **base)
    with pytest.raises(ProblemError, match="time-dependent"):
        MFGProblem(Torus(1), horizon=None, viscosity=0.1, mean_control_cost=lambda t, x, a: a[:, 0])
    problem = MFGProblem(box, mean_control_cost=lambda t, x, a: a[:, 0] * x[:, 0], **base)
    t, x = torch.full((4, 1), 0.5, dtype=torch.float64), torch.rand(4, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="mean_control"):
        mfg_residuals(problem, lambda t, x: t[:, 0] * x[:, 0], lambda t, x: t[:, 0] * x[:, 0], t, x)
    from mfgnet.problems.social import social_optimum

    with pytest.raises(ProblemError, match="MFG of controls"):
        social_optimum(problem)
    frozen = problem.with_mean_control(lambda t: torch.ones(t.shape[0], 1, dtype=torch.float64))
    assert not frozen.has_mean_control
    assert torch.allclose(frozen.coupling(t, x, torch.ones(4, dtype=torch.float64)), x[:, 0])


def test_cli_trade_crowding_writes_mean_control(tmp_path):
    cfg = compose_config(["problem=trade_crowding", "solver=grid", "solver.cells=128", "progress=false"])
    metrics = run_experiment(cfg, tmp_path)
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["converged"] and stored["rel_err_mean_control"] == pytest.approx(metrics["rel_err_mean_control"])
    assert stored["rel_err_mean_control"] < 0.04 and stored["rel_l2_u"] < 0.06
    arrays = np.load(tmp_path / "solution.npz")
    assert arrays["mean_control"].shape == (len(arrays["t"]), 1)
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["mean_control_gap"][-1] <= 1e-8 and set(history["phase"]) == {"anderson"}
    assert (tmp_path / "mean_control.png").stat().st_size > 0
