"""Grid solver, time-dependent Newton at small ν: GMRES on the whole Newton matrix preconditioned by one
reused LU of it (``time_lu="reuse"``) against GMRES on the Schur complement only (``time_lu="off"``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mfgnet.grid import solve_grid
from mfgnet.problems import Box, MFGProblem, NonlocalCoupling
from mfgnet.problems.couplings import mean_kernel
from mfgnet.problems.examples import crowd_aversion


def nonlocal_mean_1d(viscosity: float) -> MFGProblem:
    """F = m + (x - mean(m))²: a low-rank nonlocal part that the factorised matrix leaves out."""
    return MFGProblem(Box([0.0], [1.0]), horizon=1.0, viscosity=viscosity,
                      coupling=NonlocalCoupling(lambda t, x, m, conv: m + ((x - conv) ** 2).sum(-1), mean_kernel),
                      initial_density=lambda x: 1.0 + 0.5 * torch.cos(torch.pi * x[:, 0]), name="mean_box_1d")


@pytest.mark.parametrize("make, cells", [(lambda: crowd_aversion(viscosity=1e-3, horizon=1.0), 48),
                                         (lambda: nonlocal_mean_1d(1e-3), 32)])
def test_reused_space_time_lu_gives_the_same_solution_with_fewer_gmres_iterations(make, cells):
    problem = make()
    off = solve_grid(problem, cells=cells, progress=False, time_lu="off")
    reuse = solve_grid(problem, cells=cells, progress=False, time_lu="reuse", time_lu_switch=20)
    a, b = off.diagnostics, reuse.diagnostics
    assert a.converged and b.converged
    for x, y in ((off.u, reuse.u), (off.m, reuse.m)):
        assert np.max(np.abs(x - y)) <= 1e-8 * np.max(np.abs(x))
    assert b.extra["mass_error"] <= 1e-12 and reuse.m.min() >= 0.0
    assert 1 <= b.extra["factorisations"] <= b.extra["newton_iterations"] // 2  # reused across Newton steps
    assert b.extra["gmres_iterations"] < a.extra["gmres_iterations"]
    assert b.extra["newton_iterations"] <= a.extra["newton_iterations"] + 1
    assert "factorisations" not in a.extra


def test_the_whole_matrix_is_not_factorised_where_schur_gmres_is_fast():
    """ν = 0.2: the Schur complement needs ~10 iterations per step, fewer than the switch."""
    sol = solve_grid(crowd_aversion(viscosity=0.2, horizon=1.0), cells=32, progress=False, time_lu="reuse",
                     time_lu_switch=20)
    assert sol.diagnostics.converged and sol.diagnostics.extra["factorisations"] == 0
