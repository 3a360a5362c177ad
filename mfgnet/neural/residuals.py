"""PDE residuals of any (u, m) pair given as torch callables, by autograd.

The neural solver trains on these; the benchmark tests evaluate them on the exact
solutions, which guards both the formulas and this code.

    HJB:  -∂t u - ν Δu + H(x, ∇u) - F(t, x, m)        (ergodic:  λ - ν Δu + H - F)
    FP:    ∂t m - ν Δm - div(m ∂pH(x, ∇u))             (ergodic:  -ν Δm - div(...))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


def gradient(out: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
    """d(sum out)/d inp, kept in the graph so that losses can be differentiated again
    (zeros where ``out`` does not depend on ``inp``, e.g. a stationary density's ∂t m)."""
    (g,) = torch.autograd.grad(out.sum(), inp, create_graph=True, allow_unused=True, materialize_grads=True)
    return g


def divergence(field: torch.Tensor, x: torch.Tensor, probes: torch.Tensor | None = None) -> torch.Tensor:
    """div f at each point: field (n, d) as a function of x (n, d); returns (n,).

    With ``probes`` (k, n, d) of zero-mean unit-variance entries (Rademacher), the
    Hutchinson estimate (1/k) Σ_j v_jᵀ (∂f/∂x) v_j is returned instead: one backward pass
    per probe instead of one per dimension.
    """
    if probes is None:
        return sum(gradient(field[:, i], x)[:, i] for i in range(x.shape[1]))
    total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for v in probes:
        total = total + (gradient((field * v).sum(-1), x) * v).sum(-1)
    return total / probes.shape[0]


def rademacher(k: int, n: int, d: int, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """k probe vectors per point, entries ±1; shape (k, n, d)."""
    bits = torch.randint(0, 2, (k, n, d), generator=generator, device="cpu")
    return (2 * bits - 1).to(dtype=like.dtype, device=like.device)


def pde_residuals(
    problem,
    value_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    density_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    t: torch.Tensor,
    x: torch.Tensor,
    ergodic_constant: torch.Tensor | float | None = None,
    conv: torch.Tensor | None = None,
    probes: torch.Tensor | None = None,
    mean_control: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """HJB and FP residuals, each of shape (n,).

    Args:
        value_fn, density_fn: ``f(t, x) -> (n,)`` with t (n, 1) and x (n, d).
        t, x: collocation points; this function turns on their gradients itself.
        ergodic_constant: λ, required for ergodic problems.
        conv: ``∫ K(x, y) m(t, y) dy`` at the points, shape (n, c), for nonlocal couplings.
        probes: Hutchinson probes (k, n, d) for Δ and div; ``None`` means exact.
        mean_control: ᾱ (n, d) at the points, for an MFG of controls (required there).
    """
    x = x if x.requires_grad else x.detach().requires_grad_(True)
    t = t if t.requires_grad else t.detach().requires_grad_(True)
    nu = problem.viscosity
    u = value_fn(t, x)
    m = density_fn(t, x)
    grad_u = gradient(u, x)
    grad_m = gradient(m, x)
    ham = problem.hamiltonian
    drift = ham.grad_p(x, grad_u)
    coupling = _with_mean_control_cost(problem, problem.coupling(t, x, m, conv), t, x, mean_control)

    lap_u = divergence(grad_u, x, probes) if nu > 0 else 0.0
    lap_m = divergence(grad_m, x, probes) if nu > 0 else 0.0
    div_flux = divergence(m.unsqueeze(-1) * drift, x, probes)

    if problem.is_ergodic:
        if ergodic_constant is None:
            raise ValueError("ergodic problems need the ergodic constant λ for their HJB residual")
        hjb = ergodic_constant - nu * lap_u + ham(x, grad_u) - coupling
        fp = -nu * lap_m - div_flux
    else:
        hjb = -gradient(u, t)[:, 0] - nu * lap_u + ham(x, grad_u) - coupling
        fp = gradient(m, t)[:, 0] - nu * lap_m - div_flux
    return hjb, fp


@dataclass
class FieldResiduals:
    """Residuals and the intermediate fields at n collocation points (all (n,) or (n, d))."""

    hjb: torch.Tensor
    fp: torch.Tensor
    u: torch.Tensor
    m: torch.Tensor
    grad_u: torch.Tensor
    drift: torch.Tensor
    ergodic_constant: torch.Tensor | None


def mfg_residuals(
    problem,
    value_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    field_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    t: torch.Tensor,
    x: torch.Tensor,
    *,
    density_output: str = "exp",
    log_mass: torch.Tensor | float = 0.0,
    ergodic_constant: torch.Tensor | None = None,
    conv: torch.Tensor | None = None,
    probes: torch.Tensor | None = None,
    fp_relative: bool = True,
    dlog_mass_dt: torch.Tensor | None = None,
    mean_control: torch.Tensor | None = None,
    jets: tuple[Callable, Callable] | None = None,
    coupling_grad_scale: float = 1.0,
    x_graph: bool = False,
) -> FieldResiduals:
    """HJB and FP residuals of a (u, m) pair given by a value field and a density *field* w.

    The density is ``m = exp(w - log_mass)`` (``density_output="exp"``) or
    ``m = softplus(w) exp(-log_mass)``.  Compared with :func:`pde_residuals` this

    * differentiates u and w once each for ∂t and ∇ together (one backward pass each);
    * writes div(m b) = ∇m·b + m div b with b = ∂pH(x, ∇u), and for a quadratic H reuses
      div b = scale · Δu instead of differentiating b again;
    * for the exp output works on log m, where the FP residual divided by m reads
      ∂t w - ν(Δw + |∇w|²) - ∇w·b - div b: no exp in the derivatives, scale-free in R^d.

    Derivatives use reverse-mode autograd.  A torch.func variant (vmap of jacfwd(jacrev))
    of ∂t, ∇ and the exact Laplacian, forward + backward, measured 0.16 s against 0.05 s
    (B1 d=1, 512 points), 0.10 against 0.014 s (B3) and 0.08 against 0.06 s (B1 d=2, 1024
    points) on the 2-core CPU with one thread, so it is not used here.

    Args:
        t (n, 1), x (n, d): points (gradients are turned on here).
        ergodic_constant: λ for ergodic problems; ``None`` means the least-squares optimum
            λ = -mean(HJB residual without λ) over these points (detached).
        conv (n, c): ∫K(x, y) m(t, y) dy for nonlocal couplings.
        probes (k, n, d): Hutchinson probes for Δ and div; ``None`` = exact.
        fp_relative: return FP / m instead of FP.
        dlog_mass_dt (n,): d/dt of a time-dependent log_mass (a per-time renormalisation of m).
        mean_control (n, d): the crowd's mean control ᾱ at each point's time, required when the
            problem is an MFG of controls (its cost f(t, x, ᾱ) is added to F).
        jets: (u's jet, the field's jet), functions of (t, x) giving the value, the derivatives along
            (t,) x and the Laplacian in one forward pass (:func:`mfgnet.neural.jets.network_jets`); used
            with a quadratic H and the exact Laplacian, where they replace the nested autograd passes.
        coupling_grad_scale: the factor on the gradient that reaches m (and ∫K m) through F in the HJB
            residual; the values are unchanged (``loss.hjb_density``: the HJB term's weight in the density
            network's gradient, apart from its weight in the value network's).
        x_graph: ``x`` (a leaf that requires grad) is kept as given, also by the jets, so that the caller can
            differentiate the residuals in x (``loss.hjb_gradient``); else the residuals use their own leaf.
    """
    from mfgnet.problems.hamiltonians import QuadraticHamiltonian

    if not (x_graph and x.requires_grad):  # x_graph: the caller's leaf x, differentiated again afterwards
        x = x.detach().requires_grad_(True)
    t = t.detach().requires_grad_(True)
    time_dependent = not problem.is_ergodic
    inputs = [t, x] if time_dependent else [x]
    nu = problem.viscosity
    ham = problem.hamiltonian
    quadratic = isinstance(ham, QuadraticHamiltonian)

    if jets is not None and quadratic and probes is None:
        t = t.detach()
        if not x_graph:
            x = x.detach()
        u, grad_u, lap_u = jets[0](t, x)
        w, grad_w, lap_w = jets[1](t, x)
        if time_dependent:  # the first direction is t
            du, dw = (grad_u[:, :1],), (grad_w[:, :1],)
            grad_u, grad_w = grad_u[:, 1:], grad_w[:, 1:]
    else:
        u = value_fn(t, x)
        w = field_fn(t, x)
        du = torch.autograd.grad(u.sum(), inputs, create_graph=True)
        dw = torch.autograd.grad(w.sum(), inputs, create_graph=True)
        grad_u, grad_w = du[-1], dw[-1]
        lap_u = divergence(grad_u, x, probes) if (nu > 0 or quadratic) else torch.zeros_like(u)
        lap_w = divergence(grad_w, x, probes) if nu > 0 else torch.zeros_like(w)
    drift = ham.grad_p(x, grad_u)
    div_drift = ham.scale * lap_u if quadratic else divergence(drift, x, probes)

    log_mass = torch.as_tensor(log_mass, dtype=x.dtype, device=x.device)
    if density_output == "exp":
        m = torch.exp(w - log_mass)
        fp = -nu * (lap_w + (grad_w * grad_w).sum(-1)) - (grad_w * drift).sum(-1) - div_drift
        if time_dependent:
            fp = fp + dw[0][:, 0]
        if dlog_mass_dt is not None:
            fp = fp - dlog_mass_dt
        if not fp_relative:
            fp = fp * m
    else:
        scale = torch.exp(-log_mass)
        sig = torch.sigmoid(w)
        m = nn_softplus(w) * scale
        grad_m = (scale * sig).unsqueeze(-1) * grad_w
        lap_m = scale * (sig * (1 - sig) * (grad_w * grad_w).sum(-1) + sig * lap_w)
        fp = -nu * lap_m - (grad_m * drift).sum(-1) - m * div_drift
        if time_dependent:
            fp = fp + scale * sig * dw[0][:, 0]
        if dlog_mass_dt is not None:
            fp = fp - m * dlog_mass_dt
        if fp_relative:
            fp = fp / m

    m_seen, conv_seen = m, conv
    if coupling_grad_scale != 1.0:
        m_seen = _scale_gradient(m, coupling_grad_scale)
        conv_seen = None if conv is None else _scale_gradient(conv, coupling_grad_scale)
    coupling = _with_mean_control_cost(problem, problem.coupling(t, x, m_seen, conv_seen), t, x, mean_control)
    hjb0 = -nu * lap_u + ham(x, grad_u) - coupling
    lam = None
    if time_dependent:
        hjb = hjb0 - du[0][:, 0]
    else:
        lam = -hjb0.mean().detach() if ergodic_constant is None else ergodic_constant
        hjb = hjb0 + lam
    return FieldResiduals(hjb=hjb, fp=fp, u=u, m=m, grad_u=grad_u, drift=drift, ergodic_constant=lam)


def _scale_gradient(value: torch.Tensor, factor: float) -> torch.Tensor:
    """``value`` unchanged, its gradient multiplied by ``factor`` on the way back."""
    return value.detach() + factor * (value - value.detach())


def _with_mean_control_cost(problem, coupling: torch.Tensor, t, x, mean_control) -> torch.Tensor:
    """F plus an MFG of controls' cost f(t, x, ᾱ); the term is never dropped silently."""
    if not getattr(problem, "has_mean_control", False):
        return coupling
    if mean_control is None:
        raise ValueError(f"problem {problem.name!r} is an MFG of controls: its residuals need mean_control (n, d)")
    return coupling + problem.mean_control_cost(t, x, mean_control)


def nn_softplus(w: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.softplus(w)
