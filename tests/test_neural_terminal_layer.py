"""HJB's boundary layer in u's form on a box (``model.terminal_layer``): exact by construction."""
import math

import pytest
import torch

from mfgnet.neural.config import ModelConfig
from mfgnet.neural.networks import MFGNetworks, fixed_terminal, terminal_layer
from mfgnet.neural.residuals import gradient
from mfgnet.problems import Box, MFGProblem, QuadraticHamiltonian
from mfgnet.problems.zoo import ZOO


def _normal_slopes(problem, t, x):
    """∂(G + layer)/∂x_i and G's own ∂G/∂x_i at the points of each face nearest x: {(axis, face): (u', G')}."""
    lower, upper = problem.domain.bounds()
    out = {}
    for i in range(problem.dim):
        for face in (float(lower[i]), float(upper[i])):
            on_face = x.clone()
            on_face[:, i] = face
            on_face.requires_grad_(True)
            g = fixed_terminal(problem, on_face)
            du = gradient(g + terminal_layer(problem, t, on_face), on_face)[:, i]
            dg = gradient(g, on_face)[:, i]
            out[(i, face)] = (du.detach(), dg.detach())
    return out


@pytest.mark.parametrize("name", ["box_wall_push_1d", "box_two_crowds_2d", "box_narrow_far_1d"])
def test_no_flux_where_g_rises_into_the_face_and_g_at_the_horizon(name):
    problem = ZOO[name]()
    gen = torch.Generator().manual_seed(0)
    lower, upper = problem.domain.bounds()
    x = lower + (upper - lower) * torch.rand(64, problem.dim, generator=gen, dtype=torch.float64)
    t = 0.999 * problem.horizon * torch.rand(64, 1, generator=gen, dtype=torch.float64)
    slopes = _normal_slopes(problem, t, x)
    for (i, face), (du, dg) in slopes.items():
        outward = dg if face == float(upper[i]) else -dg
        rises = outward > 0
        torch.testing.assert_close(du[rises], torch.zeros_like(du[rises]), rtol=0, atol=1e-9)
        torch.testing.assert_close(du[~rises], dg[~rises], rtol=0, atol=1e-9)  # no layer where G falls
    at_horizon = torch.full((64, 1), problem.horizon, dtype=torch.float64)
    assert torch.equal(terminal_layer(problem, at_horizon, x), torch.zeros(64, dtype=torch.float64))
    # wall_push has one face of each kind, so both branches above were exercised
    if name == "box_wall_push_1d":
        assert slopes[(0, 0.0)][1].abs().min() > 0.5 and slopes[(0, 1.0)][0].abs().max() < 1e-9


@pytest.mark.parametrize("kappa", [1.0, 2.5])
def test_the_steady_layer_solves_hjb_across_the_face(kappa):
    """Long before T, G = s x with H = (κ/2)|p|²: u = G + layer has -ν u'' + (κ/2) u'² = (κ/2) s² (HJB's steady
    state with the far field's slope s) and u'(1) = 0."""
    nu, s = 0.05, 3.0
    problem = MFGProblem(Box([0.0], [1.0]), horizon=50.0, viscosity=nu, hamiltonian=QuadraticHamiltonian(kappa),
                         coupling=lambda t, x, m: m, terminal_cost=lambda x, m: s * x[:, 0],
                         initial_density=lambda x: torch.ones(x.shape[0], dtype=x.dtype))
    x = torch.linspace(0.6, 1.0, 41, dtype=torch.float64).unsqueeze(-1).requires_grad_(True)
    t = torch.zeros(41, 1, dtype=torch.float64)  # κ s² τ / ν = 9000 κ: the steady form
    u = fixed_terminal(problem, x) + terminal_layer(problem, t, x)
    du = gradient(u, x)[:, 0]
    d2u = gradient(du, x)[:, 0]
    residual = (-nu * d2u + 0.5 * kappa * du ** 2 - 0.5 * kappa * s ** 2).detach()
    du, u = du.detach(), u.detach()
    assert residual.abs().max() < 1e-10
    assert abs(float(du[-1])) < 1e-12
    assert abs(float(du[0]) - s) < 1e-6  # the far field keeps G's slope (e^{-κ s 0.4 / ν})
    # the layer's depth at the face: (2ν/κ) log 2
    assert math.isclose(float(u[-1] - s), -2 * nu / kappa * math.log(2), rel_tol=1e-12)


def test_the_networks_keep_u_at_the_horizon_and_the_option_stays_off_elsewhere():
    gen = torch.Generator().manual_seed(1)
    problem = ZOO["box_wall_push_1d"]()
    nets = MFGNetworks(problem, ModelConfig.from_dict({"terminal_layer": True, "width": 8, "depth": 2}), gen).double()
    assert nets.terminal_layer
    x = torch.rand(32, 1, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        u_T = nets.raw_value(torch.full((32, 1), problem.horizon, dtype=torch.float64), x)
    torch.testing.assert_close(u_T, fixed_terminal(problem, x), rtol=0, atol=1e-14)
    torus = MFGNetworks(ZOO["torus_bimodal_1d"](), ModelConfig.from_dict({"terminal_layer": True}), gen)
    assert not torus.terminal_layer  # boxes only
    assert not MFGNetworks(problem, ModelConfig(), gen).terminal_layer  # off by default
