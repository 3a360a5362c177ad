"""Mean field control and the price of anarchy (issue 14, part 2): Lagrangians, the marginal
coupling, the social cost's own Fokker-Planck scheme against an exact crowd, the optimum's
cost below the equilibrium's and no lower along perturbed feedbacks, and the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mfgnet.benchmarks import ergodic_torus
from mfgnet.compare import compose_config
from mfgnet.evaluation.social import price_of_anarchy, social_cost
from mfgnet.problems import (
    CongestionHamiltonian,
    LocalCoupling,
    MFGProblem,
    NonlocalCoupling,
    PowerHamiltonian,
    ProblemError,
    QuadraticHamiltonian,
    Torus,
)
from mfgnet.problems.examples import crowd_aversion
from mfgnet.problems.social import marginal_cost, social_optimum
from mfgnet.runner import run_experiment


@pytest.mark.parametrize("ham", [QuadraticHamiltonian(0.7), PowerHamiltonian(1.5), PowerHamiltonian(3.0),
                                 CongestionHamiltonian(lambda x: 1.0 + x[:, 0] ** 2)])
def test_lagrangian_is_the_legendre_dual(ham):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, 2, generator=gen, dtype=torch.float64)
    p = torch.randn(200, 2, generator=gen, dtype=torch.float64)
    a_star = -ham.grad_p(x, p)
    # equality at the optimal control, Fenchel-Young inequality at any other
    assert torch.allclose(-(a_star * p).sum(-1) - ham.lagrangian(x, a_star), ham(x, p), rtol=1e-10, atol=1e-12)
    a = torch.randn(200, 2, generator=gen, dtype=torch.float64)
    assert bool((-(a * p).sum(-1) - ham.lagrangian(x, a) <= ham(x, p) + 1e-12).all())


def test_marginal_cost_adds_m_dF_dm_and_stays_differentiable():
    coupling = marginal_cost(crowd_aversion().coupling, "coupling")
    m = torch.linspace(0.1, 3.0, 7, dtype=torch.float64, requires_grad=True)
    x, t = torch.rand(7, 1, dtype=torch.float64), torch.zeros(7, 1, dtype=torch.float64)
    value = coupling(t, x, m)
    assert torch.allclose(value, 2.0 * m)  # F = a m with a = 1: F + m F' = 2 a m
    (slope,) = torch.autograd.grad(value.sum(), m)
    assert torch.allclose(slope, torch.full_like(m, 2.0))
    power = marginal_cost(LocalCoupling(lambda t, x, m: m ** 3), "coupling")
    assert torch.allclose(power(t, x, m.detach()), 4.0 * m.detach() ** 3)  # no grad needed by the caller
    with pytest.raises(ProblemError, match="nonlocal"):
        marginal_cost(NonlocalCoupling.of_mean(lambda t, x, m, mean: mean[:, 0]), "coupling")


def test_social_optimum_keeps_the_rest_of_the_problem():
    problem = crowd_aversion(aversion=3.0)
    optimum = social_optimum(problem)
    x = torch.rand(5, 1, dtype=torch.float64)
    t, m = torch.zeros(5, 1, dtype=torch.float64), torch.rand(5, dtype=torch.float64)
    assert torch.allclose(optimum.coupling(t, x, m), 6.0 * m)
    assert torch.allclose(optimum.terminal_cost(t, x, m), problem.terminal_cost(t, x, m))
    assert torch.allclose(optimum.initial_density(x), problem.initial_density(x))
    assert optimum.viscosity == problem.viscosity and optimum.horizon == problem.horizon
    with pytest.raises(ProblemError, match="ergodic"):
        social_optimum(ergodic_torus(1).problem)


def test_social_cost_of_a_constant_drift_on_the_torus_is_exact():
    # m0 = 1 + 0.5 cos 2πx moved at speed c and damped by the noise: m = 1 + 0.5 e^{-4π²νt} cos 2π(x - ct)
    nu, c, horizon = 0.02, 0.3, 1.0
    problem = MFGProblem(Torus(1), horizon=horizon, viscosity=nu,
                         coupling=lambda t, x, m: m, terminal_cost=lambda x, m: torch.cos(2 * math.pi * x[:, 0]),
                         initial_density=lambda x: 1.0 + 0.5 * torch.cos(2 * math.pi * x[:, 0]))
    cost = social_cost(problem, lambda t, x: torch.full_like(x, c), cells=400, time_steps=800)
    decay = lambda t: math.exp(-4 * math.pi**2 * nu * t)  # noqa: E731
    assert cost.running == pytest.approx(horizon * c**2 / 2, rel=1e-12)
    # ∫ m² = 1 + e^{-8π²νt} / 8, integrated over [0, T]
    crowd = horizon + (1 - decay(2 * horizon)) / (8 * 8 * math.pi**2 * nu)
    assert cost.crowd == pytest.approx(crowd, rel=2e-3)
    assert cost.terminal == pytest.approx(0.25 * decay(horizon) * math.cos(2 * math.pi * c * horizon), abs=2e-3)
    assert cost.mass_error < 1e-12
    assert cost.density.min() >= 0


def test_the_optimum_costs_less_and_no_perturbation_lowers_it():
    problem = crowd_aversion(aversion=2.0)
    result = price_of_anarchy(problem, "grid", cells=128, progress=False)
    assert result.metrics["trusted"], result.metrics
    assert 1.005 < result.ratio < 1.02  # 1.0109 at 128 cells, 1.0098 at 256, 1.0090 at 512
    base = social_cost(problem, result.optimum.policy, cells=200, time_steps=200).total
    for psi in (lambda t, x: torch.ones_like(x), lambda t, x: torch.sin(math.pi * x),
                lambda t, x: t * torch.cos(2 * math.pi * x)):
        for delta in (-0.1, 0.1):
            perturbed = social_cost(problem, lambda t, x, d=delta, f=psi: result.optimum.policy(t, x) + d * f(t, x),
                                    cells=200, time_steps=200).total
            assert perturbed > base + 1e-4
    # the equilibrium is not the social minimum: moving its feedback towards the optimum's lowers J
    halfway = social_cost(problem, lambda t, x: 0.5 * (result.nash.policy(t, x) + result.optimum.policy(t, x)),
                          cells=200, time_steps=200).total
    assert halfway < social_cost(problem, result.nash.policy, cells=200, time_steps=200).total


def test_no_crowd_cost_means_no_price_of_anarchy():
    result = price_of_anarchy(crowd_aversion(aversion=0.0), "grid", cells=64, progress=False)
    assert result.ratio == pytest.approx(1.0, abs=1e-12)


def test_a_coarse_solve_is_not_trusted_and_says_why():
    # 32 cells: the grid's own m is 7-10 % off the crowd its feedback produces (128 cells: 2-3 %)
    result = price_of_anarchy(crowd_aversion(aversion=2.0), "grid", cells=32, progress=False)
    assert not result.metrics["trusted"]
    assert "off the crowd its own feedback produces" in result.metrics["untrusted_because"]


def test_social_cost_refuses_what_it_cannot_score():
    with pytest.raises(ProblemError, match="ergodic"):
        social_cost(ergodic_torus(1).problem, lambda t, x: x)
    user_h = MFGProblem(Torus(1), horizon=1.0, viscosity=0.1, hamiltonian=lambda x, p: (p**2).sum(-1),
                        initial_density=lambda x: torch.ones(x.shape[0], dtype=x.dtype))
    with pytest.raises(ProblemError, match="Lagrangian"):
        social_cost(user_h, lambda t, x: x)


def test_cli_price_of_anarchy_writes_metrics_and_figures(tmp_path):
    cfg = compose_config(["problem=crowd_aversion", "problem.aversion=2", "solver=grid", "solver.cells=128",
                          "game=price_of_anarchy", "progress=false"])
    metrics = run_experiment(cfg, tmp_path)
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["price_of_anarchy"] == pytest.approx(metrics["price_of_anarchy"])
    assert stored["price_of_anarchy"] > 1.0 and stored["optimum_converged"] and stored["trusted"]
    assert stored["optimum_social_cost"] < stored["nash_social_cost"]
    for name in ("price_of_anarchy.png", "optimum_solution.png", "optimum_solution.npz", "solution.npz"):
        assert (tmp_path / name).stat().st_size > 0
    optimum = run_experiment(compose_config(["problem=crowd_aversion", "problem.aversion=2", "solver=grid",
                                             "solver.cells=128", "game=social_optimum", "progress=false"]),
                             tmp_path / "optimum")
    assert optimum["social_cost"] == pytest.approx(stored["optimum_social_cost"], rel=1e-12)


def test_cli_refuses_a_bad_game_before_solving(tmp_path):
    with pytest.raises(ProblemError, match="game must be one of nash, social_optimum, price_of_anarchy"):
        run_experiment(compose_config(["problem=crowd_aversion", "game=cooperative"]), tmp_path)
    with pytest.raises(ProblemError, match="ergodic"):
        run_experiment(compose_config(["problem=ergodic_torus", "game=price_of_anarchy"]), tmp_path)
