"""Problems by name, as the Hydra configs and the command line refer to them.

Each entry is a builder function whose keyword arguments (names, types, defaults) are the
problem's config fields: :mod:`mfgnet.configs` derives the structured config from them.
"""

from __future__ import annotations

from collections.abc import Callable

from mfgnet.benchmarks import Benchmark, ergodic_torus, hopf_cole, lq_gaussian
from mfgnet.problems import MFGProblem, ProblemError
from mfgnet.problems.examples import crowd_aversion
from mfgnet.solution import ExactSolution

PROBLEMS: dict[str, Callable[..., Benchmark | MFGProblem]] = {
    "ergodic_torus": ergodic_torus,
    "lq_gaussian": lq_gaussian,
    "hopf_cole": hopf_cole,
    "crowd_aversion": crowd_aversion,
}


def build_problem(name: str, **params) -> tuple[MFGProblem, ExactSolution | None]:
    """The problem called ``name`` with ``params``, and its exact solution (or ``None``)."""
    if name not in PROBLEMS:
        raise ProblemError(f"problem.name must be one of {sorted(PROBLEMS)}, got {name!r}")
    try:
        built = PROBLEMS[name](**params)
    except TypeError as exc:  # an unknown or missing parameter in the config
        raise ProblemError(f"bad parameters for problem {name!r}: {exc}") from exc
    if isinstance(built, Benchmark):
        return built.problem, built.exact
    return built, None
