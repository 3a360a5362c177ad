"""The distance of a pair to the grid's equilibrium (mfgnet.grid.equilibrium_distance) and its place in the
fixed-point check (mfgnet.neural.equilibrium.with_equilibrium_distance): an exact pair is at the grid's
equilibrium to within the grid's error, a wrong u or m is measured by how wrong it is, and the distance runs only
where it can change the verdict."""

from __future__ import annotations

import pytest

from mfgnet.benchmarks import hopf_cole
from mfgnet.grid.crowd import GapEstimate
from mfgnet.grid.equilibrium_distance import estimated_equilibrium_distance, grid_equilibrium_from
from mfgnet.neural import equilibrium
from mfgnet.problems import ProblemError
from mfgnet.solution import ExactSolution

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_an_exact_pair_is_at_the_grids_equilibrium():
    """B3 on the torus, 100 cells / 100 steps: the extrapolated equilibrium is 0.025 % (m) and 0.16 % (u) off the
    exact pair, its estimated error 0.066 % and 0.30 % (above the true one, as it should be); Newton from the exact
    pair needs a few steps."""
    _, exact = hopf_cole()
    m_gap, u_gap = estimated_equilibrium_distance(exact, 100, 100)
    assert m_gap.gap < m_gap.scheme_error < 1e-3
    assert u_gap.gap < u_gap.scheme_error < 5e-3
    assert (m_gap.cells, m_gap.time_steps) == (100, 100)
    reached = grid_equilibrium_from(exact, 100, 100)
    assert reached.started_from == "the pair" and reached.newton_iterations <= 6
    with pytest.raises(ProblemError, match="multiples of 4"):
        estimated_equilibrium_distance(exact, 102, 100)


@pytest.mark.parametrize("scale_u, shift_m, m_distance, u_distance", [
    (1.1, 0.0, 0.0, 0.10),   # u 10 % too large: the equilibrium's u is the exact one
    (1.0, 0.05, 0.066, 0.0),  # the crowd shifted by 0.05 (m's relative L2 change: 6.6 %)
])
def test_a_pair_off_the_equilibrium_is_measured(scale_u, shift_m, m_distance, u_distance):
    problem, exact = hopf_cole()
    wrong = ExactSolution(problem, lambda t, x: scale_u * exact.value(t, x),
                          lambda t, x: exact.density(t, x + shift_m))
    m_gap, u_gap = estimated_equilibrium_distance(wrong, 100, 100)
    assert m_gap.gap == pytest.approx(m_distance, abs=0.005)
    assert u_gap.gap == pytest.approx(u_distance, abs=0.005)


def test_the_distance_runs_only_where_no_gap_fails_and_refines_what_it_cannot_decide(monkeypatch):
    """A failed gap already vetoes: no distance is solved.  B3's exact pair at tolerance 1 %: u's distance on 32
    cells (1.6 %, its grid's estimated error 2.9 %) cannot decide, so the distance is solved again on the refined
    grid (64 cells: 0.4 %, 0.7 %), which certifies the pair."""
    _, exact = hopf_cole()
    failing = equilibrium.EquilibriumCheck(GapEstimate(0.2, 0.01, 32, 32), GapEstimate(0.01, 0.01, 32, 32), 0.01)
    assert equilibrium.with_equilibrium_distance(exact, failing) is failing
    passing = equilibrium.EquilibriumCheck(GapEstimate(0.01, 0.01, 32, 32), GapEstimate(0.01, 0.01, 32, 32), 0.01)
    monkeypatch.setattr(equilibrium, "CHECK_GRID", {1: (32, 32)})
    monkeypatch.setattr(equilibrium, "REFINED_GRID", {})
    coarse = equilibrium.with_equilibrium_distance(exact, passing)
    assert coarse.verdicts()["equilibrium_u"] == "unresolved" and not coarse.certifies
    assert "equilibrium_u_gap" in coarse.record() and "could not decide" in coarse.unresolved()
    monkeypatch.setattr(equilibrium, "REFINED_GRID", {1: ((64, 64),)})
    refined = equilibrium.with_equilibrium_distance(exact, passing)
    assert refined.certifies and refined.equilibrium_u.cells == 64 and refined.equilibrium_u.gap < 0.01


def test_a_distance_the_grid_cannot_solve_is_said_and_never_certifies(monkeypatch):
    """Where the grid's Newton fails on the refined grid, the coarser grid's undecided distances stand (no
    certificate) and the check says why; where it fails on the first grid there is no distance, and no certificate
    either: two passing gaps alone have certified a pair 46 % off (thirty-eighth session)."""
    import mfgnet.grid.equilibrium_distance as distance

    _, exact = hopf_cole()
    passing = equilibrium.EquilibriumCheck(GapEstimate(0.01, 0.01, 32, 32), GapEstimate(0.01, 0.01, 32, 32), 0.03)
    undecided = (GapEstimate(0.02, 0.05, 32, 32), GapEstimate(0.01, 0.01, 32, 32))
    calls = []

    def fake(solution, cells, steps, solved=None):
        calls.append(cells)
        if len(calls) == 1 and cells == 32:
            return undecided
        raise ProblemError("Newton stalled")

    monkeypatch.setattr(distance, "estimated_equilibrium_distance", fake)
    monkeypatch.setattr(equilibrium, "CHECK_GRID", {1: (32, 32)})
    monkeypatch.setattr(equilibrium, "REFINED_GRID", {1: ((64, 64),)})
    refined_failed = equilibrium.with_equilibrium_distance(exact, passing)
    assert calls == [32, 64] and refined_failed.equilibrium_m == undecided[0] and not refined_failed.certifies
    assert "did not run on 64 cells (Newton stalled)" in refined_failed.summary()
    first_failed = equilibrium.with_equilibrium_distance(exact, passing)
    assert first_failed.equilibrium_m is None and not first_failed.certifies and not first_failed.vetoes
    assert "did not run on 32 cells" in first_failed.record()["equilibrium_distance"]
