"""A benchmark is a problem together with its exact solution."""

from __future__ import annotations

from typing import NamedTuple

from mfgnet.problems import MFGProblem
from mfgnet.solution import ExactSolution


class Benchmark(NamedTuple):
    problem: MFGProblem
    exact: ExactSolution
