"""The weak Fokker–Planck term (loss.weak_fp): zero on exact pairs, not on wrong ones."""

import math
from types import SimpleNamespace

import pytest
import torch

from mfgnet.neural.losses import weak_fp_term
from mfgnet.problems import Box, MFGProblem, Torus


def _midpoints(n: int, dim: int, slices: int) -> tuple[torch.Tensor, torch.Tensor]:
    axis = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    grid = torch.stack(torch.meshgrid(*[axis] * dim, indexing="ij"), -1).reshape(-1, dim)
    y = grid.expand(slices, *grid.shape).clone()
    return y, torch.full(y.shape[:2], -dim * math.log(n), dtype=torch.float64)


@pytest.mark.parametrize("dim, n", [(1, 512), (2, 96)])
def test_weak_fp_vanishes_on_a_stationary_pair_and_not_on_a_wrong_drift(dim, n):
    """u = c|x|²/2 (drift ∇u = c x) and m ∝ exp(−c|x|²/(2ν)) have zero flux ν∇m + m∇u everywhere in the
    no-flux box, so every weak residual vanishes (to the midpoint rule's O(h²)); with the drift doubled
    they do not."""
    nu, c, slices = 0.1, 2.0, 3
    problem = MFGProblem(Box([0.0] * dim, [1.0] * dim), horizon=1.0, viscosity=nu,
                         initial_density=lambda x: torch.ones(x.shape[0], dtype=x.dtype))
    y, logw = _midpoints(n, dim, slices)
    m = torch.exp(-c * (y ** 2).sum(-1) / (2 * nu))
    m = m / (m * logw.exp()).sum(-1, keepdim=True)
    batch = SimpleNamespace(quad_y=y, quad_logw=logw, quad_t=torch.rand(slices, dtype=torch.float64))
    zero_dt = torch.zeros_like(m)

    def term(gain):
        nets = SimpleNamespace(raw_value=lambda t, x: gain * c * (x ** 2).sum(-1) / 2)
        return float(weak_fp_term(problem, nets, batch, m, zero_dt, modes=6))

    exact, wrong = term(1.0), term(2.0)
    assert wrong > 1e-3 and exact < 1e-6 * wrong, (exact, wrong)


@pytest.mark.parametrize("domain, wave", [(Box([0.0], [1.0]), math.pi), (Torus(1), 2 * math.pi)])
def test_weak_fp_sees_the_time_derivative(domain, wave):
    """The heat flow m = 1 + a e^{−νω²t} cos(ωx), u = 0 (ω = π on the box, 2π on the circle): zero with its own
    ∂t log m, not with ∂t m = 0."""
    nu, a, n = 0.2, 0.5, 256
    problem = MFGProblem(domain, horizon=1.0, viscosity=nu,
                         initial_density=lambda x: torch.ones(x.shape[0], dtype=x.dtype))
    times = torch.tensor([0.1, 0.4, 0.9], dtype=torch.float64)
    y, logw = _midpoints(n, 1, 3)
    decay = a * torch.exp(-nu * wave ** 2 * times)[:, None]
    m = 1 + decay * torch.cos(wave * y[..., 0])
    dlog_m_dt = -nu * wave ** 2 * decay * torch.cos(wave * y[..., 0]) / m
    nets = SimpleNamespace(raw_value=lambda t, x: 0.0 * x.sum(-1))
    batch = SimpleNamespace(quad_y=y, quad_logw=logw, quad_t=times)
    exact = float(weak_fp_term(problem, nets, batch, m, dlog_m_dt, modes=8))
    frozen = float(weak_fp_term(problem, nets, batch, m, torch.zeros_like(m), modes=8))
    assert frozen > 1e-4 and exact < 1e-8 * frozen, (exact, frozen)


@pytest.mark.parametrize("domain, modes, count",
                         [(Torus(1), 3, 6), (Torus(2), 2, 24), (Box([0.0] * 2, [1.0] * 2), 2, 8)])
def test_test_functions_span_each_mode_once_and_their_derivatives_are_right(domain, modes, count):
    """Torus: cos and sin over half the lattice ((2K+1)^d − 1)/2 wave vectors; box: (K+1)^d − 1 cosines.
    ∇φ and Δφ against autograd."""
    from mfgnet.neural.losses import weak_test_functions

    problem = MFGProblem(domain, horizon=1.0, viscosity=0.1,
                         initial_density=lambda x: torch.ones(x.shape[0], dtype=x.dtype))
    y = torch.rand(7, domain.dim, dtype=torch.float64, requires_grad=True)
    phi, grad, lap, omega2 = weak_test_functions(problem, y, modes)
    assert phi.shape == (7, count) and grad.shape == (7, count, domain.dim) and omega2.shape == (count,)
    for j in range(count):
        (g,) = torch.autograd.grad(phi[:, j].sum(), y, create_graph=True)
        assert torch.allclose(g, grad[:, j], atol=1e-12)
        second = sum(torch.autograd.grad(g[:, i].sum(), y, retain_graph=True)[0][:, i] for i in range(domain.dim))
        assert torch.allclose(second, lap[:, j], atol=1e-9)
