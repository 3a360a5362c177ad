"""B7: separable crowd on ℝ^d, a nonlinear MFG without closed form that is checkable in any d ≥ 2.

With x = (x12, x3, …, xd), T = 1, ν = 0.1, H = ½|p|²:

    F(t, x, m) = A exp(−|x12|²/(2w²)) + κ ∫ exp(−|x12 − y12|²/(2ℓ²)) m(t, y) dy + Σ_{i≥3} (κ_i/2) x_i²
    G(x)       = ½|x12 − (x_T, 0)|² + Σ_{i≥3} (c_T/2) x_i²
    m0         = N((x_S, 0), s12 I_2) ⊗ Π_{i≥3} N(x̄0, s0)

The kernel sees only y12 and every other factor of m integrates to 1, so the system
separates exactly (shared BENCHMARKS.md, B7):

    u = u12(t, x12) + Σ_{i≥3} u_i(t, x_i),   m = m12(t, x12) Π_{i≥3} m_i(t, x_i),

(u12, m12) the 2D crowd MFG (`separable_crowd_2d`, solved by the grid solver on a box that
holds the mass) and (u_i, m_i) B2 in 1D with κ = κ_i, c_T, ρ = 0 (exact).  The reference of
`separable_crowd` is that product, a [`SeparableSolution`][mfgnet.benchmarks.separable_crowd.SeparableSolution].
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

from mfgnet.benchmarks.base import Benchmark
from mfgnet.benchmarks.lq_gaussian import lq_gaussian
from mfgnet.problems import Box, Euclidean, MFGProblem, NonlocalCoupling, ProblemError
from mfgnet.problems.couplings import Coupling, LocalCoupling
from mfgnet.problems.validation import finite_parameters
from mfgnet.solution import Diagnostics, Solution, time_column

PLANAR = 2  # the coordinates x12 that carry the nonlinear part


def gaussian_kernel(width: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """K(x, y) = exp(−|x12 − y12|²/(2 width²)) on the first two coordinates only, shape (n, k, 1).

    Acting on the (x1, x2)-marginal is what lets a solver that integrates over d-dimensional
    samples y of m (Monte Carlo) get the same ∫K m as the grid gets from m12.
    """

    def kernel(x, y):
        diff = x[:, None, :PLANAR] - y[None, :, :PLANAR]
        return torch.exp(-(diff * diff).sum(-1, keepdim=True) / (2 * width**2))

    return kernel


@finite_parameters
def separable_crowd_2d(obstacle: float = 2.0, obstacle_width: float = 0.3, congestion: float = 1.0,
                       congestion_width: float = 0.3, start: float = -1.0, target: float = 1.0,
                       start_var: float = 0.1, viscosity: float = 0.1, horizon: float = 1.0,
                       box_x: float = 3.0, box_y: float = 2.5) -> MFGProblem:
    """B7's planar part: a crowd crosses from (start, 0) to (target, 0) around an obstacle.

    Parameters
    ----------
    obstacle : float
        A >= 0, the height of the obstacle A exp(−|x|²/(2w²)) at the origin.
    obstacle_width : float
        w > 0.
    congestion : float
        κ >= 0, the weight of the congestion κ ∫ exp(−|x − y|²/(2ℓ²)) m(t, y) dy.
    congestion_width : float
        ℓ > 0.
    start : float
        x_S: m0 = N((x_S, 0), s12 I_2).
    target : float
        x_T: G = ½|x − (x_T, 0)|².
    start_var : float
        s12 > 0, the variance of m0 per coordinate.
    viscosity : float
        ν >= 0.
    horizon : float
        T > 0.
    box_x : float
        The truncation box of ℝ² is [−box_x, box_x] × [−box_y, box_y] (no-flux faces on a
        grid; the grid reports the mass near them as ``edge_mass``).
    box_y : float
        See ``box_x``.

    Returns
    -------
    MFGProblem
        The 2D problem on ℝ² (no closed form: `separable_crowd` solves it on the grid).
    """
    for name, value in (("obstacle_width", obstacle_width), ("congestion_width", congestion_width),
                        ("start_var", start_var), ("horizon", horizon), ("box_x", box_x), ("box_y", box_y)):
        if not value > 0:
            raise ProblemError(f"{name} must be > 0 for the separable crowd, got {value!r}")
    for name, value in (("obstacle", obstacle), ("congestion", congestion)):
        if not value >= 0:
            raise ProblemError(f"{name} must be >= 0 (a monotone, repulsive coupling), got {value!r}")
    kernel = gaussian_kernel(float(congestion_width))
    centre = torch.tensor([float(start), 0.0], dtype=torch.float64)
    goal = torch.tensor([float(target), 0.0], dtype=torch.float64)

    def coupling(t, x, m, conv):
        return obstacle * torch.exp(-(x * x).sum(-1) / (2 * obstacle_width**2)) + congestion * conv[:, 0]

    def terminal(x, m):
        return 0.5 * ((x - goal.to(x)) ** 2).sum(-1)

    def initial_density(x):
        z = ((x - centre.to(x)) ** 2).sum(-1) / start_var
        return torch.exp(-0.5 * z) / (2 * math.pi * start_var)

    def sampler(n, generator=None):
        return centre + math.sqrt(start_var) * torch.randn(n, PLANAR, generator=generator, dtype=torch.float64)

    box = Box([-float(box_x), -float(box_y)], [float(box_x), float(box_y)])
    return MFGProblem(Euclidean(PLANAR, box=box), horizon=float(horizon), viscosity=float(viscosity),
                      coupling=NonlocalCoupling(coupling, kernel), terminal_cost=terminal,
                      initial_density=initial_density, initial_sampler=sampler, name="separable_crowd_2d")


def lift_coupling(planar: Coupling, extra: Callable[[torch.Tensor], torch.Tensor]) -> Coupling:
    """The d-dimensional coupling ``planar(t, x12, m, conv) + extra(x3..d)``, kernel on (x12, y12).

    The planar coupling must depend on m only through ``conv`` (a local term in m12 would see
    the d-dimensional m instead, and the system would no longer separate).
    """
    if planar.is_local:
        return LocalCoupling(lambda t, x, m: planar(t, x[:, :PLANAR], m) + extra(x[:, PLANAR:]))
    base = planar.kernel
    return NonlocalCoupling(lambda t, x, m, conv: planar(t, x[:, :PLANAR], m, conv) + extra(x[:, PLANAR:]),
                            lambda x, y: base(x[:, :PLANAR], y[:, :PLANAR]))


def separable_problem(planar: MFGProblem, dim: int, confinement: float, terminal_weight: float,
                      mean0: float, var0: float, name: str) -> MFGProblem:
    """``planar`` (a 2D problem on ℝ²) extended to ℝ^d by d − 2 independent B2 coordinates (ρ = 0):
    F += Σ (κ_i/2) x_i², G += Σ (c_T/2) x_i², m0 *= Π N(x̄0, s0)."""
    std0, extra_dims = math.sqrt(var0), dim - PLANAR

    def running(xe):
        return 0.5 * confinement * (xe * xe).sum(-1)

    def final(xe):
        return 0.5 * terminal_weight * (xe * xe).sum(-1)

    def initial_density(x):
        z = ((x[:, PLANAR:] - mean0) ** 2).sum(-1) / var0
        factor = torch.exp(-0.5 * z) / (2 * math.pi * var0) ** (0.5 * extra_dims)
        return planar.initial_density(x[:, :PLANAR]) * factor

    def sampler(n, generator=None):
        extra = mean0 + std0 * torch.randn(n, extra_dims, generator=generator, dtype=torch.float64)
        return torch.cat([planar.sample_initial(n, generator), extra], -1)

    # The box: the planar one times m0's box per extra coordinate (as MFGProblem.bounding_box
    # derives it: 7 standard deviations, widened by 1 for the drift of the mean).
    lower, upper = planar.bounding_box().bounds()
    half = 7 * std0 + 1.0
    box = Box(lower.tolist() + [mean0 - half] * extra_dims, upper.tolist() + [mean0 + half] * extra_dims)
    return MFGProblem(Euclidean(dim, box=box), horizon=planar.horizon, viscosity=planar.viscosity,
                      hamiltonian=planar.hamiltonian, coupling=lift_coupling(planar.coupling, running),
                      terminal_cost=lift_coupling(planar.terminal_cost, final),
                      initial_density=initial_density, initial_sampler=sampler, name=name)


class SeparableSolution(Solution):
    """u = u12(t, x12) + u_rest(t, x3..d), m = m12(t, x12) · m_rest(t, x3..d).

    Parameters
    ----------
    problem : MFGProblem
        The d-dimensional problem.
    planar : Solution or callable
        The 2D solution, or a function of no argument that returns it (called on first use,
        so that building the benchmark does not pay for a grid solve).
    rest : Solution or None
        The solution in the d − 2 other coordinates (None for d = 2).
    coarse : Solution or callable or None
        The 2D factor on half the cells and time steps (or a function that returns it), from
        which :attr:`coarse_reference` estimates this reference's own error; None: no estimate.
    order : int
        The convergence order of the 2D factor's solver in h and Δt together (1: the first-order
        grid, 2: its Richardson extrapolation): the error estimate is the two levels' difference
        divided by 2^order − 1.
    """

    def __init__(self, problem: MFGProblem, planar: Solution | Callable[[], Solution],
                 rest: Solution | None, coarse: Solution | Callable[[], Solution] | None = None,
                 order: int = 1) -> None:
        self.problem = problem
        self._planar = planar
        self._coarse = coarse
        self.rest = rest
        self.reference_order = int(order)
        self.diagnostics = Diagnostics(converged=True, iterations=0, residual=0.0,
                                       extra={"kind": "planar x exact"})

    @property
    def planar(self) -> Solution:
        """The 2D factor (solved on first access when given as a function)."""
        if not isinstance(self._planar, Solution):
            self._planar = self._planar()
        return self._planar

    @property
    def coarse_reference(self) -> SeparableSolution | None:
        """This reference with its 2D factor solved on half the cells and time steps, or None.

        With a solver of order p in h and Δt together (:attr:`reference_order`) the difference
        between the two levels is about (2^p − 1) times the finer one's error;
        :func:`mfgnet.evaluation.compare` reports it so scaled as ``reference_error_u`` /
        ``reference_error_m``.  (First order, 64 cells: the planar crowd is 7 % off the 32-cell one
        in rel L2 m, 14 % between 16 and 32 cells.  The default, Richardson on 64 and 128 cells, is
        2.8 % off Richardson on 32 and 64 cells, so about 0.9 %.)"""
        if self._coarse is None:
            return None
        if not isinstance(self._coarse, Solution):
            self._coarse = self._coarse()
        return SeparableSolution(self.problem, self._coarse, self.rest, order=self.reference_order)

    def value(self, t, x):
        """u(t, x), x (n, d); shape (n,)."""
        tt = time_column(t, x)
        u = self.planar.value(tt, x[:, :PLANAR])
        return u if self.rest is None else u + self.rest.value(tt, x[:, PLANAR:])

    def density(self, t, x):
        """m(t, x), x (n, d); shape (n,)."""
        tt = time_column(t, x)
        m = self.planar.density(tt, x[:, :PLANAR])
        return m if self.rest is None else m * self.rest.density(tt, x[:, PLANAR:])

    @property
    def can_sample(self) -> bool:
        """True: the planar grid density and the exact LQ factor can both be sampled."""
        return True

    def sample(self, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One point from m(t_i) per time of ``t`` (n,): the planar factor from the grid
        density (cell by mass, uniform inside), the other coordinates from the exact Gaussian."""
        planar = self.planar.sample(t, generator)
        return planar if self.rest is None else torch.cat([planar, self.rest.sample(t, generator)], dim=-1)


@functools.cache
def planar_grid_solution(cells: int, time_steps: int | None, order: int = 1, **params) -> Solution:
    """The grid solution of ``separable_crowd_2d(**params)`` (order 2: Richardson on ``cells`` and
    twice as many), once per process and parameters (the expensive part of the benchmark)."""
    from mfgnet.grid import solve_grid  # the benchmarks sit below the solvers: import on use

    return solve_grid(separable_crowd_2d(**params), cells=cells, time_steps=time_steps, order=order,
                      progress=False)


@finite_parameters
def separable_crowd(dim: int = 2, obstacle: float = 2.0, obstacle_width: float = 0.3, congestion: float = 1.0,
                    congestion_width: float = 0.3, start: float = -1.0, target: float = 1.0,
                    start_var: float = 0.1, confinement: float = 1.0, terminal_weight: float = 0.5,
                    mean0: float = 0.5, var0: float = 0.1, viscosity: float = 0.1, horizon: float = 1.0,
                    box_x: float = 3.0, box_y: float = 2.5, cells: int = 64,
                    time_steps: int | None = None, order: int = 2) -> Benchmark:
    """B7: the separable crowd on ℝ^d, with its reference (2D grid) ⊗ (exact LQ per extra coordinate).

    Parameters
    ----------
    dim : int
        The dimension d >= 2.
    obstacle : float
        A >= 0, the obstacle A exp(−|x12|²/(2w²)).
    obstacle_width : float
        w > 0.
    congestion : float
        κ >= 0 in κ ∫ exp(−|x12 − y12|²/(2ℓ²)) m(t, y) dy.
    congestion_width : float
        ℓ > 0.
    start : float
        x_S: the planar part of m0 is N((x_S, 0), s12 I_2).
    target : float
        x_T: G contains ½|x12 − (x_T, 0)|².
    start_var : float
        s12 > 0.
    confinement : float
        κ_i > 0 in F's Σ (κ_i/2) x_i² over the coordinates i >= 3.
    terminal_weight : float
        c_T >= 0 in G's Σ (c_T/2) x_i².
    mean0 : float
        x̄0, the mean of m0 in each coordinate i >= 3.
    var0 : float
        s0 > 0, the variance of m0 in each coordinate i >= 3.
    viscosity : float
        ν >= 0, the same in every coordinate.
    horizon : float
        T > 0.
    box_x : float
        The planar truncation box is [−box_x, box_x] × [−box_y, box_y].
    box_y : float
        See ``box_x``.
    cells : int
        Cells per axis of the reference's grid solve (order 2: the coarser of its two).
    time_steps : int or None
        Time steps of the reference's grid solve (None: as many as ``cells``).  Why not the grid
        solver's own choice (Δt ≈ h, 13 steps at 64 cells on this box): the planar crowd's
        variance along x1 at T was 0.266 with 13 steps and 0.232 with 64 (the time error is
        first order too; 32 cells: 0.336 with 8 steps, 0.282 with 64, 0.278 with 128).
    order : int
        1: the first-order grid solve; 2 (default): Richardson extrapolation of the solves on
        ``cells`` and ``2 cells`` (and twice the steps).  Measured on the planar crowd (rel L2 m at
        4 times, 59 × 49 points): first order at 128 cells is 5.2 % off Richardson on 64 / 128,
        Richardson on 32 / 64 is 2.8 % off it; the default takes ~150 s on 2 busy cores (the
        kernel applied axis by axis, :class:`~mfgnet.grid.coupling.ProductKernel`; 64 cells
        first order alone took 148 s through the dense kernel).
    Returns
    -------
    Benchmark
        ``(problem, reference)``; the reference is a `SeparableSolution` whose planar factor
        is solved on the grid on first use (cached per process and parameters) and whose
        other factor is B2's exact solution in d − 2 dimensions; its ``coarse_reference`` (half
        the cells and steps) gives the estimate of its own error that ``compare`` reports.
    """
    if not (isinstance(dim, int) and dim >= PLANAR):
        raise ProblemError(f"dim must be an integer >= 2 for the separable crowd, got {dim!r}")
    if not confinement > 0:
        raise ProblemError(f"confinement must be > 0, got {confinement!r}")
    params = dict(obstacle=float(obstacle), obstacle_width=float(obstacle_width), congestion=float(congestion),
                  congestion_width=float(congestion_width), start=float(start), target=float(target),
                  start_var=float(start_var), viscosity=float(viscosity), horizon=float(horizon),
                  box_x=float(box_x), box_y=float(box_y))
    planar = separable_crowd_2d(**params)
    problem = separable_problem(planar, dim, float(confinement), float(terminal_weight), float(mean0), float(var0),
                                name=f"separable_crowd_{dim}d")
    rest = None
    if dim > PLANAR:
        rest = lq_gaussian(dim - PLANAR, horizon=float(horizon), kappa=float(confinement),
                           terminal_weight=float(terminal_weight), rho=0.0, viscosity=float(viscosity),
                           mean0=float(mean0), var0=float(var0)).exact
    steps = int(cells) if time_steps is None else int(time_steps)
    if order not in (1, 2):
        raise ProblemError(f"order must be 1 or 2 for the separable crowd's reference, got {order!r}")
    reference = SeparableSolution(problem, functools.partial(planar_grid_solution, int(cells), steps, order, **params),
                                  rest, coarse=functools.partial(planar_grid_solution, max(int(cells) // 2, 2),
                                                                 max(steps // 2, 2), order, **params), order=order)
    return Benchmark(problem, reference)
