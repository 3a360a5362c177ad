"""The exact benchmarks solve their PDEs (autograd residuals ≈ 0) and match reference values."""

import math

import numpy as np
import pytest
import torch

from mfgnet.benchmarks import TwoRoadTraffic, ergodic_torus, hopf_cole, log_congestion, lq_gaussian
from mfgnet.neural.residuals import pde_residuals, rademacher
from mfgnet.problems.zoo import LQ_NARROW_PARAMS, LQ_SHARP_PULL_PARAMS, LQ_TERMINAL_PULL_PARAMS
from mfgnet.solution import time_column

CASES = {
    "B1 1d": lambda: ergodic_torus(1),
    "B1 3d sigma 0.7": lambda: ergodic_torus(3, sigma=0.7),
    "B3": lambda: hopf_cole(),
    "B3 other data": lambda: hopf_cole(viscosity=0.05, horizon=1.0, A=-0.3, B=0.8, kappa=2.0),
    "B2 1d": lambda: lq_gaussian(1),
    "B2 5d": lambda: lq_gaussian(5, rho=-0.5, viscosity=0.3, mean0=-0.5),
    "B2 zoo lq_narrow_1d": lambda: lq_gaussian(1, **LQ_NARROW_PARAMS),
    "B2 zoo lq_terminal_pull_1d": lambda: lq_gaussian(1, **LQ_TERMINAL_PULL_PARAMS),
    "B2 zoo lq_sharp_pull_1d": lambda: lq_gaussian(1, **LQ_SHARP_PULL_PARAMS),
    "B5 1d": lambda: log_congestion(1),
    "B5 10d other data": lambda: log_congestion(10, viscosity=0.05, aversion=0.3, pull=5.0, horizon=0.5),
    "B5 ergodic 3d": lambda: log_congestion(3, ergodic=True),
    "B5 ergodic 10d other data": lambda: log_congestion(10, viscosity=0.05, aversion=0.3, pull=5.0, ergodic=True),
}


def _residuals(bench, n=256, seed=0, probes=None):
    problem, exact = bench
    gen = torch.Generator().manual_seed(seed)
    x = problem.bounding_box().sample(n, gen)
    if problem.is_ergodic and not problem.domain.bounded:  # the guess's box: m underflows at its corners
        x = exact.sample(torch.zeros(n, dtype=torch.float64), gen)
    t = torch.zeros(n, 1, dtype=torch.float64) if problem.is_ergodic else \
        torch.rand(n, 1, generator=gen, dtype=torch.float64) * problem.horizon
    conv = None if problem.coupling.is_local else exact.coefficients.mean(t[:, 0])
    return pde_residuals(problem, exact._value, exact._density, t, x, exact.ergodic_constant, conv, probes)


@pytest.mark.parametrize("name", list(CASES))
def test_exact_solution_has_zero_pde_residuals(name):
    bench = CASES[name]()
    hjb, fp = _residuals(bench)
    scale = 1 + bench.exact.density(None if bench.problem.is_ergodic else 0.0,
                                    bench.problem.bounding_box().sample(64)).abs().max()
    assert float(hjb.detach().abs().max()) < 1e-9 * scale
    assert float(fp.detach().abs().max()) < 1e-9 * scale


@pytest.mark.parametrize("name", ["B3", "B2 1d", "B2 5d", "B2 zoo lq_narrow_1d", "B2 zoo lq_terminal_pull_1d",
                                  "B2 zoo lq_sharp_pull_1d", "B5 1d", "B5 10d other data"])
def test_exact_solution_meets_terminal_and_initial_data(name):
    problem, exact = CASES[name]()
    x = problem.bounding_box().sample(128, torch.Generator().manual_seed(1))
    T = problem.horizon
    conv = None
    if not problem.terminal_cost.is_local:
        conv = exact.coefficients.mean(torch.full((128,), T, dtype=torch.float64))
    g = problem.terminal_cost(time_column(T, x), x, exact.density(T, x), conv)
    torch.testing.assert_close(exact.value(T, x), g, atol=1e-12, rtol=0)
    torch.testing.assert_close(exact.density(0.0, x), problem.initial_density(x), atol=1e-12, rtol=0)


def test_wrong_solution_has_large_residual():
    """The residual code is not blind: perturbing u by a non-harmonic term shows up."""
    problem, exact = ergodic_torus(1)
    x = torch.rand(128, 1, dtype=torch.float64)
    t = torch.zeros(128, 1, dtype=torch.float64)

    def value(t, x):
        return exact._value(t, x) + 0.01 * torch.cos(4 * math.pi * x[:, 0])

    hjb, _ = pde_residuals(problem, value, exact._density, t, x, exact.ergodic_constant)
    assert float(hjb.detach().abs().max()) > 1e-2


def test_b1_lambda_and_mass():
    for dim, sigma in [(1, 1.0), (2, 1.0), (1, 0.5)]:
        problem, exact = ergodic_torus(dim, sigma)
        from scipy.special import i0
        assert exact.ergodic_constant == pytest.approx(-dim * math.log(i0(2 / sigma**2)), rel=1e-12)
        k = 512 if dim == 1 else 128
        axes = (torch.arange(k, dtype=torch.float64) + 0.5) / k
        x = torch.stack(torch.meshgrid(*[axes] * dim, indexing="ij"), -1).reshape(-1, dim)
        # Midpoint rule is spectrally accurate for periodic integrands.
        assert float(exact.density(None, x).mean()) == pytest.approx(1.0, abs=1e-12)
    assert ergodic_torus(1).exact.ergodic_constant == pytest.approx(-0.8239935, abs=1e-7)


def test_log_congestion_reference_values_and_mass():
    """BENCHMARKS.md B5 (ν = 0.2, c = 1, β = 2, d = 3): α and ℓ; m is a normalised N(0, ν/α)."""
    problem, exact = log_congestion(3)
    assert exact.alpha == pytest.approx(0.3722813233, abs=1e-10)
    assert exact.ell == pytest.approx(-1.6014481348, abs=1e-10)
    one, e1 = log_congestion(1)
    x = torch.linspace(-6, 6, 24001, dtype=torch.float64).unsqueeze(-1)
    m = e1.density(0.5, x)
    assert float(m.sum() * 12 / 24000) == pytest.approx(1.0, abs=1e-10)
    assert float((x[:, 0] ** 2 * m).sum() * 12 / 24000) == pytest.approx(0.2 / e1.alpha, rel=1e-8)


def test_lq_reference_values():
    """BENCHMARKS.md reference values (T=1, κ=1, c_T=0.5, ρ=0.5, ν=0.1, x̄0=1, s0=0.1) to 1e-8."""
    coef = lq_gaussian().exact.coefficients
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    expected = {
        "a": (coef.a(t), [0.9136709340, 0.5]),
        "mean": (coef.mean(t)[:, 0], [1.0, 0.6527618613]),
        "beta": (coef.beta(t)[:, 0], [-0.3536869126, -0.1631904653]),
        "variance": (coef.variance(t, 0.1), [0.1, 0.1323396390]),
        "c": (coef.c(t), [0.1458718283, 0.0266311280]),
    }
    for name, (got, want) in expected.items():
        np.testing.assert_allclose(got.numpy(), want, atol=1e-8, err_msg=name)


def test_lq_density_is_normalised_and_mean_matches():
    problem, exact = lq_gaussian(1)
    x = torch.linspace(-4, 6, 20001, dtype=torch.float64).unsqueeze(-1)
    h = 10 / 20000
    for t in (0.0, 0.5, 1.0):
        m = exact.density(t, x)
        assert float(m.sum() * h) == pytest.approx(1.0, abs=1e-9)
        mean = float((m * x[:, 0]).sum() * h)
        assert mean == pytest.approx(float(exact.coefficients.mean(torch.tensor([t], dtype=torch.float64))), abs=1e-9)


def test_hutchinson_probes_match_exact_laplacian_on_average():
    bench = ergodic_torus(3, sigma=0.8)
    exact_hjb, exact_fp = _residuals(bench, n=64)
    probes = rademacher(2000, 64, 3, torch.zeros(1, dtype=torch.float64), torch.Generator().manual_seed(0))
    hjb, fp = _residuals(bench, n=64, probes=probes)
    # Both residuals vanish exactly; with probes the estimate is unbiased with small spread.
    assert float(exact_hjb.detach().abs().max()) < 1e-9
    assert float(hjb.detach().abs().mean()) < 0.2


def test_traffic_exact_equilibria():
    game = TwoRoadTraffic()
    assert game.nash_share() == 1.0
    assert game.travel_times(1.0) == (2.0, 2.0)
    assert game.social_cost(1.0) == pytest.approx(2.0, abs=1e-15)
    assert game.optimal_share() == pytest.approx(2 / 3, abs=1e-15)
    assert game.social_cost(2 / 3) == pytest.approx(11 / 6, abs=1e-15)
    assert game.price_of_anarchy() == pytest.approx(12 / 11, abs=1e-15)


def test_traffic_general_affine_interior_equilibrium():
    game = TwoRoadTraffic(a_A=1.0, b_A=2.0, a_B=1.5, b_B=1.0)
    mu = game.nash_share()
    t_A, t_B = game.travel_times(mu)
    assert 0 < mu < 1 and t_A == pytest.approx(t_B, abs=1e-14)
    mus = np.linspace(0, 1, 100001)
    assert game.optimal_share() == pytest.approx(mus[np.argmin(game.social_cost(mus))], abs=1e-5)


def test_hundred_agent_best_response_reaches_nash_split():
    shares = TwoRoadTraffic().best_response_dynamics(n_agents=100, rounds=200, seed=3)
    assert shares[0] < 0.7
    assert shares[-1] == pytest.approx(1.0, abs=0.011)


def test_ergodic_log_congestion_is_the_stationary_time_dependent_one():
    """Ergodic B5: λ = ℓ (the time-dependent u decreases by ℓ per unit time), the same m, and
    its problem's sampler is a guess (N(0, I)), not the answer N(0, ν/α)."""
    problem, exact = log_congestion(3, ergodic=True)
    _, td = log_congestion(3)
    assert problem.is_ergodic and exact.ergodic_constant == pytest.approx(-1.6014481348, abs=1e-9)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(exact.density(None, x), td.density(0.5, x), atol=1e-14, rtol=0)
    guess = problem.sample_initial(20000, torch.Generator().manual_seed(1))
    assert float(guess.var(0).mean()) == pytest.approx(1.0, abs=0.05)
    assert float(exact.sample(torch.zeros(20000, dtype=torch.float64), torch.Generator().manual_seed(1))
                 .var(0).mean()) == pytest.approx(0.2 / exact.alpha, rel=0.05)


def test_lq_constant_term_once_per_distinct_time_equals_the_per_point_quadrature():
    """B2's c(t) on many points that share a few times (a grid) is computed once per distinct time; the same
    numbers as the quadrature at every point, and the per-point path keeps its gradient in t."""
    coef = CASES["B2 zoo lq_narrow_1d"]().exact.coefficients
    t = torch.linspace(0.0, 2.0, 41, dtype=torch.float64).repeat_interleave(200)  # 8200 points, 41 times
    assert torch.equal(coef.c(t), coef._c(t))
    t_grad = t[:50].clone().requires_grad_(True)
    (c_dot,) = torch.autograd.grad(coef.c(t_grad).sum(), t_grad)
    assert torch.allclose(c_dot, coef.c_dot(t[:50]), rtol=1e-9, atol=1e-9)
