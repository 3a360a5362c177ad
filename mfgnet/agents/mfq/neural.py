"""Neural mean field Q-learning: one small MLP Q_θ(ā) -> (A,) shared by all agents.

The network replaces the tables of :mod:`mfgnet.agents.mfq.tabular` (parameter sharing, as in
Yang et al. 2018's MF-Q with function approximation).  Acting and learning are batched over
all agents; each step trains θ on a random minibatch of the agents' (ā, a, r) transitions with
the TD target r + γ v_θ(ā') (v the policy's expected Q, ā' the new mean actions).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from mfgnet.agents.mfq.games import MeanActionGame
from mfgnet.agents.mfq.tabular import LearningRecord, MFQConfig, MFQResult
from mfgnet.problems import ProblemError

log = logging.getLogger(__name__)


def _mlp(n_actions: int, width: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(1, width), torch.nn.Tanh(), torch.nn.Linear(width, width),
                               torch.nn.Tanh(), torch.nn.Linear(width, n_actions))


def _policy_probs(q: torch.Tensor, cfg: MFQConfig, epsilon: float) -> torch.Tensor:
    if cfg.policy == "boltzmann":
        return torch.softmax(q / cfg.temperature, dim=-1)
    greedy = torch.nn.functional.one_hot(q.argmax(-1), q.shape[-1]).to(q.dtype)
    return (1 - epsilon) * greedy + epsilon / q.shape[-1]


def train_neural(game: MeanActionGame, n_agents: int, cfg: MFQConfig | None = None, width: int = 32,
                 lr: float = 1e-2, batch: int = 1024, verbose: bool = False) -> MFQResult:
    """Neural MF-Q; ``cfg.lr`` is ignored in favour of the Adam learning rate ``lr``."""
    cfg = MFQConfig() if cfg is None else cfg
    if n_agents < 1 or batch < 1:
        raise ProblemError(f"n_agents and batch must be >= 1, got {n_agents}, {batch}")
    gen = torch.Generator().manual_seed(cfg.seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(cfg.seed)  # network initialisation only; the global RNG is restored below
    net = _mlp(game.n_actions, width)
    torch.random.set_rng_state(torch_state)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    actions = torch.randint(0, game.n_actions, (n_agents,), generator=gen)
    abar = torch.as_tensor(np.broadcast_to(game.mean_action(actions.numpy()), (n_agents,)).copy(), dtype=torch.float32)
    record = LearningRecord(cfg, game.n_actions, label="neural MF-Q")
    start = time.perf_counter()
    for step in range(cfg.steps):
        with torch.no_grad():
            # Agents that see the same ā share a policy: evaluate the net once per distinct ā.
            uniq, inv = torch.unique(abar, return_inverse=True)
            cdf = torch.cumsum(_policy_probs(net(uniq[:, None]), cfg, record.epsilon), -1)[inv]
            u = torch.rand(n_agents, generator=gen) * cdf[:, -1]
            new = (u[:, None] > cdf[:, :-1]).sum(-1)
            if cfg.revise_prob < 1:
                keep = torch.rand(n_agents, generator=gen) >= cfg.revise_prob
                new = torch.where(keep, actions, new)
        actions = new
        a_np = actions.numpy()
        abar_next_np = np.broadcast_to(game.mean_action(a_np), (n_agents,))
        r = torch.as_tensor(game.reward(a_np, game.mean_action(a_np)), dtype=torch.float32)
        abar_next = torch.as_tensor(np.ascontiguousarray(abar_next_np), dtype=torch.float32)
        idx = torch.randint(0, n_agents, (min(batch, n_agents),), generator=gen)
        target = r[idx]
        if cfg.gamma > 0:
            with torch.no_grad():
                q_next = net(abar_next[idx, None])
                target = target + cfg.gamma * (_policy_probs(q_next, cfg, record.epsilon) * q_next).sum(-1)
        q_sa = net(abar[idx, None]).gather(1, actions[idx, None])[:, 0]
        loss = torch.mean((q_sa - target) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        abar = abar_next
        if record.end_step(step, a_np, r, abar_next_np):
            log.log(logging.INFO if verbose else logging.DEBUG, "[neural mfq %s] step %d: loss %.3e, actions %s",
                    game.name, step + 1, loss.item(), record.dists[-1])
    return record.result(None, a_np, time.perf_counter() - start, n_agents, extra={"network": net})
