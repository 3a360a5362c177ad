"""B6: two populations on the torus [0, 1)^d, ergodic, exact in any d (shared BENCHMARKS.md).

Population k (k = 1, 2) has ν_k = σ_k²/2, H_k = ½|p|², and with s_k = Σ_i sin(2πx_i + φ_k),
q_k = Σ_i cos²(2πx_i + φ_k), j the other population:

    u_k = −a_k s_k,   m_k = exp((a_k/ν_k) s_k) / I0(a_k/ν_k)^d,   λ_k = −d ln I0(a_k/ν_k),
    F_k(x, m_1, m_2) = ln m_k + c_k m_j + f_k(x),
    f_k = 2π² (a_k² q_k − 2ν_k a_k s_k) − (a_k/ν_k) s_k − c_k m_j^exact(x).

c_k > 0: each population avoids the other.  f_k is a fixed function of x, so a solver that
ignored m_j would get another answer.  a_1 = 1, σ_1 = 1, φ_1 = 0 is B1 for population 1.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from scipy.special import i0e

from mfgnet.problems import ProblemError, Torus
from mfgnet.problems.populations import MultiPopulationProblem, Population
from mfgnet.problems.validation import finite_parameters
from mfgnet.solution import ExactSolution


class PopulationsBenchmark(NamedTuple):
    """A multi-population problem and the exact solution of each population."""

    problem: MultiPopulationProblem
    exact: list[ExactSolution]


@finite_parameters
def two_populations(dim: int = 1, amplitude_1: float = 1.0, sigma_1: float = 1.0, phase_1: float = 0.0,
                    cross_1: float = 1.0, amplitude_2: float = 0.5, sigma_2: float = 0.8,
                    phase_2: float = 1.5707963267948966, cross_2: float = 1.0) -> PopulationsBenchmark:
    """B6: two populations on the torus that avoid each other (cross weights c_k), and the exact
    solution of each (u_k, m_k, λ_k); defaults a = (1, 0.5), σ = (1, 0.8), φ = (0, π/2),
    c = (1, 1): λ_1 = −0.8239935 d, λ_2 = −0.5365207 d.

    Parameters
    ----------
    dim : int
        d >= 1.
    amplitude_1, amplitude_2 : float
        a_k > 0.
    sigma_1, sigma_2 : float
        σ_k > 0 (ν_k = σ_k²/2).
    phase_1, phase_2 : float
        φ_k.
    cross_1, cross_2 : float
        c_k >= 0, the weight of the other population's density in F_k.
    """
    if int(dim) < 1:
        raise ProblemError(f"dim must be >= 1, got {dim!r}")
    params = [(amplitude_1, sigma_1, phase_1, cross_1), (amplitude_2, sigma_2, phase_2, cross_2)]
    for k, (a, sigma, _, c) in enumerate(params, start=1):
        if not a > 0:
            raise ProblemError(f"amplitude_{k} must be > 0, got {a!r}")
        if not sigma > 0:
            raise ProblemError(f"sigma_{k} must be > 0, got {sigma!r}")
        if c < 0:
            raise ProblemError(f"cross_{k} must be >= 0 (each population avoids the other), got {c!r}")
    two_pi = 2 * math.pi

    def s_of(x, phase):
        return torch.sin(two_pi * x + phase).sum(-1)

    def q_of(x, phase):
        return (torch.cos(two_pi * x + phase) ** 2).sum(-1)

    def exact_density(k):
        a, sigma, phase, _ = params[k]
        beta = a / (sigma**2 / 2)
        log_i0 = beta + math.log(i0e(beta))  # ln I0(β), finite where I0 overflows
        return lambda x: torch.exp(beta * s_of(x, phase) - dim * log_i0), -dim * log_i0

    densities = [exact_density(0), exact_density(1)]

    def coupling_of(k):
        a, sigma, phase, c = params[k]
        nu, j = sigma**2 / 2, 1 - k
        density_j = densities[j][0]

        def coupling(t, x, m):
            s = s_of(x, phase)
            f = 2 * math.pi**2 * (a**2 * q_of(x, phase) - 2 * nu * a * s) - (a / nu) * s - c * density_j(x)
            return torch.log(m[:, k]) + c * m[:, j] + f

        return coupling

    populations = [Population(viscosity=params[k][1] ** 2 / 2, coupling=coupling_of(k), name=f"population_{k + 1}")
                   for k in range(2)]
    problem = MultiPopulationProblem(Torus(dim), None, populations, name=f"two_populations_{dim}d")
    exact = []
    for k in range(2):
        a, _, phase, _ = params[k]
        density, lam = densities[k]
        exact.append(ExactSolution(problem.population_problem(k),
                                   lambda t, x, a=a, phase=phase: -a * s_of(x, phase),
                                   lambda t, x, density=density: density(x), ergodic_constant=lam))
    return PopulationsBenchmark(problem, exact)
