"""The collocation sampler's placement rules, checked on fields with known answers."""

import math

import torch

from mfgnet.neural.config import SamplerConfig
from mfgnet.neural.sampling import CollocationSampler
from mfgnet.problems import Box, MFGProblem


class _BumpField:
    """Stands in for MFGNetworks: an unnormalised log-density with a narrow bump at 0.3 + 0.4 t
    (width 0.05), renormalised like the networks on a box."""

    renormalise = True

    def density_field(self, t, x):
        return -((x[:, 0] - 0.3 - 0.4 * t[:, 0]) ** 2) / (2 * 0.05**2)

    def density(self, t, x, log_mass=None):  # only the unnormalised field may be used
        raise AssertionError("the density sampler must not renormalise per candidate time")


def test_density_points_follow_m_at_the_slice_times():
    problem = MFGProblem(Box([0.0], [1.0]), horizon=1.0, viscosity=0.1, coupling=lambda t, x, m: m,
                         initial_density=lambda x: torch.ones(x.shape[0], dtype=x.dtype))
    cfg = SamplerConfig(kind="density", n_interior=4000, time_slices=8)
    sampler = CollocationSampler(problem, cfg, torch.float64, torch.device("cpu"),
                                 torch.Generator().manual_seed(0), need_quadrature=False)
    slice_t = sampler.slice_times(8)
    t, x = sampler._density_points(_BumpField(), slice_t, 4000)
    assert set(t[:, 0].tolist()) <= set(slice_t.tolist())  # candidates live on the step's slices
    offset = x[:, 0] - 0.3 - 0.4 * t[:, 0]
    # Resampled ∝ m from uniform candidates: the offsets are N(0, 0.05²) up to sampling noise.
    assert abs(float(offset.mean())) < 5e-3
    assert math.isclose(float(offset.std()), 0.05, rel_tol=0.1)


def test_every_slice_keeps_its_share_of_uniform_points():
    """The density points replace the same share of every time slice, not whole early slices: with a
    narrow crowd, the HJB residual far from it is still sampled at every time (the points come slice by
    slice, and replacing the first half of them had left t < T/2 with density points only)."""
    problem = MFGProblem(Box([0.0], [1.0]), horizon=1.0, viscosity=0.1, coupling=lambda t, x, m: m,
                         initial_density=lambda x: torch.ones(x.shape[0], dtype=x.dtype))
    slices, n = 16, 512
    cfg = SamplerConfig(kind="density", n_interior=n, time_slices=slices, adaptive_fraction=0.5)
    sampler = CollocationSampler(problem, cfg, torch.float64, torch.device("cpu"),
                                 torch.Generator().manual_seed(0), need_quadrature=False)
    batch = sampler.draw(_BumpField(), step=0)
    t, x, slice_id = batch.t[:, 0], batch.x[:, 0], batch.slice_id
    far = (x - 0.3 - 0.4 * t).abs() > 0.25  # 5 widths from the bump: density points never land there
    per_slice = torch.bincount(slice_id[far], minlength=slices)
    # 16 uniform points per slice, about half of them that far from the bump: at least 2 in every
    # slice (a binomial tail below 1e-3 per slice for the fixed seed's draw); density points only: none.
    assert int(per_slice.min()) >= 2, per_slice.tolist()
    assert int(torch.bincount(slice_id, minlength=slices).min()) >= n // slices // 2


class _GaussianField:
    """An unnormalised log-density of N(mu, s²) per coordinate, mass e^{log_mass} (ergodic R^d)."""

    def __init__(self, mu, s, log_mass):
        self.mu, self.s, self.log_mass = mu, s, log_mass

    def density_field(self, t, x):
        z = (x - self.mu) / self.s
        d = x.shape[1]
        return self.log_mass - 0.5 * (z * z).sum(-1) - d * math.log(self.s * math.sqrt(2 * math.pi))


def test_ergodic_proposal_on_rd_fits_m_and_integrates_it():
    """Ergodic R^d: the proposal refits from the guess N(0, I) to m = N(0.7, 0.4²) in d = 5 and its
    importance weights integrate m (mass e^{0.3}) to sampling accuracy."""
    from mfgnet.problems import Euclidean

    d = 5
    problem = MFGProblem(Euclidean(d), horizon=None, viscosity=0.1,
                         initial_sampler=lambda n, g=None: torch.randn(n, d, generator=g, dtype=torch.float64))
    cfg = SamplerConfig(particles=20000)
    sampler = CollocationSampler(problem, cfg, torch.float64, torch.device("cpu"),
                                 torch.Generator().manual_seed(0), need_quadrature=True)
    field = _GaussianField(0.7, 0.4, 0.3)
    for _ in range(3):  # the first fit from N(0, 1.5²) has a small effective sample; refits sharpen it
        sampler.refresh_proposal(field)
    mean, std = sampler.proposal
    assert torch.allclose(mean, torch.full((d,), 0.7, dtype=torch.float64), atol=0.02)
    assert torch.allclose(std, torch.full((d,), 0.4, dtype=torch.float64), rtol=0.05)
    y, logw = sampler.quadrature(20000)
    log_mass = torch.logsumexp(field.density_field(None, y) + logw, 0)
    assert abs(float(log_mass) - 0.3) < 0.02
    batch = sampler.draw(field, step=1)
    assert batch.self_normalised and batch.x.shape == (sampler.cfg.n_interior, d)


def test_mass_grid_follows_the_initial_crowds_scale():
    """sampler.n_mass = 0: the coarsest per-axis count whose midpoint grid integrates m0 to 1e-3 —
    12² on box_bump_2d (a bump of width 0.1 in the unit square), 64 in 1D; on lq_offset_2d (R², a
    local-or-mean coupling) over the region around m0's samples, where 12² do (the bounding box,
    ~15 m0-widths per axis, needed 24²)."""
    from mfgnet.neural.sampling import (
        MASS_GRID_PER_AXIS,
        MASS_GRID_TOLERANCE,
        follows_cloud,
        initial_cloud_region,
        mass_grid_points,
    )
    from mfgnet.problems.zoo import ZOO

    assert mass_grid_points(ZOO["box_bump_1d"]()) == 64
    for name, per_axis in (("box_bump_2d", 12), ("lq_offset_2d", 12)):
        problem = ZOO[name]()
        assert mass_grid_points(problem) == per_axis ** 2
        lower, upper = initial_cloud_region(problem) if follows_cloud(problem) else problem.bounding_box().bounds()
        counts = [MASS_GRID_PER_AXIS[2][max(0, MASS_GRID_PER_AXIS[2].index(per_axis) - 1)], per_axis]
        errors = []
        for n in counts:
            cells = torch.stack(torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij"), -1).reshape(-1, 2)
            y = lower + (upper - lower) * (cells.double() + 0.5) / n
            errors.append(abs(float(problem.initial_density(y).sum()) * float(torch.prod(upper - lower)) / n ** 2 - 1))
        assert errors[1] <= MASS_GRID_TOLERANCE, errors
        assert counts[0] == counts[1] or errors[0] > MASS_GRID_TOLERANCE, errors


def test_slice_grids_follow_the_particle_cloud_on_the_plane():
    """On R² with a mean coupling (B2) each slice's renormalisation grid spans the particle cloud at
    its time, not the bounding box, and integrates the exact m(t) to 1e-3 with 12² points; its
    reference mass is ∫m0 = 1 (the grid of a late slice does not cover m0).  A convolution
    coupling keeps the box grid."""
    from mfgnet.benchmarks import lq_gaussian
    from mfgnet.neural.sampling import follows_cloud, mass_grid_points

    bench = lq_gaussian(2, horizon=2.0, kappa=2.0, mean0=2.0, var0=0.05, viscosity=0.05)
    problem = bench.problem
    assert follows_cloud(problem) and mass_grid_points(problem) == 144
    cfg = SamplerConfig(time_slices=8, n_interior=256)
    sampler = CollocationSampler(problem, cfg, torch.float64, torch.device("cpu"), torch.Generator().manual_seed(0),
                                 need_quadrature=True, slice_points=144, grid_quadrature=True)
    K, P = 32, 4096
    node_t = torch.linspace(0, problem.horizon, K + 1, dtype=torch.float64)
    sampler.cloud = torch.stack([bench.exact.sample(torch.full((P, 1), t, dtype=torch.float64),
                                                    torch.Generator().manual_seed(k))
                                 for k, t in enumerate(node_t.tolist())])
    batch = sampler._draw_time_dependent(None)
    assert batch.quad_y.shape == (9, 144, 2) and torch.equal(batch.quad_log_mass0, torch.zeros(9, dtype=torch.float64))
    lower, upper = problem.bounding_box().bounds()
    for s, t in enumerate(batch.quad_t.tolist()):
        y, logw = batch.quad_y[s], batch.quad_logw[s]
        span = y.amax(0) - y.amin(0)
        assert bool((span < 0.5 * (upper - lower)).all())  # the crowd, not the box
        tt = torch.full((y.shape[0], 1), t, dtype=torch.float64)
        mass = float((bench.exact.density(tt, y) * logw.exp()).sum())
        assert abs(mass - 1) < 1e-3, (t, mass)
    assert not follows_cloud(_convolution_problem_on_the_plane())


def test_hjb_only_points_are_wider_than_the_crowd_and_carry_no_fp_weight():
    """sampler.hjb_fraction on time-dependent R^d: every slice gets that fraction of its points more,
    drawn with the widened kernel (spread √(1 + 1.2²) ≈ 1.56 cloud std against ≈ 1.03 for Silverman's);
    their FP factor is 0 and the others' √(points / FP points), so a mean square over all points is
    the mean square over the FP points; off (0) there is no factor and no extra point."""
    from mfgnet.benchmarks import lq_gaussian

    bench = lq_gaussian(1, horizon=1.0, mean0=0.0, var0=0.04)
    problem = bench.problem
    K, P = 16, 8192
    node_t = torch.linspace(0, problem.horizon, K + 1, dtype=torch.float64)
    cloud = torch.stack([bench.exact.sample(torch.full((P, 1), t, dtype=torch.float64),
                                            torch.Generator().manual_seed(k))
                         for k, t in enumerate(node_t.tolist())])
    cfg = SamplerConfig(time_slices=4, n_interior=4000, n_terminal=400, hjb_fraction=0.25, hjb_bandwidth=1.2)
    sampler = CollocationSampler(problem, cfg, torch.float64, torch.device("cpu"), torch.Generator().manual_seed(0),
                                 need_quadrature=False)
    sampler.cloud = cloud
    batch = sampler._draw_time_dependent(None)
    per, wide = 1000, 250
    assert batch.x.shape == (4 * (per + wide), 1) and batch.slice_size == per + wide
    assert batch.term_x.shape == (500, 1)
    scale = batch.fp_scale.reshape(4, per + wide)
    assert torch.all(scale[:, per:] == 0)
    assert torch.allclose(scale[:, :per], torch.full((4, per), math.sqrt((per + wide) / per), dtype=torch.float64))
    residual = torch.randn(4 * (per + wide), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    fp_only = residual.reshape(4, per + wide)[:, :per]
    assert math.isclose(float(((residual * batch.fp_scale) ** 2).mean()), float((fp_only ** 2).mean()), rel_tol=1e-12)
    x = batch.x[:, 0].reshape(4, per + wide)
    mean, std = sampler._moments_at(batch.t.reshape(4, per + wide)[:, 0])
    z = (x - mean) / std  # in units of the cloud's spread at each slice
    assert math.isclose(float(z[:, per:].std()), math.sqrt(1 + 1.2**2), rel_tol=0.08)
    assert math.isclose(float(z[:, :per].std()), math.sqrt(1 + 0.2317**2), rel_tol=0.06)
    off = CollocationSampler(problem, cfg.replace(hjb_fraction=0.0), torch.float64, torch.device("cpu"),
                             torch.Generator().manual_seed(0), need_quadrature=False)
    off.cloud = cloud
    plain = off._draw_time_dependent(None)
    assert plain.fp_scale is None and plain.x.shape == (4 * per, 1)


def _convolution_problem_on_the_plane():
    from mfgnet.problems import Box, MFGProblem, NonlocalCoupling
    from mfgnet.problems.domains import Euclidean

    def kernel(x, y):
        return torch.exp(-((x[:, None, :] - y[None, :, :]) ** 2).sum(-1) / 0.01).unsqueeze(-1)

    return MFGProblem(Euclidean(2, box=Box([-5.0, -5.0], [5.0, 5.0])), horizon=1.0, viscosity=0.1,
                      coupling=NonlocalCoupling(lambda t, x, m, conv: conv[..., 0], kernel),
                      initial_density=lambda x: torch.exp(-(x ** 2).sum(-1) / 2) / (2 * math.pi))


def test_conv_grid_resolves_the_kernel_and_is_what_the_sampler_uses():
    """sampler.n_conv = 0 on a box or torus: the coarsest grid whose midpoint rule gives ∫K(x, ·) m0
    within 1e-3 of a grid four times finer — 64 for torus_nonlocal_1d (kernel width 0.1); a kernel
    33 times narrower needs a finer grid, and on it the coarser one misses (so the check is real)."""
    import math

    from mfgnet.neural.sampling import CONV_GRID_PER_AXIS, CollocationSampler, conv_grid_points
    from mfgnet.problems import MFGProblem, NonlocalCoupling, Torus
    from mfgnet.problems.zoo import ZOO, _periodic_gaussian_kernel

    nonlocal_1d = ZOO["torus_nonlocal_1d"]()
    assert conv_grid_points(nonlocal_1d) == 64
    sampler = CollocationSampler(nonlocal_1d, SamplerConfig(), torch.float64, torch.device("cpu"),
                                 torch.Generator().manual_seed(0), need_quadrature=True)
    assert sampler.slice_points == 64
    assert CollocationSampler(nonlocal_1d, SamplerConfig(n_conv=32), torch.float64, torch.device("cpu"),
                              torch.Generator().manual_seed(0), need_quadrature=True).slice_points == 32

    width = 0.003  # the midpoint rule on a periodic Gaussian is spectral: 64 points still resolve 0.01
    narrow = MFGProblem(Torus(1), horizon=1.0, viscosity=0.05,
                        coupling=NonlocalCoupling(lambda t, x, m, conv: conv[:, 0], _periodic_gaussian_kernel(width)),
                        initial_density=lambda x: 1 + 0.5 * torch.cos(2 * math.pi * x[:, 0]))
    n = conv_grid_points(narrow)
    assert n > 64
    probes = (torch.arange(16, dtype=torch.float64) + 0.5).unsqueeze(-1) / 16

    def conv(points):
        y = (torch.arange(points, dtype=torch.float64) + 0.5).unsqueeze(-1) / points
        return (narrow.coupling.kernel(probes, y)[..., 0] * narrow.initial_density(y)).sum(1) / points

    fine = conv(4 * n)
    coarser = CONV_GRID_PER_AXIS[1][CONV_GRID_PER_AXIS[1].index(n) - 1]
    assert float((conv(n) - fine).abs().max()) <= 1e-3 * float(fine.abs().max())
    assert float((conv(coarser) - conv(4 * coarser)).abs().max()) > 1e-3 * float(conv(4 * coarser).abs().max())


def test_auto_kind_follows_the_density_on_time_dependent_boxes_in_1d_and_2d():
    from mfgnet.neural.sampling import resolve_kind
    from mfgnet.problems.zoo import ZOO

    kinds = {name: resolve_kind("auto", ZOO[name]()) for name in
             ("box_bump_1d", "box_bump_2d", "torus_bimodal_1d", "ergodic_box_strong_1d", "lq_offset_2d")}
    assert kinds == {"box_bump_1d": "density", "box_bump_2d": "density", "torus_bimodal_1d": "uniform",
                     "ergodic_box_strong_1d": "uniform", "lq_offset_2d": "uniform"}


def test_time_warp_keeps_the_integrals_over_time():
    """sampler.time_warp: slice times crowd t = 0 ("early") or both ends ("ends"), and the residual
    factors (√ of the inverse time density) make a mean square over the points an unbiased estimate of
    the same (1/T) ∫ f(t) dt on T = 2, for f = t² and for layers e^{-t/0.05} at t = 0+ and
    e^{-(T-t)/0.05} at T-, with a step-to-step spread of each layer's estimate 3.5-6.7 times smaller
    where the warp crowds that end (measured; asserted: 3 times); "early" doubles the spread at T-
    (its slices thin out there)."""
    problem = MFGProblem(Box([0.0], [1.0]), horizon=2.0, viscosity=0.1, coupling=lambda t, x, m: m,
                         initial_density=lambda x: torch.ones(x.shape[0], dtype=x.dtype))
    estimates, spread = {}, {}
    for warp in ("uniform", "early", "ends"):
        cfg = SamplerConfig(kind="uniform", n_interior=64, time_slices=16, time_warp=warp)
        sampler = CollocationSampler(problem, cfg, torch.float64, torch.device("cpu"),
                                     torch.Generator().manual_seed(1), need_quadrature=False)
        per_draw = []
        for _ in range(400):
            batch = sampler.draw(None, step=0)
            t = batch.t[:, 0]
            assert float(t.min()) >= 0.0 and float(t.max()) < 2.0
            assert (batch.time_scale is None) == (warp == "uniform")
            w = torch.ones_like(t) if batch.time_scale is None else batch.time_scale ** 2
            per_draw.append(torch.stack([(w * t**2).mean(), (w * torch.exp(-t / 0.05)).mean(),
                                         (w * torch.exp(-(2.0 - t) / 0.05)).mean()]))
        per_draw = torch.stack(per_draw)
        estimates[warp], spread[warp] = per_draw.mean(0), per_draw.std(0)
    layer = 0.05 * (1 - math.exp(-40.0)) / 2.0
    exact = torch.tensor([4.0 / 3.0, layer, layer], dtype=torch.float64)
    for warp, est in estimates.items():  # within 4 standard errors of the 400-draw means
        assert ((est - exact).abs() < 4 * spread[warp] / 20).all(), (warp, est, exact, spread[warp])
    assert spread["early"][1] < spread["uniform"][1] / 3, spread
    assert spread["ends"][1] < spread["uniform"][1] / 3 and spread["ends"][2] < spread["uniform"][2] / 3, spread
    assert spread["early"][2] > spread["uniform"][2], spread


def test_auto_time_warp_crowds_the_ends_on_the_circle_and_the_line_and_t0_on_2d_boxes():
    from mfgnet.neural.config import LossConfig, NeuralSolverConfig
    from mfgnet.neural.sampling import resolve_time_warp
    from mfgnet.neural.trainer import Trainer
    from mfgnet.problems.zoo import ZOO

    for name in ("torus_power_two_1d", "lq_offset_1d", "r_split_1d"):
        assert resolve_time_warp("auto", ZOO[name]()) == "ends", name
    for name in ("box_bump_2d", "box_wall_corner_2d"):
        assert resolve_time_warp("auto", ZOO[name]()) == "early", name
    for name in ("box_bump_1d", "lq_offset_2d", "ergodic_torus_2d", "ergodic_box_strong_1d"):
        assert resolve_time_warp("auto", ZOO[name]()) == "uniform", name
    assert resolve_time_warp("early", ZOO["box_bump_1d"]()) == "early"
    assert resolve_time_warp("uniform", ZOO["box_bump_2d"]()) == "uniform"
    # The no-flux weight that goes with the early warp: 10 on the time-dependent 2D box only, unless set.
    cfg = NeuralSolverConfig(progress=False)
    assert Trainer(ZOO["box_bump_2d"](), cfg).cfg.loss.boundary == 10.0
    assert Trainer(ZOO["box_bump_1d"](), cfg).cfg.loss.boundary == 1.0
    assert Trainer(ZOO["ergodic_torus_2d"](), cfg).cfg.loss.boundary == 1.0
    set_one = cfg.replace(loss=LossConfig(boundary=1.0))
    assert Trainer(ZOO["box_bump_2d"](), set_one).cfg.loss.boundary == 1.0
