"""mfgnet side of the B1 comparison with DeepXDE (:func:`mfgnet.neural.solve_neural`).

    python experiments/peers/deepxde_mfgnet.py '{"dim": 1, "steps": 300, "lbfgs_steps": 0, "every": 25,
                                                "seed": 0, "threads": 1}'

Default network (two tanh MLPs 64×3, sin/cos features, m = exp), 512 collocation points in
d = 1 and 1024 in d = 2, float64.  Errors (the same grid and formulas as the DeepXDE side) are
taken through the solver's ``monitor`` hook, whose time the solver excludes from its clock.
Prints the same JSON keys as ``deepxde_peer.py``; ``run_mfgnet(spec)`` is the importable form.
"""

from __future__ import annotations

import json
import sys
import time


def run_mfgnet(spec: dict) -> dict:
    import torch

    from mfgnet.benchmarks import ergodic_torus
    from mfgnet.neural import solve_neural

    d = int(spec["dim"])
    bench = ergodic_torus(d)
    n_eval = int(spec.get("n_eval", 2048 if d == 1 else 128))
    axis = torch.arange(n_eval, dtype=torch.float64) / n_eval
    x = torch.stack(torch.meshgrid(*([axis] * d), indexing="ij"), -1).reshape(-1, d)
    u_ex = bench.exact.value(None, x)
    u_ex = u_ex - u_ex.mean()
    m_ex = bench.exact.density(None, x)
    lam_ex = bench.exact.ergodic_constant

    def monitor(step, sol):
        u = sol.value(None, x).detach()
        u = u - u.mean()
        m = sol.density(None, x).detach()
        return {"u": float((u - u_ex).norm() / u_ex.norm()), "m": float((m - m_ex).norm() / m_ex.norm()),
                "lambda": abs(sol.ergodic_constant - lam_ex)}

    config = {"dtype": spec.get("dtype", "float64"), "steps": int(spec["steps"]), "seed": int(spec.get("seed", 0)),
              "log_every": int(spec.get("every", 25)), "cpu_threads": int(spec.get("threads", 1)),
              "optim": {"lbfgs_steps": int(spec.get("lbfgs_steps", 0))}}
    if d == 2:
        config["sampler"] = {"n_interior": 1024, "n_quadrature": 1024}
    start = time.perf_counter()
    sol = solve_neural(bench.problem, config, monitor=monitor)
    h = sol.diagnostics.extra["history"]
    n_adam = int(spec["steps"])
    history = {"step": list(h["monitor_step"]), "time_s": list(h["monitor_time_s"]), "u": list(h["monitor_u"]),
               "m": list(h["monitor_m"]), "lambda": list(h["monitor_lambda"]),
               "phase": ["adam" if s <= n_adam else "lbfgs" for s in h["monitor_step"]]}
    return {"history": history, "dtype": config["dtype"], "torch": torch.__version__,
            "threads": int(spec.get("threads", 1)), "wall_s": time.perf_counter() - start,
            "train_s": sol.diagnostics.wall_time_s}


def main() -> None:
    spec = json.loads(sys.argv[1])
    import torch

    torch.set_num_threads(int(spec.get("threads", 1)))
    print(json.dumps(run_mfgnet(spec)))


if __name__ == "__main__":
    main()
