"""Couplings F(t, x, m) and terminal costs G(x, m): how the crowd enters an agent's cost.

A coupling is *local* when it depends on the density value at x only, or *nonlocal* when
it depends on integrals of the whole density,

    conv(t, x) = ∫ K(x, y) m(t, y) dy          (shape (n, c))

for a user kernel K (a mean: K(x, y) = y; a convolution: K(x, y) = k(x - y)).  Each solver
computes ``conv`` its own way (quadrature on the grid, Monte Carlo for the networks) and
hands it to the same function, so the coupling is written once.

Shapes: t (n, 1), x (n, d), m (n,), conv (n, c); every call returns (n,).
For ergodic problems t is passed as zeros.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mfgnet.problems.validation import ProblemError, argument_count


class Coupling:
    """Base class.  ``kernel`` is ``None`` for local couplings."""

    kernel: Callable | None = None

    @property
    def is_local(self) -> bool:
        return self.kernel is None

    def __call__(self, t: torch.Tensor, x: torch.Tensor, m: torch.Tensor,
                 conv: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


class LocalCoupling(Coupling):
    """``F = fn(t, x, m)``."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn

    def __call__(self, t, x, m, conv=None):
        return self.fn(t, x, m)


class NonlocalCoupling(Coupling):
    """``F = fn(t, x, m, conv)`` with ``conv = ∫ kernel(x, y) m(t, y) dy``.

    ``kernel(x: (n, d), y: (k, d)) -> (n, k, c)``.
    """

    def __init__(self, fn: Callable, kernel: Callable) -> None:
        if not callable(kernel):
            raise ProblemError("NonlocalCoupling.kernel must be callable as K(x, y)")
        self.fn = fn
        self.kernel = kernel

    def __call__(self, t, x, m, conv=None):
        if conv is None:
            raise ProblemError("a nonlocal coupling needs conv = ∫ K(x, y) m(y) dy; the solver must pass it")
        return self.fn(t, x, m, conv)

    @staticmethod
    def of_mean(fn: Callable) -> NonlocalCoupling:
        """Coupling through the population mean: ``fn(t, x, m, mean)`` with mean (n, d)."""
        return NonlocalCoupling(fn, mean_kernel)


def mean_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """K(x, y) = y, so that ∫ K m dy is the mean of m; shape (n, k, d)."""
    return y.unsqueeze(0).expand(x.shape[0], *y.shape)


class ZeroCoupling(Coupling):
    """F = 0 (the default coupling and terminal cost)."""

    def __call__(self, t, x, m, conv=None):
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)


class PlusFixedCost(Coupling):
    """``coupling(t, x, m[, conv]) + cost(t, x)``: a coupling with a cost added that does not
    depend on m (e.g. an MFG of controls' cost of a frozen mean control); local or nonlocal
    as ``coupling`` is."""

    def __init__(self, coupling: Coupling, cost: Callable) -> None:
        self.coupling = coupling
        self.cost = cost
        self.kernel = coupling.kernel

    def __call__(self, t, x, m, conv=None):
        return self.coupling(t, x, m, conv) + self.cost(t, x)


def as_coupling(value, name: str, arity: int) -> Coupling:
    """Wrap ``None``, a [`Coupling`][mfgnet.problems.couplings.Coupling] or a plain callable.

    A plain coupling callable takes ``(t, x, m)`` (arity 3); a plain terminal cost takes
    ``(x, m)`` (arity 2) and is called at t = T.
    """
    if value is None:
        return ZeroCoupling()
    if isinstance(value, Coupling):
        return value
    if not callable(value):
        raise ProblemError(f"{name} must be a Coupling or a callable, got {value!r}")
    n_args = argument_count(value, arity)
    if arity == 2:
        if n_args != 2:
            raise ProblemError(f"{name} must be callable as G(x, m) (2 arguments), it takes {n_args}")
        return LocalCoupling(lambda t, x, m: value(x, m))
    if n_args != 3:
        raise ProblemError(f"{name} must be callable as F(t, x, m) (3 arguments), it takes {n_args}")
    return LocalCoupling(value)
