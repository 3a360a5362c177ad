"""Grid solver, ergodic 2D: the reused HJB factorisation (``ergodic_lu="reuse"``, GMRES with a stale LU
and block Gauss-Seidel Newton steps) against a fresh factorisation of every Jacobian."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

from mfgnet.benchmarks import ergodic_torus
from mfgnet.grid import solve_grid
from mfgnet.problems import Box, MFGProblem, NonlocalCoupling
from mfgnet.problems.couplings import mean_kernel
from mfgnet.problems.zoo import box_bump_2d


@pytest.fixture
def count_factorisations(monkeypatch):
    """Counts SuperLU factorisations (every direct solve of the grid solver goes through splu)."""
    counter = [0]
    splu = spla.splu

    def counting(*args, **kwargs):
        counter[0] += 1
        return splu(*args, **kwargs)

    monkeypatch.setattr(spla, "splu", counting)
    return counter


def solve_both(problem, counter, **kwargs):
    out = {}
    for mode in ("fresh", "reuse"):
        counter[0] = 0
        out[mode] = (solve_grid(problem, ergodic_lu=mode, progress=False, **kwargs), counter[0])
    return out


def relative(a, b) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


def nonlocal_mean_box() -> MFGProblem:
    """Ergodic, no-flux square, F = ln m + |x - mean(m)|²: a nonlocal coupling (auxiliary unknowns)."""
    return MFGProblem(Box([0.0, 0.0], [1.0, 1.0]), horizon=None, viscosity=0.1,
                      coupling=NonlocalCoupling(lambda t, x, m, conv: torch.log(m) + ((x - conv) ** 2).sum(-1),
                                                mean_kernel), name="mean_box_2d")


@pytest.mark.parametrize("make, cells", [(lambda: ergodic_torus(2).problem, 32), (nonlocal_mean_box, 16)])
def test_ergodic_2d_reuse_matches_fresh_with_fewer_factorisations(count_factorisations, make, cells):
    runs = solve_both(make(), count_factorisations, cells=cells)
    (fresh, n_fresh), (reuse, n_reuse) = runs["fresh"], runs["reuse"]
    assert fresh.diagnostics.converged and reuse.diagnostics.converged
    assert relative(fresh.u, reuse.u) <= 1e-8
    assert relative(fresh.m, reuse.m) <= 1e-8
    assert abs(fresh.ergodic_constant - reuse.ergodic_constant) <= 1e-8 * abs(fresh.ergodic_constant)
    assert n_reuse <= n_fresh
    extra = reuse.diagnostics.extra
    assert extra["factorisations"] == n_reuse  # every factorisation is reported
    assert extra["gmres_iterations"] > 0 and extra["gmres_capped"] == 0
    assert extra["newton_iterations"] == fresh.diagnostics.extra["newton_iterations"]
    assert reuse.m.min() >= 0.0 and extra["mass_error"] <= 1e-12
    assert "factorisations" not in fresh.diagnostics.extra


def test_b1_2d_reuse_keeps_the_error_against_the_exact_solution():
    bench = ergodic_torus(2)
    errors = {}
    for mode in ("fresh", "reuse"):
        sol = solve_grid(bench.problem, cells=32, ergodic_lu=mode, progress=False)
        errors[mode] = abs(sol.ergodic_constant - bench.exact.ergodic_constant)
    assert math.isclose(errors["fresh"], errors["reuse"], rel_tol=1e-6)


def test_time_dependent_2d_is_untouched(count_factorisations):
    runs = solve_both(box_bump_2d(), count_factorisations, cells=12, time_steps=12)
    (fresh, n_fresh), (reuse, n_reuse) = runs["fresh"], runs["reuse"]
    assert fresh.diagnostics.converged and reuse.diagnostics.converged
    assert relative(fresh.u, reuse.u) <= 1e-8 and relative(fresh.m, reuse.m) <= 1e-8
    assert n_reuse <= n_fresh
    assert np.array_equal(fresh.u, reuse.u) and np.array_equal(fresh.m, reuse.m)  # the same path
