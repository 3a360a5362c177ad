"""B7, the separable crowd: the separation is exact, the marginal kernel is right in d dimensions,
the 2D grid reference converges, and the CLI runs the 2D problem."""

import json
import warnings

import numpy as np
import pytest
import torch

from mfgnet.benchmarks import lq_gaussian, separable_crowd, separable_crowd_2d
from mfgnet.benchmarks.separable_crowd import SeparableSolution, separable_problem
from mfgnet.neural.residuals import pde_residuals
from mfgnet.problems import ProblemError
from mfgnet.solution import time_column

# The extra coordinates of BENCHMARKS.md B7: κ_i = 1, c_T = 0.5, x̄0 = 0.5, s0 = 0.1.
EXTRA = dict(confinement=1.0, terminal_weight=0.5, mean0=0.5, var0=0.1)
COARSE = 32  # cells of the reference solve shared by the tests below (cached per process)


def manufactured(dim):
    """B7's construction with the planar grid part replaced by an exact 2D pair that also couples
    through a marginal nonlocal term: B2 in 2D with ρ = 0.5 (F = (κ/2)|x12 − ρ ∫ y12 m dy|²)."""
    planar_problem, planar_exact = lq_gaussian(2, rho=0.5, mean0=-0.7)
    problem = separable_problem(planar_problem, dim, **EXTRA, name=f"manufactured_{dim}d")
    rest = lq_gaussian(dim - 2, kappa=EXTRA["confinement"], terminal_weight=EXTRA["terminal_weight"], rho=0.0,
                       mean0=EXTRA["mean0"], var0=EXTRA["var0"]).exact
    return problem, SeparableSolution(problem, planar_exact, rest), planar_exact.coefficients


@pytest.mark.parametrize("dim", [3, 7])
def test_product_of_exact_factors_solves_the_d_dimensional_system(dim):
    problem, solution, coef = manufactured(dim)
    gen = torch.Generator().manual_seed(dim)
    x = problem.bounding_box().sample(256, gen)
    t = torch.rand(256, 1, generator=gen, dtype=torch.float64) * problem.horizon
    conv = coef.mean(t[:, 0])  # the exact ∫ y12 m(t, y) dy: the d-dimensional m's (x1, x2)-marginal mean
    hjb, fp = pde_residuals(problem, solution.value, solution.density, t, x, None, conv)
    scale = 1 + float(solution.density(t, x).abs().max())
    assert float(hjb.detach().abs().max()) < 1e-9 * scale
    assert float(fp.detach().abs().max()) < 1e-9 * scale
    # Not blind: a wrong population mean shows up in the HJB residual.
    hjb, _ = pde_residuals(problem, solution.value, solution.density, t, x, None, conv + 0.1)
    assert float(hjb.detach().abs().max()) > 1e-2
    # Terminal and initial data of the lifted problem hold too.
    T = problem.horizon
    mean_T = coef.mean(torch.full((256,), T, dtype=torch.float64))
    g = problem.terminal_cost(time_column(T, x), x, solution.density(T, x), mean_T)
    torch.testing.assert_close(solution.value(T, x), g, atol=1e-12, rtol=0)
    torch.testing.assert_close(solution.density(0.0, x), problem.initial_density(x), atol=1e-12, rtol=0)


def planar(cells):
    """The builder's planar grid reference (one solve per process and cell count)."""
    return separable_crowd(2, cells=cells).exact.planar


def grid_samples(grid_solution, level, n, generator):
    """n points of the planar grid density at a time level: nodes drawn with weight m h², so
    the Monte Carlo mean of any f estimates the grid's own quadrature Σ h² f(y_k) m(y_k)."""
    weights = torch.as_tensor(grid_solution.m[level].ravel() * grid_solution.cell_volume)
    index = torch.multinomial(weights, n, replacement=True, generator=generator)
    return grid_solution.nodes[index]


def test_marginal_kernel_on_d_dimensional_samples_matches_the_grid_quadrature():
    dim, n = 6, 40000
    problem, reference = separable_crowd(dim, cells=COARSE)
    planar = reference.planar
    gen = torch.Generator().manual_seed(0)
    level = planar.m.shape[0] // 2
    t = float(planar.times[level])
    # Samples from the d-dimensional m(t): planar nodes ⊗ the exact Gaussian of the other coordinates.
    coef = reference.rest.coefficients
    mean, var = coef.mean(torch.tensor([t], dtype=torch.float64))[0], coef.variance(torch.tensor(t), EXTRA["var0"])
    y = torch.cat([grid_samples(planar, level, n, gen),
                   mean + var.sqrt() * torch.randn(n, dim - 2, generator=gen, dtype=torch.float64)], -1)
    x = problem.bounding_box().sample(64, gen)
    conv_mc = problem.coupling.kernel(x, y).mean(1)  # (64, 1)
    planar_kernel = separable_crowd_2d().coupling.kernel
    quadrature = (planar_kernel(x[:, :2], planar.nodes)[..., 0] * torch.as_tensor(planar.m[level].ravel())).sum(-1)
    conv_grid = planar.cell_volume * quadrature
    # Kernel values lie in [0, 1]: the Monte Carlo error is below 0.5/√n per point; 5 standard errors.
    assert float((conv_mc[:, 0] - conv_grid).abs().max()) < 5 * 0.5 / n**0.5
    # And F itself: the extra coordinates add only their own (κ_i/2)|x_i|².
    tt = time_column(t, x)
    f = problem.coupling(tt, x, None, conv_mc)
    f_planar = separable_crowd_2d().coupling(tt, x[:, :2], None, conv_mc)
    torch.testing.assert_close(f, f_planar + 0.5 * (x[:, 2:] ** 2).sum(-1), atol=1e-12, rtol=0)


def test_planar_grid_reference_holds_its_mass_and_converges():
    fine = planar(COARSE)
    assert fine.diagnostics.converged
    masses = fine.m.reshape(fine.m.shape[0], -1).sum(-1) * fine.cell_volume
    np.testing.assert_allclose(masses, 1.0, atol=1e-12)
    edges = np.concatenate([fine.m[:, [0, -1], :].ravel(), fine.m[:, :, [0, -1]].ravel()])
    assert edges.max() < 1e-4  # the box holds the crowd: its no-flux faces change nothing
    assert fine.diagnostics.extra["edge_mass"] < 1e-4
    # Three grids, same points (on the bulk of the mass): the differences shrink.
    solutions = [planar(8), planar(16), fine]
    gen = torch.Generator().manual_seed(1)
    x = torch.cat([-1 + 0.4 * torch.randn(200, 2, generator=gen, dtype=torch.float64),
                   1 + 0.4 * torch.randn(200, 2, generator=gen, dtype=torch.float64)])
    t = torch.rand(400, generator=gen, dtype=torch.float64)
    m = [s.density(t, x) for s in solutions]
    u = [s.value(t, x) for s in solutions]
    for field in (m, u):
        coarse_gap = float((field[1] - field[0]).norm() / field[2].norm())
        fine_gap = float((field[2] - field[1]).norm() / field[2].norm())
        assert fine_gap < 0.7 * coarse_gap, (coarse_gap, fine_gap)


def test_compare_reports_the_reference_error_which_halves_with_the_grid():
    """compare() estimates B7's reference error from its planar grid at half the cells and steps
    (first order: the difference of the two levels).  The estimate is only as good as that order, so
    it must halve from 16 to 32 cells (measured: rel L2 m 0.304 -> 0.127, and 0.070 at 64 cells,
    which is why the reference is now Richardson's, order 2)."""
    from mfgnet.evaluation import compare

    estimates = {}
    for order in (1, 2):
        for cells in (16, COARSE):
            _, reference = separable_crowd(2, cells=cells, order=order)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # the 8-cell level's box warning
                out = compare(reference, reference)
            assert out["rel_l2_m"] == 0.0 and out["rel_l2_u"] == 0.0
            estimates[order, cells] = (out["reference_error_m"], out["reference_error_u"])
    for k in range(2):
        assert 1.5 < estimates[1, 16][k] / estimates[1, COARSE][k] < 3.0, estimates
    assert 0.08 < estimates[1, COARSE][0] < 0.2, estimates
    # Richardson (the default): its estimate (the levels' difference / 3) falls with the grid too and
    # sits well below the first-order one at the same cells (measured 0.051 against 0.127 in m).
    for k in range(2):
        assert estimates[2, COARSE][k] < 0.6 * estimates[2, 16][k], estimates
        assert estimates[2, COARSE][k] < 0.5 * estimates[1, COARSE][k], estimates


def test_builder_checks_and_lazy_reference():
    with pytest.raises(ProblemError, match="dim must be an integer >= 2"):
        separable_crowd(1)
    with pytest.raises(ProblemError, match="congestion_width must be > 0"):
        separable_crowd_2d(congestion_width=0.0)
    problem, reference = separable_crowd(100, cells=COARSE)
    assert problem.dim == 100 and problem.coupling.kernel is not None
    x = problem.sample_initial(32, torch.Generator().manual_seed(0))
    m, m0 = reference.density(0.0, x), problem.initial_density(x)
    assert float((m - m0).norm() / m0.norm()) < 0.1  # linear interpolation of the planar m0 on 32 cells


def test_cli_runs_the_planar_problem_on_the_grid(tmp_path, run_mfgnet):
    run_mfgnet(["problem=separable_crowd_2d", "solver=grid", "solver.cells=16"], tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["converged"] is True
    assert metrics["edge_mass"] < 1e-4


def test_reference_samples_follow_m0_and_the_exact_factor():
    """The reference samples m(t): at t = 0 the planar grid factor N((-1, 0), 0.1 I) (cell-centred
    histogram + uniform jitter) and at every t the extra coordinates' exact Gaussian."""
    fine = planar(COARSE)
    rest = lq_gaussian(3, kappa=EXTRA["confinement"], terminal_weight=EXTRA["terminal_weight"], rho=0.0,
                       mean0=EXTRA["mean0"], var0=EXTRA["var0"]).exact
    reference = SeparableSolution(separable_crowd(5, cells=COARSE).problem, fine, rest)
    assert reference.can_sample
    gen = torch.Generator().manual_seed(0)
    x0 = reference.sample(torch.zeros(40000, dtype=torch.float64), gen)
    torch.testing.assert_close(x0.mean(0), torch.tensor([-1.0, 0.0, 0.5, 0.5, 0.5], dtype=torch.float64),
                               atol=0.01, rtol=0)
    h2 = float(fine.grid.h[0]) ** 2 / 12  # the histogram's extra variance per planar axis
    torch.testing.assert_close(x0.var(0), torch.tensor([0.1 + h2, 0.1 + h2, 0.1, 0.1, 0.1], dtype=torch.float64),
                               atol=0.006, rtol=0)
    x1 = reference.sample(torch.ones(40000, dtype=torch.float64), gen)
    exact_rest = rest.sample(torch.ones(40000, dtype=torch.float64), torch.Generator().manual_seed(1))
    torch.testing.assert_close(x1[:, 2:].mean(0), exact_rest.mean(0), atol=0.01, rtol=0)
    assert float(x1[:, 0].mean()) > -0.5  # the crowd has crossed toward (1, 0)
