"""The grid solver as the noise vanishes (issue 16, "grid, small noise"): Newton iterations and wall
time over ν ∈ {0.2, 0.05, 0.01, 1e-3, 0} and T ∈ {0.5, 1, 2}, with and without continuation in ν.

    python experiments/grid_small_noise.py [--cells 128] [--modes auto off] [--problems crowd_aversion torus_attraction]

Problems (1D unless ``--dim 2``, ``--cells`` cells per axis, dt = h):

* ``crowd_aversion``: `mfgnet.problems.examples.crowd_aversion` (no-flux box, F = m, a bump at 0.3 pulled
  to 0.75);
* ``torus_attraction``: B3's data with ν free: on 𝕋¹, F = m − 1, G = −0.4 ln(1 + ½ cos 2πx) (B3's terminal
  cost at its reference ν = 0.2), m0 = B3's m(0); as ν → 0 the crowd gathers at x = 0 against the
  congestion.  (B3 itself has no ν → 0 limit worth studying: its u is O(ν).)
* ``lq_pull``: B2 on R with the neural zoo's lq_sharp_pull_1d data (a crowd of std 0.05 at 2 pulled towards
  0.95 × its own mean, c_T = 8) and ν, T free, on the box R's problem derives for its ν: where continuation's
  first stage (ν = 0.2) spread that crowd onto the box's faces, the solver tries again with a gentler
  continuation (from 5 ν, halving), then without it.

Writes results/grid_small_noise.md: per case, Newton iterations (total, and per stage when continuing),
GMRES iterations, whole-matrix LU factorisations (``time_lu``), wall time and its ratio to the ν = 0.2 case of
the same T and mode, converged and why it stopped.
Rows are run one after another in this process: the ratios share the machine's load.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import torch

from mfgnet.benchmarks import lq_gaussian
from mfgnet.grid import solve_grid
from mfgnet.grid.config import GridSolverConfig
from mfgnet.problems import MFGProblem, Torus
from mfgnet.problems.examples import crowd_aversion
from mfgnet.problems.zoo import LQ_SHARP_PULL_PARAMS

ROOT = Path(__file__).resolve().parents[1]
VISCOSITIES = (0.2, 0.05, 0.01, 1e-3, 0.0)
HORIZONS = (0.5, 1.0, 2.0)


def torus_attraction(viscosity: float, horizon: float) -> MFGProblem:
    """B3's terminal cost and initial crowd on 𝕋¹ with congestion F = m − 1 and any ν >= 0."""
    def m0(x):
        return (1 + 0.5 * torch.cos(2 * math.pi * x[:, 0])) * (1 + 0.5 * math.exp(-4 * math.pi**2 * 0.2 * 0.5)
                                                                 * torch.cos(2 * math.pi * x[:, 0]))

    mass = 1 + 0.125 * math.exp(-4 * math.pi**2 * 0.2 * 0.5)  # ∫ m0 over the unit torus
    return MFGProblem(
        Torus(1), horizon=horizon, viscosity=viscosity, coupling=lambda t, x, m: m - 1.0,
        terminal_cost=lambda x, m: -0.4 * torch.log(1 + 0.5 * torch.cos(2 * math.pi * x[:, 0])),
        initial_density=lambda x: m0(x) / mass, name="torus_attraction")


def lq_pull(viscosity: float, horizon: float) -> MFGProblem:
    """B2 with lq_sharp_pull_1d's data (mfgnet.problems.zoo.LQ_SHARP_PULL_PARAMS) at any ν >= 0 and T."""
    params = {**LQ_SHARP_PULL_PARAMS, "viscosity": viscosity, "horizon": horizon}
    return lq_gaussian(1, **params).problem


PROBLEMS = {
    "crowd_aversion": lambda nu, T, dim, aversion: crowd_aversion(dim=dim, viscosity=nu, horizon=T, aversion=aversion),
    "torus_attraction": lambda nu, T, dim, aversion: torus_attraction(nu, T),
    "lq_pull": lambda nu, T, dim, aversion: lq_pull(nu, T),
}


def _start(extra: dict) -> str:
    """The start of a solver's retry (mfgnet.grid.solver.solve_on_grid), in words."""
    continuation = "no continuation" if extra["retry_continuation"] == "off" else \
        f"continuation from ν = {extra['retry_continuation_from']:g}"
    return f"{continuation}, {extra['retry_picard_warmup']} Picard steps"


def run(problem: str, nu: float, T: float, cells: int, mode: str, dim: int = 1, aversion: float = 1.0) -> dict:
    start = time.perf_counter()
    solution = solve_grid(PROBLEMS[problem](nu, T, dim, aversion),
                          GridSolverConfig(cells=cells, continuation=mode, progress=False))
    d = solution.diagnostics
    stages = d.extra.get("continuation") or []
    return {"problem": problem, "nu": nu, "T": T, "mode": mode, "wall": time.perf_counter() - start,
            "newton": d.extra["newton_iterations"], "gmres": d.extra["gmres_iterations"], "converged": d.converged,
            "factorisations": d.extra.get("factorisations", 0),
            "stopped_on": d.extra["stopped_on"] + (f" (after {d.extra['retries']} retries, the last: " +
                                                   _start(d.extra) + ")" if "retries" in d.extra else ""),
            "residual": d.residual,
            "stages": " → ".join(f"{s['viscosity']:.3g}: {s['newton_iterations']}" for s in stages),
            "stage_max": max((s["newton_iterations"] for s in stages), default=d.extra["newton_iterations"]),
            "load": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=128)
    parser.add_argument("--modes", nargs="+", default=["auto", "off"], choices=["auto", "off"])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--dim", type=int, default=1, choices=[1, 2], help="crowd_aversion only")
    parser.add_argument("--aversion", type=float, default=1.0, help="crowd_aversion's F = aversion · m")
    parser.add_argument("--viscosities", type=float, nargs="+", default=list(VISCOSITIES))
    parser.add_argument("--horizons", type=float, nargs="+", default=list(HORIZONS))
    parser.add_argument("--out", default=str(ROOT / "results" / "grid_small_noise.md"))
    args = parser.parse_args(argv)
    rows = []
    for problem in args.problems:
        for T in args.horizons:
            for mode in args.modes:
                for nu in args.viscosities:
                    row = run(problem, nu, T, args.cells, mode, args.dim, args.aversion)
                    rows.append(row)
                    print(f"{problem} T={T} {mode} ν={nu:g}: {row['wall']:.2f} s, Newton {row['newton']} "
                          f"({row['stages'] or 'one stage'}), GMRES {row['gmres']}, LU {row['factorisations']}, "
                          f"converged {row['converged']}, "
                          f"{row['stopped_on']}", flush=True)
    base = {(r["problem"], r["T"], r["mode"]): r["wall"] for r in rows if r["nu"] == args.viscosities[0]}
    lines = [
        "# The grid solver as the noise vanishes (issue 16)", "",
        f"Command: `python experiments/grid_small_noise.py --cells {args.cells} --modes {' '.join(args.modes)} "
        f"--problems {' '.join(args.problems)} --dim {args.dim} --aversion {args.aversion:g}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; rows run one after "
        "another (load per row below, 1-minute average): walls are upper bounds, ratios share the load.  ",
        f"Grid: {args.cells} cells per axis in {args.dim}D, dt = h, Newton to 1e-10.  `continuation=auto` (the "
        "default): ν from 0.2 down by a factor 10 per stage (ν = 0 from 2e-3); `off`: one Newton solve from the "
        "Picard warm start.  GMRES: iterations of all Newton directions; LU: factorisations of the whole space-time "
        "Newton matrix (`time_lu=reuse`, the default, 1D: GMRES on the whole matrix preconditioned by a reused LU once "
        "the Schur complement's GMRES has needed more than `time_lu_switch` iterations).", "",
        "| problem | T | mode | ν | Newton (total) | per stage (ν: Newton) | max per stage | GMRES | LU | wall s | "
        f"× ν = {args.viscosities[0]:g} | converged | stopped on | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["wall"] / base[(r["problem"], r["T"], r["mode"])]
        lines.append(f"| {r['problem']} | {r['T']:g} | {r['mode']} | {r['nu']:g} | {r['newton']} | "
                     f"{r['stages'] or '—'} | {r['stage_max']} | {r['gmres']} | {r['factorisations']} | "
                     f"{r['wall']:.2f} | {ratio:.1f} | "
                     f"{'yes' if r['converged'] else 'no'} | {r['stopped_on']} | {r['load']:.1f} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
