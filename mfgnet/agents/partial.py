"""Partial observation of the mean field: agents see K sampled others, not the population.

* **MF-Q** ([`SampledMeanAction`][mfgnet.agents.partial.SampledMeanAction]): each agent's context is
  the mean action of K agents drawn at random each step (its own estimate), while rewards follow
  the true population mean action.  `mfq_partial_curve` measures the distance of the learned
  action distribution to the full-information equilibrium against K.
* **Finite MFGs** (`sampled_fictitious_play`): each agent best-responds to a K-sample estimate
  of the population's distribution at every time (a multinomial draw of K agents from μ_t), and
  the population plays the average of these best responses (``views`` sampled agents stand for
  it); fictitious play averages as usual.  `finite_partial_curve` measures the exact,
  full-information exploitability of the resulting policy against K.

Everything is vectorised over agents (MF-Q) or states (finite); the loops run over steps,
iterations and a few sampled views.
"""

from __future__ import annotations

import numpy as np

from mfgnet.agents.config import MFQConfig
from mfgnet.agents.finite.dynamics import evaluate, greedy, q_optimal, rewards
from mfgnet.agents.finite.game import FiniteMFG
from mfgnet.agents.mfq.games import MeanActionGame
from mfgnet.agents.mfq.tabular import train_tabular
from mfgnet.problems import ProblemError


class SampledMeanAction(MeanActionGame):
    """``game`` seen through K samples: agent i's ā_i is the mean action of K agents drawn uniformly
    (with replacement) each step; the rewards use the true population mean action.  ``game`` must
    have a population mean action that is an average of a per-action value (two-road traffic,
    ride sharing, typed traffic), which is checked."""

    def __init__(self, game: MeanActionGame, k: int, seed: int = 0) -> None:
        if int(k) < 1:
            raise ProblemError(f"k (agents observed) must be >= 1, got {k!r}")
        self.game, self.k = game, int(k)
        self.n_actions, self.n_bins = game.n_actions, game.n_bins
        self.name = f"{game.name}_k{self.k}"
        self._value = np.array([float(game.mean_action(np.array([a]))) for a in range(game.n_actions)])
        probe = np.random.default_rng(0).integers(0, game.n_actions, 257)
        if not np.isclose(float(game.mean_action(probe)), self._value[probe].mean()):
            raise ProblemError(f"{game.name}: its mean action is not an average over agents; K-sample estimates "
                               "are implemented for such games (two_road_traffic, ride_sharing, typed_traffic)")
        self._rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
        self.true_mean: float | None = None

    def initial_actions(self, n_agents, rng):
        return self.game.initial_actions(n_agents, rng)

    def mean_action(self, actions):
        self.true_mean = float(self.game.mean_action(actions))
        observed = actions[self._rng.integers(0, actions.size, (actions.size, self.k))]  # (N, K) indices' actions
        return self._value[observed].mean(1)

    def bin(self, abar):
        return self.game.bin(abar)

    def reward(self, actions, abar, agents=slice(None)):
        return self.game.reward(actions, self.true_mean, agents=agents)


def mfq_partial_curve(make_game, distance, ks, n_agents: int, cfg: MFQConfig) -> list[float]:
    """``distance(game, result)`` to the full-information equilibrium for each K in ``ks`` (None:
    the population's own mean action), each from a fresh ``make_game()``."""
    out = []
    for k in ks:
        game = make_game()
        learner_game = game if k is None else SampledMeanAction(game, k, seed=cfg.seed)
        result = train_tabular(learner_game, n_agents, cfg)
        out.append(float(distance(game, result)))
    return out


def sampled_best_response(game: FiniteMFG, L: np.ndarray, pi: np.ndarray, k: int | None, views: int,
                          rng: np.random.Generator) -> np.ndarray:
    """The average of ``views`` best responses, each to a K-sample estimate of the flow μ_t
    (multinomial(K, μ_t) / K at every t; the flow's policy kept); K None: the exact best response."""
    if k is None:
        return greedy(q_optimal(rewards(game, L), [game.transition_at(t, L[t]) for t in range(game.horizon)]))
    mu = np.clip(L.sum(-1), 0.0, None)
    mu /= mu.sum(-1, keepdims=True)
    total = np.zeros_like(L)
    for _ in range(views):  # a few sampled agents' views; each view is vectorised over times and states
        estimate = rng.multinomial(k, mu) / k  # (T + 1, S)
        L_hat = estimate[:, :, None] * pi
        P_hat = [game.transition_at(t, L_hat[t]) for t in range(game.horizon)]
        total += greedy(q_optimal(rewards(game, L_hat), P_hat))
    return total / views


def sampled_fictitious_play(game: FiniteMFG, k: int | None, iterations: int = 100, views: int = 16,
                            seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Fictitious play (weights 1/(n+2)) in which the best response is
    :func:`sampled_best_response`; returns the last policy and the exact exploitability of every iterate."""
    rng = np.random.default_rng(seed)
    pi = game.uniform_policy()
    ev = evaluate(game, pi)
    history = [ev.exploitability]
    for n in range(iterations):
        pi_br = sampled_best_response(game, ev.L, pi, k, views, rng)
        L_br = evaluate(game, pi_br, need_q_pi=False).L
        mu, mu_br = ev.L.sum(-1, keepdims=True), L_br.sum(-1, keepdims=True)
        a = 1.0 / (n + 2)
        num, den = (1 - a) * mu * pi + a * mu_br * pi_br, (1 - a) * mu + a * mu_br
        pi = np.divide(num, den, out=np.full_like(num, 1.0 / game.n_actions), where=den > 0)
        ev = evaluate(game, pi)
        history.append(ev.exploitability)
    return pi, history


def finite_partial_curve(game: FiniteMFG, ks, iterations: int = 100, views: int = 16, seed: int = 0) -> list[float]:
    """The exact exploitability after ``iterations`` of sampled fictitious play, for each K (None: full)."""
    return [sampled_fictitious_play(game, k, iterations, views, seed)[1][-1] for k in ks]
