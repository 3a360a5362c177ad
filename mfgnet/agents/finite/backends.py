"""The two ways the finite-MFG solvers evaluate policies and take a fictitious-play step: plain
numpy (:mod:`mfgnet.agents.finite.dynamics`, any game) and compiled kernels
(:mod:`mfgnet.agents.finite.kernels`, numba, games with a static transition).

Both give the same numbers up to round-off; ``select`` picks one per solve, and the per-game
constants (the transition as CSR arrays, the list of per-step matrices) are built once there,
not at every iteration.
"""

from __future__ import annotations

import numpy as np

from mfgnet.agents.finite.dynamics import Evaluation, evaluate, greedy, mean_field, rewards
from mfgnet.agents.finite.game import FiniteMFG
from mfgnet.fast import NUMBA_AVAILABLE, numba_missing
from mfgnet.problems import ProblemError

BACKENDS = ("auto", "numpy", "numba")


class NumpyBackend:
    """Evaluation and fictitious-play step with numpy (every game)."""

    name = "numpy"

    def __init__(self, game: FiniteMFG) -> None:
        self.game = game

    def evaluate(self, pi: np.ndarray, need_q_pi: bool = True) -> Evaluation:
        """See :func:`mfgnet.agents.finite.dynamics.evaluate`."""
        return evaluate(self.game, pi, need_q_pi)

    def fictitious_step(self, ev: Evaluation, weight: float, tie_tol: float) -> np.ndarray:
        """The policy of the mixed flow (1 - weight) L(π) + weight L(BR), BR greedy in ev's Q*."""
        pi = ev.pi
        pi_br = greedy(ev.q_star, tie_tol)
        L_br, _ = mean_field(self.game, pi_br)
        w_cur = (1 - weight) * np.add.reduce(ev.L, axis=-1, keepdims=True)
        w_br = weight * np.add.reduce(L_br, axis=-1, keepdims=True)
        num = w_cur * pi + w_br * pi_br
        den = w_cur + w_br
        # Unreached states (den = 0) keep a uniform policy, as in MFGLib.
        return np.divide(num, den, out=np.full_like(num, 1.0 / self.game.n_actions), where=den > 0)


class NumbaBackend:
    """The same with the compiled kernels (games with a static transition; needs numba)."""

    name = "numba"

    def __init__(self, game: FiniteMFG) -> None:
        if not game.static_transition:
            raise ProblemError("the numba backend needs a game with a static transition (static_transition=True)")
        from mfgnet.agents.finite import kernels  # imports numba: only here, on first use

        self.game = game
        self.kernels = kernels
        self.mu0 = np.ascontiguousarray(game.mu0)
        P = game.transition_at(0, self.mu0[:, None] * np.full(game.n_actions, 1.0 / game.n_actions))
        self.csr = kernels.csr_arrays(P)  # once per solve: the kernels read M from these
        self.P_list = [P] * game.horizon
        self._no_q = np.empty((1, 1, 1))  # stands for Q^π when it is not wanted

    def evaluate(self, pi: np.ndarray, need_q_pi: bool = True) -> Evaluation:
        """See :func:`mfgnet.agents.finite.dynamics.evaluate`."""
        pi = np.ascontiguousarray(pi, dtype=np.float64)
        L = np.empty_like(pi)
        self.kernels.flow(self.mu0, pi, *self.csr, L)
        R = np.ascontiguousarray(rewards(self.game, L))
        q_star = np.empty_like(pi)
        q_pi = np.empty_like(pi) if need_q_pi else None
        expl = self.kernels.backward(R, L, self.mu0, pi, *self.csr, q_star, self._no_q if q_pi is None else q_pi,
                                     need_q_pi)
        return Evaluation(pi, L, R, self.P_list, q_star, q_pi, float(expl))

    def fictitious_step(self, ev: Evaluation, weight: float, tie_tol: float) -> np.ndarray:
        """See :meth:`NumpyBackend.fictitious_step`."""
        pi_next = np.empty_like(ev.pi)
        self.kernels.fictitious_step(ev.q_star, float(tie_tol), ev.pi, ev.L, self.mu0, *self.csr, float(weight),
                                     pi_next)
        return pi_next


def select(game: FiniteMFG, backend: str = "auto") -> NumpyBackend | NumbaBackend:
    """The backend for ``game``: ``"auto"`` takes numba where it applies (static transition, numba
    installed) and numpy otherwise; ``"numpy"`` and ``"numba"`` ask for one."""
    if backend not in BACKENDS:
        raise ProblemError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        backend = "numba" if NUMBA_AVAILABLE and game.static_transition else "numpy"
    if backend == "numba" and not NUMBA_AVAILABLE:
        raise numba_missing()
    return NumbaBackend(game) if backend == "numba" else NumpyBackend(game)
