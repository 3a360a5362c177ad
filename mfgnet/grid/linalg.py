"""Sparse linear solves that exploit the grid's structure.

* Ergodic systems are solved directly (SuperLU) after a geometric nested-dissection
  ordering of the grid nodes (the unknowns of one node kept together, bordering unknowns
  last): on a 128² torus this has about 2-3 times less fill than SuperLU's default ordering.
  By default one such factorisation of the HJB operator serves many solves
  (:class:`FactorReuse`): GMRES preconditioned by it solves the HJB and Fokker-Planck systems
  at nearby u (:class:`ReusedSolve`) and, as a block Gauss-Seidel preconditioner, the coupled
  Newton system (:class:`CoupledErgodicSolve`), which is then never factorised whole.
* Time-dependent systems are block bidiagonal in time: the HJB Jacobian is solved by one
  backward sweep, the Fokker-Planck operator by one forward sweep (one small sparse LU per
  time level; tridiagonal factors in 1D, :mod:`mfgnet.grid.tridiagonal`), and the coupled
  Newton system by GMRES on the Schur complement in m, preconditioned by the forward sweep
  (see :class:`CoupledTimeSolve`); where that needs many iterations (small ν), by GMRES on the
  whole Newton matrix preconditioned by a reused LU of it (:class:`SpaceTimeJacobian`, shared
  factors of :class:`FactorReuse`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg import solve_triangular

from mfgnet.grid.mesh import Grid
from mfgnet.grid.tridiagonal import LevelDiagonals, TridiagonalLevels

_LEAF = 32
STALE_CAP = 3  # a stale solve gives up at this multiple of FactorReuse.stale_iterations
# Inexact Newton (CoupledErgodicSolve): GMRES stops at the relative residual
# max(rtol, min(FORCING, FORCING |r|_inf)) for the Newton residual r, a forcing term O(|r|) that keeps
# Newton quadratic.  B1 2D 256²: 14 block iterations instead of 32 for the same 4 Newton steps
# (0.45 s of 3.5 s); 1e-2: 12, but 51 Newton steps instead of 35 on the harder ergodic torus
# σ = 0.5, 48² (1e-3: 36; that solve does not converge either way).  Forcing the Picard warm start's
# HJB solves as well gained nothing (their Fokker-Planck solves then needed more iterations).
FORCING = 1e-3


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


# SuperLU options for a 2D (or 3D) time level ``I/dt - ν Δ + J_k``: its pattern is symmetric and its
# diagonal dominates (an M-matrix), so a minimum-degree ordering of Aᵀ + A with diagonal pivots keeps
# the fill low.  Against COLAMD (the former choice) on a 2D level with B7's box, factor / solve / fill:
# 64² 6.5 → 3.3 ms, 0.22 → 0.11 ms, 221k → 127k; 128² 26.4 → 15.5 ms, 1.27 → 0.54 ms, 1.22M → 664k
# (nested dissection with the natural order: 18.8 ms, 0.73 ms, 1.05M).  Whole solves (B7's planar crowd,
# 64² x 64 levels, CPU, interleaved): 6.9 s against 8.7 s, 1.26x (`python -m mfgnet.bench --only grid_levels`,
# results/bench_grid_levels.md).
LEVEL_LU_OPTIONS = {"permc_spec": "MMD_AT_PLUS_A", "diag_pivot_thresh": 0.01, "options": {"SymmetricMode": True}}


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
                self._lu = [spla.splu(diagonal_block(self._blocks, k, self.n), **LEVEL_LU_OPTIONS)
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


def norm2(v: np.ndarray) -> float:
    """The 2-norm by einsum: OpenBLAS's threaded ddot (np.linalg.norm of a vector) spins for
    milliseconds per call on a busy 2-core machine (8 ms of CPU for 65536 entries, einsum 0.04 ms)."""
    return float(np.sqrt(np.einsum("i,i->", v, v)))


def gmres(matvec, b: np.ndarray, x0: np.ndarray, rtol: float, max_iterations: int) -> tuple[np.ndarray, int]:
    """Unrestarted GMRES (classical Gram-Schmidt, repeated where it cancelled, vectors stored as rows).

    The least-squares problem is kept triangular by Givens rotations, so the residual norm is
    known after each iteration without a solve (a least-squares solve per iteration cost a
    fifth of a small-ν grid solve).  Stops when the residual falls below ``rtol * |b|``;
    returns (x, iterations).  Vector norms by :func:`norm2` (no BLAS threads).
    """
    r0 = b - matvec(x0) if np.any(x0) else b.copy()  # a zero guess costs no product
    beta = norm2(r0)
    target = rtol * max(norm2(b), 1e-300)
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
        before = norm2(w)
        for _ in range(2):  # a second pass only when the first cancelled much of w ("twice is enough")
            # einsum, not BLAS's gemv: on a busy 2-core machine OpenBLAS's threads spin for
            # milliseconds per call, which cost a 256-cell solve a third of its CPU time.
            c = np.einsum("ij,j->i", V[:k], w)
            w = w - np.einsum("i,ij->j", c, V[:k])
            h[:k] += c
            h[k] = norm2(w)
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

    With ``whole`` (a :class:`SpaceTimeJacobian` sharing a :class:`FactorReuse`, ``time_lu="reuse"``):
    once a Schur solve has needed more than ``whole.switch`` iterations (small ν, where the Picard
    map is far from a contraction), the next steps run GMRES on the whole Newton matrix instead,
    right-preconditioned by one LU of the whole matrix at an earlier iterate (or ν), refactorised
    by the rule of :class:`FactorReuse`.
    """

    def __init__(self, factors: LevelFactors, dt: float, apply_um, A_mu, counter: list,
                 max_iterations: int, rtol: float = 1e-11, whole: SpaceTimeJacobian | None = None) -> None:
        self.f, self.dt, self.apply_um, self.A_mu = factors, dt, apply_um, A_mu
        self.counter, self.rtol, self.max_iterations = counter, rtol, max_iterations
        self.whole = whole
        self.inexact = False

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        whole = self.whole
        if whole is not None and (whole.reuse.lu is not None or whole.reuse.refresh):
            return self._solve_whole(rhs)
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
        if whole is not None and iterations > whole.switch:
            whole.reuse.refresh = True  # slow: the next Newton step factorises the whole matrix
        dm = dm.reshape(L, n)
        du = back(r1 - self.apply_um(dm), dt)
        return np.concatenate([du.ravel(), dm.ravel()])

    def _solve_whole(self, rhs: np.ndarray) -> np.ndarray:
        whole, reuse = self.whole, self.whole.reuse
        before = reuse.gmres_iterations
        try:
            if reuse.reusable(whole.key):
                lu = reuse.lu
                x, converged = reuse.stale_gmres(whole.apply, lu.solve, rhs, self.rtol)
                if converged:
                    self.inexact = False
                    return x
            if not reuse.holds(whole.key):
                reuse.factor(whole.assemble(), whole.key, whole=True)
            x, iterations = reuse.gmres(whole.apply, reuse.lu.solve, rhs, self.max_iterations, self.rtol)
            self.inexact = iterations >= self.max_iterations
            self.counter[1] += self.inexact
            return x
        finally:
            self.counter[0] += reuse.gmres_iterations - before


class SpaceTimeJacobian:
    """The whole Newton matrix K of the time-dependent system (:class:`CoupledTimeSolve`), applied from
    its blocks and assembled only to be factorised.  ``base`` (n, n): ``I/dt - ν Δ``; ``J``: the levels'
    ``J_k`` (sparse block-diagonal or :class:`~mfgnet.grid.tridiagonal.LevelDiagonals`), ``A_mu`` the
    transport ``d(Jᵀ m)/du`` (either kind), ``dm_diag`` (L, n) the local part of ``dHJB/dm`` and
    ``apply_um`` all of it (with a nonlocal coupling's kernel part, which the assembled matrix leaves
    out: its LU is then a preconditioner even at its own iterate).  ``key`` identifies the iterate (x
    and ν) for the shared factors ``reuse``; ``switch``: Schur GMRES iterations that turn to K's LU.
    """

    def __init__(self, base: sp.spmatrix, J, A_mu, dm_diag: np.ndarray, apply_um, dt: float,
                 key: np.ndarray, reuse: FactorReuse, switch: int) -> None:
        self.base, self.J, self.A_mu, self.dm_diag, self.apply_um = base, J, A_mu, dm_diag, apply_um
        self.dt, self.key, self.reuse, self.switch = dt, key, reuse, switch
        self.levels, self.n = dm_diag.shape

    def _level_blocks(self, v: np.ndarray, transposed: bool) -> np.ndarray:
        """``B_k v_k`` (``B_kᵀ v_k``) for every level, v (L, n); ``base`` is symmetric."""
        J = self.J.T if transposed else self.J
        return (self.base @ v.T).T + (J @ v.ravel()).reshape(v.shape)

    def apply(self, v: np.ndarray) -> np.ndarray:
        """K v: HJB rows ``B_k du_k - du_{k+1}/dt + (dHJB/dm) dm``, FP rows ``T du + B_kᵀ dm_k - dm_{k-1}/dt``."""
        L, n, dt = self.levels, self.n, self.dt
        du, dm = v[:L * n].reshape(L, n), v[L * n:].reshape(L, n)
        hjb = self._level_blocks(du, False) + self.apply_um(dm)
        hjb[:-1] -= du[1:] / dt
        fp = self._level_blocks(dm, True) + (self.A_mu @ du.ravel()).reshape(L, n)
        fp[1:] -= dm[:-1] / dt
        return np.concatenate([hjb.ravel(), fp.ravel()])

    def assemble(self) -> sp.csc_matrix:
        """K as a sparse matrix (without a nonlocal coupling's kernel part)."""
        L, n, dt = self.levels, self.n, self.dt

        def sparse(M):
            return M.to_sparse() if isinstance(M, LevelDiagonals) else sp.csr_matrix(M)

        blocks = sp.kron(sp.identity(L), self.base, format="csr") + sparse(self.J)
        later = sp.kron(sp.eye(L, k=1), sp.identity(n), format="csr") / dt
        return sp.bmat([[blocks - later, -sp.diags(self.dm_diag.ravel())],
                        [sparse(self.A_mu), blocks.T - later.T]], format="csc")


class FactorReuse:
    """The factors of one ergodic HJB operator ``A(u) = [[-ν Δ + J(u), 1], [h^d 1ᵀ, 0]]`` (the
    unknowns u and λ), shared by the linear solves of an ergodic grid solve (or of one whole
    time-dependent Newton matrix, u then the iterate and ν: :class:`SpaceTimeJacobian`).

    A solve at another u runs GMRES preconditioned by these factors.  When it needs more than
    ``stale_iterations`` iterations, the next solve factorises the operator at its own u (which
    becomes the shared one); one that reaches ``STALE_CAP × stale_iterations`` stops there and
    factorises at once (then solves again).  ``factorisations``, ``gmres_iterations``
    and ``gmres_capped`` (solves left inexact at ``max_iterations`` with fresh factors) count
    for the diagnostics.  GMRES stops at ``rtol`` times the right-hand side's norm (as
    :class:`CoupledTimeSolve`), a coupled Newton step at :meth:`forcing`.
    """

    def __init__(self, grid: Grid, stale_iterations: int, max_iterations: int, rtol: float = 1e-11) -> None:
        self.grid, self.rtol = grid, rtol
        self.stale_iterations, self.max_iterations = stale_iterations, max_iterations
        self.u: np.ndarray | None = None
        self.lu: DirectSolve | None = None
        self.refresh = False  # the last stale solve was slow: factorise at the next u
        self.factorisations = self.gmres_iterations = self.gmres_capped = 0

    def factor(self, A: sp.spmatrix, u: np.ndarray, whole: bool = False):
        """Factorise ``A = A(u)`` now; later solves reuse it.  ``whole``: A is the time-dependent
        Newton matrix (:class:`SpaceTimeJacobian`; SuperLU's COLAMD order, which had half the fill
        of the nested dissection of its (level, node) grid at 128 cells)."""
        if whole:
            self.lu = spla.splu(sp.csc_matrix(A))
        else:
            self.lu = DirectSolve(A, self.grid, fields=1)
            _ = self.lu.lu  # factorise now, not in the first solve
        self.u = np.array(u, dtype=np.float64)
        self.refresh = False
        self.factorisations += 1
        return self.lu

    def reusable(self, u: np.ndarray) -> bool:
        """Whether a solve at u should run GMRES with the factors of another u."""
        return self.lu is not None and not self.refresh and not self.holds(u)

    def stale_gmres(self, matvec, precondition, rhs: np.ndarray, rtol: float | None = None):
        """GMRES with factors of another u (capped at ``STALE_CAP × stale_iterations``); returns
        (x, converged).  A slow solve marks the factors for a refresh."""
        cap = STALE_CAP * self.stale_iterations
        x, iterations = self.gmres(matvec, precondition, rhs, cap, rtol)
        self.refresh = iterations > self.stale_iterations
        return x, iterations < cap

    def forcing(self, residual: np.ndarray) -> float:
        """GMRES's tolerance for a Newton direction at this residual."""
        return max(self.rtol, min(FORCING, FORCING * float(np.max(np.abs(residual)))))

    def holds(self, u: np.ndarray) -> bool:
        """Whether the shared factors are those of A(u) itself."""
        return self.u is not None and np.array_equal(self.u, u)

    def gmres(self, matvec, precondition, rhs: np.ndarray, max_iterations: int,
              rtol: float | None = None) -> tuple[np.ndarray, int]:
        """Right-preconditioned GMRES from 0: ``(matvec ∘ precondition) y = rhs``, returns
        (``precondition(y)``, iterations)."""
        y, iterations = gmres(lambda v: matvec(precondition(v)), rhs, np.zeros_like(rhs),
                              self.rtol if rtol is None else rtol, max_iterations)
        self.gmres_iterations += iterations
        return precondition(y), iterations


def bordered(B: sp.spmatrix, volume: float) -> sp.csr_matrix:
    """``[[B, 1], [h^d 1ᵀ, 0]]`` (h^d = ``volume``): the ergodic HJB operator on (u, λ) with h^d Σ u = 0."""
    n = B.shape[0]
    return sp.bmat([[B, sp.csr_matrix(np.ones((n, 1)))], [sp.csr_matrix(np.full((1, n), volume)), None]],
                   format="csr")


class ReusedSolve:
    """Solves with the bordered ergodic HJB operator ``A = bordered(B, h^d)`` at ``u`` (``trans="T"``: its
    transpose, the bordered Fokker-Planck operator), by the shared factors of :class:`FactorReuse`:
    exactly when they are A's own, else by GMRES preconditioned with them (factorising A when that
    reaches its cap).  A is applied from B (``B`` (n, n) CSR) and assembled only to be factorised."""

    def __init__(self, B: sp.spmatrix, u: np.ndarray, reuse: FactorReuse) -> None:
        self.B, self.u, self.reuse = sp.csr_matrix(B), np.array(u, dtype=np.float64), reuse
        self.size = B.shape[0] + 1
        self.inexact = False

    def _apply(self, v: np.ndarray, trans: str) -> np.ndarray:
        n, vol = self.size - 1, self.reuse.grid.cell_volume
        if trans == "N":  # [B x + ξ; h^d Σ x]
            return np.concatenate([self.B @ v[:n] + v[n], [vol * v[:n].sum()]])
        return np.concatenate([self.B.T @ v[:n] + vol * v[n], [v[:n].sum()]])  # [Bᵀ x + h^d ξ; Σ x]

    def factorise(self) -> None:
        """Make the shared factors A's own (later solves at u are then exact)."""
        if not self.reuse.holds(self.u):
            self.reuse.factor(bordered(self.B, self.reuse.grid.cell_volume), self.u)

    def solve(self, rhs: np.ndarray, trans: str = "N") -> np.ndarray:
        reuse = self.reuse
        full = np.zeros(self.size)
        full[:rhs.size] = rhs
        if reuse.reusable(self.u):
            lu = reuse.lu
            x, converged = reuse.stale_gmres(lambda v: self._apply(v, trans), lambda v: lu.solve(v, trans=trans), full)
            if converged:
                return x[:rhs.size]
        self.factorise()
        return reuse.lu.solve(full, trans=trans)[:rhs.size]


class CoupledErgodicSolve:
    """Newton step of the ergodic system (x = [u, m, λ, μ, z], z the nonlocal auxiliaries) by
    GMRES on the whole Jacobian ``K``, right-preconditioned by the block Gauss-Seidel sweep of the
    shared HJB factors (:class:`FactorReuse`): ``[du; dλ] = A⁻¹ [r_HJB; r_u]``, then
    ``[dm; dμ]`` from ``Aᵀ`` (the rescaled bordered FP operator) with ``r_FP - T du``, then
    ``dz = r_z + Rᵀ dm``; only the coupling ``-∂F/∂m dm`` (and ``∂F/∂z dz``) in the HJB rows is
    left to GMRES.  K is applied from its blocks: ``B = -ν Δ + J(u)``, ``d_m = ∂F/∂m`` (n,),
    ``transport`` ``T = d(Jᵀ m)/du``, and for a nonlocal coupling ``right`` (R, (n, r)) and
    ``d_z = ∂F/∂z`` (n, r) (else None).  GMRES stops at the forcing term of :data:`FORCING` (an
    inexact Newton step); like :class:`CoupledTimeSolve`, ``inexact`` says whether it stopped at
    ``max_iterations`` with A(u)'s own factors instead.
    """

    def __init__(self, B: sp.spmatrix, d_m: np.ndarray, transport: sp.spmatrix, right: np.ndarray | None,
                 d_z: np.ndarray | None, u: np.ndarray, reuse: FactorReuse) -> None:
        self.B, self.d_m, self.T = sp.csr_matrix(B), d_m, sp.csr_matrix(transport)
        self.right, self.d_z = right, d_z
        self.u, self.reuse = np.array(u, dtype=np.float64), reuse
        self.size = 2 * self.u.size + 2 + (0 if right is None else right.shape[1])
        self.inexact = False

    def _apply(self, v: np.ndarray) -> np.ndarray:
        """K v."""
        n, vol = self.u.size, self.reuse.grid.cell_volume
        du, dm = v[:n], v[n:2 * n]
        hjb = self.B @ du - self.d_m * dm + v[2 * n]
        fp = self.T @ du + self.B.T @ dm + v[2 * n + 1]
        masses = [vol * du.sum(), vol * dm.sum()]
        if self.right is None:
            return np.concatenate([hjb, fp, masses])
        dz = v[2 * n + 2:]
        return np.concatenate([hjb - self.d_z @ dz, fp, masses, dz - self.right.T @ dm])

    def _sweep(self, v: np.ndarray) -> np.ndarray:
        n, lu, vol = self.u.size, self.reuse.lu, self.reuse.grid.cell_volume
        first = lu.solve(np.concatenate([v[:n], v[2 * n:2 * n + 1]]))
        du = first[:n]
        second = lu.solve(np.concatenate([v[n:2 * n] - self.T @ du, v[2 * n + 1:2 * n + 2] / vol]), trans="T")
        dm = second[:n]
        out = [du, dm, first[n:], vol * second[n:]]
        if self.right is not None:
            out.append(v[2 * n + 2:] + self.right.T @ dm)
        return np.concatenate(out)

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """Solution of ``K x = [rhs; 0]`` (zeros for the auxiliary rows); the first len(rhs) entries."""
        reuse = self.reuse
        full = np.zeros(self.size)
        full[:rhs.size] = rhs
        rtol = reuse.forcing(rhs)
        if reuse.reusable(self.u):
            x, converged = reuse.stale_gmres(self._apply, self._sweep, full, rtol)
            if converged:
                return x[:rhs.size]
        if not reuse.holds(self.u):
            reuse.factor(bordered(self.B, reuse.grid.cell_volume), self.u)
        x, iterations = reuse.gmres(self._apply, self._sweep, full, reuse.max_iterations, rtol)
        self.inexact = iterations >= reuse.max_iterations
        reuse.gmres_capped += self.inexact
        return x[:rhs.size]
