"""Fictitious play and online mirror descent for finite MFGs, scored exactly each iteration.

Both follow MFGLib 0.3.0's definitions so that trajectories can be compared:

* fictitious play (damped, Perrin et al. 2020): π ← policy of the mixture of the current and
  best-response flows, with weight α_n = 1/(n+2) (or a constant ``damping``);
* online mirror descent (Pérolat et al. 2021): y ← y + α Q^π(L(π)),  π = softmax(y).

One exact evaluation per iteration serves both the score of the current π and the next step
(the best response is greedy in the same Q*; OMD needs the same Q^π).  The evaluation and the
fictitious-play step run on a backend (:mod:`mfgnet.agents.finite.backends`): numpy, or numba's
compiled kernels for games with a static transition.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from mfgnet.agents.finite.backends import select
from mfgnet.agents.finite.dynamics import Evaluation
from mfgnet.agents.finite.game import FiniteMFG
from mfgnet.problems import ProblemError

log = logging.getLogger(__name__)


@dataclass
class FiniteResult:
    """Output of a finite-MFG solver.

    ``exploitability[k]`` scores the k-th iterate (k = 0 is the initial policy);
    ``wall_time[k]`` is the cumulative time when it was known.
    """

    pi: np.ndarray
    mu: np.ndarray
    exploitability: list[float] = field(default_factory=list)
    wall_time: list[float] = field(default_factory=list)
    algorithm: str = ""

    @property
    def final_exploitability(self) -> float:
        return self.exploitability[-1]


def _check_common(iterations: int, tol: float) -> None:
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise ProblemError(f"iterations must be an integer >= 0, got {iterations!r}")
    if not tol >= 0:
        raise ProblemError(f"tol must be >= 0, got {tol!r}")


def fictitious_play(game: FiniteMFG, iterations: int = 100, damping: float = 0.0, pi0: np.ndarray | None = None,
                    tol: float = 0.0, tie_tol: float = 0.0, verbose: bool = False,
                    backend: str = "auto") -> FiniteResult:
    """Damped fictitious play; ``damping = 0`` uses α_n = 1/(n+2), ``damping = 1`` is the fixed point.

    Stops after ``iterations`` steps or once the exploitability is <= ``tol``.

    Parameters
    ----------
    game : FiniteMFG
        The game.
    iterations : int
        The most iterations (best response, then averaging), >= 1.
    damping : float
        0 for the averaging weights 1/(n+2), else the constant weight in (0, 1].
    pi0 : numpy.ndarray or None
        Initial policy (T + 1, S, A); default uniform.
    tol : float
        Stop once the exploitability is <= tol.
    tie_tol : float
        Actions whose Q-values are within tie_tol of the best share the best response.
    verbose : bool
        Print progress.
    backend : str
        ``"auto"`` (numba's compiled kernels where the game's transition is static and numba is
        installed, else numpy), ``"numpy"`` or ``"numba"``: the same numbers up to round-off.
        Where Q* has exact ties (symmetric games) and ``tie_tol`` is 0, round-off decides which
        actions the best response mixes, so the two backends' trajectories can part there;
        a small ``tie_tol`` (1e-9 on ``crowd_modelling``) makes them agree.

    Returns
    -------
    FiniteResult
        The last policy and mean field, and the exploitability of every iterate.
    """
    _check_common(iterations, tol)
    if not 0 <= damping <= 1:
        raise ProblemError(f"damping must lie in [0, 1], got {damping!r}")
    pi = game.uniform_policy() if pi0 is None else game.check_policy(pi0).copy()
    engine = select(game, backend)  # before the clock: it may load numba's kernels
    start = time.perf_counter()
    ev = engine.evaluate(pi, need_q_pi=False)  # FP needs Q* only; the exploitability is summed forward
    result = FiniteResult(pi, ev.mu, [ev.exploitability], [time.perf_counter() - start], "fictitious_play")
    for n in range(iterations):
        if ev.exploitability <= tol:
            break
        ev = engine.evaluate(engine.fictitious_step(ev, damping if damping else 1.0 / (n + 2), tie_tol),
                             need_q_pi=False)
        _record(result, ev, start, verbose, n)
    result.pi, result.mu = ev.pi, ev.mu
    return result


def online_mirror_descent(game: FiniteMFG, iterations: int = 100, step: float = 1.0, pi0: np.ndarray | None = None,
                          tol: float = 0.0, verbose: bool = False, backend: str = "auto") -> FiniteResult:
    """Online mirror descent with entropy regulariser: y += step · Q^π(L(π)), π = softmax(y).

    Parameters
    ----------
    game : FiniteMFG
        The game.
    iterations : int
        The most iterations, >= 1.
    step : float
        The step size > 0.
    pi0 : numpy.ndarray or None
        Initial policy (T + 1, S, A); default uniform.
    tol : float
        Stop once the exploitability is <= tol.
    verbose : bool
        Print progress.
    backend : str
        ``"auto"``, ``"numpy"`` or ``"numba"``, as in :func:`fictitious_play`.

    Returns
    -------
    FiniteResult
        The last policy and mean field, and the exploitability of every iterate.
    """
    _check_common(iterations, tol)
    if not step > 0:
        raise ProblemError(f"step must be > 0, got {step!r}")
    pi = game.uniform_policy() if pi0 is None else game.check_policy(pi0).copy()
    y = np.zeros_like(pi)
    engine = select(game, backend)
    start = time.perf_counter()
    ev = engine.evaluate(pi)
    result = FiniteResult(pi, ev.mu, [ev.exploitability], [time.perf_counter() - start], "online_mirror_descent")
    for n in range(iterations):
        if ev.exploitability <= tol:
            break
        y += step * ev.q_pi
        z = np.exp(y - y.max(-1, keepdims=True))
        pi = z / z.sum(-1, keepdims=True)
        ev = engine.evaluate(pi)
        _record(result, ev, start, verbose, n)
    result.pi, result.mu = ev.pi, ev.mu
    return result


def _record(result: FiniteResult, ev: Evaluation, start: float, verbose: bool, n: int) -> None:
    """Append iterate n + 1's score and time (the last policy and flow are stored once, at the end)."""
    result.exploitability.append(ev.exploitability)
    result.wall_time.append(time.perf_counter() - start)
    log.log(logging.INFO if verbose else logging.DEBUG, "[%s] it %d: exploitability %.3e", result.algorithm, n + 1,
            ev.exploitability)


SOLVERS = {"fictitious_play": fictitious_play, "fp": fictitious_play,
           "online_mirror_descent": online_mirror_descent, "omd": online_mirror_descent}
