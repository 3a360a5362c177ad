"""Games between K >= 2 populations, declared once for every solver.

Population k has its own viscosity ν_k, Hamiltonian H_k, coupling F_k(t, x, m_1, …, m_K),
terminal cost G_k(x, m_1, …, m_K) and initial density m0_k; all share the domain and horizon:

    -∂t u_k - ν_k Δu_k + H_k(x, ∇u_k) = F_k(t, x, m)        u_k(T) = G_k(x, m(T))
     ∂t m_k - ν_k Δm_k - div(m_k ∂pH_k(x, ∇u_k)) = 0        m_k(0) = m0_k

(or the ergodic form with constants λ_k), where m = (m_1, …, m_K).  A coupling is a local
torch callable ``F_k(t, x, m)`` with ``m`` of shape (n, K); it returns (n,).  Each population
is also available as an ordinary [`MFGProblem`][mfgnet.problems.problem.MFGProblem]
(`MultiPopulationProblem.population_problem`), with the other populations absent, which is
how solvers reuse their single-population pieces (Hamiltonian discretisation, m0, sampling).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mfgnet.problems.domains import Domain
from mfgnet.problems.hamiltonians import Hamiltonian, as_hamiltonian
from mfgnet.problems.problem import MFGProblem
from mfgnet.problems.validation import ProblemError, argument_count


@dataclass(frozen=True)
class Population:
    """One population of a [`MultiPopulationProblem`][mfgnet.problems.populations.MultiPopulationProblem].

    Parameters
    ----------
    viscosity : float
        ν_k >= 0.
    coupling : callable or None
        ``F_k(t, x, m)`` with t (n, 1), x (n, d), m (n, K) the densities of all populations;
        returns (n,).  Default 0.
    terminal_cost : callable or None
        ``G_k(x, m)`` with m (n, K) (time-dependent problems).  Default 0.
    initial_density : callable or None
        ``m0_k(x) -> (n,)`` (time-dependent problems).
    hamiltonian : Hamiltonian or callable or None
        H_k; default ½|p|².
    name : str
        A label (``population_0`` … when empty).
    """

    viscosity: float
    coupling: Callable | None = None
    terminal_cost: Callable | None = None
    initial_density: Callable | None = None
    hamiltonian: Hamiltonian | Callable | None = None
    name: str = ""


def _check_arity(fn, field: str, arity: int) -> None:
    if fn is None:
        return
    if not callable(fn):
        raise ProblemError(f"{field} must be callable")
    n_args = argument_count(fn, arity)
    if n_args != arity:
        call = "F(t, x, m)" if arity == 3 else "G(x, m)"
        raise ProblemError(f"{field} must be callable as {call} with m of shape (n, K); it takes {n_args} arguments")


class MultiPopulationProblem:
    """A mean field game of K >= 2 interacting populations on one domain.

    Parameters
    ----------
    domain : Domain
        Shared by every population (Torus, Box or Euclidean).
    horizon : float or None
        T > 0, or None for the ergodic problem (one λ_k per population).
    populations : sequence of Population
        At least two.
    name : str
        A label for logs and tables.

    Raises
    ------
    ProblemError
        Naming the population and field that is out of range (checked on construction:
        each population becomes a checked ``MFGProblem``, and every coupling is evaluated
        once on a few points with m of shape (n, K)).
    """

    def __init__(self, domain: Domain, horizon: float | None, populations, name: str = "populations") -> None:
        populations = tuple(populations)
        if len(populations) < 2:
            raise ProblemError(f"populations: a MultiPopulationProblem needs at least 2, got {len(populations)} "
                               "(one population is an MFGProblem)")
        self.domain, self.dim, self.horizon, self.name = domain, domain.dim, horizon, name
        self.populations = populations
        self.size = len(populations)
        views = []
        for k, pop in enumerate(populations):
            if not isinstance(pop, Population):
                raise ProblemError(f"populations[{k}] must be a Population, got {type(pop).__name__}")
            label = pop.name or f"population_{k}"
            _check_arity(pop.coupling, f"populations[{k}].coupling", 3)
            _check_arity(pop.terminal_cost, f"populations[{k}].terminal_cost", 2)
            if horizon is None and pop.terminal_cost is not None:
                raise ProblemError(f"populations[{k}].terminal_cost is meaningless for an ergodic problem")
            try:
                views.append(MFGProblem(domain, horizon, pop.viscosity, hamiltonian=as_hamiltonian(pop.hamiltonian),
                                        initial_density=pop.initial_density, name=f"{name}/{label}"))
            except ProblemError as exc:
                raise ProblemError(f"populations[{k}] ({label}): {exc}") from exc
        self._views = tuple(views)
        self._check_couplings()

    @property
    def is_ergodic(self) -> bool:
        """Whether the problem is stationary (``horizon is None``)."""
        return self.horizon is None

    def population_problem(self, k: int) -> MFGProblem:
        """Population k as an MFGProblem (its ν, H, m0 and the domain; no coupling): what
        solvers use to discretise its Hamiltonian and draw its initial crowd."""
        return self._views[k]

    def coupled_problem(self, k: int, density_of: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]
                        ) -> MFGProblem:
        """Population k as an MFGProblem whose F_k and G_k see its own density m (differentiable, as
        solvers need) and every other population j's from ``density_of(j, t, x) -> (n,)``, evaluated
        without gradients: how solvers train or solve one population against the others' current
        state (the grid's Gauss–Seidel sweeps, the neural solver's turn-by-turn training)."""
        from mfgnet.problems.couplings import LocalCoupling

        view = self._views[k]

        def densities(t: torch.Tensor, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                others = {j: density_of(j, t.detach(), x.detach()).to(m) for j in range(self.size) if j != k}
            return torch.stack([m if j == k else others[j] for j in range(self.size)], -1)

        return MFGProblem(
            self.domain, self.horizon, view.viscosity, hamiltonian=view.hamiltonian,
            coupling=LocalCoupling(lambda t, x, m: self.coupling(k, t, x, densities(t, x, m))),
            terminal_cost=None if self.is_ergodic else LocalCoupling(
                lambda t, x, m: self.terminal_cost(k, x, densities(t, x, m))),
            initial_density=None if self.is_ergodic else view.initial_density,
            initial_sampler=view.initial_sampler_function, name=view.name)

    def coupling(self, k: int, t: torch.Tensor, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """F_k(t, x, m) with m (n, K); (n,) (zeros without a coupling)."""
        fn = self.populations[k].coupling
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device) if fn is None else fn(t, x, m)

    def terminal_cost(self, k: int, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """G_k(x, m) with m (n, K); (n,) (zeros without a terminal cost)."""
        fn = self.populations[k].terminal_cost
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device) if fn is None else fn(x, m)

    def bounding_box(self):
        """The box every population's grid or sampler uses: the first population's (on R^d,
        derived from its m0; declare ``Euclidean(dim, box=...)`` to fix it for all)."""
        return self._views[0].bounding_box()

    def _check_couplings(self) -> None:
        lower, upper = self.bounding_box().bounds()
        x = lower + (upper - lower) * torch.rand(5, self.dim, generator=torch.Generator().manual_seed(0),
                                                 dtype=torch.float64)
        t = torch.zeros(5, 1, dtype=torch.float64)
        m = torch.full((5, self.size), 0.5, dtype=torch.float64)
        for k in range(self.size):
            for field, call in (("coupling", lambda k=k: self.coupling(k, t, x, m)),
                                ("terminal_cost", lambda k=k: self.terminal_cost(k, x, m))):
                if field == "terminal_cost" and self.is_ergodic:
                    continue
                try:
                    out = call()
                except Exception as exc:  # a user's callable failing on (n, K) densities
                    raise ProblemError(f"populations[{k}].{field} failed on x (5, {self.dim}) and m (5, {self.size}): "
                                       f"{exc}") from exc
                if not isinstance(out, torch.Tensor) or out.shape != (5,):
                    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                    raise ProblemError(f"populations[{k}].{field} returned shape {shape}; expected (5,) for 5 points")

    def __repr__(self) -> str:
        kind = "ergodic" if self.is_ergodic else f"T={self.horizon}"
        return f"MultiPopulationProblem(name={self.name!r}, K={self.size}, domain={self.domain!r}, {kind})"
