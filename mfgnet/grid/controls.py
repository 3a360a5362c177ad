"""MFGs of controls on the grid: a fixed point on the crowd's mean control ᾱ(t).

With ᾱ frozen, an MFG of controls is an ordinary MFG (``problem.with_mean_control``), which
`solve_on_grid` solves by Newton; its solution's own mean control

    ᾱ_new(t_n) = Σ_j α(t_n, x_j) m(t_n, x_j) h^d,   α = -∂pH(x, ∇u),  ∇u by central differences,

defines a map on the (Nt + 1) × d values of ᾱ whose fixed point is the equilibrium.  The
fixed point is found by Anderson mixing (``scipy.optimize.anderson``): for linear-quadratic
games the map is affine and Anderson converges in a few evaluations where plain iteration
contracts slowly (or not at all) under a strong interaction.  Between evaluations ᾱ is
interpolated linearly in t.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from scipy.optimize import NoConvergence, anderson

from mfgnet.grid.config import GridSolverConfig
from mfgnet.grid.solution import GridSolution
from mfgnet.problems import MFGProblem, ProblemError
from mfgnet.progress import progress_bar
from mfgnet.solution import Diagnostics

logger = logging.getLogger(__name__)
# Anderson's memory: 10 took the strong-impact trade crowding (γ = 20, 128 cells) from no fixed point in
# 80 iterations (memory 5, scipy's default) to 49; 20 and 40 took 32-34 but warned of ill-conditioned
# least-squares systems on the default problem.
ANDERSON_MEMORY = 10


def piecewise_linear(times: np.ndarray, values: np.ndarray):
    """``fn(t (n, 1)) -> (n, d)``: the linear interpolant in t of ``values`` (L, d) at ``times`` (L,)
    (constant beyond the ends)."""
    knots = torch.as_tensor(times, dtype=torch.float64)
    table = torch.as_tensor(values, dtype=torch.float64)

    def fn(t: torch.Tensor) -> torch.Tensor:
        s = t.reshape(-1).to(torch.float64).clamp(float(knots[0]), float(knots[-1]))
        right = torch.searchsorted(knots, s).clamp(1, len(knots) - 1)
        left = right - 1
        weight = ((s - knots[left]) / (knots[right] - knots[left])).unsqueeze(-1)
        return ((1 - weight) * table[left] + weight * table[right]).to(t.dtype)

    return fn


def mean_control_of(solution: GridSolution) -> np.ndarray:
    """ᾱ(t_n) = ∫ α m dx at every time level of a grid solution, shape (Nt + 1, d)."""
    grid = solution.grid
    levels = solution.u.shape[0]
    spacing = [np.asarray(a) for a in grid.axes]
    grads = np.gradient(solution.u, *spacing, axis=tuple(range(1, grid.dim + 1)))
    grads = grads if isinstance(grads, (list, tuple)) else [grads]
    p = torch.from_numpy(np.stack([g.reshape(levels, -1) for g in grads], -1).reshape(-1, grid.dim))
    x = grid.nodes.repeat(levels, 1)
    with torch.no_grad():
        alpha = -solution.problem.hamiltonian.grad_p(x, p).numpy().reshape(levels, grid.n, grid.dim)
    m = solution.m.reshape(levels, grid.n)
    return grid.cell_volume * np.einsum("lnd,ln->ld", alpha, m)


def solve_grid_mean_control(problem: MFGProblem, config: GridSolverConfig, solve_frozen) -> GridSolution:
    """The equilibrium of an MFG of controls: Anderson mixing on ᾱ over ``solve_frozen(frozen_problem)``
    (the grid solve of an ordinary MFG).  ``converged`` needs the last frozen game solved to its
    tolerance and the fixed-point gap max|ᾱ_new - ᾱ| <= ``config.mean_control_tol``;
    ``diagnostics.extra`` holds ``mean_control_iterations``, ``mean_control_gap``; the solution
    carries ``mean_control_values`` (Nt + 1, d) at ``solution.times`` and ``mean_control(t)``,
    their linear interpolant (t (n,) or (n, 1) -> (n, d))."""
    if problem.is_ergodic:
        raise ProblemError("an MFG of controls is implemented for time-dependent problems only")
    start = time.perf_counter()
    cache: dict = {}
    history: list[float] = []
    bar = progress_bar(None, "grid mean control", enabled=config.progress)

    def image(flat: np.ndarray) -> np.ndarray:
        times = cache.get("times")
        frozen_values = np.zeros((2, problem.dim)) if times is None else flat.reshape(len(times), problem.dim)
        frozen_times = np.array([0.0, problem.horizon]) if times is None else times
        solution = solve_frozen(problem.with_mean_control(piecewise_linear(frozen_times, frozen_values)))
        cache["times"] = solution.times
        new = mean_control_of(solution)
        cache.update(solution=solution, at=flat.copy(), new=new)
        return new.ravel()

    # A first solve with ᾱ = 0 fixes the time levels (and is Anderson's first iterate's image).
    first = image(np.zeros(problem.dim))
    state = {"evaluations": 1}

    def gap(flat: np.ndarray) -> np.ndarray:
        state["evaluations"] += 1
        return image(flat) - flat

    def report(x: np.ndarray, f: np.ndarray) -> None:
        value = float(np.abs(f).max())
        history.append(value)
        bar.update(1)
        bar.set_postfix_str(f"|ᾱ gap| {value:.2e}", refresh=False)
        logger.log(logging.INFO if config.verbose else logging.DEBUG,
                   "[grid mean control] iteration %d: max |ᾱ_new - ᾱ| = %.3e", len(history), value)

    history.append(float(np.abs(first).max()))  # the gap at ᾱ = 0
    reason = ""
    with bar:
        try:
            anderson(gap, first, f_tol=config.mean_control_tol, maxiter=config.mean_control_iterations,
                     callback=report, line_search=None, M=ANDERSON_MEMORY)
        except NoConvergence:
            reason = f"no fixed point of ᾱ within {config.mean_control_iterations} iterations"
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
            reason = f"the fixed point on ᾱ failed: {exc}"
    solution: GridSolution = cache["solution"]
    final_gap = float(np.abs(cache["new"].ravel() - cache["at"]).max())
    history.append(final_gap)
    inner = solution.diagnostics
    converged = bool(inner.converged and final_gap <= config.mean_control_tol)
    if not converged and not reason:
        reason = (f"the mean control's fixed-point gap {final_gap:.2e} > mean_control_tol "
                  f"{config.mean_control_tol:.1e}" if inner.converged else "the last frozen game did not converge")
    extra = dict(inner.extra)
    extra.update(mean_control_iterations=state["evaluations"], mean_control_gap=final_gap,
                 frozen_game_residual=float(inner.residual))
    if reason:
        extra["diagnosis"] = reason
        logger.warning("grid solver (MFG of controls): %s", reason)
    solution.problem = problem
    solution.mean_control_values = cache["new"]
    solution.mean_control = piecewise_linear(solution.times, cache["new"])
    solution.diagnostics = Diagnostics(
        converged=converged, iterations=state["evaluations"], residual=max(float(inner.residual), final_gap),
        residual_history=history, wall_time_s=time.perf_counter() - start, extra=extra)
    return solution
