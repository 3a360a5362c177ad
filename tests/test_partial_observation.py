"""Partial observation (issue 15, part 3): K-sample estimates of the mean action (MF-Q) and of the
distribution (finite MFGs); with more agents observed the finite exploitability falls towards the
full-information value, and the task writes its curve."""

from __future__ import annotations

import numpy as np
import pytest

from mfgnet.agents.finite import make_env
from mfgnet.agents.mfq.games import RideSharingGame, TypedTrafficGame
from mfgnet.agents.partial import SampledMeanAction, finite_partial_curve
from mfgnet.agents.tasks import run_task
from mfgnet.problems import ProblemError


def test_sampled_mean_action_estimates_and_pays_the_true_mean():
    game = SampledMeanAction(RideSharingGame(n_prices=5), k=50, seed=0)
    actions = np.random.default_rng(0).integers(0, 5, 20000)
    observed = game.mean_action(actions)
    assert observed.shape == (20000,)
    assert abs(observed.mean() - actions.mean()) < 0.02  # unbiased
    assert observed.std() == pytest.approx(actions.std() / np.sqrt(50), rel=0.05)  # K-sample noise
    paid = RideSharingGame(5).reward(actions[:10], actions.mean())
    assert np.allclose(game.reward(actions[:10], observed[:10]), paid)


def test_sir_exploitability_falls_with_the_agents_observed():
    """Measured when written (60 iterations, 16 views): 0.40 (K = 1), 0.11 (K = 10), 0.038 (K = 100),
    0.012 full; here fewer iterations and views."""
    game = make_env("sir_vaccination")
    e1, e10, e100, full = finite_partial_curve(game, [1, 10, 100, None], iterations=30, views=8)
    assert e1 > e10 > e100 > full
    assert e100 < 0.1 and e1 > 0.2


def test_partial_task_and_refusals(tmp_path):
    metrics = run_task({"task": {"name": "partial", "ks": [2, 20], "n_agents": 2000, "mfq_steps": 100,
                                 "iterations": 10, "views": 4}, "progress": False}, tmp_path)
    assert len(metrics["mfq_distance"]) == 2
    assert metrics["finite_exploitability"][0] > metrics["finite_exploitability_full"]
    assert (tmp_path / "partial_observation.png").stat().st_size > 0
    with pytest.raises(ProblemError, match="k"):
        SampledMeanAction(TypedTrafficGame(), k=0)
