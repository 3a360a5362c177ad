"""The grid solver for K populations: Newton on the coupled system of 2K equations.

Each population is discretised exactly as a single one (:mod:`mfgnet.grid.system`: the monotone
upwind Hamiltonian, its adjoint Fokker-Planck operator, so each m_k keeps mass 1 to round-off
and m_k >= 0); the populations meet only through the couplings F_k(t, x, m_1, …, m_K), whose
derivatives ∂F_k/∂m_j (autograd) fill the off-diagonal blocks of the Jacobian.  The whole
Jacobian is assembled as one sparse matrix and factored by SuperLU: ergodic problems in 1D and
2D, time-dependent ones of a few 10^5 unknowns (2K · levels · nodes; the memory check refuses
larger ones naming ``solver.cells``).  Larger time-dependent systems (``solver.populations_solve``;
"auto": above 256 MiB of that estimate, e.g. 2D beyond 14²) are solved by block Gauss-Seidel
sweeps to convergence instead: each population solves its own MFG with the single-population
grid solver (whose time-level factorisations scale in 2D), the others' densities frozen and
Anderson-mixed between sweeps, until the coupled residual (the same as Newton's) is below the tolerance.

Unknowns: ergodic ``[u_1..u_K, m_1..m_K, λ_1..λ_K, μ_1..μ_K]`` (μ_k the multiplier that makes
the system square, 0 at the solution); time-dependent ``[U_1..U_K, M_1..M_K]`` with
``U_k = u_k^0..u_k^{Nt-1}`` and ``M_k = m_k^1..m_k^{Nt}``.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from mfgnet.grid.config import GridSolverConfig
from mfgnet.grid.hamiltonian import NumericalHamiltonian
from mfgnet.grid.linalg import DirectSolve, norm2
from mfgnet.grid.mesh import Grid, make_grid
from mfgnet.grid.newton import newton, residual_norm
from mfgnet.grid.solution import GridSolution
from mfgnet.grid.system import initial_density_on, residual_floor
from mfgnet.problems import ProblemError
from mfgnet.problems.populations import MultiPopulationProblem
from mfgnet.progress import progress_bar
from mfgnet.resources import available_memory, check_grid_memory, check_memory
from mfgnet.solution import Diagnostics, Solution

logger = logging.getLogger(__name__)

# SuperLU fill of a 1D space-time system is about 10x its nonzeros, 2D ergodic about 30x: a
# rough bound of the bytes per unknown, for the memory check before anything is built.
_BYTES_PER_UNKNOWN = {1: 4000, 2: 20000}


class MultiPopulationSolution(Solution):
    """The K solutions of a [`MultiPopulationProblem`][mfgnet.problems.populations.MultiPopulationProblem].

    ``populations[k]`` is population k's
    [`GridSolution`][mfgnet.grid.solution.GridSolution] (its ``problem`` the population's
    `population_problem`), so every single-population tool (metrics, figures, simulation of
    agents) works on it; ``diagnostics`` is the coupled solve's.  ``value`` and ``density``
    take the population index first."""

    def __init__(self, problem: MultiPopulationProblem, populations: list[GridSolution],
                 diagnostics: Diagnostics) -> None:
        self.problem = problem
        self.populations = populations
        self.diagnostics = diagnostics

    @property
    def ergodic_constants(self) -> list[float] | None:
        """λ_1..λ_K (ergodic) or None."""
        if self.problem.is_ergodic:
            return [float(p.ergodic_constant) for p in self.populations]
        return None

    def value(self, k: int, t, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """u_k(t, x), shape (n,)."""
        return self.populations[k].value(t, x)

    def density(self, k: int, t, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """m_k(t, x), shape (n,)."""
        return self.populations[k].density(t, x)

    def policy(self, k: int, t, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Population k's feedback α_k = −∂pH_k(x, ∇u_k), shape (n, d)."""
        return self.populations[k].policy(t, x)


class _Populations:
    """The problem on a grid: one numerical Hamiltonian per population, the couplings and m0."""

    def __init__(self, problem: MultiPopulationProblem, grid: Grid) -> None:
        self.problem, self.grid, self.K = problem, grid, problem.size
        views = [problem.population_problem(k) for k in range(self.K)]
        self.nu = [v.viscosity for v in views]
        self.hams = [NumericalHamiltonian(v, grid) for v in views]
        self.m0 = None if problem.is_ergodic else [initial_density_on(v, grid) for v in views]

    def couplings(self, times: np.ndarray, M: np.ndarray, terminal: bool = False):
        """F_k (or G_k) at levels ``times`` (L,) for densities M (K, L, n): values (K, L, n) and
        ∂F_k/∂m_j (K, K, L, n), vectorised over levels and nodes."""
        K, levels, n = M.shape
        x = self.grid.blocks(levels)["nodes"]
        t = torch.from_numpy(np.repeat(np.asarray(times, dtype=np.float64), n)[:, None])
        m = torch.from_numpy(np.ascontiguousarray(M.reshape(K, -1).T)).requires_grad_(True)
        values, slopes = np.zeros((K, levels, n)), np.zeros((K, K, levels, n))
        with torch.enable_grad():
            for k in range(K):  # K couplings, each one batched call over all levels and nodes
                out = self.problem.terminal_cost(k, x, m) if terminal else self.problem.coupling(k, t, x, m)
                field = "terminal_cost" if terminal else "coupling"
                if out.shape != (levels * n,):
                    raise ProblemError(f"populations[{k}].{field} returned shape {tuple(out.shape)} on "
                                       f"{levels * n} grid points")
                values[k] = out.detach().numpy().reshape(levels, n)
                if out.requires_grad:
                    (grad,) = torch.autograd.grad(out.sum(), m, allow_unused=True)
                    if grad is not None:
                        slopes[k] = grad.numpy().T.reshape(K, levels, n)
        return values, slopes

    def residual_floor(self, x: np.ndarray) -> float:
        return residual_floor(self.grid, max(self.nu), x)


class _SpaceTimeSolve:
    """SuperLU (COLAMD ordering) of the assembled space-time Jacobian; ``solve(rhs)``, factored
    at the first solve only (Newton's line search evaluates Jacobians it may reject).  Not
    `mfgnet.grid.linalg.DirectSolve`: its node-major nested-dissection ordering, right for the
    ergodic system, made segregation 1D at 128 cells 84 s instead of 8.7 s."""

    def __init__(self, A: sp.spmatrix) -> None:
        self.A, self.lu = A, None

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        if self.lu is None:
            self.lu = spla.splu(self.A.tocsc())
        return self.lu.solve(rhs)


class ErgodicPopulationsSystem:
    """Residual and Jacobian of the ergodic K-population system (see the module docstring)."""

    def __init__(self, disc: _Populations) -> None:
        self.disc, self.n, self.K = disc, disc.grid.n, disc.K

    def split(self, x: np.ndarray):
        n, K = self.n, self.K
        U = x[:K * n].reshape(K, n)
        M = x[K * n:2 * K * n].reshape(K, n)
        return U, M, x[2 * K * n:2 * K * n + K], x[2 * K * n + K:]

    def residual_floor(self, x: np.ndarray) -> float:
        return self.disc.residual_floor(x)

    def evaluate(self, x: np.ndarray, jacobian: bool = False):
        d, grid, n, K = self.disc, self.disc.grid, self.n, self.K
        U, M, lam, mu = self.split(x)
        F, dF = d.couplings(np.zeros(1), M[:, None, :])
        states = [d.hams[k](U[k][None]) for k in range(K)]
        lap = grid.laplacian
        r_hjb = [lam[k] - d.nu[k] * (lap @ U[k]) + states[k].H[0] - F[k, 0] for k in range(K)]
        r_fp = [-d.nu[k] * (lap @ M[k]) + states[k].jacobian.T @ M[k] + mu[k] for k in range(K)]
        r = np.concatenate([*r_hjb, *r_fp, grid.mass(U), grid.mass(M) - 1.0])
        if not jacobian:
            return r, None
        ones = sp.csr_matrix(np.ones((n, 1)))
        vol = sp.csr_matrix(np.full((1, n), grid.cell_volume))
        size = 4 * K
        blocks = [[None] * size for _ in range(size)]
        for k in range(K):
            J = states[k].jacobian
            blocks[k][k] = -d.nu[k] * lap + J
            for j in range(K):
                if np.any(dF[k, j]):
                    blocks[k][K + j] = -sp.diags(dF[k, j, 0])
            blocks[k][2 * K + k] = ones
            blocks[K + k][k] = d.hams[k].transport_jacobian(states[k], M[k][None])
            blocks[K + k][K + k] = -d.nu[k] * lap + J.T
            blocks[K + k][3 * K + k] = ones
            blocks[2 * K + k][k] = vol
            blocks[3 * K + k][K + k] = vol
        return r, DirectSolve(sp.bmat(blocks, format="csr"), grid, fields=2 * K)


class TimeDependentPopulationsSystem:
    """Residual and Jacobian of the time-dependent K-population system (module docstring)."""

    def __init__(self, disc: _Populations) -> None:
        self.disc, self.K = disc, disc.K
        self.nt, self.n = disc.grid.time_steps, disc.grid.n

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        size = self.K * self.nt * self.n
        shape = (self.K, self.nt, self.n)
        return x[:size].reshape(shape), x[size:].reshape(shape)

    def residual_floor(self, x: np.ndarray) -> float:
        return self.disc.residual_floor(x)

    def terminal_values(self, M: np.ndarray) -> np.ndarray:
        """u_k(T) = G_k(m(T)) (K, n)."""
        return self.disc.couplings(self.disc.grid.times[-1:], M[:, -1:], terminal=True)[0][:, 0]

    def evaluate(self, x: np.ndarray, jacobian: bool = False):
        d, grid, K, nt, n = self.disc, self.disc.grid, self.K, self.nt, self.n
        dt, times = grid.dt, grid.times
        U, M = self.split(x)
        F, dF = d.couplings(times[1:], M)
        G, dG = d.couplings(times[-1:], M[:, -1:], terminal=True)
        lap = grid.blocks(nt)["laplacian"]
        states = [d.hams[k](U[k]) for k in range(K)]
        r_hjb, r_fp = [], []
        for k in range(K):
            u_next = np.vstack([U[k][1:], G[k]])
            m_prev = np.vstack([d.m0[k][None], M[k][:-1]])
            J = states[k].jacobian
            r_hjb.append(((U[k] - u_next) / dt - d.nu[k] * (lap @ U[k].ravel()).reshape(nt, n)
                          + states[k].H - F[k]).ravel())
            r_fp.append(((M[k] - m_prev) / dt - d.nu[k] * (lap @ M[k].ravel()).reshape(nt, n)
                         + (J.T @ M[k].ravel()).reshape(nt, n)).ravel())
        r = np.concatenate(r_hjb + r_fp)
        if not jacobian:
            return r, None
        eye = sp.identity(nt * n, format="csr")
        later = sp.kron(sp.eye(nt, k=1), sp.identity(n), format="csr") / dt    # u^{l+1} in HJB row l
        earlier = sp.kron(sp.eye(nt, k=-1), sp.identity(n), format="csr") / dt  # m^{l} in FP row l
        last = sp.csr_matrix(([1.0], ([nt - 1], [nt - 1])), shape=(nt, nt))
        blocks = [[None] * (2 * K) for _ in range(2 * K)]
        for k in range(K):
            J = states[k].jacobian
            base = eye / dt - d.nu[k] * lap
            blocks[k][k] = base + J - later
            blocks[K + k][K + k] = base + J.T - earlier
            blocks[K + k][k] = d.hams[k].transport_jacobian(states[k], M[k])
            for j in range(K):
                coupling = -sp.diags(dF[k, j].ravel()) if np.any(dF[k, j]) else None
                if np.any(dG[k, j]):
                    terminal = -sp.kron(last, sp.diags(dG[k, j, 0]), format="csr") / dt
                    coupling = terminal if coupling is None else coupling + terminal
                if coupling is not None:
                    blocks[k][K + j] = coupling
        return r, _SpaceTimeSolve(sp.bmat(blocks, format="csc"))


# Block Gauss-Seidel sweeps before Newton (time-dependent problems): until the densities move by
# less than _SWEEP_TOL (max norm, relative to max m0) or _SWEEPS sweeps.  Four fixed sweeps left
# 2D segregation at 16 cells where Newton stalled (m < 0); 1D needed none of the extra ones.
_SWEEPS = 12
_SWEEP_TOL = 1e-2
_SWEEP_DAMPING = 0.5
# populations_solve="sweeps": Anderson mixing (_Anderson) of depth _ANDERSON_DEPTH with step _SOLVE_MIXING on
# the undamped Gauss-Seidel map.  Sweeps to residual 1e-10, segregation 1D at 32 cells / 2D at 16² (cross
# aversion 1.5): plain damping θ = 0.5: > 50 / > 50 (residual 5e-6 / 5e-3 after 50), θ = 1: 40 / > 50 (8e-6);
# depth 3, θ = 1: 15 / -; depth 5, θ = 1: 15 / 21 (2D cross aversion 3: 51, 27 with the restart safeguard;
# θ = 0.5: 60+; plain θ = 1: 60+, residual 6e-7); depth 5, θ = 0.5: 25 / 33; depth 8 no better (15 / 22).
_SOLVE_MIXING = 1.0
_ANDERSON_DEPTH = 5
# The history restarts when ‖f‖₂ grew by more than this factor: 2D 16², cross aversion 3: 1 took 27 sweeps, 0.9 29,
# 1.5 47, 3 48, 0.7 and 0.5 > 60 (restarting nearly every sweep), no restart 51.
_ANDERSON_RESTART = 1.0
# Each population's solve stops at max(tol, min(_INNER_RELATIVE_TOL × the previous sweep's coupled residual,
# _INNER_TOL_CAP)) (at sweep 1 the residual of u = 0, m = m0), not at tol: 2D 32², cross aversion 1.5 / 3, no cap:
# 215 / 293 inner iterations at tol, 174 / 216 (30 / 40 sweeps instead of 28 / 38).  The cap: Newton's small-step
# test scales with tol, so at tol 0.3 a 1D solve stopped at residual 1.8 (not converged); inner iterations at 2D
# 16², cross aversion 3 / 1.5, cap 1e-4: 168 / 132, 1e-3: 157 / 123, 1e-2: 150 / 117 (one failed warm start).
_INNER_RELATIVE_TOL = 1e-2
_INNER_TOL_CAP = 1e-3
# Picard steps of a warm-started population solve (0 stalled Newton in 1D at 32 cells; in 2D at 32², sweeps 2-3,
# 1 took 11-31 % less time than a cold start, the default 3 5-24 %)
_WARM_PICARD = 1
# populations_solve="auto": Newton while the estimate of its factorisation (_BYTES_PER_UNKNOWN) is at most this
# (1D up to 128 cells, 2D up to 14², T = 1 and dt = h), sweeps above.  Segregation, Newton / sweeps, s, at
# OPENBLAS_NUM_THREADS=1 (load ~2): 1D 96 cells 2.3 / 0.9, 128 cells 4.6 / 1.7; 2D (cross aversion 1.5) 12²
# 4.0 / 1.9, 14² 10.3 / 2.7, 16² (sweeps) 4.1, 20² 337 s (Newton, results/populations).  The same solutions
# within 3e-11 (rel L2); Newton stays where it is cheap (and the path the earlier results were computed on).
_NEWTON_MAX_BYTES = 2**28


class _Anderson:
    """Anderson mixing of a fixed point x = G(x) (here: the densities one Gauss-Seidel sweep returns).
    ``step(x, G(x))`` returns x + β f - (ΔX + β ΔF) γ, f = G(x) - x, ΔX and ΔF the differences of the
    last ``depth`` + 1 iterates and their f, γ the least-squares fit of f by ΔF (depth 0: plain
    damping x + β f).  Safeguards: the history restarts when ‖f‖₂ grew (segregation 2D, cross
    aversion 3, 16²: without it the extrapolated densities reached -2.3 and the residual wandered at
    0.3-2 for 30 sweeps, 51 sweeps in all, 27 with it), and the densities the others see are
    clipped at 0 (for a ln m coupling; the same 27 sweeps there)."""

    def __init__(self, depth: int, mixing: float) -> None:
        self.depth, self.mixing, self.restarts = depth, mixing, 0
        self.xs: list[np.ndarray] = []
        self.fs: list[np.ndarray] = []

    def step(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        flat, f = x.ravel(), (g - x).ravel()
        if self.fs and norm2(f) > _ANDERSON_RESTART * norm2(self.fs[-1]):
            self.xs, self.fs = [], []
            self.restarts += 1
        self.xs.append(flat.copy())
        self.fs.append(f)
        del self.xs[:-self.depth - 1], self.fs[:-self.depth - 1]
        new = flat + self.mixing * f
        if len(self.xs) > 1:
            dX = np.diff(np.stack(self.xs, 1), axis=1)
            dF = np.diff(np.stack(self.fs, 1), axis=1)
            gamma = np.linalg.lstsq(dF, f, rcond=None)[0]
            new = new - (dX + self.mixing * dF) @ gamma
        return np.maximum(new, 0.0).reshape(x.shape)


def _frozen_population(problem: MultiPopulationProblem, k: int, densities: np.ndarray, n: int):
    """Population k as an MFGProblem whose coupling sees the other populations frozen at
    ``densities`` (K, Nt + 1, n): the grid solver evaluates couplings on all nodes of the last
    L levels at once (L = Nt for F at t_1..t_Nt, L = 1 for G at T), so the frozen values are
    the last L levels in the same node order."""

    def density_of(j: int, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        levels = x.shape[0] // n
        return torch.from_numpy(np.ascontiguousarray(densities[j, -levels:].reshape(-1)))

    return problem.coupled_problem(k, density_of)


def _starting_densities(problem: MultiPopulationProblem, grid: Grid, disc: _Populations, initial) -> np.ndarray:
    """The iterate (K, Nt + 1, n) the coupled solves start from: m0_k at every level, or the densities of
    ``initial`` on the nodes (cut at 0, each level rescaled to mass 1, level 0 = m0_k)."""
    nt = grid.time_steps
    if initial is None:
        return np.stack([np.tile(m0, (nt + 1, 1)) for m0 in disc.m0])
    nodes = grid.nodes.to(torch.float64)
    densities = np.empty((problem.size, nt + 1, grid.n))
    for k, source in enumerate(initial):
        with torch.no_grad():
            levels = np.stack([np.asarray(torch.as_tensor(source.density(float(t), nodes), dtype=torch.float64)
                                          ).reshape(grid.n) for t in grid.times])
        levels = np.where(np.isfinite(levels), np.maximum(levels, 0.0), 0.0)
        mass = grid.mass(levels)
        if np.any(mass <= 0):
            raise ProblemError(f"initial density of population {k + 1} has no mass on the grid at some time level")
        densities[k] = levels / mass[:, None]
        densities[k, 0] = disc.m0[k]
    return densities


def _block_gauss_seidel(problem: MultiPopulationProblem, grid: Grid, config: GridSolverConfig, disc: _Populations,
                        initial=None):
    """Newton's starting point: a few damped sweeps in which each population solves its own MFG
    (the single-population grid solver, robust from any start) with the others frozen."""
    from mfgnet.grid.solver import solve_on_grid

    K, nt, n = problem.size, grid.time_steps, grid.n
    densities = _starting_densities(problem, grid, disc, initial)
    values = np.zeros((K, nt + 1, n))
    inner = config.replace(progress=False, tol=max(config.tol, 1e-8))
    scale = float(max(np.max(m0) for m0 in disc.m0))  # "relative to max m0", whatever the start
    for sweep in range(_SWEEPS):
        change = 0.0
        for k in range(K):
            solution = solve_on_grid(_frozen_population(problem, k, densities, n), grid, inner)
            m_new = solution.m.reshape(nt + 1, n)
            change = max(change, float(np.max(np.abs(m_new - densities[k]))))
            densities[k] = (1 - _SWEEP_DAMPING) * densities[k] + _SWEEP_DAMPING * m_new
            values[k] = solution.u.reshape(nt + 1, n)
        logger.debug("grid populations: Gauss-Seidel sweep %d, max density change %.2e", sweep + 1, change)
        if change < _SWEEP_TOL * scale:
            break
    return values[:, :-1], densities[:, 1:]


def _unknowns(problem: MultiPopulationProblem, grid: Grid) -> int:
    return 2 * problem.size * grid.n * (1 if grid.times is None else grid.time_steps)


def _check_memory(problem: MultiPopulationProblem, grid: Grid) -> None:
    unknowns = _unknowns(problem, grid)
    check_memory(unknowns * _BYTES_PER_UNKNOWN[grid.dim], f"a grid solve of {problem.size} populations "
                 f"({unknowns} unknowns)", "solver.cells (or solver.time_steps)")


def _use_sweeps(problem: MultiPopulationProblem, grid: Grid, config: GridSolverConfig) -> bool:
    """``config.populations_solve``: "sweeps", "newton", or "auto" (sweeps for a time-dependent
    system whose Newton estimate exceeds _NEWTON_MAX_BYTES or the available memory)."""
    mode = config.populations_solve
    if mode == "sweeps" and problem.is_ergodic:
        raise ProblemError("solver.populations_solve=sweeps is for time-dependent problems: an ergodic "
                           "K-population system (2K unknowns per node) is solved by Newton")
    if mode != "auto" or problem.is_ergodic:
        return mode == "sweeps"
    estimate = _unknowns(problem, grid) * _BYTES_PER_UNKNOWN[grid.dim]
    available = available_memory()
    return estimate > _NEWTON_MAX_BYTES or (available is not None and estimate > available)


def _sweeps_solve(problem: MultiPopulationProblem, grid: Grid, config: GridSolverConfig, disc: _Populations,
                  system: TimeDependentPopulationsSystem, report, initial=None):
    """Block Gauss-Seidel to convergence: each sweep solves population k = 1..K with the others
    frozen (the single-population grid solver, tolerance ``config.tol``, warm-started from its own
    previous solution; population k sees the new densities of j < k); the densities the next sweep
    freezes are the Anderson mixture (`_Anderson`) of the sweep's input and output.  After each sweep
    the coupled system's residual at x = [U, M] of the sweep's solutions (each m_k the exact
    Fokker-Planck solution of its u_k: mass 1, m_k >= 0) decides, as Newton's does: stop at
    <= max(tol, round-off floor), or after ``config.max_iterations`` sweeps.  Returns x and the
    numbers for the diagnostics."""
    from mfgnet.grid.solver import solve_on_grid

    K, nt, n = problem.size, grid.time_steps, grid.n
    densities = _starting_densities(problem, grid, disc, initial)  # the iterate: what the others see
    solutions: list[tuple[np.ndarray, np.ndarray] | None] = [None] * K
    # max_iterations caps the sweeps; each population's solve keeps at least the default 50 Newton steps
    first = config.replace(progress=False, max_iterations=max(config.max_iterations, 50))
    warm = first.replace(picard_warmup=_WARM_PICARD)
    scale = float(max(np.max(m0) for m0 in disc.m0))  # "relative to max m0", whatever the start
    mixer = _Anderson(_ANDERSON_DEPTH, _SOLVE_MIXING)
    info = {"history": [], "changes": [], "inner_iterations": 0, "inner_not_converged": 0, "cold_restarts": 0,
            "stopped_on": ""}
    x = floor = None
    previous = residual_norm(system.evaluate(np.concatenate(
        [np.zeros(K * nt * n), densities[:, 1:].ravel()]))[0]) if _INNER_RELATIVE_TOL else 0.0
    for sweep in range(config.max_iterations):
        inner_before = info["inner_iterations"]
        seen = densities.copy()  # population k sees the new m_j of j < k (Gauss-Seidel)
        tol = max(config.tol, min(_INNER_RELATIVE_TOL * previous, _INNER_TOL_CAP))
        for k in range(K):
            frozen = _frozen_population(problem, k, seen, n)
            solution = solve_on_grid(frozen, grid, (first if solutions[k] is None else warm).replace(tol=tol),
                                     quiet=True, initial=solutions[k])
            if solutions[k] is not None and not solution.diagnostics.converged:  # Newton may stall from there
                info["cold_restarts"] += 1
                info["inner_iterations"] += solution.diagnostics.iterations
                solution = solve_on_grid(frozen, grid, first.replace(tol=tol), quiet=True)
            u, m = solution.u.reshape(nt + 1, n), solution.m.reshape(nt + 1, n)
            solutions[k] = (u, m)
            info["inner_iterations"] += solution.diagnostics.iterations
            info["inner_not_converged"] += int(not solution.diagnostics.converged)
            seen[k] = m
        change = float(np.max(np.abs(seen - densities))) / scale
        x = np.concatenate([*(s[0][:-1].ravel() for s in solutions), *(s[1][1:].ravel() for s in solutions)])
        residual = residual_norm(system.evaluate(x)[0])
        floor = system.residual_floor(x)
        info["history"].append(residual)
        info["changes"].append(change)
        previous = residual
        logger.log(logging.INFO if config.verbose else logging.DEBUG,
                   "grid populations: sweep %d, max density change %.2e (relative to max m0), residual %.2e, "
                   "%d inner iterations", sweep + 1, change, residual, info["inner_iterations"] - inner_before)
        report(sweep + 1, residual, change)
        if residual <= max(config.tol, floor):
            info["stopped_on"] = "tol" if residual <= config.tol else "residual_floor"
            break
        if not np.isfinite(residual):
            info["stopped_on"] = "non_finite"
            break
        densities = mixer.step(densities, seen)
    else:
        info["stopped_on"] = "max_iterations"
    info["anderson_restarts"] = mixer.restarts
    info["sweeps"], info["residual_floor"] = len(info["history"]), float(floor)
    info["converged"] = bool(info["history"][-1] <= max(config.tol, floor))
    return x, info


def solve_grid_populations(problem: MultiPopulationProblem, config: GridSolverConfig, *,
                           initial=None) -> MultiPopulationSolution:
    """Newton on the coupled 2K equations, from u_k = 0 and m_k = m0_k (time-dependent) or
    uniform (ergodic), or, as ``config.populations_solve`` says, block Gauss-Seidel sweeps to
    convergence (time-dependent; `_sweeps_solve`); ``converged`` as for one population (the coupled
    residual <= max(tol, round-off floor)).  ``config.method`` must be "newton" and ``config.order`` 1.

    ``initial`` (time-dependent only): K objects with a ``density(t, x)`` method (e.g. another
    solver's ``MultiPopulationSolution.populations``) whose densities, on this grid's nodes and
    levels (negative values cut, each level rescaled to mass 1; level 0 stays m0_k), replace m0_k
    held constant as the iterate the sweeps (or Newton's Gauss-Seidel start) begin from.  Why: a
    coupling in which the populations repel each other more than themselves is not monotone and can
    have several equilibria (segregation 2D at 16²: one symmetric in x₁ ↔ x₂ from the usual start,
    an asymmetric one from an asymmetric start, both to residual 1e-11), so comparing another solver's
    answer with the grid's needs the grid equilibrium nearest to that answer."""
    if problem.dim >= 3:
        raise ProblemError(f"problem.dim = {problem.dim}: the grid solver is for 1D and 2D problems")
    if config.method != "newton" or config.order != 1:
        raise ProblemError("solver.method must be newton and solver.order 1 for a MultiPopulationProblem "
                           f"(got method={config.method!r}, order={config.order})")
    start = time.perf_counter()
    grid = make_grid(problem.population_problem(0), config.cells, config.time_steps)
    if initial is not None and problem.is_ergodic:
        raise ProblemError("initial densities are for time-dependent problems (the sweeps' starting iterate)")
    if initial is not None and len(initial) != problem.size:
        raise ProblemError(f"initial: {len(initial)} densities given for {problem.size} populations")
    if _use_sweeps(problem, grid, config):
        check_grid_memory(problem.population_problem(0), config)  # one population's solve at a time
        return _solve_by_sweeps(problem, grid, config, start, initial)
    _check_memory(problem, grid)
    disc = _Populations(problem, grid)
    K, n = problem.size, grid.n
    if problem.is_ergodic:
        system = ErgodicPopulationsSystem(disc)
        x0 = np.concatenate([np.zeros(K * n), np.full(K * n, 1.0 / (n * grid.cell_volume)), np.zeros(2 * K)])
    else:
        system = TimeDependentPopulationsSystem(disc)
        U0, M0 = _block_gauss_seidel(problem, grid, config, disc, initial)
        x0 = np.concatenate([U0.ravel(), M0.ravel()])
    bar = progress_bar(None, f"grid {K} populations {'x'.join(map(str, grid.cells))}", enabled=config.progress)

    def report(label: str, iteration: int, residual: float) -> None:
        bar.update(1)
        bar.set_postfix_str(f"newton {iteration}: residual {residual:.2e}", refresh=False)

    with bar:
        result = newton(system, x0, config.tol, config.max_iterations, verbose=config.verbose,
                        label=f"grid {K} populations", report=report)
    if problem.is_ergodic:
        U, M, lam, _ = system.split(result.x)
        us, ms, lams = U, M, list(lam)
    else:
        us, ms = _levels(system, disc, result.x)
        lams = [None] * K
    extra = {"method": "newton", "populations_solve": "newton", "populations": K,
             "newton_iterations": result.iterations, "nodes": n, "time_steps": grid.time_steps,
             "residual_floor": result.residual_floor, "stopped_on": result.stopped_on}
    diagnostics = Diagnostics(converged=result.converged, iterations=result.iterations, residual=result.residual,
                              residual_history=result.history, wall_time_s=time.perf_counter() - start, extra=extra)
    if not result.converged:
        # Measured: segregation 2D (cross aversion 3 > self aversion 0.5) stalls at 16 cells, converges at
        # cross aversion 1.5; such couplings are not monotone, so equilibria need not be unique.
        extra["diagnosis"] = (
            f"Newton stopped ({result.stopped_on}) at residual {result.residual:.2e} > tolerance {config.tol:.1e}; "
            "a coupling in which the populations repel each other more than themselves is not monotone (several "
            "or no equilibria near the start): try solver.populations_solve=sweeps (time-dependent problems; "
            "segregation 2D at 16² converged so where Newton stalled), a weaker cross coupling, another "
            "solver.cells, or more solver.max_iterations")
        logger.warning("grid solver on %r (%d populations): %s", problem.name, K, extra["diagnosis"])
    return _solution(problem, grid, us, ms, lams, diagnostics)


def _levels(system: TimeDependentPopulationsSystem, disc: _Populations, x: np.ndarray):
    """u_k and m_k on all Nt + 1 levels from x = [U, M] (u_k(T) = G_k, m_k(0) = m0_k)."""
    U, M = system.split(x)
    G = system.terminal_values(M)
    return ([np.vstack([U[k], G[k]]) for k in range(system.K)],
            [np.vstack([disc.m0[k][None], M[k]]) for k in range(system.K)])


def _solution(problem: MultiPopulationProblem, grid: Grid, us, ms, lams, diagnostics: Diagnostics
              ) -> MultiPopulationSolution:
    """The K GridSolutions; each reports the coupled solve, with its own mass error."""
    n = grid.n
    shape = grid.cells if problem.is_ergodic else (grid.time_steps + 1, *grid.cells)
    errors = [float(np.max(np.abs(grid.mass(np.reshape(m, (-1, n))) - 1.0))) for m in ms]
    diagnostics.extra.update(mass_error=max(errors), min_density=float(min(np.min(m) for m in ms)))
    solutions = [GridSolution(problem.population_problem(k), grid, np.reshape(us[k], shape), np.reshape(ms[k], shape),
                              lams[k], dataclasses.replace(diagnostics, extra={**diagnostics.extra,
                                                                               "mass_error": errors[k]}))
                 for k in range(problem.size)]
    return MultiPopulationSolution(problem, solutions, diagnostics)


def _solve_by_sweeps(problem: MultiPopulationProblem, grid: Grid, config: GridSolverConfig, start: float,
                     initial=None) -> MultiPopulationSolution:
    """``populations_solve`` "sweeps" (or "auto" on a large time-dependent system): `_sweeps_solve`."""
    disc = _Populations(problem, grid)
    system = TimeDependentPopulationsSystem(disc)
    K = problem.size
    bar = progress_bar(config.max_iterations, f"grid {K} populations {'x'.join(map(str, grid.cells))} (sweeps)",
                       enabled=config.progress, unit="sweep")

    def report(sweep: int, residual: float, change: float) -> None:
        bar.update(1)
        bar.set_postfix_str(f"residual {residual:.2e}, density change {change:.1e}", refresh=False)

    with bar:
        x, info = _sweeps_solve(problem, grid, config, disc, system, report, initial)
    us, ms = _levels(system, disc, x)
    residual = info["history"][-1]
    # density_change: max |m_k out - m_k in| of the last sweep relative to max m0; inner_iterations: the
    # Picard + Newton steps of all single-population solves (cold_restarts: warm starts that failed and
    # were redone from u = 0, m = m0)
    extra = {"method": "newton", "populations_solve": "sweeps", "populations": K, "sweeps": info["sweeps"],
             "density_change": info["changes"][-1], "density_changes": info["changes"],
             "anderson_depth": _ANDERSON_DEPTH, "anderson_restarts": info["anderson_restarts"],
             "inner_iterations": info["inner_iterations"], "inner_not_converged": info["inner_not_converged"],
             "cold_restarts": info["cold_restarts"], "newton_iterations": 0, "nodes": grid.n,
             "time_steps": grid.time_steps, "residual_floor": info["residual_floor"],
             "stopped_on": info["stopped_on"]}
    diagnostics = Diagnostics(converged=bool(info["converged"]), iterations=info["sweeps"], residual=residual,
                              residual_history=info["history"], wall_time_s=time.perf_counter() - start,
                              extra=extra)
    if not diagnostics.converged:
        extra["diagnosis"] = (
            f"block Gauss-Seidel stopped ({info['stopped_on']}) after {info['sweeps']} sweeps at coupled residual "
            f"{residual:.2e} > tolerance {max(config.tol, info['residual_floor']):.1e} (last density change "
            f"{info['changes'][-1]:.1e} of max m0): " + (
                "more solver.max_iterations (the sweeps were still converging)"
                if _still_converging(info["history"]) else
                "the sweeps stagnate or oscillate; a coupling in which the populations repel each other more than "
                "themselves is not monotone (several or no equilibria): try a weaker cross coupling, or "
                "solver.populations_solve=newton on a grid small enough for it")
            + (f"; {info['inner_not_converged']} single-population solves did not converge"
               if info["inner_not_converged"] else ""))
        logger.warning("grid solver on %r (%d populations): %s", problem.name, K, extra["diagnosis"])
    return _solution(problem, grid, us, ms, [None] * K, diagnostics)


def _still_converging(history: list[float]) -> bool:
    """The residual fell by at least a third over the last three sweeps."""
    return len(history) < 4 or history[-1] < history[-4] * (2 / 3)
