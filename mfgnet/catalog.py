"""Problems by name, as the Hydra configs and the command line refer to them.

Each entry names a builder function (``"module:function"``) whose keyword arguments
(names, types, defaults) are the problem's config fields, the one place they are written.
`problem_parameters` reads them from the builder's source, not by importing it, so
that composing and checking a config (and ``--help``) never imports torch.
"""

from __future__ import annotations

import ast
import importlib.util
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from mfgnet.problems.validation import ProblemError
from mfgnet.registry import load_reference

PROBLEMS: dict[str, str] = {
    "ergodic_torus": "mfgnet.benchmarks.ergodic_torus:ergodic_torus",
    "lq_gaussian": "mfgnet.benchmarks.lq_gaussian:lq_gaussian",
    "hopf_cole": "mfgnet.benchmarks.hopf_cole:hopf_cole",
    "log_congestion": "mfgnet.benchmarks.log_congestion:log_congestion",
    "crowd_aversion": "mfgnet.problems.examples:crowd_aversion",
    "separable_crowd": "mfgnet.benchmarks.separable_crowd:separable_crowd",
    "separable_crowd_2d": "mfgnet.benchmarks.separable_crowd:separable_crowd_2d",
    "two_populations": "mfgnet.benchmarks.two_populations:two_populations",
    "segregation": "mfgnet.problems.examples:segregation",
    "trade_crowding": "mfgnet.benchmarks.trade_crowding:trade_crowding",
}

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


@dataclass(frozen=True)
class Parameter:
    """One keyword argument of a problem builder."""

    name: str
    kind: Any
    default: Any


@cache
def problem_parameters(name: str) -> tuple[tuple[Parameter, ...], str]:
    """The builder's keyword parameters and the first line of its docstring."""
    node = _builder_source(name)
    args = node.args
    defaults = [None] * (len(args.args) - len(args.defaults)) + list(args.defaults)
    params = []
    for arg, default in [*zip(args.args, defaults), *zip(args.kwonlyargs, args.kw_defaults)]:
        if default is None:
            raise TypeError(f"problem builder {PROBLEMS[name]}: parameter {arg.arg!r} needs a default")
        params.append(Parameter(arg.arg, _annotation(arg.annotation), ast.literal_eval(default)))
    doc = (ast.get_docstring(node) or "").strip().splitlines()
    return tuple(params), (doc[0] if doc else "")


def _builder_source(name: str) -> ast.FunctionDef:
    module, _, function = PROBLEMS[name].partition(":")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ProblemError(f"problem {name!r}: module {module} not found")
    with open(spec.origin, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), filename=spec.origin)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return node
    raise ProblemError(f"problem {name!r}: no function {function} in {module}")


def _annotation(node: ast.expr | None) -> Any:
    """``int`` / ``float`` / ``str`` / ``bool`` and their ``| None`` forms (else Any)."""
    if isinstance(node, ast.Name) and node.id in _TYPES:
        return _TYPES[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted annotation
        return _annotation(ast.parse(node.value, mode="eval").body)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        sides = [node.left, node.right]
        nones = [s for s in sides if isinstance(s, ast.Constant) and s.value is None]
        if len(nones) == 1:
            (other,) = [s for s in sides if s is not nones[0]]
            return typing.Optional[_annotation(other)]  # noqa: UP045 (OmegaConf reads Optional, not X | None)
    return Any


def build_problem(name: str, **params):
    """The problem called ``name`` with ``params``, and its exact solution (or ``None``)."""
    if name not in PROBLEMS:
        raise ProblemError(f"problem.name must be one of {sorted(PROBLEMS)}, got {name!r}")
    known = {p.name for p in problem_parameters(name)[0]}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ProblemError(f"unknown parameter(s) {['problem.' + k for k in unknown]} of problem {name!r}; "
                           f"allowed: {sorted('problem.' + k for k in known)}")
    built = load_reference(PROBLEMS[name])(**params)
    from mfgnet.benchmarks.base import Benchmark  # imported here: it imports torch
    from mfgnet.benchmarks.two_populations import PopulationsBenchmark

    if isinstance(built, (Benchmark, PopulationsBenchmark)):
        return built.problem, built.exact
    return built, None
