"""A benchmark is a problem together with its exact solution."""

from __future__ import annotations

from typing import NamedTuple

from mfgnet.problems import MFGProblem
from mfgnet.solution import ExactSolution


class Benchmark(NamedTuple):
    """A problem and its exact solution; unpacks as ``problem, exact = ergodic_torus()``.

    Attributes
    ----------
    problem : MFGProblem
        The mean field game.
    exact : ExactSolution
        Its exact solution (u, m and, for ergodic problems, λ in closed form).
    """

    problem: MFGProblem
    exact: ExactSolution
