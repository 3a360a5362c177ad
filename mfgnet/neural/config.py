"""Configuration of the neural solver: dataclasses validated on construction.

Every field declares its allowed values (:mod:`mfgnet.settings`); ``from_dict`` is what
the runner calls with the ``solver`` group plus the ``model``/``sampler``/``optim`` groups,
and unknown keys or out-of-range values raise :class:`~mfgnet.problems.ProblemError`
naming the field and its allowed range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mfgnet.settings import Settings, choice, flag, number, numbers, path

_INF = math.inf


@dataclass
class ModelConfig(Settings):
    """The two networks u_θ(t, x) and m_φ(t, x) (same architecture, separate weights)."""

    section = "model"

    kind: str = choice("mlp", "resmlp")
    width: int = number(64, 1, 4096, integer=True)
    depth: int = number(3, 1, 64, integer=True)
    activation: str = choice("tanh", "silu", "gelu", "sin", "softplus")
    # Torus: inputs enter as sin/cos(2πk x / L), k = 1..harmonics (exact periodicity).
    periodic_harmonics: int = number(1, 1, 64, integer=True)
    # Random Fourier features sin/cos(x̂ B) of the non-periodic inputs x̂ (x scaled to [-1, 1] on a
    # box), B ~ N(0, fourier_scale²); 0 = off, None = 16 on a box, off on a torus or R^d.  Why on a
    # box: 12000 steps, one seed, rel L2 m without -> with 16 at scale 2 (results/neural_zoo/means.md,
    # sixteenth session): box_congestion_1d 0.031 -> 0.019, box_two_crowds_1d 0.036 -> 0.021,
    # readme_box_1d 0.012 -> 0.008, box_aversion_strong_1d 0.183 -> 0.006, box_noisy_long_1d 0.136 -> 0.014,
    # box_two_crowds_2d 0.174 -> 0.093; a step costs ~16 % more.  Why not on R^d: lq_offset_1d 0.031 -> 0.117.
    fourier_features: int | None = number(None, 0, 4096, integer=True, optional=True)
    fourier_scale: float = number(2.0, 0.0, _INF, lo_open=True)
    init: str = choice("xavier", "kaiming", "default")
    # Time-dependent problems: for each c, the input feature 2 exp(−t/(c T)) − 1 beside the linear time input,
    # a finer clock for the early transient (a narrow crowd spreading and setting off in the first tenth of
    # T, where the zoo's space-time errors were made).  None: [0.1] on a box, none on a torus or R^d.
    # Measured on the zoo (results/neural_zoo/means.md, twenty-third session), rel L2 m without -> with [0.1]:
    # boxes box_narrow_far_1d 0.118 -> 0.077, box_bump_2d 0.089 -> 0.076, box_two_crowds_2d 0.079 -> 0.046,
    # box_two_crowds_1d 0.021 -> 0.018, box_noisy_long_1d 0.019 -> 0.014, readme_box_1d 0.005 -> 0.007; on the
    # circle mixed (torus_power_1d u 0.077 -> 0.049, but torus_bimodal_1d m 0.017 -> 0.051) and on R too
    # (r_two_crowds_1d 0.022 -> 0.018, lq_offset_1d 0.022 -> 0.050; lq_offset_2d 0.135 -> 0.106).  [0.03, 0.1]
    # took box_narrow_far_1d to 0.058 but box_bump_2d to 0.31 (m jumped at t ≈ 0+, between the time slices).
    time_scales: list[float] | None = numbers(None, 0.0, 100.0, lo_open=True, optional=True)
    # R^d only: add a separable quadratic in x (coefficients affine in t) to both outputs.
    quadratic_skip: bool = flag(True)
    # Degree in t̂ of the quadratic's coefficients (4: on B2 at d = 10 the affine choice
    # left m 9e-2 off, too little contraction at mid-times; degree 4 reached 2.8e-2).
    quadratic_time_degree: int = number(4, 0, 8, integer=True)
    # The quadratic's coefficients are gain × parameters: Adam moves a parameter by about lr per
    # step whatever its gradient, so the gain is the quadratic's own learning-rate factor.
    # Time-dependent problems (m0 fixes the base Gaussian; B2 d = 10, 2000 float32 steps: gain 30
    # gave rel L2 m 0.149 / u 0.023 against 0.025 / 0.013 with 1).
    quadratic_gain: float = number(1.0, 0.0, 1e4, lo_open=True)
    # Ergodic problems on R^d, whose m starts from the sampler's rough guess: ergodic B5 d = 10,
    # 600 float32 steps, guess N(0, I) for N(0, 0.54 I): m 0.197 with gain 1, 0.018 with 10,
    # 1.4e-3 with 30 (u 3.7e-4, |Δλ|/|λ| 3.5e-4).
    quadratic_gain_ergodic: float = number(30.0, 0.0, 1e4, lo_open=True)
    # Time-dependent R^d: the Gaussian fitted to m0 that the log-density is built on moves and
    # widens with t (learnable mean and log-width, polynomial in t/T of quadratic_time_degree).
    # Off by default: measured without -> with, one seed each: B2 d = 1, 2000 steps, rel L2 m
    # 0.0111 -> 0.0041, u 0.024 -> 0.013; B5 d = 10 (time-dependent), 600 steps, m 1.0e-3 ->
    # 7.2e-4; lq_offset_1d (the crowd travels 8 m0-widths), 2000 steps, m 1.25 -> 0.98, u 0.86 ->
    # 0.26, and 0.102 / 0.013 after 12000 steps (without it: m 2.1e3, blown up); B2 d = 10,
    # 2000 steps, m 0.025 -> 0.083; and
    # lq_offset_2d, 4000 steps, m 1.08 -> 183 (the widened base lets m grow where no point is).
    moving_base: bool = flag(False)
    # Density positive by construction: m = exp(net) or softplus(net).
    density_output: str = choice("exp", "softplus")
    # u(T, x) = G(x) by the network's form, u = G(x) + (T - t)/T · net, when G is local and does
    # not depend on m; also G(x, ∫K m(T)) (B2: the crowd's mean) where m(T) is renormalised on a grid
    # (box, torus, R, R²), with ∫K m(T) from the density network, refreshed before each loss; else the
    # terminal loss stays.  Why: with G as a loss term the box problems left u(T) and hence the
    # whole flow 10-80 % off; B2 on R and R², rel L2 m loss -> form on seeds 0 / 1 / 2: lq_narrow_1d 0.036 /
    # 0.038 / 0.067 -> 0.019 / 0.013 / 0.018, lq_offset_1d 0.008 / 0.012 / 0.015 -> 0.0014 / 0.0010 / 0.0007,
    # lq_offset_2d 0.022 / 0.028 / 0.023 -> 0.0054 / 0.012 / 0.0041; lq_terminal_pull_1d (seed 0) 0.32 -> 0.046
    # (results/neural_zoo/means.md, thirty-sixth session).  In 2D a step costs 1.13x (the refresh).
    hard_terminal: bool = flag(True)
    # On a box with hard_terminal, u = G + layer + (1 - t/T) net: HJB's boundary layer at the faces towards which G
    # rises (mfgnet.neural.networks.terminal_layer), so that ∂u/∂n = 0 for t < T by the form.  Without it the
    # corner (t = T at such a face, where G's slope contradicts ∂u/∂n = 0) is the largest HJB residual, and a
    # heavier HJB term spends u on it: box_wall_push_1d (G's slope 8.8 into the face x = 1) with loss.hjb=10 went
    # 0.017 -> 0.061 without the layer, 0.014 with it (its HJB peak 4.2 at the corner -> 0.45 at t = 0.02).
    # None: networks.default_terminal_layer(problem): on a time-dependent 1D box, the layer at each face whose
    # corner is strong (s² ν^{3/2} √T ≥ 4, s G's slope into the face: the corner's share of the HJB loss;
    # box_wall_push_1d 13.7, box_noisy_long_1d 1.3, the other original 1D boxes ≤ 0.03), none elsewhere; true:
    # at every face G rises into.  Not everywhere: alone it took box_narrow_far_1d 0.077 -> 0.118 and
    # box_two_crowds_2d 0.046 -> 0.077; with loss.hjb=10 on every rising face box_noisy_long_1d went 0.011 ->
    # 0.040, box_narrow_far_1d 0.018 -> 0.033 and box_steep_rise_1d (slopes 9 and 3) 0.015 -> 0.101 (at its
    # strong face only: 0.015).  One seed each; results/neural_zoo/means.md, 27th and 31st sessions.
    terminal_layer: bool | None = flag(None, optional=True)
    # m(0, x) = m0(x) by the form (time-dependent, exp output): "log": log m = log m0 + t̂ net
    # (m0 > 0 everywhere); "blend": m = (1 - s) m0 + s exp(net), s = 1 - exp(-t / (τ T)), also
    # for m0 that vanishes somewhere (6x(1 - x)); "heat": the blend with m0 replaced by its heat
    # flow e^{tνΔ} m0 (a spectral series, mfgnet.neural.heat: 1D/2D torus, or box where m0 has zero
    # slope at the faces); "auto": blend on a box or torus (on box_bump_1d blend reached 33 % where
    # log stalled at 73 %, relative FP form), the initial loss on R^d (there the log form left B2
    # d = 1 at rel L2 u 6.9e-2, the loss 2.4e-2); "off": the loss.
    # Heat is an option, not the default: 12000 steps, rel L2 m heat vs blend, torus_bimodal 0.033
    # vs 0.106 (a narrow crowd that spreads fast; 0.040 vs 0.106 with another seed at 4000 steps),
    # but torus_power 0.067 vs 0.048 (4000 steps, three seeds: 0.107-0.130 vs 0.093-0.098),
    # torus_low_noise 0.039 vs 0.037, torus_nonlocal 0.021 vs 0.019, torus_three_crowds 0.033 vs
    # 0.032, B3 at 4000 steps m 5e-4 vs 3e-4 (median of three seeds); on boxes whose m0 has a slope at
    # a face (series cut at 1e-3 of max m0, 4000 steps) box_bump 0.064 vs 0.049, box_narrow_far
    # 0.371 vs 0.209 (results/neural_zoo/means.md).
    hard_initial: str = choice("auto", "log", "blend", "heat", "off")
    # τ of the blend as a fraction of T: small enough that m0 + τT ∂t m(0) > 0 for narrow bumps.
    initial_blend_time: float = number(0.05, 0.0, 1.0, lo_open=True)
    # Time-dependent problems on a box, torus or R^d with d ≤ 2 (there on a grid over the bounding
    # box): m(t) divided by its quadrature mass at each t (times the mass of m0), so ∫m(t) = 1 to
    # quadrature accuracy at every t (the FP residual includes the normaliser's time derivative).
    # Why: mass leaked 8 % out of the README box otherwise, and on R r_two_crowds_1d ended with a
    # mass error of 8.9e-3 (2.8e-7 with it; results/neural_zoo/means.md, seventh session).
    renormalise: bool = flag(True)
    # With the blend form of m(0) and renormalise: the blend's free part divided by its own mass at t = 0 on the
    # fixed grid (times m0's), so that it carries m0's mass at t = 0 by construction.  The blend is m0 at t = 0
    # whatever the free part is; a free part with e^4-e^8 times m0's mass there swamps m0 at t = 0+ (the crowd flat
    # from t = 0+, a jump no slice sees).  None: default_free_mass_at_start(problem), on for time-dependent 1D
    # boxes, off elsewhere (not measured there).  Why: box_narrow_edge_1d seeds 1 / 2 12.1 / 23.0 % in m with the
    # mass term's entry at t = 0 (loss.mass_at_start, a penalty: e^3.7 left), 1.45 / 1.29 % with this form; its
    # harder neighbour box_narrow_face_1d seed 1 17.2 % with the entry, 1.44 % with the form; the other twelve 1D box
    # rows on seed 0 moved by factors 0.71-1.31 (steep rise 1.47 -> 1.72 %, congestion 1.61 -> 1.14 %), all within
    # targets (results/neural_zoo/means.md, fiftieth session, which has seeds 1 and 2).  Cost: one density-network
    # pass over the fixed grid per loss evaluation (MFGNetworks.shared_free_shift), ~1.1x per step in 1D.
    free_mass_at_start: bool | None = flag(None, optional=True)
    # Several populations (mfgnet.neural.populations): one u network and one m network shared by
    # all K populations, population k's one-hot code an extra input (its own initial form, base,
    # λ and renormalisation stay its own), instead of one pair of networks per population.  Off: level
    # in 1D (B6, segregation), worse on B6 in 2D (mfgnet.neural.populations has the numbers).
    population_input: bool = flag(False)


@dataclass
class SamplerConfig(Settings):
    """Collocation points, drawn fresh every step."""

    section = "sampler"

    # "density": adaptive_fraction of the interior points resampled ∝ the current m; "residual":
    # from a pool of large-residual points; "auto": density on time-dependent 1D and 2D box problems,
    # uniform elsewhere (see mfgnet.neural.sampling.resolve_kind for the measurements).
    kind: str = choice("auto", "uniform", "density", "residual")
    # None: default_interior_points, 1024 on a time-dependent 2D box (with 9000 steps there), else 512.
    n_interior: int | None = number(None, 1, 10**7, integer=True, optional=True)
    n_initial: int = number(256, 1, 10**7, integer=True)
    n_terminal: int = number(256, 1, 10**7, integer=True)
    n_boundary: int = number(128, 1, 10**7, integer=True)
    # Points of the (randomly shifted) periodic grid used for ∫m and ∫u; total, all axes.
    n_quadrature: int = number(256, 2, 10**7, integer=True)
    # Time-dependent problems: collocation times per step (points share quadrature per time).
    time_slices: int = number(16, 1, 10**5, integer=True)
    # Fraction of the slice-time density that follows the running PDE residual over time (32
    # bins); 0 = uniform stratified times.  Meant for the fast transient of a narrow m0 near
    # t = 0 and the layer of an incompatible G near T; off by default: 0.5 on box_bump_1d
    # left rel L2(m) at 54-70 % after 750 steps where uniform times had 14-20 %; on the zoo (default
    # steps) 0.5 made every box row worse (box_bump_1d m 0.016 -> 0.031, box_bump_2d 0.106 -> 0.137)
    # and helped torus_power_1d (u 0.077 -> 0.019, an offset of u made near T; m 0.049 -> 0.036)
    # (results/neural_zoo/means.md, twenty-first session).
    time_adaptive: float = number(0.0, 0.0, 1.0, )
    # Slice times crowded where the residual has its layers, with importance weights: each point's
    # HJB and FP residuals are multiplied by √ of the inverse density of its slice time, so the mean
    # squares estimate the same integrals over [0, T] as uniform slices (sampling.warp_times; the terms
    # averaged over slices, loss.weak_fp and the blend's mass term, are not reweighted):
    # "ends" t = T (1 − cos πr) / 2 crowds t = 0 (the early transient, the blend's layer at 0+) and
    # t = T (the rush into the target), "early" t = T r² only t = 0; "auto": "ends" on a time-dependent
    # problem on the circle or the line R, "early" on a time-dependent 2D box (with loss.boundary 10 there),
    # else "uniform" (sampling.resolve_time_warp has the measurements).
    time_warp: str = choice("auto", "uniform", "ends", "early")
    # Points per time slice for nonlocal couplings ∫K(x,y) m(t,y) dy (a shifted grid on a box or
    # torus, importance samples of the particle cloud on R^d above d = 2).  0: on a box or torus the
    # coarsest grid that integrates m0 and K m0 to 1e-3 (sampling.conv_grid_points: 64 for
    # torus_nonlocal_1d, where the former 256 doubled the wall time, 498 -> 243 s, for no gain),
    # 256 importance samples on R^d.
    n_conv: int = number(0, 0, 10**7, integer=True)
    # Grid points per time slice for the mass renormalisation when no nonlocal term needs n_conv,
    # and on R^d (d ≤ 2) for ∫K m too (0: sampling.mass_grid_points, the coarsest grid that
    # integrates m0 to 1e-3: 64 in 1D, 8²-32² in 2D on the bounding box or, on R² with a local or
    # mean coupling, on the particle cloud's region, sampling.follows_cloud).  Why: its
    # t-derivative is differentiated twice; with 256 points per slice a 1D step cost twice as
    # much, 64 are spectrally accurate.
    n_mass: int = number(0, 0, 10**7, integer=True)
    # Adaptive kinds: fraction of the interior points placed by the adaptive rule, the same share of every
    # time slice (sampling.CollocationSampler._adapt; until the forty-second session whole early slices).
    adaptive_fraction: float = number(0.5, 0.0, 1.0)
    refresh_every: int = number(50, 1, 10**9, integer=True)
    # Euclidean domains: particles simulated under the current policy to find where m has mass.
    particles: int = number(2048, 16, 10**8, integer=True)
    particle_steps: int = number(32, 1, 10**5, integer=True)
    # Proposal widening (std factor) around the particle cloud.
    widen: float = number(1.5, 1.0, 100.0)
    # Euclidean domains: fraction of points drawn uniformly in problem.bounding_box().
    box_fraction: float = number(0.0, 0.0, 1.0)
    # Time-dependent R^d: each time slice gets this fraction of its interior points more, drawn wider
    # than the crowd (around each particle a kernel of hjb_bandwidth × the cloud's standard deviation,
    # against Silverman's 0.23-0.5 for the others), where only the HJB residual is imposed; the
    # Fokker-Planck residual stays on the points that follow the crowd.  Why: the crowd is steered by
    # u's curvature, which the HJB pins through its x² part over the points' spread (lq_offset_2d: m was
    # the crowd of u's feedback to 1 % in variance, and that crowd 12-20 % too wide).  An option, off by
    # default: rel L2 m without -> with (results/neural_zoo/means.md, twenty-fourth session), fraction 0.5 and
    # bandwidth 1.2: lq_offset_1d 0.023 -> 0.013, lq_offset_2d 0.135 -> 0.106, B2 d = 10 0.0235 -> 0.0230,
    # B7 d = 2 0.112 -> 0.109; fraction 1 and bandwidth 6: lq_offset_2d 0.011 / u 0.0025 in 264 s, all targets met
    # (bandwidth 2: 0.066, 3: 0.031, 4: 0.023; B7 d = 2 0.094 at 4), lq_offset_1d 0.0059 (0.028 at 3); but two
    # crowds (r_two_crowds_1d; the cloud's std spans both and the gap) 0.022 -> 0.065 (seed 0, (1, 6)), seed 1
    # 0.029 -> 0.041 (0.5, 1.2), 0.053 (1, 2).  Where G grows faster than quadratically, (1, 6) diverges
    # (r_split_1d, G = (x² - 1)²: the wide points' HJB residual ~1e8); with the points kept in the bounding
    # box it still diverged, and lq_offset_2d lost its gain (0.011 -> 0.029): not kept (twenty-fifth session).
    # Only with sampler.kind=uniform (R^d's default).
    hjb_fraction: float = number(0.0, 0.0, 10.0)
    hjb_bandwidth: float = number(1.2, 0.0, 100.0, lo_open=True)


@dataclass
class OptimConfig(Settings):
    """Adam (joint or alternating) with a schedule, then an optional L-BFGS finish."""

    section = "optim"
    training: str = choice("joint", "alternating")
    alternate_every: int = number(1, 1, 10**6, integer=True)
    # Joint training: the first u_first_steps Adam steps move u alone (its loss terms, m held), so that u
    # catches up with a warm start's crowd before m moves.  None: default_u_first_steps, steps // 8 after a
    # Gaussian start (500 of the default 4000), else 0.  Why: the Gaussian start leaves lq_sharp_pull_1d's pair
    # 5.6 % / 5.5 % off the exact one (m / u), and one joint Adam step at full rate took u to 256 %; 4000 joint
    # steps ended at m 58 % (results/neural_zoo/means.md, fortieth session).
    u_first_steps: int | None = number(None, 0, 10**9, integer=True, optional=True)
    lr: float = number(3e-3, 0.0, 10.0, lo_open=True)
    schedule: str = choice("cosine", "constant", "exponential")
    # Learning rate at the last step as a fraction of lr (cosine / exponential).
    final_lr_factor: float = number(0.05, 0.0, 1.0, lo_open=True)
    warmup_steps: int = number(0, 0, 10**9, integer=True)
    grad_clip: float = number(1.0, 0.0, _INF)
    # L-BFGS iterations after Adam, on one fixed batch; None: default_lbfgs_steps(problem, steps), 300 after a
    # run of at least 2000 Adam steps on a time-dependent problem on R^d (d = 1 or 3..10) or a 1D circle, else
    # none (see there).
    lbfgs_steps: int | None = number(None, 0, 10**6, integer=True, optional=True)
    lbfgs_lr: float = number(1.0, 0.0, 10.0, lo_open=True)
    # "float64": run L-BFGS in double precision even after float32 Adam (dtype="float32"): the
    # line search needs differences of the loss that float32 rounds away near the optimum.
    lbfgs_dtype: str = choice("float64", "same")
    # L-BFGS fits one fixed batch, which can leave the rest of the domain worse: on a time-dependent
    # problem its iterations are kept only while the solver's own residual check on fresh points
    # (mfgnet.neural.check) stays within lbfgs_guard times its value before L-BFGS; checked after every
    # log_every iterations, and the first check above the bound stops L-BFGS and restores the last
    # weights that passed.  None: no guard.  Why 2: unguarded, the checks of the rows L-BFGS helped rose 1.5x
    # or less, those of the rows it hurt 10-14x (default_lbfgs_steps' comment).
    lbfgs_guard: float | None = number(2.0, 1.0, _INF, optional=True)


@dataclass
class LossConfig(Settings):
    """Loss weights and the forms of the terms."""

    section = "solver.loss"

    # Weight of the HJB residual; None: default_hjb_weight(problem), 10 on time-dependent R^d and 1D and 2D
    # boxes, else 1 (on 2D boxes with `hjb_density` 1, below).  On 1D boxes since the thirty-first session (rel
    # L2 m, weight 1 -> 10 with the terminal layer's default): box_narrow_far_1d 0.077 -> 0.018, box_bump_1d 0.015
    # -> 0.008, box_two_crowds_1d 0.018 -> 0.008,
    # m gained on ten of the eleven 1D box rows; box_wall_push_1d 0.017 -> 0.061 without the layer, 0.0135 with
    # it; lost: box_center_pull_1d 0.011 -> 0.013 (u 0.0038 -> 0.0025), box_noisy_long_1d's u 0.012 -> 0.016.
    # On 2D boxes alone it took box_two_crowds_2d 0.046 -> 0.185, hence `hjb_density` there.
    # Why 10 there (results/neural_zoo/means.md, twenty-fifth session; rel L2 m / u, weight 1 -> 10): the R
    # rows' error was u's feedback (m is the crowd its u steers, to 1-2 %), and a heavier HJB term pins u where
    # the crowd is: lq_offset_1d 0.0229 / 0.0033 -> 0.0069 / 0.0013, lq_offset_2d 0.135 / 0.0083 -> 0.0216 /
    # 0.0030 (4: 0.050), r_two_crowds_1d 0.0220 / 0.0055 -> 0.0149 / 0.0034, r_split_1d 0.0615 / 0.0345 ->
    # 0.0283 / 0.0201 (4: 0.037), B8 trade crowding m 0.0105 -> 0.0014.  Above d = 2 since the twenty-eighth
    # session (results/neural_dimension/README.md; seed 1, 4000 steps, B5 600): B7 d = 5 0.101 / 0.023 ->
    # 0.021 / 0.0024, d = 10 0.088 / 0.016 -> 0.033 / 0.0050 (seed 0: 0.092 -> 0.033), B2 d = 10 0.0150 ->
    # 0.0125, d = 20 0.088 -> 0.064; it loses where it has room: B2 d = 5 0.0076 -> 0.0100, B5 d = 5 4.8e-4 ->
    # 6.6e-4 (its residual check 0.009 -> 0.012, no longer converged), d = 10 1.1e-3 -> 2.0e-3.
    hjb: float | None = number(None, 0.0, _INF, optional=True)
    # The HJB term's weight in the density network's gradient (which reaches m through F(m) in the HJB residual);
    # the value network's stays `hjb`.  None: default_hjb_density(problem, hjb), 3 on time-dependent 2D boxes (1
    # before the forty-eighth session), else `hjb` (one joint loss).  Why: a heavy HJB term pins u, but through the
    # coupling it also bends m towards whatever lowers HJB (box_two_crowds_2d, F = 2m: weight 10 left m 56 % off at
    # t = 0.05, 18.5 % in space-time).  2D boxes, rel L2 m / u, hjb 1 -> hjb 10 with hjb_density 1 (thirty-second
    # session, results/neural_zoo/means.md): box_bump_2d 0.076 / 0.027 -> 0.055 / 0.025 (seed 1: 0.081 / 0.033 ->
    # 0.058 / 0.028), box_two_crowds_2d 0.046 / 0.021 -> 0.038 / 0.013 (seed 1: 0.055 / 0.021 -> 0.043 / 0.011),
    # box_wall_push_2d (added as the unseen check) 0.277 / 0.057 -> 0.092 / 0.019 but seed 1 0.290 -> 0.269 (no
    # gain); all three still miss 3e-2.
    # Why 3 there now (under FP weight 0.1; rel L2 m in %, share 1 -> 3, seeds 0 / 1 / 2;
    # results/neural_zoo/means.md, forty-eighth session): box_two_crowds_2d 3.35 / 3.47 / 3.00 -> 2.62 / 2.63 / 2.58
    # (now within 3 % on every seed), box_wall_corner_2d 8.05 / 8.14 / 7.63 -> 6.57 / 7.07 / 7.40, box_obstacle_2d
    # 4.58 / 4.44 / 6.16 -> 4.19 / 3.31 / 4.04, box_bump_2d 2.62 / 2.96 / 2.61 -> 2.78 / 2.60 / 2.66; lost:
    # box_wall_push_2d 5.37 / 7.33 / 5.83 -> 5.24 / 9.08 / 7.41 (m(T) against the face 20 -> 25 % on seed 1), u
    # there 1.1-2.1 -> 1.3-2.9.  Early times gain, late ones lose.  A share of 0.3 did worse, 5 and 10 no better
    # than 3 (continuing the corner's pair).  Unseen checks: box_three_crowds_2d (declared before any run of it)
    # 3.46 / 3.33 / 3.26 -> 2.86 / 2.88 / 3.40 (seeds 0 / 1 / 2: two gains, one loss); the 2D segregation game of
    # two populations lost, m 34 / 31 -> 37 / 34 % (one seed).
    # Not on R^d: B2 d = 10 0.0188 -> 0.0214.
    hjb_density: float | None = number(None, 0.0, _INF, optional=True)
    # Weight of the Fokker-Planck residual; None: default_fp_weight(problem), 0.1 on the time-dependent circle and
    # (since the forty-seventh session) on time-dependent 2D boxes, else 1.  Why 0.1 on the circle
    # (results/neural_zoo/means.md, twenty-sixth session; rel L2 m / u, weight 1 -> 0.1):
    # as with hjb = 10 on R, u's feedback was the error, but hjb = 10 also outweighed the renormalised mass term
    # (torus_bimodal_1d 0.017 -> 0.036, the mass term 80 % of the residual); a lighter FP term keeps it:
    # torus_bimodal_1d 0.0170 / 0.0107 -> 0.0049 / 0.0023, torus_three_crowds_1d 0.0078 / 0.0019 -> 0.0021 /
    # 0.0009, torus_low_noise_1d 0.0208 / 0.0070 -> 0.0087 / 0.0017, torus_nonlocal_1d 0.0231 / 0.0021 ->
    # 0.0083 / 0.0024, torus_power_1d 0.049 / 0.077 -> 0.013 / 0.011.  Not on boxes: there it (or hjb = 10)
    # breaks the no-flux condition where G pushes the crowd into a face (box_wall_push_1d 0.017 -> 0.034 / 0.061)
    # and lost two narrow 2D crowds under the 2D defaults of then (box_two_crowds_2d 0.046 -> 0.129 / 0.185).
    # Why 0.1 on 2D boxes now (under 1024 points, hjb_density 1, early slice times and no-flux weight 10; rel L2 m /
    # u in %, weight 1 -> 0.1, seeds 0 / 1 / 2; results/neural_zoo/means.md, forty-seventh session): box_bump_2d
    # 4.34 / 4.71 / 4.75 -> 2.62 / 2.96 / 2.61 (u 1.1-1.6 both), box_two_crowds_2d 4.82 / 5.39 / 5.01 -> 3.35 / 3.47 /
    # 3.00 (u 0.5-0.8 -> 0.7-1.1), box_wall_push_2d 8.19 / 7.97 / 8.11 -> 5.37 / 7.33 / 5.83 (u 0.8-1.0 -> 1.1-2.1),
    # box_wall_corner_2d 10.66 / 12.76 / 11.26 -> 8.05 / 8.14 / 7.63 (u 0.8-1.1 -> 1.1-1.7), and the unseen check
    # box_obstacle_2d 6.93 / 8.05 / 6.96 -> 4.58 / 4.44 / 6.16 (u 1.2-1.3 -> 1.1-2.3); weight 0.3 and 0.03 (continuing
    # the corner's trained pair) did less.  It lost on the 2D segregation game of two populations (31 / 28 -> 34 / 31).
    # The density network then follows HJB's F(m) more than the FP residual, which grows (the residual check's
    # largest term) while m gets closer to the reference; the 1D boxes were not measured and keep 1.
    fp: float | None = number(None, 0.0, _INF, optional=True)
    # Data terms weigh 10: with weight 1 the residual terms won and u(T) stayed 10 % off (B2, B3).
    terminal: float = number(10.0, 0.0, _INF)
    initial: float = number(10.0, 0.0, _INF)
    # Weight of the no-flux terms on a box; None: default_boundary_weight(problem), BOUNDARY_WEIGHT_2D_BOX = 10 on
    # a time-dependent 2D box, else 1.  Why 10 there, together with sampler.time_warp "early" (auto there): under
    # early slice times the no-flux term on u was the largest (G has a normal slope at the faces a crowd ends on);
    # the pair, rel L2 m on seeds 0 / 1 / 2 (results/neural_zoo/means.md, forty-fourth and forty-fifth sessions):
    # box_wall_corner_2d 19.1 / 19.1 / 19.5 -> 10.7 / 12.8 / 11.3 %, box_wall_push_2d 9.24 / 9.15 / 10.5 -> 8.19 /
    # 7.97 / 8.11 %, box_bump_2d 4.70 / 4.96 / 4.63 -> 4.34 / 4.71 / 4.75 %, but box_two_crowds_2d 3.23 / 3.45 /
    # 3.17 -> 4.82 / 5.39 / 5.01 %; u gained on all twelve runs (corner 4.4-4.7 -> 0.8-1.1 %).  Unseen checks:
    # box_obstacle_2d 7.12 / 6.70 / 6.02 -> 6.93 / 8.05 / 6.96 % (u 1.95 / 1.67 / 1.51 -> 1.22 / 1.22 / 1.33 %), the 2D
    # segregation game 38.9 / 34.8 -> 31.0 / 27.7 % (one seed).  Kept for the worst row (19.5 -> 12.8 % at most) and
    # u, at a cost in m on the two crowds and on two obstacle seeds.  Weight 10 alone (uniform times) did not help
    # (corner 19.4 %, two crowds 3.74 %; five rows lost in earlier sessions), nor did the warp alone (two crowds 4.3 %).
    boundary: float | None = number(None, 0.0, _INF, optional=True)
    # ∫m - 1 where m is not normalised by construction; with model.renormalise and a blend form of
    # m(0), the squared log of the mass before renormalising, weighted by m0's share e^{-t/τ} (else
    # the free part grew by e^16 and m jumped to a flat crowd at t = 0+: torus_bimodal_1d, 18000
    # steps, rel L2 m 0.105 without, 0.017 with; results/neural_zoo/means.md, seventeenth session).
    mass: float = number(1.0, 0.0, _INF)
    # With the blend (or heat) form of m(0) and renormalised mass: the mass term also holds the free part's own mass
    # at t = 0 (one more entry beside the slices', of weight 1), where the blend is m0 whatever the free part is: a
    # penalty for what model.free_mass_at_start holds by construction (the entry is then about 0).  An option, off:
    # it took box_narrow_far_1d's seed 1 from 36.5 to 1.6 % in m (forty-ninth session) but left box_narrow_edge_1d's
    # seeds 1 and 2 at 12.1 and 23.0 % (e^3.7 left at t = 0), where the form gives 1.45 and 1.29 % (fiftieth;
    # results/neural_zoo/means.md).
    mass_at_start: bool = flag(False)
    mean_zero: float = number(1.0, 0.0, _INF)
    # Weak form of the Fokker–Planck equation on a time-dependent box with renormalised mass: at every
    # slice, ∫ m_t φ − ν ∫ m Δφ + ∫ m ∂pH(∇u)·∇φ = 0 for the no-flux cosines φ_k up to weak_fp_modes
    # per axis, by the slice's quadrature; the mean of its squares over slices and modes, each mode
    # scaled by 1 / (1 + |ω_k|²); on a torus its Fourier modes.  m's derivatives do not enter it.  An option,
    # off (0) by default: weight 100 with loss.fp=0 (the weak form alone) gave box_narrow_far_1d m 0.029 /
    # u 0.0066 (defaults 0.077 / 0.032) and u 0.006-0.008 on three other misses, but m lost elsewhere
    # (box_wall_push_1d 0.017 -> 0.090, torus_power_two_1d 0.093 -> 0.145); beside the strong FP term
    # (fp 1 or 0.1) it did not rescue the rows a lighter FP term loses (results/neural_zoo/means.md,
    # twenty-ninth session).
    weak_fp: float = number(0.0, 0.0, _INF)
    weak_fp_modes: int = number(16, 1, 256, integer=True)
    # Weight of the gradient-enhanced HJB term, the mean of |∇x r|² over the interior points (r the HJB
    # residual; mfgnet.neural.losses.hjb_gradient_term); None: default_hjb_gradient(problem), 1 on time-dependent
    # problems on R and R², else 0.  Why on R^d: a narrow crowd's width follows u's curvature across it, which
    # changes r there only by about (curvature error) × width², so the plain residual hardly sees it; ∇x r sees
    # it × width (results/neural_zoo/means.md, thirty-eighth session; zoo, rel L2 m without -> with, seeds 0 / 1
    # / 2 where run): lq_terminal_pull_1d 0.046 / 0.088 / 0.066 -> 0.0057 / 0.0064 / 0.0187 (its crowd 7 % too
    # wide before; u's curvature at the crowd 1.18-1.30 against 1.42-1.50, after 1.38-1.51), lq_narrow_1d
    # 0.019 / 0.0125 -> 0.0047 / 0.0033, lq_offset_1d 0.0014 -> 0.0003, lq_offset_2d 0.0054 -> 0.0011,
    # r_two_crowds_1d 0.0046 -> 0.0039, r_split_1d 0.027 -> 0.015; weight 0.1: lq_terminal_pull_1d 0.024, 10:
    # 0.0052.  A step costs 1.55-1.64x (interleaved blocks).  Not on boxes and circles, where r's gradient is
    # large in the layers at the faces and near t = 0 and the term drowns the rest: box_narrow_far_1d 0.018 ->
    # 0.33, box_bump_2d 0.055 -> 0.26, torus_power_two_1d 0.038 -> 0.077; nor above d = 2, where it did not
    # help: B2 d = 10 (4000 steps) m 0.0188 -> 0.0197, u 0.0101 -> 0.0096.
    hjb_gradient: float | None = number(None, 0.0, _INF, optional=True)
    # "grad_norm": gradient-norm balancing after Wang, Teng & Perdikaris (2021): every
    # adapt_every steps each data weight moves towards mean|∇L_pde| / mean|∇L_i|.
    adaptive: str = choice("none", "grad_norm")
    adapt_every: int = number(50, 1, 10**9, integer=True)
    adapt_alpha: float = number(0.1, 0.0, 1.0, lo_open=True)
    # FP residual divided by m (scale-free; the natural form for m = exp(net)) or raw.
    fp_form: str = choice("relative", "density")
    # The FP form (and the no-flux flux form) on bounded time-dependent problems; "same" = fp_form.
    # Why "density": on box_bump_1d (hard m(0), u(T)) FP / m stalled at rel L2(m) 33 % (also with
    # FP / (m + floor)), FP · 1 reached 18-20 %; the ergodic torus and R^d keep fp_form, which
    # their benchmarks were tuned on.
    fp_form_bounded: str = choice("density", "same", "relative")
    # m(0) = m0 compared in log (scale-free) or value form; "auto": log for exp output.
    initial_form: str = choice("auto", "log", "value")
    laplacian: str = choice("auto", "exact", "hutchinson")
    # How the residuals' derivatives are formed: "forward" carries value, ∇ and Δ through the networks in
    # one pass (mfgnet.neural.jets) wherever supported (quadratic H, exact Laplacian, the MLP core with
    # tanh/sin/softplus/silu; ergodic problems, time-dependent ones without the heat form on a box, torus or
    # R^d), else nested autograd; "auto" does so on ergodic problems and on time-dependent 2D boxes and tori
    # (lq_offset_2d on R²: 73.0 / 72.9 ms, no gain),
    # where it pays: Adam step jets / autograd, interleaved medians, B1 0.70-0.76x (d = 1, 2),
    # box_bump_2d 0.72x, but in 1D torus_bimodal_1d 0.89x, torus_three_crowds_1d 0.94x, torus_low_noise_1d
    # 0.97x, box_congestion_1d 1.03x (G and log m0 are differentiated by autograd at every step; too little
    # to re-run the 1D rows for); "autograd" never (results/neural_zoo/means.md).
    derivatives: str = choice("auto", "forward", "autograd")
    # Compile the networks' jets (where "derivatives" uses them) with torch.compile: fused loops instead
    # of one pass over memory per elementwise operation.  Off by default: it needs a C++ compiler, takes
    # seconds per distinct shape and dtype (training, the residual check, the float64 L-BFGS finish),
    # and falls back to the plain jets, with a warning, where compiling fails.  Measured on B1 d = 2
    # (float32, 1024 points, one thread, three 150-step runs each): 12.7-13.0 ms a step plain,
    # 9.3-9.9 ms compiled (0.75x), 6 s to compile (results/neural_zoo/means.md, twenty-second session).
    compile_jets: bool = flag(False)
    hutchinson_probes: int = number(4, 1, 10**4, integer=True)
    # "auto" uses Hutchinson when d > this.
    hutchinson_above_dim: int = number(6, 0, 10**6, integer=True)
    # Ergodic ∫m = 1, ∫u = 0: "hard" divides/shifts by a quadrature each step, "penalty" adds losses.
    normalization: str = choice("hard", "penalty")
    # Ergodic λ: "projected" = least-squares optimum of the HJB loss each step (no lag);
    # "trainable" = a parameter with its own learning rate lambda_lr.
    lambda_mode: str = choice("projected", "trainable")
    lambda_lr: float = number(5e-2, 0.0, 10.0, lo_open=True)
    # Nonlocal couplings: let gradients flow through ∫K m (else treated as data each step).
    differentiate_conv: bool = flag(True)
    # Causal weighting of the time slices (after Wang, Sankaran & Perdikaris 2022), in each
    # equation's own direction: FP slice i weighs exp(-ε Σ_{k<i} L_fp(t_k)) (forward from t = 0),
    # HJB slice i weighs exp(-ε Σ_{k>i} L_hjb(t_k)) (backward from T); weights detached.
    # Off by default: on box_bump_1d (ε = 1) rel L2(m) 18 % against 20 % without, within noise; with
    # ε = 0.1 on the zoo (12000 steps) mixed: torus_three_crowds 0.032 -> 0.014, box_congestion 0.031 ->
    # 0.028, box_narrow_far 0.120 -> 0.111, but box_bump_2d 0.108 -> 0.36, torus_low_noise 0.037 -> 0.047
    # (results/neural_zoo/means.md, ninth session).
    # "relative": the same with the sums divided by their total (ε = share of the residual).
    causal: str = choice("none", "slices", "relative")
    causal_epsilon: float = number(1.0, 0.0, _INF, lo_open=True)


@dataclass
class NeuralSolverConfig(Settings):
    """All settings of :func:`mfgnet.neural.solve_neural`."""

    section = "solver"

    # None: the run's top-level seed (0 when called from Python).
    seed: int | None = number(None, 0, 2**63 - 1, integer=True, optional=True)
    device: str = choice("auto", "cpu", "cuda")
    # float32 with 4000 steps, measured on the zoo against float64 with 2000 (about the same wall
    # time: a float32 step costs ~2/3): m better on 8 of 10 time-dependent 1D problems (e.g.
    # box_two_crowds 0.093 vs 0.195, torus_low_noise 0.116 vs 0.335; worse on box_narrow_far
    # 0.468 vs 0.415 and box_noisy_long 0.167 vs 0.147), both ergodic problems better and
    # converged (results/neural_zoo/means.md).  float64 remains a choice (e.g. for tests to
    # round-off); L-BFGS runs in float64 anyway (optim.lbfgs_dtype).
    dtype: str = choice("float32", "float64")
    # Adam steps; None: default_steps(problem), 12000 for a time-dependent problem on a 1D box, 18000
    # on a circle, 11000 on a 2D box or torus and 4000 otherwise (see there for the measurements).
    steps: int | None = number(None, 0, 10**9, integer=True, optional=True)
    checkpoint_every: int = number(500, 1, 10**9, integer=True)
    checkpoint_dir: str | None = path(None)
    resume: bool = flag(False)
    # One log line (INFO) every log_every steps; DEBUG otherwise.
    verbose: bool = flag(False)
    # A progress bar with ETA and the current losses (standard error, after a few seconds).
    progress: bool = flag(True)
    log_every: int = number(100, 1, 10**9, integer=True)
    # Final RMS residual under which diagnostics.converged is True.
    tolerance: float = number(1e-2, 0.0, _INF, lo_open=True)
    # Time-dependent problems in d <= 2: the pair (u, m) is checked as a fixed point on a grid
    # (mfgnet.neural.equilibrium): m against the crowd that u's feedback produces, u against the value
    # of the best response to m (relative L2 each), and, where neither fails, m and u against the grid's
    # equilibrium that Newton reaches from the pair (mfgnet.grid.equilibrium_distance).  All within this
    # tolerance (and the check's grids resolving it) make converged true whatever the residual; any beyond
    # it plus its grid's error makes it false whatever the residual (None: no check).  The residual cannot
    # see a crowd that jumps at t ≈ 0: the neural social optimum of crowd_aversion (F = 4m) ended at residual 0.0037,
    # with m uniform from t = 0.05 on and a crowd gap of 0.52 (results/price_of_anarchy/).  0.03: the
    # zoo's accuracy target for m (issue 11), applied to both gaps.
    equilibrium_tolerance: float | None = number(3e-2, 0.0, _INF, lo_open=True, optional=True)
    # Fresh evaluation points for the final residual.
    n_eval: int = number(2048, 1, 10**8, integer=True)
    # NaN/Inf or a diverging loss (above divergence_factor × the best seen): "stop" restores the
    # networks at the lowest loss seen and warns, "raise" raises NonFiniteLossError.
    on_nonfinite: str = choice("stop", "raise")
    divergence_factor: float = number(1e3, 1.0, lo_open=True)
    # Consecutive steps above divergence_factor × the best before "diverging" stops the run
    # (single-batch spikes pass; see Trainer._diverged).
    divergence_patience: int = number(50, 1, 10**9, integer=True)
    # CPU intra-op threads during the solve (restored after); 0 leaves torch's setting.  The
    # default 1 is deliberate: PINN-sized ops are too small to split, and on a shared machine
    # two spinning threads per op made a step 15x slower in our measurement.
    cpu_threads: int = number(1, 0, 1024, integer=True)
    # d <= 2: "grid" fits u_θ and the density network to a coarse grid solve before the residual
    # training (mfgnet.neural.warmstart; never when resuming from a checkpoint).  Cells per axis:
    # None = 128 in 1D, 32 in 2D.  Off by default: on four hard 1D zoo problems the fit alone
    # (~25 s) was 2-7 % off the fine reference in m, but 500 residual steps after it drifted to
    # 12-89 % (the residual loss does not hold the fitted state; results/neural_warmstart.md).
    # Several populations: one coupled coarse solve, each pair of networks fitted to its part
    # (mfgnet.neural.warmstart.coarse_population_solutions).
    # "initial": the density network is fitted to m(t, ·) = m0 at every t (no grid, 2-4 s), so that
    # the blend form of m(0) = m0 cannot move mass faster than the dynamics (initial_fit).
    # "gaussian" (time-dependent R^d): the game among Gaussian crowds first, u_θ trained on HJB while
    # the base Gaussian follows particles simulated under u (mfgnet.neural.gaussian_start).
    # "auto": "initial" where a blend form is used (model.hard_initial "blend" or "heat": time-
    # dependent box or torus), "gaussian" on time-dependent R^d up to d = 2 (at d = 10 it made m worse:
    # gaussian_start.AUTO_MAX_DIM), else off.
    # Gaussian start (2000 steps, then the default 4000 residual steps), rel L2 m / u without -> with:
    # lq_offset_1d 0.751 / 0.128 -> 0.027 / 0.006 (mass 9e-4, 194 s: all targets met),
    # r_two_crowds_1d (bimodal m0, local congestion) 0.689 / 0.092 -> 0.033 / 0.010 (one seed each;
    # results/neural_zoo/means.md, sixth session).
    # Measured on the zoo (results/neural_zoo/means.md), rel L2 m without -> with the fit:
    # 4000 steps box_narrow_far 0.468 -> 0.209, box_bump 0.100 -> 0.049, box_two_crowds 0.093 ->
    # 0.104, torus_power 0.100 -> 0.098, torus_bimodal 0.107 -> 0.106; 12000 steps narrow_far
    # 0.461 -> 0.120, readme_box 0.024 -> 0.012, torus_nonlocal 0.033 -> 0.019, noisy_long 0.152 ->
    # 0.136, congestion 0.026 -> 0.031, low_noise 0.032 -> 0.037 (one seed each).
    warm_start: str = choice("auto", "off", "grid", "initial", "gaussian")
    warm_start_cells: int | None = number(None, 8, 4096, integer=True, optional=True)
    # None: 1000 steps for the grid fit, 500 for the initial fit, 2000 for the Gaussian start but at
    # most steps // 2 (warmstart.default_warm_start_steps).
    warm_start_steps: int | None = number(None, 0, 10**7, integer=True, optional=True)
    model: ModelConfig = field(default_factory=ModelConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)


# Adam steps of a time-dependent problem on a 1D box when ``steps`` is None.  A 1D box step costs ~15 ms on one
# torch thread with the Fourier features (box rows: 12000 steps in 172-203 s beside one other job, sixteenth
# session; ~50 ms with three jobs on two cores), so 18000 would be at the edge of the 5-minute budget.
# On the zoo (with the initial fit) 12000 steps took rel L2(m)
# from 0.05-0.21 at 4000 steps to 0.012-0.037 on 7 of 10 time-dependent 1D problems, 0.05-0.14
# on the other three (results/neural_zoo/means.md).  Not on R: lq_offset_1d, 0.751 at 4000
# steps, blew up at 12000 (m 2.1e3, mass 1e4 on the evaluation grid).  In 2D and above a step
# costs 3-10x more.  4000 stays the default there.
STEPS_1D_TIME_DEPENDENT = 12000
# On a 1D circle a step is cheaper (no Fourier features, no no-flux term: 10.8-14.1 ms against 15.1 ms
# for box_bump_1d, 50-step blocks interleaved at load ~1), so 18000 steps fit the budget there
# (195-254 s of steps).  Measured (sixteenth session, one seed, beside one or two other jobs):
# torus_three_crowds_1d rel L2 m 0.032 -> 0.0090, torus_low_noise_1d 0.037 -> 0.029.
STEPS_1D_TORUS_TIME_DEPENDENT = 18000
# A time-dependent problem on a 2D box or torus: since the mass grid follows m0's scale (12² points
# per slice on box_bump_2d instead of 24², sampling.mass_grid_points) a 2D step costs 27-35 ms
# instead of 66 ms; box_bump_2d with density points went from rel L2 m 0.206 (4000 steps) to 0.108
# (8000 steps, 378 s with three jobs on two cores; results/neural_zoo/means.md, seventh session).
# Twenty-first session: with the forward jets (loss.derivatives=auto in 2D) a step costs 0.72x, so 11000
# steps take about the wall of 8000 before: box_bump_2d rel L2 m 0.106 -> 0.089 (255 s beside another
# job), box_two_crowds_2d 0.103 -> 0.079 (219 s); at 8000 steps the jets gave 0.105 and 0.103.
# Forty-third session: 1024 interior points and 9000 steps (a step costs 1.2x that of 512: about the wall of
# 11000 at 512) kept box_wall_push_2d out of the state two of three seeds had ended in, rel L2 m on seeds 0 / 1 / 2
# 9.51 / 27.1 / 23.4 % -> 9.24 / 9.15 / 10.5 %, with box_bump_2d 4.65 / 4.86 / 4.61 % -> 4.70 / 4.96 / 4.63 %
# and box_two_crowds_2d 3.33 / 3.89 / 3.15 % -> 3.23 / 3.45 / 3.17 %.  2048 points and 6000 steps did the same
# for the wall (7.90 / 7.99 / 8.58 %) but lost 1-9 % on the other two on every seed, at ~1.2x the wall
# (results/neural_zoo/means.md).
STEPS_2D_TIME_DEPENDENT = 9000
INTERIOR_POINTS_2D_TIME_DEPENDENT = 1024
INTERIOR_POINTS = 512
STEPS_OTHERWISE = 4000


# L-BFGS finish (float64, one fixed batch) of a time-dependent problem on R^d (d = 1 and 3..10) or on a 1D circle,
# after at least LBFGS_MIN_ADAM_STEPS Adam steps, kept only while the residual check on fresh points stays within
# OptimConfig.lbfgs_guard (2) times its value before L-BFGS.  Measured (results/neural_zoo/means.md), rel L2 m / u
# without -> with 300 iterations: lq_offset_1d 0.0307 / 0.0090 -> 0.0224 / 0.0035 (seed 1: 0.0359 -> 0.0245),
# r_two_crowds_1d 0.0326 / 0.0090 -> 0.0223 / 0.0065 (seed 1: 0.0388 -> 0.0230), B2 d = 10 after 2000 steps
# 0.025 / 0.012 -> 0.019 / 0.0067 (nineteenth session).  On the circle unguarded (nineteenth): torus_low_noise_1d
# 0.031 -> 0.021, but torus_power_1d 0.049 -> 0.100 and torus_three_crowds_1d 0.008 -> 0.030, while their
# residual checks rose 10-14x (0.30 -> 2.9, 0.27 -> 3.9) against 1.3x for torus_low_noise_1d (0.10 -> 0.135)
# and 1.5x or less on the R rows; with the guard (twentieth) torus_low_noise_1d keeps its 0.021 and the other four
# circle rows (power, three crowds, bimodal, nonlocal) roll back after the first 100 iterations to exactly their
# Adam result.  Not in d = 2: there each float64 iteration carries the 24² renormalisation grid of every slice,
# and the gain was small for the cost (lq_offset_2d 0.140 -> 0.128 with the wall 443 -> 989 s; B7 d = 2 0.112 ->
# 0.103).  Not on boxes: 500 iterations after 1000 steps left box_bump_1d at 0.30 against 0.26 (second
# session).  Not after short runs: far from an optimum, L-BFGS on one fixed batch fits that batch.  Not above
# d = 10: B2 d = 20 after 4000 steps went m 0.092 -> 0.064 but u 0.0072 -> 0.043 (one fixed batch of 512 points in
# 20 dimensions).
LBFGS_FINISH_STEPS = 300
LBFGS_MIN_ADAM_STEPS = 2000
LBFGS_MAX_DIM = 10


def _on_circle(problem) -> bool:
    """The 1D torus, where several defaults differ (steps, the L-BFGS finish, the FP weight)."""
    return problem.domain.periodic and problem.dim == 1


def default_lbfgs_steps(problem, steps: int) -> int:
    """The L-BFGS iterations used when ``OptimConfig.lbfgs_steps`` is None."""
    if (problem.is_ergodic or (problem.domain.bounded and not _on_circle(problem)) or problem.dim == 2
            or problem.dim > LBFGS_MAX_DIM or steps < LBFGS_MIN_ADAM_STEPS):
        return 0
    return LBFGS_FINISH_STEPS


# Adam steps of u alone after a Gaussian start, as a share of the run's steps (OptimConfig.u_first_steps).
U_FIRST_SHARE_AFTER_GAUSSIAN = 1 / 8


def default_u_first_steps(warm_start_mode: str, steps: int) -> int:
    """The steps of u alone used when ``OptimConfig.u_first_steps`` is None: ``steps`` ×
    ``U_FIRST_SHARE_AFTER_GAUSSIAN`` after a Gaussian start, else 0 (see the field's comment)."""
    return int(steps * U_FIRST_SHARE_AFTER_GAUSSIAN) if warm_start_mode == "gaussian" else 0


HJB_WEIGHT_HEAVY = 10.0


def _on_box(problem) -> bool:
    return problem.domain.bounded and not problem.domain.periodic


def on_time_dependent_2d_box(problem) -> bool:
    """Whether ``problem`` is time-dependent on a 2D box: where the 2D box defaults apply (1024 interior points,
    the density network's HJB share, the no-flux weight 10, the FP weight 0.1 and, in sampling.resolve_time_warp,
    early slice times)."""
    return _on_box(problem) and problem.dim == 2 and not problem.is_ergodic


def default_hjb_weight(problem) -> float:
    """The HJB residual's weight used when ``LossConfig.hjb`` is None (see its comment)."""
    euclidean = not problem.domain.bounded
    if (euclidean or (_on_box(problem) and problem.dim <= 2)) and not problem.is_ergodic:
        return HJB_WEIGHT_HEAVY
    return 1.0


# Weight of the gradient-enhanced HJB term on time-dependent problems on R and R² (LossConfig.hjb_gradient).
HJB_GRADIENT_R = 1.0


def default_hjb_gradient(problem) -> float:
    """The gradient-enhanced HJB term's weight used when ``LossConfig.hjb_gradient`` is None: ``HJB_GRADIENT_R``
    on a time-dependent problem on R or R², else 0 (see the field's comment)."""
    if not problem.domain.bounded and not problem.is_ergodic and problem.dim <= 2:
        return HJB_GRADIENT_R
    return 0.0


# The density network's share of the heavy HJB term on time-dependent 2D boxes (LossConfig.hjb_density).
HJB_DENSITY_2D_BOX = 3.0


def default_hjb_density(problem, hjb: float) -> float:
    """The HJB term's weight in the density network's gradient used when ``LossConfig.hjb_density`` is None:
    ``HJB_DENSITY_2D_BOX`` on a time-dependent 2D box, else ``hjb`` itself (see the field's comment)."""
    if on_time_dependent_2d_box(problem):
        return HJB_DENSITY_2D_BOX
    return hjb


FP_WEIGHT_CIRCLE = 0.1
FP_WEIGHT_2D_BOX = 0.1
BOUNDARY_WEIGHT_2D_BOX = 10.0


def on_time_dependent_1d_box(problem) -> bool:
    """Whether ``problem`` is time-dependent on a 1D box (an interval with no-flux ends)."""
    return _on_box(problem) and problem.dim == 1 and not problem.is_ergodic


def default_free_mass_at_start(problem) -> bool:
    """Whether the blend's free part carries m0's mass at t = 0 by construction when
    ``ModelConfig.free_mass_at_start`` is None: on a time-dependent 1D box (see the field's comment)."""
    return on_time_dependent_1d_box(problem)


def default_boundary_weight(problem) -> float:
    """The no-flux terms' weight used when ``LossConfig.boundary`` is None: ``BOUNDARY_WEIGHT_2D_BOX`` on a
    time-dependent 2D box (where ``sampler.time_warp`` "auto" is "early"), else 1 (see the field's comment)."""
    return BOUNDARY_WEIGHT_2D_BOX if on_time_dependent_2d_box(problem) else 1.0


def default_fp_weight(problem) -> float:
    """The Fokker-Planck residual's weight used when ``LossConfig.fp`` is None: ``FP_WEIGHT_CIRCLE`` on the
    time-dependent circle, ``FP_WEIGHT_2D_BOX`` on a time-dependent 2D box, else 1 (see the field's comment)."""
    if _on_circle(problem) and not problem.is_ergodic:
        return FP_WEIGHT_CIRCLE
    return FP_WEIGHT_2D_BOX if on_time_dependent_2d_box(problem) else 1.0


def default_interior_points(problem) -> int:
    """The interior points per step used when ``SamplerConfig.n_interior`` is None: 1024 on a time-dependent 2D
    box (``INTERIOR_POINTS_2D_TIME_DEPENDENT``, see ``STEPS_2D_TIME_DEPENDENT``), else 512."""
    if on_time_dependent_2d_box(problem):
        return INTERIOR_POINTS_2D_TIME_DEPENDENT
    return INTERIOR_POINTS


def default_steps(problem) -> int:
    """The number of Adam steps used when ``NeuralSolverConfig.steps`` is None."""
    if not problem.is_ergodic and problem.domain.bounded:
        if _on_circle(problem):
            return STEPS_1D_TORUS_TIME_DEPENDENT
        return {1: STEPS_1D_TIME_DEPENDENT, 2: STEPS_2D_TIME_DEPENDENT}.get(problem.dim, STEPS_OTHERWISE)
    return STEPS_OTHERWISE
