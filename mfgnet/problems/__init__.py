"""Problem layer: domains, Hamiltonians, couplings and the :class:`MFGProblem`."""

from mfgnet.problems.couplings import Coupling, LocalCoupling, NonlocalCoupling, ZeroCoupling, mean_kernel
from mfgnet.problems.domains import Box, Domain, Euclidean, Torus
from mfgnet.problems.hamiltonians import (
                                       CallableHamiltonian,
                                       CongestionHamiltonian,
                                       Hamiltonian,
                                       PowerHamiltonian,
                                       QuadraticHamiltonian,
                                       RadialHamiltonian,
)
from mfgnet.problems.problem import MFGProblem
from mfgnet.problems.validation import ProblemError

__all__ = [
    "Box", "CallableHamiltonian", "CongestionHamiltonian", "Coupling", "Domain", "Euclidean",
    "Hamiltonian", "LocalCoupling", "MFGProblem", "NonlocalCoupling", "PowerHamiltonian",
    "ProblemError", "QuadraticHamiltonian", "RadialHamiltonian", "Torus", "ZeroCoupling", "mean_kernel",
]
