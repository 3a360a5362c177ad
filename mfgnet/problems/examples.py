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
