"""mfgnet side of the B1 comparison with DeepXDE (:func:`mfgnet.neural.solve_neural`).

    python experiments/peers/deepxde_mfgnet.py '{"dim": 1, "steps": 300, "lbfgs_steps": 0, "every": 25,
                                                "seed": 0, "threads": 1}'

An optional ``"config"`` entry (a NeuralSolverConfig overlay, e.g. ``{"loss": {"compile_jets": true}}``)
is laid over the settings below.

Default network (two tanh MLPs 64×3, sin/cos features, m = exp), 512 collocation points in
d = 1 and 1024 in d = 2, float64.  Errors (the same grid and formulas as the DeepXDE side) are
taken through the solver's ``monitor`` hook, whose time the solver excludes from its clock.
Prints the same JSON keys as ``deepxde_peer.py``; ``run_mfgnet(spec)`` is the importable form.
"""

from __future__ import annotations

import time

# Run as a script from this folder (or imported with it on sys.path, as run.py and the tests do).
from common import side_main


def run_mfgnet(spec: dict) -> dict:
    import torch

    from mfgnet.benchmarks import ergodic_torus

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
    _merge(config, spec.get("config") or {})
    return monitored_run(bench.problem, config, monitor, ("u", "m", "lambda"), adam_steps=int(spec["steps"]))


def _merge(base: dict, extra: dict) -> None:
    """Overlay ``extra`` (run.py's --mfgnet-config) on ``base``, section by section."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def monitored_run(problem, config: dict, monitor, keys: tuple[str, ...], adam_steps: int | None = None) -> dict:
    """Solve with ``monitor`` called every ``config["log_every"]`` steps; the side's JSON: the errors
    ``keys`` against the training clock (the monitor's time excluded), phases (Adam, then L-BFGS
    after ``adam_steps``), dtype, threads and walls."""
    import torch

    from mfgnet.neural import solve_neural

    start = time.perf_counter()
    sol = solve_neural(problem, config, monitor=monitor)
    h = sol.diagnostics.extra["history"]
    steps = list(h["monitor_step"])
    history = {"step": steps, "time_s": list(h["monitor_time_s"]), **{k: list(h[f"monitor_{k}"]) for k in keys},
               "phase": ["adam" if adam_steps is None or s <= adam_steps else "lbfgs" for s in steps]}
    return {"history": history, "dtype": sol.diagnostics.extra["dtype"],
            "torch": torch.__version__, "threads": int(config.get("cpu_threads", 1)),
            "wall_s": time.perf_counter() - start, "train_s": sol.diagnostics.wall_time_s}


if __name__ == "__main__":
    side_main(run_mfgnet)
