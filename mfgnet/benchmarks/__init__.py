"""Exact benchmarks (see shared BENCHMARKS.md): each returns ``Benchmark(problem, exact)``."""

from mfgnet.benchmarks.base import Benchmark
from mfgnet.benchmarks.ergodic_torus import ergodic_torus
from mfgnet.benchmarks.hopf_cole import hopf_cole
from mfgnet.benchmarks.lq_gaussian import LQCoefficients, lq_gaussian
from mfgnet.benchmarks.traffic import TwoRoadTraffic

__all__ = ["Benchmark", "LQCoefficients", "TwoRoadTraffic", "ergodic_torus", "hopf_cole", "lq_gaussian"]
