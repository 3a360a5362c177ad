"""The backward HJB equation for a fixed density: the best response of one agent to a crowd."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfgnet.grid.mesh import Grid
from mfgnet.grid.newton import NewtonResult, newton
from mfgnet.grid.system import Discretisation, ErgodicHJB, TimeDependentHJB
from mfgnet.problems import MFGProblem, ProblemError


@dataclass
class HJBResult:
    """The value function of the best response to a fixed density.

    ``u``: (Nt + 1, *cells) (time-dependent; ``u[-1] = G(m(T))``) or (*cells) (ergodic).
    ``ergodic_constant``: λ (ergodic) or None.  The best response's expected cost for agents
    starting from m0 is ``grid.cell_volume * (u[0] * m0).sum()`` (time-dependent) or λ (ergodic).
    """

    u: np.ndarray
    ergodic_constant: float | None
    converged: bool
    iterations: int
    residual: float


def hjb_time_dependent(disc: Discretisation, M: np.ndarray, U0: np.ndarray | None, tol: float,
                       max_iterations: int, verbose: bool = False) -> tuple[np.ndarray, NewtonResult]:
    """u^0..u^{Nt-1} (Nt, n) for m^1..m^{Nt} (Nt, n): Newton on all time levels at once (for a
    convex H this is policy iteration and converges from any start)."""
    system = TimeDependentHJB(disc, M)
    x0 = np.zeros(M.size) if U0 is None else U0.ravel()
    res = newton(system, x0, tol, max_iterations, verbose, label="hjb", line_search=False)
    return res.x.reshape(M.shape), res


def hjb_ergodic(disc: Discretisation, m: np.ndarray, u0: np.ndarray | None, lam0: float, tol: float,
                max_iterations: int, verbose: bool = False) -> tuple[np.ndarray, float, NewtonResult]:
    """(u (n,), λ) for m (n,), with h^d Σ u = 0."""
    system = ErgodicHJB(disc, m)
    x0 = np.concatenate([np.zeros(m.size) if u0 is None else u0, [lam0]])
    res = newton(system, x0, tol, max_iterations, verbose, label="hjb", line_search=False)
    return res.x[:-1], float(res.x[-1]), res


def solve_hjb(problem: MFGProblem, grid: Grid, m: np.ndarray, tol: float = 1e-10, max_iterations: int = 50,
              verbose: bool = False) -> HJBResult:
    """Public: solve the discrete HJB equation of ``problem`` on ``grid`` for a *given* density.

    This is the best response of a single agent to the population density m (the inner step
    of Picard / fictitious play); with it, the exploitability of any population policy is the
    population's cost minus the best response's cost against the population's own density.

    Parameters
    ----------
    problem : MFGProblem
        The MFG (its Hamiltonian must be a RadialHamiltonian).
    grid : Grid
        From [`make_grid`][mfgnet.grid.mesh.make_grid] (or ``GridSolution.grid``).
    m : numpy.ndarray
        Density node values, shape (Nt + 1, *cells) (levels 1..Nt enter the coupling,
        level Nt the terminal cost; level 0 is unused) or (*cells) for an ergodic problem.
        Any array reshapeable to these shapes is accepted.
    tol : float
        Tolerance of the HJB solve (max-norm residual).
    max_iterations : int
        Newton iterations per solve.
    verbose : bool
        Print progress.

    Returns
    -------
    HJBResult
        u of the same shape as m, λ (ergodic), and whether the solve converged.
    """
    m = np.asarray(m, dtype=np.float64)
    disc = Discretisation(problem, grid)
    if problem.is_ergodic:
        if m.size != grid.n:
            raise ProblemError(f"m has {m.size} values; the ergodic grid has {grid.n} nodes (shape {grid.cells})")
        u, lam, res = hjb_ergodic(disc, m.reshape(grid.n), None, 0.0, tol, max_iterations, verbose)
        return HJBResult(u.reshape(grid.cells), lam, res.converged, res.iterations, res.residual)
    levels = grid.time_steps + 1
    if m.size != levels * grid.n:
        raise ProblemError(f"m has {m.size} values; expected shape ({levels}, *{grid.cells}) "
                           "(time levels 0..Nt of the grid)")
    M = m.reshape(levels, grid.n)[1:]
    U, res = hjb_time_dependent(disc, M, None, tol, max_iterations, verbose)
    u_last = disc.terminal(grid.times[-1:], M[-1:], derivatives=False).value
    u = np.vstack([U, u_last]).reshape((levels, *grid.cells))
    return HJBResult(u, None, res.converged, res.iterations, res.residual)
