"""The crowd a feedback produces (mfgnet.grid.crowd): an exact solution is consistent with its
own feedback, a wrong pair is not, and the scheme conserves mass and positivity for any policy."""

from __future__ import annotations

import math

import pytest
import torch

from mfgnet.benchmarks import ergodic_torus, hopf_cole
from mfgnet.grid.crowd import crowd_gap, crowd_of_policy, estimated_crowd_gap
from mfgnet.problems import ProblemError
from mfgnet.problems.examples import crowd_aversion
from mfgnet.problems.zoo import exact_solution
from mfgnet.solution import ExactSolution


def test_an_exact_solution_produces_its_own_crowd():
    problem, exact = hopf_cole()  # B3 on the torus
    assert crowd_gap(exact, cells=200, time_steps=200) < 5e-3  # 1.9e-3: the scheme's own error


def test_the_extrapolated_check_removes_and_estimates_the_grids_own_error():
    """On R's wide bounding box (lq_offset_1d: B2 with a crowd of std 0.22 travelling on [-1, 5])
    the 200-cell crowd of the exact policy is 6 % off the exact m, more than the solver's 5 %
    tolerance; the extrapolation from 200 and 100 cells is 1.8 % off, and the scheme's estimated
    error is within a factor 1.5 of its true one.  On the torus (B3) both are round-off small."""
    exact = exact_solution("lq_offset_1d")
    plain = crowd_gap(exact, cells=200, time_steps=200)
    check = estimated_crowd_gap(exact, cells=200, time_steps=200)
    assert plain > 0.05  # the grid's own error: the plain check would fail the exact solution
    assert check.gap < 0.025
    assert plain / 1.5 < check.scheme_error < 1.5 * plain
    problem, b3 = hopf_cole()
    check = estimated_crowd_gap(b3, cells=100, time_steps=100)
    assert check.gap < 1e-3 and check.scheme_error < 1e-2  # periodic interpolation of the coarse crowd
    with pytest.raises(ProblemError, match="must be even"):
        estimated_crowd_gap(b3, cells=101, time_steps=100)


def test_a_density_that_u_does_not_steer_is_caught():
    problem, exact = hopf_cole()
    # the same m with u doubled: the feedback moves the crowd twice as fast as m says
    wrong = ExactSolution(problem, lambda t, x: 2 * exact.value(t, x), lambda t, x: exact.density(t, x))
    assert crowd_gap(wrong, cells=200, time_steps=200) > 0.05
    assert estimated_crowd_gap(wrong, cells=200, time_steps=200).gap > 0.05


def test_mass_and_positivity_for_any_policy_on_a_box():
    problem = crowd_aversion(dim=2, viscosity=0.01)

    def wild(t, x):  # fast, rotating, pushing into the faces
        return torch.stack([5 * torch.sin(7 * x[:, 1] + 3 * t[:, 0]), -4 * torch.cos(5 * x[:, 0])], -1) + 2.0

    crowd = crowd_of_policy(problem, wild, cells=24, time_steps=30)
    assert crowd.mass_error < 1e-12
    assert crowd.density.min() >= -1e-14
    assert crowd.density.shape == (31, 24 * 24) and math.isclose(crowd.times[-1], 1.0)


def test_the_crowd_scheme_refuses_what_it_cannot_do():
    with pytest.raises(ProblemError, match="ergodic"):
        crowd_of_policy(ergodic_torus(1).problem, lambda t, x: x)
    with pytest.raises(ProblemError, match="dimension 1 or 2"):
        crowd_of_policy(crowd_aversion(dim=3), lambda t, x: x)
