"""Finite MFGs: exact exploitability, fictitious play, online mirror descent, classic envs."""

import numpy as np
import pytest

from mfgnet.agents.finite import (
    ENVS,
    beach_bar,
    evaluate,
    exploitability,
    fictitious_play,
    left_right,
    make_env,
    mean_field,
    online_mirror_descent,
    q_optimal,
    two_road_traffic,
)
from mfgnet.benchmarks import TwoRoadTraffic
from mfgnet.problems import ProblemError


@pytest.mark.parametrize("name", sorted(ENVS))
def test_envs_are_stochastic_and_conserve_mass(name):
    game = make_env(name, **({"horizon": 5} if name == "susceptible_infected" else {}))
    pi = np.random.default_rng(0).dirichlet(np.ones(game.n_actions), size=(game.horizon + 1, game.n_states))
    L, P_list = mean_field(game, pi)
    for P in P_list:
        P = P.toarray() if hasattr(P, "toarray") else P
        assert P.shape == (game.n_states * game.n_actions, game.n_states)
        np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-12)
        assert P.min() >= 0
    np.testing.assert_allclose(L.sum((1, 2)), 1.0, atol=1e-12)


def test_policy_value_matches_forward_sum_and_best_response_dominates():
    game = beach_bar(n=6, horizon=4)
    rng = np.random.default_rng(1)
    pi = rng.dirichlet(np.ones(3), size=(5, 6))
    ev = evaluate(game, pi)
    # Value of π from Q^π (backward) equals the expected total reward along its flow (forward).
    forward = float((ev.L * ev.R).sum())
    assert abs(game.mu0 @ (pi[0] * ev.q_pi[0]).sum(-1) - forward) < 1e-12
    # The best response beats every deterministic policy against the same frozen flow.
    best = game.mu0 @ ev.q_star[0].max(-1)
    for _ in range(20):
        det = np.eye(3)[rng.integers(0, 3, size=(5, 6))]
        mu = game.mu0.copy()
        total = 0.0
        for t in range(5):
            total += (mu[:, None] * det[t] * ev.R[t]).sum()
            if t < 4:
                mu = ev.P[t].T @ (mu[:, None] * det[t]).reshape(-1)
        assert total <= best + 1e-12
    assert ev.exploitability > 0


def test_left_right_exact_equilibrium_has_zero_exploitability():
    game = left_right()
    pi_star = np.tile([2 / 3, 1 / 3], (2, 3, 1))
    assert abs(exploitability(game, pi_star)) < 1e-14
    pi_off = np.tile([0.5, 0.5], (2, 3, 1))
    # Off equilibrium by δ = 1/6 the gain is |r_L - r_R| = |μ_L - 2μ_R| = 0.5.
    assert exploitability(game, pi_off) == pytest.approx(0.5 - 0.25, abs=1e-14)
    res = online_mirror_descent(game, 100)
    assert res.final_exploitability < 1e-12
    np.testing.assert_allclose(res.pi[0, 0], [2 / 3, 1 / 3], atol=1e-10)


def test_fictitious_play_exploitability_decreases():
    res = fictitious_play(beach_bar(), 200)
    e = np.asarray(res.exploitability)
    assert e[10] < 0.1 * e[0]
    assert e[200] < e[50] < e[10]
    # FP's rate is O(1/n): the exploitability times n stays bounded.
    assert 50 * e[50] < 5 and 200 * e[200] < 5


def test_omd_beach_bar_converges():
    res = online_mirror_descent(beach_bar(), 100)
    assert res.final_exploitability < 5e-3
    assert res.exploitability[-1] < res.exploitability[20] < res.exploitability[0]


def test_traffic_reaches_b4_nash_split():
    traffic = TwoRoadTraffic()
    res = fictitious_play(two_road_traffic(traffic), 400)
    assert traffic.nash_share() == 1.0
    assert abs(res.pi[0, 0, 0] - 1.0) < 5e-3
    assert res.final_exploitability < 1e-3
    interior = TwoRoadTraffic(a_B=1.5)  # Nash μ_A = 2/3, inside (0, 1)
    res = online_mirror_descent(two_road_traffic(interior), 200)
    assert abs(res.pi[0, 0, 0] - interior.nash_share()) < 1e-10
    assert res.final_exploitability < 1e-12


def test_q_optimal_static_game():
    game = two_road_traffic()
    L = np.array([[[0.25, 0.75]]])
    Q = q_optimal(np.stack([game.reward(0, L[0])]), [])
    np.testing.assert_allclose(Q[0, 0], [-1.25, -2.375])


def test_bad_input_is_rejected():
    with pytest.raises(ProblemError, match="policy has shape"):
        exploitability(left_right(), np.ones((1, 3, 2)) / 2)
    with pytest.raises(ProblemError, match="unknown finite env"):
        make_env("nope")
    with pytest.raises(ProblemError, match="bar_loc"):
        beach_bar(n=4, bar_loc=7)
    with pytest.raises(ProblemError, match="damping"):
        fictitious_play(left_right(), damping=2.0)


def test_discretisation_bridge_matches_continuous_density():
    import torch

    from mfgnet.agents.finite.bridge import finite_from_continuous
    from mfgnet.benchmarks import hopf_cole

    b3 = hopf_cole()
    game = finite_from_continuous(b3.problem, cells=16, n_actions=21, alpha_max=2.0)
    res = fictitious_play(game, 12, damping=0.5)  # damped: plain best responses flip between near-equilibria
    assert res.final_exploitability < 1e-3
    x = torch.from_numpy(game.info["x"])[:, None]
    h, k = game.info["h"], game.horizon // 2
    m_mid = b3.exact.density(k * game.info["dt"], x).numpy()
    m_0 = b3.exact.density(0.0, x).numpy()
    err = np.abs(res.mu[k] / h - m_mid).sum() * h
    # the finite equilibrium follows the continuous flow: its error is a fraction of how far m moved
    assert err < 0.2 * np.abs(m_mid - m_0).sum() * h
    np.testing.assert_allclose(res.mu.sum(-1), 1.0, atol=1e-12)
