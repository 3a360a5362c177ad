"""Several populations on the grid by block Gauss-Seidel sweeps (``solver.populations_solve``):
the same solution as Newton on the coupled system, ``converged`` from the coupled residual, mass
kept, an honest False when the sweeps are capped, and the choice of "auto"."""

from __future__ import annotations

import numpy as np
import pytest

from mfgnet.benchmarks.two_populations import two_populations
from mfgnet.grid.config import GridSolverConfig
from mfgnet.grid.mesh import make_grid
from mfgnet.grid.populations import _use_sweeps
from mfgnet.grid.solver import solve_grid, solve_on_grid
from mfgnet.problems import ProblemError
from mfgnet.problems.examples import segregation


def _rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("dim, cells, params", [(1, 32, {}), (2, 8, {"cross_aversion": 1.5})])
def test_sweeps_agree_with_newton(dim, cells, params):
    # measured: 1D rel L2 1e-12 (m) after 15 sweeps, 2D 1.6e-11 after 17; both residuals <= tol = 1e-10
    problem = segregation(dim=dim, **params)
    newton = solve_grid(problem, cells=cells, progress=False, populations_solve="newton")
    sweeps = solve_grid(problem, cells=cells, progress=False, populations_solve="sweeps")
    assert newton.diagnostics.extra["populations_solve"] == "newton"
    d = sweeps.diagnostics
    assert d.extra["populations_solve"] == "sweeps"
    assert newton.diagnostics.converged and d.converged
    assert d.residual <= max(1e-10, d.extra["residual_floor"])
    assert d.residual == d.residual_history[-1] and d.iterations == d.extra["sweeps"] == len(d.residual_history)
    assert 5 <= d.extra["sweeps"] <= 30 and d.extra["inner_not_converged"] == 0
    assert d.extra["density_change"] < 1e-8
    assert d.extra["mass_error"] <= 1e-10 and d.extra["min_density"] >= 0.0
    for k in range(2):
        assert sweeps.populations[k].diagnostics.extra["mass_error"] <= 1e-10
        assert _rel_l2(sweeps.populations[k].m, newton.populations[k].m) <= 1e-9
        assert _rel_l2(sweeps.populations[k].u, newton.populations[k].u) <= 1e-9


def test_capped_sweeps_are_not_converged():
    problem = segregation(dim=2, cross_aversion=1.5)
    solution = solve_grid(problem, cells=8, progress=False, populations_solve="sweeps", max_iterations=2)
    d = solution.diagnostics
    assert not d.converged and d.extra["sweeps"] == 2 and d.extra["stopped_on"] == "max_iterations"
    assert d.residual > 1e-3  # far from the equilibrium after two sweeps (measured 1.04)
    assert d.extra["inner_not_converged"] == 0  # max_iterations caps the sweeps, not each population's Newton
    assert "max_iterations" in d.extra["diagnosis"]
    assert d.extra["mass_error"] <= 1e-10  # every sweep's densities are exact Fokker-Planck solutions


def test_auto_takes_newton_on_small_systems_and_sweeps_on_large_ones():
    def choice(dim, cells, mode="auto"):
        problem = segregation(dim=dim)
        config = GridSolverConfig(cells=cells, populations_solve=mode)
        return _use_sweeps(problem, make_grid(problem.population_problem(0), cells, None), config)

    assert not choice(1, 128) and choice(1, 256)
    assert not choice(2, 14) and choice(2, 16) and choice(2, 64)
    assert choice(1, 32, "sweeps") and not choice(2, 64, "newton")
    ergodic, _ = two_populations(dim=1)
    config = GridSolverConfig(cells=32)
    grid = make_grid(ergodic.population_problem(0), 32, None)
    assert not _use_sweeps(ergodic, grid, config)  # ergodic: Newton whatever the size
    with pytest.raises(ProblemError, match="time-dependent"):
        _use_sweeps(ergodic, grid, config.replace(populations_solve="sweeps"))


def test_solve_on_grid_starts_from_an_initial_guess():
    problem = segregation(dim=1).population_problem(0)
    config = GridSolverConfig(cells=32, progress=False)
    grid = make_grid(problem, 32, None)
    cold = solve_on_grid(problem, grid, config)
    warm = solve_on_grid(problem, grid, config.replace(picard_warmup=0), initial=(cold.u, cold.m))
    assert cold.diagnostics.iterations >= 4  # 3 Picard steps, then Newton
    assert warm.diagnostics.converged and warm.diagnostics.iterations == 0
    assert np.array_equal(warm.m, cold.m) and np.array_equal(warm.u, cold.u)


class _Tilted:
    """m0_k shifted towards one side of the diagonal x₁ = x₂ as t grows (a start for the sweeps)."""

    def __init__(self, problem, k: int, sign: float):
        self.problem, self.k, self.sign = problem, k, sign

    def density(self, t, x):
        import torch

        m0 = self.problem.populations[self.k].initial_density(x)
        return m0 * (1 + self.sign * 0.8 * torch.tanh(4 * (x[:, 0] - x[:, 1])) * t / self.problem.horizon)


def _asymmetry(m: np.ndarray) -> float:
    return float(np.linalg.norm(m[-1] - m[-1].T) / np.linalg.norm(m[-1]))


def test_a_tilted_start_reaches_another_equilibrium_of_segregation_2d():
    # Cross aversion 3 > self aversion 0.5: not monotone, several equilibria.  Measured at 8²: the usual
    # start gives the x₁ <-> x₂ symmetric one (20 sweeps), the tilted start an asymmetric one (asymmetry
    # 0.32 / 0.31, 40 sweeps), both to residual ~1e-11; their mirror start gives the exact mirror image.
    from mfgnet.grid.populations import solve_grid_populations

    problem = segregation(dim=2)
    config = GridSolverConfig(cells=8, progress=False, populations_solve="sweeps", max_iterations=100)
    usual = solve_grid_populations(problem, config)
    tilted = solve_grid_populations(problem, config, initial=[_Tilted(problem, 0, 1.0), _Tilted(problem, 1, -1.0)])
    for solution in (usual, tilted):
        d = solution.diagnostics
        assert d.converged and d.residual <= max(1e-10, d.extra["residual_floor"])
        assert d.extra["mass_error"] <= 1e-10 and d.extra["min_density"] >= 0.0
    for k in range(2):
        assert _asymmetry(usual.populations[k].m) < 1e-9
        assert _asymmetry(tilted.populations[k].m) > 0.2
        assert _rel_l2(tilted.populations[k].m, usual.populations[k].m) > 0.05
        assert np.array_equal(tilted.populations[k].m[0], usual.populations[k].m[0])  # level 0 is m0 either way
    # Started at an equilibrium, the sweeps stay there (measured: first coupled residual 8e-7, the loose
    # first inner tolerance, against 31 from the usual start; 9 sweeps against 20).
    again = solve_grid_populations(problem, config, initial=usual.populations)
    assert again.diagnostics.converged and again.diagnostics.iterations < usual.diagnostics.iterations
    assert again.diagnostics.residual_history[0] < 1e-4 * usual.diagnostics.residual_history[0]
    for k in range(2):
        assert _rel_l2(again.populations[k].m, usual.populations[k].m) <= 1e-8
    with pytest.raises(ProblemError, match="2 populations"):
        solve_grid_populations(problem, config, initial=usual.populations[:1])
