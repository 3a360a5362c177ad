"""Physics-informed neural solver: networks u_θ(t, x), m_φ(t, x) trained on HJB + FP residuals."""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "config": ["LossConfig", "ModelConfig", "NeuralSolverConfig", "OptimConfig", "SamplerConfig"],
    "residuals": ["divergence", "mfg_residuals", "pde_residuals", "rademacher"],
    "solution": ["NeuralSolution"],
    "solver": ["networks_solution", "solve_neural"],
    "trainer": ["NonFiniteLossError"],
})
