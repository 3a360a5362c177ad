"""Price of anarchy of crowd aversion against the aversion strength (issue 14, part 2).

    python experiments/price_of_anarchy.py [--dim 1] [--viscosity 0.05] [--cells 256]
        [--aversions 0 0.5 1 2 5 10 20] [--solver grid] [--tag NAME]

For each aversion a: the Nash equilibrium of `crowd_aversion` (F = a m) and its social optimum
(F = 2 a m), both solved by the same solver, both feedbacks scored by one social cost
(`mfgnet.evaluation.social.social_cost`, which recomputes each crowd from its feedback), and
a finite-difference check that the optimum is a minimum: the optimal feedback perturbed by
±δ ψ in three directions ψ never costs less.  Also the PoA at a = 2 on three grids, to show
which digits are the problem's and which the discretisation's.

Writes results/price_of_anarchy/<tag>.md, .csv and .png (tag default crowd_aversion_<dim>d).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

from mfgnet.evaluation.social import price_of_anarchy, social_cost  # noqa: E402
from mfgnet.evaluation.social_figures import plot_price_of_anarchy  # noqa: E402
from mfgnet.evaluation.style import panels, save  # noqa: E402
from mfgnet.problems.examples import crowd_aversion  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DIRECTIONS = {
    "ψ = 1": lambda t, x: torch.ones_like(x),
    "ψ = sin(πx)": lambda t, x: torch.sin(math.pi * x),
    "ψ = t cos(2πx)": lambda t, x: t * torch.cos(2 * math.pi * x),
}


def perturbation_check(problem, optimum, delta: float) -> list[tuple[str, float, float]]:
    """J(α* ± δψ) − J(α*) for each direction ψ (all must be >= 0 at a minimum)."""
    base = social_cost(problem, optimum.policy).total
    rows = []
    for name, psi in DIRECTIONS.items():
        for sign in (-1.0, 1.0):
            cost = social_cost(problem, lambda t, x, s=sign, f=psi: optimum.policy(t, x) + s * delta * f(t, x)).total
            rows.append((name, sign * delta, cost - base))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=1)
    parser.add_argument("--viscosity", type=float, default=0.05)
    parser.add_argument("--cells", type=int, default=256)
    parser.add_argument("--aversions", type=float, nargs="+", default=[0, 0.5, 1, 2, 5, 10, 20])
    parser.add_argument("--solver", default="grid")
    parser.add_argument("--tag", default=None)
    args = parser.parse_args(argv)
    tag = args.tag or f"crowd_aversion_{args.dim}d"
    out = ROOT / "results" / "price_of_anarchy"
    out.mkdir(parents=True, exist_ok=True)
    settings = {"cells": args.cells, "progress": False} if args.solver == "grid" else {"progress": False}

    rows, results = [], {}
    for aversion in args.aversions:
        problem = crowd_aversion(dim=args.dim, viscosity=args.viscosity, aversion=aversion)
        started = time.perf_counter()
        result = price_of_anarchy(problem, args.solver, **settings)
        wall = time.perf_counter() - started
        results[aversion] = (problem, result)
        m = result.metrics
        rows.append({"aversion": aversion, "price_of_anarchy": result.ratio,
                     "nash_social_cost": m["nash_social_cost"], "optimum_social_cost": m["optimum_social_cost"],
                     "nash_control_cost": m["nash_control_cost"], "optimum_control_cost": m["optimum_control_cost"],
                     "nash_crowd_cost": m["nash_crowd_cost"], "optimum_crowd_cost": m["optimum_crowd_cost"],
                     "nash_terminal_cost": m["nash_terminal_cost"], "optimum_terminal_cost": m["optimum_terminal_cost"],
                     "nash_density_gap": m["nash_density_gap"], "optimum_density_gap": m["optimum_density_gap"],
                     "converged": m["nash_converged"] and m["optimum_converged"], "trusted": m["trusted"],
                     "wall_s": wall})
        print(f"aversion {aversion:g}: PoA {result.ratio:.5f}  ({wall:.1f} s)", file=sys.stderr)

    with open(out / f"{tag}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    check_aversion = 2.0 if 2.0 in results else args.aversions[-1]
    problem, result = results[check_aversion]
    check = perturbation_check(problem, result.optimum, delta=0.1)
    grids = []
    if args.solver == "grid":
        for cells in (args.cells // 2, args.cells, 2 * args.cells):
            grids.append((cells, price_of_anarchy(problem, "grid", cells=cells, progress=False).ratio))

    fig, axes = panels(1, 2)
    aversions = [r["aversion"] for r in rows]
    axes[0][0].plot(aversions, [r["price_of_anarchy"] for r in rows], "o-")
    axes[0][0].set(xlabel="aversion a (F = a m)", ylabel="price of anarchy J_Nash / J_opt",
                   title=f"crowd aversion, d = {args.dim}, ν = {args.viscosity:g}")
    axes[0][1].plot(aversions, [r["nash_social_cost"] - r["optimum_social_cost"] for r in rows], "o-",
                    label="J_Nash − J_opt")
    axes[0][1].plot(aversions, [r["optimum_control_cost"] - r["nash_control_cost"] for r in rows], "s--",
                    label="extra control cost at the optimum")
    axes[0][1].set(xlabel="aversion a", ylabel="cost", title="what cooperation saves and spends")
    axes[0][1].legend(frameon=False)
    save(fig, out / f"{tag}.png")
    plot_price_of_anarchy(result, out / f"{tag}_a{check_aversion:g}.png",
                          title=f"crowd aversion a = {check_aversion:g}, d = {args.dim}")

    command = "python experiments/price_of_anarchy.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    lines = [f"# Price of anarchy of crowd aversion ({tag})", "",
             f"Command: `{command}`  ",
             f"Problem: `crowd_aversion(dim={args.dim}, viscosity={args.viscosity:g}, aversion=a)` (no-flux box "
             "[0, 1]^d, T = 1, m0 a bump at 0.3 of width 0.1, G = |x − 0.75|², F = a m); social optimum F = 2 a m.  ",
             f"Solver: {args.solver} ({settings}); both feedbacks scored by `social_cost` (its own Fokker–Planck "
             "scheme, defaults).  ",
             f"Machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the end; torch {torch.__version__}.",
             "", f"![PoA against aversion]({tag}.png)", "",
             "| a | PoA | J Nash | J optimum | control Nash / opt | crowd Nash / opt | terminal Nash / opt | "
             "m gap Nash / opt | converged | trusted | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['aversion']:g} | {r['price_of_anarchy']:.5f} | {r['nash_social_cost']:.5f} | "
            f"{r['optimum_social_cost']:.5f} | {r['nash_control_cost']:.4f} / {r['optimum_control_cost']:.4f} | "
            f"{r['nash_crowd_cost']:.4f} / {r['optimum_crowd_cost']:.4f} | "
            f"{r['nash_terminal_cost']:.4f} / {r['optimum_terminal_cost']:.4f} | "
            f"{r['nash_density_gap']:.1e} / {r['optimum_density_gap']:.1e} | {r['converged']} | {r['trusted']} | "
            f"{r['wall_s']:.1f} |")
    lines += ["", "'m gap' is the relative L2 distance between the solver's own density and the crowd its feedback "
              "produces in the social cost's scheme (a check of the solution, not of the PoA).", "",
              f"## Is the optimum a minimum? (a = {check_aversion:g}: J(α* + s ψ) − J(α*), s = ±0.1)", "",
              "| direction | s | J − J* |", "|---|---|---|"]
    lines += [f"| {name} | {s:+.2f} | {diff:.3e} |" for name, s, diff in check]
    if grids:
        lines += ["", f"## The PoA at a = {check_aversion:g} on three grids", "",
                  "| cells | PoA |", "|---|---|"] + [f"| {c} | {p:.5f} |" for c, p in grids]
    (out / f"{tag}.md").write_text("\n".join(lines) + "\n")
    print(out / f"{tag}.md")


if __name__ == "__main__":
    main()
