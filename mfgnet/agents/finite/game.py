"""A finite mean field game: finite states, finite actions, time steps 0..T.

Convention (as in MFGLib, so that trajectories can be compared): agents *maximise* rewards.
A game gives, at each time t and for the state-action distribution ``L_t`` of the population
(shape (S, A), sums to 1):

* ``reward(t, L_t) -> (S, A)``        the reward of playing a in state s (t = 0..T),
* ``transition(t, L_t) -> (S, A, S)`` P[s, a, s'] the probability of moving s -> s' (t < T).

All tables are float64 numpy arrays.  Games whose dynamics do not depend on the mean field
say so (``static_transition``), so that solvers build P once instead of at every call; games
may also give all their rewards for a whole flow in one call (``reward_flow``), which saves
T + 1 Python calls per evaluation on small games.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from mfgnet.problems import ProblemError


@dataclass
class FiniteMFG:
    """A finite-horizon finite mean field game.

    Parameters
    ----------
    horizon : int
        T >= 0; decisions are taken at t = 0..T (T + 1 of them; T = 0 is a static game).
    mu0 : numpy.ndarray
        Initial state distribution, shape (S,).
    n_actions : int
        A >= 1.
    reward : callable
        ``reward(t, L_t)`` with L_t (S, A) -> (S, A).
    transition : callable
        ``transition(t, L_t)`` -> (S, A, S) row-stochastic in the last axis.
    static_transition : bool
        True when ``transition`` ignores t and L_t (evaluated once).
    state_shape : tuple of int or None
        The shape of the state space before flattening (e.g. (20, 20)), C order.
    name : str
        A label.
    info : dict
        Free-form facts about the game (e.g. where it comes from).
    reward_flow : callable or None
        Optional ``reward_flow(L)`` with L (T + 1, S, A) -> (T + 1, S, A): every ``reward(t, L[t])``
        at once, equal to stacking them (the solvers use it when present).
    """

    horizon: int
    mu0: np.ndarray
    n_actions: int
    reward: Callable[[int, np.ndarray], np.ndarray]
    transition: Callable[[int, np.ndarray], np.ndarray]
    static_transition: bool = False
    state_shape: tuple[int, ...] | None = None
    name: str = "finite_mfg"
    info: dict = field(default_factory=dict)
    reward_flow: Callable[[np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, (int, np.integer)) or self.horizon < 0:
            raise ProblemError(f"horizon T must be an integer >= 0, got {self.horizon!r}")
        self.horizon = int(self.horizon)
        mu0 = np.asarray(self.mu0, dtype=np.float64).reshape(-1)
        if mu0.size < 1 or (mu0 < 0).any() or abs(mu0.sum() - 1) > 1e-9:
            raise ProblemError("mu0 must be a probability vector (entries >= 0 summing to 1)")
        self.mu0 = mu0
        if int(self.n_actions) < 1:
            raise ProblemError(f"n_actions must be >= 1, got {self.n_actions!r}")
        self.n_actions = int(self.n_actions)
        if self.state_shape is None:
            self.state_shape = (mu0.size,)
        if int(np.prod(self.state_shape)) != mu0.size:
            raise ProblemError(f"state_shape {self.state_shape} does not match mu0's {mu0.size} states")
        self._static_P = None

    @property
    def n_states(self) -> int:
        return self.mu0.size

    def transition_at(self, t: int, L_t: np.ndarray):
        """The transition as a matrix M[(s, a), s'] of shape (S·A, S) at time t: a dense array,
        or a CSR matrix when it is static and sparse (local moves: a few entries per row), so
        that M @ V and M.T @ L cost O(nonzeros) instead of O(S²A)."""
        if self.static_transition:
            if self._static_P is None:
                P = np.asarray(self.transition(0, L_t), dtype=np.float64).reshape(-1, self.n_states)
                if self.n_states >= 32 and np.count_nonzero(P) < 0.1 * P.size:
                    P = sparse.csr_matrix(P)
                self._static_P = P
            return self._static_P
        return np.asarray(self.transition(t, L_t), dtype=np.float64).reshape(-1, self.n_states)

    def uniform_policy(self) -> np.ndarray:
        """π[t, s, a] = 1/A, shape (T + 1, S, A)."""
        return np.full((self.horizon + 1, self.n_states, self.n_actions), 1.0 / self.n_actions)

    def check_policy(self, pi: np.ndarray) -> np.ndarray:
        """``pi`` as float64 of shape (T + 1, S, A), checked to be a policy (rows sum to 1)."""
        pi = np.asarray(pi, dtype=np.float64)
        shape = (self.horizon + 1, self.n_states, self.n_actions)
        if pi.shape != shape:
            raise ProblemError(f"policy has shape {pi.shape}; expected (T + 1, S, A) = {shape}")
        if (pi < -1e-12).any() or np.abs(pi.sum(-1) - 1).max() > 1e-8:
            raise ProblemError("policy rows π[t, s, :] must be probability vectors")
        return pi
