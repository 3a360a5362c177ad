"""Collocation and quadrature points, drawn fresh every step from one seeded generator.

* Torus / Box: uniform points in the domain; integrals (∫m, ∫u, ∫K m) on a periodic grid
  shifted by one random offset per step (the trapezoid rule, spectral for periodic
  integrands and unbiased; no point counted twice) for d ≤ 3, Monte Carlo above.
* R^d: points where m has mass.  Every ``refresh_every`` steps particles drawn from m0 are
  moved by the SDE dX = -∂pH(X, ∇u) dt + √(2ν) dW under the current u; collocation points
  are a kernel-density sample of this cloud (plus a fraction uniform in the bounding box),
  and integrals use importance sampling from a Gaussian fitted to the cloud (widened).
* Adaptive kinds replace ``adaptive_fraction`` of the interior points: ``density`` resamples
  uniform candidates in proportion to the current m; ``residual`` keeps a pool of points
  with large PDE residual, refreshed every ``refresh_every`` steps.

Time-dependent problems draw ``time_slices`` stratified times per step with the same
number of points each, so that a nonlocal term ∫K(x, y) m(t, y) dy is estimated once per
time slice rather than once per point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mfgnet.neural.config import SamplerConfig, default_interior_points, on_time_dependent_2d_box
from mfgnet.neural.networks import initial_moments, renormalises_euclidean
from mfgnet.problems import Box, Euclidean, MFGProblem, Torus
from mfgnet.problems.couplings import mean_kernel

_TIME_BINS = 32  # resolution of the residual-in-time score (time_adaptive)


@dataclass
class Batch:
    """One step's points.  n interior points in S slices, quadrature per slice (+ one at T)."""

    t: torch.Tensor                    # (n, 1)
    x: torch.Tensor                    # (n, d)
    slice_id: torch.Tensor | None      # (n,) slice of each point (time-dependent)
    quad_t: torch.Tensor | None        # (S + 1,) slice times, the last one = T (time-dependent)
    quad_y: torch.Tensor | None        # (S + 1, k, d) or (k, d) (ergodic) quadrature points
    quad_logw: torch.Tensor | None     # same leading shape: log quadrature weights (-log q for IS)
    self_normalised: bool              # integrals as Σ w f / Σ w (importance sampling on R^d)
    init_x: torch.Tensor | None        # (n0, d)
    term_x: torch.Tensor | None        # (nT, d)
    bnd_t: torch.Tensor | None         # (nb, 1)
    bnd_x: torch.Tensor | None         # (nb, d)
    bnd_normal: torch.Tensor | None    # (nb, d) outward unit normals
    # Slice s holds exactly the rows s·slice_size … (s + 1)·slice_size - 1 (the sampler's layout when
    # no adaptive point moved to another slice); None: only slice_id says which points are where.
    slice_size: int | None = None
    # (S + 1,) log ∫m0 as each slice's quadrature measures it, the renormalisation's reference; None:
    # m0 on the slice's own points (networks.initial_log_mass), for grids that cover m0 (a box's).
    quad_log_mass0: torch.Tensor | None = None
    # (n,) factor of each interior point's FP residual: 0 where only the HJB residual is imposed (the wide
    # points of sampler.hjb_fraction), and √(points / FP points of its slice) elsewhere, so that a mean
    # square over all points is the mean square over the FP points; None: FP everywhere.
    fp_scale: torch.Tensor | None = None
    # (n,) factor of each interior point's HJB and FP residuals under sampler.time_warp: √ of the inverse
    # density of its slice time (mean squares stay estimates of the integrals over [0, T]); None: uniform.
    time_scale: torch.Tensor | None = None


def resolve_kind(kind: str, problem: MFGProblem) -> str:
    """The sampler kind that ``"auto"`` stands for: ``"density"`` on a time-dependent problem on a
    1D box, ``"uniform"`` elsewhere (R^d points already follow simulated particles).

    Why (results/neural_zoo/means.md): with 2000 float64 steps, density-following points against
    uniform ones moved rel L2 m / u on the 1D boxes to 0.165 / 0.074 from 0.200 / 0.118
    (box_bump), 0.036 / 0.011 from 0.043 / 0.0085 (readme_box), 0.415 / 0.219 from 0.448 / 0.233
    (box_narrow_far), 0.137 / 0.115 from 0.244 / 0.188 (box_congestion), but 0.147 / 0.111 from
    0.089 / 0.045 (box_noisy_long, the widely spread crowd).  On the 1D tori m did not improve
    and u got worse (torus_power u 0.259 vs 0.085, torus_low_noise 0.252 vs 0.128, torus_nonlocal
    0.056 vs 0.021).  On box_bump_2d, m 0.357 / u 0.268 vs 0.295 / 0.142 at first (2000 float64
    steps, no initial fit); with the initial fit and the cheaper mass grid (seventh session, 4000
    float32 steps) density points won there: 0.206 / 0.103 against 0.336 / 0.162 (2048 uniform
    points: 0.292 / 0.139), as the uniform points let the crowd spread to the middle of the square
    by t = 0.1 (mean 0.49 against 0.35); so 2D boxes use them too.  The ergodic benchmarks were tuned
    with uniform points.  (Until the forty-second session the density points took the places of whole early
    slices, so t < T/2 had no uniform points: every measurement above was made that way.)"""
    if kind != "auto":
        return kind
    use_density = not problem.is_ergodic and isinstance(problem.domain, Box) and problem.dim <= 2
    return "density" if use_density else "uniform"


def resolve_time_warp(warp: str, problem: MFGProblem) -> str:
    """The slice-time warp that ``"auto"`` stands for: ``"ends"`` on a time-dependent problem on the
    circle (a 1D torus) or the line R, ``"early"`` on a time-dependent 2D box (where loss.boundary's default
    is 10: the pair is measured in LossConfig.boundary's comment), ``"uniform"`` elsewhere.

    Why (results/neural_zoo/means.md, thirtieth session; one seed per row, rel L2 m / u, uniform ->
    ends): on the zoo's circle torus_power_two_1d 0.093 / 0.047 -> 0.038 / 0.011 (seed 1: 0.092 / 0.049 -> 0.108 /
    0.015; seed 2 with ends 0.093 / 0.008), torus_power_1d
    0.013 / 0.011 -> 0.0055 / 0.0054, torus_bimodal_1d 0.0049 / 0.0023 -> 0.0028 / 0.0017, torus_low_noise_1d
    0.0087 / 0.0017 -> 0.0069 / 0.0020, torus_three_crowds_1d 0.0021 / 0.00087 -> 0.0026 / 0.00039 (their
    error sits at both ends of [0, T]), torus_nonlocal_1d 0.0083 / 0.0024 -> 0.0085 / 0.00085; on the 1D
    boxes it was a wash (m ratios 0.71-1.22), on R two of three gained (r_two_crowds_1d 0.015 / 0.0034 ->
    0.0046 / 0.0013, r_split_1d 0.028 / 0.020 -> 0.027 / 0.014, thirty-first session; lq_offset_1d 0.0069 / 0.0013
    -> 0.0081 / 0.0012), on the 2D boxes worse (box_bump_2d 0.076 -> 0.086, box_two_crowds_2d 0.046 -> 0.057).
    "early" on the 2D boxes: forty-fourth and forty-fifth sessions (with loss.boundary 10)."""
    if warp != "auto":
        return warp
    circle_or_line = problem.dim == 1 and (problem.domain.periodic or not problem.domain.bounded)
    if circle_or_line and not problem.is_ergodic:
        return "ends"
    return "early" if on_time_dependent_2d_box(problem) else "uniform"


# The mass renormalisation's grid per time slice (trainer.slice_points, when sampler.n_mass = 0): the
# coarsest per-axis count among these whose midpoint grid integrates m0 to MASS_GRID_TOLERANCE (the
# issue's mass target; the solution's own normaliser uses the fine fixed grid either way).
# Why adaptive in 2D: the grid's points dominate a 2D step (box_bump_2d: 66 ms with 24², 27 ms with
# 12², medians of three interleaved 60-step runs; rel L2 m after 4000 steps 0.329 vs 0.336), but
# R^d's bounding box spans ~15 m0-widths per axis and needs 24² (lq_offset_2d: 16² integrates m0
# 3.6e-3 off).  1D keeps 64: there the grid costs little (64 -> 32: 20.9 -> 19.0 ms a step).
MASS_GRID_PER_AXIS = {1: (64,), 2: (8, 12, 16, 24, 32), 3: (8, 12, 16)}
MASS_GRID_TOLERANCE = 1e-3


def mass_grid_points(problem: MFGProblem) -> int:
    """Grid points per time slice for the mass renormalisation (see MASS_GRID_PER_AXIS): on the
    bounding box, or on the region around m0's samples where the slices' grids follow the
    particle cloud (:func:`follows_cloud`)."""
    d = problem.dim
    if d not in MASS_GRID_PER_AXIS:
        return 4096
    lower, upper = initial_cloud_region(problem) if follows_cloud(problem) else problem.bounding_box().bounds()
    counts = MASS_GRID_PER_AXIS[d]
    for n in counts:
        y, cell = _midpoint_grid(lower, upper, n)
        mass = float(problem.initial_density(y).sum()) * cell
        if abs(mass - 1.0) <= MASS_GRID_TOLERANCE:
            return n ** d
    return counts[-1] ** d


# On R² with a renormalised density and a local (or mean) coupling, each slice's grid spans the
# particle cloud at the slice's time (the particles' extent, CLOUD_MARGIN cloud standard deviations
# more on each side, within the bounding box) instead of the whole bounding box.  Why: the box must
# hold the crowd at every time, so at one time the crowd fills a small part of it and the box grid
# needed 24² points (lq_offset_2d: box 6 wide, crowd std 0.22), which held most of a step (57-61 ms
# against 30-33 ms with 12²).  lq_offset_2d, zoo defaults, rel L2 m / u and wall: box 24² 0.140 /
# 0.008, 443 s; cloud grid, margin 2 (8²) 0.154 / 0.0099, 256 s, the same with 12² 0.159 / 0.011,
# 226 s; margin 4 (12²) 0.135 / 0.0083, 242 s (a margin of 2 left out mass of the too-wide density
# that the solution's own box normaliser counts).  B2 d = 2 (2000 steps): m / u 2.2e-3 / 1.9e-3 in
# 130 s (box grid, seventh session: 2.8e-3 / 2.4e-3, 172 s).
# Where a coupling integrates m against a kernel other than the mean's (K(x, y) = y, smooth on the
# crowd's scale), or the problem needs the mean control, the grid stays on the box: a kernel
# narrower than the crowd would fall between the points.
CLOUD_MARGIN = 4.0
CLOUD_REGION_SAMPLES = 2048  # m0's samples that stand for the initial cloud in mass_grid_points
CLOUD_FOLLOWING_DIMS = (2,)


def follows_cloud(problem: MFGProblem) -> bool:
    """Whether the slices' quadrature grids follow the particle cloud (see CLOUD_MARGIN)."""
    smooth_kernels = all(part.kernel is None or part.kernel is mean_kernel
                         for part in (problem.coupling, problem.terminal_cost))
    return (not problem.is_ergodic and renormalises_euclidean(problem) and problem.dim in CLOUD_FOLLOWING_DIMS
            and smooth_kernels and not problem.has_mean_control)


def initial_cloud_region(problem: MFGProblem) -> tuple[torch.Tensor, torch.Tensor]:
    """The grid region of t = 0 where the slices' grids follow the cloud, from CLOUD_REGION_SAMPLES
    samples of m0 (fixed seed) standing for the initial particles: lower and upper corners (d,)."""
    x0 = problem.sample_initial(CLOUD_REGION_SAMPLES, torch.Generator().manual_seed(11)).to(torch.float64)
    lower, upper = _cloud_region(x0.unsqueeze(0), x0.std(0).unsqueeze(0), *problem.bounding_box().bounds())
    return lower[0], upper[0]


def _cloud_region(points: torch.Tensor, std: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per time, the box around points (S, P, d) with std (S, d): extent ± CLOUD_MARGIN std, clipped
    to [lower, upper] (and never empty)."""
    lo = torch.maximum(points.amin(1) - CLOUD_MARGIN * std, lower)
    hi = torch.minimum(points.amax(1) + CLOUD_MARGIN * std, upper)
    return lo, torch.maximum(hi, lo + 1e-6 * (upper - lower))


# The grid per time slice for ∫K(x, y) m(t, y) dy on a bounded domain (sampler.n_conv = 0): the
# coarsest per-axis count among these whose midpoint grid integrates m0 to MASS_GRID_TOLERANCE and
# K(x_j, ·) m0 at 16 (3D: 27) grid points x_j to CONV_GRID_TOLERANCE (relative to the largest |∫K m0|) of a grid
# four times finer.  Why: with the former fixed 256 points per slice torus_nonlocal_1d (kernel width
# 0.1, m0 width 0.07) took 498 s for rel L2 m 0.019; with 64 it took 243 s for 0.018 (one seed,
# results/neural_zoo/means.md, eighth session), and 64 is what this rule picks there.
CONV_GRID_PER_AXIS = {1: (64, 128, 256, 512), 2: (8, 12, 16, 24, 32, 48, 64), 3: (8, 12, 16)}
CONV_GRID_TOLERANCE = 1e-3
# Importance samples per slice for ∫K m on R^d above networks.RENORMALISE_MAX_DIM (sampler.n_conv = 0).
CONV_SAMPLES_EUCLIDEAN = 256


def _midpoint_grid(lower: torch.Tensor, upper: torch.Tensor, n: int) -> tuple[torch.Tensor, float]:
    """Cell centres of an n-per-axis grid on [lower, upper] (n^d, d) and the cell volume."""
    d = lower.numel()
    cells = torch.stack(torch.meshgrid(*([torch.arange(n, dtype=torch.float64)] * d), indexing="ij"), -1)
    return lower + (upper - lower) * (cells.reshape(-1, d) + 0.5) / n, float(torch.prod(upper - lower)) / n**d


def _kernels(problem: MFGProblem) -> list:
    """The kernels of the problem's nonlocal coupling and terminal cost."""
    return [k for k in (getattr(problem.coupling, "kernel", None), getattr(problem.terminal_cost, "kernel", None))
            if k is not None]


def conv_grid_points(problem: MFGProblem) -> int:
    """Grid points per time slice for ∫K m on a bounded domain (see CONV_GRID_PER_AXIS)."""
    d = problem.dim
    if d not in CONV_GRID_PER_AXIS:
        return 4096
    lower, upper = problem.bounding_box().bounds()
    probes, _ = _midpoint_grid(lower, upper, {1: 16, 2: 4, 3: 3}[d])

    def integrals(n: int) -> tuple[float, torch.Tensor]:
        y, cell = _midpoint_grid(lower, upper, n)
        m0 = problem.initial_density(y)
        with torch.no_grad():
            conv = [(k(probes, y) * m0[None, :, None]).sum(1) * cell for k in _kernels(problem)]
        return float(m0.sum()) * cell, torch.cat([c.reshape(-1) for c in conv]) if conv else torch.zeros(0)

    counts = CONV_GRID_PER_AXIS[d]
    for n in counts:
        mass, conv = integrals(n)
        _, fine = integrals(4 * n)
        scale = float(fine.abs().max()) if fine.numel() else 0.0
        conv_ok = scale == 0.0 or float((conv - fine).abs().max()) <= CONV_GRID_TOLERANCE * scale
        if abs(mass - 1.0) <= MASS_GRID_TOLERANCE and conv_ok:
            return n ** d
    return counts[-1] ** d


def warp_times(slice_t: torch.Tensor, T: float, warp: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Slice times (S,) in [0, T) mapped by ``sampler.time_warp`` and each one's importance weight:
    t = T g(r), r = slice_t / T stratified uniform, weight 1 / (T × the density of t) = g'(r), so
    that a mean over the points weighted by it estimates the same (1/T) ∫ f dt as uniform times.

    "uniform": g(r) = r (weights None); "early": g(r) = r² (weight 2r: slices crowd t = 0);
    "ends": g(r) = (1 − cos πr) / 2 (weight (π/2) sin πr: slices crowd t = 0 and t = T).
    """
    if warp == "uniform":
        return slice_t, None
    r = slice_t / T
    if warp == "early":
        return T * r * r, 2.0 * r
    return T * (1.0 - torch.cos(math.pi * r)) / 2.0, (math.pi / 2.0) * torch.sin(math.pi * r)


class CollocationSampler:
    def __init__(self, problem: MFGProblem, cfg: SamplerConfig, dtype: torch.dtype, device: torch.device,
                 generator: torch.Generator, need_quadrature: bool, slice_points: int | None = None,
                 grid_quadrature: bool = False) -> None:
        if cfg.n_interior is None:  # built outside a Trainer (which resolves it): the per-problem default
            cfg = cfg.replace(n_interior=default_interior_points(problem))
        self.problem, self.cfg = problem, cfg
        self.dtype, self.device, self.gen = dtype, device, generator
        self.d = problem.dim
        self.T = problem.horizon
        self.euclidean = isinstance(problem.domain, Euclidean)
        self.torus = isinstance(problem.domain, Torus)
        self.box = isinstance(problem.domain, Box)
        lower, upper = problem.bounding_box().bounds()
        self.lower, self.upper = lower, upper
        self.volume = float(torch.prod(upper - lower))
        self.need_quadrature = need_quadrature
        # Time-dependent R^d with a renormalised density (networks.renormalises_euclidean): the
        # per-slice quadrature is the shifted grid on the bounding box, as on a bounded domain,
        # instead of importance samples around the particle cloud.
        self.grid_quadrature = grid_quadrature or not self.euclidean
        self.follow_cloud = self.grid_quadrature and follows_cloud(problem)
        self.kind = resolve_kind(cfg.kind, problem)
        self.time_warp = resolve_time_warp(cfg.time_warp, problem)
        # Quadrature points per time slice: n_conv, or fewer when only the mass needs them.
        self.slice_points = slice_points or cfg.n_conv
        if not self.slice_points and need_quadrature and self.grid_quadrature and not problem.is_ergodic:
            self.slice_points = conv_grid_points(problem)
        self.pool: torch.Tensor | None = None      # (P, 1 + d) adaptive points (t, x)
        self.cloud: torch.Tensor | None = None     # (K + 1, P, d) particle positions at times k T / K
        # The cloud's per-node moments (see _cloud_moments), with the cloud (and its version) they are of.
        self._moments: tuple[torch.Tensor, int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
        self.time_score: torch.Tensor | None = None  # (bins,) running mean squared residual over time
        # Ergodic R^d: a Gaussian (mean (d,), std (d,)) fitted to the current m by importance sampling.
        self.proposal: tuple[torch.Tensor, torch.Tensor] | None = None

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {"pool": self.pool, "cloud": self.cloud, "time_score": self.time_score, "proposal": self.proposal}

    def load_state_dict(self, state: dict) -> None:
        self.pool, self.cloud = state["pool"], state["cloud"]
        self.time_score = state.get("time_score")
        self.proposal = state.get("proposal")

    # ------------------------------------------------------------ time slices
    def slice_times(self, S: int) -> torch.Tensor:
        """S stratified slice times in [0, T), increasing: uniform, or (``time_adaptive`` = a > 0)
        from the density (1 - a)/T + a · (binned residual score), by the inverse CDF of
        stratified uniforms, so every stratum of probability keeps one slice."""
        r = (torch.arange(S, dtype=torch.float64) + self._rand(S)) / S
        a = self.cfg.time_adaptive
        if a == 0 or self.time_score is None:
            return self.T * r
        B = self.time_score.shape[0]
        score = self.time_score / self.time_score.sum().clamp_min(1e-300)
        prob = (1 - a) / B + a * score
        cdf = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(prob, 0)])
        cdf = cdf / cdf[-1]
        k = torch.searchsorted(cdf, r, right=True).clamp(1, B) - 1
        frac = (r - cdf[k]) / (cdf[k + 1] - cdf[k]).clamp_min(1e-300)
        return self.T * (k + frac.clamp(0, 1)) / B

    def update_time_score(self, slice_t: torch.Tensor, loss: torch.Tensor) -> None:
        """Fold this step's mean squared residual per slice (S,) at times slice_t (S,) into the
        binned score (exponential average with weight 0.1; unvisited bins keep their value)."""
        if self.cfg.time_adaptive == 0 or self.T is None:
            return
        B = _TIME_BINS
        if self.time_score is None:
            self.time_score = torch.full((B,), float(loss.mean()), dtype=torch.float64)
        bins = (slice_t.to(torch.float64).cpu() / self.T * B).long().clamp(0, B - 1)
        loss = torch.nan_to_num(loss.detach().to(torch.float64).cpu(), nan=0.0, posinf=0.0)
        total = torch.zeros(B, dtype=torch.float64).index_add_(0, bins, loss)
        count = torch.zeros(B, dtype=torch.float64).index_add_(0, bins, torch.ones_like(loss))
        seen = count > 0
        self.time_score[seen] = 0.9 * self.time_score[seen] + 0.1 * total[seen] / count[seen]

    # ------------------------------------------------------------ primitives
    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.gen, dtype=torch.float64)

    def _randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=self.gen, dtype=torch.float64)

    def _out(self, z: torch.Tensor) -> torch.Tensor:
        return z.to(dtype=self.dtype, device=self.device)

    def uniform(self, n: int) -> torch.Tensor:
        """(n, d) uniform in the bounding box (the torus excludes its upper faces), float64 CPU."""
        return self.lower + (self.upper - self.lower) * self._rand(n, self.d)

    def shifted_grid(self, n: int, lower: torch.Tensor | None = None,
                     upper: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A uniform grid of about n points shifted by one random offset (d ≤ 3), or n Monte
        Carlo points, on the bounding box (or [lower, upper]); returns points (k, d) and log
        weights (k,) summing to the volume."""
        lower = self.lower if lower is None else lower
        upper = self.upper if upper is None else upper
        if self.d <= 3:
            per_axis = max(2, round(n ** (1.0 / self.d)))
            idx = torch.arange(per_axis, dtype=torch.float64)
            axes = torch.meshgrid(*([idx] * self.d), indexing="ij")
            cells = torch.stack(axes, -1).reshape(-1, self.d)
            z = (cells + self._rand(1, self.d)) / per_axis
        else:
            z = self._rand(n, self.d)
        y = lower + (upper - lower) * z
        volume = float(torch.prod(upper - lower))
        logw = torch.full((y.shape[0],), math.log(volume / y.shape[0]), dtype=torch.float64)
        return y, logw

    # -------------------------------------------------------------- particles
    def refresh_cloud(self, nets, particle_steps: int | None = None, particles: int | None = None) -> None:
        """Simulate the particle cloud under the current policy (Euclidean, time-dependent): ``particles``
        paths (None: ``sampler.particles``) of ``particle_steps`` Euler-Maruyama steps (None:
        ``sampler.particle_steps``)."""
        cfg, K = self.cfg, particle_steps or self.cfg.particle_steps
        dt = self.T / K
        x = self.problem.sample_initial(particles or cfg.particles, self.gen).to(torch.float64)
        path = [x]
        noise = self.problem.noise_std(dt)
        for k in range(K):  # time steps are sequential; particles are vectorised
            with torch.enable_grad():
                xg = self._out(x).detach().requires_grad_(True)
                t = torch.full((x.shape[0], 1), k * dt, dtype=self.dtype, device=self.device)
                (grad_u,) = torch.autograd.grad(nets.value(t, xg).sum(), xg)
            drift = self.problem.hamiltonian.grad_p(xg.detach(), grad_u).to(torch.float64).cpu()
            x = x - drift * dt + noise * self._randn(*x.shape)
            path.append(x)
        self.cloud = torch.stack(path)

    def _nodes(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For times t (S,): the cloud's node k0 (S,) below each and the weight a (S,) of node k0 + 1,
        so that the cloud at t is (1 - a) cloud[k0] + a cloud[k0 + 1]."""
        K = self.cloud.shape[0] - 1
        s = (t / self.T * K).clamp(0, K)
        k0 = s.floor().long().clamp(max=K - 1)
        return k0, s - k0

    def _cloud_at(self, t: torch.Tensor, pick: torch.Tensor | None = None) -> torch.Tensor:
        """Cloud positions linearly interpolated to times t (S,): (S, P, d); with ``pick`` (S, n)
        only those particles at each time, (S, n, d)."""
        k0, a = self._nodes(t)
        a = a.reshape(-1, 1, 1)
        if pick is None:
            return (1 - a) * self.cloud[k0] + a * self.cloud[k0 + 1]
        k0 = k0.unsqueeze(-1)
        return (1 - a) * self.cloud[k0, pick] + a * self.cloud[k0 + 1, pick]

    def _cloud_moments(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per node k of the cloud: the particles' mean (K + 1, d), variance (K + 1, d, unbiased) and
        covariance with node k + 1 (K, d), per coordinate; computed once per cloud (refresh_cloud,
        or a cloud set from outside) and kept while the cloud is the same tensor, unmodified.

        Why: the proposal statistics at a step's times follow from these exactly (_moments_at),
        where interpolating the (K + 1, P, d) cloud and taking its std over P at every step cost
        most of the sampler's time in high d: B2 at d = 100 (2048 particles and interior points,
        one thread) drew in 122 ms before, 17 ms now; these moments take 100 ms once per cloud."""
        cloud = self.cloud
        cached = self._moments
        if cached is not None and cached[0] is cloud and cached[1] == cloud._version:
            return cached[2]
        var, mean = torch.var_mean(cloud, dim=1)
        z = cloud - mean.unsqueeze(1)
        cov = (z[:-1] * z[1:]).sum(1) / (cloud.shape[1] - 1)
        self._moments = (cloud, cloud._version, (mean, var, cov))
        return mean, var, cov

    def _moments_at(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std (S, d) over the particles of the cloud interpolated to times t (S,), from
        the per-node moments: with X = (1 - a) A + a B, E X = (1 - a) E A + a E B and
        Var X = (1 - a)² Var A + a² Var B + 2 a (1 - a) Cov(A, B), exact (the same sums as
        the direct mean and std of the interpolated positions, up to round-off)."""
        mean, var, cov = self._cloud_moments()
        k0, a = self._nodes(t)
        a = a.unsqueeze(-1)
        b = 1 - a
        m = b * mean[k0] + a * mean[k0 + 1]
        v = b * b * var[k0] + a * a * var[k0 + 1] + 2 * a * b * cov[k0]
        return m, v.clamp_min(0).sqrt()

    def _kde_sample(self, t: torch.Tensor, per: int, wide: int = 0) -> torch.Tensor:
        """per points at each time of t (S,) from a kernel density estimate of the cloud:
        (S, per, d); the last ``wide`` of each time's points with the kernel widened to
        ``sampler.hjb_bandwidth`` standard deviations of the cloud."""
        P, d = self.cloud.shape[1], self.d
        S = t.shape[0]
        pick = torch.randint(0, P, (S, per), generator=self.gen)
        centres = self._cloud_at(t, pick)
        std = self._moments_at(t)[1].unsqueeze(1).clamp_min(1e-8)
        bandwidth = torch.full((1, per, 1), self._silverman_bandwidth(), dtype=centres.dtype)
        if wide:
            bandwidth[:, per - wide:] = max(float(bandwidth[0, 0, 0]), self.cfg.hjb_bandwidth)
        return centres + bandwidth * std * self._randn(S, per, d)

    def _silverman_bandwidth(self) -> float:
        """Silverman's rule for the cloud's kernel, per coordinate, in units of the cloud's std."""
        return (4.0 / ((self.d + 2) * self.cloud.shape[1])) ** (1.0 / (self.d + 4))

    def _hjb_only_points(self, per: int) -> int:
        """How many HJB-only points join a slice's ``per`` interior points of a time-dependent draw
        (``sampler.hjb_fraction``): on R^d with uniform (non-adaptive) points, else 0."""
        if not (self.euclidean and self.kind == "uniform"):
            return 0
        return int(round(self.cfg.hjb_fraction * per))

    def _mix_box(self, pts: torch.Tensor) -> torch.Tensor:
        """Replace a box_fraction of the points (..., n, d) by uniform points of the box."""
        n = pts.shape[-2]
        k = int(round(self.cfg.box_fraction * n))
        if k == 0:
            return pts
        flat = pts.reshape(-1, n, self.d).clone()
        flat[:, :k] = self.uniform(flat.shape[0] * k).reshape(flat.shape[0], k, self.d)
        return flat.reshape(pts.shape)

    def _gaussian_proposal(self, t: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """k points per time from N(mean, (widen std)²) of the cloud at t (S,): (S, k, d), log weights."""
        mean, std = self._moments_at(t)
        y, log_q = self._gaussian(mean.unsqueeze(1), self.cfg.widen * std.unsqueeze(1).clamp_min(1e-8), t.shape[0], k)
        # Weights 1 / (k q(y)): Σ w f estimates ∫ f like the grid weights do.
        return y, -log_q - math.log(k)

    def _gaussian(self, mean: torch.Tensor, std: torch.Tensor, *shape: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Points (*shape, d) from N(mean, std²) per coordinate (mean, std broadcast against them)
        and their log density (*shape)."""
        z = self._randn(*shape, self.d)
        log_q = (-0.5 * z * z - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
        return mean + std * z, log_q

    # ------------------------------------------------------------------ draw
    def draw(self, nets, step: int, refresh: bool = True) -> Batch:
        """This step's points; on R^d the proposal or particle cloud is refreshed every
        ``refresh_every`` steps (``refresh=False``: only when there is none yet)."""
        cfg = self.cfg
        if self.euclidean:
            # Ergodic: the Gaussian proposal fitted to m; time-dependent: the simulated particle cloud.
            ergodic = self.problem.is_ergodic
            due = refresh and step % cfg.refresh_every == 0
            if due or (self.proposal if ergodic else self.cloud) is None:
                self.refresh_proposal(nets) if ergodic else self.refresh_cloud(nets)
        if self.problem.is_ergodic:
            return self._draw_ergodic(nets)
        return self._draw_time_dependent(nets)

    def _draw_ergodic(self, nets) -> Batch:
        cfg = self.cfg
        if self.euclidean:
            x = self._mix_box(self.proposal_sample(cfg.n_interior)[0])
        else:
            x = self.uniform(cfg.n_interior)
        x = self._adapt(nets, torch.zeros(x.shape[0], 1, dtype=torch.float64), x)[1]
        y, logw = self.quadrature(cfg.n_quadrature) if self.need_quadrature else (None, None)
        bnd_t, bnd_x, normal = self._boundary(ergodic=True)
        return Batch(t=self._out(torch.zeros(x.shape[0], 1)), x=self._out(x), slice_id=None, quad_t=None,
                     quad_y=None if y is None else self._out(y), quad_logw=None if logw is None else self._out(logw),
                     self_normalised=self.euclidean, init_x=None, term_x=None, bnd_t=bnd_t, bnd_x=bnd_x,
                     bnd_normal=normal)

    # ------------------------------------------------------ ergodic on R^d
    def quadrature(self, n: int, final: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Points (k, d) and log weights (k,) for ∫ f ≈ Σ w f over the stationary problem's domain:
        the shifted grid on a bounded domain; on R^d n importance samples of the Gaussian proposal
        (weights 1 / (n q), so Σ w f is unbiased for ∫ f).  ``final`` (the last normalisation and
        λ): in d ≤ 3 a shifted grid over the proposal's mean ± 8 (widened) standard deviations,
        above that importance samples of the unwidened proposal.  Why: 4096 importance samples left
        ∫m 0.6 % off in 1D (and λ = ℓ as much, through c ln m), a grid of as many points is exact
        to round-off for a Gaussian-like m; at d = 20 the 1.5×-widened proposal's weights left the
        mass 16 % off, while the fitted proposal's are nearly constant for a Gaussian-like m."""
        if not self.euclidean:
            return self.shifted_grid(n)
        if final and self.d <= 3:
            mean, std = self._proposal()
            half = 8.0 * self.cfg.widen * std
            return self.shifted_grid(n, mean - half, mean + half)
        y, log_q = self.proposal_sample(n, widen=1.0 if final else None)
        return y, -log_q - math.log(n)

    def proposal_sample(self, n: int, widen: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n points from N(mean, (widen · std)²) of the current proposal (widen: sampler.widen unless
        given) and their log density."""
        mean, std = self._proposal()
        return self._gaussian(mean, (self.cfg.widen if widen is None else widen) * std, n)

    def _proposal(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The current proposal (mean, std), (d,) each; m0's moments (the problem's guess) at first."""
        if self.proposal is None:
            self.proposal = initial_moments(self.problem)
        return self.proposal

    @torch.no_grad()
    def refresh_proposal(self, nets) -> None:
        """Refit the proposal's mean and per-coordinate std to the networks' m by self-normalised
        importance sampling (``particles`` draws).  Why not a simulated cloud as in the
        time-dependent case: the stationary law needs no horizon, and one weighted fit costs a
        single forward pass.  A fit on fewer than 32 effective samples keeps the old proposal; a
        poor but usable fit still moves toward m, and the next refit (from closer) sharpens it."""
        y, log_q = self.proposal_sample(self.cfg.particles)
        zeros = torch.zeros(y.shape[0], 1, dtype=self.dtype, device=self.device)
        log_w = nets.density_field(zeros, self._out(y)).to(torch.float64).cpu() - log_q
        w = torch.softmax(torch.nan_to_num(log_w, nan=-math.inf), 0)
        ess = float(1.0 / (w * w).sum()) if torch.isfinite(w).all() else 0.0
        if ess < 32:
            return
        mean = (w.unsqueeze(-1) * y).sum(0)
        var = (w.unsqueeze(-1) * (y - mean) ** 2).sum(0)
        self.proposal = (mean, var.sqrt().clamp_min(1e-8))

    def _draw_time_dependent(self, nets) -> Batch:
        cfg, T, d = self.cfg, self.T, self.d
        S = cfg.time_slices
        per = max(1, math.ceil(cfg.n_interior / S))
        slice_t = self.slice_times(S)
        slice_t, slice_w = warp_times(slice_t, T, self.time_warp)
        wide = self._hjb_only_points(per)
        if self.euclidean:
            x = self._mix_box(self._kde_sample(slice_t, per + wide, wide))
        else:
            x = self.uniform(S * per).reshape(S, per, d)
        fp_scale = None
        if wide:  # `wide` more points in every slice, after its `per`, impose the HJB residual only
            scale = torch.full((per + wide,), math.sqrt((per + wide) / per), dtype=torch.float64)
            scale[per:] = 0.0
            fp_scale = scale.repeat(S)
            per = per + wide
        blocks = torch.arange(S).repeat_interleave(per)
        t = slice_t[blocks].unsqueeze(-1)
        x = x.reshape(-1, d)
        t, x, slice_id = self._adapt(nets, t, x, slice_t, blocks)
        slice_size = per if slice_id is blocks else None  # _adapt returns a new slice_id when it moves points

        quad_t = torch.cat([slice_t, torch.tensor([T], dtype=torch.float64)])
        quad_y = quad_logw = quad_log_mass0 = None
        if self.need_quadrature:
            if self.euclidean and not self.grid_quadrature:
                quad_y, quad_logw = self._gaussian_proposal(quad_t, cfg.n_conv or CONV_SAMPLES_EUCLIDEAN)
            elif self.follow_cloud:
                std = self._moments_at(quad_t)[1]
                lower, upper = _cloud_region(self._cloud_at(quad_t), std, self.lower, self.upper)
                grids = [self.shifted_grid(self.slice_points, lower[s], upper[s]) for s in range(S + 1)]
                quad_y = torch.stack([g[0] for g in grids])
                quad_logw = torch.stack([g[1] for g in grids])
                quad_log_mass0 = torch.zeros(S + 1, dtype=torch.float64)  # ∫m0 = 1; the grid may not cover m0
            else:
                grids = [self.shifted_grid(self.slice_points) for _ in range(S + 1)]
                quad_y = torch.stack([g[0] for g in grids])
                quad_logw = torch.stack([g[1] for g in grids])

        if self.euclidean:
            x0 = self.problem.sample_initial(cfg.n_initial, self.gen).to(torch.float64)
            std0 = self._cloud_moments()[1][0].sqrt().clamp_min(1e-8)
            init_x = self._mix_box(x0 + self._silverman_bandwidth() * std0 * self._randn(*x0.shape))
            # u(T) = G holds everywhere: the terminal points are widened like the HJB points.
            wide_terminal = self._hjb_only_points(cfg.n_terminal)
            term_x = self._mix_box(self._kde_sample(torch.tensor([T], dtype=torch.float64),
                                                    cfg.n_terminal + wide_terminal, wide_terminal)[0])
        else:
            init_x, term_x = self.uniform(cfg.n_initial), self.uniform(cfg.n_terminal)
        bnd_t, bnd_x, normal = self._boundary(ergodic=False)
        o = self._out
        return Batch(t=o(t), x=o(x), slice_id=slice_id.to(self.device), quad_t=o(quad_t),
                     quad_y=None if quad_y is None else o(quad_y),
                     quad_logw=None if quad_logw is None else o(quad_logw),
                     quad_log_mass0=None if quad_log_mass0 is None else o(quad_log_mass0),
                     self_normalised=self.euclidean, init_x=o(init_x), term_x=o(term_x),
                     bnd_t=bnd_t, bnd_x=bnd_x, bnd_normal=normal, slice_size=slice_size,
                     fp_scale=None if fp_scale is None else o(fp_scale),
                     time_scale=None if slice_w is None else o(slice_w.sqrt()[slice_id]))

    def _boundary(self, ergodic: bool):
        """Points on the faces of a Box with outward normals; None elsewhere."""
        if not self.box:
            return None, None, None
        n, d = self.cfg.n_boundary, self.d
        x = self.uniform(n)
        axis = torch.randint(0, d, (n,), generator=self.gen)
        side = torch.randint(0, 2, (n,), generator=self.gen)
        rows = torch.arange(n)
        x[rows, axis] = torch.where(side == 1, self.upper[axis], self.lower[axis])
        normal = torch.zeros(n, d, dtype=torch.float64)
        normal[rows, axis] = (2 * side - 1).to(torch.float64)
        t = torch.zeros(n, 1, dtype=torch.float64) if ergodic else self.T * self._rand(n, 1)
        return self._out(t), self._out(x), self._out(normal)

    # --------------------------------------------------------------- adaptive
    def _adapt(self, nets, t, x, slice_t=None, slice_id=None):
        """Replace the first adaptive_fraction of the points by density- or residual-placed ones."""
        cfg = self.cfg
        k = int(round(cfg.adaptive_fraction * x.shape[0])) if self.kind != "uniform" else 0
        if k == 0:
            return (t, x) if slice_t is None else (t, x, slice_id)
        if self.kind == "density":
            new_t, new_x = self._density_points(nets, slice_t, k)
        else:
            if self.pool is None:
                return (t, x) if slice_t is None else (t, x, slice_id)
            new_t, new_x = self._pool_points(k)
        t, x = t.clone(), x.clone()
        if slice_t is None:
            x[:k] = new_x
            return t, x
        # The points come slice by slice, so the first k would be whole early slices (all of t < T/2 at the
        # default half): take the same first places of every slice instead, leaving each slice its share of
        # uniform points.
        S = slice_t.shape[0]
        replaced = torch.arange(x.shape[0]).reshape(S, -1).T.reshape(-1)[:k]
        x[replaced] = new_x
        # Each adaptive point joins the slice nearest in time (the slice shares its ∫K m).
        nearest = (new_t.reshape(-1, 1) - slice_t.reshape(1, -1)).abs().argmin(1)
        slice_id = slice_id.clone()
        slice_id[replaced] = nearest
        t[replaced, 0] = slice_t[nearest]
        return t, x, slice_id

    def _density_points(self, nets, slice_t, k):
        """k points resampled from 4k candidates with probability ∝ m(t, x).

        Candidate times are drawn from the step's slice times ``slice_t`` (S,), so a
        renormalised density needs its per-time quadrature at S times, not at 4k distinct
        ones (that made a 1D step 5x slower); ergodic problems pass None."""
        if slice_t is None:
            cand_t = torch.zeros(4 * k, 1, dtype=torch.float64)
        else:
            cand_t = slice_t[torch.randint(0, slice_t.shape[0], (4 * k,), generator=self.gen)].unsqueeze(-1)
        cand_x = self._kde_sample(cand_t[:, 0], 1)[:, 0] if self.euclidean else self.uniform(4 * k)
        with torch.no_grad():
            if nets.renormalise:
                # The unnormalised density: the per-time normaliser (≈ 1, a quadrature per
                # distinct time) only reweights whole slices and would cost more than the step.
                m = torch.exp(nets.density_field(self._out(cand_t), self._out(cand_x))).to(torch.float64).cpu()
            else:
                m = nets.density(self._out(cand_t), self._out(cand_x)).to(torch.float64).cpu()
        m = torch.nan_to_num(m, nan=0.0, posinf=0.0).clamp_min(0) + 1e-12
        idx = torch.multinomial(m, k, replacement=True, generator=self.gen)
        return cand_t[idx], cand_x[idx]

    def _pool_points(self, k):
        """k points from the residual pool, jittered by 2 % of the box."""
        idx = torch.randint(0, self.pool.shape[0], (k,), generator=self.gen)
        pts = self.pool[idx]
        width = (self.upper - self.lower)
        x = pts[:, 1:] + 0.02 * width * self._randn(k, self.d)
        if self.torus:
            x = self.problem.domain.wrap(x)
        elif self.box:
            x = torch.minimum(torch.maximum(x, self.lower), self.upper)
        t = pts[:, :1]
        if self.T is not None:
            t = (t + 0.02 * self.T * self._randn(k, 1)).clamp(0, self.T)
        return t, x

    def refresh_pool(self, residual_fn, nets, step: int) -> None:
        """Residual kind: keep the candidates with the largest |residual| (called by the trainer)."""
        if self.kind != "residual" or step % self.cfg.refresh_every != 0:
            return
        n = 4 * self.cfg.n_interior
        if self.euclidean:
            slice_t = self.T * self._rand(8)
            x = self._kde_sample(slice_t, n // 8).reshape(-1, self.d)
            t = slice_t.repeat_interleave(n // 8).unsqueeze(-1)
        else:
            x = self.uniform(n)
            t = torch.zeros(n, 1, dtype=torch.float64) if self.T is None else self.T * self._rand(n, 1)
        score = residual_fn(self._out(t), self._out(x)).detach().to(torch.float64).cpu()
        keep = torch.topk(torch.nan_to_num(score, nan=0.0), max(1, n // 4)).indices
        self.pool = torch.cat([t, x], dim=1)[keep]
