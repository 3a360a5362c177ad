"""B2 (linear-quadratic, Gaussian) and B7 (separable crowd) in high dimension: neural solves and N-agent simulation.

First (issue 16's GPU check, a few seconds): the 1D simulation of 10^8 agents under B3's exact policy,
agent-steps/s and the histogram's L1 distance to the exact m(T) (``--sim1d-agents``, 0 skips it).

For each dimension d: ``mfgnet.solve(lq_gaussian(d).problem, "neural", ...)`` (float32;
Hutchinson's Laplacian is chosen automatically above d = 6), then the population under the
trained policy and under the exact policy α = -(a x + β), simulated by
[`simulate_policy`][mfgnet.agents.simulation.policy_simulation.simulate_policy]; the empirical mean and
covariance at T are compared with the exact ones (and with the Euler chain's, so that the
scheme's bias is not counted against the network).  Prints a table and writes
``high_dimension.json`` and ``high_dimension.md`` under ``--out``.

    python experiments/gpu/high_dimension.py --device cuda --solve-dims 50 100 --out results/gpu
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import mfgnet
from mfgnet.agents.simulation import LinearFeedbackSolution, euler_lq_moments, simulate_policy
from mfgnet.benchmarks.lq_gaussian import lq_gaussian
from mfgnet.benchmarks.separable_crowd import separable_crowd
from mfgnet.evaluation import compare

VAR0 = 0.1  # lq_gaussian's default s0


def solve_row(task: str, bench, steps: int, device: str, n_interior: int) -> tuple:
    """A float32 neural solve of ``bench`` and its row: cost, residual and the errors of u and m at
    samples of the reference m (mfgnet.evaluation.compare); returns (solution, row)."""
    d = bench.problem.dim
    start = time.perf_counter()
    solution = mfgnet.solve(bench.problem, "neural", steps=steps, dtype="float32", device=device,
                            progress=False, sampler={"n_interior": n_interior})
    wall = time.perf_counter() - start
    errors = compare(solution, bench.exact)
    return solution, {"task": task, "d": d, "device": device, "steps": steps, "n_interior": n_interior,
                      "wall_s": wall, "s_per_step": wall / max(steps, 1),
                      "residual": float(solution.diagnostics.residual),
                      "hutchinson": bool(solution.diagnostics.extra.get("hutchinson")),
                      "rel_l2_u": errors["rel_l2_u"], "rel_l2_m": errors["rel_l2_m"]}


def train(d: int, steps: int, device: str, n_interior: int, sim_dims: set) -> tuple:
    """A neural solve of B2 in d dimensions, with its policy error; returns (solution, bench, row)."""
    bench = lq_gaussian(d)
    solution, row = solve_row("solve", bench, steps, device, n_interior)
    coef = bench.exact.coefficients
    gen = torch.Generator().manual_seed(1)
    t = torch.rand(4096, generator=gen, dtype=torch.float64)
    x = coef.mean(t) + (coef.variance(t, VAR0).sqrt().unsqueeze(-1)
                        * torch.randn(4096, d, generator=gen, dtype=torch.float64))
    # The policy error where the population lives: the part of the solution that moves agents.
    a_net = solution.policy(t[:256], x[:256])
    a_ex = -(coef.a(t[:256]).unsqueeze(-1) * x[:256] + coef.beta(t[:256]))
    row["policy_rel_l2"] = float((a_net - a_ex).norm() / a_ex.norm())
    return (solution if d in sim_dims else None), bench, row


def train_b7(d: int, steps: int, device: str, n_interior: int, cells: int) -> dict:
    """A neural solve of B7 in d dimensions against (2D grid) ⊗ (exact LQ); the 2D grid reference
    is solved once per process, before the clock starts."""
    bench = separable_crowd(d, cells=cells)
    _ = bench.exact.planar  # the reference's grid solve, not counted in the neural wall time
    return solve_row("solve/b7", bench, steps, device, n_interior)[1]


def simulate_rows(d: int, bench, solution, n_agents: int, n_steps: int, device: str, chunk: int | None) -> list:
    """Simulate under the exact and (if given) the neural policy; one row each."""
    coef = bench.exact.coefficients
    T = torch.tensor([bench.problem.horizon], dtype=torch.float64)
    m_ex, v_ex = coef.mean(T), coef.variance(T, VAR0).unsqueeze(-1).expand(1, d)
    em, ev = euler_lq_moments(coef, VAR0, n_steps)
    policies = {"exact": LinearFeedbackSolution.from_lq_coefficients(bench.problem, coef)}
    if solution is not None:
        policies["neural"] = solution
    rows = []
    for name, pol in policies.items():
        r = simulate_policy(pol, n_agents, n_steps, chunk_size=chunk, device=device, progress=False)
        exact = r.compare(m_ex, v_ex)
        euler = r.compare(em[-1:], ev[-1:])
        rows.append({"task": f"simulate/{name}", "d": d, "device": device, "n_agents": n_agents,
                     "n_steps": n_steps, "chunk": r.timings["chunk_size"], "wall_s": r.wall_time_s,
                     "agent_steps_per_s": r.agent_steps_per_s, "policy_share": r.timings["policy_s"]
                     / max(r.timings["steps_s"], 1e-12),
                     "mean_err": exact["mean_err"][0], "mean_se": exact["mean_se"][0],
                     "var_err": exact["var_err"][0], "var_se": exact["var_se"][0],
                     "offdiag_max": exact["offdiag_max"][0], "offdiag_se": exact["offdiag_se"][0],
                     "mean_err_vs_euler": euler["mean_err"][0], "var_err_vs_euler": euler["var_err"][0],
                     "euler_bias_mean": float((em[-1] - m_ex[0]).abs().max()),
                     "euler_bias_var": float((ev[-1] - v_ex[0]).abs().max())})
    return rows


def simulate_1d_row(n_agents: int, n_steps: int, device: str) -> dict:
    """Issue 16's GPU check: the 1D simulation under B3's exact policy tabulated on 512 nodes,
    Gaussian noise, on ``device`` (the torch kernel off the CPU), agent-steps/s and the histogram's
    L1 distance to the exact m(T) on 256 bins (the statistics, not just the speed)."""
    from mfgnet.agents.simulation import TabulatedPolicy, compare_to_solution, simulate
    from mfgnet.benchmarks import hopf_cole

    bench = hopf_cole()
    policy = TabulatedPolicy.from_solution(bench.exact, [0.5 * k / n_steps for k in range(n_steps)], 512)
    # Large chunks: on a GPU a 2^22-agent chunk is a few microseconds of work per kernel launch.
    chunk = 1 << 25 if device != "cpu" else None
    simulate(bench.exact, 1 << 16, n_steps, policy=policy, device=device, bins=256, chunk_size=chunk,
             progress=False)  # warm-up: allocator, kernels
    r = simulate(bench.exact, n_agents, n_steps, policy=policy, device=device, bins=256, chunk_size=chunk,
                 progress=False)
    l1 = compare_to_solution(r, bench.exact, l1_coarsen=1)[-1]["l1"]
    return {"task": "simulate/1d_b3", "d": 1, "device": device, "n_agents": n_agents, "n_steps": n_steps,
            "chunk": r.timings["chunk_size"], "wall_s": r.wall_time_s, "agent_steps_per_s": r.agent_steps_per_s,
            "hist_l1_to_exact": l1}


def table(rows: list) -> str:
    """A markdown table of the rows (the union of their keys)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) else ("" if v is None else str(v))

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--solve-dims", type=int, nargs="*", default=[50, 100])
    ap.add_argument("--solve-steps", type=int, default=1000)
    ap.add_argument("--n-interior", type=int, default=2048)
    ap.add_argument("--b7-dims", type=int, nargs="*", default=[], help="B7 solves (after the B2 ones)")
    ap.add_argument("--b7-steps", type=int, default=1000)
    ap.add_argument("--b7-cells", type=int, default=64, help="cells per axis of B7's 2D grid reference")
    ap.add_argument("--sim-dim", type=int, default=10)
    ap.add_argument("--sim-solve-steps", type=int, default=300, help="training steps of the d=sim-dim network")
    ap.add_argument("--n-agents", type=int, default=10**6)
    ap.add_argument("--sim-steps", type=int, default=50)
    ap.add_argument("--chunk", type=int, default=None)
    ap.add_argument("--sim1d-agents", type=int, default=10**8,
                    help="agents of the 1D simulation row (B3, 20 steps; run first); 0 skips it")
    ap.add_argument("--out", default=os.environ.get("OUT", "results/gpu"))
    args = ap.parse_args(argv)
    if args.device == "cpu":
        # One intra-op thread: on a shared CPU, two spinning threads per op made a 2000-agent
        # policy call 27x slower (0.30 s against 0.011 s, measured).
        torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []

    def keep(row: dict) -> None:
        # Written after every row: if the run is cut by the device time limit, what ran is kept.
        rows.append(row)
        print(json.dumps(row), flush=True)
        (out / "high_dimension.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
        (out / "high_dimension.md").write_text(table(rows) + "\n")

    if args.sim1d_agents > 0:
        keep(simulate_1d_row(args.sim1d_agents, 20, args.device))
    for d in sorted({args.sim_dim, *args.solve_dims}):
        steps = args.sim_solve_steps if d == args.sim_dim else args.solve_steps
        solution, bench, row = train(d, steps, args.device, args.n_interior, {args.sim_dim})
        keep(row)
        if d == args.sim_dim:
            for r in simulate_rows(d, bench, solution, args.n_agents, args.sim_steps, args.device, args.chunk):
                keep(r)
    for d in args.b7_dims:
        keep(train_b7(d, args.b7_steps, args.device, args.n_interior, args.b7_cells))
    print(table(rows))


if __name__ == "__main__":
    main()
