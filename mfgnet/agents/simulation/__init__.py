"""N-agent simulation under a solved MFG's feedback policy, and distances to its density."""

from mfgnet.agents.simulation.distances import (
                                                cell_probabilities,
                                                compare_to_solution,
                                                histogram_l1,
                                                sliced_wasserstein,
                                                wasserstein1_from_histogram,
)
from mfgnet.agents.simulation.policy import TabulatedPolicy
from mfgnet.agents.simulation.policy_simulation import (
                                                          LinearFeedbackSolution,
                                                          PolicySimulationResult,
                                                          euler_lq_moments,
                                                          simulate_policy,
)
from mfgnet.agents.simulation.simulate import SimulationResult, sample_density, simulate

__all__ = ["LinearFeedbackSolution", "PolicySimulationResult", "SimulationResult", "TabulatedPolicy",
           "cell_probabilities", "compare_to_solution", "euler_lq_moments", "histogram_l1", "sample_density",
           "simulate", "simulate_policy", "sliced_wasserstein", "wasserstein1_from_histogram"]
