"""B5: Gaussian log-congestion on ℝ^d (any d; a nonlinear coupling with an exact answer).

F(x, m) = c ln m + (β/2)|x|² (c > 0 crowd aversion, β > 0 pull to the origin), H = ½|p|²,
noise ν.  With α = (−c + √(c² + 4ν²β)) / (2ν) and ℓ = dαν + (cd/2) ln(α / (2πν)):

    m(t, x) = (α / (2πν))^{d/2} exp(−α|x|² / (2ν))      stationary: N(0, (ν/α) I)
    u(t, x) = α|x|²/2 − ℓ t                              G = u(T, ·), m0 = m

Ergodic form (``ergodic=True``): u = α|x|²/2, λ = ℓ, the same m.  Its problem's
initial_sampler is only the rough guess N(0, I) of where the crowd lives (not the answer).

(shared BENCHMARKS.md, checked symbolically there; tests/test_benchmarks.py checks the
residuals by autograd).  Everything is per coordinate except ln m's normalising constant,
which is why λ grows linearly in d.
"""

from __future__ import annotations

import math

import torch

from mfgnet.benchmarks.base import Benchmark
from mfgnet.problems import Euclidean, MFGProblem, ProblemError
from mfgnet.problems.validation import finite_parameters
from mfgnet.solution import ExactSolution


@finite_parameters
def log_congestion(dim: int = 1, viscosity: float = 0.2, aversion: float = 1.0, pull: float = 2.0,
                   horizon: float = 1.0, ergodic: bool = False) -> Benchmark:
    """B5: Gaussian log-congestion on ℝ^d (time-dependent or ergodic form) and its exact solution.

    Parameters
    ----------
    dim : int
        The dimension d >= 1.
    viscosity : float
        ν > 0.
    aversion : float
        c > 0 in F = c ln m + (β/2)|x|².
    pull : float
        β > 0, the pull to the origin.
    horizon : float
        T > 0 (ignored when ``ergodic``).
    ergodic : bool
        The ergodic form: horizon None, λ = ℓ exact, u = α|x|²/2.

    Returns
    -------
    Benchmark
        ``(problem, exact)``; ``exact.alpha`` is α and ``exact.ell`` is ℓ (u = α|x|²/2 − ℓt);
        the density is N(0, (ν/α) I) at every t.  ν = 0.2, c = 1, β = 2, d = 3 give
        α = 0.3722813233, ℓ = −1.6014481348.
    """
    if not dim >= 1:
        raise ProblemError(f"dim must be >= 1, got {dim!r}")
    for name, value in (("viscosity", viscosity), ("aversion", aversion), ("pull", pull), ("horizon", horizon)):
        if not value > 0:
            raise ProblemError(f"{name} must be > 0 for the log-congestion benchmark, got {value!r}")
    nu, c, beta = float(viscosity), float(aversion), float(pull)
    alpha = (-c + math.sqrt(c * c + 4 * nu * nu * beta)) / (2 * nu)
    ell = dim * alpha * nu + 0.5 * c * dim * math.log(alpha / (2 * math.pi * nu))
    variance = nu / alpha
    log_norm = 0.5 * dim * math.log(alpha / (2 * math.pi * nu))
    T = float(horizon)

    def density(t, x):
        return torch.exp(log_norm - alpha * (x * x).sum(-1) / (2 * nu))

    def value(t, x):
        return 0.5 * alpha * (x * x).sum(-1) - ell * t[:, 0]

    def coupling(t, x, m):
        return c * torch.log(m) + 0.5 * beta * (x * x).sum(-1)

    def sampler(n, generator=None):
        return math.sqrt(variance) * torch.randn(n, dim, generator=generator, dtype=torch.float64)

    if ergodic:
        def guess(n, generator=None):  # a rough guess of the crowd, deliberately not N(0, ν/α)
            return torch.randn(n, dim, generator=generator, dtype=torch.float64)

        problem = MFGProblem(Euclidean(dim), horizon=None, viscosity=nu, coupling=coupling,
                             initial_sampler=guess, name=f"log_congestion_ergodic_{dim}d")
        exact = ExactSolution(problem, lambda t, x: 0.5 * alpha * (x * x).sum(-1), density, ergodic_constant=ell,
                              sampler_fn=lambda t, gen: sampler(t.shape[0], gen))
        exact.alpha, exact.ell = alpha, ell
        return Benchmark(problem, exact)
    problem = MFGProblem(
        Euclidean(dim), horizon=T, viscosity=nu, coupling=coupling,
        terminal_cost=lambda x, m: 0.5 * alpha * (x * x).sum(-1) - ell * T,
        initial_density=lambda x: density(None, x), initial_sampler=sampler, name=f"log_congestion_{dim}d")
    # m0 is the stationary Gaussian, so m(t) = m0 at every t.
    exact = ExactSolution(problem, value, density, sampler_fn=lambda t, gen: sampler(t.shape[0], gen))
    exact.alpha, exact.ell = alpha, ell
    return Benchmark(problem, exact)
