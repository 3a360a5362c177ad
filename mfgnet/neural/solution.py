"""The trained networks behind the common [`Solution`][mfgnet.solution.Solution] interface."""

from __future__ import annotations

import torch

from mfgnet.neural.networks import MFGNetworks
from mfgnet.solution import Diagnostics, Solution, time_column


class NeuralSolution(Solution):
    """u and m evaluated by the trained networks (no-grad), in the caller's dtype and device.

    Parameters
    ----------
    problem : MFGProblem
        The problem the networks were trained on.
    networks : MFGNetworks
        The trained u and m networks (``mfgnet.neural.networks.MFGNetworks``).
    diagnostics : Diagnostics or None
        The solver's report (converged, residual, histories).
    ergodic_constant : float or None
        λ for ergodic problems.

    Notes
    -----
    ``value(t, x)`` and ``density(t, x)`` take x of shape (n, d) and t a float, (n,) or (n, 1)
    (``None`` for ergodic problems) and return (n,).
    """

    def __init__(self, problem, networks: MFGNetworks, diagnostics: Diagnostics | None = None,
                 ergodic_constant: float | None = None) -> None:
        self.problem = problem
        self.networks = networks
        self.diagnostics = diagnostics
        self.ergodic_constant = ergodic_constant
        p = next(networks.parameters())
        self._dtype, self._device = p.dtype, p.device

    def _inputs(self, t, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xm = x.to(dtype=self._dtype, device=self._device)
        return time_column(t, xm), xm

    def value(self, t, x: torch.Tensor) -> torch.Tensor:
        """u(t, x), shape (n,)."""
        tm, xm = self._inputs(t, x)
        with torch.no_grad():
            return self.networks.value(tm, xm).to(dtype=x.dtype, device=x.device)

    def density(self, t, x: torch.Tensor) -> torch.Tensor:
        """m(t, x), shape (n,)."""
        tm, xm = self._inputs(t, x)
        with torch.no_grad():
            return self.networks.density(tm, xm).to(dtype=x.dtype, device=x.device)

    def policy(self, t, x: torch.Tensor) -> torch.Tensor:
        """α(t, x) = -∂pH(x, ∇u), shape (n, d)."""
        tm, xm = self._inputs(t, x)
        with torch.enable_grad():
            xg = xm.detach().requires_grad_(True)
            (grad_u,) = torch.autograd.grad(self.networks.value(tm, xg).sum(), xg)
        return (-self.problem.hamiltonian.grad_p(xm, grad_u)).detach().to(dtype=x.dtype, device=x.device)
