"""Newton's method with a backtracking line search, for any system of :mod:`mfgnet.grid.system`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

_MIN_STEP = 1.0 / 64
log = logging.getLogger(__name__)


def merit(r: np.ndarray) -> float:
    """The line search's measure of a residual: its root mean square (inf where not finite).

    Why not the max norm that decides convergence: the Newton direction descends on |r|₂², not on max |r|.  With the
    max norm the search cut the steps of a narrow crowd pulled across R to 1/16-1/4 for 20 iterations (B2 with
    lq_sharp_pull_1d's data, 128 cells, dt = h, T = 2, ν = 0.05: 25 Newton steps; 14 with the root mean square).
    Over the 60 cases of results/grid_small_noise.md it took fewer steps in 20, the same in 37 and more in 3, and two
    cases that had stalled converge (fortieth session)."""
    value = float(np.sqrt(np.mean(r * r))) if r.size else 0.0
    return value if np.isfinite(value) else float("inf")


@dataclass
class NewtonResult:
    x: np.ndarray
    converged: bool
    iterations: int
    residual: float
    history: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    residual_floor: float = 0.0
    stopped_on: str = ""


def residual_norm(r: np.ndarray) -> float:
    """Max norm; inf for a non-finite residual (e.g. log of a negative density)."""
    value = float(np.max(np.abs(r))) if r.size else 0.0
    return value if np.isfinite(value) else float("inf")


def _try(system, x: np.ndarray, jacobian: bool):
    try:
        with np.errstate(all="ignore"):
            r, A = system.evaluate(x, jacobian=jacobian)
    except FloatingPointError:
        return None, None, float("inf")
    return r, A, residual_norm(r)


def newton(system, x0: np.ndarray, tol: float, max_iterations: int, verbose: bool = False,
           label: str = "newton", line_search: bool = True,
           report: Callable[[str, int, float], None] | None = None) -> NewtonResult:
    """Solve ``system.evaluate(x)[0] = 0`` from x0.

    Each step solves ``A dx = -r`` with the system's own linear solver and halves the step
    until the residual's root mean square (:func:`merit`) decreases, which also keeps the iterate where the coupling
    is finite (e.g. m > 0 for ln m); below a step of 1/64 Newton has stalled and stops
    (``converged`` is then False).  It has converged when the residual is below tol or below
    the system's round-off floor ``system.residual_floor(x)`` (on fine grids the max-norm
    residual of ``ν Δ_h u`` cannot drop below about ``ν |u| / h² · 1e-16``), or when a step
    is below ``tol (1 + |x|)`` in max norm (that tiny step is taken and its residual reported).
    ``stopped_on`` says which: "tol", "residual_floor", "small_step", "stalled" (line search
    below a step of 1/64), "singular" (non-finite Newton step), "inexact_direction" (a tiny step
    from a linear solve that reports ``inexact``, e.g. GMRES at its cap: the step is taken, but
    only a residual below tol counts as converged) or "max_iterations";
    ``residual_floor`` is the floor at the start.

    ``line_search=False`` takes every finite full step: for the HJB equation alone with a
    convex Hamiltonian, Newton is Howard's policy iteration, which converges from any start
    although the max-norm residual need not decrease monotonically.
    """
    start = time.perf_counter()
    x = np.array(x0, dtype=np.float64)
    r, A, norm = _try(system, x, jacobian=True)
    if r is None or not np.isfinite(norm):
        raise FloatingPointError(f"{label}: the residual is not finite at the initial guess")
    history, steps = [norm], []
    iterations, stalled_small, stopped_on = 0, False, ""
    floor_of = getattr(system, "residual_floor", None)
    floor = float(floor_of(x)) if floor_of is not None else 0.0
    tol_eff = max(tol, floor)
    while norm > tol_eff and iterations < max_iterations:
        dx = A.solve(-r)
        if not np.all(np.isfinite(dx)):
            stopped_on = "singular"
            break  # singular Jacobian: report non-convergence rather than NaNs
        if np.max(np.abs(dx)) <= tol * (1.0 + np.max(np.abs(x))):
            # Converged in x: take the (tiny) step and stop without another Jacobian.
            r_new, _, norm_new = _try(system, x + dx, jacobian=False)
            if np.isfinite(norm_new):
                x, norm = x + dx, norm_new
                iterations += 1
                history.append(norm)
                steps.append(1.0)
            if getattr(A, "inexact", False):
                # A tiny step from a linear solve that stopped short (GMRES at its cap) proves
                # nothing: the Krylov space may just have been too poor.  Only the residual counts.
                stopped_on = "inexact_direction"
            else:
                stalled_small, stopped_on = True, "small_step"
            break
        theta = 1.0
        merit_now = merit(r)
        while True:
            r_new, A_new, norm_new = _try(system, x + theta * dx, jacobian=True)
            if (np.isfinite(norm_new) and merit(r_new) < (1 - 1e-4 * theta) * merit_now) \
                    or (not line_search and np.isfinite(norm_new)):
                break
            if theta <= _MIN_STEP:  # stalled (round-off level, or a bad start): stop, report the state
                r_new = None
                break
            theta *= 0.5
        if r_new is None:
            stopped_on = "stalled"
            break
        x, r, A, norm = x + theta * dx, r_new, A_new, norm_new
        iterations += 1
        history.append(norm)
        steps.append(theta)
        log.log(logging.INFO if verbose else logging.DEBUG, "[%s] iteration %d: residual %.3e, step %.3g, %.2f s",
                label, iterations, norm, theta, time.perf_counter() - start)
        if report is not None:
            report(label, iterations, norm)
    if norm <= tol:
        stopped_on = "tol"
    elif norm <= tol_eff:
        stopped_on = "residual_floor"
    elif not stopped_on:
        stopped_on = "max_iterations"
    return NewtonResult(x, norm <= tol_eff or stalled_small, iterations, norm, history, steps, floor, stopped_on)
