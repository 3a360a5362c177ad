"""Exact benchmarks (see shared BENCHMARKS.md): each returns ``Benchmark(problem, exact)``."""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "base": ["Benchmark"],
    "ergodic_torus": ["ergodic_torus"],
    "hopf_cole": ["hopf_cole"],
    "lq_gaussian": ["LQCoefficients", "lq_gaussian"],
    "log_congestion": ["log_congestion"],
    "separable_crowd": ["SeparableSolution", "separable_crowd", "separable_crowd_2d"],
    "traffic": ["TwoRoadTraffic"],
    "two_populations": ["PopulationsBenchmark", "two_populations"],
})
