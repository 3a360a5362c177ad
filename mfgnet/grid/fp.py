"""The discrete Fokker-Planck equation for a given value function (the adjoint of the linearised HJB)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from mfgnet.grid.linalg import DirectSolve
from mfgnet.grid.mesh import Grid
from mfgnet.grid.system import Discretisation
from mfgnet.problems import MFGProblem


def fp_time_dependent(disc: Discretisation, U: np.ndarray) -> np.ndarray:
    """m^1..m^{Nt} (Nt, n) for u^0..u^{Nt-1} (Nt, n): one sparse solve of the block-bidiagonal
    system ``(I/dt - ν Δ + J(u^k)ᵀ) m^{k+1} = m^k / dt`` by a forward sweep (M-matrix blocks, so m >= 0)."""
    grid = disc.grid
    nt, n = U.shape
    rhs = np.zeros((nt, n))
    rhs[0] = disc.m0 / grid.dt
    cached = getattr(disc, "_factors", None)
    J = None if cached is not None and np.array_equal(cached[0], U) else disc.hamiltonian_jacobian(disc.ham(U))
    return disc.level_factors(U, J).forward(rhs, grid.dt)


def fp_ergodic(disc: Discretisation, u: np.ndarray) -> np.ndarray:
    """The invariant density (n,) of the discrete dynamics for u (n,): kernel of ``-ν Δ + Jᵀ``
    normalised by h^d Σ m = 1 (bordered system with a multiplier)."""
    grid = disc.grid
    n = grid.n
    cached = getattr(disc, "_ergodic_hjb", None)
    if cached is not None and np.array_equal(cached[0], u):
        # [[B, 1], [h^d 1ᵀ, 0]]ᵀ [m; μ] = [0; 1/h^d] is the same FP system with its border rescaled.
        rhs = np.zeros(n + 1)
        rhs[-1] = 1.0 / grid.cell_volume
        return cached[1].solve(rhs, trans="T")[:n]
    J = disc.ham(u[None]).jacobian
    A = sp.bmat([[-disc.nu * grid.laplacian + J.T, sp.csr_matrix(np.ones((n, 1)))],
                 [sp.csr_matrix(np.full((1, n), grid.cell_volume)), None]], format="csr")
    rhs = np.zeros(n + 1)
    rhs[-1] = 1.0
    return DirectSolve(A, grid, fields=1).solve(rhs)[:n]


def solve_fp(problem: MFGProblem, grid: Grid, u: np.ndarray) -> np.ndarray:
    """Public: the discrete density driven by the value function u on ``grid``.

    Parameters
    ----------
    problem : MFGProblem
        The MFG (its Hamiltonian must be a RadialHamiltonian).
    grid : Grid
        From [`make_grid`][mfgnet.grid.mesh.make_grid] (or ``GridSolution.grid``).
    u : numpy.ndarray
        Node values, shape (Nt + 1, *cells) for a time-dependent problem (the last level,
        u(T), is not used) or (*cells) for an ergodic one.

    Returns
    -------
    numpy.ndarray
        m with the same shape as u: m[0] = m0 (normalised to discrete mass 1).
    """
    disc = Discretisation(problem, grid)
    if problem.is_ergodic:
        return fp_ergodic(disc, np.asarray(u, dtype=np.float64).reshape(grid.n)).reshape(grid.cells)
    U = np.asarray(u, dtype=np.float64).reshape(-1, grid.n)[:-1]
    M = fp_time_dependent(disc, U)
    return np.vstack([disc.m0[None], M]).reshape((-1, *grid.cells))
