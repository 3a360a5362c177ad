"""The time levels of a 1D grid as (cyclic) tridiagonal matrices: their diagonals, their LU
factors, and the sweeps over all levels that the time-dependent Newton step makes.

On a 1D grid every level block ``B_k = I/dt - ν Δ + J(u^k)`` is tridiagonal (box) or cyclic
tridiagonal (torus: two corner entries).  :class:`LevelDiagonals` holds L such matrices as
(L, n) arrays, built directly from the discretisation (no sparse matrix of L·n rows is formed),
and :class:`TridiagonalLevels` factors them with LAPACK's ``gttrf`` and solves with ``gttrs``;
a torus level's corners are handled by Sherman–Morrison.  With numba installed (the extra
``mfgnet[fast]``) factoring and each whole sweep are one compiled call
(:mod:`mfgnet.grid.tridiagonal_kernels`, the same LAPACK loops); without it, one LAPACK call per
level and solve (tens of microseconds of call overhead each).  The two give the same numbers to
round-off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg.lapack import dgttrf, dgttrs

from mfgnet.fast import NUMBA_AVAILABLE


def _kernels():
    # numba and the kernels cost about a second to import (loading its disk cache): only on first use.
    from mfgnet.grid import tridiagonal_kernels

    return tridiagonal_kernels


@dataclass
class LevelDiagonals:
    """L tridiagonal (n, n) matrices, cyclic on a torus, as arrays (n >= 3).

    ``main`` (L, n): A[j, j]; ``upper`` (L, n-1): A[j, j+1]; ``lower`` (L, n-1): A[j+1, j];
    ``top`` (L,): the corner A[0, n-1]; ``bottom`` (L,): the corner A[n-1, 0] (zeros on a box).
    The flat vectors it acts on are level-major (L·n,), as the block-diagonal sparse matrix's.
    """

    main: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    top: np.ndarray
    bottom: np.ndarray

    @classmethod
    def from_block_diagonal(cls, M: sp.spmatrix, levels: int, n: int) -> LevelDiagonals:
        """The diagonal blocks of a block-diagonal sparse matrix of ``levels`` blocks (n, n)."""
        M = sp.csr_matrix(M)

        def diagonal(offset: int, length: int) -> np.ndarray:
            # M.diagonal(offset) runs across the blocks: pad to whole blocks, keep each block's part.
            return np.append(M.diagonal(offset), np.zeros(abs(offset))).reshape(levels, n)[:, :length]

        return cls(diagonal(0, n), diagonal(1, n - 1), diagonal(-1, n - 1), diagonal(n - 1, 1)[:, 0],
                   diagonal(1 - n, 1)[:, 0])

    @property
    def levels(self) -> int:
        return self.main.shape[0]

    @property
    def T(self) -> LevelDiagonals:
        """The transposed matrices (a view: no copy)."""
        return LevelDiagonals(self.main, self.lower, self.upper, self.bottom, self.top)

    def __add__(self, other: LevelDiagonals) -> LevelDiagonals:
        """Entrywise sum; one side may hold a single level (broadcast over the other's levels)."""
        return LevelDiagonals(self.main + other.main, self.upper + other.upper, self.lower + other.lower,
                              self.top + other.top, self.bottom + other.bottom)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """A_k x_k for every level, x (L, n)."""
        out = self.main * x
        out[:, :-1] += self.upper * x[:, 1:]
        out[:, 1:] += self.lower * x[:, :-1]
        out[:, 0] += self.top * x[:, -1]
        out[:, -1] += self.bottom * x[:, 0]
        return out

    def __matmul__(self, flat: np.ndarray) -> np.ndarray:
        """The block-diagonal matrix times a flat level-major vector (L·n,), like a sparse matrix."""
        return self.apply(flat.reshape(self.levels, -1)).ravel()

    def to_sparse(self) -> sp.csr_matrix:
        """The block-diagonal sparse matrix (tests, the sparse path of other dimensions, and the
        whole space-time Newton matrix that ``time_lu="reuse"`` factorises), built without a loop."""
        levels, n = self.main.shape
        start = (np.arange(levels) * n)[:, None]  # each level's first row
        j = np.arange(n)[None]
        rows = [start + j, start + j[:, :-1], start + j[:, 1:], start, start + n - 1]
        cols = [start + j, start + j[:, 1:], start + j[:, :-1], start + n - 1, start]
        values = [self.main, self.upper, self.lower, self.top[:, None], self.bottom[:, None]]
        flat = [np.concatenate([np.broadcast_to(a, v.shape).ravel() for a, v in zip(arrays, values)])
                for arrays in (rows, cols)]
        data = np.concatenate([v.ravel() for v in values])
        out = sp.csr_matrix((data, (flat[0], flat[1])), shape=(levels * n, levels * n))
        out.eliminate_zeros()  # a box's corners (no fill from them in a factorisation)
        return out


class TridiagonalLevels:
    """LU factors of L (cyclic) tridiagonal levels, and sweeps over them.

    A torus level has corners β = A[0, n-1] and α = A[n-1, 0]; it is written A = T + u vᵀ with
    u = (γ, 0, …, 0, α), v = (1, 0, …, 0, β/γ), γ = -A[0, 0] (T tridiagonal, its first and last
    diagonal entries shifted by -γ and -αβ/γ), and solved by Sherman–Morrison with T's factors:
    x = y - (v·y)/(1 + v·z) z, T y = b, T z = u (transposed: the roles of u and v swap).
    """

    # numba's kernels when installed; the tests and the benchmark switch this off to run the
    # LAPACK-per-call path in the same process.
    use_numba = NUMBA_AVAILABLE

    def __init__(self, A: LevelDiagonals) -> None:
        levels, n = A.main.shape
        self.compiled = self.use_numba
        d = A.main.copy()
        beta, alpha = np.asarray(A.top, dtype=np.float64), np.asarray(A.bottom, dtype=np.float64)
        cyclic = (beta != 0.0) | (alpha != 0.0)
        gamma = np.where(cyclic, -d[:, 0], 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            d[cyclic, 0] -= gamma[cyclic]
            d[cyclic, -1] -= alpha[cyclic] * beta[cyclic] / gamma[cyclic]
        dl, du = np.ascontiguousarray(A.lower, dtype=np.float64), np.ascontiguousarray(A.upper, dtype=np.float64)
        if self.compiled:
            dl, du = dl.copy(), du.copy()
            du2, ipiv = np.empty((levels, max(n - 2, 0))), np.empty((levels, n), dtype=np.int32)
            singular = _kernels().factor_levels(dl, d, du, du2, ipiv)
        else:
            dl, d, du, du2, ipiv, singular = _lapack_factor(dl, d, du)
        if singular >= 0:
            raise np.linalg.LinAlgError(f"singular time level {singular} (a zero pivot in gttrf)")
        self.factors = (dl, d, du, du2, ipiv)
        if self.compiled:  # the kernels' solves multiply by the pivots' reciprocals
            self._kernel_factors = (dl, 1.0 / d, du, du2, ipiv)
        self._corners = (cyclic, gamma, alpha, beta)
        self._corrections: dict[bool, tuple] = {}

    def _correction(self, transposed: bool) -> tuple:
        """Sherman–Morrison's (z, first, last, denom): z = T⁻¹u and ``v·y = first y_0 + last y_{n-1}``
        (transposed: z = T⁻ᵀv and u·y); zeros and denominators 1 on a level without corners, so
        that every level is corrected alike.  Computed for the direction asked only: an HJB solve
        never sweeps forward."""
        if transposed not in self._corrections:
            cyclic, gamma, alpha, beta = self._corners
            levels, n = self.factors[1].shape
            u = (np.where(cyclic, gamma, 0.0), np.where(cyclic, alpha, 0.0))  # u's entries 0 and n-1
            v = (cyclic.astype(np.float64), np.where(cyclic, beta / gamma, 0.0))
            (rhs_first, rhs_last), (first, last) = (v, u) if transposed else (u, v)
            rhs = np.zeros((levels, n))
            rhs[:, 0], rhs[:, -1] = rhs_first, rhs_last
            z = self._solve_levels(rhs, transposed)
            z[~cyclic] = 0.0
            denom = np.where(cyclic, 1.0 + (first * z[:, 0] + last * z[:, -1]), 1.0)
            self._corrections[transposed] = (z, first, last, denom)
        return self._corrections[transposed]

    def _solve_levels(self, b: np.ndarray, transposed: bool) -> np.ndarray:
        """T_k x_k = b_k for every level independently (the tridiagonal parts, no corners)."""
        out = np.ascontiguousarray(b, dtype=np.float64).copy()
        if self.compiled:
            _kernels().solve_levels(*self._kernel_factors, out, transposed)
            return out
        dl, d, du, du2, ipiv = self.factors
        trans = "T" if transposed else "N"
        for k in range(out.shape[0]):
            out[k], _ = dgttrs(dl[k], d[k], du[k], du2[k], ipiv[k], out[k], trans=trans)
        return out

    def sweep(self, rhs: np.ndarray, dt: float, transposed: bool, backward: bool) -> np.ndarray:
        """``A_k x_k = rhs_k + x_{k+1}/dt`` for k = L-1..0 (backward) or ``A_kᵀ x_k = rhs_k + x_{k-1}/dt``
        for k = 0..L-1 (forward, transposed), from a zero carry; rhs (L, n)."""
        z, first, last, denom = self._correction(transposed)
        rhs = np.ascontiguousarray(rhs, dtype=np.float64)
        out = np.empty_like(rhs)
        if self.compiled:
            _kernels().sweep(*self._kernel_factors, z, first, last, denom, rhs, float(dt), out, transposed, backward)
            return out
        dl, d, du, du2, ipiv = self.factors
        trans = "T" if transposed else "N"
        levels, n = rhs.shape
        carry = np.zeros(n)
        for k in (range(levels - 1, -1, -1) if backward else range(levels)):
            x, _ = dgttrs(dl[k], d[k], du[k], du2[k], ipiv[k], rhs[k] + carry / dt, trans=trans)
            carry = x - (first[k] * x[0] + last[k] * x[-1]) / denom[k] * z[k]
            out[k] = carry
        return out


def _lapack_factor(dl: np.ndarray, d: np.ndarray, du: np.ndarray) -> tuple:
    """gttrf per level (the path without numba): stacked (dl, d, du, du2, ipiv) and the first
    singular level (or -1)."""
    levels, n = d.shape
    out_dl, out_du = np.empty_like(dl), np.empty_like(du)
    du2, ipiv = np.empty((levels, max(n - 2, 0))), np.empty((levels, n), dtype=np.int32)
    singular = -1
    for k in range(levels):
        out_dl[k], d[k], out_du[k], du2[k], ipiv[k], info = dgttrf(dl[k], d[k], du[k])
        if info != 0 and singular < 0:
            singular = k
    return out_dl, d, out_du, du2, ipiv, singular
