"""B3: time-dependent periodic MFG on 𝕋¹ solved by the Hopf–Cole transform.

φ = 1 + A e^{-4π²ν(T-t)} cos 2πx,  ψ = 1 + B e^{-4π²νt} cos 2πx,  Z = 1 + (AB/2) e^{-4π²νT},
u = -2ν ln φ,  m = φψ/Z.  The coupling F = κ (m - m*) vanishes on the solution and is
monotone, so the solution is unique.
"""

from __future__ import annotations

import math

import torch

from mfgnet.benchmarks.base import Benchmark
from mfgnet.problems import MFGProblem, ProblemError, Torus
from mfgnet.problems.validation import finite_parameters
from mfgnet.solution import ExactSolution, time_column


@finite_parameters
def hopf_cole(viscosity: float = 0.2, horizon: float = 0.5, A: float = 0.5, B: float = 0.5,
              kappa: float = 1.0) -> Benchmark:
    """B3: a time-dependent MFG on the torus 𝕋¹ solved by the Hopf–Cole transform.

    Parameters
    ----------
    viscosity : float
        ν > 0.
    horizon : float
        The final time T > 0.
    A : float
        Amplitude of φ(T, ·), in (-1, 1).
    B : float
        Amplitude of ψ(0, ·), in (-1, 1).
    kappa : float
        Strength κ of the monotone coupling F = κ (m - m*).

    Returns
    -------
    Benchmark
        ``(problem, exact)`` with u = -2ν ln φ and m = φψ/Z (defaults: the reference
        parameters ν = 0.2, T = 0.5, A = B = 0.5, κ = 1).
    """
    if not viscosity > 0:
        raise ProblemError(f"viscosity must be > 0 for the Hopf-Cole benchmark, got {viscosity!r}")
    if not (abs(A) < 1 and abs(B) < 1):
        raise ProblemError(f"A and B must lie in (-1, 1) so that φ, ψ > 0; got A={A}, B={B}")
    nu, T = float(viscosity), float(horizon)
    rate = 4 * math.pi**2 * nu
    Z = 1 + 0.5 * A * B * math.exp(-rate * T)

    def phi(t, x):
        return 1 + A * torch.exp(-rate * (T - t[:, 0])) * torch.cos(2 * math.pi * x[:, 0])

    def psi(t, x):
        return 1 + B * torch.exp(-rate * t[:, 0]) * torch.cos(2 * math.pi * x[:, 0])

    def value(t, x):
        return -2 * nu * torch.log(phi(t, x))

    def density(t, x):
        return phi(t, x) * psi(t, x) / Z

    def coupling(t, x, m):
        return kappa * (m - density(t, x))

    problem = MFGProblem(
        Torus(1), horizon=T, viscosity=nu, coupling=coupling,
        terminal_cost=lambda x, m: value(time_column(T, x), x),
        initial_density=lambda x: density(time_column(0.0, x), x),
        name="hopf_cole")
    return Benchmark(problem, ExactSolution(problem, value, density))
