"""``solve_grid``: the coupled solve (Newton with a Picard warm start, Picard, fictitious play).

Nonlocal couplings are handled exactly inside Newton through the kernel operators of
:mod:`mfgnet.grid.coupling` (low-rank auxiliary unknowns in the ergodic system), so every
method works for them (B2 included).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mfgnet.grid.config import GridSolverConfig
from mfgnet.grid.controls import solve_grid_mean_control
from mfgnet.grid.fp import fp_ergodic, fp_time_dependent
from mfgnet.grid.hjb import hjb_ergodic, hjb_time_dependent
from mfgnet.grid.linalg import FactorReuse
from mfgnet.grid.mesh import Grid, make_grid
from mfgnet.grid.newton import newton, residual_norm
from mfgnet.grid.populations import solve_grid_populations
from mfgnet.grid.solution import GridSolution
from mfgnet.grid.system import Discretisation, ErgodicSystem, TimeDependentSystem, ergodic_hjb_solver
from mfgnet.problems import Euclidean, MFGProblem, ProblemError
from mfgnet.problems.populations import MultiPopulationProblem
from mfgnet.progress import progress_bar
from mfgnet.resources import check_grid_memory
from mfgnet.solution import Diagnostics

logger = logging.getLogger(__name__)

_INNER_MAX_ITERATIONS = 30
EDGE_BAND = 0.05  # the outer 5 % of the truncation box of R^d, per face
EDGE_MASS_WARNING = 1e-4  # warn above this mass in that band
_WARMUP_INNER_ITERATIONS = 3
# time_lu="reuse" only up to this many unknowns (u and m at every level and node): the factors of the whole
# Newton matrix grow faster than it (crowd aversion ν = 1e-3: 65536 unknowns (128 cells, T = 2) 12 M nonzeros,
# 0.5 s; 131072 (256 cells, T = 1) 29 M, 1.4 s; ~0.35 GB), so 1024 cells would need tens of GB.
TIME_LU_MAX_UNKNOWNS = 2**18


def solve_grid(problem: MFGProblem, config: GridSolverConfig | None = None, *,
               callback: Callable[[int, dict], None] | None = None, workdir: str | Path | None = None,
               **overrides) -> GridSolution:
    """Solve ``problem`` with the finite-difference scheme.

    Parameters
    ----------
    problem : MFGProblem
        Any MFGProblem whose Hamiltonian is a RadialHamiltonian (1D or 2D is the
        intended use); R^d problems are solved on ``problem.bounding_box()`` with no-flux faces.
    config : GridSolverConfig or None
        The settings (default settings if None).
    callback : callable or None
        ``fn(iteration, {"residual": r})`` for each outer iteration, after the solve
        (a grid solve takes seconds; the numbers are those of ``diagnostics.residual_history``).
    workdir : str or Path or None
        Unused (the grid solver keeps no files); part of the solver contract.
    **overrides
        Fields of the config to change, e.g. ``cells=256``.

    Returns
    -------
    GridSolution
        The solution on the grid of ``config.cells`` cells per axis.  With
        ``order=2`` the first-order solutions on N and 2N cells (and Nt, 2Nt steps) are
        combined by Richardson extrapolation, ``2 R(v_2N) - v_N`` with R the average over
        the 2^d fine cells of a coarse cell (mass-preserving); negative density values of
        the extrapolation are set to 0 and each level rescaled to mass 1.
    """
    config = config or GridSolverConfig()
    if overrides:
        config = config.replace(**overrides)
    threads = torch.get_num_threads()
    # Only a real change: set_num_threads(n) even to the current n made the next 1D solve ~2x slower.
    change = bool(config.cpu_threads) and config.cpu_threads != threads
    if change:
        torch.set_num_threads(config.cpu_threads)
    try:
        solution = _solve_any(problem, config)
    finally:
        if change:
            torch.set_num_threads(threads)
    if callback is not None:
        for iteration, residual in enumerate(solution.diagnostics.residual_history):
            callback(iteration, {"residual": float(residual)})
    return solution


def _solve_any(problem: MFGProblem, config: GridSolverConfig) -> GridSolution:
    start = time.perf_counter()
    if isinstance(problem, MultiPopulationProblem):  # K populations: one coupled Newton solve
        solution = solve_grid_populations(problem, config)
    elif problem.dim >= 3:
        raise ProblemError(
            f"problem.dim = {problem.dim}: the grid solver is for 1D and 2D problems (its cost grows like "
            f"cells^d); use solver=neural for dim >= 3")
    elif problem.has_mean_control:  # an MFG of controls: a fixed point on ᾱ over ordinary games
        check_grid_memory(problem, config)
        solution = solve_grid_mean_control(problem, config, lambda frozen: _solve_one(frozen, config, quiet=True))
        if isinstance(problem.domain, Euclidean):  # warned once, for the equilibrium, not per frozen game
            edge_mass_of(solution.grid, solution.m.reshape(-1, solution.grid.n))
    else:
        check_grid_memory(problem, config)
        solution = _solve_one(problem, config)
    solution.diagnostics.wall_time_s = time.perf_counter() - start
    return solution


def _solve_one(problem: MFGProblem, config: GridSolverConfig, quiet: bool = False) -> GridSolution:
    if config.order == 2:
        return _richardson(problem, config, quiet)
    return solve_on_grid(problem, make_grid(problem, config.cells, config.time_steps), config, quiet)


def solve_on_grid(problem: MFGProblem, grid: Grid, config: GridSolverConfig, quiet: bool = False,
                  initial: tuple[np.ndarray, np.ndarray] | None = None) -> GridSolution:
    """First-order solve on a given grid (``config.cells`` / ``time_steps`` are not used); ``quiet``
    skips the warning about mass at the faces of R^d's box (the caller checks once, at the end).
    ``initial``: time-dependent problems only, a starting guess ``(u, m)`` on all Nt + 1 levels
    (``GridSolution.u`` / ``.m`` of an earlier solve, any shape of Nt + 1 levels of nodes): the
    Picard steps (``config.picard_warmup`` of them) and Newton start from it instead of
    u = 0, m = m0 (the K-population sweeps warm-start each population's solve so).

    Where Newton stalls after its short Picard start (``stopped_on`` stalled, small_step or singular, or a
    continuation stage that stopped so), the solve runs again: first, where continuation in ν ran, with a gentler
    continuation (from 5 ν, halving) and without it (Newton at the problem's ν from the short Picard start; why:
    :func:`_retry_configs`), then with the longer
    damped starts of ``RETRY_STARTS`` (those longer than ``config.picard_warmup``), one after the other until one
    converges, and returns the last; ``diagnostics.extra``'s ``retry_*`` entries record the first attempt and the
    last start used."""
    if initial is not None and problem.is_ergodic:
        raise ValueError("solve_on_grid: an initial guess is for time-dependent problems only")
    solution, advice = _solve_on_grid_once(problem, grid, config, quiet, initial)
    first = solution.diagnostics
    if not first.converged and _retries_on(first.extra["stopped_on"]) and config.method == "newton":
        wall = first.wall_time_s
        for rung, retry in enumerate(_retry_configs(config, "continuation" in first.extra, problem.viscosity),
                                     start=1):
            logger.info("grid solver on '%s': Newton stopped on %s (residual %.2e); solving again with a %d-step "
                        "damped Picard start (damping %.2g), continuation %s", problem.name,
                        solution.diagnostics.extra["stopped_on"], solution.diagnostics.residual, retry.picard_warmup,
                        retry.damping, retry.continuation)
            solution, advice = _solve_on_grid_once(problem, grid, retry, quiet, initial)
            wall += solution.diagnostics.wall_time_s
            solution.diagnostics.wall_time_s = wall
            # Flat keys, so that metrics.json carries them.
            solution.diagnostics.extra.update(retry_first_residual=float(first.residual),
                                              retry_first_stopped_on=first.extra["stopped_on"],
                                              retry_picard_warmup=retry.picard_warmup, retry_damping=retry.damping,
                                              retry_continuation=retry.continuation,
                                              retry_continuation_from=retry.continuation_from, retries=rung)
            if solution.diagnostics.converged:
                break
    if advice is not None and not quiet:  # only the returned attempt's advice: the earlier ones were retried
        logger.warning("grid solver on '%s': %s", problem.name, advice)
    if "edge_mass" in solution.diagnostics.extra and not quiet:
        warn_edge_mass(grid, solution.diagnostics.extra["edge_mass"])
    return solution


def _retries_on(stopped_on: str) -> bool:
    """Whether a solve that stopped so is tried again (a continuation stage reports "continuation: <why> at ...")."""
    return stopped_on.removeprefix("continuation: ").split(" ")[0] in _RETRY_ON


def _retry_configs(config: GridSolverConfig, continued: bool, viscosity: float) -> list[GridSolverConfig]:
    """The settings of each retry, in order (see :func:`solve_on_grid`).

    Why a solve that ran continuation in ν is tried again with a gentler one (from :data:`GENTLE_CONTINUATION_FROM`
    × ν by factors of :data:`GENTLE_CONTINUATION_RATIO`), and then without it: on R^d the box is sized
    for the problem's own ν, and the first stage's ν (0.2) spreads the crowd onto the box's faces, from where the
    later stages do not recover.  The zoo's lq_sharp_pull_1d (B2, ν = 0.01, T = 2, a crowd of std 0.05 pulled from 2
    to 0.97, box [0.17, 3.82]) stalled at 200, 400 and 800 cells with 0.88-0.95 of the mass in the box's outer 5 %
    (residual 50-90; the longer Picard starts and fictitious play too) and converged without continuation in 40
    Newton steps (5.5 s at 400 cells).  At 128 cells (dt = h) that stalled too (37 Newton steps, residual 8.7), and
    the gentler continuation (0.05 → 0.025 → 0.0125 → 0.01) converged in 34 steps (0.4 s).  Since the line search
    measures the residual's root mean square (:func:`mfgnet.grid.newton.merit`) the gentler continuation converges
    in 23 steps (15 + 4 + 4) at 128 cells and 21 at 400, Newton without continuation in 50 and 43: hence the gentler
    one first (fortieth session; results/grid_small_noise_lq_pull.md)."""
    rungs = []
    if continued:
        if viscosity > 0:
            rungs.append(config.replace(continuation_from=min(config.continuation_from,
                                                              GENTLE_CONTINUATION_FROM * viscosity),
                                        continuation_ratio=GENTLE_CONTINUATION_RATIO))
        rungs.append(config.replace(continuation="off"))
    return rungs + [config.replace(picard_warmup=warmup, damping=damping) for warmup, damping in RETRY_STARTS
                    if warmup > config.picard_warmup]


# The gentler continuation of a retry (see _retry_configs): from 5 ν, halving.
GENTLE_CONTINUATION_FROM = 5.0
GENTLE_CONTINUATION_RATIO = 2.0


# The longer damped Picard starts (steps, damping) tried in turn where Newton stalls after the short default
# one.  Why: the zoo's torus_power_two_1d (H = |p|⁴/4, ν = 0.05) diverged from the default start (3 steps,
# damping 0.5) at 200, 300 and 400 cells (residual 1e8-1e11, "stalled") and converged with 20 steps at 0.3
# in 1.3 s, 3.5 s and 32 s (Richardson); at 600 cells 20 steps at 0.3 still failed (50 Newton steps, 38 s)
# and 60 at 0.15 converged in 4.9 s.  Where the default start works no retry runs, so the benchmarked speed
# is unchanged (results/neural_zoo/means.md, twenty-sixth session).
RETRY_STARTS = ((20, 0.3), (60, 0.15))
_RETRY_ON = ("stalled", "small_step", "singular")


def _solve_on_grid_once(problem: MFGProblem, grid: Grid, config: GridSolverConfig, quiet: bool,
                        initial: tuple[np.ndarray, np.ndarray] | None) -> tuple[GridSolution, str | None]:
    """One first-order solve (see :func:`solve_on_grid`) and, where it did not converge, the advice
    (:func:`not_converged_advice`) that :func:`solve_on_grid` logs if it returns this attempt."""
    start = time.perf_counter()
    disc = Discretisation(problem, grid)
    # Outer iterations have no known count (Newton stops at its tolerance): a bar without ETA,
    # shown only if the solve takes more than a few seconds.
    bar = progress_bar(None, f"grid {'x'.join(map(str, grid.cells))}", enabled=config.progress)

    def report(phase: str, iteration: int, residual: float) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{phase} {iteration}: residual {residual:.2e}", refresh=False)

    with bar:
        if problem.is_ergodic:
            u, m, lam, info = _solve_ergodic(disc, config, report)
        else:
            u, m, lam, info = _solve_time_dependent(disc, config, report, initial)
    extra = {
        "method": config.method,
        "newton_iterations": info["newton"],
        "picard_iterations": info["picard"],
        "mass_error": float(np.max(np.abs(grid.mass(m.reshape(-1, grid.n)) - 1.0))),
        "min_density": float(m.min()),
        "clipped_negative_density": info["clipped"],
        "gmres_iterations": info.get("gmres"),
        "gmres_capped": info.get("gmres_capped", 0),
        "nodes": grid.n,
        "time_steps": grid.time_steps,
        "residual_floor": info["residual_floor"],
        "stopped_on": info["stopped_on"],
    }
    if "factorisations" in info:
        extra["factorisations"] = info["factorisations"]
    if "continuation" in info:
        extra["continuation"] = info["continuation"]
    if isinstance(problem.domain, Euclidean):
        # Warned by solve_on_grid for the attempt it returns: a stalled attempt that a retry replaces (the sharp
        # pull's first continuation spread 0.8 of the mass onto a face) would otherwise warn about a crowd the user
        # never gets.
        extra["edge_mass"] = edge_mass_of(grid, m.reshape(-1, grid.n), warn=False)
    advice = None if info["converged"] else not_converged_advice(info, extra, config)
    diagnostics = Diagnostics(converged=info["converged"], iterations=info["newton"] + info["picard"],
                              residual=info["history"][-1], residual_history=info["history"],
                              wall_time_s=time.perf_counter() - start, extra=extra)
    shape = grid.cells if problem.is_ergodic else (grid.time_steps + 1, *grid.cells)
    return GridSolution(problem, grid, u.reshape(shape), m.reshape(shape), lam, diagnostics), advice


def not_converged_advice(info: dict, extra: dict, config: GridSolverConfig) -> str:
    """One paragraph for a solve that did not converge: where it stopped, and what to try."""
    final = info["history"][-1]
    text = (f"not converged: residual {final:.2e} > tolerance {max(config.tol, info['residual_floor']):.1e}, "
            f"stopped on {info['stopped_on']} after {info['newton']} Newton and {info['picard']} Picard steps")
    tips = []
    if extra.get("gmres_capped"):
        tips.append(f"{extra['gmres_capped']} of the Newton directions were inexact (GMRES stopped at its cap of "
                    f"{config.gmres_max_iterations}): raise solver.gmres_max_iterations (e.g. 600: slower Newton "
                    "steps, exact directions); the coupled system is stiff here (strong coupling, small ν)")
    if "continuation" in info:  # stages ran (a failed one among them, or the last)
        tips.append("smaller continuation steps (solver.continuation_ratio=4)")
    elif config.method == "newton" and config.continuation == "off":
        tips.append("continuation in ν (solver.continuation=auto)")
    if "max_iterations" in str(info["stopped_on"]):
        tips.append("more solver.max_iterations")
    if any(word in str(info["stopped_on"]) for word in ("stalled", "small_step", "singular", "inexact")):
        if config.picard_warmup < RETRY_STARTS[0][0]:
            tips.append(f"a longer damped Picard start (solver.picard_warmup={RETRY_STARTS[0][0]} "
                        f"solver.damping={RETRY_STARTS[0][1]})")
        else:  # the solver's own retries (or the user) already used that one
            tips.append(f"a still longer damped Picard start (solver.picard_warmup={3 * config.picard_warmup} "
                        f"solver.damping={config.damping / 2:.2g})")
    if config.method != "fictitious_play":
        tips.append("solver.method=fictitious_play (slow, but convergent for monotone couplings)")
    return text + "; try: " + "; ".join(tips)


def edge_mass_of(grid: Grid, m: np.ndarray, warn: bool = True) -> float:
    """The largest mass, over time levels, in the outer band of R^d's truncation box; warns when it
    is not negligible (the no-flux faces then reflect mass that should have left: a wrong answer)."""
    value = grid.edge_mass(m)
    if warn:
        warn_edge_mass(grid, value)
    return value


def warn_edge_mass(grid: Grid, value: float) -> None:
    """The warning of :func:`edge_mass_of` for an edge mass ``value`` above ``EDGE_MASS_WARNING``."""
    if value > EDGE_MASS_WARNING:
        logger.warning(
            "grid solver: %.2g of the mass lies in the outer %d%% of the truncation box of R^%d "
            "(box [%s] to [%s]); the box is too small for this problem (its faces reflect mass) and "
            "the solution is wrong near the faces. Pass a larger box: Euclidean(dim, box=Box(...)).",
            value, round(100 * EDGE_BAND), grid.dim, ", ".join(f"{v:.3g}" for v in grid.lower),
            ", ".join(f"{v:.3g}" for v in grid.upper))


def _report(config: GridSolverConfig, label: str, iteration: int, norm: float, start: float, report) -> None:
    logger.log(logging.INFO if config.verbose else logging.DEBUG, "[grid %s] iteration %d: residual %.3e, %.2f s",
            label, iteration, norm, time.perf_counter() - start)
    report(label, iteration, norm)


def _weight(config: GridSolverConfig, k: int) -> float:
    return 1.0 / (k + 1) if config.method == "fictitious_play" else config.damping


def _picard_steps(config: GridSolverConfig) -> int:
    return config.picard_warmup if config.method == "newton" else config.max_iterations


def _inner_tol(config: GridSolverConfig) -> float:
    """HJB accuracy inside Picard; a Newton warm start needs much less than the final tol."""
    if config.method == "newton":
        return max(config.tol, 1e-5)
    return max(0.1 * config.tol, 1e-13)


def _inner_iterations(config: GridSolverConfig) -> int:
    """Policy iterations per best response: a Newton warm start needs only a rough one."""
    return _WARMUP_INNER_ITERATIONS if config.method == "newton" else _INNER_MAX_ITERATIONS


def _judge(info: dict, config: GridSolverConfig, floor: float) -> None:
    """``converged`` from the reported (final) residual: <= max(tol, round-off floor); and why it stopped."""
    final = info["history"][-1]
    info["residual_floor"] = float(floor)
    info["converged"] = bool(final <= max(config.tol, floor))
    if "stopped_on" not in info:  # Picard / fictitious play
        info["stopped_on"] = "tol" if info["picard_converged"] else "max_iterations"
    if info["converged"]:
        info["stopped_on"] = "tol" if final <= config.tol else "residual_floor"
    elif info["stopped_on"] in ("tol", "residual_floor"):
        info["stopped_on"] = "final_residual"  # the closing exact FP step moved the residual above tol


def viscosity_stages(viscosity: float, config: GridSolverConfig) -> list[float]:
    """The ν of each continuation stage, ending at ``viscosity`` (just [viscosity] when off).

    Geometric from ``continuation_from`` by ``continuation_ratio``; the last intermediate stage
    is above ``ratio × viscosity`` (so no stage is a smaller step than one ratio) and above
    ``continuation_from / 1000`` (ν = 0 follows from there).
    """
    start, ratio = config.continuation_from, config.continuation_ratio
    if config.continuation == "off" or config.method != "newton" or not viscosity < start:
        return [viscosity]
    stages, nu = [], start
    while nu > max(ratio * viscosity, start * 1e-3) * (1 + 1e-12):
        stages.append(nu)
        nu /= ratio
    return stages + [viscosity]


def _solve_time_dependent(disc: Discretisation, config: GridSolverConfig, report,
                          initial: tuple[np.ndarray, np.ndarray] | None = None):
    stages = viscosity_stages(disc.nu, config)
    target = disc
    disc = target.with_viscosity(stages[0])
    reuse = None
    if config.time_lu == "reuse" and disc.grid.dim == 1 and 2 * disc.levels * disc.grid.n <= TIME_LU_MAX_UNKNOWNS:
        # one LU of the whole Newton matrix, shared by all stages
        reuse = FactorReuse(disc.grid, config.lu_reuse_iterations, config.gmres_max_iterations)

    def system_at(disc: Discretisation) -> TimeDependentSystem:
        return TimeDependentSystem(disc, config.gmres_max_iterations, reuse, config.time_lu_switch)

    system = system_at(disc)
    start = time.perf_counter()
    if initial is None:
        M = np.tile(disc.m0, (disc.levels, 1))
        U = None
    else:  # levels 0..Nt-1 of u and 1..Nt of m are the unknowns
        shape = (disc.levels + 1, disc.grid.n)
        U = np.array(np.reshape(initial[0], shape)[:-1], dtype=np.float64)
        M = np.array(np.reshape(initial[1], shape)[1:], dtype=np.float64)
    history: list[float] = []
    info = {"newton": 0, "picard": 0, "converged": False, "picard_converged": False}
    for k in range(_picard_steps(config)):
        U, _ = hjb_time_dependent(disc, M, U, _inner_tol(config), _inner_iterations(config))
        norm = residual_norm(system.evaluate(np.concatenate([U.ravel(), M.ravel()]))[0])
        history.append(norm)
        info["picard"] += 1
        _report(config, "picard", k + 1, norm, start, report)
        if norm <= config.tol and len(stages) == 1:
            info["converged"] = info["picard_converged"] = True
            break
        theta = _weight(config, k)
        M = (1 - theta) * M + theta * fp_time_dependent(disc, U)
    if config.method == "newton" and not info["converged"]:
        x = np.concatenate([np.zeros(M.size) if U is None else U.ravel(), M.ravel()])
        info["gmres"], info["gmres_capped"], stage_log = 0, 0, []
        for i, nu in enumerate(stages):
            if i:
                disc = target.with_viscosity(nu)
                system = system_at(disc)
            label = "newton" if len(stages) == 1 else f"newton ν={nu:.3g}"
            res = newton(system, x, config.tol, config.max_iterations, config.verbose, label=label, report=report)
            x = res.x
            history.extend(res.history[1:] if history else res.history)
            info["newton"] += res.iterations
            info["gmres"] += system.linear_iterations[0]
            info["gmres_capped"] += system.linear_iterations[1]
            info["converged"], info["stopped_on"] = res.converged, res.stopped_on
            stage_log.append({"viscosity": nu, "newton_iterations": res.iterations,
                              "gmres_iterations": system.linear_iterations[0], "stopped_on": res.stopped_on,
                              "residual": res.residual})
            if not res.converged:
                if i < len(stages) - 1:  # reported with the advice of solve_on_grid
                    info["stopped_on"] = (f"continuation: {res.stopped_on} at ν={nu:.3g} "
                                          f"(stage {i + 1} of {len(stages)})")
                break
        U, M = system.split(x)
        if len(stages) > 1:
            info["continuation"] = stage_log
        if reuse is not None:
            info["factorisations"] = reuse.factorisations
    if disc is not target:  # a stage before the last failed, or Picard only: judge at the problem's ν
        disc, system = target, TimeDependentSystem(target, config.gmres_max_iterations)
    # The exact discrete FP step for the final u: mass to round-off and m >= 0 by the M-matrix.
    M = fp_time_dependent(disc, U)
    info["clipped"] = float(min(M.min(), 0.0))
    M = np.maximum(M, 0.0)
    x = np.concatenate([U.ravel(), M.ravel()])
    history.append(residual_norm(system.evaluate(x)[0]))
    info["history"] = history
    _judge(info, config, system.residual_floor(x))
    u = np.vstack([U, system.terminal_value(M[-1])])
    m = np.vstack([disc.m0[None], M])
    return u, m, None, info


def _solve_ergodic(disc: Discretisation, config: GridSolverConfig, report):
    grid, system = disc.grid, ErgodicSystem(disc)
    if config.ergodic_lu == "reuse" and grid.dim >= 2:
        disc.factor_reuse = FactorReuse(grid, config.lu_reuse_iterations, config.gmres_max_iterations)
    start = time.perf_counter()
    m = np.full(grid.n, 1.0 / float(np.prod(grid.upper - grid.lower)))
    u, lam = None, 0.0
    history: list[float] = []
    info = {"newton": 0, "picard": 0, "converged": False, "picard_converged": False}
    for k in range(_picard_steps(config)):
        u, lam, _ = hjb_ergodic(disc, m, u, lam, _inner_tol(config), _inner_iterations(config))
        norm = residual_norm(system.evaluate(np.concatenate([u, m, [lam, 0.0]]))[0])
        history.append(norm)
        info["picard"] += 1
        _report(config, "picard", k + 1, norm, start, report)
        if norm <= config.tol:
            info["converged"] = info["picard_converged"] = True
            break
        theta = _weight(config, k)
        m = (1 - theta) * m + theta * _fp_ergodic(disc, u)
    if config.method == "newton" and not info["converged"]:
        x0 = np.concatenate([np.zeros(grid.n) if u is None else u, m, [lam, 0.0]])
        res = newton(system, x0, config.tol, config.max_iterations, config.verbose, label="newton", report=report)
        u, m, lam, _ = system.split(res.x)
        lam = float(lam)
        history.extend(res.history[1:] if history else res.history)
        info["newton"], info["converged"] = res.iterations, res.converged
        info["stopped_on"] = res.stopped_on
    m = _fp_ergodic(disc, u, exact=True)
    info["clipped"] = float(min(m.min(), 0.0))
    m = np.maximum(m, 0.0)
    m = m / grid.mass(m)  # clipping touches round-off only; keep the mass exact
    x = np.concatenate([u, m, [lam, 0.0]])
    history.append(residual_norm(system.evaluate(x)[0]))
    info["history"] = history
    _judge(info, config, system.residual_floor(x))
    reuse = disc.factor_reuse
    if reuse is not None:
        info["factorisations"], info["gmres"], info["gmres_capped"] = (
            reuse.factorisations, reuse.gmres_iterations, reuse.gmres_capped)
    return u, m, lam, info


def _fp_ergodic(disc: Discretisation, u: np.ndarray, exact: bool = False) -> np.ndarray:
    """``fp_ergodic``; with shared factors (``disc.factor_reuse``) by GMRES, or by factorising at u when
    ``exact`` or when GMRES left a negative or non-finite value: the direct solve of the M-matrix keeps
    m >= 0 (for ln m couplings) and the small values of a peaked m accurate (ergodic torus 2D, σ = 0.5,
    48²: the final residual 5e-6 from a GMRES density, 1.1e-7 from the direct one)."""
    if disc.factor_reuse is None:
        return fp_ergodic(disc, u)
    cached = getattr(disc, "_ergodic_hjb", None)
    solver = cached[1] if cached is not None and np.array_equal(cached[0], u) else ergodic_hjb_solver(disc, u)
    if not exact:
        m = fp_ergodic(disc, u)
        if np.all(m >= 0):
            return m
    solver.factorise()
    return fp_ergodic(disc, u)


def _restrict(values: np.ndarray, cells: tuple[int, ...], time_dependent: bool) -> np.ndarray:
    """Average each coarse cell's 2^d fine children (and keep every other time level)."""
    if time_dependent:
        values = values[::2]
        lead = (values.shape[0],)
    else:
        lead = ()
    shape = lead + sum(((c, 2) for c in cells), ())
    axes = tuple(len(lead) + 2 * i + 1 for i in range(len(cells)))
    return values.reshape(shape).mean(axis=axes)


def _richardson(problem: MFGProblem, config: GridSolverConfig, quiet: bool = False) -> GridSolution:
    first = config.replace(order=1)
    coarse_grid = make_grid(problem, config.cells, config.time_steps)
    fine_steps = None if coarse_grid.times is None else 2 * coarse_grid.time_steps
    fine_grid = make_grid(problem, 2 * config.cells, fine_steps)
    coarse = solve_on_grid(problem, coarse_grid, first, quiet)
    fine = solve_on_grid(problem, fine_grid, first, quiet)
    td = not problem.is_ergodic
    u = 2 * _restrict(fine.u, coarse_grid.cells, td) - coarse.u
    m_raw = 2 * _restrict(fine.m, coarse_grid.cells, td) - coarse.m
    m = np.maximum(m_raw, 0.0)
    flat = m.reshape(-1, coarse_grid.n)
    flat /= coarse_grid.mass(flat)[:, None]
    lam = None if coarse.ergodic_constant is None else 2 * fine.ergodic_constant - coarse.ergodic_constant
    dc, df = coarse.diagnostics, fine.diagnostics
    extra = {
        "order": 2,
        "mass_error": float(np.max(np.abs(coarse_grid.mass(m.reshape(-1, coarse_grid.n)) - 1.0))),
        "min_density": float(m.min()),
        "extrapolation_negative_min": float(min(m_raw.min(), 0.0)),
        "newton_iterations": dc.extra["newton_iterations"] + df.extra["newton_iterations"],
        "picard_iterations": dc.extra["picard_iterations"] + df.extra["picard_iterations"],
        "residual_floor": max(dc.extra["residual_floor"], df.extra["residual_floor"]),
        "stopped_on": df.extra["stopped_on"] if dc.converged else dc.extra["stopped_on"],
        "coarse": dc,
        "fine": df,
    }
    if "edge_mass" in df.extra:
        extra["edge_mass"] = max(dc.extra["edge_mass"], df.extra["edge_mass"])
    diagnostics = Diagnostics(converged=dc.converged and df.converged, iterations=dc.iterations + df.iterations,
                              residual=max(dc.residual, df.residual), residual_history=df.residual_history,
                              extra=extra)
    return GridSolution(problem, coarse_grid, u, m.reshape(coarse.m.shape), lam, diagnostics)
