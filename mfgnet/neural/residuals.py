"""PDE residuals of any (u, m) pair given as torch callables, by autograd.

The neural solver trains on these; the benchmark tests evaluate them on the exact
solutions, which guards both the formulas and this code.

    HJB:  -∂t u - ν Δu + H(x, ∇u) - F(t, x, m)        (ergodic:  λ - ν Δu + H - F)
    FP:    ∂t m - ν Δm - div(m ∂pH(x, ∇u))             (ergodic:  -ν Δm - div(...))
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def gradient(out: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
    """d(sum out)/d inp, kept in the graph so that losses can be differentiated again."""
    (g,) = torch.autograd.grad(out.sum(), inp, create_graph=True)
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
) -> tuple[torch.Tensor, torch.Tensor]:
    """HJB and FP residuals, each of shape (n,).

    Args:
        value_fn, density_fn: ``f(t, x) -> (n,)`` with t (n, 1) and x (n, d).
        t, x: collocation points; this function turns on their gradients itself.
        ergodic_constant: λ, required for ergodic problems.
        conv: ``∫ K(x, y) m(t, y) dy`` at the points, shape (n, c), for nonlocal couplings.
        probes: Hutchinson probes (k, n, d) for Δ and div; ``None`` means exact.
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
    coupling = problem.coupling(t, x, m, conv)

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
