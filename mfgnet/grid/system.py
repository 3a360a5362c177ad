"""The discrete mean field game system: residuals and sparse Jacobians.

Time-dependent (levels ``t_k = k dt``, unknowns ``u^0..u^{Nt-1}`` and ``m^1..m^{Nt}``)::

    HJB_k = (u^k - u^{k+1})/dt - ν Δ_h u^k + H_h(u^k) - F(t_{k+1}, m^{k+1}),   u^{Nt} = G(m^{Nt})
    FP_k  = (m^{k+1} - m^k)/dt - ν Δ_h m^{k+1} + J(u^k)ᵀ m^{k+1},             m^0 = m0

with ``J(u) = dH_h/du``: the Fokker-Planck operator is the adjoint of the linearised HJB
operator (Achdou & Capuzzo-Dolcetta), so its columns sum to zero (mass is conserved to
round-off) and its implicit step is an M-matrix (m >= 0).

Ergodic (unknowns u, m, λ and a multiplier μ that makes the system square; μ = 0 at the
solution because the FP rows sum to ``n μ``)::

    λ - ν Δ_h u + H_h(u) - F(m) = 0,   -ν Δ_h m + J(u)ᵀ m + μ = 0,   h^d Σ u = 0,   h^d Σ m = 1.

Every system here maps a flat vector x to its residual r(x) and, on request, a linear
solver for its Jacobian (an object with ``solve(rhs)``, see :mod:`mfgnet.grid.linalg`).
Nonlocal couplings enter the Jacobian through their kernel's quadrature matrices (see
:mod:`mfgnet.grid.coupling`): as an operator in the time-dependent solve, and as auxiliary
unknowns ``z = Rᵀ m`` of a low-rank factorisation (bordering rows of the sparse matrix) in the
ergodic one.
"""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp
import torch

from mfgnet.grid.coupling import GridCoupling
from mfgnet.grid.hamiltonian import HamiltonianState, NumericalHamiltonian
from mfgnet.grid.linalg import (
    CoupledErgodicSolve,
    CoupledTimeSolve,
    DirectSolve,
    FactorReuse,
    LevelFactors,
    ReusedSolve,
    SpaceTimeJacobian,
    bordered,
)
from mfgnet.grid.mesh import Grid
from mfgnet.problems import MFGProblem, ProblemError


def initial_density_on(problem: MFGProblem, grid: Grid) -> np.ndarray:
    """m0 at the nodes (n,), rescaled so that its discrete mass is exactly 1."""
    with torch.no_grad():
        m0 = problem.initial_density(grid.nodes).numpy().astype(np.float64)
    if not np.all(np.isfinite(m0)) or m0.min() < 0:
        raise ProblemError("initial_density must be finite and >= 0 at the grid nodes")
    mass = grid.mass(m0)
    if not mass > 0:
        raise ProblemError(f"initial_density has discrete mass {mass!r} on the grid; it must be > 0 "
                           "(is the density's support inside the grid's box?)")
    return m0 / mass


def residual_floor(grid: Grid, nu: float, x: np.ndarray) -> float:
    """Max-norm residual that round-off alone produces at x: 64 eps |x| times the largest
    diagonal entry of the linear part (ν Σ 4/h_i² + 1/dt)."""
    scale = nu * float(np.sum(4.0 / grid.h ** 2)) + (0.0 if grid.dt is None else 1.0 / grid.dt)
    return 64 * np.finfo(np.float64).eps * scale * max(1.0, float(np.max(np.abs(x))))


class Discretisation:
    """The problem evaluated on a grid: numerical Hamiltonian, couplings, m0."""

    def __init__(self, problem: MFGProblem, grid: Grid) -> None:
        self.problem = problem
        self.grid = grid
        self.nu = problem.viscosity
        self.ham = NumericalHamiltonian(problem, grid)
        self.coupling = GridCoupling(problem.coupling, grid, "coupling")
        if problem.is_ergodic:
            self.terminal, self.m0 = None, None
        else:
            self.terminal = GridCoupling(problem.terminal_cost, grid, "terminal_cost")
            self.m0 = initial_density_on(problem, grid)
        # Ergodic solves: the shared factors of the HJB operator (set by the solver), or None for a
        # fresh factorisation of every Jacobian (see :class:`~mfgnet.grid.linalg.FactorReuse`).
        self.factor_reuse: FactorReuse | None = None

    def with_viscosity(self, nu: float) -> Discretisation:
        """The same discretisation with ν replaced (continuation in ν); ``self`` if unchanged."""
        if nu == self.nu:
            return self
        other = copy.copy(self)
        other.nu = nu
        other.__dict__.pop("_factors", None)  # factors of I/dt - ν Δ + J depend on ν
        return other

    @property
    def levels(self) -> int:
        """Time levels carried as unknowns (Nt), or 1 for the ergodic problem."""
        return 1 if self.grid.times is None else self.grid.time_steps

    @property
    def level_diagonals(self) -> bool:
        """Whether the time levels' matrices are handled as tridiagonal diagonals (1D grids)."""
        return LevelFactors.tridiagonal_1d and self.grid.dim == 1 and self.grid.n >= 3

    def hamiltonian_jacobian(self, hs: HamiltonianState):
        """``J = dH_h/du`` at a time-dependent state (L, n): its level diagonals in 1D (no sparse
        matrix of L·n rows is built), the sparse matrix otherwise; either supports ``J.T @ flat``."""
        return self.ham.jacobian_levels(hs) if self.level_diagonals else hs.jacobian

    def transport_jacobian(self, hs: HamiltonianState, M: np.ndarray):
        """``d(Jᵀ m)/du`` at M (L, n): level diagonals in 1D where it is tridiagonal, else sparse."""
        return self.ham.transport_levels(hs, M) if self.level_diagonals else self.ham.transport_jacobian(hs, M)

    def level_factors(self, U: np.ndarray, J) -> LevelFactors:
        """LU factors of the time levels' ``I/dt - ν Δ + J(u^k)`` at U (Nt, n) (J from
        :meth:`hamiltonian_jacobian`); the last ones are reused when U repeats (the FP sweep after
        an HJB solve at the same u)."""
        cached = getattr(self, "_factors", None)
        if cached is not None and cached[0].shape == U.shape and np.array_equal(cached[0], U):
            return cached[1]
        grid = self.grid
        base = sp.identity(grid.n, format="csr") / grid.dt - self.nu * grid.laplacian
        factors = LevelFactors(base, J, U.shape[0], grid.n, grid.dim)
        self._factors = (U.copy(), factors)
        return factors

    def residual_floor(self, x: np.ndarray) -> float:
        """Max-norm residual that round-off alone produces at x (`residual_floor`)."""
        return residual_floor(self.grid, self.nu, x)

    def laplacian(self, v: np.ndarray) -> np.ndarray:
        return (self.grid.blocks(v.shape[0])["laplacian"] @ v.ravel()).reshape(v.shape)


# ---------------------------------------------------------------- time-dependent
class TimeDependentSystem:
    """The coupled HJB-FP system; x = [u^0..u^{Nt-1}, m^1..m^{Nt}] flattened."""

    def __init__(self, disc: Discretisation, gmres_max_iterations: int, reuse: FactorReuse | None = None,
                 switch: int = 0) -> None:
        self.disc = disc
        self.nt, self.n = disc.levels, disc.grid.n
        self.gmres_max_iterations = gmres_max_iterations
        # time_lu="reuse": the shared LU of the whole Newton matrix, and the Schur GMRES iterations that
        # turn to it (see :class:`~mfgnet.grid.linalg.CoupledTimeSolve`); None: Schur GMRES only.
        self.reuse, self.switch = reuse, switch
        self.linear_iterations = [0, 0]  # GMRES iterations of all Newton steps, and solves that hit the cap

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        size = self.nt * self.n
        return x[:size].reshape(self.nt, self.n), x[size:2 * size].reshape(self.nt, self.n)

    def terminal_value(self, m_last: np.ndarray) -> np.ndarray:
        return self.disc.terminal(self.disc.grid.times[-1:], m_last[None], derivatives=False).value[0]

    def residual_floor(self, x: np.ndarray) -> float:
        return self.disc.residual_floor(x)

    def evaluate(self, x: np.ndarray, jacobian: bool = False):
        d, grid = self.disc, self.disc.grid
        U, M = self.split(x)
        dt, times = grid.dt, grid.times
        hs = d.ham(U)
        F = d.coupling(times[1:], M, derivatives=jacobian)
        G = d.terminal(times[-1:], M[-1:], derivatives=jacobian)
        u_next = np.vstack([U[1:], G.value])
        m_prev = np.vstack([d.m0[None], M[:-1]])
        J = d.hamiltonian_jacobian(hs)
        r_hjb = (U - u_next) / dt - d.nu * d.laplacian(U) + hs.H - F.value
        r_fp = (M - m_prev) / dt - d.nu * d.laplacian(M) + (J.T @ M.ravel()).reshape(M.shape)
        r = np.concatenate([r_hjb.ravel(), r_fp.ravel()])
        if not jacobian:
            return r, None
        factors = d.level_factors(U, J)
        dm_diag = F.d_m.copy()
        dm_diag[-1] += G.d_m[0] / dt

        def apply_um(dm: np.ndarray) -> np.ndarray:
            """dHJB/dm applied to dm (L, n): local diagonal plus the nonlocal kernels' parts."""
            out = -dm_diag * dm
            if F.d_conv is not None:
                out -= d.coupling.apply_conv_jacobian(F.d_conv, dm)
            if G.d_conv is not None:
                out[-1] -= d.terminal.apply_conv_jacobian(G.d_conv, dm[-1:])[0] / dt
            return out

        transport = d.transport_jacobian(hs, M)
        whole = None
        if self.reuse is not None:
            base = sp.identity(grid.n, format="csr") / dt - d.nu * grid.laplacian
            whole = SpaceTimeJacobian(base, J, transport, dm_diag, apply_um, dt, np.append(x, d.nu), self.reuse,
                                      self.switch)
        return r, CoupledTimeSolve(factors, dt, apply_um, transport, self.linear_iterations,
                                   self.gmres_max_iterations, whole=whole)


class _Backward:
    def __init__(self, factors: LevelFactors, dt: float) -> None:
        self.factors, self.dt = factors, dt

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        return self.factors.backward(rhs.reshape(self.factors.levels, self.factors.n), self.dt).ravel()


class TimeDependentHJB:
    """Backward HJB for a fixed density M = (m^1..m^{Nt}); x = [u^0..u^{Nt-1}]."""

    def __init__(self, disc: Discretisation, M: np.ndarray) -> None:
        self.disc = disc
        times = disc.grid.times
        self.F = disc.coupling(times[1:], M, derivatives=False).value
        self.G = disc.terminal(times[-1:], M[-1:], derivatives=False).value
        self.shape = M.shape

    @classmethod
    def with_costs(cls, disc: Discretisation, F: np.ndarray, G: np.ndarray) -> TimeDependentHJB:
        """The same equation with the crowd costs given instead of a density: F at levels 1..Nt
        (Nt, n) and G (n,) (a deviator's expected or realised costs in an N-player game)."""
        system = cls.__new__(cls)
        system.disc, system.F, system.G, system.shape = disc, F, np.asarray(G).reshape(1, -1), F.shape
        return system

    def residual_floor(self, x: np.ndarray) -> float:
        return self.disc.residual_floor(x)

    def evaluate(self, x: np.ndarray, jacobian: bool = False):
        d, dt = self.disc, self.disc.grid.dt
        U = x.reshape(self.shape)
        hs = d.ham(U)
        u_next = np.vstack([U[1:], self.G])
        r = ((U - u_next) / dt - d.nu * d.laplacian(U) + hs.H - self.F).ravel()
        if not jacobian:
            return r, None
        return r, _Backward(d.level_factors(U, d.hamiltonian_jacobian(hs)), dt)


# ---------------------------------------------------------------------- ergodic
class ErgodicSystem:
    """The coupled ergodic system; x = [u, m, λ, μ]."""

    def __init__(self, disc: Discretisation) -> None:
        self.disc = disc
        self.n = disc.grid.n

    def split(self, x: np.ndarray):
        n = self.n
        return x[:n], x[n:2 * n], x[2 * n], x[2 * n + 1]

    def residual_floor(self, x: np.ndarray) -> float:
        return self.disc.residual_floor(x)

    def evaluate(self, x: np.ndarray, jacobian: bool = False):
        d, grid, n = self.disc, self.disc.grid, self.n
        u, m, lam, mu = self.split(x)
        hs = d.ham(u[None])
        F = d.coupling(np.zeros(1), m[None], derivatives=jacobian)
        J = hs.jacobian
        lap = grid.laplacian
        r = np.concatenate([
            lam - d.nu * (lap @ u) + hs.H[0] - F.value[0],
            -d.nu * (lap @ m) + J.T @ m + mu,
            [grid.mass(u), grid.mass(m) - 1.0],
        ])
        if not jacobian:
            return r, None
        B = (-d.nu * lap + J).tocsr()
        transport = d.ham.transport_jacobian(hs, m[None])
        factor = d.coupling.low_rank()
        d_z = None if factor is None else F.d_conv[0][:, factor.channel] * factor.left  # ∂F/∂z, (n, r)
        if d.factor_reuse is not None:  # K applied from its blocks, never assembled
            return r, CoupledErgodicSolve(B, F.d_m[0], transport, None if factor is None else factor.right,
                                          d_z, u, d.factor_reuse)
        ones = sp.csr_matrix(np.ones((n, 1)))
        vol = sp.csr_matrix(np.full((1, n), grid.cell_volume))
        rows = [
            [B, -sp.diags(F.d_m[0]), ones, None],
            [transport, -d.nu * lap + J.T, None, ones],
            [vol, None, None, None],
            [None, vol, None, None],
        ]
        if factor is not None:
            right = factor.right
            for row in rows:
                row.append(None)
            rows[0][-1] = sp.csr_matrix(-d_z)
            rows.append([None, sp.csr_matrix(-right.T), None, None, sp.identity(right.shape[1], format="csr")])
        return r, DirectSolve(sp.bmat(rows, format="csr"), grid, fields=2)


class ErgodicHJB:
    """Ergodic HJB for a fixed density m; x = [u, λ] with h^d Σ u = 0."""

    def __init__(self, disc: Discretisation, m: np.ndarray) -> None:
        self.disc = disc
        self.F = disc.coupling(np.zeros(1), m[None], derivatives=False).value[0]

    def residual_floor(self, x: np.ndarray) -> float:
        return self.disc.residual_floor(x)

    def evaluate(self, x: np.ndarray, jacobian: bool = False):
        d, grid = self.disc, self.disc.grid
        u, lam = x[:-1], x[-1]
        hs = d.ham(u[None])
        r = np.concatenate([lam - d.nu * (grid.laplacian @ u) + hs.H[0] - self.F, [grid.mass(u)]])
        if not jacobian:
            return r, None
        return r, ergodic_hjb_solver(d, u, hs)


def ergodic_hjb_solver(disc: Discretisation, u: np.ndarray, hs: HamiltonianState | None = None):
    """A linear solver for the bordered ergodic HJB Jacobian at u (``hs``: the Hamiltonian there, if
    known): a fresh LU, or the shared factors of ``disc.factor_reuse``.  Its transpose is the
    (rescaled) bordered FP operator at the same u: ``fp_ergodic`` reuses it from ``disc._ergodic_hjb``."""
    grid = disc.grid
    if hs is None:
        hs = disc.ham(u[None])
    B = -disc.nu * grid.laplacian + hs.jacobian
    if disc.factor_reuse is None:
        solver = DirectSolve(bordered(B, grid.cell_volume), grid, fields=1)
    else:
        solver = ReusedSolve(B, u, disc.factor_reuse)
    disc._ergodic_hjb = (u.copy(), solver)
    return solver
