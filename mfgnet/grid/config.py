"""Settings of the grid solver (validated on construction, see :mod:`mfgnet.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from mfgnet.settings import Settings, choice, flag, number


@dataclass(frozen=True)
class GridSolverConfig(Settings):
    """Grid solver settings.

    Attributes
    ----------
    cells : int
        Cells per axis (>= 8; "grid too coarse" below); also bounded by memory: a system
        whose estimate (`mfgnet.resources`) exceeds the available memory is refused before
        it is built.  The grid solver is for 1D and 2D problems.
    time_steps : int or None
        Implicit Euler steps on [0, T]; None chooses dt <= h (time-dependent only).
    method : str
        "newton" (damped Picard warm start, then Newton on the whole coupled system),
        "picard" (damped fixed point) or "fictitious_play" (averaging with weight 1/(k+1)).
    tol : float
        Stop when the max-norm residual of the discrete system is below tol (> 0).  On fine
        grids round-off alone leaves a residual of about 64 ε |x| (ν Σ 4/h² + 1/Δt) (the
        *residual floor*, ε = 2.2e-16; e.g. 1e-9 for |x| ~ 1 at 1024 cells); Newton stops
        there instead, ``converged`` is True when the final residual is <= max(tol, floor),
        and ``diagnostics.extra`` (and ``metrics.json``) report ``residual_floor`` and
        ``stopped_on``: "tol", "residual_floor", "small_step", "stalled", "singular",
        "inexact_direction" (a tiny step from a GMRES solve stopped at its cap), "max_iterations"
        or "final_residual" (the closing exact Fokker–Planck step left the residual above tol).
    max_iterations : int
        Outer iterations (Newton or Picard), >= 1.
    picard_warmup : int
        Damped Picard steps before Newton, >= 0.
    damping : float
        Picard step θ in (0, 1]: m <- (1-θ) m + θ m_best_response.
    gmres_max_iterations : int
        Time-dependent Newton solves (and ergodic 2D ones with ``ergodic_lu="reuse"``): GMRES
        iterations per Newton direction (>= 10).  At small
        ν with a strong coupling GMRES may stop at this cap (``gmres_capped`` in the
        diagnostics counts the directions it left inexact); raising it turns such a failure
        into convergence at the price of slower steps (crowd aversion 2D, aversion 50,
        ν = 1e-3, 32²: not converged in 41 s with 200, converged in 128 s with 600).
    ergodic_lu : str
        Ergodic 2D solves.  "reuse": one SuperLU factorisation of the HJB operator
        ``A(u) = [[-ν Δ + J(u), 1], [h^d 1ᵀ, 0]]`` serves many linear solves
        (:class:`~mfgnet.grid.linalg.FactorReuse`): GMRES preconditioned by it solves the HJB
        Newton steps and Fokker-Planck systems of the Picard warm start at other u, and, as a
        block Gauss-Seidel preconditioner (du from A, then dm from Aᵀ), every Newton step of the
        coupled system, which is never factorised whole; the final Fokker-Planck step factorises
        at the final u (exact, m >= 0 as before).  "fresh": a new factorisation of every
        Jacobian, the coupled one with two unknowns per node (the path before "reuse"; 1D
        ergodic solves always take it: their factorisations are cheap, and "reuse" measured
        0-25 % slower there).  Same solutions to ~1e-13 relative; ``diagnostics.extra`` reports
        ``factorisations`` and ``gmres_iterations`` ("reuse" only).
    lu_reuse_iterations : int
        ``ergodic_lu="reuse"`` and ``time_lu="reuse"`` (>= 1): a GMRES solve with the factors of
        another u (or iterate and ν) that needs more iterations than this makes the next solve
        factorise at its own; one that reaches 3 times this stops and factorises at once.
    time_lu : str
        Time-dependent Newton solves on 1D grids of at most 2^18 unknowns (2 × levels × nodes, e.g.
        512 cells with T = 1; larger ones and 2D ones always take "off": the factors grow faster than
        the matrix, and those of crowd aversion 2D, 32², T = 1 had 140 M nonzeros, 43-104 s each).  "reuse":
        once GMRES on the Schur complement (:class:`~mfgnet.grid.linalg.CoupledTimeSolve`) has
        needed more than ``time_lu_switch`` iterations for one Newton direction (small ν: its
        preconditioner, a forward sweep, degrades as ν -> 0), the following directions are found by
        GMRES on the whole space-time Newton matrix, right-preconditioned by one SuperLU factorisation
        of that matrix at an earlier iterate or stage (:class:`~mfgnet.grid.linalg.FactorReuse`,
        refactorised by the rule of ``lu_reuse_iterations``; ``diagnostics.extra["factorisations"]``
        counts them).  "off": Schur GMRES only (the path before "reuse").  Same solutions to Newton's
        tolerance; 1D at 128 cells, ν <= 1e-3, T = 1 or 2: 4-9x faster, T = 0.5: up to 1.5x slower
        (numbers at the field).
    time_lu_switch : int
        "reuse" only: the Schur GMRES iterations of one Newton direction above which the whole
        matrix is factorised (>= 0).
    continuation : str
        Time-dependent Newton solves only.  "auto": when the problem's ν is below
        ``continuation_from``, solve first with ν = ``continuation_from`` and lower ν by the
        factor ``continuation_ratio`` per stage down to the problem's ν, each stage's Newton
        starting from the solution of the one before (small ν makes Newton from the Picard
        warm start slow and the warm start itself divergent: crowd aversion with ν = 1e-3,
        T = 2 took 35 Newton steps from it; results/grid_small_noise.md).  "off": one
        Newton solve at the problem's ν.  ``diagnostics.extra["continuation"]`` lists the
        stages (ν, Newton and GMRES iterations, why each stopped).  A solve that stalls with
        continuation is tried again with a gentler one, then without it (``solve_on_grid``;
        ``retry_continuation``, ``retry_continuation_from``).
    continuation_from : float
        The first stage's ν (> 0).
    continuation_ratio : float
        ν falls by this factor per stage (> 1); a problem's ν is reached from the last stage
        above both ``continuation_ratio`` × ν and ``continuation_from`` / 1000 (ν = 0 from 2e-3
        with the defaults).
    populations_solve : str
        Time-dependent problems of K populations
        ([`MultiPopulationProblem`][mfgnet.problems.populations.MultiPopulationProblem]).
        "newton": Newton on the whole coupled system of 2K equations, its Jacobian factored by
        SuperLU (fast on small grids, infeasible in 2D beyond ~20²: 337 s there, the memory check
        refuses 64²).  "sweeps": block Gauss-Seidel to convergence: each sweep solves population
        k = 1..K as a single-population MFG with the others' densities frozen (this solver's
        scalable path, warm-started from the population's previous solution); the densities the
        next sweep freezes are an Anderson mixture of the sweep's input and output.  It stops when
        the coupled system's residual (Newton's, at the sweep's solutions) is <= max(tol,
        round-off floor), which is what ``converged`` means, or after ``max_iterations`` sweeps
        (each population's solve keeps at least 50 Newton steps).  ``diagnostics.extra``:
        ``sweeps``, ``density_change``, ``inner_iterations``.  "auto": Newton while its memory
        estimate (2K · time steps · nodes unknowns, 4 kB each in 1D, 20 kB in 2D) is at most
        256 MiB and fits in memory (T = 1, dt = h: 1D up to 128 cells, 2D up to 14²), sweeps
        above.  Segregation, Newton / sweeps: 1D 128 cells 4.6 / 1.7 s, 2D 14² 10.3 / 2.7 s,
        same solutions within 3e-11 (numbers at the constants of `mfgnet.grid.populations`).
        Ergodic problems always take Newton.
    order : int
        1 (the monotone first-order scheme) or 2 (Richardson extrapolation of the runs
        on N and 2N cells, see [`solve_grid`][mfgnet.grid.solver.solve_grid]).
    mean_control_tol : float
        MFGs of controls only: the equilibrium's mean control ᾱ is a fixed point over frozen-ᾱ
        games (:mod:`mfgnet.grid.controls`); stop when max |ᾱ_new - ᾱ| <= this (> 0).
    mean_control_iterations : int
        MFGs of controls only: Anderson iterations on ᾱ, >= 1 (each one a grid solve).
    cpu_threads : int
        torch's CPU intra-op threads during the solve (restored after; 0 leaves torch's setting).
        The grid solver evaluates the Hamiltonian and couplings with torch on vectors of one value
        per node: too small to split, and on a busy 2-core machine two spinning threads made each
        evaluation ~17x more CPU time (B1 2D coupling at 256²: 0.12 s instead of 0.007 s).
    verbose : bool
        One log line (INFO) per outer iteration (DEBUG otherwise).
    progress : bool
        A progress bar on standard error for solves longer than a few seconds.
    """

    section = "solver"

    cells: int = number(128, 8, 10**6, integer=True, hint="grid too coarse below 8")
    time_steps: int | None = number(None, 2, 10**7, integer=True, optional=True)
    method: str = choice("newton", "picard", "fictitious_play")
    tol: float = number(1e-10, 0.0, lo_open=True)
    max_iterations: int = number(50, 1, 10**6, integer=True)
    picard_warmup: int = number(3, 0, 10**6, integer=True)
    damping: float = number(0.5, 0.0, 1.0, lo_open=True)
    gmres_max_iterations: int = number(200, 10, 10**5, integer=True)
    # "reuse": B1 2D (ergodic torus, σ = 1), CPU s at 64² / 128² / 256², medians of 4-5 runs
    # interleaved with the code before it, on the shared 2-core machine at load 1-2: 0.61 / 3.35 /
    # 15.4 before, 0.23 / 0.93 / 4.4 now (cpu_threads = 1 alone: 0.52 / 2.51 / 15.2; "reuse" with
    # torch's two threads: 0.34 / 1.13 / 4.5; at load 3-4 the 256² solve took 18.4 s before and
    # 5.1 s now, 7.1 s with two torch threads).  3 factorisations of the n + 1 HJB unknowns instead
    # of 11 of them and 4 of the 2n + 2 coupled ones (2 s each at 256²); ~70 GMRES iterations, 14 of
    # them in the 4 Newton steps (the same 4 as before); solutions within 4e-13, errors to the exact
    # solution equal to 10 digits.
    ergodic_lu: str = choice("reuse", "fresh")
    # 10: at 256² a factorisation costs ~30 solves with its factors; B1 2D needs 5-9 iterations
    # with the factors of a nearby u, 13-20 with those of u = 0 (the first Picard step).  Single
    # runs at 256² (load ~1.5): 6 factorised 6 times (5.1 s); 8-12: 2-3 times (3.9-4.4 s); 15-20:
    # twice, after 13-23 more iterations with the u = 0 factors (4.3-4.6 s).  ergodic_torus_2d
    # (ν = 0.1) at 128²: 10, 20 and 30 took the same time (7, 2, 2 factorisations).
    lu_reuse_iterations: int = number(10, 1, 10**5, integer=True)
    # "reuse": 1D, 128 cells, the study of experiments/grid_small_noise.py (continuation auto), medians of 2
    # runs interleaved with "off" on the shared 2-core machine at load 4-6 (the walls inflated alike):
    # crowd aversion ν = 1e-3 / 0, T = 1: 15.0 / 35.1 s -> 3.4 / 3.8 s; T = 2: 26.2 / 38.1 -> 6.3 / 6.0;
    # torus attraction T = 1: 21.2 / 39.8 -> 4.5 / 4.7; T = 2: 35.7 / 69.6 -> 8.5 / 10.3 (5-9 LUs of ~12 M
    # nonzeros, 0.5-1 s each, and ~200 GMRES iterations instead of 770-2830).  T = 0.5 loses 0.3-0.4 s:
    # 0.65 / 0.94 -> 0.96 / 1.23 (crowd aversion, ν = 1e-3 / 0; torus attraction ν = 1e-3 0.95 -> 1.30, but
    # ν = 0 1.90 -> 1.42): there the Schur iterations are cheap (64 levels).  ν = 0.2 never switches (~10
    # iterations per direction); ν = 0.05 switches at T = 2 on crowd aversion only (4.9 -> 3.0 s).  Same
    # Newton counts except torus ν = 0, T = 2 (26 -> 22) and crowd ν = 0, T = 2 (20 -> 19); solutions
    # within 3e-14 (7.5e-12 for the former).  256 cells, crowd ν = 1e-3, T = 1 (one run, load 2.5): 22.2 -> 13.7 s.
    # At load ~3 (a second check, 2 runs each, interleaved) the gain is smaller: crowd ν = 1e-3, T = 1: 6.3-6.9
    # -> 4.1-4.7 s (1.5x); ν = 0, T = 2: 30.7-33.8 -> 10.1-12.6 s (2.8x); the Schur path suffers more from load.
    time_lu: str = choice("reuse", "off")
    # 20: at 40 crowd aversion ν = 1e-3, T = 2 kept Schur GMRES through the ν = 0.02 stage (~35 iterations
    # per direction) and took 10.7 s (one run) against 6.3 s.  Refactorising after lu_reuse_iterations = 10
    # stale iterations (the ergodic rule; 5-9 LUs) against 20 (3-5 LUs) and 40 (1-2), six rows, 2 runs each
    # interleaved: 20 within -12..+5 % of 10, 40 slower by up to 35 % (more GMRES iterations per direction).
    time_lu_switch: int = number(20, 0, 10**5, integer=True)
    continuation: str = choice("auto", "off")
    continuation_from: float = number(0.2, 0.0, lo_open=True)
    continuation_ratio: float = number(10.0, 1.0, lo_open=True)
    populations_solve: str = choice("auto", "newton", "sweeps")
    order: int = number(1, 1, 2, integer=True)
    mean_control_tol: float = number(1e-8, 0.0, lo_open=True)
    mean_control_iterations: int = number(60, 1, 10**4, integer=True)
    # 1, as the neural solver's cpu_threads: B1 2D at 256² spent 1.5 s of its CPU time in two torch
    # threads spinning over couplings of 65536 values (0.1 s with one); time-dependent solves give
    # the same numbers bit for bit either way.
    cpu_threads: int = number(1, 0, 1024, integer=True)
    verbose: bool = flag(False)
    progress: bool = flag(True)
