"""One entry point to every solver: ``mfgnet.solve(problem, solver="grid" | "neural", ...)``.

Solvers are imported lazily so that using one never pays for importing another.
"""

from __future__ import annotations

from mfgnet.problems import MFGProblem, ProblemError
from mfgnet.solution import Solution

SOLVERS = ("grid", "neural")


def solver_entry(name: str):
    """(config class, solve function) of the solver called ``name``."""
    if name == "grid":
        from mfgnet.grid import GridSolverConfig, solve_grid
        return GridSolverConfig, solve_grid
    if name == "neural":
        from mfgnet.neural import NeuralSolverConfig, solve_neural
        return NeuralSolverConfig, solve_neural
    raise ProblemError(f"solver must be one of {list(SOLVERS)}, got {name!r}")


def solve(problem: MFGProblem, solver: str = "grid", config=None, **options) -> Solution:
    """Solve ``problem`` with the named solver.

    ``config`` is the solver's config object (``GridSolverConfig`` / ``NeuralSolverConfig``)
    or a dict of its fields; ``options`` override single fields.  Returns a
    :class:`~mfgnet.solution.Solution` with diagnostics.
    """
    config_cls, solve_fn = solver_entry(solver)
    if config is None or isinstance(config, dict):
        config = config_cls.from_dict({**(config or {}), **options})
        options = {}
    return solve_fn(problem, config, **options)
