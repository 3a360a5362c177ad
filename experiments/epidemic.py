"""The SIR vaccination game (issue 15, part 1): price of anarchy of vaccination against its cost,
and the N-agent distance to the mean field against N.

    python experiments/epidemic.py [--costs 0.2 0.4 0.7 1.0 1.5 2.0] [--sizes 100 ... 1000000]

Writes results/agents/epidemic.md and results/agents/epidemic.png (the c_V = 1 case).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from mfgnet.agents.epidemic import n_agent_gap, social_cost, social_optimum  # noqa: E402
from mfgnet.agents.finite import make_env, online_mirror_descent  # noqa: E402
from mfgnet.agents.finite.dynamics import mean_field  # noqa: E402
from mfgnet.agents.tasks import epidemic_figure  # noqa: E402
from mfgnet.evaluation.style import save  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--costs", type=float, nargs="+", default=[0.2, 0.4, 0.7, 1.0, 1.5, 2.0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000, 100000, 1000000])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    game = make_env("sir_vaccination")
    p = game.info
    lines = ["# SIR vaccination game: equilibrium, social optimum, N agents", "",
             f"Command: `python experiments/epidemic.py {' '.join(sys.argv[1:])}`  ",
             f"Machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the start.  ",
             f"Game (`sir_vaccination`): T = {game.horizon} steps, infection {p['infection']} × fraction infected, "
             f"recovery {p['recovery']}, vaccination success {p['vaccination']} per step of effort, infection cost "
             f"{p['infection_cost']} per step ill, 1 % infected at t = 0.  Equilibrium: online mirror descent, 300 "
             "iterations (exploitability exact); optimum: L-BFGS-B on the susceptibles' vaccination probabilities "
             "with the adjoint gradient, 6 starts; costs are the population's total expected cost.", "",
             "## Price of anarchy against the cost of vaccination (per step of effort)", "",
             "| c_V | exploitability | equilibrium cost | optimum cost | PoA | vaccinated (eq. / opt.) | "
             "peak infected (eq. / opt.) | wall (s) |", "|---|---|---|---|---|---|---|---|"]
    keep = None
    for cost in args.costs:
        started = time.perf_counter()
        g = make_env("sir_vaccination", vaccination_cost=cost)
        res = online_mirror_descent(g, 300, step=1.0)
        opt = social_optimum(g)
        nash = social_cost(g, res.pi)
        mu_opt = mean_field(g, opt.policy)[0].sum(-1)
        peaks = f"{res.mu[:, 1].max():.3f} / {mu_opt[:, 1].max():.3f}"
        lines.append(f"| {cost:g} | {res.exploitability[-1]:.1e} | {nash:.4f} | {opt.cost:.4f} | {nash / opt.cost:.4f} "
                     f"| {res.mu[-1, 3]:.3f} / {mu_opt[-1, 3]:.3f} | {peaks} | {time.perf_counter() - started:.1f} |")
        if cost == 1.0:
            keep = (g, res, opt, mu_opt)
    lines += ["", "Selfish agents stop vaccinating once the risk left to them is worth less than the shot; the "
              "planner also counts the infections each shot prevents in others, so it vaccinates more and "
              "earlier.", ""]
    if keep is not None:
        g, res, opt, mu_opt = keep
        started = time.perf_counter()
        gap = n_agent_gap(g, res.pi, args.sizes, seeds=args.seeds)
        lines += ["## N agents under the equilibrium policy (c_V = 1)", "",
                  f"max over t and states of |fraction − μ_t|, mean of {args.seeds} runs per N "
                  f"({time.perf_counter() - started:.1f} s in all):", "",
                  "| N | distance | distance × √N |", "|---|---|---|"]
        for n, d, scaled in zip(gap["sizes"], gap["gaps"], gap["gap_times_sqrt_n"]):
            lines.append(f"| {n} | {d:.4f} | {scaled:.2f} |")
        lines += ["", f"Fitted slope of log distance against log N: {gap['slope']:.3f} (theory −1/2).", "",
                  "![epidemic](epidemic.png)"]
        save(epidemic_figure(res.mu, mu_opt, res.pi[:, 0, 1], opt.q, gap), ROOT / "results" / "agents" / "epidemic.png")
    (ROOT / "results" / "agents" / "epidemic.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
