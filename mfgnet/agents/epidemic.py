"""The SIR vaccination game beyond its equilibrium: the social optimum (price of anarchy of
vaccination) and N-agent simulations under a policy.

The equilibrium is any finite-MFG solver's (fictitious play, online mirror descent on
`sir_vaccination` (`mfgnet.agents.finite.envs`)).  The planner instead chooses
the susceptible agents' vaccination probabilities q_t to minimise the population's total cost

    J(q) = Σ_{t<T} [c_V μ_t(S) q_t + c_I μ_t(I)],

with μ the mean field that q produces; J is differentiable in q (the dynamics are polynomial in μ),
so the optimum is found by L-BFGS-B on q ∈ [0, 1]^(T+1) with its exact gradient (the adjoint of the
recursion), from several starts.  The N-agent simulation draws every agent's transition each step from the
empirical fraction infected, vectorised over agents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mfgnet.agents.finite.dynamics import mean_field, rewards
from mfgnet.agents.finite.game import FiniteMFG
from mfgnet.evaluation.sweep import loglog_slope
from mfgnet.problems import ProblemError

S, I, R, V = range(4)


def _parameters(game: FiniteMFG) -> dict:
    if game.name != "sir_vaccination":
        raise ProblemError(f"{game.name!r} is not the SIR vaccination game (mfgnet.agents.finite.envs.sir_vaccination)")
    return game.info


def social_cost(game: FiniteMFG, pi: np.ndarray) -> float:
    """The population's total cost −Σ_{t,s,a} L_t(s, a) r_t(s, a) under policy ``pi`` (T + 1, S, A)."""
    L, _ = mean_field(game, pi)
    return float(-(L * rewards(game, L)).sum())


def vaccination_policy(game: FiniteMFG, q: np.ndarray) -> np.ndarray:
    """The policy (T + 1, 4, 2) in which a susceptible agent seeks vaccination with probability q_t
    (other states: action 0, which changes nothing there)."""
    pi = np.zeros((game.horizon + 1, game.n_states, 2))
    pi[:, :, 0] = 1.0
    pi[:, S, 1] = q
    pi[:, S, 0] = 1.0 - q
    return pi


def flow_cost(params: dict, mu0: np.ndarray, q: np.ndarray) -> tuple[float, np.ndarray]:
    """J(q) and its gradient dJ/dq (T + 1,): the mean-field recursion forward, its adjoint backward
    (λ_S, λ_I: the marginal cost of one more susceptible / infected agent at t; R and V cost nothing)."""
    beta, gamma, rho = params["infection"], params["recovery"], params["vaccination"]
    c_v, c_i = params["vaccination_cost"], params["infection_cost"]
    horizon = q.shape[0] - 1
    sus, ill = np.empty(horizon + 1), np.empty(horizon + 1)
    sus[0], ill[0] = mu0[S], mu0[I]
    for t in range(horizon):  # time is sequential; the state has 4 entries
        sus[t + 1] = sus[t] * (1 - beta * ill[t] - rho * q[t])
        ill[t + 1] = ill[t] * (1 - gamma) + beta * sus[t] * ill[t]
    cost = float((c_v * sus[:-1] * q[:-1] + c_i * ill[:-1]).sum())  # decisions at t < T are paid
    grad = np.zeros(horizon + 1)
    lam_s = lam_i = 0.0
    for t in range(horizon - 1, -1, -1):
        grad[t] = c_v * sus[t] - lam_s * rho * sus[t]
        lam_s, lam_i = (c_v * q[t] + lam_s * (1 - beta * ill[t] - rho * q[t]) + lam_i * beta * ill[t],
                        c_i - lam_s * beta * sus[t] + lam_i * (1 - gamma + beta * sus[t]))
    return cost, grad


@dataclass
class Optimum:
    """The social optimum: vaccination probabilities q (T + 1,), its policy and total cost."""

    q: np.ndarray
    policy: np.ndarray
    cost: float


def social_optimum(game: FiniteMFG, starts: int = 6, seed: int = 0) -> Optimum:
    """Minimise the total cost over the susceptible agents' vaccination probabilities q_t ∈ [0, 1]
    (L-BFGS-B on the exact gradient of :func:`flow_cost`), from ``starts`` initial guesses (q ≡ 0,
    q ≡ 1, then random); the best wins.  The cost reported is
    [`social_cost`][mfgnet.agents.epidemic.social_cost] of the returned policy, computed by the
    game's own dynamics, not by the optimiser's recursion."""
    from scipy.optimize import minimize

    params = _parameters(game)
    rng = np.random.default_rng(seed)
    horizon = game.horizon
    best: Optimum | None = None
    for k in range(starts):
        q0 = np.zeros(horizon + 1) if k == 0 else np.ones(horizon + 1) if k == 1 else rng.random(horizon + 1)
        out = minimize(lambda q: flow_cost(params, game.mu0, q), q0, jac=True, method="L-BFGS-B",
                       bounds=[(0.0, 1.0)] * (horizon + 1), options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12})
        q = np.clip(out.x, 0.0, 1.0)
        q[-1] = 0.0  # the last decision has no consequence (the game ends): never vaccinate there
        policy = vaccination_policy(game, q)
        cost = social_cost(game, policy)
        if best is None or cost < best.cost:
            best = Optimum(q, policy, cost)
    return best


def simulate_agents(game: FiniteMFG, pi: np.ndarray, n_agents: int, seed: int = 0) -> np.ndarray:
    """N agents under ``pi`` in the N-player SIR game (each one's infection risk from the empirical
    fraction infected); the state fractions over time, (T + 1, 4).  Vectorised over agents."""
    params = _parameters(game)
    if n_agents < 1:
        raise ProblemError(f"n_agents must be >= 1, got {n_agents}")
    rng = np.random.default_rng(seed)
    beta, gamma, rho = params["infection"], params["recovery"], params["vaccination"]
    state = rng.choice(4, size=n_agents, p=game.mu0)
    fractions = np.empty((game.horizon + 1, 4))
    for t in range(game.horizon + 1):
        counts = np.bincount(state, minlength=4)
        fractions[t] = counts / n_agents
        if t == game.horizon:
            break
        infected = beta * fractions[t, I]
        u = rng.random(n_agents)
        seeks = rng.random(n_agents) < pi[t, S, 1]
        susceptible, ill = state == S, state == I
        # One uniform per agent: [0, ρ) vaccinated (if seeking), then [ρ·seek, ρ·seek + β f) infected.
        vaccinated = susceptible & seeks & (u < rho)
        offset = np.where(seeks, rho, 0.0)
        infected_now = susceptible & (u >= offset) & (u < offset + infected)
        recovered = ill & (u < gamma)
        state = np.where(vaccinated, V, np.where(infected_now, I, np.where(recovered, R, state)))
    return fractions


def n_agent_gap(game: FiniteMFG, pi: np.ndarray, sizes, seeds: int = 5) -> dict:
    """max over t and states of |fraction − μ_t| for N agents under ``pi``, averaged over ``seeds``
    runs, for each N in ``sizes``; and the fitted slope of log(gap) against log(N) (theory −1/2)."""
    L, _ = mean_field(game, pi)
    mu = L.sum(-1)
    gaps = []
    for n in sizes:
        runs = [np.abs(simulate_agents(game, pi, int(n), seed) - mu).max() for seed in range(seeds)]
        gaps.append(float(np.mean(runs)))
    slope = loglog_slope(sizes, gaps)
    return {"sizes": [int(n) for n in sizes], "gaps": gaps, "slope": slope,
            "gap_times_sqrt_n": [g * math.sqrt(n) for g, n in zip(gaps, sizes)]}
