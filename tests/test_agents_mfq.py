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


def test_typed_traffic_equilibrium_satisfies_wardrop_per_type():
    """The exact typed equilibrium: a type on road A is not slower there, a type on B not slower
    there, for random parameters; shares add up to the equilibrium share."""
    from mfgnet.agents.mfq.games import TypedTrafficGame

    rng = np.random.default_rng(0)
    for _ in range(50):
        k = int(rng.integers(2, 5))
        shares = rng.dirichlet(np.ones(k))
        game = TypedTrafficGame(shares, rng.uniform(0.5, 2.5, k), rng.uniform(0.5, 2.5, k),
                                float(rng.uniform(0.5, 3)), float(rng.uniform(0.5, 3)))
        share, mu = game.equilibrium()
        assert share == pytest.approx(float((shares * mu).sum()), abs=1e-12)
        times = game.travel_times(share)
        assert np.all(times[mu > 1e-12, 0] <= times[mu > 1e-12, 1] + 1e-9)
        assert np.all(times[mu < 1 - 1e-12, 1] <= times[mu < 1 - 1e-12, 0] + 1e-9)


@pytest.mark.parametrize("params, revise, tol", [
    # type 0 splits (exact μ = 0.9375, 0); synchronous revision: share error <= 0.009 over 5 seeds
    ({}, 1.0, 1e-2),
    # three types, the middle one splits 50/50: synchronous revision cycles (share errors 0.08-0.23
    # over 5 seeds), a revision probability of 0.3 lands on it (<= 2e-4): results/agents/mfq_types.md
    ({"shares": (0.3, 0.4, 0.3), "free_flow_a": (1.0, 1.5, 2.0), "free_flow_b": (2.0, 1.5, 1.0)}, 0.3, 5e-3),
])
def test_mfq_with_types_learns_the_typed_equilibrium(params, revise, tol):
    from mfgnet.agents.mfq.games import TypedTrafficGame

    game = TypedTrafficGame(**params)
    result = train_tabular(game, 20000, MFQConfig(steps=1000, policy="egreedy", revise_prob=revise, seed=0,
                                                  progress=False))
    _, mu = game.equilibrium()
    assert np.abs(game.type_shares(result.actions) - mu).max() < tol
    assert game.exploitability(result.actions) < 2e-2
