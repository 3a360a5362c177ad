"""The grid solver for K populations: Newton on the coupled system of 2K equations.

Each population is discretised exactly as a single one (:mod:`mfgnet.grid.system`: the monotone
upwind Hamiltonian, its adjoint Fokker-Planck operator, so each m_k keeps mass 1 to round-off
and m_k >= 0); the populations meet only through the couplings F_k(t, x, m_1, …, m_K), whose
derivatives ∂F_k/∂m_j (autograd) fill the off-diagonal blocks of the Jacobian.  The whole
Jacobian is assembled as one sparse matrix and factored by SuperLU: ergodic problems in 1D and
2D, time-dependent ones of a few 10^5 unknowns (2K · levels · nodes; the memory check refuses
larger ones naming ``solver.cells``).

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
from mfgnet.grid.linalg import DirectSolve
from mfgnet.grid.mesh import Grid, make_grid
from mfgnet.grid.newton import newton
from mfgnet.grid.solution import GridSolution
from mfgnet.grid.system import initial_density_on, residual_floor
from mfgnet.problems import ProblemError
from mfgnet.problems.populations import MultiPopulationProblem
from mfgnet.progress import progress_bar
from mfgnet.resources import check_memory
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


def _frozen_population(problem: MultiPopulationProblem, k: int, densities: np.ndarray, n: int):
    """Population k as an MFGProblem whose coupling sees the other populations frozen at
    ``densities`` (K, Nt + 1, n): the grid solver evaluates couplings on all nodes of the last
    L levels at once (L = Nt for F at t_1..t_Nt, L = 1 for G at T), so the frozen values are
    the last L levels in the same node order."""

    def density_of(j: int, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        levels = x.shape[0] // n
        return torch.from_numpy(np.ascontiguousarray(densities[j, -levels:].reshape(-1)))

    return problem.coupled_problem(k, density_of)


def _block_gauss_seidel(problem: MultiPopulationProblem, grid: Grid, config: GridSolverConfig, disc: _Populations):
    """Newton's starting point: a few damped sweeps in which each population solves its own MFG
    (the single-population grid solver, robust from any start) with the others frozen."""
    from mfgnet.grid.solver import solve_on_grid

    K, nt, n = problem.size, grid.time_steps, grid.n
    densities = np.stack([np.tile(m0, (nt + 1, 1)) for m0 in disc.m0])
    values = np.zeros((K, nt + 1, n))
    inner = config.replace(progress=False, tol=max(config.tol, 1e-8))
    scale = float(np.max(densities))
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


def _check_memory(problem: MultiPopulationProblem, grid: Grid) -> None:
    unknowns = 2 * problem.size * grid.n * (1 if grid.times is None else grid.time_steps)
    check_memory(unknowns * _BYTES_PER_UNKNOWN[grid.dim], f"a grid solve of {problem.size} populations "
                 f"({unknowns} unknowns)", "solver.cells (or solver.time_steps)")


def solve_grid_populations(problem: MultiPopulationProblem, config: GridSolverConfig) -> MultiPopulationSolution:
    """Newton on the coupled 2K equations, from u_k = 0 and m_k = m0_k (time-dependent) or
    uniform (ergodic); ``converged`` as for one population (residual <= max(tol, round-off
    floor)).  ``config.method`` must be "newton" and ``config.order`` 1."""
    if problem.dim >= 3:
        raise ProblemError(f"problem.dim = {problem.dim}: the grid solver is for 1D and 2D problems")
    if config.method != "newton" or config.order != 1:
        raise ProblemError("solver.method must be newton and solver.order 1 for a MultiPopulationProblem "
                           f"(got method={config.method!r}, order={config.order})")
    start = time.perf_counter()
    grid = make_grid(problem.population_problem(0), config.cells, config.time_steps)
    _check_memory(problem, grid)
    disc = _Populations(problem, grid)
    K, n = problem.size, grid.n
    if problem.is_ergodic:
        system = ErgodicPopulationsSystem(disc)
        x0 = np.concatenate([np.zeros(K * n), np.full(K * n, 1.0 / (n * grid.cell_volume)), np.zeros(2 * K)])
    else:
        system = TimeDependentPopulationsSystem(disc)
        U0, M0 = _block_gauss_seidel(problem, grid, config, disc)
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
        shape = grid.cells
        us, ms, lams = U, M, list(lam)
    else:
        U, M = system.split(result.x)
        G = system.terminal_values(M)
        us = [np.vstack([U[k], G[k]]) for k in range(K)]
        ms = [np.vstack([disc.m0[k][None], M[k]]) for k in range(K)]
        lams = [None] * K
        shape = (grid.time_steps + 1, *grid.cells)
    mass_error = float(max(np.max(np.abs(grid.mass(np.reshape(m, (-1, n))) - 1.0)) for m in ms))
    extra = {"method": "newton", "populations": K, "newton_iterations": result.iterations, "nodes": n,
             "time_steps": grid.time_steps, "mass_error": mass_error,
             "min_density": float(min(np.min(m) for m in ms)), "residual_floor": result.residual_floor,
             "stopped_on": result.stopped_on}
    diagnostics = Diagnostics(converged=result.converged, iterations=result.iterations, residual=result.residual,
                              residual_history=result.history, wall_time_s=time.perf_counter() - start, extra=extra)
    if not result.converged:
        # Measured: segregation 2D (cross aversion 3 > self aversion 0.5) stalls at 16 cells, converges at
        # cross aversion 1.5; such couplings are not monotone, so equilibria need not be unique.
        extra["diagnosis"] = (
            f"Newton stopped ({result.stopped_on}) at residual {result.residual:.2e} > tolerance {config.tol:.1e}; "
            "a coupling in which the populations repel each other more than themselves is not monotone (several "
            "or no equilibria near the start): try a weaker cross coupling, another "
            "solver.cells, or more solver.max_iterations")
        logger.warning("grid solver on %r (%d populations): %s", problem.name, K, extra["diagnosis"])
    # Each population's solution reports the coupled solve, with its own mass error.
    solutions = [GridSolution(problem.population_problem(k), grid, np.reshape(us[k], shape), np.reshape(ms[k], shape),
                              lams[k], dataclasses.replace(diagnostics, extra={
                                  **extra, "mass_error": float(np.max(np.abs(grid.mass(np.reshape(ms[k], (-1, n)))
                                                                             - 1.0)))}))
                 for k in range(K)]
    return MultiPopulationSolution(problem, solutions, diagnostics)
