"""The crowd a feedback produces: the Fokker–Planck equation under a given policy, on a grid.

    ∂t m − ν Δm + div(m α) = 0,   m(0) = m0,

for any feedback ``α(t, x)`` (a solution's ``policy``, a perturbed one, a learnt one), solved
by implicit Euler in time and Scharfetter–Gummel finite volumes in space on the problem's
bounding box (no-flux faces on a box and on R^d's box, periodic on a torus): mass is conserved
to round-off and m stays >= 0.  Independent of every solver's internals, so it serves as a
check of any solution (`crowd_gap`: is m the crowd that u's feedback produces?) and as the
crowd in the social cost (:mod:`mfgnet.evaluation.social`).  Time-dependent problems, d <= 2.

The scheme is first order, so on a wide box with a narrow, fast crowd its own error can exceed
any gap it is asked to detect (R^d's bounding boxes: on the zoo's lq_offset_1d the crowd of the
*exact* policy is 6 % off the exact m at 200 cells / 200 steps, 27 % in 2D at 64² / 80).
`estimated_crowd_gap` therefore solves on the grid and on half of it, compares m with the
Richardson extrapolation of the two and reports the scheme's own error beside the gap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from scipy.interpolate import RegularGridInterpolator

from mfgnet.grid.mesh import Grid
from mfgnet.problems import MFGProblem, ProblemError

Policy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Cells per axis and time steps when not given.  Measured on crowd_aversion (aversion 2 in 1D,
# 5 in 2D) for a fixed grid-solver feedback, social cost J: 1D 400 cells / 400 steps gives J
# within 1e-4 (relative) of 800 / 800; 2D 64² / 100 steps is 2.3 % below 32² / 50 and 96² / 150
# 0.45 % below 64² / 100 (about 0.5 s and 3.5 s).
DEFAULT_CELLS = {1: 400, 2: 96}
DEFAULT_STEPS = {1: 400, 2: 150}
_CHUNK = 1 << 18  # policy evaluations per call (bounds the memory of a network's autograd)


@dataclass
class Crowd:
    """The density a policy produces on the scheme's grid: ``times`` (Nt + 1,), ``axes`` (d
    arrays of cell centres), ``centres`` (n, d) float64 points, ``density`` (Nt + 1, n), the
    policy at the centres ``alpha`` (Nt + 1, n, d), ``cell_volume``."""

    times: np.ndarray
    axes: list[np.ndarray]
    centres: torch.Tensor
    density: np.ndarray
    alpha: np.ndarray
    cell_volume: float

    @property
    def mass_error(self) -> float:
        """max over levels of |∫m − 1| (round-off: the scheme conserves mass)."""
        return float(np.max(np.abs(self.density.sum(1) * self.cell_volume - 1.0)))


def check_crowd_problem(problem: MFGProblem) -> None:
    """Raise ProblemError unless `crowd_of_policy` can run on ``problem``."""
    if problem.is_ergodic:
        raise ProblemError("the problem is ergodic (horizon=None); the crowd of a policy is computed for "
                           "time-dependent problems")
    if problem.dim > 2:
        raise ProblemError(f"problem.dim = {problem.dim}; the crowd of a policy is computed on a grid, "
                           "for dimension 1 or 2")


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
        raise ProblemError("the policy has non-finite values on the crowd scheme's grid")
    return out


def crowd_of_policy(problem: MFGProblem, policy: Policy, cells: int | None = None,
                    time_steps: int | None = None) -> Crowd:
    """The crowd that ``policy(t, x) -> (n, d)`` produces from m0 on ``problem``: ``cells`` per
    axis (default 400 in 1D, 96 in 2D) and ``time_steps`` implicit Euler steps (400, 150);
    first order in h and Δt.  α(t_k) acts on [t_k, t_k+1)."""
    check_crowd_problem(problem)
    d = problem.dim
    cells = int(cells or DEFAULT_CELLS[d])
    time_steps = int(time_steps or DEFAULT_STEPS[d])
    if cells < 2 or time_steps < 1:
        raise ProblemError(f"cells must be >= 2 and time_steps >= 1, got {cells} and {time_steps}")
    lower, upper = (b.double().numpy() for b in problem.bounding_box().bounds())
    grid = Grid(lower, upper, (cells,) * d, bool(problem.domain.periodic))
    h, centres, volume = grid.h, grid.nodes, grid.cell_volume
    dt = problem.horizon / time_steps
    times = np.linspace(0.0, problem.horizon, time_steps + 1)
    # Per axis, the cells left and right of every face between two cells (the grid's neighbour
    # across a box face is the cell itself: no face there; on a torus the wrap-around face counts).
    index = np.arange(grid.n)
    faces = [(index[right != index], right[right != index]) for right in grid.plus]
    nu = problem.viscosity

    # Face velocities: α's component normal to each face, at the face's centre.
    face_points = [centres[left] + torch.from_numpy(np.eye(d)[axis] * h[axis] / 2)
                   for axis, (left, _) in enumerate(faces)]
    face_alpha = [_evaluate_policy(policy, times[:-1], pts)[..., axis] for axis, pts in enumerate(face_points)]
    centre_alpha = _evaluate_policy(policy, times, centres)

    with torch.no_grad():
        m0 = problem.initial_density(centres).double().numpy()
    if not m0.sum() > 0:
        raise ProblemError("m0 has no mass on the crowd scheme's grid")
    n = m0.size
    m = np.empty((time_steps + 1, n))
    m[0] = m0 / (m0.sum() * volume)
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
    return Crowd(times, list(grid.axes), centres, m, centre_alpha, volume)


def crowd_gap(solution, crowd: Crowd | None = None, levels: int = 11, cells: int | None = None,
              time_steps: int | None = None) -> float:
    """Relative L2 distance, over ``levels`` evenly spaced times, between a solution's own m and
    the crowd its feedback produces (`crowd_of_policy`, computed here unless given): small for
    a consistent (u, m) pair whatever the solver; large when m is not the crowd that u steers."""
    if crowd is None:
        crowd = crowd_of_policy(solution.problem, solution.policy, cells, time_steps)
    index = np.unique(np.linspace(0, len(crowd.times) - 1, levels).round().astype(int))
    return relative_distance(_density_at_levels(solution, crowd, index), crowd.density[index])


def _density_at_levels(solution, crowd: Crowd, index: np.ndarray) -> np.ndarray:
    """The solution's own m at the crowd's centres and the time levels ``index``: (len(index), n)."""
    with torch.no_grad():
        return np.stack([solution.density(float(crowd.times[i]), crowd.centres).double().cpu().numpy()
                         for i in index])


def relative_distance(a: np.ndarray, reference: np.ndarray, weight: np.ndarray | None = None) -> float:
    """‖a − reference‖ / ‖reference‖ (Frobenius, weighted by ``weight`` where given; guarded against a
    zero reference)."""
    if weight is None:
        return float(np.linalg.norm(a - reference) / max(np.linalg.norm(reference), 1e-300))
    return float(np.sqrt((weight * (a - reference) ** 2).sum() / max((weight * reference ** 2).sum(), 1e-300)))


@dataclass
class GapEstimate:
    """A grid check's answer (`estimated_crowd_gap`, `mfgnet.grid.best_response.estimated_value_gap`):
    ``gap`` (relative L2 of the solution's own field against the extrapolated grid answer),
    ``scheme_error`` (the estimated relative L2 error of the grid answer on the finer grid, before the
    extrapolation: a bound on what the gap can resolve), ``cells`` and ``time_steps`` (finer grid), and
    ``field``, the grid answer itself on the finer grid ((Nt + 1, n); None where not kept)."""

    gap: float
    scheme_error: float
    cells: int
    time_steps: int
    field: np.ndarray | None = field(default=None, repr=False, compare=False)


def on_points(axes: list, values: np.ndarray, points: np.ndarray, periodic: bool) -> np.ndarray:
    """Cell-centre ``values`` (n,) on the grid of ``axes``, linearly interpolated to ``points`` (n', d)
    (a box: linear extrapolation within the half cell beyond the outer centres; a torus: wrapped)."""
    axes = [np.asarray(a, dtype=np.float64) for a in axes]
    values = np.asarray(values).reshape([len(a) for a in axes])
    if periodic:  # one wrapped layer on each side, so points between the last centre and the first interpolate
        values = np.pad(values, 1, mode="wrap")
        axes = [np.concatenate([[2 * a[0] - a[1]], a, [2 * a[-1] - a[-2]]]) for a in axes]
    return RegularGridInterpolator(axes, values, bounds_error=False, fill_value=None)(points)


def richardson(fine: np.ndarray, coarse: np.ndarray, coarse_axes: list, points: np.ndarray, periodic: bool,
               time_steps: int, levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A grid answer ``fine`` ((``time_steps`` + 1, n) at ``points``) and the same on the half grid
    (``coarse`` on ``coarse_axes``, half the levels), at ``levels`` evenly spaced times both grids share:
    (those fine levels, c_h there, c_2h interpolated onto the fine nodes, 2 c_h − c_2h)."""
    index = np.unique(np.linspace(0, time_steps // 2, levels).round().astype(int)) * 2  # levels on both grids
    coarse_on_fine = np.stack([on_points(coarse_axes, coarse[k // 2], points, periodic) for k in index])
    scheme = fine[index]
    return index, scheme, coarse_on_fine, 2.0 * scheme - coarse_on_fine


def estimated_crowd_gap(solution, cells: int, time_steps: int, levels: int = 11) -> GapEstimate:
    """`crowd_gap` with the scheme's own error removed and estimated.

    The crowd is solved on (``cells``, ``time_steps``) and on (``cells`` / 2, ``time_steps`` / 2);
    the scheme's error being first order in h and Δt together, c_h − c_2h estimates the error of c_h
    and 2 c_h − c_2h cancels it to leading order.  ``gap`` = ‖m − (2 c_h − c_2h)‖ / ‖2 c_h − c_2h‖
    over ``levels`` evenly spaced times shared by both grids; ``scheme_error`` = ‖c_h − c_2h‖ / ‖c_h‖.
    Measured with the exact policy against the exact m (zoo's lq_offset_1d, 200 cells / 200 steps):
    c_h 6.0 % off, 2 c_h − c_2h 1.8 %, the estimate 7.1 %; 400 / 400: 2.8 %, 0.58 %, 3.3 %.  Out of
    the asymptotic range the extrapolation gains less (lq_offset_2d, 64² / 80: 27 %, 17 %, 24 %), which
    the large ``scheme_error`` then says.
    """
    if cells < 4 or cells % 2 or time_steps < 2 or time_steps % 2:
        raise ProblemError(f"estimated_crowd_gap halves the grid: cells and time_steps must be even, cells >= 4 "
                           f"and time_steps >= 2, got {cells} and {time_steps}")
    problem = solution.problem
    fine = crowd_of_policy(problem, solution.policy, cells, time_steps)
    coarse = crowd_of_policy(problem, solution.policy, cells // 2, time_steps // 2)
    index, scheme, coarse_on_fine, extrapolated = richardson(
        fine.density, coarse.density, coarse.axes, fine.centres.double().numpy(), bool(problem.domain.periodic),
        time_steps, levels)
    return GapEstimate(gap=relative_distance(_density_at_levels(solution, fine, index), extrapolated),
                       scheme_error=relative_distance(coarse_on_fine, scheme), cells=cells, time_steps=time_steps,
                       field=fine.density)
