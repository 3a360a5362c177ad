"""The best response to a solution's own crowd, on a grid: is u the value that m makes optimal?

An MFG equilibrium is a fixed point: u is the value of one agent's best response to the crowd m,
and m is the crowd that u's feedback produces.  `mfgnet.grid.crowd` checks the second half (the
Fokker–Planck equation under u's feedback); this module checks the first: it solves the HJB
equation on a grid for the solution's *own* m (`mfgnet.grid.solve_hjb`, the grid solver's scheme:
monotone upwind Hamiltonian, implicit Euler) and compares the result with the solution's u.  Both
checks use nothing of the solver that produced the solution, so they serve any solver; together
they say how far a pair (u, m) is from being an equilibrium, in the units a user reads (relative
L2 of u and of m), where a PDE residual's size depends on the problem's scale.

As for the crowd, the grid's own error is removed and estimated by a Richardson extrapolation
from the grid and its half (`estimated_value_gap`).  Time-dependent problems, d <= 2, the
Hamiltonians the grid solver discretises.
"""

from __future__ import annotations

import numpy as np
import torch

from mfgnet.grid.crowd import GapEstimate, check_crowd_problem, relative_distance, richardson
from mfgnet.grid.hjb import solve_hjb
from mfgnet.grid.mesh import Grid, make_grid
from mfgnet.problems import ProblemError


def pair_on_grid(solution, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """``solution``'s u and m at every level and node of ``grid``: two (Nt + 1, n) float64 arrays (a ProblemError
    where either is not finite)."""
    nodes = grid.nodes.to(torch.float64)
    with torch.no_grad():
        u = np.stack([solution.value(float(t), nodes).double().cpu().numpy() for t in grid.times])
        m = np.stack([solution.density(float(t), nodes).double().cpu().numpy() for t in grid.times])
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(m))):
        raise ProblemError(f"the solution has non-finite values on the check's grid ({grid.cells} cells)")
    return u, m


def best_response_value(solution, cells: int, time_steps: int) -> tuple[Grid, np.ndarray, np.ndarray, np.ndarray]:
    """The value of the best response to ``solution``'s own m on a grid of ``cells`` per axis and
    ``time_steps`` implicit Euler steps: (grid, best (Nt + 1, n), the solution's u and m at the same
    levels and nodes (Nt + 1, n) each)."""
    problem = solution.problem
    check_crowd_problem(problem)
    grid = make_grid(problem, cells, time_steps)
    u, m = pair_on_grid(solution, grid)
    result = solve_hjb(problem, grid, m.reshape((len(grid.times), *grid.cells)))
    if not result.converged:
        raise ProblemError(f"the best response's HJB solve did not converge on {cells} cells "
                           f"(residual {result.residual:.1e} after {result.iterations} Newton iterations)")
    return grid, result.u.reshape(len(grid.times), -1), u, m


def estimated_value_gap(solution, cells: int, time_steps: int, levels: int = 11,
                        weight: np.ndarray | None = None) -> GapEstimate:
    """How far the solution's u is from the value of the best response to its own m.

    The best response is solved on (``cells``, ``time_steps``) and on their halves; ``gap`` =
    ‖u − (2 b_h − b_2h)‖ / ‖2 b_h − b_2h‖ over ``levels`` evenly spaced times shared by both grids,
    ``scheme_error`` = ‖b_h − b_2h‖ / ‖b_h‖ (as `mfgnet.grid.crowd.estimated_crowd_gap`).  On R^d
    (a bounding box with no-flux faces the problem does not have) both are weighted, as the zoo's
    rel L2(u) is weighted by the reference m: u far from the crowd is neither trained nor used.  The
    weight is ``weight`` ((Nt + 1, n) on the finer grid's levels and nodes; e.g. the crowd that u's
    feedback produces, ``estimated_crowd_gap(...).field``), else the solution's own m.  Why the crowd
    where there is one: on the zoo's r_split_1d (seed 1) the networks' m carries tails of 1e-3 at
    |x| ≈ 2.5, where u, never trained there, is 24 against the best response's 4; weighted by that m
    the gap read 51 %, weighted by u's own crowd (whose tails u's steep slope sweeps in) 1.0 %, with
    u 0.8 % off the reference (weighted by the reference m) and the crowd gap 1.4 %.
    """
    if cells < 16 or cells % 2 or time_steps < 4 or time_steps % 2:
        raise ProblemError(f"estimated_value_gap halves the grid: cells and time_steps must be even, cells >= 16 "
                           f"and time_steps >= 4, got {cells} and {time_steps}")
    problem = solution.problem
    fine_grid, fine, u, m = best_response_value(solution, cells, time_steps)
    coarse_grid, coarse, _, _ = best_response_value(solution, cells // 2, time_steps // 2)
    # A box or torus is not weighted, so there a weight (e.g. a crowd from another grid) is not checked either
    if weight is not None and not problem.domain.bounded and weight.shape != fine.shape:
        raise ProblemError(f"weight has shape {weight.shape}; expected {fine.shape} (levels, nodes of the finer grid)")
    index, scheme, coarse_on_fine, extrapolated = richardson(
        fine, coarse, coarse_grid.axes, fine_grid.nodes.double().numpy(), bool(problem.domain.periodic), time_steps,
        levels)
    weight = None if problem.domain.bounded else (m if weight is None else weight)[index]
    return GapEstimate(gap=relative_distance(u[index], extrapolated, weight),
                       scheme_error=relative_distance(coarse_on_fine, scheme, weight), cells=cells,
                       time_steps=time_steps)
