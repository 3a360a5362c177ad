"""The heat flow of m0 (mfgnet.neural.heat) against closed forms, its analytic derivatives,
and where it is (not) available."""

import math

import pytest
import torch

from mfgnet.neural import NeuralSolverConfig
from mfgnet.neural.heat import HeatFlow
from mfgnet.neural.networks import MFGNetworks, safe_log
from mfgnet.problems import Box, MFGProblem, ProblemError, Torus
from mfgnet.problems.zoo import ZOO

NU = 0.1


def _wrapped_gaussian(x: torch.Tensor, centre: float, var: float) -> torch.Tensor:
    """Periodic Gaussian on [0, 1) (images -4..4), mass 1."""
    shifts = torch.arange(-4, 5, dtype=x.dtype)
    d = x.unsqueeze(-1) - centre - shifts
    return torch.exp(-d ** 2 / (2 * var)).sum(-1) / math.sqrt(2 * math.pi * var)


def _torus_problem(dim: int) -> MFGProblem:
    centres, var0 = (0.3, 0.6), 0.06 ** 2

    def m0(x):
        return math.prod(_wrapped_gaussian(x[:, i], centres[i], var0) for i in range(dim))

    return MFGProblem(Torus(dim), horizon=1.0, viscosity=NU, coupling=lambda t, x, m: m,
                      terminal_cost=lambda x, m: torch.zeros(x.shape[0], dtype=x.dtype), initial_density=m0)


@pytest.mark.parametrize("dim", [1, 2])
def test_torus_heat_flow_matches_the_spreading_gaussian(dim):
    """m0 a (product of) wrapped Gaussian(s) of width 0.06: h(t) is the same with variance
    width² + 2νt, also on the far side of the circle, where m0 is 1e-11 of its peak."""
    problem = _torus_problem(dim)
    heat = HeatFlow.build(problem)
    assert heat is not None
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2000, dim, generator=gen, dtype=torch.float64)
    for t in (0.0, 0.01, 0.2, 1.0):
        tt = torch.full((2000, 1), t, dtype=torch.float64)
        exact = math.prod(_wrapped_gaussian(x[:, i], (0.3, 0.6)[i], 0.06 ** 2 + 2 * NU * t) for i in range(dim))
        m0 = problem.initial_density(x)
        with torch.no_grad():
            h = m0 + heat(tt, x)
        assert torch.allclose(h, exact, rtol=1e-9, atol=1e-11 * float(exact.max()))


def test_box_heat_flow_with_zero_slope_at_the_faces_is_exact():
    """m0 = 1 + 0.5 cos(πx) on [0, 1]: h = 1 + 0.5 e^{-νπ²t} cos(πx), two modes."""
    problem = MFGProblem(Box([0.0], [1.0]), horizon=1.0, viscosity=NU, coupling=lambda t, x, m: m,
                         terminal_cost=lambda x, m: torch.zeros(x.shape[0], dtype=x.dtype),
                         initial_density=lambda x: 1 + 0.5 * torch.cos(math.pi * x[:, 0]))
    heat = HeatFlow.build(problem)
    assert heat is not None and heat.modes(0).shape[0] == 2
    x = torch.linspace(0, 1, 101, dtype=torch.float64).unsqueeze(-1)
    t = torch.full((101, 1), 0.3, dtype=torch.float64)
    with torch.no_grad():
        h = problem.initial_density(x) + heat(t, x)
    exact = 1 + 0.5 * math.exp(-NU * math.pi ** 2 * 0.3) * torch.cos(math.pi * x[:, 0])
    assert torch.allclose(h, exact, rtol=1e-12, atol=0)


@pytest.mark.parametrize("dim", [1, 2])
def test_autograd_sees_the_analytic_derivatives(dim):
    """w = log(m0 + h(t) - h(0)) = log h(t) solves the heat equation in log form,
    ∂t w = ν(Δw + |∇w|²), when ∂t, ∇ and Δ are taken by autograd as the residuals do."""
    problem = _torus_problem(dim)
    heat = HeatFlow.build(problem)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(500, dim, generator=gen, dtype=torch.float64).requires_grad_(True)
    t = (0.5 * torch.rand(500, 1, generator=gen, dtype=torch.float64)).requires_grad_(True)
    w = safe_log(problem.initial_density(x) + heat(t, x))
    wt, wx = torch.autograd.grad(w.sum(), [t, x], create_graph=True)
    lap = sum(torch.autograd.grad(wx[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(dim))
    residual = (wt[:, 0] - NU * (lap + (wx * wx).sum(-1))).detach()
    m = torch.exp(w.detach())
    assert float(wt.detach().abs().max()) > 1.0  # the check is not trivial: the crowd does spread
    # Where m is above 1e-4 of its peak to 1e-5; in density form (m times it, the Fokker-Planck
    # form of bounded problems) everywhere, including the far tails where the series' absolute
    # accuracy (heat.TOLERANCE = 1e-12 of the peak) is all there is.
    bulk = m > 1e-4 * m.max()
    assert float(residual[bulk].abs().max()) < 1e-5
    assert float((m * residual).abs().max()) < 1e-8 * float(m.max())


def test_heat_needs_a_converged_series():
    """A bump whose slope at a face is not zero (box_bump_1d) has no converged cosine series: an
    explicit "heat" says why it cannot be used; on a torus it builds; "auto" stays the blend."""
    problem = ZOO["box_bump_1d"]()
    assert HeatFlow.build(problem) is None
    cfg = NeuralSolverConfig().model
    with pytest.raises(ProblemError, match="hard_initial='heat'.*zero slope"):
        MFGNetworks(problem, cfg.replace(hard_initial="heat"), torch.Generator().manual_seed(0))
    torus = ZOO["torus_bimodal_1d"]()
    assert MFGNetworks(torus, cfg.replace(hard_initial="heat"), torch.Generator().manual_seed(0)).heat is not None
    assert MFGNetworks(torus, cfg, torch.Generator().manual_seed(0)).hard_initial == "blend"


def test_heat_blend_trains_with_exact_m0_and_mass():
    """A short float64 run in the heat blend: the residual falls, m(0) stays m0 exactly and
    ∫m(t) = 1, and the initial fit runs as with the blend.  (Accuracy is the zoo's business:
    results/neural_zoo.)"""
    import warnings

    from mfgnet.evaluation.metrics import mass_error
    from mfgnet.neural import solve_neural

    problem = ZOO["torus_bimodal_1d"]()
    cfg = {"dtype": "float64", "steps": 150, "progress": False, "n_eval": 256,
           "model": {"width": 24, "depth": 2, "hard_initial": "heat"},
           "sampler": {"n_interior": 128, "n_quadrature": 64, "time_slices": 8}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a tiny run misses the tolerance: diagnosed
        sol = solve_neural(problem, cfg)
    assert sol.diagnostics.extra["hard_initial"] == "heat"
    assert sol.diagnostics.extra["warm_start"]["source"] == "initial"
    history = sol.diagnostics.residual_history
    assert all(math.isfinite(r) for r in history) and history[-1] < 0.5 * history[0]
    x = torch.linspace(0, 1, 201, dtype=torch.float64)[:-1].unsqueeze(-1)
    with torch.no_grad():
        m_start = sol.density(torch.zeros(200, dtype=torch.float64), x)
    assert torch.allclose(m_start, problem.initial_density(x), rtol=1e-12, atol=1e-12)
    assert mass_error(sol, n_times=11) < 1e-6


def test_diagnosis_suggests_the_heat_blend_only_where_it_applies():
    """A missed run whose Fokker-Planck residual dominates gets the hint on a torus (the series
    exists), not on box_bump_1d (it does not)."""
    import warnings

    from mfgnet.neural import solve_neural

    cfg = {"steps": 30, "progress": False, "warm_start": "off", "n_eval": 128, "model": {"width": 16, "depth": 2}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        torus = solve_neural(ZOO["torus_bimodal_1d"](), cfg).diagnostics.extra["diagnosis"]
        box = solve_neural(ZOO["box_bump_1d"](), cfg).diagnostics.extra["diagnosis"]
    assert torus["dominant"] == "fp"
    assert any("hard_initial=heat" in a for a in torus["advice"])
    assert not any("hard_initial=heat" in a for a in box["advice"])
