"""The loss terms of one step, each a mean of squares over its points.

    hjb, fp          PDE residuals at interior points (FP divided by m when relative, see
                     :func:`fp_relative`); optionally causally weighted over time slices
    terminal         u(T, x) - G(x, m(T), ∫K m(T))      (time-dependent, unless u(T) = G by construction)
    initial          log m(0, x) - log m0(x)  or  (m - m0) / rms(m0)  (unless m(0) = m0 by construction)
    boundary_u/_m    ∇u·n and the no-flux (ν∇m + m ∂pH)·n (/ m when relative) on the faces of a Box
    mass             ∫m - 1 (time-dependent on Torus/Box per slice unless renormalised; ergodic with
                     normalization="penalty"); renormalised with a blend form of m(0): e^{-t_s/τ} log_mass(t_s)²,
                     the log of the mass before renormalising (see below), and with loss.mass_at_start the
                     free part's own log mass at t = 0 squared, one more entry of the mean
    mean_zero        ∫u / |Ω| (ergodic with normalization="penalty")

Time-dependent problems with ``model.renormalise`` (bounded, or R^d with d ≤ 2 on the bounding
box) get ∫m(t) = 1 per slice by construction: log_mass(t_s) is the log of the slice's
shifted-grid quadrature of exp(w) over m0's on the same grid, and d/dt log_mass (by autograd at
the quadrature points) enters FP.  With a blend form of m(0) = m0 the mass before renormalising
is also held near m0's while m0 fades (the mass term above): renormalising alone let the free part
grow by e^16, so that it swamped the fading m0 at t = 0+ and m jumped to a flat crowd between two slices.

Ergodic problems with normalization="hard" get ∫m = 1 by construction: log_mass is the
log of the shifted-grid quadrature of exp(w) at this step (differentiable), so neither a
mass term nor the m → c m, λ → λ + ln c degeneracy remains; ∫u = 0 only shifts u, which
no ergodic residual sees, so it is applied to the final networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from mfgnet.neural.config import NeuralSolverConfig
from mfgnet.neural.jets import network_jets
from mfgnet.neural.networks import MFGNetworks, initial_log_mass
from mfgnet.neural.residuals import FieldResiduals, mfg_residuals
from mfgnet.neural.sampling import Batch

U_TERMS = ("hjb", "hjb_gradient", "terminal", "boundary_u", "mean_zero")
M_TERMS = ("fp", "weak_fp", "initial", "boundary_m", "mass")


@dataclass
class StepLosses:
    terms: dict[str, torch.Tensor]
    residuals: FieldResiduals
    log_mass: torch.Tensor


def log_mass_of(nets: MFGNetworks, t: torch.Tensor, y: torch.Tensor, logw: torch.Tensor) -> torch.Tensor:
    """log ∫ (unnormalised m)(t, y) dy by the quadrature (y (k, d), log weights (k,))."""
    w = nets.density_field(t, y)
    if nets.density_output == "exp":
        return torch.logsumexp(w + logw, dim=0)
    return torch.log((torch.nn.functional.softplus(w) * torch.exp(logw)).sum())


def free_log_mass_at_start(nets: MFGNetworks, batch: Batch, log_mass0: torch.Tensor) -> torch.Tensor:
    """log of the blend's free part's mass at t = 0 over m0's, on the first slice's quadrature grid (a scalar).  The
    blend is m0 there whatever the free part is, so only this reads it: a free part of mass e^8 swamps m0 at t = 0+."""
    y, logw = batch.quad_y[0], batch.quad_logw[0]  # renormalised mass: a grid per slice, (S + 1, k)
    t0 = torch.zeros(y.shape[0], 1, dtype=y.dtype, device=y.device)
    free = nets.free_field(t0, y) - nets.free_shift(y.dtype)
    return torch.logsumexp(free + logw, -1) - log_mass0.reshape(-1)[0]


def compute_losses(problem, nets: MFGNetworks, batch: Batch, cfg: NeuralSolverConfig,
                   probes: torch.Tensor | None) -> StepLosses:
    """All loss terms of this batch (unweighted) and the residuals behind them."""
    with nets.shared_free_shift(batch.x.dtype):
        return _compute_losses(problem, nets, batch, cfg, probes)


def _compute_losses(problem, nets: MFGNetworks, batch: Batch, cfg: NeuralSolverConfig,
                    probes: torch.Tensor | None) -> StepLosses:
    lcfg = cfg.loss
    terms: dict[str, torch.Tensor] = {}
    ergodic = problem.is_ergodic
    log_mass = nets.log_mass
    dlog_mass_dt = None
    terminal_log_mass = nets.log_mass
    log_m_quad = density_on_quad = None  # (S + 1, k) or (k,): log m and m at the quadrature points

    if ergodic:
        zeros_q = torch.zeros(batch.quad_y.shape[0], 1, dtype=batch.x.dtype, device=batch.x.device)
        if lcfg.normalization == "hard":
            log_mass = log_mass_of(nets, zeros_q, batch.quad_y, batch.quad_logw)
        else:
            weights = torch.exp(batch.quad_logw)
            volume = weights.sum()
            u_q = nets.raw_value(zeros_q, batch.quad_y)
            terms["mean_zero"] = ((weights * u_q).sum() / volume) ** 2
        if lcfg.normalization == "penalty" or not problem.coupling.is_local:
            log_m_quad = log_density(nets, zeros_q, batch.quad_y, log_mass)
            density_on_quad = torch.exp(log_m_quad)
            if lcfg.normalization == "penalty":
                terms["mass"] = ((torch.exp(batch.quad_logw) * density_on_quad).sum() - 1) ** 2
    elif batch.quad_y is not None and nets.renormalise:
        # ∫m(t) = 1 per slice by construction: log_mass(t_s) = log Σ_k e^{w(t_s, y_k)} w_k over
        # the slice's quadrature, relative to m0's; its t-derivative enters the FP residual.
        S1, k, d = batch.quad_y.shape
        tq = batch.quad_t.repeat_interleave(k).unsqueeze(-1).detach().requires_grad_(True)
        field_q = nets.density_field(tq, batch.quad_y.reshape(-1, d))
        (dfield_dt,) = torch.autograd.grad(field_q.sum(), tq, create_graph=True)
        logits = field_q.reshape(S1, k) + batch.quad_logw
        log_mass0 = (initial_log_mass(problem, batch.quad_y, batch.quad_logw) if batch.quad_log_mass0 is None
                     else batch.quad_log_mass0)
        slice_log_mass = torch.logsumexp(logits, -1) - log_mass0
        slice_dlog_mass = (torch.softmax(logits, -1) * dfield_dt.reshape(S1, k)).sum(-1)
        log_m_quad = logits - batch.quad_logw - slice_log_mass.unsqueeze(-1)
        density_on_quad = torch.exp(log_m_quad)
        log_mass = slice_log_mass[batch.slice_id]
        dlog_mass_dt = slice_dlog_mass[batch.slice_id]
        terminal_log_mass = slice_log_mass[-1]
        if lcfg.weak_fp > 0 and problem.domain.bounded:  # test functions without boundary terms
            dlog_m_dt = dfield_dt.reshape(S1, k) - slice_dlog_mass.unsqueeze(-1)
            terms["weak_fp"] = weak_fp_term(problem, nets, batch, density_on_quad, dlog_m_dt, lcfg.weak_fp_modes)
        if lcfg.mass > 0 and nets.hard_initial in ("blend", "heat"):
            # The mass before renormalising stays near m0's while the blend fades: else the free
            # part can grow by e^16 and swamp the fading m0 at t = 0+, a jump in time that no slice
            # samples (torus_bimodal_1d: m flat from t = 1e-5 on, results/neural_zoo/means.md).
            # Weighted by the fading m0's share e^{-t/τ}: later the free part's mass is a gauge that
            # renormalising removes (held at every time, torus_nonlocal_1d went 0.014 -> 0.032).
            keep = torch.exp(-batch.quad_t / nets.blend_time)
            held = keep * slice_log_mass ** 2
            if lcfg.mass_at_start:  # the free part's own mass at t = 0, which no slice sees (loss.mass_at_start)
                held = torch.cat([held, free_log_mass_at_start(nets, batch, log_mass0).square().reshape(1)])
            terms["mass"] = held.mean()
    elif batch.quad_y is not None:
        S1, k, d = batch.quad_y.shape
        tq = batch.quad_t.repeat_interleave(k).unsqueeze(-1)
        # log m, not m: in high d the importance weights m / q overflow float32 otherwise.
        log_m_quad = log_density(nets, tq, batch.quad_y.reshape(-1, d), log_mass).reshape(S1, k)
        density_on_quad = torch.exp(log_m_quad)
        # On R^d the mass follows from FP + m(0) = m0, and its importance-sampling estimate is
        # noisy in high d (the penalty would then mostly fight the noise): grid quadrature only.
        if lcfg.mass > 0 and not batch.self_normalised:
            mass = (torch.exp(batch.quad_logw) * density_on_quad).sum(-1)
            terms["mass"] = ((mass - 1) ** 2).mean()

    # loss.hjb_gradient differentiates the HJB residual in x, so x is a leaf of the whole residual's graph,
    # ∫K(x, y) m(t, y) dy included (its kernel reads the point)
    x_graph = bool(lcfg.hjb_gradient) and not ergodic  # None (unresolved, outside a Trainer): off
    if x_graph:
        batch = replace(batch, x=batch.x.detach().requires_grad_(True))
    conv = conv_terminal = None
    if problem.coupling_needs_density_integral():
        conv, conv_terminal = nonlocal_integrals(problem, batch, log_m_quad, lcfg.differentiate_conv)

    mean_control = None
    if problem.has_mean_control:  # an MFG of controls: ᾱ per slice, handed to each point of the slice
        mean_control = mean_control_on_slices(problem, nets, batch, log_m_quad, lcfg.differentiate_conv)
        mean_control = mean_control[batch.slice_id]

    lam = nets.lam if (ergodic and lcfg.lambda_mode == "trainable") else None
    relative = fp_relative(problem, lcfg)
    jets = network_jets(nets, lcfg.derivatives, lcfg.compile_jets)
    res = mfg_residuals(problem, nets.raw_value, nets.density_field, batch.t, batch.x,
                        density_output=nets.density_output, log_mass=log_mass, ergodic_constant=lam,
                        conv=None if problem.coupling.is_local else conv, probes=probes,
                        fp_relative=relative, dlog_mass_dt=dlog_mass_dt, mean_control=mean_control, jets=jets,
                        coupling_grad_scale=hjb_density_scale(lcfg), x_graph=x_graph)
    if batch.fp_scale is not None:  # points where only the HJB residual is imposed (sampler.hjb_fraction)
        res = replace(res, fp=res.fp * batch.fp_scale)
    if x_graph:
        terms["hjb_gradient"] = hjb_gradient_term(res.hjb, batch.x, batch.time_scale)
    if batch.time_scale is not None:  # sampler.time_warp: importance weights of the slice times
        res = replace(res, hjb=res.hjb * batch.time_scale, fp=res.fp * batch.time_scale)
    if lcfg.causal != "none" and not ergodic:
        terms["hjb"], terms["fp"] = causal_terms(res.hjb, res.fp, batch.slice_id, batch.quad_t.shape[0] - 1,
                                                 lcfg.causal_epsilon, relative=lcfg.causal == "relative")
    else:
        terms["hjb"] = (res.hjb ** 2).mean()
        terms["fp"] = (res.fp ** 2).mean()

    if not ergodic:
        if not nets.hard_terminal:
            terms["terminal"] = terminal_loss(problem, nets, batch, terminal_log_mass, conv_terminal)
        if nets.hard_initial == "off":
            initial_log_mass_ = nets.mass_shift(torch.zeros(1, 1, dtype=batch.x.dtype, device=batch.x.device)) \
                if nets.renormalise else log_mass
            terms["initial"] = initial_loss(problem, nets, batch, initial_log_mass_, lcfg.initial_form)
    if batch.bnd_x is not None:
        terms["boundary_u"], terms["boundary_m"] = boundary_losses(problem, nets, batch, log_mass,
                                                                   relative=relative)
    return StepLosses(terms=terms, residuals=res, log_mass=log_mass)


def hjb_gradient_term(hjb: torch.Tensor, x: torch.Tensor, time_scale: torch.Tensor | None) -> torch.Tensor:
    """Mean of |∇x r|² over the points, r the HJB residual (n,) as a function of the points x (n, d) (a leaf
    of r's graph), each point weighted as its residual (``time_scale``, the slice times' importance weights).

    Why (gradient-enhanced PINNs, Yu, Lu, Meneveau & Perdikaris 2022): where the crowd is narrow, u's
    curvature across it changes the HJB residual there by about curvature error × width² only, so the residual
    hardly sees it, while the crowd's width follows that curvature.  For B2 (u = a x²/2 + β x + c),
    ∂x r = x (a² − κ − a') + (...): the Riccati equation of a appears at every point, scaled by x, not x²."""
    (grad,) = torch.autograd.grad(hjb.sum(), x, create_graph=True)
    square = (grad ** 2).sum(-1)
    if time_scale is not None:
        square = square * time_scale ** 2
    return square.mean()


def hjb_density_scale(lcfg) -> float:
    """The factor that turns the HJB term's weight into ``loss.hjb_density`` in the density network's
    gradient (1 when it is None: both networks see ``loss.hjb``, a number once the trainer resolved it)."""
    if lcfg.hjb_density is None or not lcfg.hjb:
        return 1.0
    return lcfg.hjb_density / lcfg.hjb


def weak_fp_term(problem, nets: MFGNetworks, batch: Batch, m_q: torch.Tensor, dlog_m_dt: torch.Tensor,
                 modes: int) -> torch.Tensor:
    """Mean square of the weak FP residuals r_{s,k} = ∫ m_t φ_k − ν ∫ m Δφ_k + ∫ m ∂pH(∇u)·∇φ_k over
    the slices s (their quadrature: points (S1, n, d), m_q (S1, n), ∂t log m (S1, n)) and the test
    functions of :func:`weak_test_functions` (no boundary terms: no-flux cosines on a box, Fourier
    modes on a torus), mode k scaled by 1 / (1 + |ω_k|²) (an H⁻¹-like norm)."""
    S1, n, d = batch.quad_y.shape
    drift = drift_on_quadrature(problem, nets, batch, create_graph=True)  # (S1 n, d)
    phi, grad, lap, omega2 = weak_test_functions(problem, batch.quad_y.reshape(-1, d).detach(), modes)
    flux = (drift.unsqueeze(1) * grad).sum(-1)  # ∂pH·∇φ, (S1 n, M)
    w = torch.exp(batch.quad_logw).reshape(-1, 1) * m_q.reshape(-1, 1)  # quadrature weight × m
    integrand = w * (dlog_m_dt.reshape(-1, 1) * phi - problem.viscosity * lap + flux)
    r = integrand.reshape(S1, n, -1).sum(1)  # (S1, M)
    return (r ** 2 / (1.0 + omega2)).mean()


def weak_test_functions(problem, y: torch.Tensor, modes: int):
    """(φ (n, M), ∇φ (n, M, d), Δφ (n, M), |ω|² (M,)) at points y (n, d): on a box the no-flux cosines
    Π_i cos(ω_i (y_i − a_i)), ω_i = π k_i / L_i, 0 ≤ k_i ≤ modes, k ≠ 0 (∂φ/∂n = 0 at the faces); on a
    torus cos and sin of ω·y, ω = 2π k / L over half the lattice |k_i| ≤ modes."""
    d = y.shape[1]
    lower, upper = problem.domain.bounds()
    lower, upper = lower.to(y), upper.to(y)
    ks = torch.arange(-modes if problem.domain.periodic else 0, modes + 1, dtype=y.dtype, device=y.device)
    lattice = torch.stack(torch.meshgrid(*[ks] * d, indexing="ij"), -1).reshape(-1, d)
    if problem.domain.periodic:
        # half the lattice: the first nonzero k_i positive (k and −k give the same cos and ± sin)
        first_nonzero = (lattice != 0).to(torch.int64).argmax(-1, keepdim=True)  # row 0 (k = 0) gives 0
        sign = lattice.gather(1, first_nonzero).squeeze(1)
        omega = 2 * math.pi * lattice[sign > 0] / (upper - lower)
        theta = (y - lower) @ omega.T  # (n, M)
        cos, sin = torch.cos(theta), torch.sin(theta)
        phi = torch.cat([cos, sin], 1)
        grad = torch.cat([-sin.unsqueeze(-1) * omega, cos.unsqueeze(-1) * omega], 1)
        omega2 = (omega ** 2).sum(-1).repeat(2)
    else:
        omega = math.pi * lattice[1:] / (upper - lower)  # k = 0 left out
        phase = (y - lower).unsqueeze(1) * omega  # (n, M, d)
        cos, sin = torch.cos(phase), torch.sin(phase)
        phi = cos.prod(-1)
        grad = torch.stack([-omega[:, i] * sin[..., i] * torch.cat([cos[..., :i], cos[..., i + 1:]], -1).prod(-1)
                            for i in range(d)], -1)
        omega2 = (omega ** 2).sum(-1)
    return phi, grad, -omega2 * phi, omega2


def causal_terms(hjb: torch.Tensor, fp: torch.Tensor, slice_id: torch.Tensor, slices: int, epsilon: float,
                 relative: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Causally weighted mean squares over time slices (slice index increasing in t).

    FP is solved forward: slice i weighs exp(-ε Σ_{k<i} L_k); HJB backward: exp(-ε Σ_{k>i} L_k),
    L_k the mean square over slice k.  Each point keeps its slice's weight, so ε → 0 gives the
    plain means even where slices hold unequal numbers of points (density-placed points crowd
    the slices where m is concentrated; an average of per-slice means would take that emphasis
    away).  Weights are detached, so a slice is trained once those before it (in its direction) are.

    ``relative``: the sums are divided by the equation's total Σ_k L_k, so the weight depends on the
    share of the residual that lies before a slice, not on its size: the last slice never weighs
    less than exp(-ε), however large the early residual (the absolute form starved the later
    slices of box_bump_2d, whose early residual is large).
    """
    zeros = torch.zeros(slices, dtype=hjb.dtype, device=hjb.device)
    count = zeros.index_add(0, slice_id, torch.ones_like(hjb)).clamp_min(1)
    sum_hjb = zeros.index_add(0, slice_id, hjb * hjb)
    sum_fp = zeros.index_add(0, slice_id, fp * fp)
    with torch.no_grad():
        per_hjb, per_fp = sum_hjb / count, sum_fp / count
        before = torch.cumsum(per_fp, 0) - per_fp
        after = torch.flip(torch.cumsum(torch.flip(per_hjb, [0]), 0), [0]) - per_hjb
        if relative:
            tiny = torch.finfo(hjb.dtype).tiny
            before, after = before / (per_fp.sum() + tiny), after / (per_hjb.sum() + tiny)
        w_fp, w_hjb = torch.exp(-epsilon * before), torch.exp(-epsilon * after)
    n = hjb.shape[0]
    return (w_hjb * sum_hjb).sum() / n, (w_fp * sum_fp).sum() / n


def log_density(nets: MFGNetworks, t: torch.Tensor, x: torch.Tensor, log_mass) -> torch.Tensor:
    """log m for either density output, shape (n,)."""
    if nets.density_output == "exp":
        return nets.log_density(t, x, log_mass)
    return torch.log(nets.density(t, x, log_mass) + torch.finfo(x.dtype).tiny)


def density_weights(batch: Batch, log_m_quad: torch.Tensor, differentiate: bool) -> torch.Tensor:
    """Weights w with ∫ f m dy ≈ Σ_k w_k f(y_k) on the quadrature points of each slice (or of the
    ergodic problem): the quadrature weights times m, in log space (self-normalised for importance
    samples); m detached unless ``differentiate``."""
    log_w = batch.quad_logw + (log_m_quad if differentiate else log_m_quad.detach())
    return torch.softmax(log_w, dim=-1) if batch.self_normalised else torch.exp(log_w)


def nonlocal_integrals(problem, batch: Batch, log_m_quad: torch.Tensor, differentiate: bool):
    """conv(x) = ∫K(x, y) m(t, y) dy at the interior points (n, c) and at the terminal points.

    Each time slice shares its quadrature points; the loop runs over slices, not points.
    Weights are formed in log space (softmax for self-normalised importance sampling).
    When the slices are the sampler's equal contiguous blocks (``batch.slice_size``; not in a
    data-parallel shard, whose rows differ in number), each slice's points are a view of the
    rows: no index search per slice, which on a GPU is a host-device sync (16 a step by default).
    """
    kernel = problem.coupling.kernel or problem.terminal_cost.kernel
    w = density_weights(batch, log_m_quad, differentiate)
    if problem.is_ergodic:
        return torch.einsum("nkc,k->nc", kernel(batch.x, batch.quad_y), w), None
    S = batch.quad_t.shape[0] - 1
    conv = None
    per = batch.slice_size
    if not problem.coupling.is_local and per is not None and per * S == batch.x.shape[0]:
        conv = torch.cat([torch.einsum("nkc,k->nc", problem.coupling.kernel(batch.x[s * per:(s + 1) * per],
                                                                            batch.quad_y[s]), w[s])
                          for s in range(S)])
    elif not problem.coupling.is_local:
        parts = []
        order = []
        for s in range(S):
            idx = torch.nonzero(batch.slice_id == s).flatten()
            if idx.numel() == 0:
                continue
            parts.append(torch.einsum("nkc,k->nc", problem.coupling.kernel(batch.x[idx], batch.quad_y[s]), w[s]))
            order.append(idx)
        conv = torch.empty(batch.x.shape[0], parts[0].shape[1], dtype=batch.x.dtype, device=batch.x.device)
        conv = conv.index_copy(0, torch.cat(order), torch.cat(parts))
    conv_terminal = None
    if not problem.terminal_cost.is_local:
        conv_terminal = torch.einsum("nkc,k->nc", problem.terminal_cost.kernel(batch.term_x, batch.quad_y[S]), w[S])
    return conv, conv_terminal


def mean_control_on_slices(problem, nets: MFGNetworks, batch: Batch, log_m_quad: torch.Tensor,
                           differentiate: bool) -> torch.Tensor:
    """ᾱ(t_s) = ∫ α(t_s, y) m(t_s, y) dy at every slice time, α = -∂pH(y, ∇u), shape (S + 1, d).

    The slice's quadrature (the one that renormalises m and integrates nonlocal couplings) serves
    here too: one extra pass of u and ∇u over its points.  With ``differentiate`` False the
    mean control is a constant of the step (a fixed-point view); True lets the loss see how
    ᾱ moves with the networks, as ``loss.differentiate_conv`` does for ∫K m."""
    alpha = -drift_on_quadrature(problem, nets, batch, create_graph=differentiate).reshape(batch.quad_y.shape)
    mean_control = torch.einsum("skd,sk->sd", alpha, density_weights(batch, log_m_quad, differentiate))
    return mean_control if differentiate else mean_control.detach()


def drift_on_quadrature(problem, nets: MFGNetworks, batch: Batch, create_graph: bool) -> torch.Tensor:
    """∂pH(y, ∇u(t_s, y)) at every slice's quadrature points, flattened to (S1 k, d): one pass of u and ∇u
    (``create_graph``: differentiable with respect to u's parameters)."""
    S1, k, d = batch.quad_y.shape
    tq = batch.quad_t.repeat_interleave(k).unsqueeze(-1).detach()
    y = batch.quad_y.reshape(-1, d).detach().requires_grad_(True)
    u = nets.raw_value(tq, y)
    (grad_u,) = torch.autograd.grad(u.sum(), y, create_graph=create_graph)
    return problem.hamiltonian.grad_p(y, grad_u)


def terminal_loss(problem, nets: MFGNetworks, batch: Batch, log_mass, conv_terminal) -> torch.Tensor:
    x = batch.term_x
    t = torch.full((x.shape[0], 1), problem.horizon, dtype=x.dtype, device=x.device)
    u = nets.raw_value(t, x)
    m = nets.density(t, x, log_mass)
    g = problem.terminal_cost(t, x, m, conv_terminal)
    return ((u - g) ** 2).mean()


def initial_loss(problem, nets: MFGNetworks, batch: Batch, log_mass, form: str) -> torch.Tensor:
    x = batch.init_x
    t = torch.zeros(x.shape[0], 1, dtype=x.dtype, device=x.device)
    m0 = problem.initial_density(x)
    if form == "log" or (form == "auto" and nets.density_output == "exp"):
        tiny = torch.finfo(x.dtype).tiny
        if nets.density_output == "exp":
            log_m = nets.log_density(t, x, log_mass)
        else:
            log_m = torch.log(nets.density(t, x, log_mass) + tiny)
        return ((log_m - torch.log(m0 + tiny)) ** 2).mean()
    m = nets.density(t, x, log_mass)
    return ((m - m0) ** 2).mean() / (m0 ** 2).mean().clamp_min(torch.finfo(x.dtype).tiny)


def fp_relative(problem, lcfg) -> bool:
    """Whether the FP residual (and the no-flux flux) is divided by m: loss.fp_form, or on bounded
    time-dependent problems loss.fp_form_bounded unless that is "same"."""
    form = lcfg.fp_form
    if lcfg.fp_form_bounded != "same" and not problem.is_ergodic and problem.domain.bounded:
        form = lcfg.fp_form_bounded
    return form == "relative"


def boundary_losses(problem, nets: MFGNetworks, batch: Batch, log_mass, relative: bool = True
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """No-flux Box: ∂u/∂n = 0 and (ν ∇m + m ∂pH(x, ∇u))·n = 0, the latter divided by m
    (``relative``, as the FP residual with fp_form="relative") or not (fp_form="density": a
    face where m is tiny then asks for little, as the grid's flux does; m there is taken with
    the networks' constant log_mass, i.e. without the per-time renormalisation, a factor ≈ 1)."""
    x = batch.bnd_x.detach().requires_grad_(True)
    t = batch.bnd_t
    (grad_u,) = torch.autograd.grad(nets.raw_value(t, x).sum(), x, create_graph=True)
    w = nets.density_field(t, x)
    (grad_w,) = torch.autograd.grad(w.sum(), x, create_graph=True)
    if nets.density_output == "exp":
        grad_log_m = grad_w
    else:
        grad_log_m = (torch.sigmoid(w) / torch.nn.functional.softplus(w)).unsqueeze(-1) * grad_w
    drift = problem.hamiltonian.grad_p(x, grad_u)
    n = batch.bnd_normal
    flux = ((problem.viscosity * grad_log_m + drift) * n).sum(-1)
    if not relative:
        flux = flux * nets.density(t, x, nets.log_mass)
    return ((grad_u * n).sum(-1) ** 2).mean(), (flux ** 2).mean()
