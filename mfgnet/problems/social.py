"""The social optimum (mean field control) of a game whose crowd cost has a potential.

When each agent pays the running cost L(x, α) + F(t, x, m) and the terminal cost G(x, m),
the crowd's total (social) cost is

    J(α) = ∫₀ᵀ∫ m (L(x, α) + F(t, x, m)) dx dt + ∫ m(T) G(x, m(T)) dx,

with m the density that the feedback α produces.  For a local F its minimiser satisfies the
MFG system with F replaced by the marginal crowd cost ∂(m F)/∂m = F + m ∂F/∂m (and G by
G + m ∂G/∂m): the planner charges each agent the cost it inflicts on the others too
(Lasry–Lions 2007; Bensoussan, Frehse and Yam 2013, ch. 4).  So the cooperative problem is
an ordinary [`MFGProblem`][mfgnet.problems.problem.MFGProblem] and every solver solves it.
"""

from __future__ import annotations

import torch

from mfgnet.problems.couplings import Coupling, LocalCoupling, ZeroCoupling
from mfgnet.problems.problem import MFGProblem
from mfgnet.problems.validation import ProblemError


def marginal_cost(coupling: Coupling, field: str) -> Coupling:
    """The local coupling ``F + m ∂F/∂m`` (∂F/∂m by autograd, itself differentiable in m, so the
    grid solver's Newton and the neural solver's residual see its exact m-derivative)."""
    if isinstance(coupling, ZeroCoupling):
        return coupling
    if not coupling.is_local:
        raise ProblemError(f"{field} is nonlocal: the social optimum is implemented for local couplings "
                           "F(t, x, m) only (the marginal cost of a nonlocal one is another nonlocal term)")

    def marginal(t: torch.Tensor, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            m_ = m if m.requires_grad else m.detach().requires_grad_(True)
            value = coupling(t, x, m_)
            if not value.requires_grad:  # F does not depend on m: nothing to add
                return value
            (slope,) = torch.autograd.grad(value.sum(), m_, create_graph=True, allow_unused=True)
        out = value if slope is None else value + m_ * slope
        return out if m.requires_grad else out.detach()

    return LocalCoupling(marginal)


def social_optimum(problem: MFGProblem) -> MFGProblem:
    """The mean field control problem of ``problem``: the same agents, noise, Hamiltonian and
    initial crowd, with the coupling F and terminal cost G replaced by their marginal costs
    F + m ∂F/∂m and G + m ∂G/∂m.  Its solution's feedback minimises the social cost
    ([`mfgnet.evaluation.social.social_cost`][mfgnet.evaluation.social.social_cost]).

    Raises ProblemError for a nonlocal coupling or terminal cost, and for an ergodic problem
    (the long-run average social cost is not implemented)."""
    if problem.has_mean_control:
        raise ProblemError("social_optimum: the problem is an MFG of controls (mean_control_cost); its social "
                           "optimum is not implemented")
    if problem.is_ergodic:
        raise ProblemError("social_optimum: the problem is ergodic (horizon=None); the social optimum is "
                           "implemented for time-dependent problems")
    return MFGProblem(
        problem.domain, horizon=problem.horizon, viscosity=problem.viscosity, hamiltonian=problem.hamiltonian,
        coupling=marginal_cost(problem.coupling, "coupling"),
        terminal_cost=marginal_cost(problem.terminal_cost, "terminal_cost"),
        initial_density=problem.initial_density, initial_sampler=problem.initial_sampler_function,
        name=f"{problem.name}_social_optimum")
