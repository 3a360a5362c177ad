"""Sparse linear solves that exploit the grid's structure.

* Ergodic systems are solved directly (SuperLU) after a geometric nested-dissection
  ordering of the grid nodes (the unknowns of one node kept together, bordering unknowns
  last): on a 128² torus this has about 2-3 times less fill than SuperLU's default ordering.
* Time-dependent systems are block bidiagonal in time: the HJB Jacobian is solved by one
  backward sweep, the Fokker-Planck operator by one forward sweep (one small sparse LU per
  time level; tridiagonal factors in 1D, :mod:`mfgnet.grid.tridiagonal`), and the coupled
  Newton system by GMRES on the Schur complement in m, preconditioned by the forward sweep
  (see :class:`CoupledTimeSolve`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg import solve_triangular

from mfgnet.grid.mesh import Grid
from mfgnet.grid.tridiagonal import LevelDiagonals, TridiagonalLevels

_LEAF = 32


def nested_dissection(shape: tuple[int, ...], periodic: tuple[bool, ...]) -> np.ndarray:
    """A fill-reducing order of the nodes of a tensor grid (C-order indices), separators last.

    A periodic axis is first cut twice (at 0 and at the middle), which leaves two open halves.
    The recursion runs over blocks of nodes, not over single nodes.
    """
    index = np.arange(int(np.prod(shape))).reshape(shape)
    out: list[np.ndarray] = []

    def split(block: np.ndarray, per: tuple[bool, ...]) -> None:
        if block.size <= _LEAF:
            out.append(block.ravel())
            return
        ax = int(np.argmax(block.shape))
        c, mid = block.shape[ax], block.shape[ax] // 2
        first = 1 if per[ax] else 0
        sep_at = [0, mid] if per[ax] else [mid]
        halves = [np.take(block, range(first, mid), axis=ax), np.take(block, range(mid + 1, c), axis=ax)]
        open_per = tuple(False if i == ax else p for i, p in enumerate(per))
        for half in halves:
            if half.size:
                split(half, open_per)
        out.append(np.take(block, sep_at, axis=ax).ravel())

    split(index, tuple(periodic))
    return np.concatenate(out)


class DirectSolve:
    """LU of A (field-major unknowns: ``fields`` blocks of n node values, then extras)."""

    def __init__(self, A: sp.spmatrix, grid: Grid, fields: int) -> None:
        n = grid.n
        key = ("nd", fields, A.shape[0])
        if key not in grid._cache:
            nodes = nested_dissection(grid.cells, (grid.periodic,) * grid.dim)
            perm = np.stack([f * n + nodes for f in range(fields)], 1).ravel()
            grid._cache[key] = np.concatenate([perm, np.arange(fields * n, A.shape[0])])
        self.perm = grid._cache[key]
        self._A = sp.csr_matrix(A)
        self._lu = None
        self.size = A.shape[0]

    @property
    def lu(self):
        """Factorised on first use: a rejected line-search trial never pays for it."""
        if self._lu is None:
            Ap = self._A[self.perm][:, self.perm].tocsc()
            # The diagonal of these systems dominates: prefer it as pivot to keep the ordering.
            self._lu = spla.splu(Ap, permc_spec="NATURAL", diag_pivot_thresh=0.01, options={"SymmetricMode": True})
            self._A = None
        return self._lu

    def solve(self, rhs: np.ndarray, trans: str = "N") -> np.ndarray:
        """Solution of ``A x = [rhs; 0]`` (``Aᵀ x`` with trans="T"); zeros for auxiliary rows,
        returns the first len(rhs) entries."""
        full = np.zeros(self.size)
        full[:rhs.size] = rhs
        out = np.empty(self.size)
        out[self.perm] = self.lu.solve(full[self.perm], trans=trans)
        return out[:rhs.size]


def diagonal_block(M: sp.csc_matrix, k: int, n: int) -> sp.csc_matrix:
    """The k-th (n, n) diagonal block of a block-diagonal CSC matrix (by slicing its arrays)."""
    start, stop = M.indptr[k * n], M.indptr[(k + 1) * n]
    return sp.csc_matrix((M.data[start:stop], M.indices[start:stop] - k * n, M.indptr[k * n:(k + 1) * n + 1] - start),
                         shape=(n, n))


class LevelFactors:
    """Factors of ``B_k = I/dt - ν Δ + J_k`` for every time level k, computed on first use: a
    line-search trial that is rejected never pays for them.

    1D levels are tridiagonal (box) or cyclic tridiagonal (torus): their diagonals are added as
    (L, n) arrays and factored by LAPACK's ``gttrf`` (:class:`~mfgnet.grid.tridiagonal.TridiagonalLevels`,
    one compiled call for all levels and per sweep with numba), where a SuperLU factor and solve
    cost about 0.8 ms and 20 µs of per-call overhead on 128–1024 nodes (benchmark:
    ``python -m mfgnet.bench --only grid_levels``).  Other dimensions: one sparse LU per level.

    ``base`` (n, n) is ``I/dt - ν Δ``; ``J`` the level-major block-diagonal ``J_k``, sparse or
    :class:`~mfgnet.grid.tridiagonal.LevelDiagonals`.
    """

    # The benchmark's reference switches this off to time the SuperLU path in the same run.
    tridiagonal_1d = True

    def __init__(self, base: sp.spmatrix, J, levels: int, n: int, dim: int) -> None:
        self.n, self.levels = n, levels
        self.tridiagonal = self.tridiagonal_1d and dim == 1 and n >= 3
        if self.tridiagonal:
            if not isinstance(J, LevelDiagonals):
                J = LevelDiagonals.from_block_diagonal(J, levels, n)
            # base's entries first, as in the sparse sum kron(I, base) + J (the same numbers)
            self._blocks = LevelDiagonals.from_block_diagonal(base, 1, n) + J
        else:
            if isinstance(J, LevelDiagonals):
                J = J.to_sparse()
            self._blocks = (sp.kron(sp.identity(levels), base) + J).tocsc()
            self._blocks.sort_indices()
        self._lu = None

    @property
    def lu(self):
        """The factors: a :class:`~mfgnet.grid.tridiagonal.TridiagonalLevels` (1D), else one
        SuperLU per level."""
        if self._lu is None:
            if self.tridiagonal:
                self._lu = TridiagonalLevels(self._blocks)
            else:
                self._lu = [spla.splu(diagonal_block(self._blocks, k, self.n), permc_spec="COLAMD")
                            for k in range(self.levels)]
            self._blocks = None
        return self._lu

    def backward(self, rhs: np.ndarray, dt: float) -> np.ndarray:
        """Solve the HJB Jacobian: ``B_k x_k - x_{k+1}/dt = rhs_k`` (x_{Nt} = 0), rhs (L, n)."""
        if self.tridiagonal:
            return self.lu.sweep(rhs, dt, transposed=False, backward=True)
        out = np.empty_like(rhs)
        carry = np.zeros(self.n)
        for k in range(self.levels - 1, -1, -1):
            carry = self.lu[k].solve(rhs[k] + carry / dt)
            out[k] = carry
        return out

    def forward(self, rhs: np.ndarray, dt: float) -> np.ndarray:
        """Solve the FP operator: ``B_kᵀ y_k - y_{k-1}/dt = rhs_k`` (y_{-1} = 0), rhs (L, n)."""
        if self.tridiagonal:
            return self.lu.sweep(rhs, dt, transposed=True, backward=False)
        out = np.empty_like(rhs)
        carry = np.zeros(self.n)
        for k in range(self.levels):
            carry = self.lu[k].solve(rhs[k] + carry / dt, trans="T")
            out[k] = carry
        return out


def gmres(matvec, b: np.ndarray, x0: np.ndarray, rtol: float, max_iterations: int) -> tuple[np.ndarray, int]:
    """Unrestarted GMRES (classical Gram-Schmidt, repeated where it cancelled, vectors stored as rows).

    The least-squares problem is kept triangular by Givens rotations, so the residual norm is
    known after each iteration without a solve (a least-squares solve per iteration cost a
    fifth of a small-ν grid solve).  Stops when the residual falls below ``rtol * |b|``;
    returns (x, iterations).
    """
    r0 = b - matvec(x0)
    beta = float(np.linalg.norm(r0))
    target = rtol * max(float(np.linalg.norm(b)), 1e-300)
    if beta <= target:
        return x0, 0
    V = np.zeros((max_iterations + 1, b.size))
    R = np.zeros((max_iterations, max_iterations))  # the rotated Hessenberg matrix, upper triangular
    cos, sin = np.zeros(max_iterations), np.zeros(max_iterations)
    g = np.zeros(max_iterations + 1)  # the rotated right-hand side beta e1
    g[0] = beta
    V[0] = r0 / beta
    k = 0
    for k in range(1, max_iterations + 1):
        w = matvec(V[k - 1])
        h = np.zeros(k + 1)
        before = float(np.linalg.norm(w))
        for _ in range(2):  # a second pass only when the first cancelled much of w ("twice is enough")
            # einsum, not BLAS's gemv: on a busy 2-core machine OpenBLAS's threads spin for
            # milliseconds per call, which cost a 256-cell solve a third of its CPU time.
            c = np.einsum("ij,j->i", V[:k], w)
            w = w - np.einsum("i,ij->j", c, V[:k])
            h[:k] += c
            h[k] = float(np.linalg.norm(w))
            if h[k] > 0.7 * before:
                break
            before = h[k]
        for i in range(k - 1):  # the earlier rotations, in order
            h[i], h[i + 1] = cos[i] * h[i] + sin[i] * h[i + 1], -sin[i] * h[i] + cos[i] * h[i + 1]
        norm = float(np.hypot(h[k - 1], h[k]))
        cos[k - 1], sin[k - 1] = (1.0, 0.0) if norm == 0 else (h[k - 1] / norm, h[k] / norm)
        h[k - 1] = norm
        g[k] = -sin[k - 1] * g[k - 1]
        g[k - 1] = cos[k - 1] * g[k - 1]
        R[:k, k - 1] = h[:k]
        if abs(g[k]) <= target or h[k] <= 1e-14 * beta or norm == 0:
            break
        V[k] = w / h[k]
    y = _upper_solve(R[:k, :k], g[:k])
    return x0 + np.einsum("i,ij->j", y, V[:k]), k


def _upper_solve(R: np.ndarray, g: np.ndarray) -> np.ndarray:
    """R y = g for upper triangular R; a zero pivot (breakdown on a singular operator) gives the
    least-squares answer instead of infinities."""
    if np.all(np.abs(np.diag(R)) > 0):
        return solve_triangular(R, g)
    return np.linalg.lstsq(R, g, rcond=None)[0]


class CoupledTimeSolve:
    """Newton step of the time-dependent system, ``[A_uu A_um; A_mu A_mm] [du; dm] = [r1; r2]``.

    ``A_uu`` (backward sweep) and ``A_mm`` (forward sweep with the transposed level blocks)
    are solved exactly; dm solves the Schur complement
    ``(A_mm - A_mu A_uu⁻¹ A_um) dm = r2 - A_mu A_uu⁻¹ r1`` by GMRES preconditioned with
    ``A_mm⁻¹`` (the preconditioned operator is I minus the linearised Picard map, so GMRES
    needs few iterations when Picard contracts and still converges when it does not);
    then ``du = A_uu⁻¹ (r1 - A_um dm)``.  ``counter`` (a two-element list) accumulates GMRES
    iterations and the solves that stopped at ``max_iterations`` (``inexact`` says whether the last
    one did).
    """

    def __init__(self, factors: LevelFactors, dt: float, apply_um, A_mu, counter: list,
                 max_iterations: int, rtol: float = 1e-11) -> None:
        self.f, self.dt, self.apply_um, self.A_mu = factors, dt, apply_um, A_mu
        self.counter, self.rtol, self.max_iterations = counter, rtol, max_iterations
        self.inexact = False

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        L, n = self.f.levels, self.f.n
        r1, r2 = rhs[:L * n].reshape(L, n), rhs[L * n:].reshape(L, n)
        back, fwd, dt = self.f.backward, self.f.forward, self.dt

        def mu_of(v: np.ndarray) -> np.ndarray:
            return (self.A_mu @ v.ravel()).reshape(L, n)

        def op(dm_flat: np.ndarray) -> np.ndarray:
            dm = dm_flat.reshape(L, n)
            return (dm - fwd(mu_of(back(self.apply_um(dm), dt)), dt)).ravel()

        b = fwd(r2 - mu_of(back(r1, dt)), dt).ravel()
        dm, iterations = gmres(op, b, b.copy(), self.rtol, self.max_iterations)
        self.counter[0] += iterations
        self.inexact = iterations >= self.max_iterations  # GMRES stopped at its cap, not at rtol
        self.counter[1] += self.inexact
        dm = dm.reshape(L, n)
        du = back(r1 - self.apply_um(dm), dt)
        return np.concatenate([du.ravel(), dm.ravel()])
