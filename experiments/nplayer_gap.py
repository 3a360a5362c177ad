"""The N-player gap (issue 15, part 2): what one player gains by deviating from the MFG equilibrium
in the N-player game, against N, on the beach bar.

    python experiments/nplayer_gap.py

Runs `python -m mfgnet.agents task=nplayer` (results/agents/nplayer/) and writes results/agents/nplayer.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mfgnet.agents.tasks import run_task

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    load = os.getloadavg()[0]
    task = {"name": "nplayer", "env": "beach_bar", "env_params": {"n": 4, "horizon": 2},
            "sizes": [5, 10, 20, 50, 100, 200, 500], "samples": 2000, "seeds": 3}
    m = run_task({"task": task, "seed": 0, "progress": False}, ROOT / "results" / "agents" / "nplayer")
    lines = ["# The N-player gap of a mean field equilibrium", "",
             f"Command: `python experiments/nplayer_gap.py {' '.join(sys.argv[1:])}` ({os.cpu_count()} CPUs, load "
             f"{load:.1f}; {m['wall_time_s']:.0f} s)  ",
             f"Game: {m['env']} (4 sites, 3 decisions), equilibrium by online mirror descent (exploitability "
             f"{m['equilibrium_exploitability']:.1e}).  ε_N: the deviator's best response over Markov policies in "
             "(t, own state) against the other N − 1 playing the equilibrium, its rewards and transitions averaged "
             f"over {m['samples']} simulated N-player populations with itself counted in the empirical "
             f"distribution (mfgnet.agents.nplayer); mean of {m['seeds']} independent estimates, spread = max − min.",
             "", "| N | ε_N | spread | ε_N × N | ε_N × √N |", "|---|---|---|---|---|"]
    for n, e, spread in zip(m["sizes"], m["epsilon"], m["epsilon_spread"]):
        lines.append(f"| {n} | {e:.5f} | {spread:.5f} | {e * n:.3f} | {e * n ** 0.5:.4f} |")
    lines += ["", f"Fitted slope of log ε_N against log N: {m['slope']:.2f}.", "",
              "The issue expected ε_N ∝ N^-1/2, the general rate for Lipschitz couplings; on this game the "
              "gain falls faster, close to N^-1 (ε_N × N nearly constant where the spread is small).  The "
              "beach bar's crowd cost −ln μ(s) is smooth in μ, so the N-player fluctuations of the empirical "
              "distribution (O(N^-1/2), mean zero) enter the deviator's expected reward only at second order, and "
              "its own weight in the distribution is 1/N: both give O(1/N).  N^-1/2 would need a coupling that "
              "is not differentiable at the equilibrium (a threshold, a max); none is measured here.  At the "
              "largest N the spread of the estimates is of the order of ε_N itself.", "",
              "![gap](nplayer/nplayer_gap.png)"]
    (ROOT / "results" / "agents" / "nplayer.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
