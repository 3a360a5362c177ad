"""HJB's boundary layer in u's form on a box (``model.terminal_layer``): exact by construction."""
import math

import pytest
import torch

from mfgnet.neural.config import ModelConfig
from mfgnet.neural.networks import CORNER_STRENGTH_LAYER, MFGNetworks, fixed_terminal, terminal_layer
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
    assert MFGNetworks(problem, ModelConfig(), gen).terminal_layer  # the default: on where the corner is strong
    assert not MFGNetworks(problem, ModelConfig.from_dict({"terminal_layer": False}), gen).terminal_layer
    assert not MFGNetworks(ZOO["box_noisy_long_1d"](), ModelConfig(), gen).terminal_layer  # a weak corner


def test_the_corner_strength_follows_its_formula_and_picks_the_layer():
    from mfgnet.neural.networks import corner_strength, default_terminal_layer

    # box_wall_push_1d: G = 4 (x + 0.1)² rises into x = 1 with slope 8.8 (and falls into x = 0): 8.8² 0.25^1.5 √2
    assert math.isclose(corner_strength(ZOO["box_wall_push_1d"]()), 8.8**2 * 0.25**1.5 * math.sqrt(2), rel_tol=1e-12)
    # box_noisy_long_1d: G = 2 (x − 0.2)², slopes 0.8 into x = 0 and 3.2 into x = 1, ν = 0.2, T = 2
    assert math.isclose(corner_strength(ZOO["box_noisy_long_1d"]()), 3.2**2 * 0.2**1.5 * math.sqrt(2), rel_tol=1e-12)
    on = {name for name in ("box_bump_1d", "box_narrow_far_1d", "box_noisy_long_1d", "box_wall_push_1d",
                            "box_steep_rise_1d", "box_two_crowds_1d") if default_terminal_layer(ZOO[name]())}
    assert on == {"box_wall_push_1d", "box_steep_rise_1d"}
    for name in ("torus_bimodal_1d", "box_bump_2d", "ergodic_box_strong_1d", "lq_offset_1d"):
        assert not default_terminal_layer(ZOO[name]()), name


def test_the_default_layer_skips_the_weak_corners():
    # box_steep_rise_1d: G = 6 (x − 0.25)² rises into x = 1 with slope 9 (strength 8.9) and into x = 0 with slope 3
    # (strength 0.99): with min_strength 4 only the face x = 1 keeps its layer.
    problem = ZOO["box_steep_rise_1d"]()
    x = torch.linspace(0.0, 1.0, 41, dtype=torch.float64)[:, None]
    t = torch.full((41, 1), 0.5, dtype=torch.float64)
    every = terminal_layer(problem, t, x).detach()
    strong = terminal_layer(problem, t, x, 4.0).detach()
    near_zero, near_one = x[:, 0] < 0.3, x[:, 0] > 0.7
    assert float(every[0]) < -0.2 and float(strong[near_zero].abs().max()) < 1e-10
    # away from x = 0 the two differ only by the face-0 layer's tail (e^{-κ s x / ν}, below 1e-5 beyond 0.7)
    torch.testing.assert_close(strong[near_one], every[near_one], rtol=0, atol=1e-5)
    nets = MFGNetworks(problem, ModelConfig.from_dict({"width": 8, "depth": 2}), torch.Generator().manual_seed(0))
    assert nets.terminal_layer and nets.layer_min_strength == CORNER_STRENGTH_LAYER
