"""Couplings F(t, x, m) and terminal costs G(x, m) evaluated on the grid, with ∂/∂m by autograd.

A nonlocal coupling receives ``conv(x_j) = ∫ K(x_j, y) m(y) dy``, computed by the midpoint
rule on the nodes: ``conv_c = W_c m`` with ``W_c[j, k] = h^d K(x_j, y_k)_c``.  The solver
never forms ``W_c`` in its Jacobian; it applies it as an operator (time-dependent Newton) or
through a factorisation ``W_c = L_c R_cᵀ`` of small rank r whose ``z = Rᵀ m`` are auxiliary
unknowns (ergodic Newton, bordering rows of its sparse matrix).  ``W`` is held as

* :class:`KernelFactor`, rank c exactly, for a kernel that does not depend on x (a mean, a
  moment: ``mean_kernel``; no n × n memory, B2);
* :class:`ProductKernel` for a kernel that is a product over the axes on a grid of d >= 2
  axes, ``K(x, y) = Π_i K_i(x_i, y_i)`` (a Gaussian of |x − y|², B7): ``W m`` costs
  ``n Σ N_i`` per channel and d matrices ``N_i × N_i`` of memory.  Found by evaluating the
  kernel at every pair of nodes and comparing with the product of its axis lines through one
  node (relative ``PRODUCT_TOLERANCE``), so a kernel that is not a product is never treated as one;
* :class:`KernelFactor` by a truncated SVD (relative cut-off 1e-13) of the dense matrix for any
  other kernel, allowed up to ``MAX_DENSE_ENTRIES``.

Why the product form: the dense path stops B7's planar reference at 64² cells (128² needs
2.7e8 entries), where its SVD alone took 17 s and had rank 1874 (a 64-level Jacobian's
``∂F/∂z`` then holds 4.9e8 numbers); the reference at 64 cells is itself ~7 % off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mfgnet.grid.mesh import Grid
from mfgnet.problems import ProblemError
from mfgnet.problems.couplings import Coupling

MAX_DENSE_ENTRIES = 2.0e7
PRODUCT_TOLERANCE = 1e-12  # relative to max |K|: round-off of exp(a) exp(b) against exp(a + b)
_SVD_CUTOFF = 1e-13
_CHUNK_ENTRIES = 2e6  # kernel entries evaluated at once (bounds memory, no loop over single nodes)


@dataclass
class KernelFactor:
    """``W_c = L_c R_cᵀ``: L (n, r), R (n, r), ``channel`` (r,) the channel of each of the r columns, c channels."""

    left: np.ndarray
    right: np.ndarray
    channel: np.ndarray
    channels: int

    def conv(self, m: np.ndarray) -> np.ndarray:
        """m (L, n) -> conv (L, n, c), ``(m R_c) L_cᵀ`` per channel: no (L, n, r) array (the time-dependent
        Newton calls this in every GMRES product)."""
        return np.stack([(m @ self.right[:, cols]) @ self.left[:, cols].T
                         for cols in (self.channel == ch for ch in range(self.channels))], -1)

    def low_rank(self) -> KernelFactor:
        return self


@dataclass
class ProductKernel:
    """``W_c = ⊗_i A_i[c]`` on a tensor grid (C order): ``axes[i]`` (c, N_i, N_i) holds
    ``h_i K_i(x_i, y_i)`` with the kernel's constant folded into the first axis."""

    axes: list[np.ndarray]
    cells: tuple[int, ...]

    @property
    def channels(self) -> int:
        return self.axes[0].shape[0]

    def conv(self, m: np.ndarray) -> np.ndarray:
        """m (L, n) -> conv (L, n, c), one axis at a time."""
        levels = m.shape[0]
        out = []
        for ch in range(self.channels):
            v = m.reshape(levels, *self.cells)
            for i, a in enumerate(self.axes):
                v = np.moveaxis(np.tensordot(a[ch], v, axes=([1], [i + 1])), 0, i + 1)
            out.append(v.reshape(levels, -1))
        return np.stack(out, -1)

    def low_rank(self) -> KernelFactor:
        """``W = L Rᵀ`` from each axis's truncated SVD (rank the product of the axes' ranks): the
        ergodic Newton's auxiliary unknowns."""
        per_channel = []
        for ch in range(self.channels):
            left, right = np.ones((1, 1)), np.ones((1, 1))
            for a in self.axes:
                axis_left, axis_right = _truncated_svd(a[ch])
                left, right = np.kron(left, axis_left), np.kron(right, axis_right)
            per_channel.append((left, right))
        return _stack_channels(per_channel)


def _truncated_svd(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``matrix ≈ L Rᵀ`` keeping the singular values above ``_SVD_CUTOFF`` times the largest: (L, R)."""
    u, sv, vt = np.linalg.svd(matrix)
    rank = max(1, int(np.sum(sv > _SVD_CUTOFF * sv[0])))
    return u[:, :rank] * sv[:rank], vt[:rank].T


def _stack_channels(per_channel: list[tuple[np.ndarray, np.ndarray]]) -> KernelFactor:
    """One :class:`KernelFactor` from each channel's (L_c, R_c)."""
    channel = np.concatenate([np.full(left.shape[1], ch) for ch, (left, _) in enumerate(per_channel)])
    return KernelFactor(np.concatenate([left for left, _ in per_channel], 1),
                        np.concatenate([right for _, right in per_channel], 1), channel, len(per_channel))


def _axis_lines(kernel, grid: Grid, anchor: torch.Tensor) -> list[torch.Tensor]:
    """K on each axis's line of nodes through ``anchor``: (N_i, N_i, c) per axis."""
    lines = []
    for i, axis in enumerate(grid.axes):
        points = anchor.repeat(len(axis), 1)
        points[:, i] = torch.from_numpy(axis)
        lines.append(kernel(points, points))
    return lines


def factor_kernel(kernel, grid: Grid) -> KernelFactor | ProductKernel:
    """The quadrature matrices ``h^d K(x_j, y_k)`` on the nodes, as the cheapest exact form that
    holds them (module docstring)."""
    x = grid.nodes
    n = grid.n
    with torch.no_grad():
        first = kernel(x[:1], x)
        if first.dim() != 3 or first.shape[:2] != (1, n):
            raise ProblemError(f"NonlocalCoupling.kernel(x: (1, d), y: ({n}, d)) must return shape (1, {n}, c); "
                               f"got {tuple(first.shape)}")
        c = first.shape[2]
        product = None
        if grid.dim >= 2:
            lines = _axis_lines(kernel, grid, x[0])
            corner = lines[0][0, 0]  # K(x0, x0), (c,)
            if bool(torch.all(corner != 0)):
                product = lines
                index = np.array(np.unravel_index(np.arange(n), grid.cells))  # (d, n) per-axis node numbers
        chunk = max(1, int(_CHUNK_ENTRIES // (n * c)))
        keep = n * n * c <= MAX_DENSE_ENTRIES
        rows_equal, blocks, scale, gap = True, [], 0.0, 0.0
        for start in range(0, n, chunk):  # every pair of nodes is evaluated once
            rows = slice(start, min(start + chunk, n))
            block = kernel(x[rows], x)
            rows_equal = rows_equal and bool(torch.equal(block, first.expand_as(block)))
            if product is not None:
                guess = torch.ones_like(block)
                for i, line in enumerate(product):
                    guess = guess * line[index[i][rows]][:, index[i]]
                guess = guess / corner ** (grid.dim - 1)
                scale = max(scale, float(block.abs().max()))
                gap = max(gap, float((block - guess).abs().max()))
                if gap > PRODUCT_TOLERANCE * max(scale, 1e-300):
                    product = None
            if keep:
                blocks.append(block)
            elif not rows_equal and product is None:
                raise ProblemError(
                    f"a nonlocal kernel that depends on x needs an n x n quadrature matrix unless it is a product "
                    f"over the axes; n = {n} nodes ({n * n * c:.1e} entries) exceeds the limit "
                    f"{MAX_DENSE_ENTRIES:.0e}: use fewer cells")
    if rows_equal:
        right = grid.cell_volume * first[0].numpy()  # (n, c)
        return KernelFactor(np.ones((n, c)), right, np.arange(c), c)
    if product is not None:
        axes = [(h * line).permute(2, 0, 1).numpy() for h, line in zip(grid.h, product)]
        axes[0] = axes[0] / (corner.numpy() ** (grid.dim - 1))[:, None, None]
        return ProductKernel(axes, grid.cells)
    full = grid.cell_volume * torch.cat(blocks, 0).numpy()
    return _stack_channels([_truncated_svd(full[:, :, ch]) for ch in range(c)])


@dataclass
class CouplingValues:
    """F (L, n), ∂F/∂m (L, n) and ∂F/∂conv (L, n, c) (None for a local coupling)."""

    value: np.ndarray
    d_m: np.ndarray
    d_conv: np.ndarray | None


class GridCoupling:
    """A :class:`Coupling` (running or terminal) on the nodes of a grid.

    ``operator`` holds the nonlocal kernel's quadrature matrices ``W`` (:func:`factor_kernel`),
    None for a local coupling."""

    def __init__(self, coupling: Coupling, grid: Grid, field: str) -> None:
        self.coupling = coupling
        self.grid = grid
        self.field = field
        self.operator = None if coupling.is_local else factor_kernel(coupling.kernel, grid)
        self._low_rank = None

    def low_rank(self) -> KernelFactor | None:
        """``W = L Rᵀ`` (the ergodic Newton's auxiliary unknowns ``z = Rᵀ m``), None if local."""
        if self.operator is None:
            return None
        if self._low_rank is None:
            self._low_rank = self.operator.low_rank()
        return self._low_rank

    def apply_conv_jacobian(self, d_conv: np.ndarray, dm: np.ndarray) -> np.ndarray:
        """The nonlocal part of ∂F/∂m applied to dm (L, n): ``Σ_c ∂F/∂conv_c · W_c dm``."""
        return np.einsum("lnc,lnc->ln", d_conv, self.operator.conv(dm))

    def __call__(self, t: np.ndarray, m: np.ndarray, derivatives: bool = True) -> CouplingValues:
        """F at times t (L,) and densities m (L, n), vectorised over all levels and nodes."""
        levels, n = m.shape
        x = self.grid.blocks(levels)["nodes"]
        tt = torch.from_numpy(np.repeat(np.asarray(t, dtype=np.float64), n)[:, None])
        mt = torch.from_numpy(m.ravel().copy())
        conv = None
        if self.operator is not None:
            conv = torch.from_numpy(self.operator.conv(m).reshape(levels * n, -1))
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
        if self.operator is not None and derivatives and d_conv is None:
            d_conv = np.zeros((levels, n, self.operator.channels))
        return CouplingValues(value, d_m, d_conv)
