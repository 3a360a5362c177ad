"""Mean field Q-learning (Yang et al. 2018): tabular and neural, vectorised over agents."""

from mfgnet.agents.mfq.baseline import train_per_agent_loop
from mfgnet.agents.mfq.games import GAMES, IsingGame, MeanActionGame, RideSharingGame, TwoRoadGame
from mfgnet.agents.mfq.neural import train_neural
from mfgnet.agents.mfq.tabular import MFQConfig, MFQResult, train_tabular

__all__ = ["GAMES", "IsingGame", "MFQConfig", "MFQResult", "MeanActionGame", "RideSharingGame", "TwoRoadGame",
           "train_neural", "train_per_agent_loop", "train_tabular"]
