"""Finite-MFG solvers after the speed work (issue 16): the same numbers as before, on both backends.

* A plain reference (the per-step formulas as the solvers had them before: one reward call and
  one transition matrix per step, Q^π by backward induction for the score) gives the same
  trajectories to round-off, with the numpy and the numba backend.  (Where Q* has exact ties,
  round-off picks the best response when tie_tol = 0, so the games below are tie-free or run
  with tie_tol > 0.)
* Exploitabilities stored from the code before the change are reproduced.
* The numba kernels and the numpy path agree to 1e-12 (skipped without numba).
"""

from __future__ import annotations

import numpy as np
import pytest

from mfgnet.agents.finite import evaluate, fictitious_play, make_env, online_mirror_descent
from mfgnet.agents.finite.backends import NUMBA_AVAILABLE, select
from mfgnet.problems import ProblemError

needs_numba = pytest.mark.skipif(not NUMBA_AVAILABLE, reason="numba not installed (mfgnet[fast])")


# ----------------------------------------------------------------------------- plain reference
def _reference_evaluate(game, pi):
    """(L, Q*, exploitability) with the textbook per-step loops."""
    T, S, A = game.horizon, game.n_states, game.n_actions
    L = np.empty_like(pi)
    L[0] = game.mu0[:, None] * pi[0]
    P = []
    for t in range(T):
        P.append(game.transition_at(t, L[t]))  # (S·A, S); CSR for large sparse static games, as before
        L[t + 1] = (P[t].T @ L[t].reshape(-1))[:, None] * pi[t + 1]
    R = np.stack([np.asarray(game.reward(t, L[t]), dtype=float) for t in range(T + 1)])
    q_star, q_pi = R.copy(), R.copy()
    for t in range(T - 1, -1, -1):
        q_star[t] += (P[t] @ q_star[t + 1].max(-1)).reshape(S, A)
        q_pi[t] += (P[t] @ (pi[t + 1] * q_pi[t + 1]).sum(-1)).reshape(S, A)
    expl = game.mu0 @ q_star[0].max(-1) - game.mu0 @ (pi[0] * q_pi[0]).sum(-1)
    return L, q_star, q_pi, float(expl)


def _reference_fictitious_play(game, iterations, damping=0.0, tie_tol=0.0):
    pi = game.uniform_policy()
    L, q_star, _, expl = _reference_evaluate(game, pi)
    out = [expl]
    for n in range(iterations):
        best = q_star >= q_star.max(-1, keepdims=True) - tie_tol
        pi_br = best / best.sum(-1, keepdims=True)
        L_br = _reference_evaluate(game, pi_br)[0]
        a = damping if damping else 1.0 / (n + 2)
        mu, mu_br = L.sum(-1, keepdims=True), L_br.sum(-1, keepdims=True)
        num, den = (1 - a) * mu * pi + a * mu_br * pi_br, (1 - a) * mu + a * mu_br
        pi = np.divide(num, den, out=np.full_like(num, 1.0 / game.n_actions), where=den > 0)
        L, q_star, _, expl = _reference_evaluate(game, pi)
        out.append(expl)
    return np.array(out), pi


def _reference_mirror_descent(game, iterations, step):
    pi = game.uniform_policy()
    y = np.zeros_like(pi)
    _, _, q_pi, expl = _reference_evaluate(game, pi)
    out = [expl]
    for _ in range(iterations):
        y += step * q_pi
        z = np.exp(y - y.max(-1, keepdims=True))
        pi = z / z.sum(-1, keepdims=True)
        _, _, q_pi, expl = _reference_evaluate(game, pi)
        out.append(expl)
    return np.array(out), pi


# Games without exact ties in Q* (with ties, tie_tol = 0 lets round-off pick the best response;
# crowd_modelling is run with tie_tol > 0 for that reason).
GAMES = [("beach_bar", {}, 60, {}), ("beach_bar", {"n": 20, "horizon": 10}, 40, {}), ("left_right", {}, 40, {}),
         ("susceptible_infected", {"horizon": 20}, 30, {}), ("linear_quadratic", {}, 30, {}),
         ("sir_vaccination", {"horizon": 20}, 30, {}), ("two_road_traffic", {}, 30, {}),
         ("crowd_modelling", {}, 30, {"tie_tol": 1e-9}), ("crowd_motion", {"torus_l": 8, "torus_w": 8}, 10, {})]


def _backends(game):
    return ["numpy"] + (["numba"] if NUMBA_AVAILABLE and game.static_transition else [])


@pytest.mark.parametrize("name, params, iterations, fp_kw", GAMES)
def test_fictitious_play_matches_plain_reference(name, params, iterations, fp_kw):
    game = make_env(name, **params)
    ref, ref_pi = _reference_fictitious_play(game, iterations, **fp_kw)
    for backend in _backends(game):
        res = fictitious_play(game, iterations, backend=backend, **fp_kw)
        np.testing.assert_allclose(res.exploitability, ref, rtol=0, atol=1e-12 * max(1.0, abs(ref[0])),
                                   err_msg=f"{name} {backend}")
        np.testing.assert_allclose(res.pi, ref_pi, rtol=0, atol=1e-12, err_msg=f"{name} {backend}")


@pytest.mark.parametrize("name, params, iterations", [(g[0], g[1], g[2]) for g in GAMES])
def test_mirror_descent_matches_plain_reference(name, params, iterations):
    game = make_env(name, **params)
    ref, ref_pi = _reference_mirror_descent(game, iterations, step=0.5)
    for backend in _backends(game):
        res = online_mirror_descent(game, iterations, step=0.5, backend=backend)
        np.testing.assert_allclose(res.exploitability, ref, rtol=0, atol=1e-12 * max(1.0, abs(ref[0])),
                                   err_msg=f"{name} {backend}")
        np.testing.assert_allclose(res.pi, ref_pi, rtol=0, atol=1e-11, err_msg=f"{name} {backend}")


# Exploitabilities of fictitious play (weights 1/(n+2)) printed by the code before issue 16's
# change (commit a463c77), at iterates 0, 1, 2, 10, 50, 200.
STORED = {
    "beach_bar": ({}, [1.22126225529653, 0.4014371129755423, 0.24035002386848214, 0.05801913474363052,
                       0.011738041673384325, 0.002965248192013492]),
    "beach_bar_20": ({"n": 20, "horizon": 10}, [26.324678361174914, 9.987087119762718, 6.100789548670491,
                                                1.173394023418056, 0.1975262707976575, 0.046790287448533086]),
}


@pytest.mark.parametrize("key", sorted(STORED))
def test_fictitious_play_reproduces_stored_trajectory(key):
    params, values = STORED[key]
    game = make_env("beach_bar", **params)
    for backend in _backends(game):
        e = np.asarray(fictitious_play(game, 200, backend=backend).exploitability)
        np.testing.assert_allclose(e[[0, 1, 2, 10, 50, 200]], values, rtol=1e-12, atol=0, err_msg=backend)


# ----------------------------------------------------------------------------- numba vs numpy
@needs_numba
@pytest.mark.parametrize("name, params", [("beach_bar", {"n": 7, "horizon": 5}), ("crowd_modelling", {}),
                                          ("crowd_motion", {"torus_l": 6, "torus_w": 9}), ("left_right", {}),
                                          ("two_road_traffic", {})])
def test_numba_evaluation_equals_numpy(name, params):
    game = make_env(name, **params)
    pi = np.random.default_rng(3).dirichlet(np.ones(game.n_actions), size=(game.horizon + 1, game.n_states))
    ours, theirs = select(game, "numba").evaluate(pi), evaluate(game, pi)
    for field in ("L", "R", "q_star", "q_pi"):
        np.testing.assert_allclose(getattr(ours, field), getattr(theirs, field), rtol=0,
                                   atol=1e-12 * max(1.0, np.abs(getattr(theirs, field)).max()), err_msg=field)
    assert abs(ours.exploitability - theirs.exploitability) <= 1e-12 * max(1.0, abs(theirs.exploitability))
    assert select(game, "numba").evaluate(pi, need_q_pi=False).q_pi is None


@needs_numba
@pytest.mark.parametrize("damping, tie_tol", [(0.0, 0.0), (0.3, 1e-9)])
def test_numba_fictitious_play_equals_numpy(damping, tie_tol):
    for params in ({}, {"n": 20, "horizon": 10}):
        game = make_env("beach_bar", **params)
        a = fictitious_play(game, 100, damping=damping, tie_tol=tie_tol, backend="numpy")
        b = fictitious_play(game, 100, damping=damping, tie_tol=tie_tol, backend="numba")
        np.testing.assert_allclose(b.exploitability, a.exploitability, rtol=0, atol=1e-12 * a.exploitability[0])
        np.testing.assert_allclose(b.pi, a.pi, rtol=0, atol=1e-12)
        np.testing.assert_allclose(b.mu, a.mu, rtol=0, atol=1e-12)


@needs_numba
def test_numba_fictitious_play_keeps_unreached_states_uniform():
    # From a corner with no noise, the far sites stay empty early on: their policy stays uniform.
    game = make_env("beach_bar", n=9, horizon=3, p_still=1.0)
    game.mu0 = np.eye(9)[0]
    a = fictitious_play(game, 20, backend="numpy")
    b = fictitious_play(game, 20, backend="numba")
    np.testing.assert_allclose(b.pi, a.pi, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(b.pi[0, 1:], 1.0 / 3)  # empty at t = 0: uniform
    np.testing.assert_allclose(b.exploitability, a.exploitability, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- pieces
@pytest.mark.parametrize("name", ["beach_bar", "crowd_modelling", "crowd_motion"])
def test_reward_flow_equals_per_step_rewards(name):
    game = make_env(name, **({"torus_l": 5, "torus_w": 4} if name == "crowd_motion" else {}))
    pi = np.random.default_rng(0).dirichlet(np.ones(game.n_actions), size=(game.horizon + 1, game.n_states))
    L = evaluate(game, pi).L
    per_step = np.stack([game.reward(t, L[t]) for t in range(game.horizon + 1)])
    np.testing.assert_array_equal(game.reward_flow(L), per_step)


def test_backend_choice():
    static, dynamic = make_env("beach_bar"), make_env("susceptible_infected", horizon=3)
    assert select(dynamic).name == "numpy"
    assert select(static).name == ("numba" if NUMBA_AVAILABLE else "numpy")
    assert select(static, "numpy").name == "numpy"
    with pytest.raises(ProblemError, match="backend must be one of"):
        fictitious_play(static, 2, backend="fortran")
    if NUMBA_AVAILABLE:
        with pytest.raises(ProblemError, match="static transition"):
            online_mirror_descent(dynamic, 2, backend="numba")
