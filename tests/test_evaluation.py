"""Metrics and figures work through the Solution interface alone."""

import math

import pytest
import torch

from mfgnet.benchmarks import ergodic_torus, hopf_cole, lq_gaussian
from mfgnet.evaluation import compare, mass_error, relative_l2
from mfgnet.evaluation.plots import plot_histories, plot_solution
from mfgnet.solution import ExactSolution


def perturbed(bench, eps):
    """The exact solution with m scaled by (1 + eps) and u shifted by a constant."""
    problem, exact = bench
    return ExactSolution(problem, lambda t, x: exact._value(t, x) + 3.0,
                         lambda t, x: (1 + eps) * exact._density(t, x),
                         None if exact.ergodic_constant is None else exact.ergodic_constant + eps)


def test_relative_l2():
    ref = torch.tensor([3.0, 4.0])
    assert relative_l2(ref * 1.01, ref) == pytest.approx(0.01)
    assert relative_l2(torch.tensor([3.0, 0.0]), ref, weights=torch.tensor([1.0, 0.0])) == 0.0


@pytest.mark.parametrize("bench", [ergodic_torus(2), hopf_cole(), lq_gaussian(1)])
def test_compare_measures_known_errors(bench):
    exact = bench.exact
    assert compare(exact, exact)["rel_l2_m"] == 0.0
    metrics = compare(perturbed(bench, 0.02), exact)
    assert metrics["rel_l2_m"] == pytest.approx(0.02, rel=1e-10)
    if bench.problem.is_ergodic:
        # u is defined up to a constant in the ergodic problem: the shift must not count.
        assert metrics["rel_l2_u"] < 1e-12
        assert metrics["abs_err_lambda"] == pytest.approx(0.02)
    else:
        assert metrics["rel_l2_u"] > 0.1


def test_mass_error_of_exact_and_scaled_density():
    bench = hopf_cole()
    assert mass_error(bench.exact) < 1e-10
    assert mass_error(perturbed(bench, 0.05)) == pytest.approx(0.05, rel=1e-6)
    assert mass_error(lq_gaussian(1).exact) < 1e-8


def test_figures_are_written(tmp_path):
    for bench in (ergodic_torus(1), hopf_cole(), ergodic_torus(2), lq_gaussian(3)):
        path = plot_solution(bench.exact, tmp_path / f"{bench.problem.name}.png", reference=bench.exact)
        assert path.stat().st_size > 5000
    path = plot_histories({"loss": [1.0, 0.1, math.nan, 0.01]}, tmp_path / "h.png")
    assert path.exists()


def test_compare_on_high_dimensional_rd_measures_where_the_exact_mass_is():
    """B2 at d = 10: a density 10 % too large is 10 % off in rel L2 m and in mass (measured on
    samples of the exact m); the box quadrature cannot measure the mass there, so it says NaN."""
    import math

    from mfgnet.benchmarks import lq_gaussian
    from mfgnet.evaluation.metrics import compare, mass_error
    from mfgnet.solution import ExactSolution

    problem, exact = lq_gaussian(10)
    t = torch.full((20000,), 0.5, dtype=torch.float64)
    x = exact.sample(t, torch.Generator().manual_seed(0))
    coef = exact.coefficients
    tt = torch.tensor([0.5], dtype=torch.float64)
    assert torch.allclose(x.mean(0), coef.mean(tt)[0], atol=0.02)
    assert torch.allclose(x.var(0), coef.variance(tt, 0.1).expand(10), rtol=0.05)
    heavy = ExactSolution(problem, lambda t, x: exact.value(t, x) + 0.1,
                          lambda t, x: 1.1 * exact.density(t, x))
    errors = compare(heavy, exact)
    assert math.isclose(errors["rel_l2_m"], 0.1, rel_tol=1e-9)
    assert math.isclose(errors["mass_error"], 0.1, rel_tol=1e-9)
    assert 0 < errors["rel_l2_u"] < 1
    assert math.isnan(mass_error(exact))


def test_moment_errors_measure_a_shifted_and_a_widened_gaussian():
    """B5 (m = N(0, v I), d = 3): a fake m = N(δ, s² v I) has mean error δ√d / √(d v) and covariance
    error |s² − 1| (Frobenius, relative), recovered by importance weights at exact samples."""
    import math

    from mfgnet.benchmarks import log_congestion
    from mfgnet.evaluation.metrics import moment_errors
    from mfgnet.solution import ExactSolution

    problem, exact = log_congestion(3, ergodic=True)
    v = 0.2 / exact.alpha
    assert max(moment_errors(exact, exact).values()) < 1e-12
    for delta, s in ((0.1, 1.0), (0.0, 1.1)):
        def density(t, x, delta=delta, s=s):
            z2 = ((x - delta) ** 2).sum(-1) / (s * s * v)
            return torch.exp(-0.5 * z2) / (2 * math.pi * s * s * v) ** 1.5

        fake = ExactSolution(problem, exact._value, density, ergodic_constant=exact.ergodic_constant)
        err = moment_errors(fake, exact)
        assert err["mean_error_T"] == pytest.approx(delta / math.sqrt(v), abs=0.01)
        assert err["cov_error_T"] == pytest.approx(s * s - 1, abs=0.02)
