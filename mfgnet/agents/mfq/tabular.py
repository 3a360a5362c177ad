"""Tabular mean field Q-learning (Yang et al. 2018), vectorised over all N agents.

Each agent i keeps Q_i(ā, a) on the bins of the mean action.  Per step:

1. context c_i = bin(ā_i) of the mean action the agent last observed;
2. actions from Q_i(c_i, ·): Boltzmann (temperature τ) or ε-greedy (random tie-breaking,
   so that zero-initialised tables do not all pick action 0);
3. the game returns the new mean actions ā' and rewards r;
4. Q_i(c_i, a_i) += lr (r_i + γ v_i(bin(ā'_i)) - Q_i(c_i, a_i)), with
   v_i(c) = Σ_a π_i(a | c) Q_i(c, a) — the update goes to the bin the agent acted on, and the
   next mean action is the new one (the seed froze it and updated another bin);
5. ā ← ā'.

Tables are float32 (rewards are O(1); float32 halves the memory traffic and numpy's float32
exp is several times faster).  All of it is a handful of numpy array operations per step and
chunk of agents (``chunk_size``, for bounded memory); there is no loop over single agents.
With numba installed and one table per agent, step 4 of each chunk and step 2 of the next step
run as one compiled call instead (:mod:`mfgnet.agents.mfq.kernel`, ``backend="numba"``) on the
same random numbers: at N = 10^4 numpy's per-call overhead and (A, N) temporaries were most of
the step's time.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from mfgnet.agents.config import MFQConfig
from mfgnet.agents.mfq import kernel
from mfgnet.agents.mfq.games import MeanActionGame
from mfgnet.fast import numba_missing
from mfgnet.problems import ProblemError
from mfgnet.progress import progress_bar
from mfgnet.resources import check_mfq_memory

log = logging.getLogger(__name__)


@dataclass
class MFQResult:
    """Learning statistics recorded every ``record_every`` steps.

    action_dist: (R, A) population action shares; mean_reward: (R,); mean_action: (R,)
    (population mean of ā); q: the final tables (bins, A, N or 1); agent_updates_per_s.
    """

    steps: np.ndarray
    action_dist: np.ndarray
    mean_reward: np.ndarray
    mean_action: np.ndarray
    q: np.ndarray | None = None
    actions: np.ndarray | None = None
    wall_time_s: float = 0.0
    agent_updates_per_s: float = 0.0
    extra: dict = field(default_factory=dict)


class LearningRecord:
    """What every MF-Q learner records: ε after its per-step decay, and every ``record_every``
    steps (and at the last) the action shares, mean reward and mean of ā."""

    def __init__(self, cfg: MFQConfig, n_actions: int, label: str = "MF-Q") -> None:
        self.cfg, self.n_actions = cfg, n_actions
        self.bar = progress_bar(cfg.steps, label, enabled=cfg.progress, unit="step")
        self.epsilon = cfg.epsilon
        self.steps: list[int] = []
        self.dists: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.means: list[float] = []

    def next_epsilon(self) -> float:
        """ε of the next step: this step's after its decay (what :meth:`end_step` sets)."""
        cfg = self.cfg
        return max(cfg.epsilon_min, self.epsilon * cfg.epsilon_decay) if cfg.policy == "egreedy" else self.epsilon

    def end_step(self, step: int, actions: np.ndarray, rewards, abar, counts: np.ndarray | None = None) -> bool:
        """Decay ε, record if this step is due; returns whether it recorded.  ``counts``: the number
        of agents at each action, where the learner has them (else counted from ``actions``)."""
        cfg = self.cfg
        self.bar.update(1)
        self.epsilon = self.next_epsilon()
        if (step + 1) % cfg.record_every and step != cfg.steps - 1:
            return False
        self.steps.append(step + 1)
        if counts is None:
            counts = np.bincount(actions, minlength=self.n_actions)
        self.dists.append(counts / len(actions))
        self.rewards.append(float(rewards.mean()))
        self.means.append(float(np.mean(np.asarray(abar))))
        self.bar.set_postfix_str(f"mean reward {self.rewards[-1]:.4f}", refresh=False)
        return True

    def result(self, q, actions, wall: float, n_agents: int, extra: dict | None = None) -> MFQResult:
        self.bar.close()
        return MFQResult(np.array(self.steps), np.array(self.dists), np.array(self.rewards), np.array(self.means),
                         q, actions, wall, n_agents * self.cfg.steps / wall, extra=extra or {})


def sample_actions(q: np.ndarray, cfg: MFQConfig, epsilon: float, rng: np.random.Generator,
                   jitter: np.ndarray | None = None) -> np.ndarray:
    """Draw one action per column of q (A, N) (actions along axis 0 so rows are contiguous).

    ε-greedy breaks ties with ``jitter`` (A, N): a fixed tiny random preference per agent
    (drawn once), so that zero-initialised tables do not all pick action 0 and no fresh
    (A, N) random array is needed at every step."""
    n_act, n = q.shape
    u = rng.random(n, dtype=np.float32)
    if cfg.policy == "boltzmann":
        beta = np.float32(1.0 / cfg.temperature)
        if n_act == 2:  # logistic form: one exp instead of a softmax
            return (u * (1 + np.exp((q[0] - q[1]) * beta)) < 1).astype(np.int64)
        z = q - q.max(0)
        z *= beta
        np.exp(z, out=z)
        # Running sums over the A actions (a loop over actions, not agents): numpy's cumsum
        # along a short leading axis is several times slower than these row additions.
        cdf = [z[0]]
        for k in range(1, n_act):
            cdf.append(cdf[-1] + z[k])
        u *= cdf[-1]
        a = (u > cdf[0]).astype(np.int64)
        for k in range(1, n_act - 1):
            a += u > cdf[k]
        return a
    qj = q if jitter is None else q + jitter
    best = qj[0].copy()
    greedy = np.zeros(n, dtype=np.int64)
    for k in range(1, n_act):  # running argmax over the A rows: faster than argmax(axis=0)
        better = qj[k] > best
        np.maximum(best, qj[k], out=best)
        np.copyto(greedy, k, where=better)
    # An exploring agent (u < ε) reuses u: u / ε is uniform on [0, 1), so its action is uniform.
    explore = u < epsilon
    return np.where(explore, np.minimum((u * (n_act / max(epsilon, 1e-30))).astype(np.int64), n_act - 1), greedy)


def policy_values(q: np.ndarray, cfg: MFQConfig, epsilon: float) -> np.ndarray:
    """v = Σ_a π(a) q(a) for the columns of q (A, N)."""
    if cfg.policy == "boltzmann":
        z = np.exp((q - q.max(0)) / cfg.temperature)
        return (z * q).sum(0) / z.sum(0)
    return (1 - epsilon) * q.max(0) + epsilon * q.mean(0)


def _gather(Q: np.ndarray, ctx, lo: int, hi: int, shared: bool) -> np.ndarray:
    """Q[ctx_i, :, table_i] for the agents i in [lo, hi) as an (A, hi - lo) array (a view when
    ctx is one bin and every agent has its own table); ``ctx`` is one bin or the bins of those
    agents, (hi - lo,)."""
    n = hi - lo
    if shared:
        return Q[int(ctx), :, :1].repeat(n, 1) if np.ndim(ctx) == 0 else Q[ctx, :, 0].T
    if np.ndim(ctx) == 0:
        return Q[int(ctx), :, lo:hi]
    return Q[ctx, :, np.arange(lo, hi)].T


def _part(value, lo: int, hi: int):
    """The agents [lo, hi) of a per-agent array, or the one value that every agent shares."""
    return value if np.ndim(value) == 0 else value[lo:hi]


def resolve_backend(backend: str, shared: bool) -> str:
    """"numba" (the compiled step of :mod:`mfgnet.agents.mfq.kernel`) or "numpy" for ``backend``
    "auto" (numba where it is installed and the tables are per agent), "numpy" or "numba"."""
    if backend == "auto":
        return "numba" if kernel.AVAILABLE and not shared else "numpy"
    if backend not in ("numpy", "numba"):
        raise ProblemError(f"backend must be 'auto', 'numpy' or 'numba', got {backend!r}")
    if backend == "numba" and shared:
        raise ProblemError("backend='numba' covers one table per agent; shared tables run on backend='numpy'")
    if backend == "numba" and not kernel.AVAILABLE:
        raise numba_missing()
    return backend


def train_tabular(game: MeanActionGame, n_agents: int, cfg: MFQConfig | None = None,
                  verbose: bool = False, backend: str = "auto") -> MFQResult:
    """Run tabular MF-Q with ``n_agents`` agents for ``cfg.steps`` steps.

    Each step runs over the agents in chunks of ``cfg.chunk_size`` (like
    :func:`mfgnet.agents.simulation.simulate`): actions chunk by chunk, then the mean action
    of everyone, then the rewards and Q updates chunk by chunk, so that the per-step work
    arrays hold one chunk (the Q-tables, the actions and the rewards of all agents are the
    state).  The random streams (actions, and who revises when ``revise_prob < 1``, a stream
    of its own) are drawn in agent order, so any chunk size gives exactly the same run.  The
    memory this needs is estimated first (:mod:`mfgnet.resources`) and a run that cannot fit
    is refused with a ProblemError naming ``task.n_agents``.

    ``backend`` (:func:`resolve_backend`): "numba" runs each chunk's step in one compiled call
    (:mod:`mfgnet.agents.mfq.kernel`) on the same random numbers as "numpy", and the two give the
    same run but where float32 rounding in exp moves a uniform across a boundary of the policy's
    CDF.  The kernels are compiled before the clock starts: ``agent_updates_per_s`` times steps.
    """
    cfg = MFQConfig() if cfg is None else cfg
    if n_agents < 1:
        raise ProblemError(f"n_agents must be >= 1, got {n_agents}")
    use_kernel = resolve_backend(backend, cfg.shared) == "numba"
    check_mfq_memory(n_agents, game.n_bins, game.n_actions, cfg.shared, cfg.policy == "egreedy", cfg.chunk_size)
    rng = np.random.default_rng(cfg.seed)
    # Who revises is drawn from a stream of its own, so that both streams run in agent order
    # and any chunk size gives the same run.
    revise_rng = np.random.default_rng(np.random.SeedSequence(cfg.seed).spawn(1)[0])
    n_tables = 1 if cfg.shared else n_agents
    # Layout (bins, actions, agents): one agent's values for one bin are a column, and the
    # row of one action over all agents is contiguous, which the per-step ops stream through.
    Q = np.full((game.n_bins, game.n_actions, n_tables), cfg.q_init, dtype=np.float32)
    chunks = [(lo, min(lo + cfg.chunk_size, n_agents)) for lo in range(0, n_agents, cfg.chunk_size)]
    lr = np.float32(cfg.lr)
    agent_idx = np.arange(n_agents)
    actions = game.initial_actions(n_agents, rng)
    abar = game.mean_action(actions)
    record = LearningRecord(cfg, game.n_actions)
    jitter = (rng.random((game.n_actions, n_agents), dtype=np.float32) * np.float32(1e-6)
              if cfg.policy == "egreedy" else None)
    rewards = np.empty(n_agents, dtype=np.float32)
    if use_kernel:
        return _train_with_kernel(game, cfg, Q, actions, abar, record, jitter, rng, revise_rng, chunks, verbose)
    size = game.n_bins * game.n_actions
    start = time.perf_counter()
    for step in range(cfg.steps):
        ctx = game.bin(abar)
        new = np.empty_like(actions) if len(chunks) > 1 else None
        for lo, hi in chunks:
            q = _gather(Q, _part(ctx, lo, hi), lo, hi, cfg.shared)
            chosen = sample_actions(q, cfg, record.epsilon, rng, None if jitter is None else jitter[:, lo:hi])
            if cfg.revise_prob < 1:
                chosen = np.where(revise_rng.random(hi - lo) < cfg.revise_prob, chosen, actions[lo:hi])
            if new is None:
                new = chosen
            else:
                new[lo:hi] = chosen
        actions = new
        abar_next = game.mean_action(actions)
        ctx_next = game.bin(abar_next) if cfg.gamma > 0 else None
        tot = cnt = None
        for lo, hi in chunks:
            a, c, idx = actions[lo:hi], _part(ctx, lo, hi), agent_idx[lo:hi]
            if cfg.shared:
                q_acted = Q[c, a, 0]
            elif np.ndim(c) == 0:  # one bin for everyone: Q[c] is a contiguous (A, N) block
                row, flat = Q[int(c)].reshape(-1), a * n_agents + idx
                q_acted = row[flat]
            else:
                q_acted = Q[c, a, idx]
            r = game.reward(a, _part(abar_next, lo, hi), agents=slice(lo, hi))
            rewards[lo:hi] = r
            target = r
            if cfg.gamma > 0:
                v = policy_values(_gather(Q, _part(ctx_next, lo, hi), lo, hi, cfg.shared), cfg, record.epsilon)
                target = r + cfg.gamma * v
            err = np.subtract(target, q_acted, dtype=np.float32)
            if cfg.shared:  # average the agents' TD errors per (bin, action) cell, over all chunks
                cell = np.broadcast_to(c, (hi - lo,)) * game.n_actions + a
                part_tot, part_cnt = np.bincount(cell, err, minlength=size), np.bincount(cell, minlength=size)
                tot, cnt = (part_tot, part_cnt) if tot is None else (tot + part_tot, cnt + part_cnt)
            elif np.ndim(c) == 0:
                row[flat] += lr * err
            else:
                Q[c, a, idx] += lr * err
        if cfg.shared:
            Q[:, :, 0] += (cfg.lr * tot / np.maximum(cnt, 1)).reshape(game.n_bins, game.n_actions)
        abar = abar_next
        _end_step(record, step, actions, rewards, abar, game, verbose)
    return record.result(Q, actions, time.perf_counter() - start, n_agents, extra={"backend": "numpy"})


def _end_step(record: LearningRecord, step: int, actions, rewards, abar, game: MeanActionGame, verbose: bool,
              counts: np.ndarray | None = None) -> None:
    if record.end_step(step, actions, rewards, abar, counts):
        log.log(logging.INFO if verbose else logging.DEBUG, "[mfq %s] step %d: mean reward %.4f, actions %s",
                game.name, step + 1, record.rewards[-1], np.round(record.dists[-1], 3))


def _train_with_kernel(game: MeanActionGame, cfg: MFQConfig, Q: np.ndarray, actions: np.ndarray, abar,
                       record: LearningRecord, jitter: np.ndarray | None, rng: np.random.Generator,
                       revise_rng: np.random.Generator, chunks: list, verbose: bool) -> MFQResult:
    """train_tabular's step loop on the numba kernel (one table per agent): the same draws from the
    same generators in the same order as the numpy loop.  Each chunk's TD updates of step t and its
    action draw of step t + 1 are one compiled call (:func:`mfgnet.agents.mfq.kernel.step`): the
    draw needs the bin of the mean action after step t, known before the update, and the uniforms of
    step t + 1, which come next from ``rng`` whichever work runs in between (``rng`` draws nothing
    else in the loop, and each agent's draw reads only its own, just updated, table).  The kernel
    also counts the drawn actions, which give the mean action (games with
    :meth:`~mfgnet.agents.mfq.games.MeanActionGame.mean_action_from_counts`) and the recorded shares."""
    kernel.compile_now()
    n_agents = len(actions)
    boltzmann = cfg.policy == "boltzmann"
    # int32 actions: the kernel's signature, and half the memory traffic of int64.  Two buffers,
    # this step's actions and the next, swapped every step, with their chunks' views made once.
    actions = np.ascontiguousarray(actions, dtype=np.int32)
    new = np.empty_like(actions)
    parts, new_parts = [actions[lo:hi] for lo, hi in chunks], [new[lo:hi] for lo, hi in chunks]
    counts, new_counts = np.zeros(game.n_actions, np.int64), np.zeros(game.n_actions, np.int64)
    rewards = np.empty(n_agents, dtype=np.float32)
    reward_parts = [rewards[lo:hi] for lo, hi in chunks]
    uniforms = np.empty(chunks[0][1] - chunks[0][0], np.float32)
    uniform_parts = [uniforms[:hi - lo] for lo, hi in chunks]
    # The kernel's stand-ins for "no jitter", "no revision draws" and "no draw"; a population-wide
    # bin (or mean action) is passed as a 1-element array.
    jitter = np.zeros((1, 1), np.float32) if jitter is None else jitter
    no_revision, no_draw = np.empty(0), np.empty(0, np.float32)
    revises = cfg.revise_prob < 1
    # Rewards that are a table (population-wide ā) are looked up inside the kernel.
    no_table = np.empty((0, game.n_actions), np.float32)
    types = game.agent_types(n_agents)
    types = np.empty(0, np.int64) if types is None else np.ascontiguousarray(types, dtype=np.int64)
    one_bin, one_next_bin = np.empty(1, np.int64), np.empty(1, np.int64)

    def bins(abar, one: np.ndarray) -> np.ndarray:
        """The kernel's bins for a mean action: every agent's, or ``one`` holding the population's."""
        ctx = game.bin(abar)
        if isinstance(ctx, np.ndarray) and ctx.ndim:
            return ctx
        one[0] = ctx
        return one

    def update_and_draw(update: bool, ctx: np.ndarray, abar, table, next_ctx: np.ndarray, draw: bool) -> None:
        """Every chunk's update of this step (``update``: the actions ``parts`` at the bins ``ctx``,
        ``abar`` the mean actions they produced) and draw of the next (``draw``) into ``new_parts``."""
        new_counts[:] = 0
        # ε of this step's update, and of the draw: the next step's (this one's when nothing is updated)
        epsilon = record.epsilon
        draw_epsilon = record.next_epsilon() if update else epsilon
        for i, (lo, hi) in enumerate(chunks):
            if update and table is None:
                reward_parts[i][:] = game.reward(parts[i], abar if np.ndim(abar) == 0 else abar[lo:hi],
                                                 agents=slice(lo, hi))
            u = rng.random(dtype=np.float32, out=uniform_parts[i]) if draw else no_draw
            revise = revise_rng.random(hi - lo) if draw and revises else no_revision
            kernel.step(Q, lo, parts[i], update, ctx if len(ctx) == 1 else ctx[lo:hi], reward_parts[i],
                        no_table if table is None else table, types, cfg.lr, cfg.gamma, epsilon,
                        next_ctx if len(next_ctx) == 1 else next_ctx[lo:hi], u, boltzmann, cfg.temperature,
                        draw_epsilon, jitter, revise, cfg.revise_prob, new_parts[i], new_counts)

    start = time.perf_counter()
    ctx = bins(abar, one_bin)
    update_and_draw(False, ctx, abar, None, ctx, True)  # the actions of step 0
    for step in range(cfg.steps):
        actions, new, parts, new_parts = new, actions, new_parts, parts
        counts, new_counts = new_counts, counts
        abar = game.mean_action_from_counts(counts)
        if abar is None:
            abar = game.mean_action(actions)
        next_ctx = bins(abar, one_next_bin if ctx is one_bin else one_bin)
        # isinstance first: np.ndim converts a float to an array (~1 us a step)
        table = game.reward_table(abar) if isinstance(abar, float) or np.ndim(abar) == 0 else None
        update_and_draw(True, ctx, abar, table, next_ctx, step < cfg.steps - 1)
        ctx = next_ctx
        _end_step(record, step, actions, rewards, abar, game, verbose, counts)
    return record.result(Q, actions.astype(np.int64), time.perf_counter() - start, n_agents,
                         extra={"backend": "numba"})
