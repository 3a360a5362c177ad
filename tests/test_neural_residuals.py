"""Residual code of the neural solver: Hutchinson is unbiased, mfg_residuals vanishes on exact solutions."""

import math

import pytest
import torch

from mfgnet.benchmarks import ergodic_torus, hopf_cole, lq_gaussian
from mfgnet.neural.residuals import divergence, mfg_residuals, pde_residuals, rademacher

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _field(x):
    """A vector field with a full Jacobian: f_i = Σ_j A_ij sin(x_j) + x_i² x_{i+1}."""
    d = x.shape[1]
    A = torch.arange(1.0, d * d + 1, dtype=x.dtype).reshape(d, d) / d
    return torch.sin(x) @ A.T + x**2 * torch.roll(x, -1, dims=1)


def _exact_div(x):
    d = x.shape[1]
    A = torch.arange(1.0, d * d + 1, dtype=x.dtype).reshape(d, d) / d
    return (torch.cos(x) * torch.diagonal(A)).sum(-1) + (2 * x * torch.roll(x, -1, dims=1)).sum(-1)


@pytest.mark.parametrize("probes_per_point", [1, 3])
def test_hutchinson_divergence_is_unbiased(probes_per_point):
    """Mean of the estimator over many probes -> exact divergence (the 1/k is not forgotten)."""
    d, reps = 5, 4000
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(2, d, generator=gen, dtype=torch.float64)
    x = x0.repeat_interleave(reps, 0).requires_grad_(True)  # each row draws its own probes
    f = _field(x)
    exact = divergence(f, x)  # exact: one backward per dimension
    torch.testing.assert_close(exact.detach(), _exact_div(x).detach(), atol=1e-12, rtol=0)
    v = rademacher(probes_per_point, x.shape[0], d, x, gen)
    est = divergence(f, x, v).detach().reshape(2, reps)
    spread = est.std(1) / math.sqrt(reps)
    err = (est.mean(1) - _exact_div(x0))
    assert (err.abs() < 4 * spread).all(), (err, spread)
    # A wrong normalisation (sum instead of mean over probes) would be off by (k-1)·exact.
    if probes_per_point > 1:
        assert ((probes_per_point - 1) * _exact_div(x0).abs() > 20 * spread).all()
    # The estimator's variance falls like 1/k (here checked against one probe per point).
    if probes_per_point == 3:
        single = divergence(f, x, rademacher(1, x.shape[0], d, x, gen)).detach().reshape(2, reps)
        assert (est.var(1) < 0.6 * single.var(1)).all()


def test_hutchinson_laplacian_of_known_function_is_unbiased():
    d, reps = 4, 6000
    gen = torch.Generator().manual_seed(1)
    x0 = torch.rand(1, d, generator=gen, dtype=torch.float64)
    x = x0.repeat(reps, 1).requires_grad_(True)
    # u = exp(x1 x2) + sin(x3 + x4): Δu = (x1² + x2²) e^{x1 x2} - 2 sin(x3 + x4); non-diagonal Hessian.
    u = torch.exp(x[:, 0] * x[:, 1]) + torch.sin(x[:, 2] + x[:, 3])
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    est = divergence(g, x, rademacher(2, reps, d, x, gen)).detach()
    a, b, c, e = x0[0]
    exact = (a**2 + b**2) * torch.exp(a * b) - 2 * torch.sin(c + e)
    assert abs(float(est.mean() - exact)) < 4 * float(est.std()) / math.sqrt(reps)
    assert float(est.std()) > 0.05  # the Hessian is not diagonal: the estimate is really random


def _points(problem, n=200, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = problem.bounding_box().sample(n, gen)
    if problem.is_ergodic:
        return torch.zeros(n, 1, dtype=torch.float64), x
    return torch.rand(n, 1, generator=gen, dtype=torch.float64) * problem.horizon, x


CASES = {"B1 1d": lambda: ergodic_torus(1), "B1 2d": lambda: ergodic_torus(2, sigma=0.8),
         "B3": lambda: hopf_cole(), "B2 2d": lambda: lq_gaussian(2)}


@pytest.mark.parametrize("output", ["exp", "softplus"])
@pytest.mark.parametrize("name", list(CASES))
def test_mfg_residuals_vanish_on_exact_solutions(name, output):
    problem, exact = CASES[name]()
    t, x = _points(problem)
    if output == "exp":
        def field(t, x):
            return torch.log(exact._density(t, x))
    else:
        def field(t, x):  # inverse softplus of m
            m = exact._density(t, x)
            return m + torch.log(-torch.expm1(-m))
    conv = None if problem.coupling.is_local else exact.coefficients.mean(t[:, 0])
    for relative in (True, False):
        res = mfg_residuals(problem, exact._value, field, t, x, density_output=output,
                            ergodic_constant=None if exact.ergodic_constant is None
                            else torch.tensor(exact.ergodic_constant, dtype=torch.float64),
                            conv=conv, fp_relative=relative)
        assert float(res.hjb.detach().abs().max()) < 1e-8
        assert float(res.fp.detach().abs().max()) < 1e-8
        torch.testing.assert_close(res.m.detach(), exact._density(t, x), rtol=1e-10, atol=1e-12)


def test_projected_lambda_recovers_the_ergodic_constant():
    problem, exact = ergodic_torus(1)
    t, x = _points(problem)
    res = mfg_residuals(problem, exact._value, lambda t, x: torch.log(exact._density(t, x)), t, x)
    assert abs(float(res.ergodic_constant) - exact.ergodic_constant) < 1e-10


def test_mfg_residuals_agree_with_pde_residuals_on_a_wrong_pair():
    """Same equations as the reference implementation, also away from the solution."""
    problem, exact = hopf_cole()
    t, x = _points(problem, n=64)

    def u(t, x):
        return exact._value(t, x) + 0.1 * torch.sin(2 * math.pi * x[:, 0]) * t[:, 0] ** 2

    def m(t, x):
        return exact._density(t, x) * (1 + 0.2 * torch.cos(2 * math.pi * x[:, 0] + t[:, 0]))

    hjb_ref, fp_ref = pde_residuals(problem, u, m, t, x)
    res = mfg_residuals(problem, u, lambda t, x: torch.log(m(t, x)), t, x, fp_relative=False)
    torch.testing.assert_close(res.hjb.detach(), hjb_ref.detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(res.fp.detach(), fp_ref.detach(), rtol=1e-10, atol=1e-10)
    assert float(hjb_ref.detach().abs().max()) > 1e-2


def test_hutchinson_residuals_exact_for_diagonal_hessians_in_10d():
    """B2 in d = 10: u and log m have diagonal Hessians, so Rademacher probes are exact."""
    problem, exact = lq_gaussian(10)
    gen = torch.Generator().manual_seed(3)
    x = problem.sample_initial(128, gen)
    t = torch.rand(128, 1, generator=gen, dtype=torch.float64) * problem.horizon
    probes = rademacher(2, 128, 10, x, gen)
    res = mfg_residuals(problem, exact._value, lambda t, x: torch.log(exact._density(t, x)), t, x,
                        conv=exact.coefficients.mean(t[:, 0]), probes=probes)
    assert float(res.hjb.detach().abs().max()) < 1e-8
    assert float(res.fp.detach().abs().max()) < 1e-8


def test_causal_weights_follow_each_equation_in_its_own_direction():
    """FP slice i weighs exp(-ε Σ_{k<i} L_fp,k) (forward), HJB slice i exp(-ε Σ_{k>i} L_hjb,k) (backward)."""
    from mfgnet.neural.losses import causal_terms

    slices, eps = 3, 0.5
    slice_id = torch.tensor([0, 0, 1, 1, 2, 2])
    hjb = torch.tensor([1.0, 1.0, 2.0, 2.0, 3.0, 3.0], dtype=torch.float64)
    fp = torch.tensor([0.0, 2.0, 1.0, 1.0, 1.0, 3.0], dtype=torch.float64)
    l_hjb = torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64)  # per-slice mean squares
    l_fp = torch.tensor([2.0, 1.0, 5.0], dtype=torch.float64)
    w_fp = torch.exp(-eps * torch.tensor([0.0, 2.0, 3.0], dtype=torch.float64))
    w_hjb = torch.exp(-eps * torch.tensor([13.0, 9.0, 0.0], dtype=torch.float64))
    got_hjb, got_fp = causal_terms(hjb, fp, slice_id, slices, eps)
    assert math.isclose(float(got_fp), float((w_fp * l_fp).mean()), rel_tol=1e-14)
    assert math.isclose(float(got_hjb), float((w_hjb * l_hjb).mean()), rel_tol=1e-14)
    # Unequal slices: each point keeps its slice's weight, so ε -> 0 is the plain mean square.
    uneven = torch.tensor([0, 0, 0, 0, 1, 2])
    got_hjb, got_fp = causal_terms(hjb, fp, uneven, slices, 1e-12)
    assert math.isclose(float(got_fp), float((fp ** 2).mean()), rel_tol=1e-10)
    assert math.isclose(float(got_hjb), float((hjb ** 2).mean()), rel_tol=1e-10)
