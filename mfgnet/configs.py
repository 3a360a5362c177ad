"""Structured (typed) configs for Hydra, derived from the code they configure.

A problem's schema comes from its builder's signature, a solver's from its config
dataclass, so there is one source of truth and a typo or wrong type in an override is
rejected by Hydra before anything runs::

    $ python -m mfgnet solver.cells=abc
    Value 'abc' of type 'str' could not be converted to Integer  full_key: solver.cells

Each YAML in ``conf/problem`` and ``conf/solver`` starts from ``<name>_schema``.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import typing
from pathlib import Path

from hydra.core.config_store import ConfigStore

from mfgnet.catalog import PROBLEMS
from mfgnet.solvers import SOLVERS, solver_entry

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = str(ROOT / "conf")


def problem_schema(name: str) -> type:
    """A dataclass with ``name`` plus the builder's keyword arguments (types and defaults)."""
    builder = PROBLEMS[name]
    hints = typing.get_type_hints(builder)
    fields = [("name", str, dataclasses.field(default=name))]
    for param in inspect.signature(builder).parameters.values():
        fields.append((param.name, hints.get(param.name, typing.Any), dataclasses.field(default=param.default)))
    return dataclasses.make_dataclass(f"{name.title().replace('_', '')}ProblemConfig", fields)


# Parts of the neural solver's settings chosen as top-level groups (model=, sampler=, optim=),
# so that sweeps read ``model.width=32,64`` rather than ``solver.model.width=...``.
NEURAL_GROUPS = ("model", "sampler", "optim")


def solver_schema(name: str) -> type:
    """A dataclass with ``name`` plus the fields of the solver's own config dataclass
    (for the neural solver, without the fields that are groups of their own)."""
    config_cls, _ = solver_entry(name)
    skip = NEURAL_GROUPS if name == "neural" else ()
    return _copy_dataclass(config_cls, f"{name.title()}SolverSchema", extra=[("name", str, name)], skip=skip)


def group_schema(group: str) -> type:
    """The schema of a neural-solver group (model, sampler, optim) from its dataclass."""
    config_cls, _ = solver_entry("neural")
    kind = typing.get_type_hints(config_cls)[group]
    return _copy_dataclass(kind, f"{group.title()}Schema")


def _copy_dataclass(cls: type, new_name: str, extra=(), skip=()) -> type:
    hints = typing.get_type_hints(cls)
    fields = [(n, t, dataclasses.field(default=d)) for n, t, d in extra]
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):  # nested settings: copy so the schema stays plain data
            nested = _copy_dataclass(kind, f"{new_name}{f.name.title()}")
            fields.append((f.name, nested, dataclasses.field(default_factory=nested)))
        elif f.default_factory is not dataclasses.MISSING:
            fields.append((f.name, kind, dataclasses.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, kind, dataclasses.field(default=f.default)))
    return dataclasses.make_dataclass(new_name, fields)


def register_configs() -> None:
    """Store every schema in Hydra's ConfigStore (idempotent) and point Hydra's search path
    at ``experiments/configs`` (conf/config.yaml reads ``MFGNET_ROOT``)."""
    os.environ.setdefault("MFGNET_ROOT", str(ROOT))
    store = ConfigStore.instance()
    for name in PROBLEMS:
        store.store(group="problem", name=f"{name}_schema", node=problem_schema(name))
    for name in SOLVERS:
        try:
            store.store(group="solver", name=f"{name}_schema", node=solver_schema(name))
        except ImportError:  # a solver whose optional dependencies are missing
            continue
    for group in NEURAL_GROUPS:
        store.store(group=group, name=f"{group}_schema", node=group_schema(group))
