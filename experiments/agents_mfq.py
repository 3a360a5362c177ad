"""Mean field Q-learning: traffic (B4), ride-sharing pricing, Ising lattice at N = 10^6, and the
speed of the vectorised learner against the seed's (corrected) per-agent loop.

    python experiments/agents_mfq.py [--ising-side 1000] [--quick] [--speed-reps 5] [--only-speed]

Writes results/agents/mfq.md and results/agents/mfq_actions.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.optimize import brentq  # noqa: E402

from mfgnet.agents.mfq import (  # noqa: E402
    IsingGame,
    MFQConfig,
    RideSharingGame,
    TwoRoadGame,
    train_neural,
    train_per_agent_loop,
    train_tabular,
)
from mfgnet.agents.mfq.games import TypedTrafficGame  # noqa: E402
from mfgnet.benchmarks import TwoRoadTraffic  # noqa: E402


def fmt(v) -> str:
    return "(" + ", ".join(f"{x:.3f}" for x in v) + ")"


def traffic_section(n: int, lines: list, ax) -> None:
    tr = TwoRoadTraffic()
    runs = [("tabular, ε-greedy", lambda: train_tabular(TwoRoadGame(tr), n, MFQConfig(steps=500, policy="egreedy"))),
            ("tabular, Boltzmann τ=0.01", lambda: train_tabular(TwoRoadGame(tr), n, MFQConfig(steps=500,
                                                                                                temperature=0.01))),
            ("neural, ε-greedy", lambda: train_neural(TwoRoadGame(tr), n, MFQConfig(steps=300, policy="egreedy",
                                                                                     epsilon_decay=0.98)))]
    lines += ["## Two-road traffic (B4): Nash μ_A = 1, social optimum μ_A = 2/3, PoA = 12/11 = 1.0909", "",
              f"N = {n} agents; Q(a, ā) with ā = μ_A (10 bins).", "",
              "| learner | steps | μ_A learned | social cost | cost at optimum | PoA (learned split) | "
              "agent-updates/s |", "|---|---|---|---|---|---|---|"]
    for label, fn in runs:
        res = fn()
        mu = res.action_dist[-1, 0]
        lines.append(f"| {label} | {res.steps[-1]} | {mu:.4f} | {tr.social_cost(mu):.4f} | "
                     f"{tr.social_cost(tr.optimal_share()):.4f} | {tr.social_cost(mu) / tr.social_cost(2 / 3):.4f} | "
                     f"{res.agent_updates_per_s:.3g} |")
        ax.plot(res.steps, res.action_dist[:, 0], label=label)
    ax.axhline(1.0, color="k", ls="--", lw=0.8)
    ax.set(title="traffic: share on road A", xlabel="step")
    ax.legend()
    lines.append("")


def ride_section(n: int, lines: list, ax) -> None:
    game = RideSharingGame(n_bins=9)
    lines += ["## Ride-sharing pricing (5 prices, reward |a - ā|/4)",
              "", "Equilibrium: half the drivers at the lowest price, half at the highest; mean reward 1/2.", "",
              "| learner | steps | action shares (prices 0..4) | mean reward |", "|---|---|---|---|"]
    runs = [("Boltzmann τ=0.02, optimistic Q0 = 1", MFQConfig(steps=600, temperature=0.02, q_init=1.0)),
            ("ε-greedy (0.5 → ×0.995/step)", MFQConfig(steps=600, policy="egreedy", epsilon_decay=0.995)),
            ("Boltzmann τ=0.02, Q0 = 0 (seed's lock-in)", MFQConfig(steps=600, temperature=0.02, q_init=0.0))]
    for label, cfg in runs:
        res = train_tabular(game, n, cfg)
        lines.append(f"| {label} | {cfg.steps} | {fmt(res.action_dist[-1])} | {res.mean_reward[-1]:.4f} |")
        if "optimistic" in label:
            for a in range(5):
                ax.plot(res.steps, res.action_dist[:, a], label=f"price {a}")
    ax.set(title="ride-sharing (Boltzmann, optimistic)", xlabel="step")
    ax.legend()
    lines.append("")


SPEED_CASES = [  # (game, policy label, config): the three games the per-agent loop can play (scalar ā)
    ("ride-sharing (5 prices)", "Boltzmann τ=0.02, Q0 = 1", lambda: RideSharingGame(n_bins=9),
     dict(temperature=0.02, q_init=1.0)),
    ("ride-sharing (5 prices)", "ε-greedy", lambda: RideSharingGame(n_bins=9), dict(policy="egreedy")),
    ("two-road traffic (2 roads)", "Boltzmann τ=0.01", TwoRoadGame, dict(temperature=0.01)),
    ("two-road traffic (2 roads)", "ε-greedy", TwoRoadGame, dict(policy="egreedy")),
    ("typed traffic (2 roads, 2 types)", "Boltzmann τ=0.01", TypedTrafficGame, dict(temperature=0.01)),
    ("typed traffic (2 roads, 2 types)", "ε-greedy", TypedTrafficGame, dict(policy="egreedy")),
]


def speed_section(quick: bool, lines: list, reps: int) -> None:
    n, steps = 10_000, 10 if quick else 50
    reps = min(reps, 2) if quick else reps
    lines += ["## Vectorised MF-Q against the seed's per-agent loop (corrected), N = 10^4", "",
              f"Each learner runs the same game and configuration for the same {steps} steps at N = {n}; the runs "
              f"are interleaved (loop, numpy, numba, loop, ...; seeds 0-{reps - 1}) and each entry is the median "
              f"of the {reps} runs' agent-updates/s (setup and numba's compilation are outside the clock).  "
              "numba: the compiled step (`backend=\"numba\"`, the default where numba is installed); numpy: the "
              "numpy step (`backend=\"numpy\"`, the fallback).  Ratios are against the loop.  "
              "The Ising game is not in the table: its mean action is per agent, which the loop cannot play.", "",
              "| game | policy | loop agent-updates/s | numpy agent-updates/s | numba agent-updates/s | "
              "numpy / loop | numba / loop |", "|---|---|---|---|---|---|---|"]
    for game_label, policy_label, make_game, kw in SPEED_CASES:
        rates = {"loop": [], "numpy": [], "numba": []}
        for seed in range(reps):
            cfg = MFQConfig(steps=steps, seed=seed, progress=False, **kw)
            rates["loop"].append(train_per_agent_loop(make_game(), n, cfg).agent_updates_per_s)
            for backend in ("numpy", "numba"):
                rates[backend].append(train_tabular(make_game(), n, cfg, backend=backend).agent_updates_per_s)
        loop, vec, fast = (float(np.median(rates[k])) for k in ("loop", "numpy", "numba"))
        lines.append(f"| {game_label} | {policy_label} | {loop:.3g} | {vec:.3g} | {fast:.3g} | {vec / loop:.0f}× | "
                     f"{fast / loop:.0f}× |")
        print(lines[-1], flush=True)
    # Same learning statistics: both learners, same config, 3 seeds each (N = 1000 so the loop finishes).
    game = RideSharingGame(n_bins=9)
    n_small, steps = 1000, 60 if quick else 300
    cfg = dict(steps=steps, temperature=0.02, q_init=1.0, record_every=steps)
    stats = {}
    for name, fn in [("per-agent loop", train_per_agent_loop),
                     ("vectorised, numpy", lambda *a: train_tabular(*a, backend="numpy")),
                     ("vectorised, numba", lambda *a: train_tabular(*a, backend="numba"))]:
        res = [fn(game, n_small, MFQConfig(seed=s, **cfg)) for s in range(3)]
        stats[name] = (np.array([r.action_dist[-1] for r in res]), np.array([r.mean_reward[-1] for r in res]))
    lines += ["", f"Learning statistics, N = {n_small}, {steps} steps, Boltzmann τ = 0.02, Q0 = 1, seeds 0-2 "
              "(mean ± seed-to-seed std):", "", "| learner | action shares | mean reward |", "|---|---|---|"]
    for name, (dist, rew) in stats.items():
        lines.append(f"| {name} | {fmt(dist.mean(0))} ± {fmt(dist.std(0))} | {rew.mean():.4f} ± {rew.std():.4f} |")
    lines.append("")


def ising_section(side: int, steps: int, lines: list) -> None:
    taus = [0.3, 0.5, 0.7, 1.0, 1.5]
    field = 0.05
    lines += [f"## Ising coordination on a {side}×{side} periodic lattice (N = {side * side:.0e}), 4-neighbour "
              "mean actions", "",
              f"Reward J σ ā + h σ with J = 1, h = {field}; shared tabular Q(σ, ā) (5 exact bins), Boltzmann τ, "
              f"half the agents revise per step, {steps} steps.",
              "Physics mean field: m = tanh((J m + h)/τ), ordered below τ_c = J = 1; the exact 2D critical "
              "temperature of these dynamics is 0.567 J.", "",
              "| τ | mean-field m | learned m | alignment ⟨σ ā⟩ | s / step | agent-updates/s |",
              "|---|---|---|---|---|---|"]
    for tau in taus:
        res = train_tabular(IsingGame(side, field=field), side * side,
                            MFQConfig(steps=steps, temperature=tau, revise_prob=0.5, shared=True, record_every=steps))
        m_mf = brentq(lambda m, tau=tau: m - np.tanh((m + field) / tau), -1e-9 if tau > 1 else 1e-3, 1.0)
        align = res.mean_reward[-1]
        spins = 2 * res.actions - 1
        lines.append(f"| {tau} | {m_mf:.3f} | {spins.mean():.3f} | {align:.3f} | {res.wall_time_s / steps:.3f} | "
                     f"{res.agent_updates_per_s:.3g} |")
    lines += ["", "(alignment = mean reward, which includes the small field term h⟨σ⟩.)", ""]


def replace_speed_section(path: Path, args) -> None:
    """Re-run the speed section and put it in place of the one in ``path`` (the other sections and
    their command line stay; the section names its own command)."""
    text = path.read_text()
    head, rest = text.split("## Vectorised MF-Q", 1)
    tail = rest[rest.index("\n## "):] if "\n## " in rest else ""
    lines = []
    speed_section(args.quick, lines, args.speed_reps)
    lines.insert(2, f"Command (this section): `python {' '.join(sys.argv)}`  ")
    path.write_text(head + "\n".join(lines).rstrip("\n") + "\n" + tail)
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ising-side", type=int, default=1000)
    parser.add_argument("--ising-steps", type=int, default=150)
    parser.add_argument("--quick", action="store_true", help="fewer loop steps (a smoke run)")
    parser.add_argument("--speed-reps", type=int, default=5, help="interleaved runs per learner in the speed table")
    parser.add_argument("--only-speed", action="store_true",
                        help="run the speed section alone and replace it in an existing mfq.md")
    parser.add_argument("--out", default="results/agents")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    lines = ["# Mean field Q-learning (Yang et al. 2018), vectorised over agents", "",
             f"Command: `python {' '.join(sys.argv)}`  ",
             "Machine: shared 2-core CPU (other jobs running); float32 Q-tables, numba step (numpy for shared tables); "
             "torch for the neural variant.",
             ""]
    if args.only_speed:
        replace_speed_section(out / "mfq.md", args)
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    traffic_section(10_000, lines, axes[0])
    ride_section(10_000, lines, axes[1])
    fig.tight_layout()
    fig.savefig(out / "mfq_actions.png", dpi=90)
    lines += ["![actions](mfq_actions.png)", ""]
    speed_section(args.quick, lines, args.speed_reps)
    ising_section(args.ising_side, args.ising_steps, lines)
    lines.append(f"Total run time {time.perf_counter() - start:.0f} s.")
    (out / "mfq.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
