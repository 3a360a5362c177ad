"""B8: trade crowding, an MFG of controls with an exact solution (derived here).

Traders liquidate inventories x ∈ R at speed α, paying κα² per unit time (temporary price
impact) and φx² (risk aversion), and A x_T² for what is left at T.  The crowd's mean trading
speed ᾱ(t) moves the price by γ ᾱ dt (permanent impact), which changes the value of the
inventory held by γ ᾱ x dt (Cardaliaguet and Lehalle 2018; Carmona and Delarue 2018, vol. I,
§1.3.2 and §4.7.1).  In mfgnet's form (noise √(2ν) dW on the inventory):

    H(p) = p²/(4κ)  (QuadraticHamiltonian(scale = 1/(2κ)), α = -∂x u / (2κ)),
    F(x) = φ x²,   f(t, x, ᾱ) = -γ ᾱ(t) x,   G(x) = A x²,   m0 = N(E0, S0),
    ᾱ(t) = ∫ α(t, x) m(t, x) dx.

Derivation.  Try u = ½ a x² + b x + c.  The HJB equation, order by order in x:

    x²: a' = a²/(2κ) - 2φ,  a(T) = 2A      x: b' = a b/(2κ) + γ ᾱ,  b(T) = 0
    1:  c' = b²/(4κ) - ν a,  c(T) = 0.

The feedback α = -(a x + b)/(2κ) is affine, so m stays Gaussian, N(E, S), with
E' = ᾱ = -(a E + b)/(2κ) and S' = -(a/κ) S + 2ν.  Differentiating 2κE' = -(aE + b) and
substituting a' and b' removes a and b:

    2κ E'' + γ E' - 2φ E = 0,   E(0) = E0,   κ E'(T) + A E(T) = 0,

a linear ODE with constant coefficients (roots r± = (-γ ± √(γ² + 16κφ))/(4κ)); then
b = -2κE' - aE.  With ω = √(φ/κ), τ = ω(T - t), β = A/(κω) and w(t) = cosh τ + β sinh τ,
a = -2κ w'/w = 2κω (sinh τ + β cosh τ)/w; (S/w²)' = 2ν/w² and d/dτ (sinh τ / w) = 1/w² give

    S(t) = w(t)² [S0/w(0)² + (2ν/ω)(sinh ωT / w(0) - sinh τ / w(t))];

c(t) = ∫_t^T (ν a - b²/(4κ)) ds by 64-point Gauss–Legendre (analytic integrand: round-off).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mfgnet.benchmarks.base import Benchmark
from mfgnet.problems import Box, Euclidean, MFGProblem, ProblemError, QuadraticHamiltonian
from mfgnet.problems.validation import finite_parameters
from mfgnet.solution import ExactSolution

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(64)


class TradeCrowdingCoefficients:
    """a(t), b(t), c(t), the mean E(t), its speed ᾱ(t) = E'(t) and the variance S(t) of B8,
    vectorised over t (a torch tensor of any shape, float64)."""

    def __init__(self, horizon: float, kappa: float, risk: float, terminal: float, impact: float,
                 viscosity: float, mean0: float, var0: float) -> None:
        self.T, self.kappa, self.phi, self.A, self.gamma = horizon, kappa, risk, terminal, impact
        self.nu, self.var0 = viscosity, var0
        self.omega = math.sqrt(risk / kappa)
        self.beta = terminal / (kappa * self.omega)
        root = math.sqrt(impact**2 + 16 * kappa * risk)
        self.r_plus, self.r_minus = (-impact + root) / (4 * kappa), (-impact - root) / (4 * kappa)
        # E = P e^{r+ (t - T)} + Q e^{r- t}: both exponentials <= 1 on [0, T] (r+ > 0 > r-).
        rp, rm, T = self.r_plus, self.r_minus, horizon
        matrix = np.array([[math.exp(-rp * T), 1.0],
                           [kappa * rp + terminal, (kappa * rm + terminal) * math.exp(rm * T)]])
        self.P, self.Q = np.linalg.solve(matrix, np.array([mean0, 0.0]))

    def _w(self, t):
        tau = self.omega * (self.T - t)
        return torch.cosh(tau) + self.beta * torch.sinh(tau), tau

    def a(self, t):
        """The quadratic coefficient of u: a' = a²/(2κ) - 2φ, a(T) = 2A."""
        w, tau = self._w(t)
        return 2 * self.kappa * self.omega * (torch.sinh(tau) + self.beta * torch.cosh(tau)) / w

    def mean(self, t):
        """E(t), the crowd's mean inventory."""
        return self.P * torch.exp(self.r_plus * (t - self.T)) + self.Q * torch.exp(self.r_minus * t)

    def mean_control(self, t):
        """ᾱ(t) = E'(t), the crowd's mean trading speed."""
        return (self.P * self.r_plus * torch.exp(self.r_plus * (t - self.T))
                + self.Q * self.r_minus * torch.exp(self.r_minus * t))

    def b(self, t):
        """The linear coefficient of u: b = -2κ E' - a E."""
        return -2 * self.kappa * self.mean_control(t) - self.a(t) * self.mean(t)

    def variance(self, t):
        """S(t), the variance of m(t)."""
        w, tau = self._w(t)
        w0, _ = self._w(torch.zeros_like(t))
        om = self.omega
        return w**2 * (self.var0 / w0**2
                       + (2 * self.nu / om) * (math.sinh(om * self.T) / w0 - torch.sinh(tau) / w))

    def c(self, t):
        """c(t) = ∫_t^T (ν a - b²/(4κ)) ds."""
        nodes = torch.as_tensor(_GL_NODES, dtype=t.dtype, device=t.device)
        weights = torch.as_tensor(_GL_WEIGHTS, dtype=t.dtype, device=t.device)
        half = 0.5 * (self.T - t).unsqueeze(-1)
        s = t.unsqueeze(-1) + half * (nodes + 1)
        integrand = self.nu * self.a(s) - self.b(s) ** 2 / (4 * self.kappa)
        return (half * weights * integrand).sum(-1)


@finite_parameters
def trade_crowding(horizon: float = 1.0, kappa: float = 0.5, risk: float = 0.5, terminal: float = 2.0,
                   impact: float = 1.0, viscosity: float = 0.05, mean0: float = 1.0, var0: float = 0.1
                   ) -> Benchmark:
    """B8: trade crowding, an MFG of controls (the cost depends on the crowd's mean trading speed).

    Parameters
    ----------
    horizon : float
        T > 0.
    kappa : float
        κ > 0, the temporary impact: a trader pays κα² per unit time.
    risk : float
        φ > 0, the running inventory penalty φx².
    terminal : float
        A >= 0, the terminal penalty A x_T².
    impact : float
        γ >= 0, the permanent impact: the crowd's mean speed ᾱ moves the price by γᾱ dt.
    viscosity : float
        ν >= 0 (inventory noise √(2ν) dW).
    mean0 : float
        E0, the mean initial inventory.
    var0 : float
        S0 > 0, the variance of the initial inventories.

    Returns
    -------
    Benchmark
        ``(problem, exact)`` on R (solvers that need a box use one that holds the crowd over
        [0, T] with 8 standard deviations to spare); ``exact.coefficients`` is the
        [`TradeCrowdingCoefficients`][mfgnet.benchmarks.trade_crowding.TradeCrowdingCoefficients]
        and ``exact.mean_control(t)`` the exact ᾱ.
    """
    for name, value in (("horizon", horizon), ("kappa", kappa), ("risk", risk), ("var0", var0)):
        if not value > 0:
            raise ProblemError(f"trade_crowding: {name} must be > 0, got {value!r}")
    for name, value in (("terminal", terminal), ("impact", impact), ("viscosity", viscosity)):
        if not value >= 0:
            raise ProblemError(f"trade_crowding: {name} must be >= 0, got {value!r}")
    coef = TradeCrowdingCoefficients(float(horizon), float(kappa), float(risk), float(terminal), float(impact),
                                     float(viscosity), float(mean0), float(var0))
    times = torch.linspace(0.0, float(horizon), 201, dtype=torch.float64)
    means, stds = coef.mean(times), coef.variance(times).sqrt()
    lower, upper = float((means - 8 * stds).min()), float((means + 8 * stds).max())
    domain = Euclidean(1, box=Box([lower], [upper]))
    std0 = math.sqrt(var0)

    def gaussian(x, mean, var):
        return torch.exp(-0.5 * (x - mean) ** 2 / var) / torch.sqrt(torch.as_tensor(2 * math.pi * var))

    def mean_control_cost(t, x, mean_control):  # the mark-to-market cost of the crowd's price impact
        return -impact * mean_control[:, 0] * x[:, 0]

    problem = MFGProblem(
        domain, horizon=float(horizon), viscosity=float(viscosity),
        hamiltonian=QuadraticHamiltonian(scale=1.0 / (2.0 * kappa)),
        coupling=lambda t, x, m: risk * x[:, 0] ** 2,
        terminal_cost=lambda x, m: terminal * x[:, 0] ** 2,
        initial_density=lambda x: gaussian(x[:, 0], mean0, var0),
        initial_sampler=lambda n, gen: mean0 + std0 * torch.randn(n, 1, generator=gen, dtype=torch.float64),
        mean_control_cost=mean_control_cost, name="trade_crowding")

    def value(t, x):
        tt = t[:, 0]
        return 0.5 * coef.a(tt) * x[:, 0] ** 2 + coef.b(tt) * x[:, 0] + coef.c(tt)

    def density(t, x):
        tt = t[:, 0]
        return gaussian(x[:, 0], coef.mean(tt), coef.variance(tt))

    def sampler(t, generator):
        t = t.to(torch.float64)
        noise = torch.randn(t.shape[0], generator=generator, dtype=torch.float64)
        return (coef.mean(t) + coef.variance(t).sqrt() * noise).unsqueeze(-1)

    exact = ExactSolution(problem, value, density, sampler_fn=sampler)
    exact.coefficients = coef
    exact.mean_control = lambda t: coef.mean_control(torch.as_tensor(t, dtype=torch.float64)).reshape(-1, 1)
    return Benchmark(problem, exact)
