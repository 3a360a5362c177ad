"""The fixed-point check of a solution (mfgnet.grid.best_response, mfgnet.neural.equilibrium): an exact
solution is the best response to its own crowd, a wrong u is caught, the verdict follows the grid's own
error, and saved networks give the same solution and the same check again."""

from __future__ import annotations

import pytest
import torch

from mfgnet.benchmarks import hopf_cole
from mfgnet.grid.best_response import estimated_value_gap
from mfgnet.grid.crowd import GapEstimate, estimated_crowd_gap
from mfgnet.neural.equilibrium import EquilibriumCheck, decide, verdict
from mfgnet.problems import ProblemError
from mfgnet.problems.zoo import exact_solution
from mfgnet.solution import ExactSolution

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_an_exact_solution_is_the_best_response_to_its_own_crowd():
    """B3 on the torus: the 100-cell best response is ~1.4 % off u (the grid's own error, first order), the
    extrapolation from 100 and 50 cells 0.16 %; on R's wide box (lq_offset_1d, weighted by m) 0.04 %."""
    problem, exact = hopf_cole()
    check = estimated_value_gap(exact, cells=100, time_steps=100)
    assert check.gap < 5e-3 < check.scheme_error < 3e-2
    lq = exact_solution("lq_offset_1d")
    assert estimated_value_gap(lq, cells=200, time_steps=200).gap < 5e-3
    # weighted by the crowd of u's feedback instead of m (the solver's choice on R^d): the same verdict
    crowd = estimated_crowd_gap(lq, cells=200, time_steps=200).field
    assert estimated_value_gap(lq, cells=200, time_steps=200, weight=crowd).gap < 5e-3
    with pytest.raises(ProblemError, match="weight has shape"):
        estimated_value_gap(lq, cells=200, time_steps=200, weight=crowd[1:])
    with pytest.raises(ProblemError, match="must be even"):
        estimated_value_gap(exact, cells=101, time_steps=100)


def test_a_value_that_is_not_the_best_response_is_caught():
    problem, exact = hopf_cole()
    # the same m with u raised by 10 %: the best response to m is still the exact u
    wrong = ExactSolution(problem, lambda t, x: 1.1 * exact.value(t, x), lambda t, x: exact.density(t, x))
    assert estimated_value_gap(wrong, cells=100, time_steps=100).gap == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("gap, scheme_error, expected", [
    (0.02, 0.01, "pass"), (0.03, 0.03, "pass"),        # gap and grid both within the tolerance
    (0.02, 0.04, "unresolved"),                        # small gap, but the grid cannot resolve 3 %
    (0.05, 0.03, "unresolved"), (0.061, 0.03, "fail"),  # beyond the tolerance plus the grid's error
])
def test_a_gap_passes_fails_or_cannot_decide_against_its_grids_error(gap, scheme_error, expected):
    assert verdict(GapEstimate(gap, scheme_error, 400, 400), 0.03) == expected


def test_converged_needs_the_residual_or_both_gaps_and_no_failed_gap():
    ok, bad, open_ = GapEstimate(0.01, 0.01, 8, 8), GapEstimate(0.2, 0.01, 8, 8), GapEstimate(0.02, 0.05, 8, 8)
    assert decide(True, None) == (True, "residual")
    assert decide(False, None) == (False, None)
    assert decide(False, EquilibriumCheck(ok, ok, 0.03)) == (True, "equilibrium check")
    assert decide(True, EquilibriumCheck(bad, ok, 0.03)) == (False, None)
    assert decide(True, EquilibriumCheck(ok, bad, 0.03)) == (False, None)
    assert decide(True, EquilibriumCheck(open_, ok, 0.03)) == (True, "residual")
    assert decide(False, EquilibriumCheck(open_, ok, 0.03)) == (False, None)
    # without the value check (an MFG of controls) the crowd alone never certifies
    assert decide(False, EquilibriumCheck(ok, None, 0.03, "skipped")) == (False, None)


def test_saved_networks_give_the_same_solution_and_check(tmp_path, monkeypatch, experiment_script):
    """The zoo keeps each run's networks; --recheck rebuilds the solution from them and reaches the same
    gaps and verdict as the run itself."""
    zoo = experiment_script("neural_zoo")
    monkeypatch.setattr(zoo, "OUT", tmp_path)
    (tmp_path / "references").mkdir()
    (tmp_path / "references" / "box_bump_1d.npz").symlink_to(
        zoo.ROOT / "results" / "neural_zoo" / "references" / "box_bump_1d.npz")
    config = {"progress": False, "steps": 30, "dtype": "float64", "model": {"width": 16, "depth": 2},
              "sampler": {"n_interior": 64, "n_boundary": 16, "n_quadrature": 32, "time_slices": 4}}
    row = zoo.run("box_bump_1d", config, None, tag="t")
    assert row["value_gap"] is not None and row["converged_by"] is None
    (tmp_path / "runs" / "t").mkdir(parents=True, exist_ok=True)
    (tmp_path / "runs" / "t" / "box_bump_1d.json").write_text(zoo.json.dumps(row))
    again, trained_with = zoo.recheck("box_bump_1d", "t")
    assert trained_with == config
    for key in ("crowd_gap", "value_gap", "crowd_scheme_error", "value_scheme_error"):
        assert again[key] == pytest.approx(row[key], rel=1e-9)
    assert again["converged"] is row["converged"]
    saved = torch.load(zoo.networks_path("t", "box_bump_1d"), weights_only=True)
    assert set(saved) == {"networks", "config"}
