"""Problem layer: domains, Hamiltonians, couplings and the [`MFGProblem`][mfgnet.problems.problem.MFGProblem].

Imported lazily (``ProblemError`` comes without torch)."""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "couplings": ["Coupling", "LocalCoupling", "NonlocalCoupling", "PlusFixedCost", "ZeroCoupling", "mean_kernel"],
    "domains": ["Box", "Domain", "Euclidean", "Torus", "cell_centre_points", "cell_centres", "reflect_box",
                "wrap_periodic"],
    "hamiltonians": ["CallableHamiltonian", "CongestionHamiltonian", "Hamiltonian", "PowerHamiltonian",
                     "QuadraticHamiltonian", "RadialHamiltonian"],
    "populations": ["MultiPopulationProblem", "Population"],
    "problem": ["MFGProblem"],
    "social": ["marginal_cost", "social_optimum"],
    "validation": ["ProblemError"],
})
