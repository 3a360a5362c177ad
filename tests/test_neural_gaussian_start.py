"""The Gaussian warm start on R^d (``warm_start="gaussian"``, mfgnet.neural.gaussian_start):
the least-squares projection of a particle cloud, the start alone on the off-centre LQ problem
against its exact solution, and the settings' validation."""

import math

import pytest
import torch

from mfgnet.evaluation import compare
from mfgnet.neural import NeuralSolverConfig, solve_neural
from mfgnet.neural.gaussian_start import carry_initial_shape, project_cloud
from mfgnet.neural.networks import MFGNetworks
from mfgnet.neural.trainer import Trainer
from mfgnet.problems import ProblemError
from mfgnet.problems.zoo import ZOO, exact_solution

SMALL = {"dtype": "float32", "log_every": 50, "n_eval": 256, "progress": False,
         "model": {"width": 32, "depth": 2},
         "sampler": {"n_interior": 256, "time_slices": 8, "n_conv": 128, "particles": 1024}}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_projection_recovers_a_polynomial_path_exactly():
    """A cloud whose per-time mean and log-std are polynomials of degree <= the base's in t/T (zero at
    t = 0) is projected onto exactly those coefficients, in 1D and 2D."""
    for name in ("lq_offset_1d", "lq_offset_2d"):
        problem = ZOO[name]()
        nets = MFGNetworks(problem, NeuralSolverConfig().model, torch.Generator().manual_seed(0)).double()
        d, degree = problem.dim, nets.base_motion.shape[0]
        coef = 0.4 * torch.randn(degree, 2, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        K = 64
        s = (torch.arange(K + 1, dtype=torch.float64) / K).unsqueeze(-1) ** torch.arange(1, degree + 1)
        motion = torch.einsum("kj,jcd->kcd", s, coef)
        z = torch.randn(500, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        z = (z - z.mean(0)) / z.std(0)  # sample mean 0 and std 1 exactly
        mean = nets.base_mean + nets.density_net.embed.scale * motion[:, 0]
        std = nets.base_std * torch.exp(motion[:, 1])
        cloud = mean.unsqueeze(1) + std.unsqueeze(1) * z
        torch.testing.assert_close(project_cloud(cloud, nets), coef, rtol=0, atol=1e-9)
        # and the networks' base follows: its moments at t are the cloud's
        with torch.no_grad():
            nets.base_motion.copy_(coef)
        t = torch.full((1, 1), 0.75 * problem.horizon, dtype=torch.float64)
        k = round(0.75 * K)
        got_mean, got_std = nets.base_moments(t)
        torch.testing.assert_close(got_mean[0], cloud[k].mean(0), rtol=0, atol=1e-9)
        torch.testing.assert_close(got_std[0], cloud[k].std(0), rtol=0, atol=1e-9)


@pytest.mark.parametrize("name, tolerance", [("r_two_crowds_1d", 0.05), ("lq_offset_1d", 1e-2)])
def test_shape_fit_restores_m0_at_t0(name, tolerance):
    """After the play m(0) would be m0's Gaussian fit; the shape fit carries m0 itself: a bimodal m0
    (r_two_crowds_1d) within 5 % in rel L2 with mass 1 within 2 % (measured 1.3 %, mass 1.006), a
    Gaussian m0 within 1 % (measured 1.8e-4: the target is ~0)."""
    problem = ZOO[name]()
    trainer = Trainer(problem, NeuralSolverConfig.from_dict({"progress": False}))
    carry_initial_shape(trainer)
    x = torch.linspace(-4.0, 4.0, 2001, dtype=torch.float64).unsqueeze(-1)
    with torch.no_grad():
        m = trainer.nets.density(torch.zeros(x.shape[0], 1), x.float()).double()
    m0 = problem.initial_density(x)
    assert float(torch.linalg.norm(m - m0) / torch.linalg.norm(m0)) < tolerance
    assert float(m.sum() * 8.0 / 2000) == pytest.approx(1.0, abs=0.02)


def test_gaussian_start_alone_finds_the_travelling_crowd():
    """lq_offset_1d (B2 off-centre: the crowd travels eight m0-widths, exact solution): 600 steps of
    the Gaussian start alone (no residual training) bring m within 20 % and u within 5 % (rel L2 at
    exact samples; 300 steps leave m 25 % off), where residual training from the usual start leaves
    the crowd behind (m 78 % off after 300 steps, a quarter of the start's wall time; 96 % before the
    gradient-enhanced HJB term became the default on R)."""
    problem, exact = ZOO["lq_offset_1d"](), exact_solution("lq_offset_1d")
    started = solve_neural(problem, dict(SMALL, steps=0, warm_start="gaussian", warm_start_steps=600))
    plain = solve_neural(problem, dict(SMALL, steps=300, warm_start="off"))
    info = started.diagnostics.extra["warm_start"]
    assert info["source"] == "gaussian" and info["stopped"] is None and info["fits"] == 30
    err, err_plain = compare(started, exact), compare(plain, exact)
    assert err["rel_l2_m"] < 0.2 and err["rel_l2_u"] < 0.05, err
    assert err_plain["rel_l2_m"] > 0.6, err_plain
    assert math.isfinite(started.diagnostics.residual)


def test_gaussian_start_settings():
    """'auto' picks it on time-dependent R and R² only; asking for it elsewhere names the field."""
    from mfgnet.benchmarks import log_congestion, lq_gaussian

    assert NeuralSolverConfig().warm_start == "auto"
    modes = {d: Trainer(lq_gaussian(d).problem, NeuralSolverConfig.from_dict(SMALL)).warm_start_mode()
             for d in (1, 2, 3)}
    assert modes == {1: "gaussian", 2: "gaussian", 3: "off"}
    ergodic = Trainer(log_congestion(1, ergodic=True).problem, NeuralSolverConfig.from_dict(SMALL))
    assert ergodic.warm_start_mode() == "off"
    forced = Trainer(lq_gaussian(3).problem, NeuralSolverConfig.from_dict(dict(SMALL, warm_start="gaussian")))
    assert forced.warm_start_mode() == "gaussian"  # allowed in any d when asked for
    with pytest.raises(ProblemError, match="warm_start='gaussian'"):
        solve_neural(ZOO["box_bump_1d"](), dict(SMALL, steps=0, warm_start="gaussian"))
    with pytest.raises(ProblemError, match="warm_start"):
        NeuralSolverConfig.from_dict({"warm_start": "gauss"})
    sol = solve_neural(ZOO["lq_offset_1d"](), dict(SMALL, steps=0, warm_start_steps=10))
    assert sol.diagnostics.extra["warm_start"]["source"] == "gaussian"
    # by default at most half the residual steps: none for steps=0 (the untrained networks stay so)
    assert solve_neural(ZOO["lq_offset_1d"](), dict(SMALL, steps=0)).diagnostics.extra["warm_start"] is None


def test_the_start_simulates_its_own_number_of_paths():
    """The start refreshes its particles every REFRESH_EVERY steps with START_PARTICLES paths (a quarter of
    the refresh cost of every 10 with 2048, most of the start's time); the residual training's cloud keeps
    ``sampler.particles``."""
    from mfgnet.neural.gaussian_start import REFRESH_EVERY, START_PARTICLES

    sampler_cfg = dict(SMALL["sampler"], particles=64)
    trainer = Trainer(ZOO["lq_offset_1d"](), NeuralSolverConfig.from_dict(
        dict(SMALL, sampler=sampler_cfg, steps=2, warm_start_steps=REFRESH_EVERY + 5)))
    sizes, refresh = [], trainer.sampler.refresh_cloud

    def counting_refresh(nets, particle_steps=None, particles=None):
        refresh(nets, particle_steps, particles)
        sizes.append(trainer.sampler.cloud.shape[1])

    trainer.sampler.refresh_cloud = counting_refresh
    trainer.run()
    assert trainer.warm_start_info["fits"] == 2
    assert sizes[:2] == [START_PARTICLES, START_PARTICLES] and sizes[2:] and set(sizes[2:]) == {64}
