"""The social cost of a feedback control, and the price of anarchy.

`social_cost` takes a feedback α(t, x) (any callable: a solution's ``policy``, or a perturbed
one) and nothing of the solver that produced it: it computes the crowd that α produces with
its own Fokker–Planck scheme (implicit Euler in time, Scharfetter–Gummel finite volumes in space:
mass is conserved to round-off and m stays >= 0) and integrates the cost the crowd pays,

    J(α) = ∫₀ᵀ∫ m (L(x, α) + F(t, x, m)) dx dt + ∫ m(T) G(x, m(T)) dx,

L the Hamiltonian's Legendre dual.  Both the equilibrium's and the optimum's feedbacks are
scored by this one function, so the price of anarchy J(α_Nash) / J(α_opt) compares like
with like; the gap between a solver's own m and the crowd its feedback produces here is
reported as ``density_gap`` (a check of the solution itself).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from mfgnet.grid.crowd import Crowd, Policy, check_crowd_problem, crowd_gap, crowd_of_policy
from mfgnet.problems import MFGProblem, ProblemError
from mfgnet.problems.domains import Euclidean
from mfgnet.problems.social import social_optimum
from mfgnet.solution import Solution


@dataclass
class SocialCost:
    """The social cost of one feedback and the crowd it produces.

    ``total`` = ``running`` (∫∫ m L) + ``crowd`` (∫∫ m F) + ``terminal`` (∫ m(T) G);
    ``times`` (Nt + 1,), ``axes`` (d arrays of cell centres) and ``density`` (Nt + 1, *cells)
    are the crowd on the scheme's grid (``scheme`` the full `Crowd`); ``mass_error`` is max_t |∫m − 1|."""

    total: float
    running: float
    crowd: float
    terminal: float
    times: np.ndarray
    axes: list[np.ndarray]
    density: np.ndarray
    mass_error: float
    wall_time_s: float
    scheme: Crowd | None = None

    def as_metrics(self, prefix: str = "") -> dict:
        keys = ("total", "running", "crowd", "terminal", "mass_error")
        names = {"total": "social_cost", "running": "control_cost", "crowd": "crowd_cost",
                 "terminal": "terminal_cost", "mass_error": "social_cost_mass_error"}
        return {prefix + names[k]: float(getattr(self, k)) for k in keys}


def check_social_cost(problem: MFGProblem) -> None:
    """Raise ProblemError, naming what is missing, when `social_cost` cannot score ``problem``
    (called before any solve, so that a run fails in seconds, not after it)."""
    try:
        check_crowd_problem(problem)
    except ProblemError as exc:
        raise ProblemError(f"social_cost: {exc}") from exc
    if problem.coupling_needs_density_integral():
        raise ProblemError("social_cost: the coupling or terminal cost is nonlocal; only local ones are supported")
    if problem.has_mean_control:
        raise ProblemError("social_cost: the problem is an MFG of controls (mean_control_cost); its social cost "
                           "and optimum are not implemented")
    problem.hamiltonian.lagrangian(*(torch.zeros(1, problem.dim, dtype=torch.float64),) * 2)


def social_cost(problem: MFGProblem, policy: Policy, cells: int | None = None,
                time_steps: int | None = None) -> SocialCost:
    """The social cost J(α) of the feedback ``policy(t, x) -> (n, d)`` on ``problem``.

    The crowd is computed here from m0 and α alone (implicit Euler, Scharfetter–Gummel finite volumes on
    ``cells`` per axis of the problem's bounding box, no-flux faces on a box or on R^d's box,
    periodic on a torus); F and G are the problem's, L its Hamiltonian's Lagrangian.  First
    order in h and Δt; defaults 400 cells and 400 steps in 1D, 96² and 150 in 2D.

    Raises ProblemError for an ergodic problem, d > 2, a nonlocal coupling, or a Hamiltonian
    without a closed-form Lagrangian."""
    check_social_cost(problem)
    started = time.perf_counter()
    scheme = crowd_of_policy(problem, policy, cells, time_steps)
    m, centres, times, volume = scheme.density, scheme.centres, scheme.times, scheme.cell_volume
    n, d, time_steps = m.shape[1], problem.dim, len(times) - 1
    dt = problem.horizon / time_steps
    centre_alpha = scheme.alpha

    x_all = centres.repeat(time_steps + 1, 1)
    t_all = torch.from_numpy(np.repeat(times, n)[:, None])
    m_all = torch.from_numpy(m.ravel())
    with torch.no_grad():
        lagrangian = problem.hamiltonian.lagrangian(x_all, torch.from_numpy(centre_alpha.reshape(-1, d)))
        crowd = problem.coupling(t_all, x_all, m_all)
        terminal = problem.terminal_cost(t_all[-n:], centres, m_all[-n:])
    lagrangian = lagrangian.numpy().reshape(time_steps + 1, n)
    crowd = crowd.numpy().reshape(time_steps + 1, n)
    # Left rectangles in time (the scheme's α(t_k) acts on [t_k, t_k+1)).
    running = float(dt * volume * np.sum(m[:-1] * lagrangian[:-1]))
    crowd_cost = float(dt * volume * np.sum(m[:-1] * crowd[:-1]))
    terminal_cost = float(volume * np.sum(m[-1] * terminal.numpy()))
    total = running + crowd_cost + terminal_cost
    if not math.isfinite(total):
        raise ProblemError("social_cost: the cost is not finite (does the policy or F blow up?)")
    return SocialCost(total, running, crowd_cost, terminal_cost, times, scheme.axes,
                      m.reshape(time_steps + 1, *(len(a) for a in scheme.axes)), scheme.mass_error,
                      time.perf_counter() - started, scheme)


def density_gap(solution: Solution, cost: SocialCost, levels: int = 11) -> float:
    """[`crowd_gap`][mfgnet.grid.crowd.crowd_gap] on the crowd that `social_cost` computed."""
    return crowd_gap(solution, cost.scheme, levels)


@dataclass
class PriceOfAnarchy:
    """The equilibrium and the social optimum of one problem, each scored by `social_cost`.

    ``ratio`` = J(α_Nash) / J(α_opt) (>= 1 up to discretisation error when both solves
    converged); ``nash`` and ``optimum`` are the solutions, ``nash_cost`` and
    ``optimum_cost`` their [`SocialCost`][mfgnet.evaluation.social.SocialCost]s."""

    nash: Solution
    optimum: Solution
    nash_cost: SocialCost
    optimum_cost: SocialCost
    ratio: float
    metrics: dict = field(default_factory=dict)


def price_of_anarchy(problem: MFGProblem, solver: str = "grid", cost_cells: int | None = None,
                     cost_time_steps: int | None = None, **settings) -> PriceOfAnarchy:
    """Solve ``problem`` (the Nash equilibrium) and its
    [`social_optimum`][mfgnet.problems.social.social_optimum] with the same solver and
    ``settings`` (e.g. ``cells=256`` for the grid), score both feedbacks with
    [`social_cost`][mfgnet.evaluation.social.social_cost] (its ``cells`` and ``time_steps`` are
    ``cost_cells`` and ``cost_time_steps``) and return their ratio with both solutions.

    ``metrics`` holds ``price_of_anarchy``, the two social costs and their parts, each solve's
    ``converged`` / ``residual`` and the ``density_gap`` of each solution; ``trusted`` is
    False (with ``untrusted_because``) when a solve did not converge, a gap exceeds 5e-2
    or the optimum costs more than the equilibrium by more than 1e-3 relative.

    Examples
    --------
    >>> from mfgnet.problems.examples import crowd_aversion
    >>> result = price_of_anarchy(crowd_aversion(aversion=2.0), "grid", cells=128, progress=False)
    >>> bool(result.ratio > 1 and result.metrics["trusted"])
    True
    """
    from mfgnet.solvers import solve

    return compare_equilibrium_and_optimum(problem, lambda p: solve(p, solver, **settings), cost_cells,
                                           cost_time_steps)


def compare_equilibrium_and_optimum(problem: MFGProblem, solve_one: Callable[[MFGProblem], Solution],
                                    cells: int | None = None, time_steps: int | None = None) -> PriceOfAnarchy:
    """[`price_of_anarchy`][mfgnet.evaluation.social.price_of_anarchy] with any solve function
    ``solve_one(problem) -> Solution`` (the runner passes its configured solver)."""
    check_social_cost(problem)
    optimum_problem = social_optimum(problem)
    nash = solve_one(problem)
    optimum = solve_one(optimum_problem)
    nash_cost = social_cost(problem, nash.policy, cells, time_steps)
    optimum_cost = social_cost(problem, optimum.policy, cells, time_steps)
    ratio = nash_cost.total / optimum_cost.total if optimum_cost.total != 0 else float("nan")
    metrics = {"price_of_anarchy": ratio, **nash_cost.as_metrics("nash_"), **optimum_cost.as_metrics("optimum_")}
    reasons = []
    for label, sol, cost in (("nash", nash, nash_cost), ("optimum", optimum, optimum_cost)):
        metrics[f"{label}_converged"] = bool(sol.diagnostics.converged)
        metrics[f"{label}_residual"] = float(sol.diagnostics.residual)
        gap = density_gap(sol, cost)
        metrics[f"{label}_density_gap"] = gap
        if not sol.diagnostics.converged:
            why = sol.diagnostics.extra.get("diagnosis", {})
            why = (why.get("summary", "") if isinstance(why, dict) else str(why)).split("; try:")[0]
            reasons.append(f"the {label} solve did not converge ({why or f'residual {sol.diagnostics.residual:.2e}'})")
        if gap > 5e-2:
            reasons.append(f"the {label} solution's m is {gap:.1%} off the crowd its own feedback produces")
    if optimum_cost.total > nash_cost.total * (1 + 1e-3) + 1e-12:
        reasons.append("the optimum's social cost exceeds the equilibrium's")
    if isinstance(problem.domain, Euclidean):
        metrics["social_cost_note"] = "on R^d the crowd is computed on the problem's bounding box with no-flux faces"
    metrics["trusted"] = not reasons
    if reasons:
        metrics["untrusted_because"] = "; ".join(reasons)
    return PriceOfAnarchy(nash, optimum, nash_cost, optimum_cost, ratio, metrics)
