"""B4: two-road traffic routing, a static congestion game (the simplest MFG).

Travel times T_A = a_A + b_A μ_A and T_B = a_B + b_B μ_B with μ_A + μ_B = 1.  The Wardrop
(Nash) equilibrium equalises travel times on used roads; the social optimum equalises
marginal costs a_i + 2 b_i μ_i.  Everything here is exact (fractions of the data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfgnet.problems import ProblemError


@dataclass(frozen=True)
class TwoRoadTraffic:
    """Affine latencies ``T_i(μ_i) = a_i + b_i μ_i`` (b_i >= 0, not both 0)."""

    a_A: float = 1.0
    b_A: float = 1.0
    a_B: float = 2.0
    b_B: float = 0.5

    def __post_init__(self) -> None:
        if self.b_A < 0 or self.b_B < 0:
            raise ProblemError(f"slopes b_A, b_B must be >= 0, got {self.b_A}, {self.b_B}")
        if self.b_A + self.b_B == 0:
            raise ProblemError("at least one of b_A, b_B must be > 0 for a unique equilibrium")

    def travel_times(self, mu_A):
        """(T_A, T_B) at share μ_A on road A (array-like)."""
        mu_A = np.asarray(mu_A, dtype=float)
        return self.a_A + self.b_A * mu_A, self.a_B + self.b_B * (1 - mu_A)

    def social_cost(self, mu_A):
        """Average travel time μ_A T_A + μ_B T_B."""
        t_A, t_B = self.travel_times(mu_A)
        return mu_A * t_A + (1 - np.asarray(mu_A, dtype=float)) * t_B

    def nash_share(self) -> float:
        """μ_A where T_A = T_B, clipped to [0, 1] (the corner when one road is always faster)."""
        return float(np.clip((self.a_B + self.b_B - self.a_A) / (self.b_A + self.b_B), 0.0, 1.0))

    def optimal_share(self) -> float:
        """μ_A where marginal costs a_A + 2 b_A μ_A = a_B + 2 b_B μ_B, clipped to [0, 1]."""
        return float(np.clip((self.a_B + 2 * self.b_B - self.a_A) / (2 * (self.b_A + self.b_B)), 0.0, 1.0))

    def price_of_anarchy(self) -> float:
        """Social cost at the equilibrium over the social cost at the optimum (>= 1)."""
        return float(self.social_cost(self.nash_share()) / self.social_cost(self.optimal_share()))

    def best_response_dynamics(self, n_agents: int = 100, rounds: int = 200, revise_fraction: float = 0.1,
                               seed: int = 0) -> np.ndarray:
        """Simulate n agents who, each round, let a random fraction switch to the currently
        faster road.  Returns the share on road A after each round, shape (rounds + 1,)."""
        if n_agents < 1:
            raise ProblemError(f"n_agents must be >= 1, got {n_agents}")
        if not 0 < revise_fraction <= 1:
            raise ProblemError(f"revise_fraction must lie in (0, 1], got {revise_fraction}")
        rng = np.random.default_rng(seed)
        on_A = rng.random(n_agents) < 0.5
        shares = np.empty(rounds + 1)
        shares[0] = on_A.mean()
        for r in range(rounds):  # rounds are sequential; agents within a round are vectorised
            t_A, t_B = self.travel_times(on_A.mean())
            revising = rng.random(n_agents) < revise_fraction
            # A revising agent takes the road that is faster given everyone else's choice.
            t_A_if_switch = self.travel_times(on_A.mean() + (~on_A) / n_agents)[0]
            t_B_if_switch = self.travel_times(on_A.mean() - on_A / n_agents)[1]
            prefer_A = np.where(on_A, t_A <= t_B_if_switch, t_A_if_switch < t_B)
            on_A = np.where(revising, prefer_A, on_A)
            shares[r + 1] = on_A.mean()
        return shares
