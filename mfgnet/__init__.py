"""mfgnet: mean field games solved by physics-informed networks and validated by grids."""

from mfgnet.problems import Box, Euclidean, MFGProblem, ProblemError, Torus
from mfgnet.solution import Diagnostics, ExactSolution, Solution

__version__ = "0.1.0"

__all__ = ["Box", "Diagnostics", "Euclidean", "ExactSolution", "MFGProblem", "ProblemError", "Solution",
           "Torus", "__version__"]
