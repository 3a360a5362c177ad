"""Discretisation bridge: a 1D continuous MFG as a finite MFG (Markov chain approximation).

Cells of width h are the states; a time step Δt is one decision; the actions are a grid of
velocities α_a on [-α_max, α_max].  An agent at cell s with velocity α moves one cell right
with probability (ν/h² + α⁺/h) Δt, left with (ν/h² + α⁻/h) Δt, else stays (Kushner–Dupuis:
mean drift α, variance 2ν per unit time up to O(h)).  It pays (|α|²/(2c) + F(t, x_s, μ/h)) Δt
per step and G(x_s, μ_K/h) at the end (reward = -cost).  As h, Δt -> 0 and the velocity
grid refines, the finite equilibrium flow μ_k/h converges to the continuous m(t_k, ·).
"""

from __future__ import annotations

import numpy as np
import torch

from mfgnet.agents.finite.game import FiniteMFG
from mfgnet.problems import ProblemError, QuadraticHamiltonian, Torus, cell_centres
from mfgnet.solution import time_column


def finite_from_continuous(problem, cells: int = 32, time_steps: int | None = None, n_actions: int = 21,
                           alpha_max: float = 2.0) -> FiniteMFG:
    """The finite MFG of a 1D, time-dependent problem with H = (c/2)|p|² and local couplings."""
    if problem.dim != 1 or problem.is_ergodic:
        raise ProblemError("the bridge handles 1D time-dependent problems")
    if not isinstance(problem.hamiltonian, QuadraticHamiltonian):
        raise ProblemError("the bridge needs a QuadraticHamiltonian (running cost |α|²/(2c))")
    if problem.coupling_needs_density_integral():
        raise ProblemError("the bridge handles local couplings only")
    if cells < 4 or n_actions < 2 or not alpha_max > 0:
        raise ProblemError(f"need cells >= 4, n_actions >= 2, alpha_max > 0; got {cells}, {n_actions}, {alpha_max}")
    lower, upper = (float(b[0]) for b in problem.bounding_box().bounds())
    h = (upper - lower) / cells
    nu, T = problem.viscosity, problem.horizon
    rate_max = 2 * nu / h**2 + alpha_max / h
    if time_steps is None:
        time_steps = int(np.ceil(T * rate_max / 0.9))
    dt = T / time_steps
    if rate_max * dt > 1:
        raise ProblemError(f"time_steps = {time_steps} too few: need (2ν/h² + α_max/h) Δt <= 1, "
                           f"i.e. time_steps >= {int(np.ceil(T * rate_max))}")
    alphas = np.linspace(-alpha_max, alpha_max, n_actions)
    (x,) = (a.numpy() for a in cell_centres(lower, upper, cells))  # the states, (cells,)
    right = (nu / h**2 + np.maximum(alphas, 0) / h) * dt
    left = (nu / h**2 + np.maximum(-alphas, 0) / h) * dt
    s = np.arange(cells)
    periodic = isinstance(problem.domain, Torus)
    up = (s + 1) % cells if periodic else np.minimum(s + 1, cells - 1)
    down = (s - 1) % cells if periodic else np.maximum(s - 1, 0)
    P = np.zeros((cells, n_actions, cells))
    np.add.at(P, (s[:, None], np.arange(n_actions)[None, :], up[:, None]), right[None, :])
    np.add.at(P, (s[:, None], np.arange(n_actions)[None, :], down[:, None]), left[None, :])
    np.add.at(P, (s[:, None], np.arange(n_actions)[None, :], s[:, None]), 1 - right - left)
    effort = alphas**2 / (2 * problem.hamiltonian.scale) * dt
    xt = torch.from_numpy(x)[:, None]

    def reward(t, L):
        m = torch.from_numpy(L.sum(-1) / h)
        with torch.no_grad():
            if t == time_steps:
                g = problem.terminal_cost(time_column(T, xt), xt, m).numpy()
                return np.repeat(-g[:, None], n_actions, axis=1)
            f = problem.coupling(time_column(t * dt, xt), xt, m).numpy()
        return -(effort[None, :] + f[:, None] * dt)

    with torch.no_grad():
        m0 = problem.initial_density(xt).numpy()
    return FiniteMFG(time_steps, m0 / m0.sum(), n_actions, reward, lambda t, L: P, static_transition=True,
                     name=f"{problem.name}_finite_{cells}", info={"x": x, "h": h, "dt": dt, "alphas": alphas})
