"""N agents under a solved MFG: the mean-field limit, simulation throughput, and the
exploitability of perturbed policies (1D, B3 Hopf–Cole exact solution).

    python experiments/agents_simulation.py [--max-agents 1000000] [--throughput-agents 10000000]

Writes results/agents/simulation.md, mean_field_limit.png and exploitability.png.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mfgnet.agents.simulation import TabulatedPolicy, compare_to_solution, simulate  # noqa: E402
from mfgnet.benchmarks import hopf_cole  # noqa: E402
from mfgnet.solution import ExactSolution  # noqa: E402

BOUND = 1.2e9  # memory-bandwidth bound of a 1D step on this kind of machine (PEERS.md)


def mean_field_limit(bench, max_agents: int, out: Path, lines: list) -> None:
    steps = 400
    policy = TabulatedPolicy.from_solution(bench.exact, [0.5 * k / steps for k in range(steps)], 512)
    ns = [10**k for k in range(2, int(round(math.log10(max_agents))) + 1)]
    l1, w1 = [], []
    for n in ns:
        reps = max(3, min(20, 10**5 // n))
        errs = [compare_to_solution(simulate(bench.exact, n, steps, bins=1024, seed=s, policy=policy), bench.exact,
                                    l1_coarsen=16)[0] for s in range(reps)]
        l1.append(np.mean([e["l1"] for e in errs]))
        w1.append(np.mean([e["w1"] for e in errs]))
    s_l1 = np.polyfit(np.log(ns), np.log(l1), 1)[0]
    s_w1 = np.polyfit(np.log(ns), np.log(w1), 1)[0]
    s_w1_low = np.polyfit(np.log(ns[:-1]), np.log(w1[:-1]), 1)[0] if len(ns) > 2 else float("nan")
    lines += ["## Mean-field limit: distance between N agents and the exact m(T) (B3, T = 0.5)", "",
              f"Euler–Maruyama with {steps} steps (Δt = {0.5 / steps:.2e}), policy tabulated on 512 nodes, "
              "mean over max(3, min(20, 10^5/N)) seeds.", "",
              "| N | histogram L1 (64 cells) | W1 |", "|---|---|---|"]
    lines += [f"| {n:.0e} | {a:.3e} | {b:.3e} |" for n, a, b in zip(ns, l1, w1)]
    lines += ["", f"Fitted slopes: L1 {s_l1:.3f}, W1 {s_w1:.3f} (W1 without the largest N: {s_w1_low:.3f}); "
              "theory -1/2. At the largest N the W1 error approaches the O(Δt) Euler bias.", ""]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.loglog(ns, l1, "o-", label=f"hist. L1 (slope {s_l1:.2f})")
    ax.loglog(ns, w1, "s-", label=f"W1 (slope {s_w1:.2f})")
    ax.loglog(ns, l1[0] * (np.array(ns) / ns[0]) ** -0.5, "k--", lw=0.8, label="N^-1/2")
    ax.set(xlabel="agents N", ylabel="distance to exact m(T)", title="mean-field limit (B3)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "mean_field_limit.png", dpi=90)
    lines += ["![mean-field limit](mean_field_limit.png)", ""]


def _time(fn, reps: int = 20) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def throughput(bench, n_agents: int, lines: list) -> None:
    steps = 20
    policy = TabulatedPolicy.from_solution(bench.exact, [0.5 * k / steps for k in range(steps)], 512)
    lines += [f"## Throughput: 1D, N = {n_agents:.0e}, {steps} steps, policy tabulated on 512 nodes (float32)", "",
              "agent-steps/s counts the stepping only (not drawing m0); 'bound' is the memory-bandwidth bound "
              f"{BOUND:.1e}/s of PEERS.md.", "",
              "| kernel | interpolation | noise | threads | agent-steps/s | fraction of bound |",
              "|---|---|---|---|---|---|"]
    for backend, interp, noise, threads in [("numpy", "linear", "gaussian", 1), ("numpy", "linear", "gaussian", 2),
                                            ("numpy", "linear", "uniform", 2), ("numpy", "nearest", "uniform", 2),
                                            ("numpy", "nearest", "gaussian", 2), ("torch", "linear", "gaussian", 2)]:
        res = simulate(bench.exact, n_agents if backend == "numpy" else n_agents // 10, steps, policy=policy,
                       interp=interp, noise=noise, threads=threads, backend=backend,
                       chunk_size=None if backend == "numpy" else 1 << 20)
        label = "numpy (cells-unit positions, no per-step wrap)" if backend == "numpy" else "torch eager (N/10)"
        lines.append(f"| {label} | {interp} | {noise} | {threads} | {res.agent_steps_per_s:.3g} | "
                     f"{res.agent_steps_per_s / BOUND:.1%} |")
    # Where the time goes: each ingredient alone on one chunk of 2^16 agents (one thread).
    n = 1 << 16
    rng = np.random.default_rng(0)
    y = (rng.random(n, dtype=np.float32) * 512 + 32768).astype(np.float32)
    buf, fl = np.empty(n, np.float32), np.empty(n, np.float32)
    idx = np.empty(n, np.intp)
    tab = rng.random(512, dtype=np.float32)
    from mfgnet.agents.simulation.simulate import _Normals

    normals = _Normals(rng, n)
    parts = {
        "Gaussian numbers (numpy standard_normal f32)": lambda: rng.standard_normal(dtype=np.float32, out=buf),
        "Gaussian numbers (float32 Box–Muller, used)": normals.fill,
        "uniform numbers (random f32)": lambda: rng.random(dtype=np.float32, out=buf),
        "index: floor + cast + mask": lambda: (np.floor(y, out=fl), np.copyto(idx, fl, casting="unsafe"),
                                               np.bitwise_and(idx, 511, out=idx)),
        "linear interpolation: 2 gathers + lerp": lambda: (np.take(tab, idx, out=buf), np.take(tab, idx, out=fl),
                                                          np.multiply(fl, buf, out=fl), np.add(buf, fl, out=buf)),
        "nearest: 1 gather": lambda: np.take(tab, idx, out=buf),
        "position update (2 adds, 1 scale)": lambda: (np.add(y, buf, out=y), np.multiply(buf, 0.5, out=buf),
                                                     np.add(y, buf, out=y)),
        "histogram of positions (4096 bins)": lambda: np.bincount(idx, minlength=4096),
    }
    lines += ["", "Where the time goes (each ingredient alone, one thread, chunk of 2^16 agents):", "",
              "| ingredient | ns / agent | agents/s |", "|---|---|---|"]
    for name, fn in parts.items():
        t = _time(fn, 200) / n
        lines.append(f"| {name} | {t * 1e9:.2f} | {1 / t:.3g} |")
    lines.append("")


def exploitability_curve(bench, out: Path, lines: list, n_agents: int) -> None:
    from mfgnet.agents.exploitability import population_exploitability

    scales = [0.0, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5]
    rows = []
    for s in scales:
        sol = bench.exact if s == 1.0 else ExactSolution(bench.problem, lambda t, x, s=s: s * bench.exact._value(t, x),
                                                         bench.exact._density)
        start = time.perf_counter()
        r = population_exploitability(sol, n_agents, cells=128, seed=0)
        rows.append((s, r, time.perf_counter() - start))
    lines += ["## Exploitability of a simulated population (B3, 1D): policy of s·u", "",
              f"N = {n_agents} agents (Euler, 4 substeps per grid step); best response by the grid HJB "
              "(mfgnet.grid.solve_hjb, 128 cells) against the population's own histogram.", "",
              "| s | J_population | J_best_response | exploitability | MC std. error | time (s) |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {s} | {r['cost_population']:.5f} | {r['cost_best_response']:.5f} | {r['exploitability']:.2e} | "
              f"{r['cost_population_stderr']:.1e} | {t:.1f} |" for s, r, t in rows]
    lines += ["", "s = 1 is the equilibrium (exploitability 0 up to the grid's O(h) error and the Monte Carlo error);",
              "the gain of a deviating agent grows quadratically with |1 - s|.", ""]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot([s for s, _, _ in rows], [r["exploitability"] for _, r, _ in rows], "o-")
    ax.axhline(0, color="k", lw=0.6)
    ax.set(xlabel="policy scale s (α = -s ∇u)", ylabel="exploitability", title="B3: exploitability of s·u")
    fig.tight_layout()
    fig.savefig(out / "exploitability.png", dpi=90)
    lines += ["![exploitability](exploitability.png)", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-agents", type=int, default=1_000_000)
    parser.add_argument("--throughput-agents", type=int, default=10_000_000)
    parser.add_argument("--exploitability-agents", type=int, default=100_000)
    parser.add_argument("--out", default="results/agents")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    bench = hopf_cole()
    start = time.perf_counter()
    lines = ["# N-agent simulation under a solved MFG", "", f"Command: `python {' '.join(sys.argv)}`  ",
             "Machine: shared 2-core CPU (other jobs running); no GPU; numba not installed (numpy kernels, in-place, "
             "one chunk of 2^16 agents per thread; the chunks run on a 2-thread pool).", ""]
    throughput(bench, args.throughput_agents, lines)
    mean_field_limit(bench, args.max_agents, out, lines)
    exploitability_curve(bench, out, lines, args.exploitability_agents)
    lines.append(f"Total run time {time.perf_counter() - start:.0f} s.")
    (out / "simulation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
