"""Check the zoo's cached grid references against an independent, finer Richardson pair.

A zoo row's reference (``mfgnet.problems.zoo.REFERENCE``, cached in results/neural_zoo/references/) is the
order-2 grid answer, Richardson of first-order solves on N and 2N cells (and Nt, 2Nt steps).  Its own
error is not measured by the solve that made it.  This script solves the same problem first-order on
3N/2 and 2N cells (3Nt/2, 2Nt steps), extrapolates that pair, c* = 4 c_2N − 3 c_3N/2 (first order in h
and Δt together), and reports how far the cached reference is from it on the zoo's evaluation grid:
space-time rel L2 of m and u, and m's rel L2 at t = 0 and at its worst later time (at t = 0 the two
differ by how each grid represents a narrow m0, not by the dynamics).  Rows with an exact reference are
skipped.  Results: results/neural_zoo/references/checks.md (and checks.json, one entry per row, updated
in place), e.g.::

    python experiments/neural_zoo_references.py --problems box_wall_corner_2d box_two_crowds_2d
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import neural_zoo as zoo  # noqa: E402

from mfgnet.evaluation.metrics import relative_l2  # noqa: E402
from mfgnet.grid import solve_grid  # noqa: E402
from mfgnet.problems.zoo import REFERENCE, ZOO  # noqa: E402

CHECKS = zoo.OUT / "references" / "checks.json"


def check(name: str) -> dict | None:
    """The cached reference of ``name`` against Richardson of first-order solves on 3N/2 and 2N; None for
    an exact reference."""
    spec = REFERENCE[name]
    if spec["kind"] != "grid":
        return None
    ref = zoo.reference(name)
    problem = ZOO[name]()
    times = None if problem.is_ergodic else ref["times"]
    base = {k: v for k, v in spec.items() if k not in ("kind", "order")}
    fields, walls, cells, converged = {}, {}, {}, True
    for factor in (1.5, 2.0):
        settings = dict(base, cells=int(round(factor * spec["cells"])))
        if "time_steps" in spec:
            settings["time_steps"] = int(round(factor * spec["time_steps"]))
        cells[factor] = settings["cells"]
        start = time.perf_counter()
        sol = solve_grid(problem, order=1, **settings)
        walls[factor] = time.perf_counter() - start
        converged &= bool(sol.diagnostics.converged)
        fields[factor] = zoo.on_grid(sol, times, ref["x"])
        print(f"[references] {name}: first order on {settings['cells']} cells in {walls[factor]:.0f} s, "
              f"converged {sol.diagnostics.converged}", flush=True)
    u = 4.0 * fields[2.0][0] - 3.0 * fields[1.5][0]
    m = 4.0 * fields[2.0][1] - 3.0 * fields[1.5][1]
    row = {"problem": name, "reference_cells": spec["cells"], "check_cells": [cells[1.5], cells[2.0]],
           # u centred on ergodic rows (defined up to a constant), as in neural_zoo.evaluate
           "rel_l2_m": relative_l2(ref["m"], m), "rel_l2_u": relative_l2(ref["u"], u, center=problem.is_ergodic),
           "first_order_2n_rel_l2_m": relative_l2(fields[2.0][1], m), "converged": converged,
           "wall_s": sum(walls.values()), "load": f"{os.getloadavg()[0]:.1f}", "date": time.strftime("%Y-%m-%d")}
    if times is not None:
        by_time = [relative_l2(ref["m"][i], m[i]) for i in range(len(times))]
        worst = 1 + int(np.argmax(by_time[1:]))
        row.update({"rel_l2_m_t0": by_time[0], "rel_l2_m_worst_later": by_time[worst],
                    "worst_later_time": float(times[worst])})
    return row


def write(rows: dict) -> None:
    CHECKS.write_text(json.dumps(rows, indent=1))
    lines = ["# The zoo's grid references, checked", "",
             "Each cached reference (Richardson of first-order solves on N and 2N cells and steps) against "
             "Richardson of first-order solves on 3N/2 and 2N (`python experiments/neural_zoo_references.py`): "
             "rel L2 on the zoo's evaluation grid, space-time, at t = 0 (where the grids represent a narrow m0 "
             "differently) and at m's worst later time; 'first order 2N' is the first-order solve's own distance "
             "from the check, the error the extrapolation removes.  Two extrapolations that agree bound the "
             "reference's error only where both pairs are in the asymptotic range.", "",
             "| problem | N (reference) | check cells | rel L2 m | m at t = 0 | m worst later (t) | rel L2 u | "
             "first order 2N, m | converged | wall (s) | load | date |", "|" + "---|" * 12]
    for r in rows.values():
        later = (f"{r['rel_l2_m_worst_later']:.2e} ({r['worst_later_time']:g})" if "rel_l2_m_worst_later" in r
                 else "")
        t0 = f"{r['rel_l2_m_t0']:.2e}" if "rel_l2_m_t0" in r else ""
        lines.append(f"| {r['problem']} | {r['reference_cells']} | {' / '.join(map(str, r['check_cells']))} | "
                     f"{r['rel_l2_m']:.2e} | {t0} | {later} | {r['rel_l2_u']:.2e} | {r['first_order_2n_rel_l2_m']:.2e} "
                     f"| {'yes' if r['converged'] else 'no'} | {r['wall_s']:.0f} | {r['load']} | {r['date']} |")
    (CHECKS.parent / "checks.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    grid_rows = sorted(n for n, s in REFERENCE.items() if s["kind"] == "grid")
    parser.add_argument("--problems", nargs="+", choices=grid_rows, default=grid_rows)
    args = parser.parse_args(argv)
    for name in args.problems:
        row = check(name)
        # read again before each write: another invocation may have added rows meanwhile
        rows = json.loads(CHECKS.read_text()) if CHECKS.exists() else {}
        rows[name] = row
        write(dict(sorted(rows.items())))
        print(f"[references] {name}: cached reference {row['rel_l2_m']:.2e} (m) / {row['rel_l2_u']:.2e} (u) from "
              f"the check", flush=True)


if __name__ == "__main__":
    main()
