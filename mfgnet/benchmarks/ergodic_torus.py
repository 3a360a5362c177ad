"""B1: ergodic MFG on the torus [0, 1)^d with a log coupling (any d, any σ > 0).

ν = σ²/2,  F(x, m) = ln m + f̃(x),
f̃(x) = 2π² Σ_i [cos²(2πx_i) - σ² sin(2πx_i)] - (2/σ²) Σ_i sin(2πx_i).
Exact: u = -Σ sin(2πx_i),  m = exp((2/σ²) Σ sin(2πx_i)) / I0(2/σ²)^d,  λ = -d ln I0(2/σ²).
"""

from __future__ import annotations

import math

import torch
from scipy.special import i0e

from mfgnet.benchmarks.base import Benchmark
from mfgnet.problems import MFGProblem, ProblemError, Torus
from mfgnet.problems.validation import finite_parameters
from mfgnet.solution import ExactSolution


@finite_parameters
def ergodic_torus(dim: int = 1, sigma: float = 1.0) -> Benchmark:
    """B1: the ergodic MFG on the torus [0, 1)^d with a log coupling, and its exact solution.

    Parameters
    ----------
    dim : int
        The dimension d >= 1.
    sigma : float
        The noise level σ > 0; the viscosity is ν = σ²/2.

    Returns
    -------
    Benchmark
        ``(problem, exact)``: u = -Σ sin(2πx_i), m = exp((2/σ²) Σ sin(2πx_i)) / I0(2/σ²)^d,
        λ = -d ln I0(2/σ²).
    """
    if not float(sigma) > 0:
        raise ProblemError(f"sigma must be > 0, got {sigma!r}")
    sigma = float(sigma)
    beta = 2.0 / sigma**2
    # ln I0(b) = b + ln(i0e(b)): stays finite for small σ where I0 itself overflows.
    log_i0 = beta + math.log(i0e(beta))
    two_pi = 2 * math.pi

    def f_tilde(x: torch.Tensor) -> torch.Tensor:
        s, c = torch.sin(two_pi * x), torch.cos(two_pi * x)
        return (2 * math.pi**2 * (c**2 - sigma**2 * s)).sum(-1) - beta * s.sum(-1)

    def coupling(t, x, m):
        return torch.log(m) + f_tilde(x)

    def value(t, x):
        return -torch.sin(two_pi * x).sum(-1)

    def density(t, x):
        return torch.exp(beta * torch.sin(two_pi * x).sum(-1) - dim * log_i0)

    problem = MFGProblem(Torus(dim), horizon=None, viscosity=sigma**2 / 2, coupling=coupling,
                         name=f"ergodic_torus_{dim}d")
    return Benchmark(problem, ExactSolution(problem, value, density, ergodic_constant=-dim * log_i0))
