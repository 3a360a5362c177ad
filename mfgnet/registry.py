"""Solvers as registered objects.

A solver is a [`SolverSpec`][mfgnet.registry.SolverSpec]: a name, its settings class and its solve function, both
given as ``"module:attribute"`` references so that knowing a solver costs no import (the
command line composes and checks configs without importing torch).  The runner, the
Hydra configs, ``mfgnet.compare`` and ``mfgnet.solve`` read this registry; adding a solver
touches none of them.

A third-party package registers its solver through the entry point group
``mfgnet.solvers``; the entry point names a ``SolverSpec`` object::

    # pyproject.toml of the other package
    [project.entry-points."mfgnet.solvers"]
    mysolver = "mypackage.mfgnet_plugin:SPEC"

or calls [`register_solver`][mfgnet.registry.register_solver] at import time.  The solve function's contract::

    solve(problem: MFGProblem, config: <settings class>, *, callback=None, workdir=None) -> Solution

``callback(step, metrics)`` receives progress numbers (a logger, e.g. wandb); ``workdir``
is the run directory where a solver may keep files (checkpoints), or None.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from mfgnet.problems.validation import ProblemError

ENTRY_POINT_GROUP = "mfgnet.solvers"


def load_reference(ref: str | Any) -> Any:
    """The object named by ``"package.module:attribute"`` (objects are returned as they are)."""
    if not isinstance(ref, str):
        return ref
    module, _, attribute = ref.partition(":")
    obj = importlib.import_module(module)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class SolverSpec:
    """One solver: its name, its settings class and its solve function.

    Attributes
    ----------
    name : str
        The name used by ``mfgnet.solve(problem, name)`` and ``solver=name``.
    config : str or type
        The settings class (a [`Settings`][mfgnet.settings.Settings] dataclass) or a
        ``"module:attribute"`` reference to it (imported only when used).
    solve : str or callable
        The solve function ``solve(problem, config, *, callback=None, workdir=None) ->
        Solution`` or a reference to it.
    description : str
        One line for listings.
    groups : dict of str to str
        Fields of the settings that the command line exposes as top-level config groups,
        with their default option (the neural solver's ``model=``, ``sampler=``,
        ``optim=``), so that sweeps read ``model.width=32,64`` rather than
        ``solver.model.width=...``.
    """

    name: str
    config: str | type
    solve: str | Any
    description: str = ""
    groups: dict[str, str] = field(default_factory=dict)

    @property
    def config_class(self) -> type:
        """The settings class (the reference imported)."""
        return load_reference(self.config)

    @property
    def solve_function(self):
        """The solve function (the reference imported)."""
        return load_reference(self.solve)


_SOLVERS: dict[str, SolverSpec] = {}
_entry_points_loaded = False


def register_solver(spec: SolverSpec, *, replace: bool = False) -> SolverSpec:
    """Add a solver to the registry.

    Parameters
    ----------
    spec : SolverSpec
        The solver.
    replace : bool
        Redefine a name that is registered already (else a different spec under a known
        name is an error; registering the same spec twice is harmless).

    Returns
    -------
    SolverSpec
        ``spec``, so that ``SPEC = register_solver(SolverSpec(...))`` reads well.

    Raises
    ------
    ValueError
        When the name is taken by another spec and ``replace`` is False.
    """
    if not isinstance(spec, SolverSpec):
        raise TypeError(f"register_solver takes a SolverSpec, got {type(spec).__name__}")
    if spec.name in _SOLVERS and not replace and _SOLVERS[spec.name] != spec:
        raise ValueError(f"a solver named {spec.name!r} is registered already")
    _SOLVERS[spec.name] = spec
    return spec


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        spec = ep.load()
        if callable(spec) and not isinstance(spec, SolverSpec):
            spec = spec()
        register_solver(spec, replace=True)


def solver_names() -> list[str]:
    """Names of every registered solver (built-in first, then plug-ins)."""
    _load_entry_points()
    return list(_SOLVERS)


def get_solver(name: str) -> SolverSpec:
    """The solver called ``name``; a clear error lists the known ones."""
    _load_entry_points()
    if name not in _SOLVERS:
        raise ProblemError(f"solver must be one of {solver_names()}, got {name!r}")
    return _SOLVERS[name]


register_solver(SolverSpec(
    "grid", "mfgnet.grid.config:GridSolverConfig", "mfgnet.grid.solver:solve_grid",
    description="finite differences (Achdou–Capuzzo-Dolcetta), Newton; 1D/2D"))
register_solver(SolverSpec(
    "neural", "mfgnet.neural.config:NeuralSolverConfig", "mfgnet.neural.solver:solve_neural",
    description="two networks u(t, x), m(t, x) trained on the HJB and Fokker–Planck residuals",
    groups={"model": "mlp", "sampler": "uniform", "optim": "adam"}))
