"""One entry point to every solver: ``mfgnet.solve(problem, solver="grid" | "neural" | ...)``.

Solvers are looked up in [`mfgnet.registry`][mfgnet.registry] and imported when first used, so using one
never pays for importing another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mfgnet.registry import get_solver


def solve(problem, solver: str = "grid", config=None, *, callback: Callable[[int, dict], None] | None = None,
          workdir: str | Path | None = None, **fields):
    """Solve ``problem`` with the named solver.

    Parameters
    ----------
    problem : MFGProblem
        The mean field game ([`MFGProblem`][mfgnet.problems.problem.MFGProblem]).
    solver : str
        A registered solver name (``mfgnet.registry.solver_names()``): ``"grid"``,
        ``"neural"`` or a plug-in's.
    config : Settings or dict or None
        The solver's settings object (``GridSolverConfig``, ``NeuralSolverConfig``) or a
        dict of its fields; None for the defaults.
    callback : callable or None
        ``fn(step, metrics)`` called with progress numbers (e.g. a logger).
    workdir : str or Path or None
        A folder where the solver may keep files (checkpoints), or None.
    **fields
        Single settings to change, e.g. ``cells=256`` or ``steps=500,
        optim={"lr": 1e-3}`` (nested fields also as ``optim__lr=1e-3``).

    Returns
    -------
    Solution
        The solution ([`Solution`][mfgnet.solution.Solution]); ``solution.diagnostics`` says
        whether the solver converged and gives its residual.

    Raises
    ------
    ProblemError
        For an unknown solver name or a setting out of its allowed range (the message
        names the field).

    Examples
    --------
    >>> from mfgnet.benchmarks import ergodic_torus
    >>> problem, exact = ergodic_torus(dim=1)
    >>> solution = solve(problem, "grid", cells=64)
    >>> bool(solution.diagnostics.converged)
    True
    """
    spec = get_solver(solver)
    settings_class = spec.config_class
    if config is None or isinstance(config, dict):
        config = settings_class.from_dict(config or {})
    if fields:
        config = config.replace(**fields)
    return spec.solve_function(problem, config, callback=callback, workdir=workdir)
