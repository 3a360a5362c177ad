"""The monotone upwind numerical Hamiltonian and its derivatives.

For ``H(x, p) = K(x, |p|^2)`` with K nondecreasing in its second argument,

    H_h(x_j, Du)_j = K(x_j, s_j),   s_j = Σ_i min(D+_i u_j, 0)² + max(D-_i u_j, 0)²,

which is nonincreasing in the neighbours' values and consistent (Achdou & Capuzzo-Dolcetta
2010).  Its Jacobian ``J = diag(K') S`` with ``S = ds/du = Σ_i 2 diag(a_i) D+_i + 2 diag(b_i) D-_i``
(``a_i = min(D+_i u, 0)``, ``b_i = max(D-_i u, 0)``) has zero row sums and nonpositive
off-diagonal entries, so ``I/dt - ν Δ + J`` is an M-matrix and the discrete Fokker-Planck
operator, its transpose, conserves mass and keeps m >= 0.  The drift of the Fokker-Planck
equation therefore comes from the problem's own ``radial_ds`` (one source of truth).

Arrays of node values have shape (L, n): L time levels of n nodes, flattened level-major.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import torch

from mfgnet.grid.mesh import Grid
from mfgnet.grid.tridiagonal import LevelDiagonals
from mfgnet.problems import MFGProblem, ProblemError, RadialHamiltonian


@dataclass
class HamiltonianState:
    """The numerical Hamiltonian at u: values ``H`` (L, n), ``K' = dK/ds`` (L, n), the
    one-sided parts ``a``, ``b`` (d, L, n), s (L, n) and ``S = ds/du`` (Ln, Ln), the last built
    on first use (from the grid's block operators ``ops``): the 1D solver works on its
    diagonals instead (:meth:`NumericalHamiltonian.jacobian_levels`)."""

    H: np.ndarray
    k_s: np.ndarray
    a: np.ndarray
    b: np.ndarray
    s: np.ndarray
    ops: dict = field(repr=False)

    @cached_property
    def S(self) -> sp.csr_matrix:
        """``ds/du = Σ_i 2 diag(a_i) D+_i + 2 diag(b_i) D-_i``, (Ln, Ln)."""
        d_plus, d_minus = self.ops["d_plus"], self.ops["d_minus"]
        return sum(sp.diags(2 * self.a[i].ravel()) @ d_plus[i] + sp.diags(2 * self.b[i].ravel()) @ d_minus[i]
                   for i in range(len(d_plus))).tocsr()

    @property
    def jacobian(self) -> sp.csr_matrix:
        """``J = dH_h/du = diag(K') S``, (Ln, Ln)."""
        return (sp.diags(self.k_s.ravel()) @ self.S).tocsr()


def radial_hamiltonian(problem: MFGProblem) -> RadialHamiltonian:
    """The problem's Hamiltonian, or a ProblemError if the grid solver cannot discretise it."""
    ham = problem.hamiltonian
    if not isinstance(ham, RadialHamiltonian):
        raise ProblemError(
            f"the grid solver needs a RadialHamiltonian H(x, p) = K(x, |p|^2) (Quadratic, Congestion, Power or a "
            f"subclass) to build a monotone upwind scheme; got {type(ham).__name__}. Use the neural solver or "
            "write the Hamiltonian as a RadialHamiltonian")
    return ham


class NumericalHamiltonian:
    """Evaluates ``H_h`` and its derivatives on a grid for any :class:`RadialHamiltonian`."""

    def __init__(self, problem: MFGProblem, grid: Grid) -> None:
        self.ham = radial_hamiltonian(problem)
        self.grid = grid

    def __call__(self, u: np.ndarray) -> HamiltonianState:
        """State at node values u (L, n)."""
        grid = self.grid
        levels, n = u.shape
        ops = grid.blocks(levels)
        flat = u.ravel()
        a = np.stack([np.minimum(dp @ flat, 0.0) for dp in ops["d_plus"]])
        b = np.stack([np.maximum(dm @ flat, 0.0) for dm in ops["d_minus"]])
        s = (a * a + b * b).sum(axis=0)
        x = ops["nodes"]
        with torch.no_grad():
            st = torch.from_numpy(s)
            H = self.ham.radial(x, st).numpy().reshape(levels, n)
            k_s = self.ham.radial_ds(x, st).numpy().reshape(levels, n)
        if not (np.all(np.isfinite(H)) and np.all(np.isfinite(k_s))):
            raise FloatingPointError("the Hamiltonian is not finite on the grid")
        return HamiltonianState(H, k_s, a.reshape(grid.dim, levels, n), b.reshape(grid.dim, levels, n),
                                s.reshape(levels, n), ops)

    def jacobian_levels(self, state: HamiltonianState) -> LevelDiagonals:
        """``J = diag(K') S`` of a 1D grid as its level diagonals, with the entries of
        :attr:`HamiltonianState.jacobian` (same products and sums), without the sparse matrices.

        Row j of S is ``2 a_j (D+)_j + 2 b_j (D-)_j``: ``2 a_j / h`` at j+1, ``2 b_j / h`` (negated) at j-1,
        their difference on the diagonal; across a box face a_j (last node) and b_j (first) are 0.
        """
        if self.grid.dim != 1:
            raise ValueError("level diagonals are for 1D grids")
        inv_h = 1.0 / self.grid.h[0]
        pa, pb = 2 * state.a[0] * inv_h, 2 * state.b[0] * inv_h  # (2 a) (1/h), as diag(2a) @ D+
        k_s = state.k_s
        return LevelDiagonals(main=k_s * (-pa + pb), upper=k_s[:, :-1] * pa[:, :-1], lower=k_s[:, 1:] * -pb[:, 1:],
                              top=k_s[:, 0] * -pb[:, 0], bottom=k_s[:, -1] * pa[:, -1])

    def second_derivative(self, s: np.ndarray) -> np.ndarray:
        """``d²K/ds²`` at s (L, n) by autograd on ``radial_ds`` (zero when K' is constant in s)."""
        levels, n = s.shape
        x = self.grid.blocks(levels)["nodes"]
        with torch.enable_grad():
            st = torch.from_numpy(s.ravel().copy()).requires_grad_(True)
            out = self.ham.radial_ds(x, st)
            if not out.requires_grad:
                return np.zeros_like(s)
            (g,) = torch.autograd.grad(out.sum(), st, allow_unused=True)
        return np.zeros_like(s) if g is None else g.detach().numpy().reshape(levels, n)

    def transport_jacobian(self, state: HamiltonianState, m: np.ndarray) -> sp.csr_matrix:
        """``d(Jᵀ m)/du`` at fixed m (L, n): the Fokker-Planck drift's dependence on u, (Ln, Ln).

        ``Jᵀ m = Sᵀ w`` with ``w = K' m``; differentiating S gives
        ``Σ_i 2 D+ᵀ diag(w 1[D+u<0]) D+ + 2 D-ᵀ diag(w 1[D-u>0]) D-``, and w's dependence on s
        adds ``Sᵀ diag(m K'') S``.
        """
        levels = m.shape[0]
        ops = self.grid.blocks(levels)
        w = (state.k_s * m).ravel()
        out = None
        for i in range(self.grid.dim):
            wp = 2 * w * (state.a[i].ravel() < 0)
            wm = 2 * w * (state.b[i].ravel() > 0)
            dp, dm = ops["d_plus"][i], ops["d_minus"][i]
            term = dp.T @ sp.diags(wp) @ dp + dm.T @ sp.diags(wm) @ dm
            out = term if out is None else out + term
        k_ss = self.second_derivative(state.s)
        if np.any(k_ss != 0):
            out = out + state.S.T @ sp.diags((m * k_ss).ravel()) @ state.S
        return out.tocsr()

    def transport_levels(self, state: HamiltonianState, m: np.ndarray) -> LevelDiagonals | sp.csr_matrix:
        """:meth:`transport_jacobian` on a 1D grid as level diagonals (it is then tridiagonal, cyclic
        on a torus) when K'' = 0; the sparse matrix otherwise (``Sᵀ diag(m K'') S`` is pentadiagonal).

        With ``p = 2 w 1[D+u<0]`` and ``q = 2 w 1[D-u>0]`` (zero across a box face),
        ``D+ᵀ diag(p) D+ + D-ᵀ diag(q) D-`` has ``(p_j + p_{j-1} + q_j + q_{j+1}) / h²`` on the
        diagonal and ``-(p_j + q_{j+1}) / h²`` at (j, j+1) and (j+1, j), indices modulo n.
        """
        if self.grid.dim != 1 or np.any(self.second_derivative(state.s) != 0):
            return self.transport_jacobian(state, m)
        w = state.k_s * m
        p = 2 * w * (state.a[0] < 0)
        q = 2 * w * (state.b[0] > 0)
        inv_h2 = 1.0 / self.grid.h[0] ** 2
        main = (p + np.roll(p, 1, axis=1) + q + np.roll(q, -1, axis=1)) * inv_h2
        off = -(p[:, :-1] + q[:, 1:]) * inv_h2
        corner = -(p[:, -1] + q[:, 0]) * inv_h2
        return LevelDiagonals(main, off, off, corner, corner)
