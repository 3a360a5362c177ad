"""mfgnet: mean field games solved by physics-informed networks and validated by grids.

``import mfgnet`` is cheap: torch and the solvers are imported when first used.

    import mfgnet
    from mfgnet.benchmarks import ergodic_torus
    problem, exact = ergodic_torus(dim=1)
    solution = mfgnet.solve(problem, solver="grid", cells=256)
"""

import lazy_loader as _lazy

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "problems": ["Box", "Euclidean", "MFGProblem", "ProblemError", "Torus", "social_optimum"],
    "evaluation.social": ["price_of_anarchy", "social_cost"],
    "solution": ["Diagnostics", "ExactSolution", "Solution"],
    "solvers": ["solve"],
    "registry": ["SolverSpec", "get_solver", "register_solver", "solver_names"],
})
__all__ = [*__all__, "__version__"]
