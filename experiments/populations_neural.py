"""The neural solver on two populations (issue 14, part 1): B6 against its exact solution, and
segregation against the grid solver.

    python experiments/populations_neural.py --problem two_populations|segregation [--steps N]
        [--cells 256] [--tag NAME] [--config JSON]

Trains the K pairs of networks with the defaults (``--steps`` / ``--config`` override them),
measures each population's relative L2 errors of u and m (and λ for B6) against the exact
solution (B6) or a grid solve on ``--cells`` cells (segregation), and writes
results/populations/neural_<tag>.md and a figure of the densities (neural solid, reference dashed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

import mfgnet  # noqa: E402
from mfgnet.benchmarks.two_populations import two_populations  # noqa: E402
from mfgnet.evaluation import compare  # noqa: E402
from mfgnet.evaluation.style import panels, save  # noqa: E402
from mfgnet.problems import cell_centre_points  # noqa: E402
from mfgnet.problems.examples import segregation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "populations"


def figure(problem, neural, reference, path: Path) -> None:
    if problem.dim != 1:  # 2D: each population's m at the last time, neural beside reference
        return figure_2d(problem, neural, reference, path)
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


def figure_2d(problem, neural, reference, path: Path) -> None:
    lower, upper = problem.bounding_box().bounds()
    cells = 96
    x = cell_centre_points(lower, upper, cells)
    t = None if problem.is_ergodic else problem.horizon
    fig, axes = panels(problem.size, 2)
    extent = [float(lower[0]), float(upper[0]), float(lower[1]), float(upper[1])]
    for k in range(problem.size):
        with torch.no_grad():
            pair = [neural.populations[k].density(t, x), reference[k].density(t, x)]
        top = max(float(p.max()) for p in pair)
        for j, (values, name) in enumerate(zip(pair, ("neural", "reference"))):
            axes[k][j].imshow(values.reshape(cells, cells).T.numpy(), origin="lower", extent=extent, vmin=0, vmax=top)
            axes[k][j].set_title(f"population {k + 1}: {name}")
    save(fig, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=["two_populations", "segregation"], required=True)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--cells", type=int, default=256)
    parser.add_argument("--dim", type=int, default=1)
    parser.add_argument("--config", default="{}")
    parser.add_argument("--tag", default=None)
    args = parser.parse_args(argv)
    tag = args.tag or (args.problem if args.dim == 1 else f"{args.problem}_{args.dim}d")
    settings = dict(json.loads(args.config), progress=False)
    if args.steps is not None:
        settings["steps"] = args.steps
    if args.problem == "two_populations":
        problem, reference = two_populations(dim=args.dim)
        reference_label, grid_wall = "exact", 0.0
    else:
        problem = segregation(dim=args.dim)
        started = time.perf_counter()
        grid = mfgnet.solve(problem, "grid", cells=args.cells, progress=False)
        grid_wall = time.perf_counter() - started
        reference = grid.populations
        reference_label = f"grid {args.cells} cells (converged: {grid.diagnostics.converged})"
    load = os.getloadavg()[0]
    started = time.perf_counter()
    neural = mfgnet.solve(problem, "neural", **settings)
    wall = time.perf_counter() - started
    OUT.mkdir(parents=True, exist_ok=True)
    lines = [f"# Neural solver on {problem.name}: {problem.size} populations ({tag})", "",
             f"Command: `python experiments/populations_neural.py {' '.join(sys.argv[1:])}`  ",
             f"Settings: the defaults of NeuralSolverConfig with {settings} ("
             + ("one u and one m network for all populations, the population a one-hot input, one Adam step on "
                "the sum of the losses" if neural.diagnostics.extra["networks"].startswith("shared") else
                "one pair of networks per population, trained in turn")
             + ": mfgnet.neural.populations).  ",
             f"Reference: {reference_label}" + (f", {grid_wall:.0f} s" if grid_wall else "") + ".  ",
             f"Machine: {os.cpu_count()} CPUs, load {load:.1f} at the start (the wall is an upper bound); "
             f"torch {torch.__version__}.  ",
             f"Neural wall: {wall:.0f} s for both populations; converged (both checks pass): "
             f"{neural.diagnostics.converged}.", "",
             "| population | rel L2 u | rel L2 m | abs err λ | mass error | converged | residual | crowd gap | steps |",
             "|---|---|---|---|---|---|---|---|---|"]
    for k, population in enumerate(neural.populations):
        errors = compare(population, reference[k])
        d = population.diagnostics
        lam = f"{errors['abs_err_lambda']:.2e}" if "abs_err_lambda" in errors else ""
        gap = d.extra.get("crowd_gap")
        lines.append(f"| {k + 1} | {errors['rel_l2_u']:.2e} | {errors['rel_l2_m']:.2e} | {lam} | "
                     f"{mfgnet.evaluation.mass_error(population):.1e} | {d.converged} | {d.residual:.2e} | "
                     f"{'' if gap is None else f'{gap:.2e}'} | {d.extra['steps']} |")
    lines += ["", "Targets (issue 14): each m within rel L2 3e-2 of the reference.", "",
              f"![densities](neural_{tag}.png)"]
    figure(problem, neural, reference, OUT / f"neural_{tag}.png")
    (OUT / f"neural_{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
