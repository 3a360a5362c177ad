"""The N-player gap (issue 15, part 2): what one player gains by deviating from the MFG equilibrium
in the N-player game, against N, on the beach bar (finite) and on three continuous 1D games (B3,
crowd aversion, B5 log-congestion) through the grid's discrete game.

    python experiments/nplayer_gap.py [--continuous-only]

Runs `python -m mfgnet.agents task=nplayer` (results/agents/nplayer/) and `task=nplayer_grid`
(results/agents/nplayer_grid/<problem>/) and writes results/agents/nplayer.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mfgnet.agents.nplayer_grid import RESOLVED_GAIN
from mfgnet.agents.tasks import run_task

ROOT = Path(__file__).resolve().parents[1]


CONTINUOUS = ("hopf_cole", "crowd_aversion", "log_congestion")
SIZES = [10, 30, 100, 300, 1000, 3000, 10000, 100000]


def continuous_section() -> list[str]:
    """Run task=nplayer_grid on each continuous problem; the markdown section of its results."""
    lines = ["", "## Continuous games (issue 15, part 2, second half)", ""]
    rows = []
    for name in CONTINUOUS:
        load = os.getloadavg()[0]
        task = {"name": "nplayer_grid", "problem": name, "sizes": SIZES, "realisations": 32}
        m = run_task({"task": task, "seed": 0, "progress": False},
                     ROOT / "results" / "agents" / "nplayer_grid" / name)
        rows.append((name, load, m))
    lines += [
        "The grid equilibrium (128 cells, Newton to 1e-11) read as a game on its cells: N − 1 agents follow "
        "the equilibrium as the Markov chain whose law is the scheme's own Fokker–Planck step (so E[crowd] = m "
        "exactly, no Euler bias); one deviates.  Its crowd cost at its own cell is F(t, x, (c + 1)/(N h)) "
        "(c: the others' count there; the deviator counts itself).  **Informed**: the deviator knows the "
        "realised crowd path and best-responds to it (the grid HJB against that path; 32 simulated paths per N, "
        "± two standard errors): an upper bound on any non-anticipating deviation.  **Feedback**: the deviator "
        "plays a feedback in (t, own cell) and best-responds to the expected cost (binomial expectation, "
        "exact, no simulation): the counterpart of the finite game's ε_N above.  Both are exact in the discrete "
        "game: with the equilibrium's own m the gap is 1e-15 (test).  mfgnet.agents.nplayer_grid; "
        "`python -m mfgnet.agents task=nplayer_grid task.problem=<name>`.", ""]
    for name, load, m in rows:
        lines += [f"### {m['problem']} (load {load:.1f}; {m['wall_time_s']:.0f} s)", "",
                  "| N | informed ε_N | ± 2 s.e. | feedback ε_N | E‖m^N − m‖₁ |", "|---|---|---|---|---|"]
        for n, e, se, mk, l1 in zip(m["sizes"], m["informed"], m["informed_stderr"], m["markov"], m["crowd_l1"]):
            feedback = f"{mk:.3e}" if mk > RESOLVED_GAIN else f"< {RESOLVED_GAIN:g} (round-off: {mk:.1e})"
            lines.append(f"| {n} | {e:.3e} | {2 * se:.1e} | {feedback} | {l1:.3f} |")
        lines += ["", f"Fitted slopes against log N: informed {m['slope_informed']:.2f}, feedback "
                  f"{m['slope_markov']:.2f} (resolved gains only), crowd distance {m['slope_crowd_l1']:.2f}.", "",
                  f"![gap](nplayer_grid/{name}/nplayer_gap.png)", ""]
    lines += [
        "What this shows.  The crowd itself fluctuates like N^-1/2 (the L1 column, once N is large enough that "
        "the cells are not mostly empty).  The gain is second order in those fluctuations where the coupling is "
        "smooth: the equilibrium control is optimal against the mean field, so a cost perturbation δ buys a "
        "gain of order δ².  A deviator that sees the crowd's noise (δ ~ N^-1/2) gains ~N^-1; one that cannot "
        "sees only the mean perturbation, δ ~ 1/N (its own weight and the others' (N − 1)/N), and gains ~N^-2 on "
        "the two games whose coupling is linear in m (B3, crowd aversion).  The log-congestion coupling is not "
        "Lipschitz at m = 0: in the Gaussian's tails, where N h m < 1, E[ln((c + 1)/(N h))] is off ln m by O(1), "
        "so the feedback gain falls only about like N^-1 over this range.  The issue expected N^-1/2, the general "
        "bound for Lipschitz couplings; none of these games attains it, and we say why rather than fit to it."]
    return lines


def main() -> None:
    if "--continuous-only" in sys.argv[1:]:
        path = ROOT / "results" / "agents" / "nplayer.md"
        text = path.read_text()
        head = text.split("\n## Continuous games")[0].rstrip("\n").split("\n")
        path.write_text("\n".join(head + continuous_section()) + "\n")
        print(path.read_text())
        return
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
    lines += continuous_section()
    (ROOT / "results" / "agents" / "nplayer.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
