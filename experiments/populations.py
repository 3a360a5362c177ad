"""Two populations on the grid (issue 14, part 1): B6 against its exact solution with observed
orders in 1D and 2D, and the segregation problem's self-convergence, with the figures.

    python experiments/populations.py [--quick]

Writes results/populations/grid.md (only what it generates; results/populations/populations.md holds the
hand-written sections and links to it), rewritten after every row so that a cut run keeps the rows that
finished, and figures beside it (B6 1D and 2D densities, segregation 1D and 2D, the latter with cross
aversion 1.5 and 3).  2D segregation beyond 14² is solved by block Gauss-Seidel
sweeps (``solver.populations_solve=auto``); OPENBLAS_NUM_THREADS=1 keeps OpenBLAS's threads from
spinning on a shared machine (see the header line the script writes).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.optimize import brentq  # noqa: E402

import mfgnet  # noqa: E402
from mfgnet.benchmarks.two_populations import two_populations  # noqa: E402
from mfgnet.evaluation import compare  # noqa: E402
from mfgnet.evaluation.populations_figures import plot_populations  # noqa: E402
from mfgnet.problems import cell_centre_points  # noqa: E402
from mfgnet.problems.examples import segregation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "populations"
REPORT = "grid.md"


class Report(list):
    """The lines of grid.md; ``flush`` rewrites the file with the lines so far (a cut run keeps its rows)."""

    def __init__(self, path: Path, lines: list[str]):
        super().__init__(lines)
        self.path = path

    def flush(self, done: bool = False) -> None:
        tail = [] if done else ["", f"(Running: rows so far, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; "
                                    f"load {os.getloadavg()[0]:.1f}.)"]
        self.path.write_text("\n".join(list(self) + tail) + "\n")


def difference_order(prev: float | None, value: float, cells: tuple[int, int, int]) -> str:
    """Observed order p from the differences N0 -> N1 (``prev``) and N1 -> N2 (``value``) between
    successive grids: (N0^-p - N1^-p) / (N1^-p - N2^-p) = prev / value, solved by scipy's brentq
    (for doubling grids log2(prev / value), as `order` with ratio 2; 16, 32, 48, 64 are not doubling)."""
    if prev is None or value <= 0:
        return ""
    n0, n1, n2 = cells

    def gap(p: float) -> float:  # increases with p
        return (n0 ** -p - n1 ** -p) / (n1 ** -p - n2 ** -p) - prev / value

    lo, hi = 0.01, 10.0
    if gap(lo) > 0 or gap(hi) < 0:
        return "?"
    return f"{brentq(gap, lo, hi, xtol=1e-6):.2f}"


def order(prev: float | None, value: float, ratio: float) -> str:
    """Observed order from errors ``prev`` -> ``value`` when the cell count grew by ``ratio``."""
    return "" if prev is None or value <= 0 else f"{math.log(prev / value) / math.log(ratio):.2f}"


def b6_rows(dim: int, cells_list: list[int], lines: Report) -> None:
    problem, exact = two_populations(dim=dim)
    lines += [f"### B6, d = {dim}", "",
              "| cells | Newton its | residual | u₁ / u₂ rel L2 | m₁ / m₂ rel L2 | |Δλ₁| / |Δλ₂| | order u₁, m₁, λ₁ | "
              "mass error | wall s |", "|---|---|---|---|---|---|---|---|---|"]
    prev, prev_cells = None, None
    for cells in cells_list:
        started = time.perf_counter()
        sol = mfgnet.solve(problem, "grid", cells=cells, progress=False)
        wall = time.perf_counter() - started
        ratio = cells / prev_cells if prev_cells else 2.0
        e = [compare(sol.populations[k], exact[k]) for k in range(2)]
        now = (e[0]["rel_l2_u"], e[0]["rel_l2_m"], e[0]["abs_err_lambda"])
        orders = ", ".join(order(None if prev is None else prev[i], now[i], ratio) for i in range(3))
        lines.append(f"| {cells} | {sol.diagnostics.iterations} | {sol.diagnostics.residual:.1e} | "
                     f"{e[0]['rel_l2_u']:.2e} / {e[1]['rel_l2_u']:.2e} | "
                     f"{e[0]['rel_l2_m']:.2e} / {e[1]['rel_l2_m']:.2e} | "
                     f"{e[0]['abs_err_lambda']:.2e} / {e[1]['abs_err_lambda']:.2e} | {orders} | "
                     f"{sol.diagnostics.extra['mass_error']:.1e} | {wall:.1f} |")
        lines.flush()
        print(f"B6 d={dim} cells={cells}: {wall:.1f} s", file=sys.stderr)
        prev, prev_cells = now, cells
    plot_populations(sol, OUT / f"b6_{dim}d.png", title=f"B6, d = {dim}, {cells_list[-1]} cells")
    lines += ["", f"![B6 {dim}D](b6_{dim}d.png)", ""]
    lines.flush()


def segregation_rows(dim: int, cells_list: list[int], lines: Report, figure: str | None = None,
                     settings: dict | None = None, **params) -> None:
    problem = segregation(dim=dim, **params)
    lower, upper = problem.bounding_box().bounds()
    x = cell_centre_points(lower, upper, {1: 200, 2: 40}[dim])
    times = np.linspace(0, problem.horizon, 11)
    given = "".join(f", {k} = {v}" for k, v in params.items())  # distinct headings (and anchors) per variant
    lines += [f"### Segregation, d = {dim}{given} (no closed form: differences between successive grids)", "",
              f"`segregation(dim={dim}{''.join(f', {k}={v}' for k, v in params.items())})`"
              f"{''.join(f', solver.{k}={v}' for k, v in (settings or {}).items())}; solve: Newton on the "
              "coupled system or block Gauss-Seidel sweeps (`solver.populations_solve=auto`), its: Newton "
              "iterations or sweeps", "",
              "| cells | time steps | solve | its | residual | ‖m − m on the previous grid‖ / ‖m‖ (pop. 1 / 2) | "
              "order | mass error | min m | wall s |", "|---|---|---|---|---|---|---|---|---|---|"]
    prev, prev_diff, prev_cells, before = None, None, None, None
    for cells in cells_list:
        started = time.perf_counter()
        sol = mfgnet.solve(problem, "grid", cells=cells, progress=False, **(settings or {}))
        wall = time.perf_counter() - started
        with torch.no_grad():
            dens = np.stack([[sol.density(k, float(t), x).numpy() for t in times] for k in range(2)])
        diffs = None if prev is None else [float(np.linalg.norm(dens[k] - prev[k]) / np.linalg.norm(dens[k]))
                                           for k in range(2)]
        text = "" if diffs is None else f"{diffs[0]:.2e} / {diffs[1]:.2e}"
        solve = sol.diagnostics.extra["populations_solve"] + ("" if sol.diagnostics.converged else " (not converged)")
        lines.append(f"| {cells} | {sol.diagnostics.extra['time_steps']} | {solve} | {sol.diagnostics.iterations} | "
                     f"{sol.diagnostics.residual:.1e} | {text} | "
                     f"{difference_order(prev_diff, diffs[0], (before, prev_cells, cells)) if diffs else ''} | "
                     f"{sol.diagnostics.extra['mass_error']:.1e} | {sol.diagnostics.extra['min_density']:.1e} | "
                     f"{wall:.1f} |")
        lines.flush()
        print(f"segregation d={dim} cells={cells}: {wall:.1f} s, load {os.getloadavg()[0]:.1f}", file=sys.stderr)
        prev, prev_diff, prev_cells, before = dens, (None if diffs is None else diffs[0]), cells, prev_cells
    figure = figure or f"segregation_{dim}d.png"
    plot_populations(sol, OUT / figure, title=f"segregation, d = {dim}, {cells_list[-1]} cells")
    lines += ["", f"![segregation {dim}D]({figure})", ""]
    lines.flush()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="coarser grids only")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    command = "python experiments/populations.py" + (" --quick" if args.quick else "")
    started, clock = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), time.perf_counter()
    lines = Report(OUT / REPORT, [
             "# Two populations on the grid", "",
             "Generated by experiments/populations.py (rewritten by each run; the hand-written sections, the neural "
             "solver among them, are in [populations.md](populations.md)).", "",
             f"Command: `{command}`, started {started}, load {os.getloadavg()[0]:.1f}  ",
             f"Machine: {os.cpu_count()} CPUs shared with other jobs (walls are upper bounds); "
             f"torch {torch.__version__}; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}.  "
             "Newton on the coupled 2K equations (one sparse LU per iteration) while its memory estimate is at most "
             "256 MiB, block Gauss-Seidel sweeps (each population by the single-population solver, Anderson-mixed) "
             "above: `solver.populations_solve=auto`.", ""])
    lines.flush()
    b6_rows(1, [32, 64, 128] if args.quick else [32, 64, 128, 256, 512], lines)
    b6_rows(2, [16, 24] if args.quick else [16, 24, 32, 48], lines)
    segregation_rows(1, [32, 64] if args.quick else [32, 64, 128, 256], lines)
    # 2D beyond 14² takes the sweeps (auto), max_iterations caps them: 21-47 sweeps with cross_aversion 1.5, 27-58
    # with 3 (the default, where Newton stalls at 16², residual 0.5); 64² took 621 s and 734 s (OPENBLAS_NUM_THREADS=1,
    # load 2-3; docs/how-to/populations.md), the whole run 1945 s (~32 min).
    sweeps = {"max_iterations": 100}
    segregation_rows(2, [12, 16] if args.quick else [16, 32, 48, 64], lines, settings=sweeps, cross_aversion=1.5)
    segregation_rows(2, [16] if args.quick else [16, 32, 48, 64], lines, figure="segregation_2d_cross3.png",
                     settings=sweeps)
    lines += [f"Load at the end: {os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
              f"the whole run {time.perf_counter() - clock:.0f} s."]
    lines.flush(done=True)
    print(lines.path)


if __name__ == "__main__":
    main()
