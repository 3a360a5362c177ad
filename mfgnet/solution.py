"""The one interface every solver returns, so that any two solutions can be compared.

``value(t, x)`` and ``density(t, x)`` take x of shape (n, d) and t as a float, or a tensor
of shape (n,) or (n, 1); for ergodic problems t is ignored (pass ``None``).  Both return
tensors of shape (n,) in x's dtype and device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class Diagnostics:
    """What a solver reports about its own run.

    Attributes
    ----------
    converged : bool
        Whether the solver met its tolerance.
    iterations : int
        Outer iterations (grid: Picard + Newton) or training steps (neural).
    residual : float
        The solver's own measure of how far its output is from solving the discrete (or
        sampled) equations.
    residual_history : list of float
        The residual after each iteration.
    wall_time_s : float
        Seconds spent in the solver.
    extra : dict
        Solver-specific numbers (e.g. the grid's ``newton_iterations``, the neural
        solver's loss terms); the runner copies the scalar ones into ``metrics.json``.
    """

    converged: bool
    iterations: int
    residual: float
    residual_history: list[float] = field(default_factory=list)
    wall_time_s: float = 0.0
    extra: dict = field(default_factory=dict)


def time_column(t, x: torch.Tensor) -> torch.Tensor:
    """Broadcast t (None, float, (n,) or (n, 1)) to a column of shape (n, 1) like x."""
    n = x.shape[0]
    if t is None:
        return torch.zeros(n, 1, dtype=x.dtype, device=x.device)
    if not isinstance(t, torch.Tensor):
        return torch.full((n, 1), float(t), dtype=x.dtype, device=x.device)
    t = t.to(dtype=x.dtype, device=x.device)
    if t.dim() == 0:
        return t.expand(n).reshape(n, 1)
    return t.reshape(n, 1)


class Solution:
    """Base class: a (u, m[, λ]) pair with diagnostics; what every solver returns.

    Attributes
    ----------
    problem : MFGProblem
        The problem that was solved.
    diagnostics : Diagnostics
        What the solver reports about its run.
    ergodic_constant : float or None
        λ for an ergodic problem, else None.
    """

    problem = None
    diagnostics: Diagnostics | None = None
    ergodic_constant: float | None = None

    def value(self, t, x: torch.Tensor) -> torch.Tensor:
        """The value function u(t, x).

        Parameters
        ----------
        t : float or torch.Tensor or None
            A time, or times of shape (n,) or (n, 1); ignored (pass None) for an ergodic
            problem.
        x : torch.Tensor
            Points, shape (n, d).

        Returns
        -------
        torch.Tensor
            u at the points, shape (n,), in x's dtype and device.
        """
        raise NotImplementedError

    def density(self, t, x: torch.Tensor) -> torch.Tensor:
        """The density m(t, x); arguments and shapes as in `value`."""
        raise NotImplementedError

    def policy(self, t, x: torch.Tensor) -> torch.Tensor:
        """Optimal feedback α(t, x) = -∂pH(x, ∇u(t, x)), shape (n, d) (∇u by autograd)."""
        with torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            (grad_u,) = torch.autograd.grad(self.value(t, xg).sum(), xg)
        return -self.problem.hamiltonian.grad_p(x, grad_u).detach()


    def mean_control(self, t) -> torch.Tensor:
        """The crowd's mean control ᾱ(t) = ∫ α(t, x) m(t, x) dx at times ``t`` (n,), shape (n, d), by
        midpoint quadrature on the problem's box (d <= 3; 1024, 128², 32³ cells).  Meaningful for
        any time-dependent solution; it is the coupling variable of an MFG of controls."""
        from mfgnet.problems import cell_centre_points

        problem = self.problem
        cells = {1: 1024, 2: 128, 3: 32}.get(problem.dim)
        if cells is None:
            raise ValueError(f"mean_control: quadrature is implemented for d <= 3, the problem has d = {problem.dim}")
        lower, upper = problem.bounding_box().bounds()
        x = cell_centre_points(lower, upper, cells)
        volume = float(torch.prod(upper - lower)) / x.shape[0]
        times = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
        n = x.shape[0]
        tt, xx = times.repeat_interleave(n), x.repeat(times.numel(), 1)  # every (t, x) pair at once
        alpha = self.policy(tt, xx).reshape(times.numel(), n, -1)
        with torch.no_grad():
            m = self.density(tt, xx).double().reshape(times.numel(), n)
        return torch.einsum("tnd,tn->td", alpha.double(), m) * volume


class ExactSolution(Solution):
    """A solution given by closed-form torch functions ``value_fn(t, x)``, ``density_fn(t, x)``
    with t of shape (n, 1) (zeros for ergodic problems)."""

    def __init__(self, problem, value_fn: Callable, density_fn: Callable,
                 ergodic_constant: float | None = None, sampler_fn: Callable | None = None) -> None:
        self.problem = problem
        self._value = value_fn
        self._density = density_fn
        # sampler_fn(t (n,), generator) -> (n, d): one point drawn from m(t_i) per time t_i;
        # lets evaluations on R^d measure errors where the exact m has its mass.
        self._sampler = sampler_fn
        self.ergodic_constant = ergodic_constant
        self.diagnostics = Diagnostics(converged=True, iterations=0, residual=0.0,
                                       extra={"kind": "exact"})

    def value(self, t, x):
        """u(t, x) from ``value_fn``, shape (n,)."""
        return self._value(time_column(t, x), x)

    def density(self, t, x):
        """m(t, x) from ``density_fn``, shape (n,)."""
        return self._density(time_column(t, x), x)

    @property
    def can_sample(self) -> bool:
        """Whether :meth:`sample` is available (the benchmark gave a sampler of m(t))."""
        return self._sampler is not None

    def sample(self, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One point from m(t_i, ·) for each time of ``t`` (n,) (zeros for ergodic): (n, d)."""
        if self._sampler is None:
            raise ValueError(f"the exact solution of {self.problem.name!r} has no sampler of m")
        return self._sampler(torch.as_tensor(t, dtype=torch.float64).reshape(-1), generator)
