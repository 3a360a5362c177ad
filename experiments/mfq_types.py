"""Mean field Q-learning with types (issue 14, part 1): drivers of K types on two roads
(`TypedTrafficGame`), learned per-type shares on road A against the exact typed Wardrop
equilibrium, over seeds and revision probabilities.

    python experiments/mfq_types.py [--agents 20000] [--steps 1000] [--seeds 5]

Writes results/agents/mfq_types.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from mfgnet.agents.mfq import MFQConfig, train_tabular
from mfgnet.agents.mfq.games import TypedTrafficGame

ROOT = Path(__file__).resolve().parents[1]
GAMES = {
    "2 types (0.8 / 0.2), type 1 splits": {},
    "3 types (0.3 / 0.4 / 0.3), type 2 splits": {"shares": (0.3, 0.4, 0.3), "free_flow_a": (1.0, 1.5, 2.0),
                                                 "free_flow_b": (2.0, 1.5, 1.0)},
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    lines = ["# MF-Q with types: two roads, K types of drivers", "",
             f"Command: `python experiments/mfq_types.py {' '.join(sys.argv[1:])}`  ",
             f"Machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the start.  ",
             f"Tabular MF-Q, ε-greedy (ε 0.5, decay 0.99, lr 0.1), {args.agents} agents, {args.steps} steps, "
             f"seeds 0..{args.seeds - 1}.  Share error = max over types of |μ_k learned − μ_k exact| "
             "(μ_k: type k's share on road A); exploitability = Σ_k w_k (type k's mean time − the faster road's).",
             ""]
    for name, params in GAMES.items():
        game = TypedTrafficGame(**params)
        share, mu = game.equilibrium()
        lines += [f"## {name}", "", f"Exact: share on A {share:.4f}, per type μ = {np.round(mu, 4).tolist()}.", "",
                  "| revise_prob | share error (per seed) | median | exploitability (per seed) | wall per run (s) |",
                  "|---|---|---|---|---|"]
        for revise in (1.0, 0.5, 0.3, 0.1):
            errors, gaps, walls = [], [], []
            for seed in range(args.seeds):
                started = time.perf_counter()
                res = train_tabular(game, args.agents, MFQConfig(steps=args.steps, policy="egreedy",
                                                                 revise_prob=revise, seed=seed, progress=False))
                walls.append(time.perf_counter() - started)
                errors.append(float(np.abs(game.type_shares(res.actions) - mu).max()))
                gaps.append(game.exploitability(res.actions))
            lines.append(f"| {revise:g} | {', '.join(f'{e:.4f}' for e in errors)} | {np.median(errors):.4f} | "
                         f"{', '.join(f'{g:.4f}' for g in gaps)} | {np.median(walls):.2f} |")
        lines.append("")
    lines += ["Where it works and where it does not: with one splitting type among two, synchronous revision "
              "(every agent may switch every step) settles within 0.01; with a splitting type between two "
              "others, synchronous best responses of the whole middle type cycle around its threshold, and "
              "letting only a fraction revise each step (revise_prob ≤ 0.5) lands on the equilibrium.  No single "
              "revision probability wins on both games at this budget.", ""]
    out = ROOT / "results" / "agents" / "mfq_types.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
