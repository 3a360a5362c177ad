"""Problems without a closed-form solution, for solver-vs-solver comparisons."""

from __future__ import annotations

import math

import torch

from mfgnet.problems.domains import Box
from mfgnet.problems.hamiltonians import CongestionHamiltonian, QuadraticHamiltonian
from mfgnet.problems.problem import MFGProblem
from mfgnet.problems.validation import ProblemError, finite_parameters


@finite_parameters
def crowd_aversion(dim: int = 1, viscosity: float = 0.05, horizon: float = 1.0, aversion: float = 1.0,
                   target: float = 0.75, target_weight: float = 2.0, start: float = 0.3, start_width: float = 0.1,
                   congestion: float = 0.0) -> MFGProblem:
    """Agents in the no-flux box [0, 1]^d travel from a bump at ``start`` towards ``target``
    while avoiding crowds: F = aversion · m, G = (target_weight/2) |x − target|².

    With ``congestion > 0`` the Hamiltonian is ½ c(x)|p|² with c(x) = 1/(1 + congestion ·
    Π sin²(πx_i)): motion is slower in the middle of the box.
    """
    if aversion < 0:
        raise ProblemError(f"aversion must be >= 0 (a monotone coupling), got {aversion}")
    if not 0 < start_width:
        raise ProblemError(f"start_width must be > 0, got {start_width}")
    if congestion < 0:
        raise ProblemError(f"congestion must be >= 0, got {congestion}")
    # Normalise the Gaussian bump on [0, 1] per axis with erf, so ∫ m0 = 1 exactly.
    z = math.sqrt(2) * start_width
    axis_mass = 0.5 * (math.erf((1 - start) / z) + math.erf(start / z)) * math.sqrt(2 * math.pi) * start_width

    def initial_density(x):
        return torch.exp(-((x - start) ** 2).sum(-1) / (2 * start_width**2)) / axis_mass**dim

    def speed(x):
        return 1.0 / (1.0 + congestion * torch.sin(math.pi * x).pow(2).prod(-1))

    hamiltonian = CongestionHamiltonian(speed) if congestion > 0 else QuadraticHamiltonian()
    return MFGProblem(
        Box([0.0] * dim, [1.0] * dim), horizon=horizon, viscosity=viscosity, hamiltonian=hamiltonian,
        coupling=lambda t, x, m: aversion * m,
        terminal_cost=lambda x, m: 0.5 * target_weight * ((x - target) ** 2).sum(-1),
        initial_density=initial_density, name=f"crowd_aversion_{dim}d")


@finite_parameters
def segregation(dim: int = 1, viscosity_1: float = 0.05, viscosity_2: float = 0.08, horizon: float = 1.0,
                self_aversion: float = 0.5, cross_aversion: float = 3.0, start_1: float = 0.35, start_2: float = 0.65,
                start_width: float = 0.1, target_1: float = 0.6, target_2: float = 0.4, target_weight: float = 1.0):
    """Two populations in the no-flux box [0, 1]^d that avoid each other: population k starts
    as a bump at ``start_k`` (per axis) and is pulled towards ``target_k``,
    F_k = self_aversion · m_k + cross_aversion · m_j, G_k = (target_weight/2)|x − target_k|².
    The defaults pull the two crowds across each other (no closed form: grid vs neural)."""
    from mfgnet.problems.populations import MultiPopulationProblem, Population

    if self_aversion < 0 or cross_aversion < 0:
        raise ProblemError(f"self_aversion and cross_aversion must be >= 0, got {self_aversion}, {cross_aversion}")
    if not 0 < start_width:
        raise ProblemError(f"start_width must be > 0, got {start_width}")
    z = math.sqrt(2) * start_width

    def bump(start):
        axis_mass = 0.5 * (math.erf((1 - start) / z) + math.erf(start / z)) * math.sqrt(2 * math.pi) * start_width
        return lambda x: torch.exp(-((x - start) ** 2).sum(-1) / (2 * start_width**2)) / axis_mass**dim

    def coupling(k):
        return lambda t, x, m: self_aversion * m[:, k] + cross_aversion * m[:, 1 - k]

    def terminal(target):
        return lambda x, m: 0.5 * target_weight * ((x - target) ** 2).sum(-1)

    populations = [Population(viscosity, coupling(k), terminal(target), bump(start), name=f"population_{k + 1}")
                   for k, (viscosity, start, target) in enumerate([(viscosity_1, start_1, target_1),
                                                                  (viscosity_2, start_2, target_2)])]
    return MultiPopulationProblem(Box([0.0] * dim, [1.0] * dim), horizon, populations, name=f"segregation_{dim}d")
