"""Exact evaluation of a finite MFG: mean field of a policy, Q-functions by backward
induction, best responses and exploitability.  Everything is float64 and vectorised over
states and actions; only the time loop (sequential by nature) is in Python.

Shapes: π and L are (T + 1, S, A); μ is (T + 1, S); Q is (T + 1, S, A).

On the small games these functions serve (a few states, a few steps) the time goes into
numpy's per-call overhead, not arithmetic: the time loops therefore write into preallocated
arrays (``out=``), call ufuncs and their ``reduce`` directly (``ndarray.max``/``sum`` go through
a Python wrapper), fetch a static transition matrix once per call, and a game may give all of
its rewards in one call (``FiniteMFG.reward_flow``).  The arithmetic, and hence every number, is
the same as the plain per-step formulas in the docstrings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfgnet.agents.finite.game import FiniteMFG


def mean_field(game: FiniteMFG, pi: np.ndarray) -> tuple[np.ndarray, list]:
    """Population flow under π: L[t, s, a] = μ_t(s) π_t(a|s), with μ_{t+1} = Σ_{s,a} L_t[s, a] P_t[s, a, ·].

    Returns (L (T + 1, S, A), the transition matrices M_t (S·A, S) for t < T that produced it;
    for a static game the same matrix T times).
    """
    T, S = game.horizon, game.n_states
    L = np.empty_like(pi)
    np.multiply(game.mu0[:, None], pi[0], out=L[0])
    if T == 0:
        return L, []
    if game.static_transition:
        P = game.transition_at(0, L[0])
        P_list = [P] * T
        if isinstance(P, np.ndarray):
            PT = P.T  # a view: BLAS reads it transposed, no copy
            mu_next = np.empty((S, 1))
            for t in range(T):
                np.matmul(PT, L[t].reshape(-1), out=mu_next[:, 0])
                np.multiply(mu_next, pi[t + 1], out=L[t + 1])
            return L, P_list
    else:
        P_list = []
    for t in range(T):  # mean-field-dependent (or sparse) transitions
        if game.static_transition:
            P = P_list[t]
        else:
            P = game.transition_at(t, L[t])
            P_list.append(P)
        mu_next = P.T @ L[t].reshape(-1)
        np.multiply(mu_next[:, None], pi[t + 1], out=L[t + 1])
    return L, P_list


def rewards(game: FiniteMFG, L: np.ndarray) -> np.ndarray:
    """R[t] = reward(t, L[t]), shape (T + 1, S, A) (one call of ``game.reward_flow`` where the game has it)."""
    if game.reward_flow is not None:
        return np.asarray(game.reward_flow(L), dtype=np.float64)
    return np.stack([np.asarray(game.reward(t, L[t]), dtype=np.float64) for t in range(game.horizon + 1)])


def _backward(R: np.ndarray, P_list: list, next_value) -> np.ndarray:
    """Q[T] = R[T], Q[t] = R[t] + P_t v_{t+1} with v_{t+1} = next_value(t + 1, Q[t+1]) of shape (S,)."""
    Q = np.empty_like(R)
    Q[-1] = R[-1]
    S, A = R.shape[1:]
    dense = bool(P_list) and isinstance(P_list[0], np.ndarray)  # sparse only ever comes static
    PV = np.empty(S * A)
    for t in range(R.shape[0] - 2, -1, -1):
        v = next_value(t + 1, Q[t + 1])
        if dense:
            np.matmul(P_list[t], v, out=PV)
            np.add(R[t], PV.reshape(S, A), out=Q[t])
        else:
            np.add(R[t], (P_list[t] @ v).reshape(S, A), out=Q[t])
    return Q


def q_optimal(R: np.ndarray, P_list: list) -> np.ndarray:
    """Optimal Q against a frozen flow: Q[T] = R[T], Q[t] = R[t] + P_t max_a Q[t+1]."""
    v = np.empty(R.shape[1])
    return _backward(R, P_list, lambda t, Q_next: np.maximum.reduce(Q_next, axis=-1, out=v))


def q_policy(R: np.ndarray, P_list: list, pi: np.ndarray) -> np.ndarray:
    """Q of policy π against a frozen flow: Q[T] = R[T], Q[t] = R[t] + P_t Σ_a π[t+1] Q[t+1]."""
    v = np.empty(R.shape[1])
    weighted = np.empty(R.shape[1:])

    def value(t, Q_next):
        np.multiply(pi[t], Q_next, out=weighted)
        return np.add.reduce(weighted, axis=-1, out=v)

    return _backward(R, P_list, value)


def greedy(Q: np.ndarray, tie_tol: float = 0.0) -> np.ndarray:
    """Best response: uniform over the actions within ``tie_tol`` of max_a Q (shape like Q)."""
    top = np.maximum.reduce(Q, axis=-1, keepdims=True)
    best = Q >= (top - tie_tol if tie_tol else top)
    return best / np.add.reduce(best, axis=-1, keepdims=True)


@dataclass
class Evaluation:
    """Everything one exact evaluation of π yields (shared by the solvers to avoid recomputing).

    ``q_pi`` is None when the evaluation was asked not to compute it.
    """

    pi: np.ndarray
    L: np.ndarray
    R: np.ndarray
    P: list
    q_star: np.ndarray
    q_pi: np.ndarray | None
    exploitability: float

    @property
    def mu(self) -> np.ndarray:
        """State distribution μ[t, s], shape (T + 1, S)."""
        return self.L.sum(-1)


def evaluate(game: FiniteMFG, pi: np.ndarray, need_q_pi: bool = True) -> Evaluation:
    """Mean field of π, Q* (and Q^π unless ``need_q_pi`` is False) against it, and the exploitability

        E(π) = Σ_s μ0(s) max_a Q*_0(s, a) - Σ_{t,s,a} L[t, s, a] R[t, s, a]  (>= 0).

    The second term is π's own value Σ_s μ0(s) Σ_a π_0(a|s) Q^π_0(s, a), summed forward along
    its flow L (equal to the backward form up to round-off, and one call instead of a time loop).
    """
    L, P_list = mean_field(game, pi)
    R = rewards(game, L)
    q_star = q_optimal(R, P_list)
    q_pi = q_policy(R, P_list, pi) if need_q_pi else None
    best_value = game.mu0 @ np.maximum.reduce(q_star[0], axis=-1)
    expl = float(best_value - np.vdot(L, R))
    return Evaluation(pi, L, R, P_list, q_star, q_pi, expl)


def exploitability(game: FiniteMFG, pi: np.ndarray) -> float:
    """Exact exploitability of π (what one deviating agent gains by best-responding)."""
    return evaluate(game, game.check_policy(pi), need_q_pi=False).exploitability
