"""Compiled kernels (numba, the optional extra ``mfgnet[fast]``) for the tridiagonal time levels
of a 1D grid: LAPACK's ``gttrf`` on every level, independent solves, and whole sweeps over levels.

The Python path of :mod:`mfgnet.grid.tridiagonal` calls LAPACK once per level and per solve;
on 1024 nodes × 512 levels a Newton solve makes tens of thousands of such calls, each costing
more in call overhead than in arithmetic.  Here one call factors all levels, or runs a whole
forward or backward sweep.  The loops are those of the reference LAPACK routines (``dgttrf``,
and ``dgtts2`` behind ``dgttrs``) with the same pivoting, in the same order, on the same stored
factors (du2 and 1-based ipiv included; the solves multiply by 1/d where LAPACK divides by d),
so the two paths agree to round-off (tests/test_grid_levels_fast.py compares them).

This module imports numba at the top: only :mod:`mfgnet.grid.tridiagonal` imports it, on first
use.  The kernels are module-level functions with explicit signatures (C-contiguous float64
arrays, int32 pivots as LAPACK returns them) so that numba's disk cache finds them in every process.
"""

from __future__ import annotations

import numba
import numpy as np

F8_1D, F8_2D, I4_1D, I4_2D = numba.float64[::1], numba.float64[:, ::1], numba.int32[::1], numba.int32[:, ::1]


@numba.njit(numba.int64(F8_2D, F8_2D, F8_2D, F8_2D, I4_2D), cache=True)
def factor_levels(dl, d, du, du2, ipiv):
    """``dgttrf`` on each level in place (rows of dl (L, n-1), d (L, n), du (L, n-1)); fills du2
    (L, n-2) and ipiv (L, n).  Returns the first level with a zero pivot, or -1."""
    levels, n = d.shape
    singular = -1
    for k in range(levels):
        for i in range(n):
            ipiv[k, i] = i + 1
        for i in range(n - 2):
            du2[k, i] = 0.0
        for i in range(n - 1):
            if abs(d[k, i]) >= abs(dl[k, i]):  # no interchange
                if d[k, i] != 0.0:
                    fact = dl[k, i] / d[k, i]
                    dl[k, i] = fact
                    d[k, i + 1] = d[k, i + 1] - fact * du[k, i]
            else:  # interchange rows i and i+1
                fact = d[k, i] / dl[k, i]
                d[k, i] = dl[k, i]
                dl[k, i] = fact
                temp = du[k, i]
                du[k, i] = d[k, i + 1]
                d[k, i + 1] = temp - fact * d[k, i + 1]
                if i < n - 2:
                    du2[k, i] = du[k, i + 1]
                    du[k, i + 1] = -fact * du[k, i + 1]
                ipiv[k, i] = i + 2
        if singular < 0:
            for i in range(n):
                if d[k, i] == 0.0:
                    singular = k
                    break
    return singular


@numba.njit(numba.void(F8_1D, F8_1D, F8_1D, F8_1D, I4_1D, F8_1D, numba.boolean), cache=True)
def _solve(dl, inv_d, du, du2, ipiv, b, transposed):
    """``dgtts2`` for one right-hand side b, in place: A x = b, or Aᵀ x = b when transposed.

    It multiplies by the pivots' reciprocals ``inv_d = 1/d`` where LAPACK divides by d: the
    division sits in the back substitution's chain of dependent operations, and the product
    makes a sweep 1.6 times faster (it changes the last bit of some entries, nothing more).
    """
    n = inv_d.shape[0]
    if not transposed:
        for i in range(n - 1):  # L x = b
            if ipiv[i] == i + 1:
                b[i + 1] = b[i + 1] - dl[i] * b[i]
            else:
                temp = b[i] - dl[i] * b[i + 1]
                b[i] = b[i + 1]
                b[i + 1] = temp
        b[n - 1] = b[n - 1] * inv_d[n - 1]  # U x = b
        if n > 1:
            b[n - 2] = (b[n - 2] - du[n - 2] * b[n - 1]) * inv_d[n - 2]
        for i in range(n - 3, -1, -1):
            b[i] = (b[i] - du[i] * b[i + 1] - du2[i] * b[i + 2]) * inv_d[i]
    else:
        b[0] = b[0] * inv_d[0]  # Uᵀ x = b
        if n > 1:
            b[1] = (b[1] - du[0] * b[0]) * inv_d[1]
        for i in range(2, n):
            b[i] = (b[i] - du[i - 1] * b[i - 1] - du2[i - 2] * b[i - 2]) * inv_d[i]
        for i in range(n - 2, -1, -1):  # Lᵀ x = b
            ip = ipiv[i] - 1
            temp = b[i] - dl[i] * b[i + 1]
            b[i] = b[ip]
            b[ip] = temp


@numba.njit(numba.void(F8_2D, F8_2D, F8_2D, F8_2D, I4_2D, F8_2D, numba.boolean), cache=True)
def solve_levels(dl, inv_d, du, du2, ipiv, b, transposed):
    """Each level's own system on the rows of b (L, n), in place (no coupling between levels);
    the factors are gttrf's with ``inv_d = 1/d`` in place of d."""
    for k in range(b.shape[0]):
        _solve(dl[k], inv_d[k], du[k], du2[k], ipiv[k], b[k], transposed)


@numba.njit(numba.void(F8_2D, F8_2D, F8_2D, F8_2D, I4_2D, F8_2D, F8_1D, F8_1D, F8_1D, F8_2D, numba.float64,
                       F8_2D, numba.boolean, numba.boolean), cache=True)
def sweep(dl, inv_d, du, du2, ipiv, z, first, last, denom, rhs, dt, out, transposed, backward):
    """A whole sweep: ``A_k x_k = rhs_k + x_{k±1}/dt`` over the levels (backward: k = L-1..0 from
    x_L = 0; forward: k = 0..L-1 from x_{-1} = 0), into out (L, n).

    A_k = T_k + (rank one) is solved by Sherman–Morrison from T_k's factors:
    x = y - (first_k y_0 + last_k y_{n-1}) / denom_k z_k (zeros for a level without corners).
    """
    levels, n = rhs.shape
    b = np.zeros(n)
    for step in range(levels):
        k = levels - 1 - step if backward else step
        for i in range(n):
            b[i] = rhs[k, i] + b[i] / dt
        _solve(dl[k], inv_d[k], du[k], du2[k], ipiv[k], b, transposed)
        scale = (first[k] * b[0] + last[k] * b[n - 1]) / denom[k]
        for i in range(n):
            b[i] = b[i] - scale * z[k, i]
            out[k, i] = b[i]
