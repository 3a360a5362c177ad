"""Hamiltonians H(x, p) and their p-gradients.

Convention (cost minimisation): the optimal feedback is ``alpha* = -grad_p H(x, grad u)``
and the Fokker-Planck drift term is ``div(m grad_p H(x, grad u))``.

The grid solver needs a monotone numerical Hamiltonian; it builds one for every
[`RadialHamiltonian`][mfgnet.problems.hamiltonians.RadialHamiltonian], i.e.
``H(x, p) = K(x, |p|^2)`` with K nondecreasing in its second argument (quadratic,
congestion and power Hamiltonians are of this form).  Any other Hamiltonian (a
[`CallableHamiltonian`][mfgnet.problems.hamiltonians.CallableHamiltonian]) serves the
neural solver.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mfgnet.problems.validation import ProblemError, argument_count


class Hamiltonian:
    """Base class: ``H(x, p)`` with x, p of shape (n, d); returns (n,)."""

    def __call__(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def grad_p(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """``grad_p H(x, p)``, shape (n, d).  Default: autograd on ``__call__``."""
        with torch.enable_grad():
            p_ = p if p.requires_grad else p.detach().requires_grad_(True)
            value = self(x, p_).sum()
            (grad,) = torch.autograd.grad(value, p_, create_graph=torch.is_grad_enabled() and p.requires_grad)
        return grad

    def lagrangian(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The running cost L(x, a) of the control a (shape (n, d)), the Legendre dual
        ``L(x, a) = sup_p (−a·p − H(x, p))``; returns (n,).  Known in closed form for the
        built-in Hamiltonians; a user's Hamiltonian raises ProblemError (social costs need it)."""
        raise ProblemError(f"{self!r} has no closed-form Lagrangian L(x, a); the social cost and the price of "
                           "anarchy need one (use a QuadraticHamiltonian, CongestionHamiltonian or PowerHamiltonian)")


class RadialHamiltonian(Hamiltonian):
    """``H(x, p) = K(x, s)`` with ``s = |p|^2`` and ``dK/ds >= 0``.

    Subclasses give ``radial(x, s)`` and ``radial_ds(x, s)`` (x: (n, d), s: (n,)).
    """

    def radial(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """K(x, s) for x (n, d) and s = |p|² (n,); returns (n,)."""
        raise NotImplementedError

    def radial_ds(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """∂K/∂s (x, s) >= 0, shape (n,); grad_p H = 2 ∂K/∂s p."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return self.radial(x, (p * p).sum(dim=-1))

    def grad_p(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return 2.0 * self.radial_ds(x, (p * p).sum(dim=-1)).unsqueeze(-1) * p


class QuadraticHamiltonian(RadialHamiltonian):
    """``H = (scale/2) |p|^2``: running cost ``|alpha|^2 / (2 scale)``."""

    def __init__(self, scale: float = 1.0) -> None:
        if not float(scale) > 0:
            raise ProblemError(f"QuadraticHamiltonian.scale must be > 0, got {scale!r}")
        self.scale = float(scale)

    def radial(self, x, s):
        return 0.5 * self.scale * s

    def radial_ds(self, x, s):
        return torch.full_like(s, 0.5 * self.scale)

    def lagrangian(self, x, a):
        return (a * a).sum(-1) / (2.0 * self.scale)

    def __repr__(self) -> str:
        return f"QuadraticHamiltonian(scale={self.scale})"


class CongestionHamiltonian(RadialHamiltonian):
    """``H = (c(x)/2) |p|^2``: agents move at a position-dependent speed factor c(x) > 0.

    ``speed`` maps x (n, d) to c(x) (n,).
    """

    def __init__(self, speed: Callable[[torch.Tensor], torch.Tensor]) -> None:
        if not callable(speed):
            raise ProblemError("CongestionHamiltonian.speed must be a callable x -> c(x)")
        self.speed = speed

    def radial(self, x, s):
        return 0.5 * self.speed(x) * s

    def radial_ds(self, x, s):
        return 0.5 * self.speed(x) * torch.ones_like(s)

    def lagrangian(self, x, a):
        return (a * a).sum(-1) / (2.0 * self.speed(x))

    def __repr__(self) -> str:
        return f"CongestionHamiltonian(speed={self.speed!r})"


class PowerHamiltonian(RadialHamiltonian):
    """``H = |p|^q / q`` with ``q > 1`` (q = 2 is the quadratic case)."""

    def __init__(self, q: float = 2.0) -> None:
        if not float(q) > 1:
            raise ProblemError(f"PowerHamiltonian.q must be > 1, got {q!r}")
        self.q = float(q)

    def radial(self, x, s):
        return s.clamp_min(0) ** (0.5 * self.q) / self.q

    def radial_ds(self, x, s):
        # dK/ds = s^(q/2-1)/2, singular at s = 0 when q < 2: a tiny floor keeps it finite.
        return 0.5 * s.clamp_min(1e-300 if s.dtype == torch.float64 else 1e-30) ** (0.5 * self.q - 1)

    def lagrangian(self, x, a):
        dual = self.q / (self.q - 1.0)  # L = |a|^q' / q' with 1/q + 1/q' = 1
        return (a * a).sum(-1).clamp_min(0) ** (0.5 * dual) / dual

    def __repr__(self) -> str:
        return f"PowerHamiltonian(q={self.q})"


class CallableHamiltonian(Hamiltonian):
    """A user's Hamiltonian ``fn(x, p) -> (n,)``, with an optional ``grad_p(x, p) -> (n, d)``.

    Without ``grad_p`` the gradient comes from autograd.
    """

    def __init__(self, fn: Callable, grad_p: Callable | None = None) -> None:
        if not callable(fn):
            raise ProblemError("hamiltonian must be callable as H(x, p)")
        self.fn = fn
        self._grad_p = grad_p

    def __call__(self, x, p):
        return self.fn(x, p)

    def grad_p(self, x, p):
        if self._grad_p is not None:
            return self._grad_p(x, p)
        return super().grad_p(x, p)


def as_hamiltonian(value) -> Hamiltonian:
    """Accept a [`Hamiltonian`][mfgnet.problems.hamiltonians.Hamiltonian], ``None`` (quadratic) or a
    callable ``H(x, p)``."""
    if value is None:
        return QuadraticHamiltonian()
    if isinstance(value, Hamiltonian):
        return value
    if callable(value):
        n_args = argument_count(value, 2)
        if n_args != 2:
            raise ProblemError(f"hamiltonian must be callable as H(x, p) (2 arguments), it takes {n_args}")
        return CallableHamiltonian(value)
    raise ProblemError(f"hamiltonian must be a Hamiltonian or a callable H(x, p), got {value!r}")
