"""One entry point to every solver: ``mfgnet.solve(problem, solver="grid" | "neural" | ...)``.

Solvers are looked up in :mod:`mfgnet.registry` and imported when first used, so using one
never pays for importing another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mfgnet.registry import get_solver
from mfgnet.resources import check_solver_memory


def solve(problem, solver: str = "grid", config=None, *, callback: Callable[[int, dict], None] | None = None,
          workdir: str | Path | None = None, **fields):
    """Solve ``problem`` (an :class:`~mfgnet.problems.MFGProblem`) with the named solver.

    Args:
        solver: a registered solver name (``mfgnet.registry.solver_names()``).
        config: the solver's settings object (``GridSolverConfig``, ``NeuralSolverConfig``)
            or a dict of its fields; None for the defaults.
        callback: ``fn(step, metrics)`` called with progress numbers (e.g. a logger).
        workdir: a folder where the solver may keep files (checkpoints), or None.
        fields: single settings to change, e.g. ``cells=256`` or ``steps=500,
            optim={"lr": 1e-3}`` (nested fields also as ``optim__lr=1e-3``).

    Returns:
        a :class:`~mfgnet.solution.Solution`; ``solution.diagnostics`` says whether the
        solver converged and gives its residual.
    """
    spec = get_solver(solver)
    settings_class = spec.config_class
    if config is None or isinstance(config, dict):
        config = settings_class.from_dict(config or {})
    if fields:
        config = config.replace(**fields)
    check_solver_memory(problem, config)  # refuse a run that cannot fit before it allocates
    return spec.solve_function(problem, config, callback=callback, workdir=workdir)
