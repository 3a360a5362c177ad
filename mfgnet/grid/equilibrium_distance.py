"""How far a pair (u, m) is from the grid's own equilibrium: Newton on the grid's coupled system, started from the pair.

The crowd gap (:mod:`mfgnet.grid.crowd`) and the value gap (:mod:`mfgnet.grid.best_response`) each check one half
of the fixed point: m against the crowd u's feedback produces, u against the value of the best response to m.
Both small does not mean the pair is close to the equilibrium: where the fixed-point map amplifies, small gaps
sit beside a large error.  The zoo's lq_terminal_pull_1d (B2 on R with a strong terminal pull) ended with m
4.6 / 8.8 / 6.6 % off the exact m on seeds 0 / 1 / 2 while its crowd gap read 0.2 % and its value gap 0.6-0.8 %
(the crowd's width 7 % too large, which u's curvature sets and u's relative L2 does not see): both gaps passed and
the run was certified (results/neural_zoo/means.md, thirty-sixth session).

This module measures the distance itself.  The grid solver's Newton iteration on the whole coupled system
(:func:`mfgnet.grid.solver.solve_on_grid`) starts from the pair sampled on the grid's nodes; near an equilibrium it
converges in a few steps (3-6 on most of the zoo's 1D rows: about 1 s at 400 cells / 400 steps, 15 s in 2D at
64² / 80),
and the distance of the pair to where it converges is the answer.  Where Newton does not converge from the pair
(a pair far off), the grid solver's own cold start runs instead.  As for the two gaps, the grid's own error is
removed by a Richardson extrapolation from the grid and its half, and the extrapolation's own error estimated from
the half and the quarter (`estimated_equilibrium_distance`).
Time-dependent problems, d <= 2, the Hamiltonians and couplings the grid solver discretises, not MFGs of controls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfgnet.grid.best_response import pair_on_grid
from mfgnet.grid.config import GridSolverConfig
from mfgnet.grid.crowd import GapEstimate, check_crowd_problem, on_points, relative_distance
from mfgnet.grid.mesh import Grid, make_grid
from mfgnet.problems import ProblemError


@dataclass
class GridEquilibrium:
    """The grid's equilibrium reached from a pair (:func:`grid_equilibrium_from`): the ``grid``, the equilibrium's
    ``u`` and ``m`` and the pair it started from (``start_u``, ``start_m``), each (Nt + 1, n), and what it took
    (``newton_iterations``; ``started_from`` "the pair" or "cold")."""

    grid: Grid
    u: np.ndarray
    m: np.ndarray
    start_u: np.ndarray
    start_m: np.ndarray
    newton_iterations: int
    started_from: str


def grid_equilibrium_from(solution, cells: int, time_steps: int) -> GridEquilibrium:
    """The grid's equilibrium on (``cells``, ``time_steps``), Newton started from ``solution``'s pair."""
    from mfgnet.grid.solver import solve_on_grid  # the solver imports the grid package; import at call time

    problem = solution.problem
    check_crowd_problem(problem)
    if problem.has_mean_control:
        raise ProblemError("the grid's equilibrium of an MFG of controls needs its own fixed point on the mean "
                           "control (solve_grid); the equilibrium distance does not run on it")
    grid = make_grid(problem, cells, time_steps)
    start_u, start_m = pair_on_grid(solution, grid)
    levels = len(grid.times)
    # No Picard steps before Newton: from a pair near the equilibrium they only move it away (from the zoo's
    # trained networks, seed 2, Newton converged in 3-6 steps on 20 of the 22 1D rows, 10 and 12 on r_split_1d
    # and torus_low_noise_1d).  No continuation in ν either: its first stage (ν = 0.2 where the problem's is below
    # 0.02) would start from the pair at the wrong ν and leave it behind.
    result = solve_on_grid(problem, grid, GridSolverConfig(picard_warmup=0, continuation="off", progress=False),
                           quiet=True, initial=(start_u, start_m))
    started_from = "the pair"
    if not result.diagnostics.converged:
        result = solve_on_grid(problem, grid, GridSolverConfig(progress=False), quiet=True)
        started_from = "cold"
    d = result.diagnostics
    if not d.converged:
        raise ProblemError(f"the grid's equilibrium solve did not converge on {cells} cells per axis and "
                           f"{time_steps} steps (residual {d.residual:.1e}, from the pair and from a cold start)")
    return GridEquilibrium(grid, result.u.reshape(levels, -1), result.m.reshape(levels, -1), start_u, start_m,
                           d.extra["newton_iterations"], started_from)


def estimated_equilibrium_distance(solution, cells: int, time_steps: int, levels: int = 11,
                                   solved: dict | None = None) -> tuple[GapEstimate, GapEstimate]:
    """The distance of ``solution``'s m and u to the grid's equilibrium, with the grid's own error removed and
    estimated: (m's, u's).  ``solved``: the grid equilibria already reached from this solution, keyed by (cells,
    time steps), read and extended (a check that climbs to finer grids passes one dict to every call).

    The equilibrium is solved on (``cells``, ``time_steps``), their halves and their quarters
    (:func:`grid_equilibrium_from`: e_h, e_2h, e_4h).  ``gap`` = ‖v − E_h‖ / ‖E_h‖ with E_h = 2 e_h − e_2h, the
    Richardson extrapolation (the scheme is first order in h and Δt together), over ``levels`` evenly spaced times
    all three grids share; ``scheme_error`` = ‖E_h − E_2h‖ / ‖E_h‖ (E_2h = 2 e_2h − e_4h), an estimate of E_h's own
    error.  Why not ‖e_h − e_2h‖ / ‖e_h‖ as the two gaps (the error of e_h, not of E_h): on R's wide boxes it
    leaves the check unable to decide anything (the zoo's LQ rows: 3-10 % at 400 and 800 cells) while E_h is 3-6
    times closer.  Measured with the exact pairs (errors of m against the exact m; thirty-seventh session):

    ====================  =====  ==========  ==========  ============
    problem               cells  e_h's       E_h's       estimate
    ====================  =====  ==========  ==========  ============
    lq_terminal_pull_1d   400    7.7 %       1.67 %      3.4 %
    lq_narrow_1d          400    13.7 %      5.8 %       7.4 %
    lq_offset_1d          400    6.7 %       1.59 %      3.0 %
    lq_terminal_pull_1d   800    4.1 %       0.51 %      1.25 %
    lq_narrow_1d          800    7.8 %       2.16 %      3.7 %
    lq_offset_1d          800    3.6 %       0.50 %      1.15 %
    B3 (torus)            100    0.34 %      0.025 %     0.066 %
    B3 (torus)            200    0.18 %      0.006 %     0.017 %
    ====================  =====  ==========  ==========  ============

    The estimate is above E_h's true error in m on every one (asymptotically three times it; ‖E_h − E_2h‖ / 3,
    the textbook estimate, fell below it on the LQ rows: 1.1 % for 1.66 %, 2.5 % for 5.7 %), and in u on all but
    lq_narrow_1d, where both are below 0.02 %.  On R^d (a bounding box
    with no-flux faces the problem does not have) u's distance is weighted by the grid equilibrium's m, as the zoo's
    rel L2(u) is weighted by the reference m.  Measured on the zoo's saved networks (seed 2, 400 / 400, against
    the two-grid extrapolation): box_narrow_far_1d m 1.36 % (its error against the reference 1.63 %),
    torus_power_two_1d 11.8 % (9.3 %), lq_terminal_pull_1d 5.7 % (6.6 %), 2D box_wall_push_2d 21.9 % (27.7 %,
    64² / 80).
    """
    if cells < 32 or cells % 4 or time_steps < 8 or time_steps % 4:
        raise ProblemError(f"estimated_equilibrium_distance solves on the grid, its half and its quarter: cells and "
                           f"time_steps must be multiples of 4, cells >= 32 and time_steps >= 8, got {cells} and "
                           f"{time_steps}")
    problem = solution.problem
    solved = {} if solved is None else solved

    def equilibrium(k: int) -> GridEquilibrium:
        # each grid solved once per ``solved``: a finer check reuses its coarser grids (1600 cells: 800 and 400)
        key = (cells // k, time_steps // k)
        if key not in solved:
            solved[key] = grid_equilibrium_from(solution, *key)
        return solved[key]

    fine, half, fourth = (equilibrium(k) for k in (1, 2, 4))
    points, periodic = fine.grid.nodes.double().numpy(), bool(problem.domain.periodic)
    # levels shared by the three grids: every fourth level of the finest
    quarter = np.unique(np.linspace(0, time_steps // 4, levels).round().astype(int))

    def on_fine(coarse: GridEquilibrium, coarsening: int, name: str) -> np.ndarray:
        """``coarse``'s field ``name`` ("u" or "m"; its grid coarsened ``coarsening`` times) at the shared levels,
        interpolated onto the fine nodes."""
        values = getattr(coarse, name)
        return np.stack([on_points(coarse.grid.axes, values[level * 4 // coarsening], points, periodic)
                         for level in quarter])

    out = {}
    for name in ("m", "u"):
        # u's distance on R^d is weighted by the equilibrium's m (see above)
        weight = fine.m[quarter * 4] if name == "u" and not problem.domain.bounded else None
        e_h, e_2h, e_4h = getattr(fine, name)[quarter * 4], on_fine(half, 2, name), on_fine(fourth, 4, name)
        extrapolated, coarser = 2.0 * e_h - e_2h, 2.0 * e_2h - e_4h
        mine = getattr(fine, f"start_{name}")[quarter * 4]
        out[name] = GapEstimate(gap=relative_distance(mine, extrapolated, weight),
                                scheme_error=relative_distance(coarser, extrapolated, weight), cells=cells,
                                time_steps=time_steps)
    return out["m"], out["u"]
