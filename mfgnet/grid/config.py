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
        Time-dependent Newton solves: GMRES iterations per Newton direction (>= 10).  At small
        ν with a strong coupling GMRES may stop at this cap (``gmres_capped`` in the
        diagnostics counts the directions it left inexact); raising it turns such a failure
        into convergence at the price of slower steps (crowd aversion 2D, aversion 50,
        ν = 1e-3, 32²: not converged in 41 s with 200, converged in 128 s with 600).
    continuation : str
        Time-dependent Newton solves only.  "auto": when the problem's ν is below
        ``continuation_from``, solve first with ν = ``continuation_from`` and lower ν by the
        factor ``continuation_ratio`` per stage down to the problem's ν, each stage's Newton
        starting from the solution of the one before (small ν makes Newton from the Picard
        warm start slow and the warm start itself divergent: crowd aversion with ν = 1e-3,
        T = 2 took 35 Newton steps from it; results/grid_small_noise.md).  "off": one
        Newton solve at the problem's ν.  ``diagnostics.extra["continuation"]`` lists the
        stages (ν, Newton and GMRES iterations, why each stopped).
    continuation_from : float
        The first stage's ν (> 0).
    continuation_ratio : float
        ν falls by this factor per stage (> 1); a problem's ν is reached from the last stage
        above both ``continuation_ratio`` × ν and ``continuation_from`` / 1000 (ν = 0 from 2e-3
        with the defaults).
    order : int
        1 (the monotone first-order scheme) or 2 (Richardson extrapolation of the runs
        on N and 2N cells, see [`solve_grid`][mfgnet.grid.solver.solve_grid]).
    mean_control_tol : float
        MFGs of controls only: the equilibrium's mean control ᾱ is a fixed point over frozen-ᾱ
        games (:mod:`mfgnet.grid.controls`); stop when max |ᾱ_new - ᾱ| <= this (> 0).
    mean_control_iterations : int
        MFGs of controls only: Anderson iterations on ᾱ, >= 1 (each one a grid solve).
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
    continuation: str = choice("auto", "off")
    continuation_from: float = number(0.2, 0.0, lo_open=True)
    continuation_ratio: float = number(10.0, 1.0, lo_open=True)
    order: int = number(1, 1, 2, integer=True)
    mean_control_tol: float = number(1e-8, 0.0, lo_open=True)
    mean_control_iterations: int = number(60, 1, 10**4, integer=True)
    verbose: bool = flag(False)
    progress: bool = flag(True)
