"""Tabular MF-Q's numba step (issue 16): its exp, the same runs as the numpy step from the same
random numbers, chunk invariance, the reward tables it reads, and the backend choice."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from mfgnet.agents.mfq import (  # noqa: E402
    GAMES,
    IsingGame,
    MFQConfig,
    RideSharingGame,
    TwoRoadGame,
    kernel,
    train_tabular,
)
from mfgnet.agents.mfq.games import TypedTrafficGame  # noqa: E402
from mfgnet.problems import ProblemError  # noqa: E402


def test_kernel_exp_is_float32_accurate():
    x = np.concatenate([np.linspace(-87, 0, 200_001), np.linspace(0, 88, 50_001)]).astype(np.float32)
    exact = np.exp(x.astype(np.float64))
    rel = np.abs(kernel.exp_float32(x) / exact - 1)
    assert rel.max() < 3e-7  # two float32 ulps (numpy's float32 exp: 1.9e-7 on the same points)


CASES = [
    (RideSharingGame(n_bins=9), 2000, dict(temperature=0.02, q_init=1.0)),
    (RideSharingGame(n_bins=9), 2000, dict(policy="egreedy")),
    (RideSharingGame(), 999, dict(q_init=1.0, gamma=0.3)),
    (TwoRoadGame(), 2000, dict(temperature=0.01)),
    (TwoRoadGame(), 1000, dict(policy="egreedy", gamma=0.5)),
    (TypedTrafficGame(), 2000, dict(policy="egreedy", revise_prob=0.3)),
    (IsingGame(20), 400, dict(temperature=0.5, gamma=0.2, revise_prob=0.5)),
]


@pytest.mark.parametrize("game, n, kw", CASES)
def test_numba_and_numpy_steps_give_the_same_run(game, n, kw):
    """Same generators, same draws, float32 arithmetic repeated op for op: the runs coincide but
    where exp's rounding (the kernel's polynomial, numpy's SIMD exp, which differs between CPUs)
    moves a uniform across a CDF boundary (~1e-7 per draw); an agent that acts differently then
    learns differently, so the bounds allow a few such agents.  Another random stream would match
    about half the actions and Q-values."""
    cfg = MFQConfig(steps=200, record_every=20, progress=False, **kw)
    ref = train_tabular(game, n, cfg, backend="numpy")
    fast = train_tabular(game, n, cfg, backend="numba")
    assert (ref.extra["backend"], fast.extra["backend"]) == ("numpy", "numba")
    assert np.mean(ref.actions == fast.actions) > 0.99
    np.testing.assert_allclose(fast.action_dist, ref.action_dist, atol=0.01)
    np.testing.assert_allclose(fast.mean_reward, ref.mean_reward, atol=2e-3)
    assert np.mean(np.abs(fast.q - ref.q) > 1e-5) < 0.01


@pytest.mark.parametrize("game, n, kw", [CASES[0], CASES[4], CASES[5], CASES[6]])
def test_numba_chunks_give_the_same_run(game, n, kw):
    one = train_tabular(game, n, MFQConfig(steps=40, record_every=5, progress=False, **kw), backend="numba")
    for chunk in (7, 300):
        chunked = train_tabular(game, n, MFQConfig(steps=40, record_every=5, chunk_size=chunk, progress=False, **kw),
                                backend="numba")
        for key in ("action_dist", "mean_reward", "mean_action", "q", "actions"):
            assert np.array_equal(getattr(one, key), getattr(chunked, key)), (key, chunk)


@pytest.mark.parametrize("game", [TwoRoadGame(), RideSharingGame(), TypedTrafficGame(shares=(0.3, 0.4, 0.3),
                                                                                     free_flow_a=(1.0, 1.5, 2.0),
                                                                                     free_flow_b=(2.0, 1.5, 1.0))])
def test_reward_table_holds_the_rewards(game):
    rng = np.random.default_rng(3)
    actions = rng.integers(0, game.n_actions, 1000)
    abar = game.mean_action(actions)
    types = game.agent_types(1000)
    rows = np.zeros(1000, dtype=np.int64) if types is None else types
    table = game.reward_table(abar)
    assert table.dtype == np.float32
    assert np.array_equal(game.reward(actions, abar), table[rows, actions])
    assert np.array_equal(game.reward(actions[300:700], abar, agents=slice(300, 700)),
                          table[rows[300:700], actions[300:700]])


@pytest.mark.parametrize("game", [TwoRoadGame(), RideSharingGame(), RideSharingGame(n_prices=7),
                                  TypedTrafficGame(), IsingGame(4)])
def test_mean_action_from_counts_is_the_mean_action(game):
    """The numba learner takes ā from the action counts its kernel makes: exactly mean_action's ā."""
    rng = np.random.default_rng(5)
    n = 16 if isinstance(game, IsingGame) else 1001
    for actions in (rng.integers(0, game.n_actions, n), np.zeros(n, np.int64), np.full(n, game.n_actions - 1)):
        from_counts = game.mean_action_from_counts(np.bincount(actions, minlength=game.n_actions))
        if isinstance(game, IsingGame):  # per-agent ā: not a function of the counts
            assert from_counts is None
        else:
            assert from_counts == game.mean_action(actions)


def test_backend_choice():
    game = RideSharingGame()
    cfg = MFQConfig(steps=3, progress=False, shared=True)
    assert train_tabular(game, 50, cfg).extra["backend"] == "numpy"  # shared tables: numpy only
    assert train_tabular(game, 50, MFQConfig(steps=3, progress=False)).extra["backend"] == "numba"
    with pytest.raises(ProblemError, match="shared"):
        train_tabular(game, 50, cfg, backend="numba")
    with pytest.raises(ProblemError, match="backend"):
        train_tabular(game, 50, cfg, backend="cuda")
    assert IsingGame(4).reward_table(0.0) is None and "typed_traffic" in GAMES
