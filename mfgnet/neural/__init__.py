"""Physics-informed neural solver: networks u_θ(t, x), m_φ(t, x) trained on HJB + FP residuals."""

from mfgnet.neural.config import LossConfig, ModelConfig, NeuralSolverConfig, OptimConfig, SamplerConfig
from mfgnet.neural.residuals import divergence, mfg_residuals, pde_residuals, rademacher
from mfgnet.neural.solution import NeuralSolution
from mfgnet.neural.solver import solve_neural
from mfgnet.neural.trainer import NonFiniteLossError

__all__ = ["LossConfig", "ModelConfig", "NeuralSolution", "NeuralSolverConfig", "NonFiniteLossError",
           "OptimConfig", "SamplerConfig", "divergence", "mfg_residuals", "pde_residuals", "rademacher",
           "solve_neural"]
