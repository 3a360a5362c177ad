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

    def mean_action(self, actions: np.ndarray):
        raise NotImplementedError

    def bin(self, abar) -> np.ndarray | int:
        raise NotImplementedError

    def reward(self, actions: np.ndarray, abar) -> np.ndarray:
        raise NotImplementedError


def _uniform_bin(value, lo: float, hi: float, n_bins: int):
    if np.ndim(value) == 0:  # one population mean: plain Python is several times cheaper than numpy here
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

    def bin(self, abar):
        return _uniform_bin(abar, 0.0, 1.0, self.n_bins)

    def reward(self, actions, abar):
        times = self._a + self._b * np.array([abar, 1.0 - abar])
        return (-times).astype(np.float32).take(actions)


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

    def mean_action(self, actions):
        return int(actions.sum()) / actions.size

    def bin(self, abar):
        return _uniform_bin(abar, 0.0, self.n_actions - 1.0, self.n_bins)

    def reward(self, actions, abar):
        # ā is one number: tabulate the K rewards, then one gather (float32) per agent
        table = np.abs(np.arange(self.n_actions) - abar) / (self.n_actions - 1)
        return table.astype(np.float32).take(actions)

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

    def __init__(self, side: int, coupling: float = 1.0, field: float = 0.0) -> None:
        if side < 2:
            raise ProblemError(f"lattice side must be >= 2, got {side}")
        self.side = int(side)
        self.coupling = float(coupling)
        self.field = float(field)

    def mean_action(self, actions):
        s = (2 * actions - 1).reshape(self.side, self.side).astype(np.float32)
        nb = np.roll(s, 1, 0) + np.roll(s, -1, 0) + np.roll(s, 1, 1) + np.roll(s, -1, 1)
        return (0.25 * nb).reshape(-1)

    def bin(self, abar):
        return np.rint((np.asarray(abar) + 1) * 2).astype(np.int64)

    def reward(self, actions, abar):
        s = (2 * actions - 1).astype(np.float32)
        return s * (np.float32(self.coupling) * abar + np.float32(self.field))


GAMES = {"two_road_traffic": TwoRoadGame, "ride_sharing": RideSharingGame, "ising": IsingGame}
