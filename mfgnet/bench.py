"""mfgnet's own speed table on the current machine: ``python -m mfgnet.bench [--quick] [--out results/bench.md]``.

Measures, in well under two minutes on an idle 2-core CPU:

* grid solver ([`solve_grid`][mfgnet.grid.solver.solve_grid]): wall time and Newton iterations on B1 1D (512
  cells), B1 2D (64²) and B3 Hopf–Cole (128 cells × 128 steps);
* neural solver ([`solve_neural`][mfgnet.neural.solver.solve_neural], default config, float32): wall time per
  Adam step on B1 d = 1 and d = 2;
* N-agent simulation ([`simulate`][mfgnet.agents.simulation.simulate.simulate]): agent-steps/s in 1D under a
  policy tabulated on 512 nodes (numpy and fused kernels) and in 2D on 256² nodes, each as a fraction of the
  bound that a numpy copy's memory speed sets (one read and write of each coordinate per agent-step);
* finite MFGs ([`fictitious_play`][mfgnet.agents.finite.fictitious_play]): ms per fictitious-play iteration,
  exact exploitability included, on beach bar (default, and 20 states with T = 10), with the default backend
  (numba's compiled kernels where installed) and the numpy one.

``--quick`` shrinks every case (for a smoke run in a few seconds).  Each row is the best of
``--repeat`` runs.  Output is a markdown table (stdout, and ``--out`` when given).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mfgnet.progress import console_logging

log = logging.getLogger(__name__)


@dataclass
class Row:
    """One measured case: what, size, the headline speed number, its unit, and notes (errors, its)."""

    part: str
    case: str
    value: float
    unit: str
    note: str = ""


def machine_line() -> str:
    """One line: platform, cores, Python, torch and its thread count, load average."""
    try:
        load = "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # not available on every platform
        load = "load average n/a"
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    return (f"{platform.machine()}, {cores} cores ({usable} usable), Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}, {load}")


def _best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _rel(a: np.ndarray, e: np.ndarray, center: bool = False) -> float:
    a, e = np.ravel(a), np.ravel(e)
    if center:
        a, e = a - a.mean(), e - e.mean()
    return float(np.linalg.norm(a - e) / np.linalg.norm(e))


def bench_grid(quick: bool, repeat: int) -> list[Row]:
    """Grid solve times (default tol 1e-10, Newton)."""
    from mfgnet.benchmarks import ergodic_torus, hopf_cole
    from mfgnet.grid import solve_grid

    cases = [("B1 1D", ergodic_torus(1), {"cells": 128 if quick else 512}),
             ("B1 2D", ergodic_torus(2), {"cells": 32 if quick else 64}),
             ("B3 Hopf-Cole", hopf_cole(), {"cells": 64 if quick else 128, "time_steps": 64 if quick else 128})]
    rows = []
    for name, bench, settings in cases:
        wall, sol = _best(lambda b=bench, s=settings: solve_grid(b.problem, **s), repeat)
        x = sol.nodes
        if sol.times is None:
            m_ex = bench.exact.density(None, x).numpy()
        else:
            t = torch.from_numpy(np.repeat(sol.times, x.shape[0]))
            m_ex = bench.exact.density(t, x.repeat(len(sol.times), 1)).numpy().reshape(sol.m.shape)
        e = sol.diagnostics.extra
        size = "x".join(str(c) for c in sol.grid.cells) + ("" if sol.times is None else f" x {len(sol.times) - 1}")
        rows.append(Row("grid", f"{name}, {size}", wall, "s / solve",
                        f"{e['newton_iterations']} Newton (+{e['picard_iterations']} Picard), "
                        f"rel L2 m {_rel(sol.m, m_ex):.1e}"))
    return rows


def bench_grid_levels(quick: bool, repeat: int) -> list[Row]:
    """1D time levels, whole B3 solves (Δt = h) interleaved A B C A B C, medians, CPU seconds: the
    tridiagonal levels with numba's compiled sweeps (when installed), the same with one LAPACK call
    per level and solve, and one SuperLU per level (the older path, sparse assembly included)."""
    from mfgnet.benchmarks import hopf_cole
    from mfgnet.grid import solve_grid
    from mfgnet.grid.linalg import LevelFactors
    from mfgnet.grid.tridiagonal import NUMBA_AVAILABLE, TridiagonalLevels

    bench = hopf_cole()
    variants = (["numba"] if NUMBA_AVAILABLE else []) + ["lapack", "superlu"]
    solve_grid(bench.problem, cells=32, time_steps=16, progress=False)  # loads numba's kernels outside the timing
    rows = []
    for cells in ((64, 256) if quick else (256, 1024)):
        times: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(max(repeat, 3)):
            for variant in variants:
                LevelFactors.tridiagonal_1d = variant != "superlu"
                TridiagonalLevels.use_numba = variant == "numba"
                try:
                    start = time.process_time()
                    sol = solve_grid(bench.problem, cells=cells, time_steps=int(round(cells * bench.problem.horizon)),
                                     progress=False)
                    times[variant].append(time.process_time() - start)
                finally:
                    LevelFactors.tridiagonal_1d = True
                    TridiagonalLevels.use_numba = NUMBA_AVAILABLE
        median = {v: float(np.median(t)) for v, t in times.items()}
        new = median[variants[0]]
        notes = [f"{variants[0]} sweeps"] + [f"{label} {median[v]:.3f} s: {median[v] / new:.2f}x" for v, label in
                                              (("lapack", "LAPACK per level"), ("superlu", "SuperLU per level"))
                                              if v != variants[0]]
        rows.append(Row("grid_levels", f"B3 {cells} cells x {sol.grid.time_steps} levels, tridiagonal", new,
                        "CPU s / solve", "; ".join(notes)))
    rows.append(_bench_grid_levels_2d(quick, repeat))
    return rows


def _bench_grid_levels_2d(quick: bool, repeat: int) -> Row:
    """2D time levels: whole solves of B7's planar crowd (a nonlocal Gaussian kernel, applied axis by axis)
    interleaved A B A B, medians of CPU seconds, with the levels' SuperLU ordering of
    `mfgnet.grid.linalg.LEVEL_LU_OPTIONS` against COLAMD (the former one)."""
    from mfgnet.benchmarks.separable_crowd import separable_crowd_2d
    from mfgnet.grid import linalg, solve_grid

    problem = separable_crowd_2d()
    cells = 24 if quick else 64
    default = linalg.LEVEL_LU_OPTIONS
    variants = {"minimum degree of A + A^T": default, "COLAMD": {"permc_spec": "COLAMD"}}
    times: dict[str, list[float]] = {v: [] for v in variants}
    try:
        for _ in range(max(repeat, 3)):
            for name, options in variants.items():
                linalg.LEVEL_LU_OPTIONS = options
                start = time.process_time()
                sol = solve_grid(problem, cells=cells, time_steps=cells, progress=False)
                times[name].append(time.process_time() - start)
    finally:
        linalg.LEVEL_LU_OPTIONS = default
    median = {v: float(np.median(t)) for v, t in times.items()}
    new, old = median["minimum degree of A + A^T"], median["COLAMD"]
    return Row("grid_levels", f"B7 planar crowd {cells}² x {cells} levels, sparse LU per level", new, "CPU s / solve",
               f"minimum degree of A + A^T, diagonal pivots; COLAMD {old:.3f} s: {old / new:.2f}x; "
               f"{sol.diagnostics.extra['newton_iterations']} Newton")


def bench_neural(quick: bool, repeat: int) -> list[Row]:
    """Wall time per Adam step of the default neural config (1 torch thread, its float32)."""
    from mfgnet.benchmarks import ergodic_torus
    from mfgnet.neural import solve_neural

    steps = 10 if quick else 40
    rows = []
    for dim in (1, 2):
        bench = ergodic_torus(dim)
        # A first short run pays the one-off costs (imports, allocator warm-up) outside the timing.
        solve_neural(bench.problem, {"steps": 2})
        # The default (forward jets for the derivatives, mfgnet.neural.jets) and nested autograd as its
        # reference, interleaved so that both see the same load.
        best, sol = {"auto": float("inf"), "autograd": float("inf")}, None
        for _ in range(repeat):
            for mode in best:
                sol = solve_neural(bench.problem, {"steps": steps, "log_every": steps,
                                                   "loss": {"derivatives": mode}})
                best[mode] = min(best[mode], sol.diagnostics.wall_time_s / steps)
        cfg = sol.diagnostics.extra
        rows.append(Row("neural", f"B1 d={dim}, default config ({steps} Adam steps)", best["auto"] * 1e3, "ms / step",
                        f"{cfg['dtype']}, 512 interior points, tanh 64x3 (two nets); derivatives by forward jets, "
                        f"nested autograd {best['autograd'] * 1e3:.1f} ms / step in the same run: "
                        f"{best['auto'] / best['autograd']:.2f}x"))
    return rows


def bench_agents(quick: bool, repeat: int) -> list[Row]:
    """Agent-steps/s of the 1D simulation under B3's exact policy tabulated on 512 nodes: the numpy
    kernel and (when numba is installed) the fused kernel, interleaved, medians; and the histogram's
    L1 distance to the exact m(T) for each (the same statistics within noise)."""
    from mfgnet.agents.simulation import TabulatedPolicy, fused, simulate
    from mfgnet.benchmarks import hopf_cole

    bench = hopf_cole()
    n_agents, steps, bins = (200_000, 10, 256) if quick else (10_000_000, 20, 256)
    policy = TabulatedPolicy.from_solution(bench.exact, [0.5 * k / steps for k in range(steps)], 512)
    backends = ["numpy"] + (["numba"] if fused.AVAILABLE else [])
    if fused.AVAILABLE:  # compile (or load numba's cache) outside the timed runs
        simulate(bench.exact, 1000, steps, policy=policy, backend="numba", progress=False)
    centres = (torch.arange(bins, dtype=torch.float64) + 0.5) / bins
    exact = bench.exact.density(torch.full((bins, 1), bench.problem.horizon, dtype=torch.float64), centres[:, None])
    exact = exact / exact.sum()
    rates: dict[str, list[float]] = {b: [] for b in backends}
    draws: dict[str, list[float]] = {b: [] for b in backends}
    l1: dict[str, float] = {}
    for _ in range(max(repeat, 2) if len(backends) > 1 else repeat):
        for backend in backends:  # A B A B: the two share the machine's load
            res = simulate(bench.exact, n_agents, steps, policy=policy, backend=backend, bins=bins, progress=False)
            rates[backend].append(res.agent_steps_per_s)
            draws[backend].append(res.timings["initial_s"])
            l1[backend] = float((res.histograms[-1] - exact).abs().sum())
    rows = []
    median = {b: float(np.median(v)) for b, v in rates.items()}
    for backend in backends:
        ratio = f"; {median[backend] / median['numpy']:.2f}× the numpy kernel" if backend != "numpy" else ""
        rows.append(Row("agents", f"simulation 1D, N = {n_agents:.0e}, {steps} steps, {backend} kernel",
                        median[backend], "agent-steps / s",
                        f"median of {len(rates[backend])} interleaved runs, default threads, Gaussian noise{ratio}; "
                        f"histogram L1 to exact m(T) {l1[backend]:.4f} ({bins} bins); initial draw "
                        f"{np.median(draws[backend]):.2f} s"))
    rows.append(_bench_agents_2d(quick, repeat))
    bandwidth = _copy_bandwidth()
    for row, d in zip(rows, [1] * len(backends) + [2]):  # the 1D rows, then the 2D one
        bound = bandwidth / (16 * d)  # one float64 read and write of each coordinate per agent-step
        row.note += f"; {row.value / bound:.0%} of the copy bound {bound:.2g} agent-steps/s"
    return rows


def _bench_agents_2d(quick: bool, repeat: int) -> Row:
    """Agent-steps/s in 2D under B1's exact policy (ergodic torus) tabulated on 256² nodes, numpy kernel
    (the fused kernel is 1D), and the histogram's L1 distance to the exact m (8² cells)."""
    from mfgnet.agents.simulation import TabulatedPolicy, compare_to_solution, simulate
    from mfgnet.benchmarks import ergodic_torus

    bench = ergodic_torus(2)
    n_agents, steps = (50_000, 20) if quick else (2_000_000, 20)  # 20 steps: Euler's O(Δt) bias 0.04 in L1
    policy = TabulatedPolicy.from_solution(bench.exact, None, 256)
    rates, l1 = [], float("nan")
    for _ in range(repeat):
        res = simulate(bench.exact, n_agents, steps, t1=0.05, policy=policy, bins=64, initial="solution",
                       progress=False)
        rates.append(res.agent_steps_per_s)
        l1 = compare_to_solution(res, bench.exact, l1_coarsen=8)[0]["l1"]  # 64² bins in blocks of 8²
    return Row("agents", f"simulation 2D, N = {n_agents:.0e}, {steps} steps, numpy kernel", float(np.median(rates)),
               "agent-steps / s", f"median of {repeat}, B1 2D exact policy tabulated on 256² nodes, default threads, "
               f"Gaussian noise; histogram L1 to the exact m at t = 0.05 {l1:.3f} (8² cells)")


def _copy_bandwidth() -> float:
    """Bytes per second of a numpy copy of 256 MB (read + write counted), best of three: the memory
    speed that bounds a kernel which streams the agents' positions once per step."""
    src = np.ones(1 << 25)
    dst = np.empty_like(src)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def bench_finite(quick: bool, repeat: int) -> list[Row]:
    """ms per fictitious-play iteration, exact float64 exploitability included: fictitious_play's default
    backend (numba's kernels where installed) in the speed column, the numpy backend in the notes."""
    from mfgnet.agents.finite import fictitious_play, make_env
    from mfgnet.agents.finite.backends import select

    iterations = 50 if quick else 200
    rows = []
    for label, params in [("beach bar (default)", {}), ("beach bar, 20 states, T = 10", {"n": 20, "horizon": 10})]:
        game = make_env("beach_bar", **params)
        backend = select(game).name  # loads numba's kernels (a one-off per process) outside the timing
        wall, res = _best(lambda g=game: fictitious_play(g, iterations), repeat)
        note = f"{backend} backend; final exploitability {res.final_exploitability:.2e}"
        if backend != "numpy":
            wall_np, res_np = _best(lambda g=game: fictitious_play(g, iterations, backend="numpy"), repeat)
            gap = float(np.abs(np.subtract(res.exploitability, res_np.exploitability)).max())
            note += (f"; numpy backend {wall_np / iterations * 1e3:.3g} ms / iteration ({wall_np / wall:.1f}× "
                     f"slower), same exploitabilities to {gap:.0e}")
        rows.append(Row("finite", f"{label}, fictitious play, {iterations} its", wall / iterations * 1e3,
                        "ms / iteration", note))
    return rows


PARTS = {"grid": bench_grid, "grid_levels": bench_grid_levels, "neural": bench_neural, "agents": bench_agents,
         "finite": bench_finite}


def table(rows: list[Row], command: str, machine: str, total_s: float) -> str:
    lines = ["# mfgnet speed on this machine", "", f"Command: `{command}`  ", f"Machine: {machine}  ",
             f"Total time {total_s:.1f} s. Rows are the best of the repeats; times are wall clock, so a shared "
             "machine makes them upper bounds (grid_levels: medians of interleaved CPU times, with its "
             "reference in the same run).", "",
             "| part | case | speed | unit | notes |", "|---|---|---|---|---|"]
    lines += [f"| {r.part} | {r.case} | {r.value:.3g} | {r.unit} | {r.note} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m mfgnet.bench`` / ``mfgnet-bench``: print (and optionally write) the speed table."""
    parser = argparse.ArgumentParser(prog="python -m mfgnet.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cases, a smoke run in seconds")
    parser.add_argument("--repeat", type=int, default=None, help="runs per case, best kept (default 2; 1 if --quick)")
    parser.add_argument("--only", nargs="+", choices=sorted(PARTS), default=list(PARTS), help="parts to run")
    parser.add_argument("--out", default=None, help="also write the table to this markdown file")
    parser.add_argument("--quiet", action="store_true", help="no log line per part")
    args = parser.parse_args(argv)
    console_logging(logging.WARNING if args.quiet else logging.INFO)
    repeat = args.repeat or (1 if args.quick else 2)
    if repeat < 1:
        parser.error("--repeat must be >= 1")
    machine = machine_line()
    start = time.perf_counter()
    rows: list[Row] = []
    for name in args.only:
        log.info("[bench] %s ...", name)
        t0 = time.perf_counter()
        rows += PARTS[name](args.quick, repeat)
        log.info("[bench] %s done in %.1f s", name, time.perf_counter() - t0)
    command = "python -m mfgnet.bench" + ("" if argv is None and len(sys.argv) <= 1 else
                                          " " + " ".join(argv if argv is not None else sys.argv[1:]))
    text = table(rows, command, machine, time.perf_counter() - start)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
