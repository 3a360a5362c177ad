"""Forward jets (mfgnet.neural.jets): value, derivatives and Laplacian in one pass equal nested
autograd's to round-off, for every input embedding, activation and the quadratic skip; and the
ergodic residuals that use them equal the autograd residuals."""

from __future__ import annotations

import pytest
import torch

from mfgnet.benchmarks import ergodic_torus, log_congestion
from mfgnet.neural.config import ModelConfig
from mfgnet.neural.jets import field_jet, network_jets, supports_jets
from mfgnet.neural.networks import FieldNet, MFGNetworks
from mfgnet.neural.residuals import divergence, mfg_residuals
from mfgnet.problems.zoo import ZOO


def _autograd(net, t, x, time_dependent):
    x = x.clone().requires_grad_(True)
    t = t.clone().requires_grad_(True)
    v = net(t, x)
    inputs = [t, x] if time_dependent else [x]
    grads = torch.autograd.grad(v.sum(), inputs, create_graph=True)
    lap = divergence(grads[-1], x)
    dirs = torch.cat([grads[0], grads[1]], -1) if time_dependent else grads[0]
    return v, dirs, lap


def _randomise(module, gen):
    with torch.no_grad():  # nonzero quadratic coefficients and biases, so every term is exercised
        for p in module.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


CASES = [("box_bump_2d", "tanh", [0.1]), ("box_narrow_far_1d", "sin", [0.03, 0.3]),
         ("torus_bimodal_1d", "softplus", []), ("ergodic_torus_2d", "silu", [0.1]), ("lq_offset_2d", "tanh", [0.1]),
         ("ergodic_box_strong_1d", "tanh", [0.1])]


@pytest.mark.parametrize("name,activation,time_scales", CASES)
def test_field_jet_equals_nested_autograd(name, activation, time_scales):
    problem = ZOO[name]()
    gen = torch.Generator().manual_seed(0)
    cfg = ModelConfig.from_dict({"activation": activation, "periodic_harmonics": 2, "width": 12, "depth": 2,
                                 "time_scales": time_scales})
    net = FieldNet(problem, cfg, gen).double()
    _randomise(net, gen)
    assert supports_jets(net)
    n, d = 50, problem.dim
    lower, upper = problem.bounding_box().bounds()
    x = lower + (upper - lower) * torch.rand(n, d, generator=gen, dtype=torch.float64)
    time_dependent = not problem.is_ergodic
    t = (problem.horizon or 1.0) * torch.rand(n, 1, generator=gen, dtype=torch.float64)
    v, dirs, lap = field_jet(net, t if time_dependent else None, x)
    v_ref, dirs_ref, lap_ref = _autograd(net, t, x, time_dependent)
    torch.testing.assert_close(v, v_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dirs, dirs_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(lap, lap_ref, rtol=1e-10, atol=1e-10)


def test_gelu_and_the_residual_mlp_fall_back_to_autograd():
    problem = ZOO["ergodic_torus_2d"]()
    gen = torch.Generator().manual_seed(0)
    assert not supports_jets(FieldNet(problem, ModelConfig.from_dict({"activation": "gelu"}), gen))
    assert not supports_jets(FieldNet(problem, ModelConfig.from_dict({"kind": "resmlp"}), gen))
    nets = MFGNetworks(problem, ModelConfig.from_dict({"kind": "resmlp"}), gen)
    assert network_jets(nets, "forward") is None
    assert network_jets(MFGNetworks(ZOO["box_bump_1d"](), ModelConfig(), gen)) is None  # 1D time-dependent: opt-in


@pytest.mark.parametrize("make", [lambda: ergodic_torus(2).problem, lambda: log_congestion(3, ergodic=True).problem,
                                  lambda: ZOO["ergodic_box_strong_1d"]()])
def test_ergodic_residuals_with_jets_equal_the_autograd_residuals(make):
    problem = make()
    gen = torch.Generator().manual_seed(1)
    nets = MFGNetworks(problem, ModelConfig.from_dict({"width": 16, "depth": 2}), gen).double()
    _randomise(nets, gen)
    jets = network_jets(nets)
    assert jets is not None
    lower, upper = problem.bounding_box().bounds()
    x = lower + (upper - lower) * torch.rand(40, problem.dim, generator=gen, dtype=torch.float64)
    t = torch.zeros(40, 1, dtype=torch.float64)
    common = {"log_mass": nets.log_mass, "ergodic_constant": torch.tensor(0.3, dtype=torch.float64)}
    plain = mfg_residuals(problem, nets.raw_value, nets.density_field, t, x, **common)
    jetted = mfg_residuals(problem, nets.raw_value, nets.density_field, t, x, jets=jets, **common)
    for name in ("hjb", "fp", "u", "m", "grad_u"):
        torch.testing.assert_close(getattr(jetted, name), getattr(plain, name), rtol=1e-10, atol=1e-10)
    # and the loss's gradients with respect to the parameters agree too
    params = list(nets.parameters())
    g_plain = torch.autograd.grad((plain.hjb ** 2).mean() + (plain.fp ** 2).mean(), params, allow_unused=True)
    g_jet = torch.autograd.grad((jetted.hjb ** 2).mean() + (jetted.fp ** 2).mean(), params, allow_unused=True)
    for a, b in zip(g_plain, g_jet):
        if a is None:
            assert b is None or torch.count_nonzero(b) == 0
        else:
            torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-10)


TIME_CASES = [("box_bump_2d", "auto", True, False), ("torus_bimodal_1d", "auto", True, False),
              ("readme_box_1d", "log", True, False), ("box_narrow_far_1d", "off", True, False),
              ("box_wall_push_1d", "auto", True, False),
              ("box_wall_push_1d", "auto", True, True), ("box_two_crowds_2d", "auto", True, True),  # the face layer
              ("log_congestion_2d", "auto", True, False), ("r_two_crowds_1d", "auto", True, False),  # R^d: moving base
              ("r_two_crowds_1d", "auto", False, False),  # the Gaussian start: the base alone
              ("lq_offset_2d", "auto", True, False)]  # u(T) = G(x, m̄(T)) with the crowd's mean (B2)
EXTRA = {"log_congestion_2d": lambda: log_congestion(2).problem}  # B5 on R², local coupling


@pytest.mark.parametrize("name,hard_initial,density_net,layer", TIME_CASES)
def test_time_dependent_residuals_with_jets_equal_the_autograd_residuals(name, hard_initial, density_net, layer):
    problem = EXTRA[name]() if name in EXTRA else ZOO[name]()
    gen = torch.Generator().manual_seed(2)
    cfg = {"width": 16, "depth": 2, "hard_initial": hard_initial, "moving_base": True, "terminal_layer": layer}
    nets = MFGNetworks(problem, ModelConfig.from_dict(cfg), gen).double()
    _randomise(nets, gen)  # (moving_base makes the base's motion a parameter, so it is randomised too)
    assert nets.terminal_layer == layer
    nets.density_net_enabled = density_net
    assert network_jets(nets, "autograd") is None
    # "auto" (the default) takes the jets on time-dependent 2D boxes and tori only
    assert (network_jets(nets, "auto") is not None) == (problem.dim == 2 and problem.domain.bounded)
    jets = network_jets(nets, "forward")
    assert jets is not None
    n = 40
    lower, upper = problem.bounding_box().bounds()
    x = lower + (upper - lower) * torch.rand(n, problem.dim, generator=gen, dtype=torch.float64)
    t = problem.horizon * torch.rand(n, 1, generator=gen, dtype=torch.float64)
    t[0] = 0.0  # the blend's log(1 - e^{-t/τ}) is -inf there
    t[1] = 1e-4 * problem.horizon
    common = {"log_mass": 0.1 * torch.randn(n, generator=gen, dtype=torch.float64),
              "dlog_mass_dt": torch.randn(n, generator=gen, dtype=torch.float64)}
    if not problem.coupling.is_local:  # ∫K m at each point, data of the residual (B2: the crowd's mean)
        common["conv"] = problem.coupling.kernel(x, x[:8]).mean(1)
    for relative in (True, False):
        plain = mfg_residuals(problem, nets.raw_value, nets.density_field, t, x, fp_relative=relative, **common)
        jetted = mfg_residuals(problem, nets.raw_value, nets.density_field, t, x, fp_relative=relative, jets=jets,
                               **common)
        # At t = 0 exactly nested autograd gives NaN in the blend's FP (∂t of log(1 - e^{-t/τ}) is
        # infinite there, times a zero weight); the jet gives the finite limit.  Compared where both are finite.
        assert torch.isfinite(jetted.fp).all() and torch.isfinite(jetted.hjb).all()
        ok = torch.isfinite(plain.fp)
        assert ok[1:].all()
        for field in ("hjb", "fp", "u", "m", "grad_u"):
            torch.testing.assert_close(getattr(jetted, field)[ok], getattr(plain, field)[ok], rtol=1e-9, atol=1e-9)
        # the loss's parameter gradients, away from t = 0 (where autograd's NaN would reach every one)
        rest = {k: v[1:] for k, v in common.items()}
        plain = mfg_residuals(problem, nets.raw_value, nets.density_field, t[1:], x[1:], fp_relative=relative, **rest)
        jetted = mfg_residuals(problem, nets.raw_value, nets.density_field, t[1:], x[1:], fp_relative=relative,
                               jets=jets, **rest)
        params = list(nets.parameters())
        loss_plain = (plain.hjb ** 2).mean() + (plain.fp ** 2).mean()
        loss_jet = (jetted.hjb ** 2).mean() + (jetted.fp ** 2).mean()
        assert torch.isfinite(loss_jet)
        g_plain = torch.autograd.grad(loss_plain, params, allow_unused=True)
        g_jet = torch.autograd.grad(loss_jet, params, allow_unused=True)
        for a, b in zip(g_plain, g_jet):
            if a is None:
                assert b is None or torch.count_nonzero(b) == 0
            else:
                assert torch.isfinite(b).all()
                torch.testing.assert_close(b, a, rtol=1e-8, atol=1e-9)


def test_the_heat_form_and_non_quadratic_hamiltonians_fall_back():
    gen = torch.Generator().manual_seed(0)
    heat = MFGNetworks(ZOO["torus_bimodal_1d"](), ModelConfig.from_dict({"hard_initial": "heat"}), gen)
    assert network_jets(heat, "forward") is None
    resmlp = MFGNetworks(ZOO["box_bump_1d"](), ModelConfig.from_dict({"kind": "resmlp"}), gen)
    assert network_jets(resmlp, "forward") is None


def test_fixed_parts_that_autograd_cannot_follow_have_zero_derivatives():
    from mfgnet.neural.jets import _fixed_jet

    x = torch.rand(5, 2, dtype=torch.float64)
    v, g, lap = _fixed_jet(lambda y: torch.full((y.shape[0],), 3.0, dtype=y.dtype), x)  # constant
    assert torch.equal(v, torch.full((5,), 3.0, dtype=torch.float64)) and not g.any() and not lap.any()
    v, g, lap = _fixed_jet(lambda y: 2 * y[:, 0] - y[:, 1], x)  # linear: a gradient, no curvature
    assert torch.equal(g, torch.tensor([[2.0, -1.0]] * 5, dtype=torch.float64)) and not lap.any()
    v, g, lap = _fixed_jet(lambda y: (y ** 2).sum(-1), x)
    torch.testing.assert_close(g, 2 * x)
    torch.testing.assert_close(lap, torch.full((5,), 4.0, dtype=torch.float64))


def test_compiled_jets_equal_the_plain_jets_and_their_gradients():
    """loss.compile_jets: torch.compile of field_jet gives the plain jets' values, derivatives, Laplacian and
    parameter gradients (float64, to round-off); skipped where this machine cannot compile (the solver then
    falls back to the plain jets with a warning)."""
    from mfgnet.neural import jets

    problem = ZOO["box_bump_2d"]()
    gen = torch.Generator().manual_seed(0)
    net = FieldNet(problem, ModelConfig.from_dict({"width": 12, "depth": 2}), gen).double()
    _randomise(net, gen)
    x = torch.rand(40, 2, generator=gen, dtype=torch.float64)
    t = torch.rand(40, 1, generator=gen, dtype=torch.float64)
    compiled = jets.compiled_field_jet()(net, t, x)
    if jets.compile_failed():
        pytest.skip("torch.compile is not available on this machine")
    plain = field_jet(net, t, x)
    for got, want in zip(compiled, plain):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    grads = [torch.autograd.grad(sum(part.square().sum() for part in out), list(net.parameters()))
             for out in (jets.compiled_field_jet()(net, t, x), field_jet(net, t, x))]
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)
