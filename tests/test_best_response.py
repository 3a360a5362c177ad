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
    whole = EquilibriumCheck(ok, ok, 0.03, equilibrium_m=ok, equilibrium_u=ok)
    assert decide(False, whole) == (True, "equilibrium check")
    # both gaps without the distances (their Newton solve failed) certify nothing
    assert decide(False, EquilibriumCheck(ok, ok, 0.03)) == (False, None)
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
    assert again["diagnosis"] == row["diagnosis"]  # the residual's part kept, the check's clauses rebuilt
    saved = torch.load(zoo.networks_path("t", "box_bump_1d"), weights_only=True)
    assert set(saved) == {"networks", "config"}


def test_recheck_rewrites_the_diagnosis_under_the_new_verdict(experiment_script):
    """A re-judged row reads as a fresh run would: no diagnosis once it converges, the veto's when its residual
    passes, else the residual's part of the stored text with the new check's clauses in place of the old ones
    (older wording included) and another seed advised where the crowd gap fails."""
    zoo = experiment_script("neural_zoo")
    crowd, value = GapEstimate(0.06, 0.01, 400, 400), GapEstimate(0.02, 0.01, 400, 400)
    check = EquilibriumCheck(crowd, value, 0.03)
    residual_part = "residual 4.4e-01 > tolerance 1.0e-02; dominant term fp; try: more steps"
    stale = residual_part + ("; the crowd check could not resolve this crowd: its grid (64 cells per axis) is "
                             "itself about 2.8% off, so ... tolerance 5%")
    row = {"converged": False, "residual_ok": False, "residual": 0.44, "diagnosis": stale}
    text = zoo.rechecked_diagnosis(row, check, 1e-2)
    assert text.startswith(f"{residual_part}; and {check.summary()}")
    assert "6.0%" in text and "tolerance 3%" in text and "5%" not in text
    assert "another seed" in text  # the crowd gap fails: 6 % > 3 % + 1 %
    assert zoo.rechecked_diagnosis({**row, "converged": True}, check, 1e-2) == ""
    assert zoo.rechecked_diagnosis({**row, "diagnosis": text}, check, 1e-2) == text  # idempotent
    passing = GapEstimate(0.01, 0.01, 400, 400)
    calm = zoo.rechecked_diagnosis(row, EquilibriumCheck(passing, value, 0.03), 1e-2)
    assert "another seed" not in calm and calm.startswith(residual_part)
    vetoed = zoo.rechecked_diagnosis({**row, "residual_ok": True, "residual": 0.008}, check, 1e-2)
    assert vetoed.startswith("residual 8.00e-03 <= tolerance 1.0e-02, but ") and "6.0%" in vetoed
    assert residual_part not in vetoed


def test_a_gap_the_checks_grid_cannot_decide_is_solved_again_on_a_finer_grid(monkeypatch):
    """B3's exact pair on coarse grids (tolerance 3 %): on 24 cells the value gap is 2.8 % with the grid itself
    4.9 % off (no verdict, so no certificate); the check solves that half again on the refined grid (64 cells:
    0.4 %, grid 2.1 % off), where it passes.  The crowd half, decided on 24 cells, is kept."""
    from mfgnet.neural import equilibrium

    problem, exact = hopf_cole()
    monkeypatch.setattr(equilibrium, "CHECK_GRID", {1: (24, 24)})
    monkeypatch.setattr(equilibrium, "REFINED_GRID", {})
    coarse = equilibrium.both_gaps(exact, 0.03)
    assert coarse.verdicts() == {"crowd": "pass", "value": "unresolved"} and not coarse.certifies
    monkeypatch.setattr(equilibrium, "REFINED_GRID", {1: ((64, 64),)})
    refined = equilibrium.both_gaps(exact, 0.03)
    assert refined.verdicts() == {"crowd": "pass", "value": "pass"} and refined.value.cells == 64
    assert refined.crowd.cells == 24
    assert refined.value.gap < 0.01 and refined.value.scheme_error < 0.03
    assert refined.crowd == coarse.crowd
    # A ladder: what the first refinement cannot decide either (24 cells after 16: 2.8 %, grid 4.9 % off) goes on to
    # the next (64 cells), and a decided gap stops the climb (nothing beyond 64 is solved).
    monkeypatch.setattr(equilibrium, "CHECK_GRID", {1: (16, 16)})
    monkeypatch.setattr(equilibrium, "REFINED_GRID", {1: ((24, 24), (64, 64), (4096, 4096))})
    climbed = equilibrium.both_gaps(exact, 0.03)
    assert climbed.verdicts() == {"crowd": "pass", "value": "pass"} and climbed.value.cells == 64
    assert climbed.value.gap == pytest.approx(refined.value.gap, rel=1e-9) and climbed.crowd.cells == 16
