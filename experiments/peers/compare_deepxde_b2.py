"""Neural solver vs DeepXDE 1.15 on B2 in d dimensions (issue 13): time to rel L2(m) ≤ 3e-2 and the
errors each side reaches.  Called by run.py (``python experiments/peers/run.py deepxde --problem b2``).

Both sides: two tanh MLPs 64×3, float32, 512 interior points a step drawn afresh, u(T) = G by the
output's form, one thread, separate processes, sides interleaved seed by seed.  mfgnet runs its
defaults with ``steps`` Adam steps (points where its particle cloud puts m, the quadratic skip of
R^d, m(0) as a log-form loss); DeepXDE runs Adam lr 1e-3 on the space-time box (deepxde_b2_peer.py)
until rel L2(m) ≤ 3e-2 or the budget.  Errors are relative L2 at the same 4096 points drawn from
the exact m(t), t uniform; checked every ``every`` steps, the checks' time excluded on both sides.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

# run.py puts this folder on sys.path.
from common import machine_note, median, run_side
from compare_deepxde import _best, _first, _ms_per_adam_step

TARGET = 3e-2


def run(python, out: Path, threads: int, repeats: int, quick: bool, command: str, dim: int, budget: float,
        steps: int | None, name: str, crowd_box: bool = False) -> str:
    import deepxde_b2_mfgnet

    every = 10 if quick else 50
    mfgnet_steps = 40 if quick else steps  # None: the solver's default (4000 Adam steps on R^d)
    peer_steps = 40 if quick else 10**7
    ours, peer = [], []
    with tempfile.TemporaryDirectory() as tmp:
        points = str(Path(tmp) / "b2_points.npz")
        setup = deepxde_b2_mfgnet.write_evaluation(points, dim, crowd_box=crowd_box)
        for seed in range(repeats):
            spec = {"eval": points, "dim": dim, "steps": mfgnet_steps, "every": every, "seed": seed, "threads": threads}
            ours.append(run_side(sys.executable, "deepxde_b2_mfgnet.py", spec, timeout_s=3 * budget + 600))
            peer.append(run_side(python, "deepxde_b2_peer.py", {"eval": points, "dim": dim, "adam_steps": peer_steps,
                                                                "budget_s": budget, "stop_at": TARGET, "every": every,
                                                                "seed": seed, "threads": threads, **setup},
                                 timeout_s=budget + 600))
    hits_ours, hits_peer = [_first(r["history"], TARGET) for r in ours], [_first(r["history"], TARGET) for r in peer]

    def med_time(hits):
        return median([h[0] for h in hits]) if all(hits) else float("inf")

    t_ours, t_peer = med_time(hits_ours), med_time(hits_peer)
    budget_peer = median([r["history"]["time_s"][-1] for r in peer])
    if np.isfinite(t_peer) and np.isfinite(t_ours):
        ratio = f"{t_peer / t_ours:.1f}×"
        met = t_peer / t_ours >= 3
    elif np.isfinite(t_ours):
        ratio = f"> {budget_peer / t_ours:.1f}× (DeepXDE not within {budget_peer:.0f} s)"
        met = budget_peer / t_ours >= 3
    else:
        ratio, met = "n/a (mfgnet did not reach the target)", False

    def fmt(h):
        return "not reached" if h is None else f"{h[0]:.0f} s (step {h[1]})"

    box = ("the box of the exact crowd's samples over [0, T] (about ±3.5 std: knowledge of the answer given to the "
           "peer)" if crowd_box else "mfgnet's bounding box of m (its grid box on R^d, about ±10 std of m0)")
    lines = [f"# Neural solver vs DeepXDE 1.15 (pytorch backend) on B2, d = {dim}", "",
             f"Command: `{command}`  ",
             f"Machine: {machine_note(threads)}.  ",
             "Both sides: two tanh MLPs 64×3, float32, 512 interior points a step drawn afresh, u(T) = G by "
             "the output's form, the same thread count, separate processes, sides interleaved seed by seed.  "
             f"mfgnet: its defaults{'' if mfgnet_steps is None else f' with {mfgnet_steps} Adam steps'} (cosine "
             "schedule over the run's steps; points where its particle "
             "cloud puts m; the quadratic skip of R^d; m(0) as a loss).  DeepXDE (experiments/peers/"
             f"deepxde_b2_peer.py): Adam lr 1e-3 on the space-time box over {box}, 256 "
             "initial points, m(0) loss weight 10, inputs scaled to [-1, 1], until rel L2(m) ≤ 3e-2 or "
             f"{budget:.0f} s.  **DeepXDE is given the exact mean m̄(t)** that the coupling needs (a PINN "
             "library cannot express that integral of m): an advantage to the peer.  Errors: rel L2 at the "
             "same 4096 points drawn from the exact m(t), t uniform, every "
             f"{every} steps, the checks' time excluded.", "",
             f"## Time to rel L2(m) ≤ {TARGET:g} ({repeats} seed{'s' if repeats > 1 else ''})", "",
             "| solver | per seed | median | ms / step (median) | best rel L2 m (u) per seed | speed-up | ≥ 3× |",
             "|---|---|---|---|---|---|---|"]
    for label, runs, hits, tail in (("mfgnet", ours, hits_ours, f"{ratio} | {'yes' if met else 'no'} |"),
                                    ("DeepXDE (Adam)", peer, hits_peer, "1× | |")):
        best = "; ".join(f"{b['m']:.3g} ({b['u']:.2g}) at {b['time_s']:.0f} s"
                         for b in (_best(r["history"], ("time_s", "step", "u", "m")) for r in runs))
        med = med_time(hits)
        lines.append(f"| {label} | {'; '.join(fmt(h) for h in hits)} | "
                     f"{f'{med:.0f} s' if np.isfinite(med) else 'not reached'} | "
                     f"{median([_ms_per_adam_step(r['history']) for r in runs]):.0f} | {best} | {tail}")
    lines += ["", f"![rel L2 of m against wall time]({name}.png)", ""]
    (out / f"{name}.json").write_text(json.dumps({"mfgnet": ours, "deepxde": peer}))
    _plot(ours, peer, dim, out / f"{name}.png")
    text = "\n".join(lines)
    (out / f"{name}.md").write_text(text)
    return text


def _plot(ours, peer, dim, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for key, ax in zip(("m", "u"), axes):
        for runs, colour, label in ((ours, "C0", "mfgnet"), (peer, "C1", "DeepXDE Adam")):
            for i, r in enumerate(runs):
                h = r["history"]
                ax.loglog(np.maximum(h["time_s"], 1e-2), h[key], color=colour, alpha=0.8,
                          label=label if i == 0 else None)
        if key == "m":
            ax.axhline(TARGET, color="k", lw=0.8, ls="--")
        ax.set(title=f"B2 d = {dim}", xlabel="training wall time (s)", ylabel=f"rel L2 error of {key}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
