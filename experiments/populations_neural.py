"""The neural solver on two populations (issue 14, part 1): B6 against its exact solution, and
segregation against the grid solver.

    python experiments/populations_neural.py --problem two_populations|segregation [--dim 1|2]
        [--steps N] [--config JSON] [--cells N] [--grid-config JSON] [--nearest-cells N] [--tag NAME]

Trains the K pairs of networks with the defaults (``--steps`` / ``--config`` override them),
measures each population's relative L2 errors of u and m (and λ for B6) against the exact
solution (B6) or a grid solve on ``--cells`` cells (segregation; default 256 in 1D, 64² in 2D)
with the grid settings ``--grid-config`` (fields of GridSolverConfig, e.g.
'{"max_iterations": 100}', as ``--config`` is passed to the neural solver), and writes
results/populations/neural_<tag>.md and a figure of the densities (neural solid, reference dashed;
2D: m at t = T, neural beside the grid, and both along the diagonal at t = T/2 and T).  The md
also gives rel L2 of each m at five times.

Segregation's coupling is not monotone (the populations repel each other more than themselves), so
it can have several equilibria: from 8² to 32² cells the grid reaches one symmetric in x₁ ↔ x₂ from
its usual start and an asymmetric one (and its mirror image) from a tilted start, all to residual 1e-11
(at 8²: tests/test_grid_populations_sweeps.py).  ``--nearest-cells N`` therefore also solves the grid on N
cells per axis starting from the neural densities (``solve_grid_populations(..., initial=...)``) and
reports the neural errors against the equilibrium that solve reaches, its distance to the usual
reference and each equilibrium's asymmetry: whether the neural answer sits near some equilibrium
other than the reference, or near none.

The grid reference is cached: its u_k and m_k on the grid's nodes and time levels go to
results/populations/references/<problem>_<dim>d_<cells>[_<hash of the grid config>].npz and a later
run with the same problem, cells and grid config rebuilds the GridSolutions from the file (the
same interpolation, so the same errors) instead of solving again (2D at 64² with
max_iterations=100: 58 sweeps, 896 s).  The file records the spec it was made with; delete it
after changing the problem's definition.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import torch  # noqa: E402

import mfgnet  # noqa: E402
from mfgnet.benchmarks.two_populations import two_populations  # noqa: E402
from mfgnet.evaluation import compare, relative_l2  # noqa: E402
from mfgnet.evaluation.style import panels, save  # noqa: E402
from mfgnet.grid.mesh import Grid  # noqa: E402
from mfgnet.grid.solution import GridSolution  # noqa: E402
from mfgnet.problems import cell_centre_points  # noqa: E402
from mfgnet.problems.examples import segregation  # noqa: E402
from mfgnet.solution import Diagnostics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "populations"
EVAL_TIMES = 5  # rel L2 of m per time, on the reference grid's nodes


def reference_path(problem, cells: int, grid_config: dict) -> Path:
    """Where the grid reference of ``problem`` on ``cells`` cells with ``grid_config`` is cached."""
    spec = json.dumps(grid_config, sort_keys=True)
    suffix = "" if not grid_config else "_" + hashlib.sha1(spec.encode()).hexdigest()[:8]
    return OUT / "references" / f"{problem.name}_{cells}{suffix}.npz"


def grid_reference(problem, cells: int, grid_config: dict) -> tuple[list[GridSolution], dict]:
    """The grid solve of ``problem`` (each population's GridSolution) and its record (converged,
    residual, iterations, solve, mass error, wall_s, cached): from the cache when it holds the same
    spec, else solved and written there."""
    spec = json.dumps({"problem": problem.name, "cells": cells, "grid_config": grid_config}, sort_keys=True)
    path = reference_path(problem, cells, grid_config)
    if path.exists():
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        if str(arrays["spec"]) == spec:
            info = json.loads(str(arrays["info"]))
            grid = Grid(arrays["lower"], arrays["upper"], tuple(arrays["cells"]), False, arrays["times"])
            diagnostics = Diagnostics(converged=info["converged"], iterations=info["iterations"],
                                      residual=info["residual"], residual_history=[], wall_time_s=info["wall_s"],
                                      extra={})
            populations = [GridSolution(problem.population_problem(k), grid, arrays[f"u_{k + 1}"],
                                        arrays[f"m_{k + 1}"], None, diagnostics) for k in range(problem.size)]
            return populations, {**info, "cached": os.path.relpath(path, ROOT)}
        print(f"{path} holds {arrays['spec']}, not {spec}: solving again", file=sys.stderr)
    started = time.perf_counter()
    solution = mfgnet.solve(problem, "grid", grid_config, cells=cells, progress=False)
    d = solution.diagnostics
    info = {"converged": bool(d.converged), "residual": float(d.residual), "iterations": int(d.iterations),
            "solve": d.extra.get("populations_solve", ""), "mass_error": float(d.extra["mass_error"]),
            "wall_s": time.perf_counter() - started}
    grid = solution.populations[0].grid
    if grid.periodic or grid.times is None:  # segregation: a time-dependent box
        raise NotImplementedError("the reference cache holds time-dependent solutions on a box")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, spec=np.array(spec), info=np.array(json.dumps(info)), lower=grid.lower,
                        upper=grid.upper, cells=np.array(grid.cells), times=grid.times,
                        **{f"{f}_{k + 1}": getattr(p, f) for k, p in enumerate(solution.populations) for f in "um"})
    print(f"[reference] {spec}: {info} -> {path}", file=sys.stderr, flush=True)
    return solution.populations, {**info, "cached": ""}


def nearest_equilibrium(problem, neural, cells: int, grid_config: dict):
    """The grid equilibrium reached on ``cells`` cells from the neural densities (each population's
    GridSolution) and the wall of that solve."""
    from mfgnet.grid.config import GridSolverConfig
    from mfgnet.grid.populations import solve_grid_populations

    config = GridSolverConfig(**{"progress": False, **grid_config, "cells": cells})
    started = time.perf_counter()
    solution = solve_grid_populations(problem, config, initial=neural.populations)
    return solution, time.perf_counter() - started


def asymmetry(population) -> float:
    """rel L2 between m(T) and its mirror image in x₁ ↔ x₂ on a 2D grid solution's nodes."""
    m = np.asarray(population.m[-1])
    return float(np.linalg.norm(m - m.T) / np.linalg.norm(m))


def errors_per_time(neural, reference, times: list[float]) -> list[list[float]]:
    """rel L2 of each population's m at each of ``times`` on the reference's nodes: [k][i]."""
    x = reference[0].nodes.to(torch.float64)
    with torch.no_grad():
        return [[relative_l2(neural.populations[k].density(t, x), reference[k].density(t, x)) for t in times]
                for k in range(len(reference))]


def figure(problem, neural, reference, path: Path, nearest=None) -> None:
    if problem.dim != 1:  # 2D: each population's m at the last time, neural beside reference
        return figure_2d(problem, neural, reference, path, nearest)
    lower, upper = problem.bounding_box().bounds()
    x = cell_centre_points(lower, upper, 400)
    times = [None] if problem.is_ergodic else [0.0, 0.5 * problem.horizon, problem.horizon]
    fig, axes = panels(1, len(times))
    for ax, t in zip(axes[0], times):
        for k in range(problem.size):
            with torch.no_grad():
                ax.plot(x[:, 0], neural.populations[k].density(t, x), color=f"C{k}", label=f"population {k + 1}")
                ax.plot(x[:, 0], reference[k].density(t, x), color=f"C{k}", ls="--")
        ax.set_xlabel("x")
        ax.set_ylabel("density")
        ax.set_title("stationary" if t is None else f"t = {t:g}")
    axes[0][0].plot([], [], color="0.3", ls="--", label="reference")
    axes[0][0].legend(frameon=False, fontsize=7)
    save(fig, path)


def figure_2d(problem, neural, reference, path: Path, nearest=None) -> None:
    """Each population's m at t = T (or stationary), neural beside reference (and beside the grid
    equilibrium reached from the neural densities, ``nearest``, when given) on one colour scale, and
    in a last panel neural and reference along the diagonal x₁ = x₂ at t = T/2 and T (neural solid,
    reference dashed)."""
    lower, upper = problem.bounding_box().bounds()
    cells = 96
    x = cell_centre_points(lower, upper, cells)
    t = None if problem.is_ergodic else problem.horizon
    times = [None] if problem.is_ergodic else [0.5 * problem.horizon, problem.horizon]
    s = torch.linspace(0.0, 1.0, 201, dtype=torch.float64)
    diagonal = lower + s[:, None] * (upper - lower)
    names = ("neural", "reference") + (() if nearest is None else ("grid from neural",))
    fig, axes = panels(problem.size, len(names) + 1)
    extent = [float(lower[0]), float(upper[0]), float(lower[1]), float(upper[1])]
    for k in range(problem.size):
        sources = [neural.populations[k], reference[k]] + ([] if nearest is None else [nearest[k]])
        with torch.no_grad():
            pair = [source.density(t, x) for source in sources]
        top = max(float(p.max()) for p in pair)
        for j, (values, name) in enumerate(zip(pair, names)):
            image = axes[k][j].imshow(values.reshape(cells, cells).T.numpy(), origin="lower", extent=extent, vmin=0,
                                      vmax=top)
            axes[k][j].set_title(f"population {k + 1}: {name}" + ("" if t is None else f", t = {t:g}"))
            axes[k][j].set_xlabel("x₁")
            axes[k][j].set_ylabel("x₂")
        fig.colorbar(image, ax=axes[k][len(names) - 1], label="density")
        ax = axes[k][len(names)]
        for i, tt in enumerate(times):
            with torch.no_grad():
                ax.plot(s, neural.populations[k].density(tt, diagonal), color=f"C{i}",
                        label="stationary" if tt is None else f"t = {tt:g}")
                ax.plot(s, reference[k].density(tt, diagonal), color=f"C{i}", ls="--")
        ax.plot([], [], color="0.3", ls="--", label="reference")
        ax.set_xlabel("x₁ = x₂")
        ax.set_ylabel("density")
        ax.set_title(f"population {k + 1} on the diagonal")
        ax.legend(frameon=False, fontsize=7)
    save(fig, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=["two_populations", "segregation"], required=True)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--cells", type=int, default=None, help="grid reference cells (default 256 in 1D, 64 in 2D)")
    parser.add_argument("--grid-config", default="{}", help="GridSolverConfig fields for the reference, JSON")
    parser.add_argument("--dim", type=int, default=1)
    parser.add_argument("--config", default="{}")
    parser.add_argument("--nearest-cells", type=int, default=None,
                        help="segregation 2D: also solve the grid on N cells from the neural densities (see above)")
    parser.add_argument("--tag", default=None)
    args = parser.parse_args(argv)
    if args.nearest_cells is not None and (args.problem != "segregation" or args.dim != 2):
        parser.error("--nearest-cells is for --problem segregation --dim 2")
    tag = args.tag or (args.problem if args.dim == 1 else f"{args.problem}_{args.dim}d")
    settings = dict(json.loads(args.config), progress=False)
    if args.steps is not None:
        settings["steps"] = args.steps
    if args.problem == "two_populations":
        problem, reference = two_populations(dim=args.dim)
        reference_label, grid_wall = "exact", 0.0
    else:
        problem = segregation(dim=args.dim)
        cells = args.cells or {1: 256, 2: 64}[args.dim]
        grid_config = json.loads(args.grid_config)
        reference, info = grid_reference(problem, cells, grid_config)
        grid_wall = info["wall_s"]
        reference_label = (f"grid {cells}{'²' if args.dim == 2 else ''} cells with {grid_config} ("
                           f"{info['solve']}, {info['iterations']} iterations, converged: {info['converged']}, "
                           f"residual {info['residual']:.1e}, mass error {info['mass_error']:.1e}"
                           + (f"; read from {info['cached']}, solved" if info["cached"] else "") + " in")
    load = os.getloadavg()[0]
    started = time.perf_counter()
    neural = mfgnet.solve(problem, "neural", **settings)
    wall = time.perf_counter() - started
    OUT.mkdir(parents=True, exist_ok=True)
    lines = [f"# Neural solver on {problem.name}: {problem.size} populations ({tag})", "",
             f"Command: `python experiments/populations_neural.py {shlex.join(sys.argv[1:])}`  ",
             f"Settings: the defaults of NeuralSolverConfig with {settings} ("
             + ("one u and one m network for all populations, the population a one-hot input, one Adam step on "
                "the sum of the losses" if neural.diagnostics.extra["networks"].startswith("shared") else
                "one pair of networks per population, trained in turn")
             + ": mfgnet.neural.populations).  ",
             f"Reference: {reference_label}" + (f" {grid_wall:.0f} s)" if grid_wall else "") + ".  ",
             f"Machine: {os.cpu_count()} CPUs, load {load:.1f} at the start (the wall is an upper bound); "
             f"torch {torch.__version__}.  ",
             f"Neural wall: {wall:.0f} s for both populations; converged (every population's own verdict): "
             f"{neural.diagnostics.converged}.", "",
             "| population | rel L2 u | rel L2 m | abs err λ | mass error | converged | residual | crowd gap "
             "| value gap | steps |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for k, population in enumerate(neural.populations):
        errors = compare(population, reference[k])
        d = population.diagnostics
        lam = f"{errors['abs_err_lambda']:.2e}" if "abs_err_lambda" in errors else ""
        gaps = " | ".join("" if d.extra.get(key) is None else f"{d.extra[key]:.2e}"
                          for key in ("crowd_gap", "value_gap"))
        lines.append(f"| {k + 1} | {errors['rel_l2_u']:.2e} | {errors['rel_l2_m']:.2e} | {lam} | "
                     f"{mfgnet.evaluation.mass_error(population):.1e} | {d.converged} | {d.residual:.2e} | "
                     f"{gaps} | {d.extra['steps']} |")
    if not problem.is_ergodic and grid_wall:  # where in time the error of m is
        times = [problem.horizon * i / (EVAL_TIMES - 1) for i in range(EVAL_TIMES)]
        per_time = errors_per_time(neural, reference, times)
        lines += ["", "rel L2 of m at each time (on the reference grid's nodes):", "",
                  "| population | " + " | ".join(f"t = {t:g}" for t in times) + " |",
                  "|---|" + "---|" * len(times)]
        lines += [f"| {k + 1} | " + " | ".join(f"{e:.2e}" for e in row) + " |" for k, row in enumerate(per_time)]
    nearest = None
    if args.nearest_cells:
        nearest, nearest_wall = nearest_equilibrium(problem, neural, args.nearest_cells, grid_config)
        d = nearest.diagnostics
        lines += ["", f"The grid equilibrium reached from the neural densities ({args.nearest_cells}² cells, "
                  f"{d.extra.get('populations_solve', '')}, {d.iterations} iterations, converged: {d.converged}, "
                  f"residual {d.residual:.1e}, {nearest_wall:.0f} s) against the neural answer and the reference; "
                  "asymmetry = rel L2 of m(T) against its mirror image in x₁ ↔ x₂:", "",
                  "| population | neural vs nearest: rel L2 u | rel L2 m | nearest vs reference: rel L2 m | "
                  "asymmetry nearest | asymmetry reference |", "|---|---|---|---|---|---|"]
        for k, population in enumerate(neural.populations):
            errors = compare(population, nearest.populations[k])
            gap = compare(nearest.populations[k], reference[k])["rel_l2_m"]
            lines.append(f"| {k + 1} | {errors['rel_l2_u']:.2e} | {errors['rel_l2_m']:.2e} | {gap:.2e} | "
                         f"{asymmetry(nearest.populations[k]):.2e} | {asymmetry(reference[k]):.2e} |")
    lines += ["", "Targets (issue 14): each m within rel L2 3e-2 of the reference.", "",
              f"![densities](neural_{tag}.png)"]
    figure(problem, neural, reference, OUT / f"neural_{tag}.png",
           None if nearest is None else nearest.populations)
    (OUT / f"neural_{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
