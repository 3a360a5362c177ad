"""DeepXDE 1.15 (pytorch backend) side of the B2 comparison; runs inside the peer's venv (.peers/deepxde).

    .peers/deepxde/bin/python experiments/peers/deepxde_b2_peer.py '{"eval": "points.npz", "dim": 5,
        "adam_steps": 100000, "budget_s": 900, "stop_at": 0.03, "every": 100, "seed": 0, "threads": 1}'

B2 (linear-quadratic MFG on R^d, BENCHMARKS.md) written as a careful DeepXDE user writes it:
the space-time box [lower, upper]^d × [0, T] (mfgnet's bounding box of the problem, passed in
the spec), inputs centred and scaled to [-1, 1], two parallel tanh MLPs 64×3 (``PFNN``),
u(T) = G exactly by an output transform (u = G + (1 - t/T) net, as mfgnet's default),
m = exp(net), m(0) = m0 as an initial-condition loss (weight 10, as mfgnet's), 512 domain and 256
initial points drawn afresh every step (``PDEPointResampler(period=1)``, as mfgnet draws), Adam
lr 1e-3, float32.  The mean m̄(t) that the coupling needs (an integral of m over R^d at each t,
which a PINN library has no means to express) is given to DeepXDE exactly: an advantage to the
peer, stated in the table.

Residuals (cost convention, H = ½|p|²):
    HJB: -∂t u - ν Δu + ½|∇u|² - (κ/2)|x - ρ m̄(t)|² = 0
    FP:   ∂t m - ν Δm - div(m ∇u) = 0

Errors (rel L2 of u and m) are evaluated at fixed points drawn from the exact m(t) (the file
``eval``, written by the mfgnet side) every ``every`` steps by a callback whose time is excluded
from the training clock; prints one JSON object with the history.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time


def main() -> None:
    spec = json.loads(sys.argv[1])
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    import numpy as np
    import torch

    torch.set_num_threads(int(spec.get("threads", 1)))
    import deepxde as dde

    d = int(spec["dim"])
    p = spec["params"]
    T, kappa, cT, rho, nu, x0, s0 = (float(p[k]) for k in ("horizon", "kappa", "terminal_weight", "rho",
                                                          "viscosity", "mean0", "var0"))
    lower, upper = np.asarray(spec["lower"], float), np.asarray(spec["upper"], float)
    dde.config.set_random_seed(int(spec.get("seed", 0)))

    omega = math.sqrt(kappa * (1 - rho))
    denominator = omega * math.cosh(omega * T) + cT * (1 - rho) * math.sinh(omega * T)

    def mean_path(t):  # m̄(t) per coordinate (exact; see the module docstring)
        tau = T - t
        return x0 * (omega * torch.cosh(omega * tau) + cT * (1 - rho) * torch.sinh(omega * tau)) / denominator

    mean_T = x0 * omega / denominator

    def pde(x, y):
        t = x[:, d:d + 1]
        m = y[:, 1:2]
        u_t = dde.grad.jacobian(y, x, i=0, j=d)
        m_t = dde.grad.jacobian(y, x, i=1, j=d)
        grad_u = [dde.grad.jacobian(y, x, i=0, j=k) for k in range(d)]
        grad_m = [dde.grad.jacobian(y, x, i=1, j=k) for k in range(d)]
        lap_u = sum(dde.grad.hessian(y, x, component=0, i=k, j=k) for k in range(d))
        lap_m = sum(dde.grad.hessian(y, x, component=1, i=k, j=k) for k in range(d))
        drift_pull = 0.5 * kappa * ((x[:, :d] - rho * mean_path(t)) ** 2).sum(-1, keepdim=True)
        hjb = -u_t - nu * lap_u + 0.5 * sum(g * g for g in grad_u) - drift_pull
        fp = m_t - nu * lap_m - sum(gm * gu for gm, gu in zip(grad_m, grad_u)) - m * lap_u
        return [hjb, fp]

    def initial_density(x):
        z = ((x[:, :d] - x0) ** 2).sum(-1, keepdims=True) / s0
        return np.exp(-0.5 * z) / (2 * math.pi * s0) ** (0.5 * d)

    geom = dde.geometry.Hypercube(lower.tolist(), upper.tolist())
    geomtime = dde.geometry.GeometryXTime(geom, dde.geometry.TimeDomain(0.0, T))
    ic = dde.icbc.IC(geomtime, initial_density, lambda _, on_initial: on_initial, component=1)
    data = dde.data.TimePDE(geomtime, pde, [ic], num_domain=512, num_boundary=0, num_initial=256,
                            train_distribution="pseudo")

    centre = torch.tensor((lower + upper) / 2, dtype=torch.float32)
    half = torch.tensor((upper - lower) / 2, dtype=torch.float32)
    net = dde.nn.PFNN([d + 1, [64, 64], [64, 64], [64, 64], 2], "tanh", "Glorot normal")
    net.apply_feature_transform(lambda x: torch.cat([(x[:, :d] - centre) / half, 2 * x[:, d:] / T - 1], -1))

    def outputs(x, y):
        g = 0.5 * cT * ((x[:, :d] - rho * mean_T) ** 2).sum(-1, keepdim=True)
        return torch.cat([g + (1 - x[:, d:] / T) * y[:, 0:1], torch.exp(y[:, 1:2])], -1)

    net.apply_output_transform(outputs)
    model = dde.Model(data, net)
    weights = spec.get("loss_weights", [1.0, 1.0, 10.0])

    points = np.load(spec["eval"])
    xe = np.concatenate([points["x"], points["t"]], -1).astype(np.float32)
    u_ex, m_ex = points["u"], points["m"]

    history = {"step": [], "time_s": [], "u": [], "m": [], "phase": []}
    budget, stop_at, every = float(spec.get("budget_s", 900.0)), spec.get("stop_at"), int(spec.get("every", 100))

    class Monitor(dde.callbacks.Callback):
        """Errors every ``every`` steps; its own time is excluded from the training clock."""

        def __init__(self):
            super().__init__()
            self.start, self.excluded = time.perf_counter(), 0.0

        def on_epoch_end(self):
            step = self.model.train_state.step
            if step % every:
                return
            t0 = time.perf_counter()
            y = self.model.predict(xe).astype(np.float64)
            history["step"].append(int(step))
            history["time_s"].append(t0 - self.start - self.excluded)
            history["u"].append(float(np.linalg.norm(y[:, 0] - u_ex) / np.linalg.norm(u_ex)))
            history["m"].append(float(np.linalg.norm(y[:, 1] - m_ex) / np.linalg.norm(m_ex)))
            history["phase"].append("adam")
            self.excluded += time.perf_counter() - t0
            if history["time_s"][-1] > budget or (stop_at is not None and history["m"][-1] <= stop_at):
                self.model.stop_training = True

    monitor = Monitor()
    model.compile("adam", lr=1e-3, loss_weights=weights)
    model.train(iterations=int(spec["adam_steps"]), callbacks=[monitor, dde.callbacks.PDEPointResampler(period=1)],
                display_every=1000, verbose=0)
    print(json.dumps({"history": history, "dtype": str(torch.get_default_dtype()).replace("torch.", ""),
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "wall_s": time.perf_counter() - monitor.start}))


if __name__ == "__main__":
    main()
