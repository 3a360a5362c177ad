"""Partial observation of the mean field (issue 15, part 3): MF-Q agents that see the mean action of K
sampled others, and finite-MFG agents that best-respond to a K-sample estimate of the distribution.

    python experiments/partial_observation.py

Runs `python -m mfgnet.agents task=partial` on two pairs of games (run directories under
results/agents/partial_observation/) and writes results/agents/partial_observation.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from mfgnet.agents.tasks import run_task

ROOT = Path(__file__).resolve().parents[1]
READING = ("Reading: on the SIR game the exploitability falls like K^-0.48, the rate of the sampling error of "
           "the estimated distribution.  The beach bar is not monotone in K: its crowd cost −ln μ(s) makes every"
           " site that a K-sample estimate leaves empty (K below the 10 sites, and often above) look far better "
           "than it is, so small samples send agents to the wrong places; only K = 100 comes near the full-"
           "information value.  MF-Q is not monotone either: on typed traffic K = 1 (a context that carries "
           "almost no information, so each agent learns one action against the realised mean) lands closer than "
           "K = 3..100, whose noisy contexts split the learning over bins that are visited at random; on ride "
           "sharing the distance falls from about 0.3 to 0.19 at K = 100, against 0.10 with the population mean."
           "  The number of agents observed is a setting whose effect depends on the game.")
RUNS = {
    "ride_sharing__sir_vaccination": {"mfq_env": "ride_sharing", "mfq_steps": 500, "finite_env": "sir_vaccination"},
    "typed_traffic__beach_bar": {"mfq_env": "typed_traffic", "mfq_steps": 1000, "finite_env": "beach_bar"},
}


def main() -> None:
    out = ROOT / "results" / "agents" / "partial_observation"
    lines = ["# Partial observation: agents that see K sampled others", "",
             f"Command: `python experiments/partial_observation.py {' '.join(sys.argv[1:])}` "
             f"({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the start)  ",
             "MF-Q: tabular, ε-greedy, 10000 agents; each agent's context is the mean action of K agents drawn "
             "each step, rewards follow the true mean action; distance to the full-information equilibrium as "
             "named per game.  Finite MFG: fictitious play (60 iterations) whose best response is the average "
             "over 16 sampled agents' best responses to a multinomial(K, μ_t) / K estimate of the flow; the "
             "exploitability is exact and full-information.  'full' = the population's own mean field.", ""]
    for name, settings in RUNS.items():
        task = {"name": "partial", "ks": [1, 3, 10, 30, 100], "n_agents": 10000, "iterations": 60, "views": 16,
                **settings}
        m = run_task({"task": task, "seed": 0, "progress": False}, out / name)
        slope = np.polyfit(np.log(m["ks"]), np.log(m["finite_exploitability"]), 1)[0]
        lines += [f"## MF-Q on {m['mfq_env']}, finite MFG {m['finite_env']} ({m['wall_time_s']:.0f} s)", "",
                  "| K | MF-Q distance to equilibrium | finite exploitability |", "|---|---|---|"]
        for k, d, e in zip(m["ks"], m["mfq_distance"], m["finite_exploitability"]):
            lines.append(f"| {k} | {d:.4f} | {e:.4f} |")
        lines += [f"| full | {m['mfq_distance_full']:.4f} | {m['finite_exploitability_full']:.4f} |", "",
                  f"Fitted slope of log exploitability against log K: {slope:.2f}.", "",
                  f"![{name}](partial_observation/{name}/partial_observation.png)", ""]
    lines += [READING, ""]
    (ROOT / "results" / "agents" / "partial_observation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
