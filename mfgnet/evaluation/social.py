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
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from mfgnet.problems import MFGProblem, ProblemError, Torus, cell_centre_points, cell_centres
from mfgnet.problems.domains import Euclidean
from mfgnet.problems.social import social_optimum
from mfgnet.solution import Solution

Policy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Cells per axis and time steps when not given.  Measured on crowd_aversion (aversion 2 in 1D,
# 5 in 2D) for a fixed grid-solver feedback: 1D 400 cells / 400 steps gives J within 1e-4
# (relative) of 800 / 800; 2D 64² / 100 steps is 2.3 % below 32² / 50 and 96² / 150 0.45 % below
# 64² / 100 (about 0.5 s and 3.5 s).
_DEFAULT_CELLS = {1: 400, 2: 96}
_DEFAULT_STEPS = {1: 400, 2: 150}
_CHUNK = 1 << 18  # policy evaluations per call (bounds the memory of a network's autograd)


@dataclass
class SocialCost:
    """The social cost of one feedback and the crowd it produces.

    ``total`` = ``running`` (∫∫ m L) + ``crowd`` (∫∫ m F) + ``terminal`` (∫ m(T) G);
    ``times`` (Nt + 1,), ``axes`` (d arrays of cell centres) and ``density`` (Nt + 1, *cells)
    are the crowd on the scheme's grid; ``mass_error`` is max_t |∫m − 1|."""

    total: float
    running: float
    crowd: float
    terminal: float
    times: np.ndarray
    axes: list[np.ndarray]
    density: np.ndarray
    mass_error: float
    wall_time_s: float

    def as_metrics(self, prefix: str = "") -> dict:
        keys = ("total", "running", "crowd", "terminal", "mass_error")
        names = {"total": "social_cost", "running": "control_cost", "crowd": "crowd_cost",
                 "terminal": "terminal_cost", "mass_error": "social_cost_mass_error"}
        return {prefix + names[k]: float(getattr(self, k)) for k in keys}


def check_social_cost(problem: MFGProblem) -> None:
    """Raise ProblemError, naming what is missing, when `social_cost` cannot score ``problem``
    (called before any solve, so that a run fails in seconds, not after it)."""
    if problem.is_ergodic:
        raise ProblemError("social_cost: the problem is ergodic (horizon=None); it needs a time-dependent problem")
    if problem.dim > 2:
        raise ProblemError(f"social_cost: problem.dim = {problem.dim}; its Fokker-Planck scheme is a grid, "
                           "for dimension 1 or 2")
    if problem.coupling_needs_density_integral():
        raise ProblemError("social_cost: the coupling or terminal cost is nonlocal; only local ones are supported")
    problem.hamiltonian.lagrangian(*(torch.zeros(1, problem.dim, dtype=torch.float64),) * 2)


def _faces(shape: tuple[int, ...], periodic: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each axis, the flat indices of the cells left and right of every face between two
    cells (on a torus also the face that wraps around)."""
    index = np.arange(math.prod(shape)).reshape(shape)
    out = []
    for axis in range(len(shape)):
        right = np.roll(index, -1, axis=axis)
        left = index
        if not periodic:
            keep = [slice(None)] * len(shape)
            keep[axis] = slice(0, shape[axis] - 1)
            left, right = left[tuple(keep)], right[tuple(keep)]
        out.append((left.ravel(), right.ravel()))
    return out


def _flux_coefficients(velocity: np.ndarray, nu: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Scharfetter–Gummel fluxes of drift + diffusion through a face: J = a_l m_l − a_r m_r with
    a_l = (ν/h) B(−P), a_r = (ν/h) B(P), P = v h / ν and B(z) = z / (eᶻ − 1).  Exact for a steady
    1D flux at constant v, upwind where P is large (so m stays >= 0 and mass is conserved
    exactly): first-order upwind adds a numerical diffusion |v| h / 2, which at ν = 0.05 and
    64 cells per axis is 16 % of ν."""
    if nu == 0.0:
        return np.maximum(velocity, 0.0), -np.minimum(velocity, 0.0)
    peclet = velocity * h / nu

    def bernoulli(z):
        with np.errstate(over="ignore"):
            small = np.abs(z) < 1e-6
            return np.where(small, 1.0 - 0.5 * z, z / np.where(small, 1.0, np.expm1(z)))

    return nu / h * bernoulli(-peclet), nu / h * bernoulli(peclet)


def _evaluate_policy(policy: Policy, times: np.ndarray, points: torch.Tensor) -> np.ndarray:
    """α at every (time, point) pair: (len(times), n, d), in chunks of points × times."""
    n, d = points.shape
    per_chunk = max(1, _CHUNK // max(n, 1))
    out = np.empty((len(times), n, d))
    for start in range(0, len(times), per_chunk):  # chunks of time levels, each one batched call
        block = times[start:start + per_chunk]
        t = torch.from_numpy(np.repeat(block, n)[:, None])
        x = points.repeat(len(block), 1)
        alpha = policy(t, x)
        if alpha.shape != (len(block) * n, d):
            raise ProblemError(f"policy(t, x) returned shape {tuple(alpha.shape)}; expected ({len(block) * n}, {d})")
        out[start:start + len(block)] = alpha.detach().double().cpu().numpy().reshape(len(block), n, d)
    if not np.all(np.isfinite(out)):
        raise ProblemError("the policy has non-finite values on the social cost's grid")
    return out


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
    d = problem.dim
    cells = int(cells or _DEFAULT_CELLS[d])
    time_steps = int(time_steps or _DEFAULT_STEPS[d])
    if cells < 2 or time_steps < 1:
        raise ProblemError(f"social_cost: cells must be >= 2 and time_steps >= 1, got {cells} and {time_steps}")
    lower, upper = (b.double() for b in problem.bounding_box().bounds())
    h = ((upper - lower) / cells).numpy()
    shape = (cells,) * d
    centres = cell_centre_points(lower, upper, cells)
    volume = float(np.prod(h))
    dt = problem.horizon / time_steps
    times = np.linspace(0.0, problem.horizon, time_steps + 1)
    periodic = isinstance(problem.domain, Torus)
    faces = _faces(shape, periodic)
    nu = problem.viscosity

    # Face velocities: α's component normal to each face, at the face's centre.
    face_points = [centres[left] + torch.from_numpy(np.eye(d)[axis] * h[axis] / 2)
                   for axis, (left, _) in enumerate(faces)]
    face_alpha = [_evaluate_policy(policy, times[:-1], pts)[..., axis] for axis, pts in enumerate(face_points)]
    centre_alpha = _evaluate_policy(policy, times, centres)

    with torch.no_grad():
        m0 = problem.initial_density(centres).double().numpy()
    if not m0.sum() > 0:
        raise ProblemError("social_cost: m0 has no mass on the scheme's grid")
    m = np.empty((time_steps + 1, m0.size))
    m[0] = m0 / (m0.sum() * volume)

    n = m0.size
    identity = sp.identity(n, format="csr") / dt
    for k in range(time_steps):  # time levels are sequential; each level is one sparse solve
        rows, cols, vals = [], [], []
        for axis, (left, right) in enumerate(faces):
            # flux left -> right per unit area: J = a_left m_left - a_right m_right
            a_left, a_right = _flux_coefficients(face_alpha[axis][k], nu, h[axis])
            rows += [left, left, right, right]
            cols += [left, right, left, right]
            vals += [a_left / h[axis], -a_right / h[axis], -a_left / h[axis], a_right / h[axis]]
        operator = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                 shape=(n, n)).tocsc()
        m[k + 1] = spla.spsolve(identity + operator, m[k] / dt)

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
    mass_error = float(np.max(np.abs(m.sum(1) * volume - 1.0)))
    return SocialCost(total, running, crowd_cost, terminal_cost, times,
                      [a.numpy() for a in cell_centres(lower, upper, cells)],
                      m.reshape(time_steps + 1, *shape), mass_error, time.perf_counter() - started)


def density_gap(solution: Solution, cost: SocialCost, levels: int = 11) -> float:
    """Relative L2 distance between the solution's own m and the crowd its feedback produces in
    `social_cost`'s scheme, over ``levels`` evenly spaced times (a self-consistency check)."""
    index = np.unique(np.linspace(0, len(cost.times) - 1, levels).round().astype(int))
    points = torch.stack(torch.meshgrid(*[torch.from_numpy(a) for a in cost.axes], indexing="ij"), -1)
    points = points.reshape(-1, len(cost.axes))
    with torch.no_grad():
        own = np.stack([solution.density(float(cost.times[i]), points.to(torch.float64)).double().numpy()
                        for i in index])
    scheme = cost.density.reshape(len(cost.times), -1)[index]
    return float(np.linalg.norm(own - scheme) / max(np.linalg.norm(scheme), 1e-300))


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
            reasons.append(f"the {label} solve did not converge (residual {sol.diagnostics.residual:.2e})")
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
