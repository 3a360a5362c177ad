"""Compiled kernels (numba, the optional extra ``mfgnet[fast]``) for finite MFGs with a static
transition matrix.

On small games the numpy path of :mod:`mfgnet.agents.finite.dynamics` spends its time in
numpy's per-call overhead (a few microseconds per call, about 7 calls per time step and 30
more per iteration).  Each kernel here does one of its whole passes in compiled loops:
:func:`flow` the mean field, :func:`backward` Q* (and Q^π) with the exploitability, and
:func:`fictitious_step` the best response, its flow and the averaging of fictitious play.
Only the game's reward stays a Python call.

The transition enters as CSR arrays of M[(s, a), s'] (S·A rows, S columns), so local moves
cost O(nonzeros) and the structural zeros are never touched.  The arithmetic is that of the
numpy path, summed in a fixed loop order instead of BLAS's, so the two agree to round-off
(tests/test_finite_backends.py compares them).

This module imports numba at the top, so only :mod:`mfgnet.agents.finite.backends` imports it,
and only when the numba backend is chosen: numba and the kernels (compiled once, then loaded
from numba's disk cache) cost about a second, which ``import mfgnet.agents.finite`` need not
pay.  The kernels are module-level functions with explicit signatures (C-contiguous float64
arrays, int64 CSR indices) so that numba's cache finds them in every process.
"""

from __future__ import annotations

import numba
import numpy as np

F8_3D, F8_1D, I8_1D = numba.float64[:, :, ::1], numba.float64[::1], numba.int64[::1]


def csr_arrays(P) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, data) of the matrix M (S·A, S), dense or scipy sparse, as int64/float64."""
    from scipy import sparse

    # a copy: sorting the indices must not touch the game's own matrix
    M = sparse.csr_matrix(P if sparse.issparse(P) else np.asarray(P, dtype=np.float64), copy=True)
    M.sort_indices()  # each row summed in increasing s'
    return (M.indptr.astype(np.int64), M.indices.astype(np.int64), M.data.astype(np.float64))


@numba.njit(numba.void(F8_1D, F8_3D, I8_1D, I8_1D, F8_1D, F8_3D), cache=True)
def flow(mu0, pi, indptr, indices, data, L):
    """L[0] = μ0 π_0; L[t+1, s', a] = (Σ_{s,a} L[t, s, a] M[(s, a), s']) π_{t+1}(a|s')."""
    n_t, S, A = pi.shape
    for s in range(S):
        for a in range(A):
            L[0, s, a] = mu0[s] * pi[0, s, a]
    mu = np.empty(S)
    for t in range(n_t - 1):
        mu[:] = 0.0
        for s in range(S):
            for a in range(A):
                w = L[t, s, a]
                row = s * A + a
                for k in range(indptr[row], indptr[row + 1]):
                    mu[indices[k]] += w * data[k]
        for s in range(S):
            for a in range(A):
                L[t + 1, s, a] = mu[s] * pi[t + 1, s, a]

@numba.njit(numba.float64(F8_3D, F8_3D, F8_1D, F8_3D, I8_1D, I8_1D, F8_1D, F8_3D, F8_3D, numba.boolean),
            cache=True)
def backward(R, L, mu0, pi, indptr, indices, data, q_star, q_pi, need_q_pi):
    """Q* (and Q^π into q_pi when need_q_pi) by backward induction; returns the exploitability
    Σ_s μ0(s) max_a Q*_0(s, a) - Σ_{t,s,a} L R."""
    n_t, S, A = R.shape
    v_star = np.empty(S)
    v_pi = np.empty(S)
    q_star[n_t - 1] = R[n_t - 1]
    if need_q_pi:
        q_pi[n_t - 1] = R[n_t - 1]
    for t in range(n_t - 2, -1, -1):
        for s in range(S):
            best = q_star[t + 1, s, 0]
            for a in range(1, A):
                if q_star[t + 1, s, a] > best:
                    best = q_star[t + 1, s, a]
            v_star[s] = best
            if need_q_pi:
                acc = 0.0
                for a in range(A):
                    acc += pi[t + 1, s, a] * q_pi[t + 1, s, a]
                v_pi[s] = acc
        for s in range(S):
            for a in range(A):
                row = s * A + a
                acc = 0.0
                for k in range(indptr[row], indptr[row + 1]):
                    acc += data[k] * v_star[indices[k]]
                q_star[t, s, a] = R[t, s, a] + acc
                if need_q_pi:
                    acc = 0.0
                    for k in range(indptr[row], indptr[row + 1]):
                        acc += data[k] * v_pi[indices[k]]
                    q_pi[t, s, a] = R[t, s, a] + acc
    best_value = 0.0
    for s in range(S):
        best = q_star[0, s, 0]
        for a in range(1, A):
            if q_star[0, s, a] > best:
                best = q_star[0, s, a]
        best_value += mu0[s] * best
    own_value = 0.0
    for t in range(n_t):
        for s in range(S):
            for a in range(A):
                own_value += L[t, s, a] * R[t, s, a]
    return best_value - own_value

@numba.njit(numba.void(F8_3D, numba.float64, F8_3D, F8_3D, F8_1D, I8_1D, I8_1D, F8_1D, numba.float64, F8_3D),
            cache=True)
def fictitious_step(q_star, tie_tol, pi, L, mu0, indptr, indices, data, weight, pi_out):
    """pi_out = the policy of the flow (1 - weight) L + weight L_br, L_br the flow of the best
    response (uniform over the actions within tie_tol of max_a Q*); unreached states get the
    uniform policy."""
    n_t, S, A = pi.shape
    pi_br = np.empty_like(pi)
    for t in range(n_t):
        for s in range(S):
            top = q_star[t, s, 0]
            for a in range(1, A):
                if q_star[t, s, a] > top:
                    top = q_star[t, s, a]
            count = 0
            for a in range(A):
                if q_star[t, s, a] >= top - tie_tol:
                    count += 1
            for a in range(A):
                pi_br[t, s, a] = (1.0 if q_star[t, s, a] >= top - tie_tol else 0.0) / count
    L_br = np.empty_like(pi)
    flow(mu0, pi_br, indptr, indices, data, L_br)
    for t in range(n_t):
        for s in range(S):
            mass, mass_br = 0.0, 0.0
            for a in range(A):
                mass += L[t, s, a]
                mass_br += L_br[t, s, a]
            w_cur, w_br = (1.0 - weight) * mass, weight * mass_br
            den = w_cur + w_br
            for a in range(A):
                pi_out[t, s, a] = (w_cur * pi[t, s, a] + w_br * pi_br[t, s, a]) / den if den > 0 else 1.0 / A
