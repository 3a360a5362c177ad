"""Finite (discrete) mean field games: exact evaluation, fictitious play, online mirror descent."""

from mfgnet.agents.finite.dynamics import Evaluation, evaluate, exploitability, greedy, mean_field, q_optimal, q_policy
from mfgnet.agents.finite.envs import (
                                       ENVS,
                                       beach_bar,
                                       crowd_modelling,
                                       crowd_motion,
                                       left_right,
                                       linear_quadratic,
                                       make_env,
                                       susceptible_infected,
                                       two_road_traffic,
)
from mfgnet.agents.finite.game import FiniteMFG
from mfgnet.agents.finite.solvers import SOLVERS, FiniteResult, fictitious_play, online_mirror_descent

__all__ = ["ENVS", "SOLVERS", "Evaluation", "FiniteMFG", "FiniteResult", "beach_bar", "crowd_modelling",
           "crowd_motion", "evaluate", "exploitability", "fictitious_play", "greedy", "left_right",
           "linear_quadratic", "make_env", "mean_field", "online_mirror_descent", "q_optimal", "q_policy",
           "susceptible_infected", "two_road_traffic"]
