"""The fixed-point check of trained networks: is (u, m) an equilibrium, measured on a grid?

An MFG equilibrium is a pair in which u is the value of the best response to the crowd m and m is
the crowd that u's feedback produces.  For time-dependent problems in d <= 2 the solver checks both
halves on a grid, with nothing of its own training in the loop:

* the crowd gap: m against the crowd that u's feedback produces from m0
  (`mfgnet.grid.crowd.estimated_crowd_gap`, Fokker–Planck under u's feedback);
* the value gap: u against the value of the best response to m
  (`mfgnet.grid.best_response.estimated_value_gap`, HJB for m);
* where neither gap fails, the distance to the grid's equilibrium: m and u against the equilibrium the grid
  solver's Newton iteration reaches from the pair (`mfgnet.grid.equilibrium_distance`).  Both gaps can be small
  while the pair is far off, where the fixed-point map amplifies: on the zoo's lq_terminal_pull_1d both passed
  (crowd 0.2 %, value 0.6-0.8 %) with m 4.6-8.8 % off the exact m, and the run was certified; the distance there
  reads 4.4 / 9.3 / 6.2 % on seeds 0 / 1 / 2 and vetoes all three (thirty-seventh session).  It runs only where
  it can change the answer (a failed gap already vetoes), at about 1-5 s in 1D and 17 s in 2D.  A certificate
  needs all four to pass: where the grid's Newton cannot reach an equilibrium (from the pair or cold), there is no
  distance and no certificate (a narrower neighbour of that row, 46 % off in m, passed both gaps while Newton
  failed; thirty-eighth session).

Each is a relative L2 distance over space-time with the grid's own error removed (Richardson from
the grid and its half) and estimated (``scheme_error``; for the distances from the quarter grid too,
the extrapolation's own error).  Against ``tolerance`` a gap *passes* when it
and its grid's error are both within the tolerance, *fails* when it exceeds the tolerance plus that
error (the pair is off, whatever the grid's error), and is *unresolved* in between.  In 1D an unresolved
gap is solved again on a grid twice as fine, which halves the grid's error, and again on one four times as fine
where that still cannot decide (:data:`REFINED_GRID`).

Why it decides `converged` beside the PDE residual: the residual's size follows the problem's scale
and the thin layers it peaks in (a narrow m0 at t = 0+), not the error.  On the zoo's time-dependent
rows that are 0.2-2.7 % off the reference it read 0.05-0.54 on all but one (lq_offset_1d, 0.0098),
on the rows 4-27 % off 0.44-1.3: its 1e-2 tolerance passed one of the 40 time-dependent runs (20 rows, two
seeds) that met the targets.  The two gaps follow the errors
themselves (seed 1): box_narrow_far_1d m 1.41 % / u 0.62 % off the reference, crowd gap 1.62 %, value
gap 0.66 %; torus_power_two_1d m 10.8 % / u 1.46 %, gaps 17.0 % / 1.48 %; box_wall_push_2d m 26.9 % /
u 5.9 %, gaps 48 % / 2.3 % (results/neural_zoo/means.md, thirty-third session).  A failed gap also
vetoes a residual that passes: the residual on fresh points cannot see a crowd that jumps at t ≈ 0
(the neural social optimum of crowd_aversion ended at residual 0.0037 with m uniform from t = 0.05 on
and a crowd gap of 0.52; results/price_of_anarchy/).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mfgnet.grid.crowd import GapEstimate
from mfgnet.problems import ProblemError

# Cells per axis and time steps of the check's finer grid (its half is solved too).  1D: 400 / 400,
# where 200 / 200 left the crowd's own error at 4 % on a narrow crowd (box_narrow_far_1d; 2.3 % at
# 400, 1.2 % at 800, the extrapolated gap 1.62-1.66 % on all three), 3-7 s for both checks at load 2-3.
# 2D: 64² / 80, 7 s (crowd) and 13-17 s (value); 128² would take minutes.
CHECK_GRID = {1: (400, 400), 2: (64, 80)}
# 1D: a gap the check's grid cannot decide is solved again on twice the cells and steps, which halves the
# grid's own error: on the zoo's lq_offset_1d (R's wide box) the crowd of the exact policy is 0.58 % off
# with the grid 3.3 % off at 400 (no verdict at 3 %), 0.17 % with 1.5 % at 800.  It costs 6 s (crowd) and
# 4 s (value) for saved r_two_crowds_1d networks at load 1-2 (2 s each at 400).  What 800 cannot decide either is
# solved on 1600 / 1600: on lq_narrow_1d (a crowd of std 0.1 on R's wide box, ν = 0.02) the exact pair's crowd gap is
# 0.47 % with the grid 4.0 % off at 800 and 0.12 % with 2.0 % at 1600, its distance to the grid's equilibrium 2.2 %
# with 3.7 % at 800 and 0.70 % with 1.5 % at 1600 (no verdict at 3 % on 800, a pass on 1600; the equilibrium's three
# Newton solves 34 s at load 3).  2D's next grid would take minutes.  The ladder, finest last, per dimension:
REFINED_GRID = {1: ((800, 800), (1600, 1600))}

_WHAT = {"crowd": ("m", "the crowd that u's feedback produces"),
         "value": ("u", "the value of the best response to m"),
         "equilibrium_m": ("m", "the grid's equilibrium density (Newton from this pair)"),
         "equilibrium_u": ("u", "the grid's equilibrium value (Newton from this pair)")}


_CHECK_NAME = {"crowd": "crowd check", "value": "value check", "equilibrium_m": "distance check of m",
               "equilibrium_u": "distance check of u"}


def verdict(gap: GapEstimate, tolerance: float) -> str:
    """"pass", "fail" or "unresolved" for one gap against ``tolerance`` (see the module's docstring)."""
    if gap.gap <= tolerance and gap.scheme_error <= tolerance:
        return "pass"
    if gap.gap > tolerance + gap.scheme_error:
        return "fail"
    return "unresolved"


@dataclass
class EquilibriumCheck:
    """Both gaps of a solution (``value`` None where the grid cannot solve the problem's HJB, said in
    ``skipped``), the distances of its m and u to the grid's equilibrium (``equilibrium_m`` / ``equilibrium_u``;
    None where they did not run: a gap failed, or the grid could not solve the game, said in
    ``equilibrium_skipped``) and the tolerance they were judged against."""

    crowd: GapEstimate
    value: GapEstimate | None
    tolerance: float
    skipped: str | None = None
    equilibrium_m: GapEstimate | None = None
    equilibrium_u: GapEstimate | None = None
    equilibrium_skipped: str | None = None

    def gaps(self) -> dict[str, GapEstimate]:
        pairs = (("crowd", self.crowd), ("value", self.value), ("equilibrium_m", self.equilibrium_m),
                 ("equilibrium_u", self.equilibrium_u))
        return {k: g for k, g in pairs if g is not None}

    def verdicts(self) -> dict[str, str]:
        return {k: verdict(g, self.tolerance) for k, g in self.gaps().items()}

    @property
    def certifies(self) -> bool:
        """Both gaps and both distances to the grid's equilibrium pass: the pair is an equilibrium to within the
        tolerance.  A distance that did not run (the grid's Newton failed from the pair and cold) leaves no
        certificate: both gaps passing is not enough (a narrow crowd on R with a strong terminal pull, 46 % off in
        m, passed both gaps while the grid's Newton failed; results/neural_zoo/means.md, thirty-eighth session)."""
        return (self.value is not None and self.equilibrium_m is not None and self.equilibrium_u is not None
                and all(v == "pass" for v in self.verdicts().values()))

    @property
    def vetoes(self) -> bool:
        """Some gap fails: the pair is not an equilibrium to within the tolerance."""
        return "fail" in self.verdicts().values()

    def failures(self) -> str:
        """One clause per failed gap ("m is 12.0% off the crowd that u's feedback produces ...")."""
        return "; ".join(self._clause(k) for k, v in self.verdicts().items() if v == "fail")

    def unresolved(self) -> str:
        """One clause per gap the check's grid could not decide."""
        parts = []
        for k, v in self.verdicts().items():
            if v == "unresolved":
                g = self.gaps()[k]
                what, of = _WHAT[k]
                parts.append(f"the {_CHECK_NAME[k]} could not decide: its grid ({g.cells} cells per axis, "
                             f"{g.time_steps} steps, on the problem's bounding box) is itself about "
                             f"{g.scheme_error:.1%} off, so "
                             f"{what}'s gap of {g.gap:.1%} to {of} is no verdict at tolerance {self.tolerance:.0%}; "
                             "a grid solve (solver=grid, finer cells) checks it")
        return "; ".join(parts)

    def summary(self) -> str:
        """Both gaps in one sentence, for logs and the diagnosis."""
        parts = [self._clause(k) for k in self.gaps()]
        parts += [s for s in (self.skipped, self.equilibrium_skipped) if s]
        return "; ".join(parts)

    def _clause(self, kind: str) -> str:
        g = self.gaps()[kind]
        what, of = _WHAT[kind]
        return (f"{what} is {g.gap:.1%} (relative L2) off {of} (tolerance {self.tolerance:.0%}; the check's grid "
                f"is itself about {g.scheme_error:.1%} off)")

    def record(self) -> dict:
        """The numbers for ``diagnostics.extra``."""
        out = {"crowd_gap": self.crowd.gap, "crowd_scheme_error": self.crowd.scheme_error,
               "equilibrium_tolerance": self.tolerance, "equilibrium_verdicts": self.verdicts()}
        if self.value is not None:
            out.update(value_gap=self.value.gap, value_scheme_error=self.value.scheme_error)
        if self.skipped:
            out["value_check"] = self.skipped
        for kind in ("equilibrium_m", "equilibrium_u"):
            g = getattr(self, kind)
            if g is not None:
                out.update({f"{kind}_gap": g.gap, f"{kind}_scheme_error": g.scheme_error})
        if self.equilibrium_skipped:
            out["equilibrium_distance"] = self.equilibrium_skipped
        return out


def decide(residual_ok: bool, check: EquilibriumCheck | None) -> tuple[bool, str | None]:
    """``converged`` and what decided it ("residual", "equilibrium check" or None) from the residual
    check (finite, within its tolerance, no NaN stop) and the fixed-point check (None where it does
    not run): the residual, unless a gap fails; or both gaps passing, whatever the residual."""
    if residual_ok and (check is None or not check.vetoes):
        return True, "residual"
    if check is not None and check.certifies:
        return True, "equilibrium check"
    return False, None


def applies(problem, tolerance: float | None) -> bool:
    """Whether the check runs: a tolerance is set, the problem is time-dependent and d <= 2."""
    return tolerance is not None and not problem.is_ergodic and problem.dim in CHECK_GRID


def equilibrium_check(solution, tolerance: float, progress: bool = False) -> EquilibriumCheck:
    """Both gaps of ``solution`` (:func:`both_gaps`) and, where neither fails, its distance to the grid's
    equilibrium (:func:`with_equilibrium_distance`); see the module's docstring."""
    return with_equilibrium_distance(solution, both_gaps(solution, tolerance, progress), progress)


def both_gaps(solution, tolerance: float, progress: bool = False) -> EquilibriumCheck:
    """Both gaps of ``solution`` on the grid of :data:`CHECK_GRID`, and again on each grid of :data:`REFINED_GRID`
    in turn for a gap the previous one could not decide (see the module's docstring); a progress bar
    (``progress``) where it takes more than a few seconds (2D: ~20 s)."""
    from mfgnet.grid.crowd import estimated_crowd_gap
    from mfgnet.progress import progress_bar

    dim = solution.problem.dim
    cells, steps = CHECK_GRID[dim]
    with progress_bar(2, f"fixed-point check on {cells} cells per axis", enabled=progress, unit="half") as bar:
        crowd = estimated_crowd_gap(solution, cells=cells, time_steps=steps)
        bar.update(1)
        check = _value_half(solution, crowd, tolerance, cells, steps)
        bar.update(1)
    for cells, steps in REFINED_GRID.get(dim, ()):
        undecided = [k for k, v in check.verdicts().items() if v == "unresolved"]
        if not undecided or check.vetoes:  # decided, or a failed gap already says no
            break
        # On R^d the value gap is weighted by the crowd on its own grid, so a refined value half needs the
        # refined crowd too.
        redo_crowd = "crowd" in undecided or ("value" in undecided and not solution.problem.domain.bounded)
        halves = int(redo_crowd) + int("value" in undecided)
        with progress_bar(halves, f"refined check on {cells} cells per axis", enabled=progress,
                          unit="half") as bar:
            if redo_crowd:
                crowd = estimated_crowd_gap(solution, cells=cells, time_steps=steps)
                bar.update(1)
            if "value" in undecided:
                check = _value_half(solution, crowd, tolerance, cells, steps)
                bar.update(1)
            else:
                check = EquilibriumCheck(crowd, check.value, tolerance, check.skipped)
    return check


def with_equilibrium_distance(solution, check: EquilibriumCheck, progress: bool = False) -> EquilibriumCheck:
    """``check`` with the distances of the pair to the grid's equilibrium (:mod:`mfgnet.grid.equilibrium_distance`)
    on the grid of :data:`CHECK_GRID`, and again on each grid of :data:`REFINED_GRID` in turn while they stay
    undecided; ``check`` unchanged where a gap already fails (the distance could not change the answer)."""
    from mfgnet.grid.equilibrium_distance import estimated_equilibrium_distance
    from mfgnet.progress import progress_bar

    if check.vetoes:
        return check
    dim = solution.problem.dim
    grids = [CHECK_GRID[dim], *REFINED_GRID.get(dim, ())]
    solved: dict = {}  # each rung's half and quarter grids are the previous rungs' grids: solved once
    for cells, steps in grids:
        with progress_bar(1, f"distance to the grid's equilibrium on {cells} cells per axis", enabled=progress,
                          unit="solve") as bar:
            try:
                m_gap, u_gap = estimated_equilibrium_distance(solution, cells, steps, solved=solved)
            except ProblemError as err:  # a game the grid does not discretise, a Newton solve that failed
                # (on the refined grid the coarser grid's distances stand: undecided, so no certificate)
                return replace(check, equilibrium_skipped=f"the distance to the grid's equilibrium did not run on "
                                                          f"{cells} cells ({err})")
            bar.update(1)
        check = replace(check, equilibrium_m=m_gap, equilibrium_u=u_gap, equilibrium_skipped=None)
        if "unresolved" not in (verdict(m_gap, check.tolerance), verdict(u_gap, check.tolerance)):
            break
    return check


def _value_half(solution, crowd: GapEstimate, tolerance: float, cells: int, steps: int) -> EquilibriumCheck:
    """The check with its value half beside an already computed crowd half."""
    from mfgnet.grid.best_response import estimated_value_gap

    if solution.problem.has_mean_control:
        # The best response of an MFG of controls also depends on the crowd's mean control ᾱ(t), which the
        # grid's HJB for a given m does not know (mfgnet.grid.controls freezes it in a fixed point of its own).
        return EquilibriumCheck(crowd, None, tolerance, "the value check does not run on an MFG of controls (its "
                                "best response needs the crowd's mean control as well as m)")
    try:
        # On R^d the value gap is weighted by the crowd that u's feedback produces (estimated_value_gap)
        value, skipped = estimated_value_gap(solution, cells=cells, time_steps=steps, weight=crowd.field), None
    except ProblemError as err:  # a Hamiltonian or coupling the grid does not discretise, an HJB solve that failed
        value, skipped = None, f"the value check did not run ({err})"
    return EquilibriumCheck(crowd, value, tolerance, skipped)
