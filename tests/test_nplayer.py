"""The N-player gap (issue 15, part 2): one deviating player's gain falls with N (beach bar: about
N^-1, faster than the N^-1/2 bound, results/agents/nplayer.md) and the task writes its curve."""

from __future__ import annotations

import numpy as np
import pytest

from mfgnet.agents.finite import make_env, online_mirror_descent
from mfgnet.agents.nplayer import n_player_gap
from mfgnet.agents.tasks import run_task
from mfgnet.problems import ProblemError


def test_gap_falls_with_the_number_of_players():
    game = make_env("beach_bar", n=4, horizon=2)
    pi = online_mirror_descent(game, 500).pi
    eps = [n_player_gap(game, pi, n, samples=600, seed=0)["epsilon"] for n in (5, 40)]
    # measured with 2000 samples: 0.073 at N = 5, 0.0046 at N = 50 (slope about -1.1)
    assert eps[0] > 0.05 and eps[1] < 0.02
    assert np.log(eps[1] / eps[0]) / np.log(8) < -0.6
    # a policy that is not an equilibrium leaves a gain that does not vanish with N
    uniform = game.uniform_policy()
    assert n_player_gap(game, uniform, 40, samples=200, seed=0)["epsilon"] > 0.1


def test_nplayer_task(tmp_path):
    metrics = run_task({"task": {"name": "nplayer", "sizes": [5, 20], "samples": 200, "seeds": 1},
                        "progress": False}, tmp_path)
    assert metrics["epsilon"][0] > metrics["epsilon"][1] > 0
    assert (tmp_path / "nplayer_gap.png").stat().st_size > 0
    with pytest.raises(ProblemError, match="sizes"):
        run_task({"task": {"name": "nplayer", "sizes": [5]}}, tmp_path / "bad")


# ---------------------------------------------------------------- continuous games on the grid
@pytest.fixture(scope="module")
def b3_game():
    from mfgnet.agents.nplayer_grid import DiscreteGame
    from mfgnet.benchmarks import hopf_cole

    return DiscreteGame(hopf_cole().problem, cells=32)


def test_grid_game_is_exact_at_the_mean_field(b3_game):
    g = b3_game
    # the chain's kernels are stochastic and move the grid's m exactly
    assert np.allclose(g.transitions.sum(1), 1.0, atol=1e-12) and g.transitions.min() >= 0
    assert np.abs(np.einsum("kij,kj->ki", g.transitions, g.m[:-1]) - g.m[1:]).max() < 1e-10
    # against the equilibrium's own crowd the deviator gains nothing (duality of the scheme)
    F, G = g.costs(g.m)
    best, ok = g.best_response_cost(F, G)
    assert ok and abs(g.equilibrium_cost(F, G) - best) < 1e-12
    # simulated crowds average to m: pooled histogram of 20 x 2000 agents within 5 standard errors
    counts = g.simulate_counts(2000, 20, np.random.default_rng(3))
    freq = counts.sum(0) / 40000
    p = g.m * g.h
    assert np.abs(freq - p).max() < 5 * np.sqrt(p.max() / 40000)


def test_grid_gap_rates(b3_game):
    rng = np.random.default_rng(0)
    small, large = b3_game.gains(10, 24, rng), b3_game.gains(100, 24, rng)
    # the feedback deviator's gain is second order in the 1/N shift of the mean cost: N^-2 exactly
    # enough on B3's linear coupling (measured 2.50e-5 and 2.50e-7 at 128 cells)
    assert 90 < small["markov"] / large["markov"] < 110
    # the informed deviator's gain is second order in the N^-1/2 noise: about N^-1 (slope -1.02
    # at 128 cells, results/agents/nplayer.md); it knows more, so it gains more
    assert 5 < small["informed"] / large["informed"] < 20
    for r in (small, large):
        assert r["informed"] > r["markov"] > 0 and r["best_responses_converged"]


def test_nplayer_grid_task(tmp_path):
    metrics = run_task({"task": {"name": "nplayer_grid", "cells": 32, "sizes": [10, 100], "realisations": 4},
                        "progress": False}, tmp_path)
    assert metrics["slope_markov"] == pytest.approx(-2.0, abs=0.1)
    assert (tmp_path / "nplayer_gap.png").stat().st_size > 0
    with pytest.raises(ProblemError, match="sizes"):
        run_task({"task": {"name": "nplayer_grid", "sizes": [10]}}, tmp_path / "bad")
    with pytest.raises(ProblemError, match="problem"):
        run_task({"task": {"name": "nplayer_grid", "problem": "trade_crowding"}}, tmp_path / "bad2")
    with pytest.raises(ProblemError, match="1D"):
        run_task({"task": {"name": "nplayer_grid", "problem": "crowd_aversion", "problem_params": {"dim": 2}}},
                 tmp_path / "bad3")
