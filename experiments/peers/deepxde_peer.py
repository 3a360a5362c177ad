"""DeepXDE 1.15 (pytorch backend) side of the B1 comparison; runs inside the peer's venv (.peers/deepxde).

    .peers/deepxde/bin/python experiments/peers/deepxde_peer.py '{"dim": 1, "adam_steps": 3000, "lbfgs": false,
        "budget_s": 180, "stop_at": 0.01, "every": 25, "seed": 0, "threads": 1}'

B1 (ergodic torus, σ = 1, ν = 1/2) written as a careful DeepXDE user writes it (PEERS.md):
sin/cos input features (exact periodicity), m = exp(net), λ a trainable ``dde.Variable``,
∫m = 1 and ∫u = 0 as extra residuals (batch means over a periodic uniform grid, i.e. the
trapezoid rule, so the constraint is not biased by the quadrature), two parallel tanh MLPs
64×3 (``PFNN``), 512 points (d = 1) / 32² (d = 2), Adam lr 1e-3, optionally L-BFGS after.

Residuals (cost convention): -ν Δu + ½|∇u|² + λ - ln m - f̃(x) = 0,  -ν Δm - div(m ∇u) = 0.

Errors are evaluated every ``every`` steps by a callback whose time is excluded from the
training time; prints one JSON object with the history.
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
    from scipy.special import i0

    d = int(spec["dim"])
    nu, beta = 0.5, 2.0
    lam_exact = -d * math.log(i0(beta))
    two_pi = 2 * math.pi
    dde.config.set_random_seed(int(spec.get("seed", 0)))

    def f_tilde(x):
        s, c = torch.sin(two_pi * x), torch.cos(two_pi * x)
        return (2 * math.pi ** 2 * (c ** 2 - s)).sum(-1, keepdim=True) - beta * s.sum(-1, keepdim=True)

    lam = dde.Variable(0.0)

    def pde(x, y):
        u, m = y[:, 0:1], y[:, 1:2]
        lap_u = sum(dde.grad.hessian(y, x, component=0, i=k, j=k) for k in range(d))
        lap_m = sum(dde.grad.hessian(y, x, component=1, i=k, j=k) for k in range(d))
        grad_u = [dde.grad.jacobian(y, x, i=0, j=k) for k in range(d)]
        grad_m = [dde.grad.jacobian(y, x, i=1, j=k) for k in range(d)]
        hjb = -nu * lap_u + 0.5 * sum(g * g for g in grad_u) + lam - torch.log(m) - f_tilde(x)
        fp = -nu * lap_m - sum(gm * gu for gm, gu in zip(grad_m, grad_u)) - m * lap_u
        ones = torch.ones_like(u)
        # Points are a periodic uniform grid, so batch means are the trapezoid rule for ∫.
        return [hjb, fp, (m.mean() - 1.0) * ones, u.mean() * ones]

    per_axis = 512 if d == 1 else 32
    axis = np.arange(per_axis) / per_axis
    points = np.stack(np.meshgrid(*([axis] * d), indexing="ij"), -1).reshape(-1, d)
    geom = dde.geometry.Interval(0, 1) if d == 1 else dde.geometry.Rectangle([0] * d, [1] * d)
    data = dde.data.PDE(geom, pde, [], num_domain=0, num_boundary=0, anchors=points)

    net = dde.nn.PFNN([2 * d, [64, 64], [64, 64], [64, 64], 2], "tanh", "Glorot normal")
    net.apply_feature_transform(lambda x: torch.cat([torch.sin(two_pi * x), torch.cos(two_pi * x)], -1))
    net.apply_output_transform(lambda x, y: torch.cat([y[:, 0:1], torch.exp(y[:, 1:2])], -1))
    model = dde.Model(data, net)
    # Hand-set weights (PEERS.md pitfall 4): the constraint terms start orders below the PDE terms.
    weights = spec.get("loss_weights", [1.0, 1.0, 100.0, 100.0])

    n_eval = 2048 if d == 1 else 128
    eaxis = np.arange(n_eval) / n_eval
    xe = np.stack(np.meshgrid(*([eaxis] * d), indexing="ij"), -1).reshape(-1, d).astype(np.float32)
    s = np.sin(two_pi * xe.astype(np.float64)).sum(-1)
    u_ex = -s - (-s).mean()
    m_ex = np.exp(beta * s) / i0(beta) ** d

    history = {"step": [], "time_s": [], "u": [], "m": [], "lambda": [], "phase": []}
    budget, stop_at, every = float(spec.get("budget_s", 180.0)), spec.get("stop_at"), int(spec.get("every", 25))

    class Monitor(dde.callbacks.Callback):
        """Errors every ``every`` steps; its own time is excluded from the training clock."""

        def __init__(self):
            super().__init__()
            self.start, self.excluded, self.phase, self.offset = time.perf_counter(), 0.0, "adam", 0

        def on_epoch_end(self):
            step = self.model.train_state.step
            if self.phase == "adam" and step % every:
                return
            t0 = time.perf_counter()
            y = self.model.predict(xe)
            u = y[:, 0].astype(np.float64)
            u = u - u.mean()
            history["step"].append(int(step))
            history["time_s"].append(t0 - self.start - self.excluded)
            history["u"].append(float(np.linalg.norm(u - u_ex) / np.linalg.norm(u_ex)))
            history["m"].append(float(np.linalg.norm(y[:, 1] - m_ex) / np.linalg.norm(m_ex)))
            history["lambda"].append(abs(float(lam.detach()) - lam_exact))
            history["phase"].append(self.phase)
            self.excluded += time.perf_counter() - t0
            if history["time_s"][-1] > budget or (stop_at is not None and history["m"][-1] <= stop_at):
                self.model.stop_training = True

    monitor = Monitor()
    model.compile("adam", lr=1e-3, loss_weights=weights, external_trainable_variables=[lam])
    model.train(iterations=int(spec["adam_steps"]), callbacks=[monitor], display_every=1000, verbose=0)
    reached = stop_at is not None and history["m"] and history["m"][-1] <= stop_at
    if spec.get("lbfgs") and not reached and history["time_s"][-1] <= budget:
        model.stop_training = False
        monitor.phase = "lbfgs"
        dde.optimizers.config.set_LBFGS_options(maxiter=int(spec.get("lbfgs_steps", 15000)))
        # Callbacks (errors, budget) only run between L-BFGS chunks; chunks of `every` iterations.
        dde.optimizers.config.LBFGS_options["iter_per_step"] = every
        dde.optimizers.config.LBFGS_options["fun_per_step"] = int(every * 1.25)
        model.compile("L-BFGS", loss_weights=weights, external_trainable_variables=[lam])
        model.train(callbacks=[monitor], display_every=1000, verbose=0)
    print(json.dumps({"history": history, "dtype": str(torch.get_default_dtype()).replace("torch.", ""),
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "wall_s": time.perf_counter() - monitor.start}))


if __name__ == "__main__":
    main()
