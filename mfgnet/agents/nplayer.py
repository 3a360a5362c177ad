"""The N-player gap of a mean field equilibrium: how much one player gains by deviating when the
other N − 1 play the MFG policy π (the ε of an ε-Nash equilibrium of the N-player game).

For a finite MFG the other players are simulated under π (``samples`` independent N-player
populations, vectorised over players); the deviator's expected reward and transition at each
time are averaged over those populations *with the deviator itself counted in the empirical
distribution* (at the state-action pair it plays):

    r̄_t(s, a) = E[r_t(s, a, L̂_t)],  P̄_t(s, a, ·) = E[P_t(s, a, ·; L̂_t)],
    L̂_t = (counts of the N − 1 others at t + 1_{(s, a)}) / N.

Its best response over Markov policies in (t, own state) is then exact backward induction on
(r̄, P̄), and ε_N = Σ_s μ0(s) (V*_0(s) − V^π_0(s)).  Two approximations, stated: the deviator's
policy does not see the others' realised states (the class of policies the MFG equilibrium
itself uses), and the others' own dynamics ignore the deviator (a 1/N effect on them).  The
Monte Carlo error of r̄ is reported; ε below it is not resolved.
"""

from __future__ import annotations

import numpy as np

from mfgnet.agents.finite.dynamics import greedy
from mfgnet.agents.finite.game import FiniteMFG
from mfgnet.evaluation.sweep import loglog_slope
from mfgnet.problems import ProblemError


def _sample_others(game: FiniteMFG, pi: np.ndarray, others: int, samples: int, rng) -> np.ndarray:
    """Counts (samples, T + 1, S, A) of the N − 1 others' state-action pairs, simulated under π with
    the empirical distribution (others only) driving their transitions."""
    T, S, A = game.horizon, game.n_states, game.n_actions
    counts = np.zeros((samples, T + 1, S, A))
    states = rng.choice(S, size=(samples, others), p=game.mu0)
    for t in range(T + 1):  # time is sequential; players and populations are vectorised
        cum = np.cumsum(pi[t][states], axis=-1)  # (samples, others, A)
        actions = (rng.random((samples, others, 1)) > cum).sum(-1).clip(0, A - 1)
        flat = states * A + actions
        counts[:, t] = np.stack([np.bincount(f, minlength=S * A) for f in flat]).reshape(samples, S, A)
        if t == T:
            break
        nxt = np.empty_like(states)
        for b in range(samples):  # one transition table per population (it depends on that population)
            P = game.transition_at(t, counts[b, t] / others).reshape(S, A, S)
            cum_p = np.cumsum(P[states[b], actions[b]], axis=-1)
            nxt[b] = (rng.random((others, 1)) > cum_p).sum(-1).clip(0, S - 1)
        states = nxt
    return counts


def n_player_gap(game: FiniteMFG, pi: np.ndarray, n_players: int, samples: int = 400, seed: int = 0) -> dict:
    """ε_N of policy ``pi`` in the N-player version of ``game`` (see the module): ``epsilon``, the Monte
    Carlo standard error of the deviator's mean reward (``reward_stderr``), and the deviator's best
    response (``best_response``, (T + 1, S, A))."""
    if n_players < 2:
        raise ProblemError(f"n_players must be >= 2, got {n_players}")
    pi = game.check_policy(pi)
    rng = np.random.default_rng(seed)
    T, S, A = game.horizon, game.n_states, game.n_actions
    counts = _sample_others(game, pi, n_players - 1, samples, rng)
    r_bar = np.zeros((T + 1, S, A))
    r_err = 0.0
    P_bar = np.zeros((T, S, A, S))
    for t in range(T + 1):
        values = np.zeros((samples, S, A))
        for s in range(S):  # the deviator's own placement (S·A of them): each changes the distribution it sees
            for a in range(A):
                for b in range(samples):
                    L_hat = counts[b, t].copy()
                    L_hat[s, a] += 1.0
                    L_hat /= n_players
                    values[b, s, a] = game.reward(t, L_hat)[s, a]
                    if t < T:
                        P_bar[t, s, a] += game.transition_at(t, L_hat).reshape(S, A, S)[s, a] / samples
        r_bar[t] = values.mean(0)
        r_err = max(r_err, float(values.std(0).max()) / np.sqrt(samples))
    v_star = np.zeros(S)
    v_pi = np.zeros(S)
    best = np.zeros((T + 1, S, A))
    for t in range(T, -1, -1):
        q_star = r_bar[t] + (P_bar[t] @ v_star if t < T else 0.0)
        q_pi = r_bar[t] + (P_bar[t] @ v_pi if t < T else 0.0)
        best[t] = greedy(q_star[None])[0]
        v_star = q_star.max(-1)
        v_pi = (pi[t] * q_pi).sum(-1)
    epsilon = float(game.mu0 @ (v_star - v_pi))
    return {"n_players": int(n_players), "epsilon": epsilon, "reward_stderr": r_err, "best_response": best}


def n_player_curve(game: FiniteMFG, pi: np.ndarray, sizes, samples: int = 400, seed: int = 0,
                   seeds: int = 1) -> dict:
    """ε_N for each N in ``sizes``: the mean of ``seeds`` independent estimates (seeds seed, seed + 1, …),
    their spread (max − min) and every estimate (``epsilon_runs``, one row per N), the largest Monte
    Carlo error of the deviator's rewards, and the fitted slope of log ε against log N (over the
    positive means)."""
    rows = [[n_player_gap(game, pi, int(n), samples, seed + s) for s in range(seeds)] for n in sizes]
    runs = np.array([[r["epsilon"] for r in row] for row in rows])
    eps = runs.mean(1)
    slope = loglog_slope(sizes, eps)
    return {"sizes": [int(n) for n in sizes], "epsilon": eps.tolist(), "epsilon_runs": runs.tolist(),
            "epsilon_spread": (runs.max(1) - runs.min(1)).tolist(),
            "reward_stderr": [max(r["reward_stderr"] for r in row) for row in rows], "slope": slope}
