"""The two networks: u_θ(t, x) and the log-density (or pre-softplus) field of m_φ(t, x).

Inputs are embedded so that the problem's geometry holds by construction:

* Torus: x enters only through sin/cos(2πk x / L), k = 1..K, so every output is exactly
  periodic (no boundary loss needed).
* Box / Euclidean: x is centred and scaled (box centre and half-width; for R^d the mean and
  spread of m0), followed by random Fourier features (by default 16 on a box, none on R^d:
  :func:`fourier_feature_count`).
* Time (time-dependent problems): t̂ = 2t/T - 1.

Shapes: t (n, 1), x (n, d) -> (n,).
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from mfgnet.neural.config import ModelConfig, default_free_mass_at_start
from mfgnet.neural.heat import MAX_MODES, HeatFlow
from mfgnet.neural.residuals import gradient
from mfgnet.problems import Box, Euclidean, MFGProblem, ProblemError, QuadraticHamiltonian, Torus


class Sine(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(z)


_ACTIVATIONS = {"tanh": nn.Tanh, "silu": nn.SiLU, "gelu": nn.GELU, "sin": Sine, "softplus": nn.Softplus}


class InputEmbedding(nn.Module):
    """(t, x) -> features (n, p) that encode periodicity and scales."""

    def __init__(self, problem: MFGProblem, cfg: ModelConfig, generator: torch.Generator) -> None:
        super().__init__()
        d = problem.dim
        self.time_dependent = not problem.is_ergodic
        self.horizon = problem.horizon or 1.0
        self.periodic = isinstance(problem.domain, Torus)
        if self.periodic:
            k = torch.arange(1, cfg.periodic_harmonics + 1, dtype=torch.float64)
            self.register_buffer("freqs", 2 * math.pi * k / float(problem.domain.length))
            width = 2 * cfg.periodic_harmonics * d
        else:
            center, scale = _centre_and_scale(problem)
            self.register_buffer("center", center)
            self.register_buffer("scale", scale)
            width = d
            features = fourier_feature_count(problem, cfg)
            if features > 0:
                B = cfg.fourier_scale * torch.randn(d, features, generator=generator, dtype=torch.float64)
                self.register_buffer("fourier", B)
                width += 2 * features
            else:
                self.fourier = None
        # Early-time clocks 2 exp(-t / (c T)) - 1 (model.time_scales), after the linear time input.
        scales = time_scales(problem, cfg) if self.time_dependent else []
        self.register_buffer("time_rates", torch.tensor([1.0 / (c * self.horizon) for c in scales],
                                                        dtype=torch.float64), persistent=False)
        self.out_features = width + (1 + len(scales) if self.time_dependent else 0)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.periodic:
            z = x.unsqueeze(-1) * self.freqs  # (n, d, K)
            feats = [torch.sin(z).flatten(1), torch.cos(z).flatten(1)]
        else:
            xs = (x - self.center) / self.scale
            feats = [xs]
            if self.fourier is not None:
                proj = xs @ self.fourier
                feats += [torch.sin(proj), torch.cos(proj)]
        if self.time_dependent:
            feats.append(2.0 * t / self.horizon - 1.0)
            if self.time_rates.numel():
                feats.append(2.0 * torch.exp(-t * self.time_rates.to(t.dtype)) - 1.0)
        return torch.cat(feats, dim=-1)


# model.fourier_features=None on a box (see the field's comment in mfgnet.neural.config).
BOX_FOURIER_FEATURES = 16
# model.time_scales=None on a box (see the field's comment in mfgnet.neural.config).
BOX_TIME_SCALES = (0.1,)


def time_scales(problem: MFGProblem, cfg: ModelConfig) -> list[float]:
    """The early-time clocks of a time-dependent problem's networks: the setting, or with None (the
    default) BOX_TIME_SCALES on a box and none on a torus or R^d."""
    if cfg.time_scales is not None:
        return list(cfg.time_scales)
    return list(BOX_TIME_SCALES) if isinstance(problem.domain, Box) else []


def fourier_feature_count(problem: MFGProblem, cfg: ModelConfig) -> int:
    """How many random Fourier features of x the networks get: the setting, or with None (the
    default) BOX_FOURIER_FEATURES on a box and none on R^d (a torus has its own periodic features)."""
    if cfg.fourier_features is not None:
        return cfg.fourier_features
    return BOX_FOURIER_FEATURES if isinstance(problem.domain, Box) else 0


def _centre_and_scale(problem: MFGProblem) -> tuple[torch.Tensor, torch.Tensor]:
    """Box: centre and half-width.  R^d: mean of m0 and 3 standard deviations (+ a margin),
    so that the region where the agents live maps to about [-1, 1]^d."""
    if isinstance(problem.domain, Euclidean):
        mean, std = initial_moments(problem)
        return mean, 3.0 * std + 0.1 * std.mean()
    lower, upper = problem.bounding_box().bounds()
    return 0.5 * (lower + upper), 0.5 * (upper - lower)


def initial_moments(problem: MFGProblem, n: int = 20000) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and per-coordinate standard deviation of m0 from a fixed-seed sample, each (d,)."""
    samples = problem.sample_initial(n, torch.Generator().manual_seed(12345)).double()
    return samples.mean(0), samples.std(0).clamp_min(1e-8)


class MLP(nn.Module):
    def __init__(self, n_in: int, cfg: ModelConfig) -> None:
        super().__init__()
        act = _ACTIVATIONS[cfg.activation]
        layers: list[nn.Module] = []
        width = n_in
        for _ in range(cfg.depth):
            layers += [nn.Linear(width, cfg.width), act()]
            width = cfg.width
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)[:, 0]


class ResidualMLP(nn.Module):
    """Lifting layer, ``depth`` blocks h + W₂ σ(W₁ h), linear read-out."""

    def __init__(self, n_in: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.act = _ACTIVATIONS[cfg.activation]()
        self.lift = nn.Linear(n_in, cfg.width)
        self.blocks = nn.ModuleList(
            nn.ModuleList([nn.Linear(cfg.width, cfg.width), nn.Linear(cfg.width, cfg.width)])
            for _ in range(cfg.depth))
        self.out = nn.Linear(cfg.width, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.act(self.lift(z))
        for first, second in self.blocks:
            h = h + second(self.act(first(h)))
        return self.out(self.act(h))[:, 0]


class FieldNet(nn.Module):
    """One scalar field of (t, x): embedding + MLP or residual MLP.

    On R^d (``quadratic_skip``) a separable quadratic in the scaled x̂ with coefficients
    polynomial in t̂ is added, Σ_i a_i(t̂) x̂_i² + b_i(t̂) x̂_i of degree ``quadratic_time_degree``
    (1 = affine; zero at the start):
    value functions and log-densities grow quadratically at infinity, which bounded tanh
    features only mimic on a finite region.  The coefficients are a gain times the parameters
    (``quadratic_gain``, ``quadratic_gain_ergodic``): the quadratic's own learning-rate factor.
    """

    def __init__(self, problem: MFGProblem, cfg: ModelConfig, generator: torch.Generator,
                 population: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.embed = InputEmbedding(problem, cfg, generator)
        # Population k of K (``model.population_input``): the one-hot code e_k joins the features,
        # so that one core can serve every population (mfgnet.neural.populations shares it).
        code = torch.zeros(0 if population is None else population[1], dtype=torch.float64)
        if population is not None:
            code[population[0]] = 1.0
        self.register_buffer("population_code", code, persistent=False)  # set by the config, not learnt
        core = ResidualMLP if cfg.kind == "resmlp" else MLP
        self.core = core(self.embed.out_features + code.numel(), cfg)
        _initialise(self.core, cfg.init, generator)
        self.quadratic = None
        if cfg.quadratic_skip and isinstance(problem.domain, Euclidean):
            self.quadratic = nn.Parameter(torch.zeros(cfg.quadratic_time_degree + 1, 2, problem.dim,
                                                      dtype=torch.float64))
        self.quadratic_gain = cfg.quadratic_gain_ergodic if problem.is_ergodic else cfg.quadratic_gain

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        features = self.embed(t, x)
        if self.population_code.numel():
            code = self.population_code.to(features.dtype).expand(features.shape[0], -1)
            features = torch.cat([features, code], -1)
        out = self.core(features)
        if self.quadratic is not None:
            xs = (x - self.embed.center) / self.embed.scale
            t_hat = 2.0 * t / self.embed.horizon - 1.0 if self.embed.time_dependent else torch.zeros_like(t)
            powers = t_hat.unsqueeze(-1) ** torch.arange(self.quadratic.shape[0], device=t.device, dtype=t.dtype)
            coef = self.quadratic_gain * torch.einsum("nk,kcd->ncd", powers.reshape(t.shape[0], -1),
                                                      self.quadratic.to(t.dtype))
            out = out + (coef[:, 0] * xs * xs + coef[:, 1] * xs).sum(-1)
        return out


def _initialise(module: nn.Module, scheme: str, generator: torch.Generator) -> None:
    """Weights from our own generator, so that a seed fixes the whole run."""
    for layer in module.modules():
        if not isinstance(layer, nn.Linear):
            continue
        fan_out, fan_in = layer.weight.shape
        if scheme == "xavier":
            std = math.sqrt(2.0 / (fan_in + fan_out))
        elif scheme == "kaiming":
            std = math.sqrt(2.0 / fan_in)
        else:
            std = 1.0 / math.sqrt(3.0 * fan_in)  # torch's default uniform(±1/√fan_in) has this std
        with torch.no_grad():
            layer.weight.copy_(std * torch.randn(layer.weight.shape, generator=generator, dtype=torch.float64))
            layer.bias.zero_()


class MFGNetworks(nn.Module):
    """u_θ, the density network and (ergodic problems) λ, plus normalisation constants.

    ``raw_value(t, x)`` is u before the ergodic shift: the network output, or with
    ``hard_terminal`` ``G(x) + (T - t)/T · net(t, x)``, so that u(T) = G exactly (plus
    :func:`terminal_layer` with ``model.terminal_layer`` on a box): G local and independent of m, or
    (``terminal_from_crowd``) G(x, ∫K m(T)) with ∫K m(T) the density network's on the fixed grid as of
    the last :meth:`refresh_terminal_crowd` (see :meth:`terminal_value`).
    ``value = raw_value - u_shift`` (u_shift makes ∫u = 0 for ergodic problems).

    The density is ``m = exp(log_density)`` with ``log_density = density_field - log_mass``
    (``density_output = "exp"``) or ``m = softplus(density_field) / exp(log_mass)``.  The free
    field is ``net + base(t, x) - free_log_mass`` (base: a Gaussian fitted to m0 on R^d, which moves and
    widens with t at constant mass: learnt with ``model.moving_base``, else set by the Gaussian warm
    start or left fixed; 0 on bounded domains).
    With a hard initial condition (time-dependent, exp output) ``density_field`` is log m itself
    (``log_mass = 0``) and equals log m0 at t = 0 exactly:

    * ``"log"``:   log m = log m0(x) + t̂ · free(t, x),  t̂ = t / T;
    * ``"blend"``: m = (1 - s) m0(x) + s · exp(free(t, x)),  s = 1 - exp(-t / (τ T));
    * ``"heat"``:  m = (1 - s) (m0(x) + h(t, x) - h(0, x)) + s · exp(free(t, x)), h the heat flow of m0
      (:class:`mfgnet.neural.heat.HeatFlow`; a converged series on a 1D/2D torus or box).

    Here free = net + base - c, c = ``free_log_mass`` or, with the blend, ``renormalise`` and
    ``model.free_mass_at_start`` (the default on time-dependent 1D boxes), the log of exp(net + base)'s mass at t = 0
    on the fixed grid over m0's (:meth:`free_shift`): the free part then carries m0's mass at t = 0 for any weights.

    With ``renormalise`` (time-dependent problems on a box, torus or R^d with d ≤ 2, there on the
    bounding box: :func:`renormalises_euclidean`) m(t) is further divided by
    ``exp(mass_shift(t))``, the quadrature mass of m(t) over that of m0 on a fixed grid
    (the training losses use the step's own quadrature instead).
    """

    def __init__(self, problem: MFGProblem, cfg: ModelConfig, generator: torch.Generator,
                 population: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.problem = problem
        self.value_net = FieldNet(problem, cfg, generator, population)
        self.density_net = FieldNet(problem, cfg, generator, population)
        self.density_output = cfg.density_output
        self.horizon = problem.horizon
        self.lam = nn.Parameter(torch.zeros((), dtype=torch.float64)) if problem.is_ergodic else None
        self.register_buffer("u_shift", torch.zeros((), dtype=torch.float64))
        self.gaussian_base = isinstance(problem.domain, Euclidean) and cfg.density_output == "exp"
        if self.gaussian_base:
            mean, std = initial_moments(problem)
            self.register_buffer("base_mean", mean)
            self.register_buffer("base_std", std)
            # Normaliser of the base Gaussian, so that m ≈ m0-shaped with mass ≈ 1 at the start.
            log_mass = torch.log(std * math.sqrt(2 * math.pi)).sum()
        else:
            # Start near a uniform density of mass 1.
            volume = problem.bounding_box().volume()
            log_mass = torch.tensor(math.log(volume) if cfg.density_output == "exp" else
                                    math.log(volume * math.log(2.0)), dtype=torch.float64)
        # Time-dependent R^d: the base Gaussian moves, mean(t) = mean0 + scale Σ_k c_k s^k and
        # log std(t) = log std0 + Σ_k e_k s^k (s = t/T, k = 1..degree; zero at t = 0), normalised
        # so that it keeps mass 1: a crowd that travels many m0-widths is a few parameter units
        # away instead of tens of units of the quadratic's coefficients.
        # Without moving_base the motion is a buffer of zeros (the fixed base) that the Gaussian warm
        # start (mfgnet.neural.gaussian_start) may set; with it, a parameter that training moves.
        if self.gaussian_base and not problem.is_ergodic:
            motion = torch.zeros(max(1, cfg.quadratic_time_degree), 2, problem.dim, dtype=torch.float64)
            if cfg.moving_base:
                self.base_motion = nn.Parameter(motion)
            else:
                self.register_buffer("base_motion", motion)
        else:
            self.base_motion = None
        # False only during the Gaussian start (mfgnet.neural.gaussian_start): the network part of
        # the density field is left out (not zeroed: from a zeroed output layer the shape fit after
        # the start stalled at RMS 3.6 where the initialised network reached 0.16-0.23).
        self.density_net_enabled = True
        self.hard_terminal = (cfg.hard_terminal and not problem.is_ergodic
                              and terminal_is_fixed(problem))
        # G that reads m(T) only through ∫K m(T) (B2: the crowd's mean) is hard too, with ∫K m(T) taken from
        # the density network on the fixed grid (terminal_from_crowd, below).
        self.terminal_from_crowd = self.terminal_kernel_of_y_only = False
        self.terminal_layer = (self.hard_terminal and isinstance(problem.domain, Box) and problem.viscosity > 0
                               and (default_terminal_layer(problem) if cfg.terminal_layer is None
                                    else cfg.terminal_layer))
        # The default puts the layer only at the strong corners; an explicit true at every face G rises into.
        self.layer_min_strength = CORNER_STRENGTH_LAYER if cfg.terminal_layer is None else 0.0
        self.hard_initial = "off"
        self.heat = None
        if cfg.hard_initial != "off" and not problem.is_ergodic and cfg.density_output == "exp":
            # "auto": the blend on bounded domains; on R^d the initial loss (the log form left B2
            # d = 1 at rel L2 u 6.9e-2 where the loss form gives 2.4e-2, same 2000 float32 steps).
            self.hard_initial = (cfg.hard_initial if cfg.hard_initial != "auto"
                                 else ("off" if isinstance(problem.domain, Euclidean) else "blend"))
            self.heat = HeatFlow.build(problem) if self.hard_initial == "heat" else None
            if self.hard_initial == "heat" and self.heat is None:
                raise ProblemError(
                    "model.hard_initial='heat' needs the heat flow of m0 as a converged spectral series: a "
                    "time-dependent problem on a 1D/2D torus, or box where m0 has zero slope at the faces, with "
                    f"at most {MAX_MODES[1]} (1D) / {MAX_MODES[2]} (2D) modes per axis (mfgnet.neural.heat); use "
                    "'auto' or 'blend'")
        self.blend_time = cfg.initial_blend_time * (problem.horizon or 1.0)
        self.register_buffer("free_log_mass", log_mass.clone() if self.hard_initial != "off"
                             else torch.zeros((), dtype=torch.float64))
        self.register_buffer("log_mass", torch.zeros((), dtype=torch.float64) if self.hard_initial != "off"
                             else log_mass)
        self.renormalise = (cfg.renormalise and not problem.is_ergodic and cfg.density_output == "exp"
                            and (problem.domain.bounded or renormalises_euclidean(problem)))
        if self.renormalise:
            y, logw = fixed_quadrature(problem)
            self.register_buffer("norm_y", y)
            self.register_buffer("norm_logw", logw)
        held = default_free_mass_at_start(problem) if cfg.free_mass_at_start is None else cfg.free_mass_at_start
        self.free_mass_at_start = held and self.renormalise and self.hard_initial == "blend"
        self._shared_free_shift: torch.Tensor | None = None
        if self.free_mass_at_start:
            self.register_buffer("norm_log_mass0", initial_log_mass(problem, self.norm_y, self.norm_logw))
        # u(T) = G(x, ∫K m(T)) by the form where G reads m(T) only through ∫K m(T) and m(T) has a fixed grid
        # (renormalise): the crowd's weights on that grid are data of u, a buffer refreshed from the density
        # network before each loss (refresh_terminal_crowd), as the step's ∫K m are data of F.  Why: with
        # u(T) = G as a loss term, lq_narrow_1d (B2 on R, crowd std 0.1) ended with the policy's slope at T
        # -1.58 against the exact -1.00 and m 3.55 % off; with G's mean fixed to the exact m̄(T), so that
        # u(T) = G by the form (an oracle), m 1.40 % and u 0.10 % (results/neural_zoo/means.md, 36th session).
        if (cfg.hard_terminal and not problem.is_ergodic and not self.hard_terminal and self.renormalise
                and terminal_reads_crowd_integral(problem)):
            self.hard_terminal = self.terminal_from_crowd = True
            self.terminal_kernel_of_y_only = kernel_of_y_only(problem.terminal_cost.kernel, self.norm_y)
            # m0's weights until the first refresh (m̄(T) taken as m̄(0)).
            self.register_buffer("terminal_crowd", problem.initial_density(self.norm_y) * torch.exp(self.norm_logw))

    def raw_value(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = self.value_net(t, x)
        if self.hard_terminal:
            g = self.terminal_value(x)
            if self.terminal_layer:  # HJB's layer at the faces G rises towards (model.terminal_layer)
                g = g + terminal_layer(self.problem, t, x, self.layer_min_strength)
            out = g + (1.0 - t[:, 0] / self.horizon) * out
        return out

    def value(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.raw_value(t, x) - self.u_shift

    def terminal_value(self, x: torch.Tensor) -> torch.Tensor:
        """G(x) of the hard terminal form, shape (n,): the fixed G, or G(x, ∫K m(T)) with m(T) the density
        network's as of the last :meth:`refresh_terminal_crowd` (``terminal_from_crowd``)."""
        if not self.terminal_from_crowd:
            return fixed_terminal(self.problem, x)
        y, w = self.norm_y.to(x), self.terminal_crowd.to(x)
        kernel = self.problem.terminal_cost.kernel
        if self.terminal_kernel_of_y_only:
            # B2's mean: one ∫K m(T) for every x, summed once (summed per point over the expanded kernel, the
            # einsum took 60 % of a 2D step)
            conv = (kernel(x[:1], y)[0] * w.unsqueeze(-1)).sum(0).expand(x.shape[0], -1)
        else:
            chunk = max(1, 2**22 // y.shape[0])  # bounded memory for many points (agents, evaluation grids)
            conv = torch.cat([torch.einsum("nkc,k->nc", kernel(part, y), w) for part in x.split(chunk)])
        t = torch.full((x.shape[0], 1), float(self.horizon), dtype=x.dtype, device=x.device)
        return self.problem.terminal_cost(t, x, torch.ones(x.shape[0], dtype=x.dtype, device=x.device), conv)

    @torch.no_grad()
    def refresh_terminal_crowd(self) -> None:
        """With ``terminal_from_crowd``: m(T)'s quadrature weights on the fixed grid from the density network
        now (mass that of m0 on the grid, as renormalised); else nothing."""
        if not self.terminal_from_crowd:
            return
        y, logw = self.norm_y, self.norm_logw
        t = torch.full((y.shape[0], 1), float(self.horizon), dtype=y.dtype, device=y.device)
        logits = self.density_field(t, y) + logw
        self.terminal_crowd.copy_(torch.exp(logits - torch.logsumexp(logits, 0) + initial_log_mass(self.problem, y,
                                                                                                    logw)))

    def free_field(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The network part of the density field (net + base), shape (n,)."""
        if self.density_net_enabled:
            out = self.density_net(t, x)
        else:  # the Gaussian start: m is the base alone
            out = torch.zeros(t.shape[0], dtype=t.dtype, device=t.device)
        if self.base_motion is not None:
            mean, log_ratio = self._base_motion_at(t)
            z = (x - mean) * torch.exp(-log_ratio) / self.base_std
            out = out - 0.5 * (z * z).sum(-1) - log_ratio.sum(-1)
        elif self.gaussian_base:  # ergodic: the fixed base
            z = (x - self.base_mean) / self.base_std
            out = out - 0.5 * (z * z).sum(-1)
        return out

    def _base_motion_at(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The moving base's mean and log(std / std0) at times t (n, 1): (n, d) each."""
        s = (t / self.horizon) ** torch.arange(1, self.base_motion.shape[0] + 1, device=t.device, dtype=t.dtype)
        motion = torch.einsum("nk,kcd->ncd", s, self.base_motion.to(t.dtype))  # (n, 2, d)
        return self.base_mean + self.density_net.embed.scale * motion[:, 0], motion[:, 1]

    def base_moments(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and per-coordinate std of the (moving) Gaussian base at times t (n, 1): (n, d) each."""
        mean, log_ratio = self._base_motion_at(t)
        return mean, self.base_std * torch.exp(log_ratio)

    def density_field(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The unnormalised density field: log m + log_mass (exp) or softplus input."""
        out = self.free_field(t, x)
        if self.hard_initial == "off":
            return out
        m0 = self.problem.initial_density(x)
        if self.heat is not None:  # the fading part spreads as m0 would under diffusion alone
            m0 = m0 + self.heat(t, x)
        log_m0 = safe_log(m0)
        tt = t[:, 0]
        if self.hard_initial == "log":
            return log_m0 + (tt / self.horizon) * (out - self.free_log_mass)
        # log((1 - s) m0 + s e^free) with log s, log(1 - s) formed stably; at t = 0, log s = -inf.
        a = tt / self.blend_time
        log_keep = -a
        log_s = torch.log(-torch.expm1(-a))
        return torch.logaddexp(log_keep + log_m0, log_s + out - self.free_shift(out.dtype))

    def free_shift(self, dtype: torch.dtype) -> torch.Tensor:
        """What the blend's free part subtracts from the free field: ``free_log_mass``, or with
        ``free_mass_at_start`` the log of the free part's mass at t = 0 on the fixed grid over m0's there (so that
        it carries m0's mass at t = 0 by construction; a function of the density network's weights)."""
        if not self.free_mass_at_start:
            return self.free_log_mass.to(dtype)
        if self._shared_free_shift is not None:
            return self._shared_free_shift.to(dtype)
        y = self.norm_y.to(dtype)
        t0 = torch.zeros(y.shape[0], 1, dtype=dtype, device=y.device)
        return (torch.logsumexp(self.free_field(t0, y) + self.norm_logw.to(dtype), 0)
                - self.norm_log_mass0.to(dtype))

    @contextlib.contextmanager
    def shared_free_shift(self, dtype: torch.dtype):
        """Within the block, :meth:`free_shift` is computed once (one loss evaluation: its density fields at the
        collocation points, the quadrature and the jets share one pass over the fixed grid instead of one each,
        with the same weights and so the same value)."""
        if not self.free_mass_at_start or self._shared_free_shift is not None:
            yield
            return
        self._shared_free_shift = self.free_shift(dtype)
        try:
            yield
        finally:
            self._shared_free_shift = None

    def mass_shift(self, t: torch.Tensor) -> torch.Tensor:
        """log(∫exp(density_field(t)) / ∫m0) on the fixed grid for each row of t (n, 1): the log_mass
        that makes ∫m(t) = ∫m0 = 1 (zeros without renormalise)."""
        if not self.renormalise:
            return torch.zeros(t.shape[0], dtype=t.dtype, device=t.device)
        times, inverse = torch.unique(t[:, 0], return_inverse=True)
        y, logw = self.norm_y.to(t), self.norm_logw.to(t)
        k = y.shape[0]
        chunk = max(1, 2**18 // k)  # bounded memory for many distinct times (chunks of times)
        log_z = torch.cat([
            torch.logsumexp(self.density_field(part.repeat_interleave(k).unsqueeze(-1), y.repeat(part.shape[0], 1))
                            .reshape(part.shape[0], k) + logw, dim=-1)
            for part in times.split(chunk)])
        return (log_z - initial_log_mass(self.problem, y, logw))[inverse]

    def _log_mass(self, t: torch.Tensor, log_mass) -> torch.Tensor:
        if log_mass is not None:
            return log_mass
        return self.mass_shift(t) if self.renormalise else self.log_mass

    def log_density(self, t: torch.Tensor, x: torch.Tensor, log_mass: torch.Tensor | None = None) -> torch.Tensor:
        """log m (exp output only)."""
        return self.density_field(t, x) - self._log_mass(t, log_mass)

    def density(self, t: torch.Tensor, x: torch.Tensor, log_mass: torch.Tensor | None = None) -> torch.Tensor:
        log_mass = self._log_mass(t, log_mass)
        if self.density_output == "exp":
            return torch.exp(self.density_field(t, x) - log_mass)
        return nn.functional.softplus(self.density_field(t, x)) * torch.exp(-log_mass)

    def value_parameters(self) -> list[nn.Parameter]:
        return list(self.value_net.parameters())

    def density_parameters(self) -> list[nn.Parameter]:
        motion = [self.base_motion] if isinstance(self.base_motion, nn.Parameter) else []
        return list(self.density_net.parameters()) + motion


# Largest dimension of R^d in which m(t) is renormalised on a grid over the bounding box.
RENORMALISE_MAX_DIM = 2


def renormalises_euclidean(problem: MFGProblem) -> bool:
    """Whether a time-dependent problem on R^d gets ∫m(t) = 1 by construction: d ≤ 2, where a
    shifted grid over the bounding box (sampling.mass_grid_points per slice, for the mass and ∫K m)
    resolves the crowd; in higher d a grid cannot, and the importance samples of the particle
    cloud stay."""
    return isinstance(problem.domain, Euclidean) and problem.dim <= RENORMALISE_MAX_DIM


def terminal_is_fixed(problem: MFGProblem) -> bool:
    """True when G is local and does not depend on m (probed with two density values)."""
    return problem.terminal_cost.is_local and _terminal_ignores_density(problem, with_integral=False)


def terminal_reads_crowd_integral(problem: MFGProblem) -> bool:
    """True when G is nonlocal and reads m(T) only through ∫K m(T) (probed with two density values at
    the same integral), so that u(T) = G(x, ∫K m(T)) can hold by the form."""
    G = problem.terminal_cost
    return (not G.is_local and getattr(G, "kernel", None) is not None
            and _terminal_ignores_density(problem, with_integral=True))


def _terminal_ignores_density(problem: MFGProblem, with_integral: bool) -> bool:
    """G at 64 points of the bounding box is the same for the density values 0.5 and 2 (``with_integral``:
    at one ∫K m, K's mean over 16 other points); False for a G that cannot take a plain density."""
    G = problem.terminal_cost
    box = problem.bounding_box()
    x = box.sample(64, torch.Generator().manual_seed(3))
    t = torch.full((64, 1), float(problem.horizon), dtype=torch.float64)
    try:
        with torch.no_grad():
            extra = (G.kernel(x, box.sample(16, torch.Generator().manual_seed(4))).mean(1),) if with_integral else ()
            g1 = G(t, x, torch.full((64,), 0.5, dtype=torch.float64), *extra)
            g2 = G(t, x, torch.full((64,), 2.0, dtype=torch.float64), *extra)
    except Exception:  # a G that cannot take a plain density: keep it as a loss term
        return False
    return isinstance(g1, torch.Tensor) and g1.shape == (64,) and bool(torch.equal(g1, g2))


def kernel_of_y_only(kernel, y: torch.Tensor) -> bool:
    """Whether K(x, y) does not depend on x (B2's mean kernel K = y), probed at two sets of x."""
    probe = y[:16]
    x_a = probe + 0.37 * (1.0 + probe.abs())
    x_b = -2.0 * probe - 1.3
    with torch.no_grad():
        return bool(torch.equal(kernel(x_a, probe), kernel(x_b, probe)))


def fixed_terminal(problem: MFGProblem, x: torch.Tensor) -> torch.Tensor:
    """G(x) for a terminal cost that :func:`terminal_is_fixed`, shape (n,)."""
    t = torch.full((x.shape[0], 1), float(problem.horizon), dtype=x.dtype, device=x.device)
    return problem.terminal_cost(t, x, torch.ones(x.shape[0], dtype=x.dtype, device=x.device))


# The corner strength above which ``model.terminal_layer=None`` turns the layer on (default_terminal_layer):
# between box_noisy_long_1d's 1.3, which the layer hurt, and box_wall_push_1d's 13.7, which needs it under the
# heavier HJB term of 1D boxes (results/neural_zoo/means.md, thirty-first session).
CORNER_STRENGTH_LAYER = 4.0


def corner_strength(problem: MFGProblem) -> float:
    """max over the faces of a 1D box towards which G rises of s² ν^{3/2} √T (s: G's slope into the face);
    0 where autograd cannot follow G (no slope known).

    Why this number: near such a face u(T) = G has slope s while ∂u/∂n = 0 for t < T, so u turns within
    δ ≈ √(ν τ) of the face (τ = T − t) and ν u_xx ≈ s √(ν / τ) there; the HJB residual's square integrated over
    that layer and τ ∈ [0, T] is ≈ 2 s² ν^{3/2} √T, the share of the loss that the corner takes."""
    lower, upper = problem.domain.bounds()
    strength = 0.0
    for face, inward in ((float(lower[0]), 1.0), (float(upper[0]), -1.0)):
        rise = _rise_into_face(problem, torch.tensor([[face]], dtype=torch.float64), 0, inward)
        if rise is None:
            return 0.0
        strength = max(strength, float(_strength(rise[0].detach(), problem)))
    return strength


def _rise_into_face(problem: MFGProblem, on_face: torch.Tensor, axis: int, inward: float) -> torch.Tensor | None:
    """G's outward slope at the points ``on_face`` of the face normal to ``axis`` (inward normal sign ``inward``)
    where G rises towards that face, 0 where it falls; shape (n,).  Kept in the graph (the residuals differentiate
    it along the face); None where autograd cannot follow G."""
    with torch.enable_grad():
        probe = on_face if on_face.requires_grad else on_face.requires_grad_(True)
        g = fixed_terminal(problem, probe)
        if not g.requires_grad:
            return None
        slope = gradient(g, probe)
    return (-inward * slope[:, axis]).clamp_min(0.0)


def _strength(rise: torch.Tensor, problem: MFGProblem) -> torch.Tensor:
    """s² ν^{3/2} √T of G's outward slope(s) s = ``rise`` (see :func:`corner_strength`)."""
    return rise * rise * float(problem.viscosity) ** 1.5 * math.sqrt(float(problem.horizon))


def default_terminal_layer(problem: MFGProblem) -> bool:
    """``model.terminal_layer=None``: the layer on a time-dependent 1D box whose corner strength
    (:func:`corner_strength`) is at least CORNER_STRENGTH_LAYER and whose G is fixed and differentiable."""
    if problem.is_ergodic or not isinstance(problem.domain, Box) or problem.dim != 1 or problem.viscosity <= 0:
        return False
    return terminal_is_fixed(problem) and corner_strength(problem) >= CORNER_STRENGTH_LAYER


def terminal_layer(problem: MFGProblem, t: torch.Tensor, x: torch.Tensor, min_strength: float = 0.0) -> torch.Tensor:
    """HJB's boundary layer at the faces of a box towards which G rises, shape (n,) (``model.terminal_layer``).

    At a face where G's outward slope s is positive the optimal drift points away from the face and, backward in
    time, HJB carries the layer into it: for H = (κ/2)|p|² the steady layer has u' = s tanh(κ s dist / 2ν), i.e.
    u = G - (2ν/κ) log(1 + exp(-κ s dist / ν)) near the face, which turns G's slope into ∂u/∂n = 0.  Here ν is
    replaced by ν_τ = ν (1 - exp(-κ s² τ / ν)), τ = T - t, so that the layer vanishes at t = T (u(T) = G) and has
    its steady form after the layer's formation time; ∂u/∂n = 0 holds for every t < T.  s is G's slope at the
    point of the face nearest x (so it may vary along a face in 2D).  Faces towards which G falls get no layer
    (there HJB carries the face's influence inwards, a smooth part the network fits).  Other Hamiltonians take
    κ = 1: the layer is then a guess of the right width, and the no-flux loss does the rest.  Faces whose corner
    strength s² ν^{3/2} √T (:func:`corner_strength`) is below ``min_strength`` get no layer either."""
    nu = problem.viscosity
    kappa = problem.hamiltonian.scale if isinstance(problem.hamiltonian, QuadraticHamiltonian) else 1.0
    lower, upper = problem.domain.bounds()
    tau = (problem.horizon - t[:, 0]).clamp_min(0.0)
    layer = torch.zeros_like(t[:, 0])
    for i in range(problem.dim):  # a loop over the box's 2d faces, not over points
        for face, inward in ((float(lower[i]), 1.0), (float(upper[i]), -1.0)):
            on_face = torch.cat([x[:, :i], torch.full_like(x[:, i:i + 1], face), x[:, i + 1:]], dim=1)
            rise = _rise_into_face(problem, on_face, i, inward)
            if rise is None:  # a G autograd cannot follow: no slope known
                continue
            if min_strength > 0:  # weak corners keep no layer (a wide one there cut into the crowd: 31st session)
                rise = torch.where(_strength(rise, problem) >= min_strength, rise, torch.zeros_like(rise))
            nu_tau = nu * -torch.expm1(-kappa * rise * rise * tau / nu)
            dist = inward * (x[:, i] - face)
            layer = layer - (2.0 / kappa) * nu_tau * nn.functional.softplus(
                -kappa * rise * dist / nu_tau.clamp_min(1e-30))
    return layer


def fixed_quadrature(problem: MFGProblem) -> tuple[torch.Tensor, torch.Tensor]:
    """Midpoint grid on the box for the final mass renormalisation: points (k, d), log weights (k,)."""
    per_axis = {1: 512, 2: 64, 3: 16}.get(problem.dim, 0)
    lower, upper = problem.bounding_box().bounds()
    if per_axis:
        axes = [lower[i] + (torch.arange(per_axis, dtype=torch.float64) + 0.5) * (upper[i] - lower[i]) / per_axis
                for i in range(problem.dim)]
        y = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, problem.dim)
    else:
        y = problem.bounding_box().sample(8192, torch.Generator().manual_seed(5))
    volume = float(torch.prod(upper - lower))
    return y, torch.full((y.shape[0],), math.log(volume / y.shape[0]), dtype=torch.float64)


def initial_log_mass(problem: MFGProblem, y: torch.Tensor, logw: torch.Tensor) -> torch.Tensor:
    """log Σ_k m0(y_k) w_k over the last axis of quadrature points y (..., k, d), log weights (..., k)."""
    m0 = problem.initial_density(y.reshape(-1, y.shape[-1])).reshape(y.shape[:-1])
    return torch.logsumexp(torch.log(m0.clamp_min(torch.finfo(y.dtype).tiny)) + logw, dim=-1)


def safe_log(m: torch.Tensor) -> torch.Tensor:
    """log m with m floored at tiny^0.4 through ``where`` (not clamp): where m0 vanishes (on a face
    for 6x(1 - x)) the first and second derivatives stay finite (1/floor² < the largest float)."""
    floor = torch.finfo(m.dtype).tiny ** 0.4
    return torch.log(torch.where(m > floor, m, torch.full_like(m, floor)))
