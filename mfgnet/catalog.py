"""Problems by name, as the Hydra configs and the command line refer to them."""

from __future__ import annotations

from collections.abc import Callable

from mfgnet.benchmarks import ergodic_torus, hopf_cole, lq_gaussian
from mfgnet.problems import MFGProblem, ProblemError
from mfgnet.problems.examples import crowd_aversion
from mfgnet.solution import ExactSolution


def _no_exact(builder: Callable[..., MFGProblem]) -> Callable[..., tuple[MFGProblem, None]]:
    return lambda **params: (builder(**params), None)


PROBLEMS: dict[str, Callable[..., tuple[MFGProblem, ExactSolution | None]]] = {
    "ergodic_torus": lambda **p: tuple(ergodic_torus(**p)),
    "lq_gaussian": lambda **p: tuple(lq_gaussian(**p)),
    "hopf_cole": lambda **p: tuple(hopf_cole(**p)),
    "crowd_aversion": _no_exact(crowd_aversion),
}


def build_problem(name: str, **params) -> tuple[MFGProblem, ExactSolution | None]:
    """The problem called ``name`` with ``params``, and its exact solution (or ``None``)."""
    if name not in PROBLEMS:
        raise ProblemError(f"problem.name must be one of {sorted(PROBLEMS)}, got {name!r}")
    try:
        return PROBLEMS[name](**params)
    except TypeError as exc:  # an unknown or missing parameter in the config
        raise ProblemError(f"bad parameters for problem {name!r}: {exc}") from exc
