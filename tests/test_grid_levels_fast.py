"""1D time levels as tridiagonal diagonals: numba's compiled factor and sweeps against the
LAPACK-per-call path and one SuperLU per level, the diagonals built from the discretisation
against the sparse matrices, and whole solves with and without numba."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.linalg.lapack import dgttrf

from mfgnet.benchmarks import hopf_cole
from mfgnet.grid import solve_grid
from mfgnet.grid.linalg import LevelFactors
from mfgnet.grid.mesh import make_grid
from mfgnet.grid.system import Discretisation
from mfgnet.grid.tridiagonal import NUMBA_AVAILABLE, LevelDiagonals, TridiagonalLevels
from mfgnet.problems import Box, MFGProblem, PowerHamiltonian

BACKENDS = [False] + ([True] if NUMBA_AVAILABLE else [])


@pytest.fixture
def use_numba(request):
    """Sets TridiagonalLevels.use_numba for one test, restored afterwards."""
    saved = TridiagonalLevels.use_numba
    TridiagonalLevels.use_numba = request.param
    yield request.param
    TridiagonalLevels.use_numba = saved


def random_levels(rng, levels: int, n: int, periodic: bool, dominant: bool) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``base`` (n, n) and block-diagonal J: M-matrix-like levels, or (dominant=False) off-diagonals
    larger than the diagonal so that gttrf interchanges rows (box levels only: Sherman–Morrison for a
    torus's corners is unstable on such levels, by SuperLU's numbers as well; the solver's levels
    are M-matrices)."""
    base = sp.diags([-np.ones(n - 1), 4 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]).tolil()
    if periodic:
        base[0, n - 1], base[n - 1, 0] = -1.3, -0.7
    scale = 1.0 if dominant else 8.0
    J = sp.block_diag([sp.diags([-scale * rng.random(n - 1), rng.random(n) - (0.0 if dominant else 3.5),
                                 scale * (rng.random(n - 1) - 0.5)], [-1, 0, 1]) for _ in range(levels)])
    return base.tocsr(), J.tocsr()


@pytest.mark.parametrize("use_numba", BACKENDS, indirect=True)
@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("n, levels, dominant", [(3, 2, True), (4, 3, False), (17, 5, True), (64, 6, False)])
def test_sweeps_match_superlu_per_level(use_numba, periodic, n, levels, dominant):
    dominant = dominant or periodic
    rng = np.random.default_rng(n + 7 * levels)
    base, J = random_levels(rng, levels, n, periodic, dominant)
    fast, sparse = LevelFactors(base, J, levels, n, 1), LevelFactors(base, J, levels, n, 2)
    assert fast.tridiagonal and not sparse.tridiagonal
    assert fast.lu.compiled == use_numba
    rhs = rng.standard_normal((levels, n))
    for mine, ref in [(fast.backward(rhs, 0.1), sparse.backward(rhs, 0.1)),
                      (fast.forward(rhs, 0.1), sparse.forward(rhs, 0.1))]:
        assert np.abs(mine - ref).max() <= 1e-12 * np.abs(ref).max()


@pytest.mark.skipif(not NUMBA_AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("periodic", [False, True])
def test_compiled_factors_are_lapacks(periodic):
    """factor_levels is dgttrf: the same pivots, the same factors; the sweeps agree to round-off."""
    from mfgnet.grid import tridiagonal_kernels

    rng = np.random.default_rng(3)
    levels, n = 5, 33
    base, J = random_levels(rng, levels, n, periodic, dominant=periodic)
    A = LevelDiagonals.from_block_diagonal(base, 1, n) + LevelDiagonals.from_block_diagonal(J, levels, n)
    dl, d, du = A.lower.copy(), A.main.copy(), A.upper.copy()
    du2, ipiv = np.empty((levels, n - 2)), np.empty((levels, n), dtype=np.int32)
    assert tridiagonal_kernels.factor_levels(dl, d, du, du2, ipiv) == -1
    for k in range(levels):
        ref = dgttrf(A.lower[k], A.main[k], A.upper[k])
        assert ref[5] == 0 and np.array_equal(ipiv[k], ref[4])
        for mine, theirs in zip((dl[k], d[k], du[k], du2[k]), ref[:4]):
            assert np.allclose(mine, theirs, rtol=1e-14, atol=0)
    assert periodic or np.any(ipiv != np.arange(1, n + 1))  # rows were interchanged
    rhs = rng.standard_normal((levels, n))
    out = {}
    for compiled in (True, False):
        TridiagonalLevels.use_numba = compiled
        try:
            f = TridiagonalLevels(A)
            out[compiled] = [f.sweep(rhs, 0.05, transposed=t, backward=not t) for t in (False, True)]
        finally:
            TridiagonalLevels.use_numba = NUMBA_AVAILABLE
    for mine, ref in zip(out[True], out[False]):
        assert np.abs(mine - ref).max() <= 1e-12 * np.abs(ref).max()


@pytest.mark.parametrize("periodic", [False, True])
def test_level_diagonals_round_trip(periodic):
    rng = np.random.default_rng(5)
    levels, n = 3, 7
    _, J = random_levels(rng, levels, n, periodic, dominant=True)
    if periodic:
        J = (J + sp.block_diag([sp.coo_matrix(([0.3, -0.2], ([0, n - 1], [n - 1, 0])), shape=(n, n))] * levels)).tocsr()
    D = LevelDiagonals.from_block_diagonal(J, levels, n)
    assert abs(D.to_sparse() - J).max() == 0
    x = rng.standard_normal(levels * n)
    assert np.allclose(D @ x, J @ x, rtol=0, atol=1e-14)
    assert np.allclose(D.T @ x, J.T @ x, rtol=0, atol=1e-14)


def crowd_box(hamiltonian=None) -> MFGProblem:
    """A 1D no-flux box (as tests/test_grid.py's crowd aversion)."""
    return MFGProblem(
        Box([0.0], [1.0]), horizon=1.0, viscosity=0.05, hamiltonian=hamiltonian,
        coupling=lambda t, x, m: m, terminal_cost=lambda x, m: 2.0 * ((x - 0.75) ** 2).sum(-1),
        initial_density=lambda x: torch.exp(-((x - 0.3) ** 2).sum(-1) / 0.02) / (0.02 * math.pi) ** 0.5)


@pytest.mark.parametrize("problem", [hopf_cole().problem, crowd_box(), crowd_box(PowerHamiltonian(3.0))],
                         ids=["torus", "box", "box_power3"])
def test_jacobian_and_transport_diagonals_match_the_sparse_matrices(problem):
    grid = make_grid(problem, 24, 6)
    disc = Discretisation(problem, grid)
    rng = np.random.default_rng(11)
    U = rng.standard_normal((6, grid.n)) * 0.3
    M = 1 + 0.5 * rng.random((6, grid.n))
    hs = disc.ham(U)
    J = disc.ham.jacobian_levels(hs).to_sparse()
    assert abs(J - hs.jacobian).max() <= 1e-14 * abs(hs.jacobian).max()
    transport = disc.ham.transport_levels(hs, M)
    dense = transport.to_sparse() if isinstance(transport, LevelDiagonals) else transport
    ref = disc.ham.transport_jacobian(hs, M)
    assert abs(dense - ref).max() <= 1e-13 * abs(ref).max()


def _solve(problem, cells, steps, tridiagonal: bool, use_numba: bool):
    saved = LevelFactors.tridiagonal_1d, TridiagonalLevels.use_numba
    LevelFactors.tridiagonal_1d, TridiagonalLevels.use_numba = tridiagonal, use_numba
    try:
        return solve_grid(problem, cells=cells, time_steps=steps, progress=False)
    finally:
        LevelFactors.tridiagonal_1d, TridiagonalLevels.use_numba = saved


@pytest.mark.parametrize("problem, cells, steps", [(hopf_cole().problem, 48, 24), (crowd_box(), 16, 16),
                                                   (crowd_box(PowerHamiltonian(3.0)), 16, 16)],
                         ids=["b3_torus", "box", "box_power3"])
def test_whole_solve_is_the_same_with_and_without_numba(problem, cells, steps):
    """Compiled sweeps, LAPACK per call and SuperLU per level (sparse assembly): one solution."""
    reference = _solve(problem, cells, steps, tridiagonal=False, use_numba=False)
    for use_numba in BACKENDS:
        sol = _solve(problem, cells, steps, tridiagonal=True, use_numba=use_numba)
        assert sol.diagnostics.converged
        assert sol.diagnostics.extra["newton_iterations"] == reference.diagnostics.extra["newton_iterations"]
        for mine, ref in ((sol.u, reference.u), (sol.m, reference.m)):
            assert np.linalg.norm(mine - ref) <= 1e-10 * np.linalg.norm(ref)
