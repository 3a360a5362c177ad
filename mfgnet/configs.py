"""Hydra configs derived from the code they configure: one source of truth for every default.

Every option of the groups ``problem=``, ``solver=``, ``model=``, ``sampler=``, ``optim=``
and ``logger=`` is a structured config stored in Hydra's ConfigStore, built from

* a problem builder's signature (`mfgnet.catalog`),
* a registered solver's settings dataclass ([`mfgnet.registry`][mfgnet.registry]), and the nested
  settings it exposes as groups of their own (the neural ``model``/``sampler``/``optim``),
* the loggers' settings (`mfgnet.loggers`),

so a typo or a wrong type in an override is rejected by Hydra before anything runs::

    $ python -m mfgnet solver.cells=abc
    Value 'abc' of type 'str' could not be converted to Integer  full_key: solver.cells

The YAML files in ``conf/`` are presets that say only what they change (``model=fourier``
sets ``fourier_features``); a test checks that none restates a default.  Nothing here
imports torch: composing a config, ``--help`` and a typo cost no torch import.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from mfgnet.catalog import PROBLEMS, problem_parameters
from mfgnet.loggers import LOGGER_CONFIGS
from mfgnet.registry import get_solver, solver_names

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(installed: str, checkout: str) -> Path:
    """A folder of configs: inside the installed package (a wheel ships them there), or in
    the source checkout beside the package (an editable install or a clone)."""
    for candidate in (_PACKAGE / installed, _PACKAGE.parent / checkout):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"mfgnet: config folder {installed!r} not found in {_PACKAGE} or its checkout")


CONFIG_DIR = str(_data_dir("conf", "conf"))
AGENTS_CONFIG_DIR = str(Path(CONFIG_DIR) / "agents")
EXPERIMENT_DIR = str(_data_dir("experiment_configs", "experiments/configs"))


def problem_schema(name: str) -> type:
    """A dataclass with ``name`` plus the builder's keyword arguments (types and defaults)."""
    params, _ = problem_parameters(name)
    fields = [("name", str, dataclasses.field(default=name))]
    fields += [(p.name, p.kind, dataclasses.field(default=p.default)) for p in params]
    return dataclasses.make_dataclass(f"{name.title().replace('_', '')}Problem", fields)


def solver_schema(name: str) -> type:
    """A dataclass with ``name`` plus the fields of the solver's settings dataclass, without
    the fields that are config groups of their own."""
    spec = get_solver(name)
    return schema_of(spec.config_class, f"{name.title()}Solver", extra=[("name", str, name)], skip=tuple(spec.groups))


def schema_of(cls: type, new_name: str, extra=(), skip=()) -> type:
    """A plain-data copy of a settings dataclass (nested settings copied too), for Hydra."""
    hints = typing.get_type_hints(cls)
    fields = [(n, t, dataclasses.field(default=d)) for n, t, d in extra]
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            nested = schema_of(kind, f"{new_name}{f.name.title()}")
            fields.append((f.name, nested, dataclasses.field(default_factory=nested)))
        elif f.default_factory is not dataclasses.MISSING:
            fields.append((f.name, kind, dataclasses.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, kind, dataclasses.field(default=f.default)))
    return dataclasses.make_dataclass(new_name, fields)


def register_configs() -> None:
    """Store every option in Hydra's ConfigStore (idempotent) and the resolver that points
    Hydra's search path at the experiment recipes."""
    if not OmegaConf.has_resolver("mfgnet.experiment_dir"):
        OmegaConf.register_new_resolver("mfgnet.experiment_dir", lambda: EXPERIMENT_DIR)
    store = ConfigStore.instance()
    for name in PROBLEMS:
        store.store(group="problem", name=name, node=problem_schema(name))
    for name in solver_names():
        spec = get_solver(name)
        store.store(group="solver", name=name, node=solver_schema(name))
        hints = typing.get_type_hints(spec.config_class)
        for group, default_option in spec.groups.items():
            store.store(group=group, name=default_option, node=schema_of(hints[group], f"{group.title()}Group"))
    for name, cls in LOGGER_CONFIGS.items():
        schema = schema_of(cls, f"{name.title()}Logger", extra=[("name", str, name)])
        store.store(group="logger", name=name, node=schema)
