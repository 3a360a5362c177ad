"""Repeated N-agent games for mean field Q-learning, vectorised over agents.

Every game maps the joint action ``a`` (N,) int to each agent's mean action ``ā`` — the
whole population's (a scalar) or a neighbourhood's ((N,) array) — and to rewards (N,).
``bin(ā)`` discretises ā for tabular Q(a, ā).  No per-agent Python objects anywhere.
"""

from __future__ import annotations

import math

import numpy as np

from mfgnet.benchmarks import TwoRoadTraffic
from mfgnet.problems import ProblemError


class MeanActionGame:
    """Interface: ``n_actions``, ``n_bins``, ``mean_action(a)``, ``bin(ā)``, ``reward(a, ā)``.

    ``mean_action`` sees every agent's action; ``bin`` and ``reward`` are per agent (agent i's
    value depends on a_i and ā_i only), so a learner may call them on any slice of agents.
    """

    n_actions: int
    n_bins: int
    name: str = "game"

    def initial_actions(self, n_agents: int, rng: np.random.Generator) -> np.ndarray:
        """The actions before the first step: uniform at random (a game may start elsewhere)."""
        return rng.integers(0, self.n_actions, n_agents)

    def mean_action(self, actions: np.ndarray):
        raise NotImplementedError

    def mean_action_from_counts(self, counts: np.ndarray) -> float | None:
        """The same ā as :meth:`mean_action` from the number of agents at each action ((A,) int),
        for games whose ā is population-wide and depends on those numbers alone (a learner that
        counts the actions as it draws them skips a pass over the population); None (this default)
        where it is not, and the learner calls :meth:`mean_action`."""
        return None

    def bin(self, abar) -> np.ndarray | int:
        raise NotImplementedError

    def reward(self, actions: np.ndarray, abar, agents: slice = slice(None)) -> np.ndarray:
        """Rewards of the agents ``agents`` (a slice of the population, in agent order) for their
        ``actions`` and mean actions ``abar``; games whose agents differ by type read the types of
        that slice."""
        raise NotImplementedError

    def reward_table(self, abar) -> np.ndarray | None:
        """For a population-wide ā: every reward as a (T, A) float32 table, row t for the agents of
        type t (:meth:`agent_types`), the same numbers :meth:`reward` returns (the compiled learner
        looks rewards up in it); None where rewards are not a table (the learner calls reward)."""
        return None

    def agent_types(self, n_agents: int) -> np.ndarray | None:
        """The row of :meth:`reward_table` of every agent, (N,) int; None: row 0 for everyone."""
        return None


def _uniform_bin(value, lo: float, hi: float, n_bins: int):
    # One population mean: plain Python is several times cheaper than numpy here (and the
    # isinstance test than np.ndim, which converts a float to an array).
    if isinstance(value, float) or np.ndim(value) == 0:
        return min(max(math.floor((float(value) - lo) / (hi - lo) * n_bins), 0), n_bins - 1)
    idx = np.floor((np.asarray(value) - lo) / (hi - lo) * n_bins).astype(np.int64)
    return np.clip(idx, 0, n_bins - 1)


class TwoRoadGame(MeanActionGame):
    """B4 traffic: action 0 = road A, 1 = road B; ā = μ_A (share on A); reward = -travel time."""

    n_actions = 2
    name = "two_road_traffic"

    def __init__(self, traffic: TwoRoadTraffic | None = None, n_bins: int = 10) -> None:
        self.traffic = TwoRoadTraffic() if traffic is None else traffic
        self.n_bins = int(n_bins)
        self._a = np.array([self.traffic.a_A, self.traffic.a_B])
        self._b = np.array([self.traffic.b_A, self.traffic.b_B])

    def mean_action(self, actions):
        return 1.0 - int(actions.sum()) / actions.size

    def mean_action_from_counts(self, counts):
        on_a, on_b = counts.tolist()
        return 1.0 - on_b / (on_a + on_b)

    def bin(self, abar):
        return _uniform_bin(abar, 0.0, 1.0, self.n_bins)

    def reward(self, actions, abar, agents=slice(None)):
        return self.reward_table(abar)[0].take(actions)

    def reward_table(self, abar):
        times = self._a + self._b * np.array([abar, 1.0 - abar])
        return (-times).astype(np.float32)[None]


class RideSharingGame(MeanActionGame):
    """Drivers pick one of K prices (0..K-1); ā = the mean price index of the population.

    Anti-coordination: a driver earns |a - ā| / (K - 1), more the further her price is from
    the market's.  The mean-field equilibrium is unique: half the drivers at the lowest price,
    half at the highest (ā = (K-1)/2, mean reward 1/2); no other price is a best response.
    """

    name = "ride_sharing"

    def __init__(self, n_prices: int = 5, n_bins: int = 8) -> None:
        if n_prices < 2:
            raise ProblemError(f"n_prices must be >= 2, got {n_prices}")
        self.n_actions = int(n_prices)
        self.n_bins = int(n_bins)
        self._prices = np.arange(self.n_actions)

    def mean_action(self, actions):
        return int(actions.sum()) / actions.size

    def mean_action_from_counts(self, counts):
        counts = counts.tolist()
        return sum(price * n for price, n in enumerate(counts)) / sum(counts)

    def bin(self, abar):
        return _uniform_bin(abar, 0.0, self.n_actions - 1.0, self.n_bins)

    def reward(self, actions, abar, agents=slice(None)):
        # ā is one number: tabulate the K rewards, then one gather (float32) per agent
        return self.reward_table(abar)[0].take(actions)

    def reward_table(self, abar):
        return (np.abs(self._prices - abar) / (self.n_actions - 1)).astype(np.float32)[None]

    def equilibrium(self) -> np.ndarray:
        eq = np.zeros(self.n_actions)
        eq[0] = eq[-1] = 0.5
        return eq


class IsingGame(MeanActionGame):
    """Coordination on an L×L periodic lattice: spin σ = 2a - 1, ā_i = mean spin of the 4
    neighbours (5 exact bins), reward J σ_i ā_i + h σ_i.

    A Boltzmann policy at temperature τ on Q(σ, ā) = J σ ā + h σ is Glauber dynamics of the
    Ising model with coupling J/4: its physics mean field predicts order below τ_c = J; the
    exact 2D critical temperature is τ_c = (J/2) / ln(1 + √2) ≈ 0.567 J.
    """

    n_actions = 2
    n_bins = 5
    name = "ising"

    def __init__(self, side: int, coupling: float = 1.0, field: float = 0.0, ordered_start: bool = False) -> None:
        if side < 2:
            raise ProblemError(f"lattice side must be >= 2, got {side}")
        self.side = int(side)
        self.coupling = float(coupling)
        self.field = float(field)
        # All spins up at the start (as a Monte Carlo run of the ordered phase starts): a random
        # start coarsens into domains that take far longer than the learning to disappear.
        self.ordered_start = bool(ordered_start)

    def initial_actions(self, n_agents, rng):
        if self.ordered_start:
            rng.integers(0, 2, n_agents)  # the same draws as a random start: the rest of the run keeps its stream
            return np.ones(n_agents, dtype=np.int64)
        return super().initial_actions(n_agents, rng)

    def mean_action(self, actions):
        s = (2 * actions - 1).reshape(self.side, self.side).astype(np.float32)
        nb = np.roll(s, 1, 0) + np.roll(s, -1, 0) + np.roll(s, 1, 1) + np.roll(s, -1, 1)
        return (0.25 * nb).reshape(-1)

    def bin(self, abar):
        return np.rint((np.asarray(abar) + 1) * 2).astype(np.int64)

    def reward(self, actions, abar, agents=slice(None)):
        s = (2 * actions - 1).astype(np.float32)
        return s * (np.float32(self.coupling) * abar + np.float32(self.field))


class TypedTrafficGame(MeanActionGame):
    """Two roads and K types of drivers (MF-Q with types): type k, a fraction ``shares[k]`` of the
    population, has its own free-flow times (a_A^k, a_B^k); congestion is shared, so a type-k
    driver on road r takes a_r^k + b_r × (the share of all drivers on r).  Action 0 = road A;
    ā = the share on A (everyone sees the same); reward = −travel time.  Agents are typed in
    agent order (the first round(shares[0] N) are type 0, ...).

    The typed Wardrop equilibrium is exact (:meth:`equilibrium`): type k is indifferent at the
    share s_k = (b_B − a_A^k + a_B^k) / (b_A + b_B) on A; at the equilibrium share s every type
    with s_k > s drives on A, every type with s_k < s on B, and at most one type (s_k = s) splits.
    """

    n_actions = 2
    name = "typed_traffic"

    def __init__(self, shares=(0.8, 0.2), free_flow_a=(1.0, 2.0), free_flow_b=(2.0, 1.0),
                 slope_a: float = 2.0, slope_b: float = 2.0, n_bins: int = 20) -> None:
        self.shares = np.asarray(shares, dtype=np.float64)
        self.free_flow = np.stack([np.asarray(free_flow_a, dtype=np.float64),
                                   np.asarray(free_flow_b, dtype=np.float64)], -1)  # (K, 2)
        k = len(self.shares)
        if k < 2 or self.free_flow.shape != (k, 2):
            raise ProblemError(f"typed_traffic: shares, free_flow_a and free_flow_b need one entry per type "
                               f"(K >= 2), got {len(self.shares)}, {len(free_flow_a)}, {len(free_flow_b)}")
        if (self.shares <= 0).any() or abs(self.shares.sum() - 1) > 1e-9:
            raise ProblemError(f"typed_traffic: shares must be > 0 and sum to 1, got {list(shares)}")
        if not (slope_a > 0 and slope_b > 0):
            raise ProblemError(f"typed_traffic: slope_a and slope_b must be > 0, got {slope_a}, {slope_b}")
        self.slopes = np.array([slope_a, slope_b], dtype=np.float64)
        self.n_bins = int(n_bins)
        self._types: dict[int, np.ndarray] = {}
        self._n: int | None = None  # the population size, learnt from the first mean_action

    @property
    def n_types(self) -> int:
        return len(self.shares)

    def types(self, n_agents: int) -> np.ndarray:
        """The type of every agent, (N,) int, in agent order (cached per N)."""
        if n_agents not in self._types:
            edges = np.rint(np.cumsum(self.shares) * n_agents).astype(np.int64)
            self._types[n_agents] = np.repeat(np.arange(self.n_types), np.diff(np.concatenate([[0], edges])))
        return self._types[n_agents]

    def mean_action(self, actions):
        self._n = actions.size
        return 1.0 - int(actions.sum()) / actions.size

    def mean_action_from_counts(self, counts):
        on_a, on_b = counts.tolist()
        self._n = on_a + on_b
        return 1.0 - on_b / self._n

    def bin(self, abar):
        return _uniform_bin(abar, 0.0, 1.0, self.n_bins)

    def travel_times(self, share_a: float) -> np.ndarray:
        """(K, 2): each type's time on road A and on road B when ``share_a`` of all drivers are on A."""
        return self.free_flow + self.slopes * np.array([share_a, 1.0 - share_a])

    def reward(self, actions, abar, agents=slice(None)):
        if self._n is None:
            raise ProblemError("typed_traffic: mean_action(actions of all agents) must come before reward")
        types = self.types(self._n)[agents]
        return self.reward_table(abar)[types, actions]

    def reward_table(self, abar):
        return (-self.travel_times(float(abar))).astype(np.float32)

    def agent_types(self, n_agents):
        return self.types(n_agents)

    def thresholds(self) -> np.ndarray:
        """s_k: the share on A at which type k is indifferent between the roads."""
        a, b = self.free_flow, self.slopes
        return (b[1] - a[:, 0] + a[:, 1]) / (b[0] + b[1])

    def equilibrium(self) -> tuple[float, np.ndarray]:
        """(s, μ): the equilibrium share on A and each type's share on A (μ_k), exact."""
        s_k, w = self.thresholds(), self.shares
        lo, hi = 0.0, 1.0
        for _ in range(100):  # s - Σ_k w_k 1[s_k > s] is increasing in s: bisection for its sign change
            mid = 0.5 * (lo + hi)
            if mid - w[s_k > mid].sum() < 0:
                lo = mid
            else:
                hi = mid
        s = 0.5 * (lo + hi)
        tie = np.abs(s_k - s) < 1e-9
        above = w[(s_k > s) & ~tie].sum()
        mu = np.where(s_k > s, 1.0, 0.0)
        if tie.any():  # the splitting type carries the rest of the share on A
            k = int(np.flatnonzero(tie)[0])
            mu[k] = min(max((s - above) / w[k], 0.0), 1.0)
        return float((w * mu).sum()), mu

    def type_shares(self, actions: np.ndarray) -> np.ndarray:
        """μ_k: the share of type k's agents on road A, for an action profile (N,)."""
        types = self.types(actions.size)
        return np.bincount(types, weights=(actions == 0), minlength=self.n_types) / np.bincount(
            types, minlength=self.n_types)

    def exploitability(self, actions: np.ndarray) -> float:
        """Σ_k w_k (the mean time of type k − the faster road's time): what the drivers lose against
        best-responding to the realised share; 0 exactly at an equilibrium."""
        mu = self.type_shares(actions)
        times = self.travel_times(1.0 - float(actions.sum()) / actions.size)
        mean = mu * times[:, 0] + (1 - mu) * times[:, 1]
        return float((self.shares * (mean - times.min(1))).sum())


GAMES = {"two_road_traffic": TwoRoadGame, "ride_sharing": RideSharingGame, "ising": IsingGame,
         "typed_traffic": TypedTrafficGame}
