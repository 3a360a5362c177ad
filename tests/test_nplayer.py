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
