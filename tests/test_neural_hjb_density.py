"""`loss.hjb_density`: the HJB term's weight in the density network's gradient, apart from the value
network's, without changing any value (mfgnet.neural.residuals, coupling_grad_scale)."""

from __future__ import annotations

import pytest
import torch

from mfgnet.neural import solve_neural
from mfgnet.neural.config import LossConfig, ModelConfig
from mfgnet.neural.losses import hjb_density_scale
from mfgnet.neural.networks import MFGNetworks
from mfgnet.neural.residuals import mfg_residuals
from mfgnet.problems.zoo import ZOO


def _grads(loss, params):
    return [torch.zeros_like(p) if g is None else g for p, g in
            zip(params, torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))]


@pytest.mark.parametrize("name", ["box_two_crowds_1d", "box_bump_2d"])
def test_density_network_sees_the_hjb_term_at_its_own_weight(name):
    problem = ZOO[name]()
    gen = torch.Generator().manual_seed(3)
    nets = MFGNetworks(problem, ModelConfig.from_dict({"width": 16, "depth": 2}), gen).double()
    n = 64
    lower, upper = problem.bounding_box().bounds()
    x = lower + (upper - lower) * torch.rand(n, problem.dim, generator=gen, dtype=torch.float64)
    t = problem.horizon * (0.01 + 0.99 * torch.rand(n, 1, generator=gen, dtype=torch.float64))
    plain = mfg_residuals(problem, nets.raw_value, nets.density_field, t, x, fp_relative=False)
    scaled = mfg_residuals(problem, nets.raw_value, nets.density_field, t, x, fp_relative=False,
                           coupling_grad_scale=0.1)
    for field in ("hjb", "fp", "u", "m"):  # the values do not move
        torch.testing.assert_close(getattr(scaled, field), getattr(plain, field), rtol=0, atol=0)
    hjb_p, fp_p = (plain.hjb ** 2).mean(), (plain.fp ** 2).mean()
    hjb_s, fp_s = (scaled.hjb ** 2).mean(), (scaled.fp ** 2).mean()
    value, density = nets.value_parameters(), nets.density_parameters()
    # Weight 10 with the density network's share scaled by 0.1: u as under weight 10, m as under weight 1.
    for got, want in zip(_grads(10 * hjb_s + fp_s, value), _grads(10 * hjb_p + fp_p, value)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    for got, want in zip(_grads(10 * hjb_s + fp_s, density), _grads(hjb_p + fp_p, density)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert any(torch.count_nonzero(g) for g in _grads(hjb_p, density))  # the coupling does reach m


def test_the_scale_follows_the_weights():
    assert hjb_density_scale(LossConfig(hjb=10.0)) == 1.0
    assert hjb_density_scale(LossConfig(hjb=10.0, hjb_density=1.0)) == pytest.approx(0.1)
    assert hjb_density_scale(LossConfig(hjb=0.0, hjb_density=1.0)) == 1.0  # no HJB term: nothing to scale


def test_a_short_run_with_the_option_matches_the_same_run_without_it_when_the_weights_agree():
    """hjb_density equal to hjb is the plain joint loss: the same run to the last digit."""
    problem = ZOO["box_bump_1d"]()
    base = {"steps": 30, "progress": False, "model": {"width": 16, "depth": 2}, "loss": {"hjb": 4.0}}
    a = solve_neural(problem, base)
    b = solve_neural(problem, {**base, "loss": {"hjb": 4.0, "hjb_density": 4.0}})
    c = solve_neural(problem, {**base, "loss": {"hjb": 4.0, "hjb_density": 1.0}})
    xs = torch.linspace(0.05, 0.95, 11, dtype=torch.float64).unsqueeze(-1)
    with torch.no_grad():
        ma, mb, mc = (s.density(0.5, xs) for s in (a, b, c))
    assert torch.equal(ma, mb)
    assert not torch.equal(ma, mc)
