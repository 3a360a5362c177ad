"""Forward derivatives through the networks: value, gradient and Laplacian in one pass.

The residuals need u, ∇u, Δu and the same of the density field.  By nested reverse-mode autograd
that is a forward pass, a backward pass for ∇ and one more backward pass per coordinate for Δ, and
the loss's backward pass then runs through all of them.  A *jet* carries (value, the derivatives
along k directions, the Laplacian over the space directions) through each layer instead:

    linear      v → W v + b,       ∂v → W ∂v,          Δv → W Δv
    activation  v → σ(a),          ∂v → σ'(a) ∂a,      Δv → σ'(a) Δa + σ''(a) Σ_j (∂_j a)²

so that one forward pass gives all of them and one backward pass differentiates the loss.  Why:
the solver's Adam step on B1 (ergodic torus; 512 points in 1D, 1024 in 2D; one thread; medians of
three interleaved 100-step differences, load ~1) with jets / with nested autograd: d = 1 6.6 / 8.7 ms
(float32), 12.2 / 16.4 ms (float64); d = 2 13.4 / 18.2 ms (float32), 25.7 / 35.9 ms (float64): 0.70-0.76×.
Against DeepXDE (experiments/peers, results/peers/deepxde_s21.md) the float32 step went from 0.91× to
0.53× of DeepXDE's at d = 1 and from 0.68× to 0.40× at d = 2.

Supported: the plain MLP core (``model.kind="mlp"``) with tanh, sin, softplus or silu, any input
embedding, the quadratic skip on R^d, no population code; ergodic problems, and time-dependent ones on a
box, torus or R^d (the forms u = G + (1 - t/T) net, the off / log / blend forms of m(0) = m0, the moving
Gaussian base of R^d).
:func:`network_jets` says whether a pair of networks qualifies; the residuals fall back to autograd
otherwise.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mfgnet.neural.networks import FieldNet, MFGNetworks, Sine
from mfgnet.neural.residuals import divergence, gradient

log = logging.getLogger(__name__)


@dataclass
class Jet:
    """Features and their derivatives at n points: value (n, p), along each direction (k, n, p),
    and the Laplacian over the space directions (n, p)."""

    value: torch.Tensor
    dirs: torch.Tensor
    lap: torch.Tensor


def _tanh(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    h = torch.tanh(a)
    d1 = 1 - h * h
    return h, d1, -2 * h * d1


def _sin(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    h = torch.sin(a)
    return h, torch.cos(a), -h


def _softplus(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = torch.sigmoid(a)
    return nn.functional.softplus(a), s, s * (1 - s)


def _silu(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = torch.sigmoid(a)
    d1 = s * (1 + a * (1 - s))
    return a * s, d1, s * (1 - s) * (2 + a * (1 - 2 * s))


# Activation module type -> (σ, σ', σ'') at the pre-activations; torch's Softplus is used with its
# defaults only (beta 1; its linear branch above the threshold 20 differs from σ by < 2e-9).
_ACTIVATION_JETS = {nn.Tanh: _tanh, Sine: _sin, nn.Softplus: _softplus, nn.SiLU: _silu}


def _linear(jet: Jet, layer: nn.Linear) -> Jet:
    # Three products rather than one over the stacked blocks: the stacking copy cost more than it
    # saved (B1 d = 2 step 14.8 against 13.4 ms, float32).
    w = layer.weight.to(jet.value.dtype).T
    return Jet(jet.value @ w + layer.bias.to(jet.value.dtype), jet.dirs @ w, jet.lap @ w)


def _activation(jet: Jet, fn, space: slice) -> Jet:
    h, d1, d2 = fn(jet.value)
    curvature = (jet.dirs[space] ** 2).sum(0)
    return Jet(h, d1 * jet.dirs, d1 * jet.lap + d2 * curvature)


def supports_jets(net: FieldNet) -> bool:
    """Whether :func:`field_jet` can follow this network (otherwise autograd is used)."""
    layers = getattr(net.core, "net", None)
    if layers is None or net.population_code.numel():
        return False
    return all(isinstance(layer, nn.Linear) or type(layer) in _ACTIVATION_JETS for layer in layers)


def _embedding_jet(embed, t: torch.Tensor, x: torch.Tensor) -> tuple[Jet, slice]:
    """The input features' jet; directions are (t,) x_1..x_d for time-dependent problems, else x_1..x_d."""
    n, d = x.shape
    k0 = 1 if embed.time_dependent else 0
    space = slice(k0, k0 + d)
    k = k0 + d
    eye = torch.eye(d, dtype=x.dtype, device=x.device)
    values, dirs, laps = [], [], []

    def add(value, direction, lap):
        values.append(value)
        dirs.append(direction)
        laps.append(lap)

    def space_dirs(per_coordinate: torch.Tensor) -> torch.Tensor:
        """(d, n, p) derivatives along x_j -> (k, n, p), zero along t."""
        if k0 == 0:
            return per_coordinate
        return torch.cat([torch.zeros_like(per_coordinate[:1]), per_coordinate], 0)

    if embed.periodic:
        freqs = embed.freqs.to(x.dtype)  # (K,)
        z = x.unsqueeze(-1) * freqs  # (n, d, K), flattened coordinate-major as in forward
        s, c = torch.sin(z), torch.cos(z)
        # ∂/∂x_j of feature (i, k) is δ_ij freq_k times cos (sin) or -sin (cos).
        mask = eye[:, None, :, None] * freqs  # (d, 1, d, K)
        add(s.flatten(1), space_dirs((mask * c.unsqueeze(0)).flatten(2)), (-(freqs ** 2) * s).flatten(1))
        add(c.flatten(1), space_dirs((-mask * s.unsqueeze(0)).flatten(2)), (-(freqs ** 2) * c).flatten(1))
    else:
        inv = 1.0 / embed.scale.to(x.dtype)
        xs = (x - embed.center.to(x.dtype)) * inv
        add(xs, space_dirs((eye * inv).unsqueeze(1).expand(d, n, d)), torch.zeros_like(xs))
        if embed.fourier is not None:
            B = embed.fourier.to(x.dtype)  # (d, F)
            proj = xs @ B
            slope = (inv.unsqueeze(-1) * B).unsqueeze(1)  # (d, 1, F): ∂proj/∂x_j
            s, c = torch.sin(proj), torch.cos(proj)
            norm = (slope[:, 0] ** 2).sum(0)  # Σ_j (∂proj/∂x_j)²
            add(s, space_dirs(slope * c), -norm * s)
            add(c, space_dirs(-slope * s), -norm * c)
    if embed.time_dependent:
        tt = 2.0 * t / embed.horizon - 1.0
        direction = torch.zeros(k, n, 1, dtype=x.dtype, device=x.device)
        direction[0] = 2.0 / embed.horizon
        add(tt, direction, torch.zeros_like(tt))
        if embed.time_rates.numel():
            rates = embed.time_rates.to(x.dtype)  # (c,)
            decay = torch.exp(-t * rates)  # (n, c)
            direction = torch.zeros(k, n, rates.numel(), dtype=x.dtype, device=x.device)
            direction[0] = -2.0 * rates * decay
            add(2.0 * decay - 1.0, direction, torch.zeros_like(decay))
    return Jet(torch.cat(values, -1), torch.cat(dirs, -1), torch.cat(laps, -1)), space


def field_jet(net: FieldNet, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The network's value (n,), derivatives along (t,) x_1..x_d (n, k) and Laplacian in x (n,)."""
    jet, space = _embedding_jet(net.embed, t, x)
    for layer in net.core.net:
        jet = _linear(jet, layer) if isinstance(layer, nn.Linear) else _activation(
            jet, _ACTIVATION_JETS[type(layer)], space)
    value, dirs, lap = jet.value[:, 0], jet.dirs[..., 0].T, jet.lap[:, 0]
    if net.quadratic is not None:
        emb = net.embed
        inv = 1.0 / emb.scale.to(x.dtype)
        xs = (x - emb.center.to(x.dtype)) * inv
        degree = net.quadratic.shape[0]
        powers_of = torch.arange(degree, device=x.device, dtype=x.dtype)
        coef = net.quadratic_gain * net.quadratic.to(x.dtype)  # (degree, 2, d)
        if emb.time_dependent:
            th = (2.0 * t / emb.horizon - 1.0)  # (n, 1)
            powers = th ** powers_of
            dpowers = powers_of * th ** (powers_of - 1).clamp_min(0) * (2.0 / emb.horizon)
        else:
            powers = torch.zeros(x.shape[0], degree, dtype=x.dtype, device=x.device)
            powers[:, 0] = 1.0
            dpowers = torch.zeros_like(powers)
        a, b = torch.einsum("nk,kcd->ncd", powers, coef).unbind(1)  # (n, d) each
        value = value + (a * xs * xs + b * xs).sum(-1)
        grad_x = (2 * a * xs + b) * inv
        lap = lap + (2 * a * inv * inv).sum(-1)
        if emb.time_dependent:
            da, db = torch.einsum("nk,kcd->ncd", dpowers, coef).unbind(1)
            grad_t = (da * xs * xs + db * xs).sum(-1, keepdim=True)
            dirs = dirs + torch.cat([grad_t, grad_x], -1)
        else:
            dirs = dirs + grad_x
    return value, dirs, lap


# loss.derivatives="auto" uses the jets on time-dependent boxes and tori of this dimension (see the setting).
JETS_AUTO_TIME_DEPENDENT_DIM = 2

JetFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def _fixed_jet(fn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Value, gradient and Laplacian of a parameter-free function of x (G, log m0) by autograd,
    detached: nothing in it is trained, so the loss's backward pass need not go through it."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        v = fn(x)
        # A function that autograd cannot follow (a constant, a table lookup) has zero derivatives here,
        # as it has in the nested-autograd residuals; so has the curvature of a linear one.
        if not v.requires_grad:
            return v.detach(), torch.zeros_like(x), torch.zeros_like(x[:, 0])
        g = gradient(v, x)
        lap = divergence(g, x) if g.requires_grad else torch.zeros_like(x[:, 0])
    return v.detach(), g.detach(), lap.detach()


def _fixed_time_jet(fn, t: torch.Tensor, x: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Value, ∂/∂t, gradient in x and Laplacian in x of a parameter-free function of (t, x) by autograd,
    detached (as :func:`_fixed_jet`)."""
    with torch.enable_grad():
        t = t.detach().requires_grad_(True)
        x = x.detach().requires_grad_(True)
        v = fn(t, x)
        if not v.requires_grad:  # nothing that depends on (t, x): zero derivatives
            return v.detach(), torch.zeros_like(t[:, 0]), torch.zeros_like(x), torch.zeros_like(x[:, 0])
        v_t, g = torch.autograd.grad(v.sum(), (t, x), create_graph=True)
        lap = divergence(g, x)
    return v.detach(), v_t[:, 0].detach(), g.detach(), lap.detach()


def _time_dependent_supported(nets: MFGNetworks) -> bool:
    return ((nets.problem.domain.bounded or nets.base_motion is not None) and nets.heat is None
            and nets.density_output == "exp" and nets.hard_initial in ("off", "log", "blend"))


_COMPILED_FIELD_JET: Callable | None = None
_COMPILE_FAILED = False


def compiled_field_jet() -> Callable:
    """:func:`field_jet` through torch.compile (``loss.compile_jets``), falling back to the plain
    function for the rest of the process, with a warning, when compiling fails (no C++ compiler,
    an unsupported platform)."""
    global _COMPILED_FIELD_JET
    if _COMPILED_FIELD_JET is None:
        # torch's own deprecation notice, raised as its compiler loads and compiles: nothing a user of
        # this setting can act on.
        warnings.filterwarnings("ignore", message=".*torch.jit.script_method.*")
        compiled = torch.compile(field_jet, dynamic=False)
        log.info("loss.compile_jets: the networks' jets are compiled by torch.compile at their first use "
                 "(a few seconds for each shape and dtype: training, the residual check, the L-BFGS finish)")

        def call(net: FieldNet, t: torch.Tensor | None, x: torch.Tensor):
            global _COMPILE_FAILED
            if not _COMPILE_FAILED:
                try:
                    return compiled(net, t, x)
                except Exception as exc:  # noqa: BLE001 - any compiler failure: the plain jets give the same numbers
                    _COMPILE_FAILED = True
                    warnings.warn(f"loss.compile_jets: torch.compile failed ({type(exc).__name__}: {exc}); "
                                  "using the plain jets", RuntimeWarning, stacklevel=2)
            return field_jet(net, t, x)

        _COMPILED_FIELD_JET = call
    return _COMPILED_FIELD_JET


def compile_failed() -> bool:
    """Whether :func:`compiled_field_jet` has fallen back to the plain jets in this process."""
    return _COMPILE_FAILED


def network_jets(nets: MFGNetworks, derivatives: str = "auto", compile_jets: bool = False
                 ) -> tuple[JetFn, JetFn] | None:
    """(u's jet, the density field's jet) as functions of (t, x), each giving the value (n,), the
    derivatives along (t,) x_1..x_d (n, k) and the Laplacian in x (n,); None where the setting
    ``loss.derivatives`` (``derivatives``) or the networks leave the residuals to autograd.

    Ergodic problems ("auto" or "forward"): the networks (+ the fixed Gaussian base on R^d).
    Time-dependent problems ("forward", or "auto" on a box or torus in JETS_AUTO_TIME_DEPENDENT_DIM):
    a box, torus or R^d, with u = G + (1 - t/T) net (``hard_terminal``) or the network, and the
    density field of the "off", "log" or "blend" form of m(0) = m0 (not "heat"), plus the moving
    Gaussian base on R^d.  ``compile_jets``: the networks' jets through :func:`compiled_field_jet`."""
    if derivatives == "autograd" or not (supports_jets(nets.value_net) and supports_jets(nets.density_net)):
        return None
    problem = nets.problem
    field = compiled_field_jet() if compile_jets else field_jet
    if problem.is_ergodic:
        if nets.base_motion is not None or not nets.density_net_enabled:
            return None
        return _ergodic_jets(nets, field)
    wanted = derivatives == "forward" or (problem.dim == JETS_AUTO_TIME_DEPENDENT_DIM and problem.domain.bounded)
    if not (wanted and _time_dependent_supported(nets)):
        return None
    return _time_dependent_jets(nets, field)


def _ergodic_jets(nets: MFGNetworks, field: Callable = field_jet) -> tuple[JetFn, JetFn]:
    def value_jet(t, x):
        return field(nets.value_net, None, x)

    def density_jet(t, x):
        value, grad, lap = field(nets.density_net, None, x)
        if nets.gaussian_base:  # the fixed base -|x - mean|² / (2 std²)
            inv_var = 1.0 / nets.base_std.to(x.dtype) ** 2
            centred = x - nets.base_mean.to(x.dtype)
            value = value - 0.5 * (centred * centred * inv_var).sum(-1)
            grad = grad - centred * inv_var
            lap = lap - inv_var.sum()
        return value, grad, lap

    return value_jet, density_jet


def _time_dependent_jets(nets: MFGNetworks, field: Callable = field_jet) -> tuple[JetFn, JetFn]:
    from mfgnet.neural.networks import safe_log, terminal_layer

    problem, horizon = nets.problem, nets.horizon

    def value_jet(t, x):
        value, dirs, lap = field(nets.value_net, t, x)
        if not nets.hard_terminal:
            return value, dirs, lap
        g, grad_g, lap_g = _fixed_jet(nets.terminal_value, x)
        fade = 1.0 - t[:, 0] / horizon  # u = G + (1 - t/T) net
        u_t = -value / horizon + fade * dirs[:, 0]
        if nets.terminal_layer:  # u = G + layer(t, x) + (1 - t/T) net
            min_strength = nets.layer_min_strength
            w, w_t, grad_w, lap_w = _fixed_time_jet(lambda s, y: terminal_layer(problem, s, y, min_strength), t, x)
            g, grad_g, lap_g, u_t = g + w, grad_g + grad_w, lap_g + lap_w, u_t + w_t
        grad = grad_g + fade.unsqueeze(-1) * dirs[:, 1:]
        return g + fade * value, torch.cat([u_t.unsqueeze(-1), grad], -1), lap_g + fade * lap

    def density_jet(t, x):
        if nets.density_net_enabled:
            free, dirs, lap = field(nets.density_net, t, x)
        else:  # the Gaussian start: the base alone
            free = lap = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            dirs = torch.zeros(x.shape[0], x.shape[1] + 1, dtype=x.dtype, device=x.device)
        if nets.base_motion is not None:
            free, dirs, lap = _add_moving_base(nets, t, x, free, dirs, lap)
        if nets.hard_initial == "off":
            return free, dirs, lap
        log_m0, grad_m0, lap_m0 = _fixed_jet(lambda y: safe_log(problem.initial_density(y)), x)
        tt = t[:, 0]
        shifted = free - nets.free_shift(x.dtype)
        if nets.hard_initial == "log":  # log m = log m0 + (t/T)(free - c)
            s = tt / horizon
            w_t = shifted / horizon + s * dirs[:, 0]
            grad = grad_m0 + s.unsqueeze(-1) * dirs[:, 1:]
            return log_m0 + s * shifted, torch.cat([w_t.unsqueeze(-1), grad], -1), lap_m0 + s * lap
        # blend: w = logaddexp(a, b), a = -t/τ + log m0, b = log(1 - e^{-t/τ}) + free - c
        tau = nets.blend_time
        ratio = tt / tau
        a = -ratio + log_m0
        b = torch.log(-torch.expm1(-ratio)) + shifted
        w = torch.logaddexp(a, b)
        pa = torch.exp(a - w)
        pb = torch.exp(b - w)
        # d/dt log(1 - e^{-t/τ}), infinite at t = 0 where pb = 0: kept finite so that pb · it is 0 there
        dlog_s = 1.0 / (tau * torch.expm1(ratio.clamp_min(1e-30)))
        w_t = -pa / tau + pb * (dlog_s + dirs[:, 0])
        grad_b = dirs[:, 1:]
        grad = pa.unsqueeze(-1) * grad_m0 + pb.unsqueeze(-1) * grad_b
        spread = ((grad_m0 - grad_b) ** 2).sum(-1)
        return w, torch.cat([w_t.unsqueeze(-1), grad], -1), pa * lap_m0 + pb * lap + pa * pb * spread

    return value_jet, density_jet


def _add_moving_base(nets: MFGNetworks, t, x, value, dirs, lap):
    """Add the jet of R^d's Gaussian base -|z|²/2 - Σ log_ratio, z = (x - mean(t)) e^{-log_ratio(t)} / std0,
    whose mean and log-width are polynomials in s = t/T (MFGNetworks._base_motion_at gives their values;
    their t-derivatives are formed here)."""
    mean, log_ratio = nets._base_motion_at(t)
    motion = nets.base_motion.to(x.dtype)  # (K, 2, d): coefficients of s, s², ...
    k = torch.arange(1, motion.shape[0] + 1, device=x.device, dtype=x.dtype)
    dpowers = k * (t / nets.horizon) ** (k - 1) / nets.horizon
    dshift, dlog_ratio = torch.einsum("nk,kcd->ncd", dpowers, motion).unbind(1)
    dmean = nets.density_net.embed.scale.to(x.dtype) * dshift
    slope = torch.exp(-log_ratio) / nets.base_std.to(x.dtype)  # ∂z_j/∂x_j
    z = (x - mean) * slope
    dz_dt = -dmean * slope - z * dlog_ratio
    value = value - 0.5 * (z * z).sum(-1) - log_ratio.sum(-1)
    base_t = -(z * dz_dt).sum(-1) - dlog_ratio.sum(-1)
    dirs = dirs + torch.cat([base_t.unsqueeze(-1), -z * slope], -1)
    return value, dirs, lap - (slope * slope).sum(-1)
