"""Exact evaluation of a finite MFG: mean field of a policy, Q-functions by backward
induction, best responses and exploitability.  Everything is float64 and vectorised over
states and actions; only the time loop (sequential by nature) is in Python.

Shapes: π and L are (T + 1, S, A); μ is (T + 1, S); Q is (T + 1, S, A).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfgnet.agents.finite.game import FiniteMFG


def mean_field(game: FiniteMFG, pi: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Population flow under π: L[t, s, a] = μ_t(s) π_t(a|s).

    Returns (L (T + 1, S, A), the transition matrices M_t (S·A, S) for t < T that produced it).
    """
    T = game.horizon
    L = np.empty_like(pi)
    L[0] = game.mu0[:, None] * pi[0]
    P_list = []
    for t in range(T):
        P = game.transition_at(t, L[t])
        P_list.append(P)
        mu_next = P.T @ L[t].reshape(-1)  # Σ_{s,a} L[s,a] P[s,a,s']
        L[t + 1] = mu_next[:, None] * pi[t + 1]
    return L, P_list


def rewards(game: FiniteMFG, L: np.ndarray) -> np.ndarray:
    """R[t] = reward(t, L[t]), shape (T + 1, S, A)."""
    return np.stack([np.asarray(game.reward(t, L[t]), dtype=np.float64) for t in range(game.horizon + 1)])


def q_optimal(R: np.ndarray, P_list: list[np.ndarray]) -> np.ndarray:
    """Optimal Q against a frozen flow: Q[T] = R[T], Q[t] = R[t] + P_t max_a Q[t+1]."""
    Q = np.empty_like(R)
    Q[-1] = R[-1]
    for t in range(R.shape[0] - 2, -1, -1):
        Q[t] = R[t] + (P_list[t] @ Q[t + 1].max(-1)).reshape(R.shape[1:])
    return Q


def q_policy(R: np.ndarray, P_list: list[np.ndarray], pi: np.ndarray) -> np.ndarray:
    """Q of policy π against a frozen flow: Q[t] = R[t] + P_t Σ_a π[t+1] Q[t+1]."""
    Q = np.empty_like(R)
    Q[-1] = R[-1]
    for t in range(R.shape[0] - 2, -1, -1):
        Q[t] = R[t] + (P_list[t] @ (pi[t + 1] * Q[t + 1]).sum(-1)).reshape(R.shape[1:])
    return Q


def greedy(Q: np.ndarray, tie_tol: float = 0.0) -> np.ndarray:
    """Best response: uniform over the actions within ``tie_tol`` of max_a Q (shape like Q)."""
    best = Q >= Q.max(-1, keepdims=True) - tie_tol
    return best / best.sum(-1, keepdims=True)


@dataclass
class Evaluation:
    """Everything one exact evaluation of π yields (shared by the solvers to avoid recomputing)."""

    pi: np.ndarray
    L: np.ndarray
    R: np.ndarray
    P: list
    q_star: np.ndarray
    q_pi: np.ndarray
    exploitability: float

    @property
    def mu(self) -> np.ndarray:
        """State distribution μ[t, s], shape (T + 1, S)."""
        return self.L.sum(-1)


def evaluate(game: FiniteMFG, pi: np.ndarray, need_q_pi: bool = True) -> Evaluation:
    """Mean field of π, Q* and Q^π against it, and the exploitability

        E(π) = Σ_s μ0(s) max_a Q*_0(s, a) - Σ_s μ0(s) Σ_a π_0(a|s) Q^π_0(s, a)  (>= 0).
    """
    L, P_list = mean_field(game, pi)
    R = rewards(game, L)
    q_star = q_optimal(R, P_list)
    q_pi = q_policy(R, P_list, pi) if need_q_pi else None
    expl = float("nan")
    if q_pi is not None:
        expl = float(game.mu0 @ q_star[0].max(-1) - game.mu0 @ (pi[0] * q_pi[0]).sum(-1))
    return Evaluation(pi, L, R, P_list, q_star, q_pi, expl)


def exploitability(game: FiniteMFG, pi: np.ndarray) -> float:
    """Exact exploitability of π (what one deviating agent gains by best-responding)."""
    return evaluate(game, game.check_policy(pi)).exploitability
