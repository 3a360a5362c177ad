"""mfgnet side of the B2 comparison with DeepXDE (:func:`mfgnet.neural.solve_neural`).

    python experiments/peers/deepxde_b2_mfgnet.py '{"eval": "points.npz", "dim": 5, "steps": 2000,
                                                   "every": 50, "seed": 0, "threads": 1}'

B2 with its reference parameters (``lq_gaussian(dim)``), the solver's defaults (two tanh MLPs
64×3, float32, 512 interior points a step drawn where the particle cloud of m is, the quadratic
skip on R^d, 4000 Adam steps) unless ``steps`` is given.  ``write_evaluation`` draws the fixed
evaluation points both sides use: n times uniform in [0, T] and one point from the exact m(t) at
each (as :func:`mfgnet.evaluation.compare` does on R^d), with the exact u and m there.
"""

from __future__ import annotations

import inspect

# Run as a script from this folder (or imported with it on sys.path, as run.py and the tests do).
from common import side_main
from deepxde_mfgnet import monitored_run


def write_evaluation(path: str, dim: int, n: int = 4096, seed: int = 0, crowd_box: bool = False) -> dict:
    """Write the evaluation points and exact values to ``path`` (npz); return B2's parameters and the
    peer's box: the problem's bounding box (mfgnet's grid box on R^d), or with ``crowd_box`` the box of
    the samples of the exact m(t) (knowledge of the answer given to the peer)."""
    import numpy as np
    import torch

    from mfgnet.benchmarks import lq_gaussian
    from mfgnet.evaluation.metrics import exact_samples

    bench = lq_gaussian(dim)
    t, x = exact_samples(bench.exact, n=n, seed=seed)
    with torch.no_grad():
        u, m = bench.exact.value(t, x), bench.exact.density(t, x)
    np.savez(path, t=t.numpy(), x=x.numpy(), u=u.numpy(), m=m.numpy())
    lower, upper = bench.problem.bounding_box().bounds()
    if crowd_box:  # the smallest box holding the evaluation samples of the exact m(t): ~±3.5 std
        lower, upper = x.min(0).values, x.max(0).values
    # lq_gaussian's defaults (the reference parameters of BENCHMARKS.md), read from its signature.
    params = {k: v.default for k, v in inspect.signature(lq_gaussian).parameters.items() if k != "dim"}
    return {"params": params, "lower": lower.tolist(), "upper": upper.tolist()}


def run_mfgnet(spec: dict) -> dict:
    import numpy as np
    import torch

    from mfgnet.benchmarks import lq_gaussian

    d = int(spec["dim"])
    bench = lq_gaussian(d)
    points = np.load(spec["eval"])
    t, x = torch.from_numpy(points["t"]), torch.from_numpy(points["x"])
    u_ex, m_ex = torch.from_numpy(points["u"]), torch.from_numpy(points["m"])

    def monitor(step, sol):
        u, m = sol.value(t, x).detach().double(), sol.density(t, x).detach().double()
        return {"u": float((u - u_ex).norm() / u_ex.norm()), "m": float((m - m_ex).norm() / m_ex.norm())}

    config = {"steps": spec.get("steps"), "seed": int(spec.get("seed", 0)), "log_every": int(spec.get("every", 50)),
              "cpu_threads": int(spec.get("threads", 1)), "progress": False}
    return monitored_run(bench.problem, config, monitor, ("u", "m"))


if __name__ == "__main__":
    side_main(run_mfgnet)
