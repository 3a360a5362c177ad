"""Bad grid-solver input gets a ProblemError naming the field and the allowed range."""

from __future__ import annotations

import pytest
import torch

from mfgnet.benchmarks import ergodic_torus
from mfgnet.grid import GridSolverConfig, solve_grid, solve_hjb
from mfgnet.problems import MFGProblem, ProblemError, Torus


@pytest.mark.parametrize("field, value, message", [
    ("cells", 4, "grid too coarse"),
    ("cells", 16.5, "cells"),
    ("time_steps", 1, "time_steps"),
    ("method", "gradient_descent", "['newton', 'picard', 'fictitious_play']"),
    ("tol", 0.0, "tol"),
    ("max_iterations", 0, "max_iterations"),
    ("picard_warmup", -1, "picard_warmup"),
    ("damping", 1.5, "(0.0, 1.0]"),
    ("damping", float("nan"), "finite"),
    ("tol", float("inf"), "finite"),
    ("order", 3, "[1, 2]"),
    ("verbose", "yes", "verbose"),
])
def test_bad_config_values(field, value, message):
    with pytest.raises(ProblemError, match=field) as info:
        GridSolverConfig.from_dict({field: value})
    assert message in str(info.value)


def test_unknown_config_key_is_named():
    with pytest.raises(ProblemError, match="celss"):
        GridSolverConfig.from_dict({"celss": 64})


def test_overrides_are_validated():
    with pytest.raises(ProblemError, match="grid too coarse"):
        solve_grid(ergodic_torus(1).problem, cells=2)


def test_non_radial_hamiltonian_is_refused():
    problem = MFGProblem(Torus(1), None, 0.5, hamiltonian=lambda x, p: (p ** 4).sum(-1),
                         coupling=lambda t, x, m: torch.log(m))
    with pytest.raises(ProblemError, match="needs a RadialHamiltonian"):
        solve_grid(problem, cells=16)


def test_solve_hjb_checks_the_density_shape():
    bench = ergodic_torus(1)
    sol = solve_grid(bench.problem, cells=16)
    with pytest.raises(ProblemError, match="16 nodes"):
        solve_hjb(bench.problem, sol.grid, sol.m[:8])
