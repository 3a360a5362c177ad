"""The gradient-enhanced HJB term (loss.hjb_gradient): zero on an exact solution, the x-derivative of the residual
(against finite differences), seen where the plain residual hardly sees a curvature error, and its default."""

import pytest
import torch

from mfgnet.benchmarks import hopf_cole, lq_gaussian
from mfgnet.neural.config import HJB_GRADIENT_R, LossConfig, NeuralSolverConfig, default_hjb_gradient
from mfgnet.neural.losses import hjb_gradient_term
from mfgnet.neural.residuals import mfg_residuals
from mfgnet.problems.zoo import LQ_TERMINAL_PULL_PARAMS, ZOO

B2 = lq_gaussian(1, **LQ_TERMINAL_PULL_PARAMS)  # the zoo's lq_terminal_pull_1d: problem and exact solution


def _b2_residual(value_fn, n=256, seed=0, width=None, shift=0.0):
    """The HJB residual of (value_fn, B2's exact m) at n points (t uniform, x in the bounding box or, with ``width``,
    around the exact mean at t), the points moved by ``shift``, and the points (a leaf of the residual's graph)."""
    problem, exact = B2
    gen = torch.Generator().manual_seed(seed)
    t = torch.rand(n, 1, generator=gen, dtype=torch.float64) * problem.horizon
    if width is None:
        x = problem.bounding_box().sample(n, gen)
    else:
        x = exact.coefficients.mean(t[:, 0]).reshape(-1, 1) + width * torch.randn(n, 1, generator=gen,
                                                                                  dtype=torch.float64)
    x = (x + shift).detach().requires_grad_(True)
    conv = exact.coefficients.mean(t[:, 0]).reshape(-1, 1)

    def log_density(t, x):
        return torch.log(exact._density(t, x))

    res = mfg_residuals(problem, value_fn, log_density, t, x, conv=conv, x_graph=True)
    return res.hjb, x


def test_term_vanishes_on_the_exact_solution():
    hjb, x = _b2_residual(B2.exact._value)
    assert float(hjb.detach().abs().max()) < 1e-9
    assert float(hjb_gradient_term(hjb, x, None).detach()) < 1e-18


def test_term_is_the_mean_square_of_the_residuals_x_derivative():
    """Against central differences of the residual itself, with importance weights per point."""
    def value(t, x):  # u off the exact one by a curvature and a wiggle: ∂x r is not constant
        return B2.exact._value(t, x) + 0.05 * (x[:, 0] - 1.0) ** 2 + 0.02 * torch.sin(3 * x[:, 0]) * t[:, 0]

    hjb, x = _b2_residual(value, n=64, seed=3)
    scale = torch.linspace(0.5, 1.5, 64, dtype=torch.float64)
    term = float(hjb_gradient_term(hjb, x, scale).detach())
    step = 1e-5
    plus, _ = _b2_residual(value, n=64, seed=3, shift=step)  # the same points moved by ±step
    minus, _ = _b2_residual(value, n=64, seed=3, shift=-step)
    derivative = (plus.detach() - minus.detach()) / (2 * step)
    expected = float(((derivative * scale) ** 2).mean())
    assert term == pytest.approx(expected, rel=1e-6)
    assert term > 1e-4  # not trivially zero


def test_term_sees_a_curvature_error_under_a_narrow_crowd():
    """The reason for the term: u's curvature off by 10 % across a crowd of width 0.1 (the zoo's
    lq_terminal_pull_1d) changes the residual by far less than it changes the residual's x-derivative."""
    exact = B2.exact
    a_error = 0.1 * 1.4  # 10 % of u's curvature there

    def value(t, x):  # the same u plus a curvature error centred at the crowd's mean
        centre = exact.coefficients.mean(t[:, 0])[:, 0]
        return exact._value(t, x) + 0.5 * a_error * (x[:, 0] - centre) ** 2

    hjb, x = _b2_residual(value, width=0.1)
    plain = float((hjb.detach() ** 2).mean())
    gradient = float(hjb_gradient_term(hjb, x, None).detach())
    assert gradient > 20 * plain


def test_default_on_the_line_and_the_plane_only():
    assert default_hjb_gradient(ZOO["lq_terminal_pull_1d"]()) == HJB_GRADIENT_R
    assert default_hjb_gradient(ZOO["lq_offset_2d"]()) == HJB_GRADIENT_R
    assert default_hjb_gradient(ZOO["box_bump_1d"]()) == 0.0
    assert default_hjb_gradient(ZOO["torus_power_two_1d"]()) == 0.0
    assert default_hjb_gradient(lq_gaussian(10).problem) == 0.0
    assert default_hjb_gradient(hopf_cole().problem) == 0.0
    assert LossConfig().hjb_gradient is None
    with pytest.raises(Exception, match="hjb_gradient"):
        NeuralSolverConfig.from_dict({"loss": {"hjb_gradient": -1.0}})
