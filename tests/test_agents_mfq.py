"""Mean field Q-learning: traffic reaches B4's Nash split, ride-sharing its anti-coordination
equilibrium, the Ising lattice orders only at low temperature; the per-agent loop agrees."""

import numpy as np
import pytest

from mfgnet.agents.mfq import (
    IsingGame,
    MFQConfig,
    RideSharingGame,
    TwoRoadGame,
    train_neural,
    train_per_agent_loop,
    train_tabular,
)
from mfgnet.benchmarks import TwoRoadTraffic
from mfgnet.problems import ProblemError


def test_traffic_converges_to_nash_split():
    traffic = TwoRoadTraffic()
    res = train_tabular(TwoRoadGame(traffic), 2000, MFQConfig(steps=400, policy="egreedy", epsilon_decay=0.98))
    mu_A = res.action_dist[-1, 0]
    assert abs(mu_A - traffic.nash_share()) < 1e-2
    poa = traffic.social_cost(mu_A) / traffic.social_cost(traffic.optimal_share())
    assert abs(poa - 12 / 11) < 1e-2
    assert abs(-res.mean_reward[-1] - traffic.social_cost(mu_A)) < 1e-9


def test_interior_traffic_split():
    traffic = TwoRoadTraffic(a_B=1.5)  # Nash μ_A = 2/3
    # Everyone best-responding at once overshoots an interior split; inertia (10 % revise
    # per step) damps the oscillation.
    res = train_tabular(TwoRoadGame(traffic, n_bins=30), 4000,
                        MFQConfig(steps=600, temperature=0.02, revise_prob=0.1))
    assert abs(res.action_dist[-5:, 0].mean() - 2 / 3) < 0.05


def test_ride_sharing_anti_coordination():
    game = RideSharingGame(n_bins=9)
    res = train_tabular(game, 5000, MFQConfig(steps=600, temperature=0.02, q_init=1.0))
    np.testing.assert_allclose(res.action_dist[-1], game.equilibrium(), atol=0.03)
    assert res.mean_reward[-1] > 0.48
    assert abs(res.mean_action[-1] - 2.0) < 0.1


def test_zero_tables_lock_in_without_exploration():
    """The seed's symptom: zero tables, positive rewards and greedy play lock agents in."""
    game = RideSharingGame(n_bins=9)
    res = train_tabular(game, 5000, MFQConfig(steps=300, temperature=0.02, q_init=0.0))
    assert res.mean_reward[-1] < 0.46


@pytest.mark.parametrize("tau, ordered", [(0.3, True), (3.0, False)])
def test_ising_orders_below_critical_temperature(tau, ordered):
    res = train_tabular(IsingGame(32), 32 * 32, MFQConfig(steps=600, temperature=tau, revise_prob=0.5, shared=True))
    m = abs(res.mean_action[-1])
    if ordered:
        assert m > 0.9 and res.mean_reward[-1] > 0.8
    else:
        assert m < 0.2 and res.mean_reward[-1] < 0.2


def test_ising_neighbourhood_mean_action():
    game = IsingGame(4)
    a = np.zeros(16, dtype=np.int64)
    a[5] = 1  # one up spin at (1, 1)
    abar = game.mean_action(a)
    assert abar[5] == -1.0
    for nb in (1, 4, 6, 9):  # its four neighbours see one up, three down
        assert abar[nb] == -0.5
    assert game.bin(abar)[nb] == 1


def test_per_agent_loop_matches_vectorised_statistics():
    game = RideSharingGame(n_bins=9)
    cfg = dict(steps=400, policy="egreedy", epsilon_decay=0.99, record_every=400)
    loop = [train_per_agent_loop(game, 200, MFQConfig(seed=s, **cfg)) for s in range(2)]
    vec = [train_tabular(game, 200, MFQConfig(seed=s, **cfg)) for s in range(2)]
    for res in loop + vec:
        np.testing.assert_allclose(res.action_dist[-1], game.equilibrium(), atol=0.06)
        assert res.mean_reward[-1] > 0.47


def test_neural_mfq_traffic():
    res = train_neural(TwoRoadGame(), 1000, MFQConfig(steps=120, policy="egreedy", epsilon_decay=0.96), batch=256)
    assert res.action_dist[-1, 0] > 0.97


def test_config_validation():
    with pytest.raises(ProblemError, match="policy"):
        MFQConfig(policy="greedy")
    with pytest.raises(ProblemError, match="revise_prob"):
        MFQConfig(revise_prob=0)
