"""The seed's per-agent mean field Q-learning loop, corrected: the reference to beat.

Same algorithm as :func:`mfgnet.agents.mfq.tabular.train_tabular` (per-agent tables,
Boltzmann or ε-greedy, update in the bin the agent acted on, the next mean action
recomputed), written the way the seed wrote it: one Python object per agent and a loop over
agents at every step.  Only for speed comparisons; do not use it for real runs.
"""

from __future__ import annotations

import time

import numpy as np

from mfgnet.agents.mfq.games import MeanActionGame
from mfgnet.agents.mfq.tabular import LearningRecord, MFQConfig, MFQResult


class _Agent:
    def __init__(self, n_bins: int, n_actions: int, q_init: float, rng: np.random.Generator) -> None:
        self.q = np.full((n_bins, n_actions), q_init)
        self.rng = rng

    def act(self, ctx: int, cfg: MFQConfig, epsilon: float) -> int:
        q = self.q[ctx]
        if cfg.policy == "boltzmann":
            p = np.exp((q - q.max()) / cfg.temperature)
            return int(self.rng.choice(q.size, p=p / p.sum()))
        if self.rng.random() < epsilon:
            return int(self.rng.integers(q.size))
        best = np.flatnonzero(q == q.max())
        return int(self.rng.choice(best))

    def update(self, ctx: int, action: int, reward: float, lr: float) -> None:
        self.q[ctx, action] += lr * (reward - self.q[ctx, action])


def train_per_agent_loop(game: MeanActionGame, n_agents: int, cfg: MFQConfig | None = None) -> MFQResult:
    """Per-agent-loop MF-Q for population games (scalar ā), γ = 0."""
    cfg = MFQConfig() if cfg is None else cfg
    rng = np.random.default_rng(cfg.seed)
    agents = [_Agent(game.n_bins, game.n_actions, cfg.q_init, rng) for _ in range(n_agents)]
    actions = rng.integers(0, game.n_actions, n_agents)
    abar = game.mean_action(actions)
    record = LearningRecord(cfg, game.n_actions)
    start = time.perf_counter()
    for step in range(cfg.steps):
        ctx = int(game.bin(abar))
        actions = np.array([agent.act(ctx, cfg, record.epsilon) for agent in agents])
        abar = game.mean_action(actions)
        r = game.reward(actions, abar)
        for i, agent in enumerate(agents):
            agent.update(ctx, actions[i], r[i], cfg.lr)
        record.end_step(step, actions, r, abar)
    return record.result(None, actions, time.perf_counter() - start, n_agents)
