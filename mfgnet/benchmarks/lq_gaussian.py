"""B2: linear-quadratic MFG on R^d with Gaussian solution.

F = (κ/2)|x - ρ m̄(t)|²,  G = (c_T/2)|x - ρ m̄(T)|²,  m0 = N(x̄0, s0 I), ρ < 1.
Per coordinate, with k = √κ, τ = T - t, ω = √(κ(1-ρ)):
    a(t) = k (c_T + k tanh kτ) / (k + c_T tanh kτ)
    m̄(t) = x̄0 [ω cosh ωτ + c_T(1-ρ) sinh ωτ] / [ω cosh ωT + c_T(1-ρ) sinh ωT]
    β = -m̄' - a m̄,   ψ = k cosh kτ + c_T sinh kτ
    s(t) = (ψ(t)/ψ(0))² s0 + (2ν/k²) ψ(t)² [sinh(kT)/ψ(0) - sinh(kτ)/ψ(t)]
    c' = ½β² - νa - (κ/2)ρ² m̄²,  c(T) = (c_T/2)ρ² m̄(T)²
    u = ½ a x² + β x + c,   m = N(m̄, s).
u and m in R^d are the sum and the product over coordinates.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mfgnet.benchmarks.base import Benchmark
from mfgnet.problems import Euclidean, MFGProblem, NonlocalCoupling, ProblemError, mean_kernel
from mfgnet.problems.validation import finite_parameters
from mfgnet.solution import ExactSolution

# Gauss-Legendre on [-1, 1]: c' is analytic, so 64 nodes integrate it to round-off.
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(64)
# Above this many points (and no gradient wanted) c(t) is computed once per distinct time.
_UNIQUE_TIMES_ABOVE = 4096


class LQCoefficients:
    """The scalar coefficient functions of B2, vectorised over t (any shape), in torch."""

    def __init__(self, horizon, kappa, terminal_weight, rho, viscosity, mean0):
        self.T, self.kappa, self.cT, self.rho, self.nu = horizon, kappa, terminal_weight, rho, viscosity
        self.mean0 = torch.as_tensor(mean0, dtype=torch.float64)  # (d,)
        self.k = math.sqrt(kappa)
        self.omega = math.sqrt(kappa * (1 - rho))
        w, cT, T = self.omega, terminal_weight, horizon
        self._mean_denominator = w * math.cosh(w * T) + cT * (1 - rho) * math.sinh(w * T)

    def a(self, t):
        """a(t), the quadratic coefficient of u (a' = a² - κ, a(T) = c_T)."""
        k, cT, tau = self.k, self.cT, self.T - t
        th = torch.tanh(k * tau)
        return k * (cT + k * th) / (k + cT * th)

    def psi(self, t):
        """ψ(t) = k cosh(kτ) + c_T sinh(kτ), τ = T - t."""
        tau = self.T - t
        return self.k * torch.cosh(self.k * tau) + self.cT * torch.sinh(self.k * tau)

    def mean(self, t):
        """m̄(t), shape t.shape + (d,)."""
        w, tau = self.omega, (self.T - t).unsqueeze(-1)
        num = w * torch.cosh(w * tau) + self.cT * (1 - self.rho) * torch.sinh(w * tau)
        return self.mean0.to(t) * num / self._mean_denominator

    def mean_dot(self, t):
        """m̄'(t), shape t.shape + (d,)."""
        w, tau = self.omega, (self.T - t).unsqueeze(-1)
        dnum_dtau = w**2 * torch.sinh(w * tau) + self.cT * (1 - self.rho) * w * torch.cosh(w * tau)
        return -self.mean0.to(t) * dnum_dtau / self._mean_denominator

    def beta(self, t):
        """β(t) = -m̄' - a m̄, the linear coefficient of u, shape t.shape + (d,)."""
        return -self.mean_dot(t) - self.a(t).unsqueeze(-1) * self.mean(t)

    def variance(self, t, s0):
        """s(t), the variance of m(t) per coordinate, for the initial variance ``s0``."""
        k, T = self.k, self.T
        psi_t, psi_0 = self.psi(t), self.psi(torch.zeros_like(t))
        return (psi_t / psi_0) ** 2 * s0 + (2 * self.nu / k**2) * psi_t**2 * (
            math.sinh(k * T) / psi_0 - torch.sinh(k * (T - t)) / psi_t)

    def c_dot(self, t):
        """c'(t) summed over coordinates."""
        d = self.mean0.numel()
        return (0.5 * (self.beta(t) ** 2).sum(-1) - d * self.nu * self.a(t)
                - 0.5 * self.kappa * self.rho**2 * (self.mean(t) ** 2).sum(-1))

    def c(self, t):
        """c(t) = c(T) - ∫_t^T c'(s) ds (summed over coordinates)."""
        if not t.requires_grad and t.numel() > _UNIQUE_TIMES_ABOVE:
            # Points on a grid share a few times: the quadrature once per distinct time (the exact pair's crowd gap
            # on 800 cells and steps: 30.8 s per point, 0.9 s so, the same digits; load 1).
            times, where = torch.unique(t, return_inverse=True)
            return self._c(times)[where]
        return self._c(t)

    def _c(self, t):
        T = self.T
        nodes = torch.as_tensor(_GL_NODES, dtype=t.dtype, device=t.device)
        weights = torch.as_tensor(_GL_WEIGHTS, dtype=t.dtype, device=t.device)
        half = 0.5 * (T - t).unsqueeze(-1)
        s = t.unsqueeze(-1) + half * (nodes + 1)
        integral = (half * weights * self.c_dot(s)).sum(-1)
        c_T = 0.5 * self.cT * self.rho**2 * (self.mean(torch.full_like(t, T)) ** 2).sum(-1)
        return c_T - integral


@finite_parameters
def lq_gaussian(dim: int = 1, horizon: float = 1.0, kappa: float = 1.0, terminal_weight: float = 0.5,
                rho: float = 0.5, viscosity: float = 0.1, mean0: float = 1.0, var0: float = 0.1) -> Benchmark:
    """B2: the linear-quadratic MFG on R^d with a Gaussian solution.

    Parameters
    ----------
    dim : int
        The dimension d >= 1 (the problem is the same in every coordinate).
    horizon : float
        The final time T > 0.
    kappa : float
        κ > 0 in F = (κ/2)|x - ρ m̄(t)|².
    terminal_weight : float
        c_T >= 0 in G = (c_T/2)|x - ρ m̄(T)|².
    rho : float
        ρ < 1: how strongly agents are drawn to the population mean m̄.
    viscosity : float
        ν >= 0.
    mean0 : float
        x̄0, each coordinate of the mean of m0 = N(x̄0, s0 I).
    var0 : float
        s0 > 0, the variance of m0 per coordinate.

    Returns
    -------
    Benchmark
        ``(problem, exact)``; ``exact.coefficients`` is the
        [`LQCoefficients`][mfgnet.benchmarks.lq_gaussian.LQCoefficients]
        (a, β, c, m̄, s).  Defaults: the reference parameters.
    """
    if not rho < 1:
        raise ProblemError(f"rho must be < 1 for the LQ benchmark, got {rho!r}")
    if not kappa > 0:
        raise ProblemError(f"kappa must be > 0, got {kappa!r}")
    if not terminal_weight >= 0:
        raise ProblemError(f"terminal_weight c_T must be >= 0, got {terminal_weight!r}")
    if not var0 > 0:
        raise ProblemError(f"var0 must be > 0, got {var0!r}")
    coef = LQCoefficients(float(horizon), float(kappa), float(terminal_weight), float(rho),
                          float(viscosity), [float(mean0)] * dim)
    std0 = math.sqrt(var0)

    def value(t, x):
        tt = t[:, 0]
        return 0.5 * coef.a(tt) * (x**2).sum(-1) + (coef.beta(tt) * x).sum(-1) + coef.c(tt)

    def gaussian(x, mean, var):
        z = ((x - mean) ** 2).sum(-1) / var
        return torch.exp(-0.5 * z) / (2 * math.pi * var) ** (0.5 * dim)

    def density(t, x):
        tt = t[:, 0]
        return gaussian(x, coef.mean(tt), coef.variance(tt, var0))

    def coupling(t, x, m, mean):
        return 0.5 * kappa * ((x - rho * mean) ** 2).sum(-1)

    def terminal(t, x, m, mean):
        return 0.5 * terminal_weight * ((x - rho * mean) ** 2).sum(-1)

    def sampler(n, generator=None):
        return mean0 + std0 * torch.randn(n, dim, generator=generator, dtype=torch.float64)

    problem = MFGProblem(
        Euclidean(dim), horizon=float(horizon), viscosity=float(viscosity),
        coupling=NonlocalCoupling(coupling, mean_kernel),
        terminal_cost=NonlocalCoupling(terminal, mean_kernel),
        initial_density=lambda x: gaussian(x, torch.full((dim,), float(mean0), dtype=x.dtype, device=x.device), var0),
        initial_sampler=sampler, name=f"lq_gaussian_{dim}d")
    def sample_exact(t, generator=None):
        z = torch.randn(t.shape[0], dim, generator=generator, dtype=torch.float64)
        return coef.mean(t) + torch.sqrt(coef.variance(t, var0)).unsqueeze(-1) * z

    exact = ExactSolution(problem, value, density, sampler_fn=sample_exact)
    exact.coefficients = coef
    return Benchmark(problem, exact)
