"""Couplings F(t, x, m) and terminal costs G(x, m) evaluated on the grid, with ∂/∂m by autograd.

A nonlocal coupling receives ``conv(x_j) = ∫ K(x_j, y) m(y) dy``, computed by the midpoint
rule on the nodes: ``conv_c = W_c m`` with ``W_c[j, k] = h^d K(x_j, y_k)_c``.  The solver
never forms ``W_c`` densely in its Jacobian; it uses a factorisation
``W_c = L_c R_cᵀ`` of small rank r and carries ``z = Rᵀ m`` as r auxiliary unknowns per time
level, which keeps Newton's Jacobian sparse and exact:

* a kernel that does not depend on x (a mean, a moment: ``mean_kernel``) has rank c exactly,
  ``L = 1``, ``R = h^d K(·, y)``, and costs no n × n memory (B2);
* any other kernel is evaluated densely (allowed up to ``MAX_DENSE_ENTRIES``) and compressed
  by a truncated SVD (relative cut-off 1e-13, so Newton stays quadratic in practice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mfgnet.grid.mesh import Grid
from mfgnet.problems import ProblemError
from mfgnet.problems.couplings import Coupling

MAX_DENSE_ENTRIES = 2.0e7
_SVD_CUTOFF = 1e-13


@dataclass
class KernelFactor:
    """``conv = ((m @ R)[..., None, :] * L) @ onehot``: L (n, r), R (n, r), channel (r,) of c channels."""

    left: np.ndarray
    right: np.ndarray
    channel: np.ndarray
    channels: int

    @property
    def rank(self) -> int:
        return self.right.shape[1]

    def onehot(self) -> np.ndarray:
        return np.eye(self.channels)[self.channel]  # (r, c)

    def conv(self, m: np.ndarray) -> np.ndarray:
        """m (L, n) -> conv (L, n, c)."""
        z = m @ self.right
        return (z[:, None, :] * self.left[None]) @ self.onehot()


def factor_kernel(kernel, grid: Grid) -> KernelFactor:
    """Low-rank factorisation of the quadrature matrices ``h^d K(x_j, y_k)`` on the nodes."""
    x = grid.nodes
    n = grid.n
    with torch.no_grad():
        first = kernel(x[:1], x)
        if first.dim() != 3 or first.shape[:2] != (1, n):
            raise ProblemError(f"NonlocalCoupling.kernel(x: (1, d), y: ({n}, d)) must return shape (1, {n}, c); "
                               f"got {tuple(first.shape)}")
        c = first.shape[2]
        chunk = max(1, int(2e6 // (n * c)))
        keep = n * n * c <= MAX_DENSE_ENTRIES
        rows_equal, blocks = True, []
        for start in range(0, n, chunk):  # chunks of rows bound memory; no loop over single points
            block = kernel(x[start:start + chunk], x)
            rows_equal = rows_equal and bool(torch.equal(block, first.expand_as(block)))
            if keep:
                blocks.append(block)
            elif not rows_equal:
                raise ProblemError(
                    f"a nonlocal kernel that depends on x needs an n x n quadrature matrix; n = {n} nodes "
                    f"({n * n * c:.1e} entries) exceeds the limit {MAX_DENSE_ENTRIES:.0e}: use fewer cells")
    if rows_equal:
        right = grid.cell_volume * first[0].numpy()  # (n, c)
        return KernelFactor(np.ones((n, c)), right, np.arange(c), c)
    full = grid.cell_volume * torch.cat(blocks, 0).numpy()
    lefts, rights, channel = [], [], []
    for ch in range(c):
        u, sv, vt = np.linalg.svd(full[:, :, ch])
        rank = max(1, int(np.sum(sv > _SVD_CUTOFF * sv[0])))
        lefts.append(u[:, :rank] * sv[:rank])
        rights.append(vt[:rank].T)
        channel.append(np.full(rank, ch))
    return KernelFactor(np.concatenate(lefts, 1), np.concatenate(rights, 1), np.concatenate(channel), c)


@dataclass
class CouplingValues:
    """F (L, n), ∂F/∂m (L, n) and ∂F/∂z (L, n, r) (None for a local coupling)."""

    value: np.ndarray
    d_m: np.ndarray
    d_z: np.ndarray | None


class GridCoupling:
    """A :class:`Coupling` (running or terminal) on the nodes of a grid."""

    def __init__(self, coupling: Coupling, grid: Grid, field: str) -> None:
        self.coupling = coupling
        self.grid = grid
        self.field = field
        self.factor = None if coupling.is_local else factor_kernel(coupling.kernel, grid)

    @property
    def rank(self) -> int:
        return 0 if self.factor is None else self.factor.rank

    def __call__(self, t: np.ndarray, m: np.ndarray, derivatives: bool = True) -> CouplingValues:
        """F at times t (L,) and densities m (L, n), vectorised over all levels and nodes."""
        levels, n = m.shape
        x = self.grid.blocks(levels)["nodes"]
        tt = torch.from_numpy(np.repeat(np.asarray(t, dtype=np.float64), n)[:, None])
        mt = torch.from_numpy(m.ravel().copy())
        conv = None
        if self.factor is not None:
            conv = torch.from_numpy(self.factor.conv(m).reshape(levels * n, -1))
        with torch.enable_grad():
            if derivatives:
                mt.requires_grad_(True)
                if conv is not None:
                    conv.requires_grad_(True)
            out = self.coupling(tt, x, mt, conv)
            if out.shape != (levels * n,):
                raise ProblemError(f"{self.field} returned shape {tuple(out.shape)} on {levels * n} grid points; "
                                   f"expected ({levels * n},)")
            d_m = np.zeros((levels, n))
            d_conv = None
            if derivatives and out.requires_grad:
                inputs = [mt] if conv is None else [mt, conv]
                grads = torch.autograd.grad(out.sum(), inputs, allow_unused=True)
                if grads[0] is not None:
                    d_m = grads[0].numpy().reshape(levels, n)
                if conv is not None and grads[1] is not None:
                    d_conv = grads[1].numpy().reshape(levels, n, -1)
        value = out.detach().numpy().reshape(levels, n)
        d_z = None
        if self.factor is not None and derivatives:
            if d_conv is None:
                d_conv = np.zeros((levels, n, self.factor.channels))
            d_z = d_conv[:, :, self.factor.channel] * self.factor.left[None]
        return CouplingValues(value, d_m, d_z)
