"""One experiment run: config → problem → solver → solution → metrics, arrays, figures.

The Hydra entry point (``python -m mfgnet``) calls [`run_experiment`][mfgnet.runner.run_experiment] with the composed
config as a plain dict and the run directory; so can a script or a test.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mfgnet.catalog import build_problem
from mfgnet.evaluation.metrics import compare, mass_error
from mfgnet.evaluation.plots import plot_histories, plot_solution
from mfgnet.loggers import make_logger
from mfgnet.problems import MFGProblem, ProblemError, cell_centre_points, cell_centres
from mfgnet.registry import SolverSpec, get_solver
from mfgnet.resources import PeakMemory, check_solver_memory
from mfgnet.solution import Solution

log = logging.getLogger(__name__)


def is_main_process() -> bool:
    """Rank 0 of a ``torchrun`` launch, and every single-process run: the one that writes files."""
    return int(os.environ.get("RANK", "0")) == 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class RunResult:
    """A run's problem, exact solution (None without one), solution and metrics."""

    problem: MFGProblem
    exact: Solution | None
    solution: Solution
    metrics: dict


def run_experiment(cfg: dict, run_dir: str | Path) -> dict:
    """Run the experiment described by ``cfg`` (keys problem, solver, logger, seed) in ``run_dir``.

    Writes ``metrics.json``, ``solution.npz`` and figures there and returns the metrics.
    """
    return execute_run(cfg, run_dir).metrics


GAMES = ("nash", "social_optimum", "price_of_anarchy")
"""What a run solves (the config's top-level ``game``): the Nash equilibrium of the problem, its
social optimum (mean field control, [`social_optimum`][mfgnet.problems.social.social_optimum]),
or both with the price of anarchy ([`mfgnet.evaluation.social`][mfgnet.evaluation.social])."""


def game_of(cfg: dict) -> str:
    """The run's ``game``, checked (ProblemError naming the allowed values)."""
    game = cfg.get("game") or "nash"
    if game not in GAMES:
        raise ProblemError(f"game must be one of {', '.join(GAMES)}; got {game!r}")
    return game


def execute_run(cfg: dict, run_dir: str | Path) -> RunResult:
    """[`run_experiment`][mfgnet.runner.run_experiment], returning the problem, exact solution and solution too.

    With ``game=social_optimum`` the solution is the social optimum's (no exact comparison;
    metrics add its ``social_cost`` and ``density_gap``); with ``game=price_of_anarchy`` it is
    the equilibrium's, the optimum is solved after it (``optimum_solution.npz``,
    ``optimum_solution.png``, metrics prefixed ``optimum_``) and ``price_of_anarchy.png`` and
    the metrics of [`price_of_anarchy`][mfgnet.evaluation.social.price_of_anarchy] are added."""
    run_dir = Path(run_dir)
    seed = int(cfg.get("seed", 0))
    seed_everything(seed)
    problem, exact, spec, solver_config = prepare_run(cfg)
    game = game_of(cfg)
    if game != "nash":
        from mfgnet.evaluation.social import check_social_cost

        if not isinstance(problem, MFGProblem):
            raise ProblemError(f"game={game} is implemented for one population; {problem.name!r} has several")
        check_social_cost(problem)
    run_dir.mkdir(parents=True, exist_ok=True)

    # Under torchrun every rank runs this; only rank 0 writes files and logs (same numbers on all).
    main = is_main_process()
    if main:
        log.info("%s / %s: run directory %s", problem.name, spec.name, run_dir.resolve())
    logger = make_logger(dict(cfg.get("logger") or {"name": "none"}) if main else {"name": "none"}, run_dir, cfg)
    started = time.perf_counter()
    original = problem  # the game's own costs score every feedback
    try:
        with PeakMemory() as peak:
            if game == "price_of_anarchy":
                from mfgnet.evaluation.social import compare_equilibrium_and_optimum

                def solve_one(target: MFGProblem) -> Solution:  # the optimum keeps its checkpoints apart
                    workdir = run_dir if target is problem else run_dir / "optimum"
                    return spec.solve_function(target, solver_config, callback=logger, workdir=workdir)

                comparison = compare_equilibrium_and_optimum(problem, solve_one)
                solution = comparison.nash
            else:
                if game == "social_optimum":
                    from mfgnet.problems.social import social_optimum

                    problem, exact = social_optimum(problem), None
                solution = spec.solve_function(problem, solver_config, callback=logger, workdir=run_dir)
        metrics = collect_metrics(solution, exact, time.perf_counter() - started)
        metrics.update(peak.metrics)
        if game == "price_of_anarchy":
            optimum_metrics = collect_metrics(comparison.optimum, None, comparison.optimum.diagnostics.wall_time_s)
            metrics.update({f"optimum_{k}": v for k, v in optimum_metrics.items() if f"optimum_{k}" not in metrics})
            metrics.update(comparison.metrics)
        elif game == "social_optimum":
            from mfgnet.evaluation.social import density_gap, social_cost

            # Scored with the original costs F and G: the planner's marginal costs only steer.
            cost = social_cost(original, solution.policy)
            metrics.update(cost.as_metrics())
            metrics["density_gap"] = density_gap(solution, cost)
        if not main:
            return RunResult(problem, exact, solution, metrics)
        write_metrics(metrics, run_dir / "metrics.json")
        save_arrays(solution, run_dir / "solution.npz")
        tolerance = getattr(solver_config, "tol", getattr(solver_config, "tolerance", None))
        log_every = getattr(solver_config, "log_every", None)
        (run_dir / "history.json").write_text(json.dumps(histories_of(solution, tolerance, log_every)))
        figures = save_figures(solution, exact, run_dir, tolerance, log_every)
        if game == "price_of_anarchy":
            from mfgnet.evaluation.social_figures import plot_price_of_anarchy

            save_arrays(comparison.optimum, run_dir / "optimum_solution.npz")
            figures.append(plot_solution(comparison.optimum, run_dir / "optimum_solution.png",
                                         title="social optimum"))
            figures.append(plot_price_of_anarchy(comparison, run_dir / "price_of_anarchy.png",
                                                 title=f"{problem.name} / {spec.name}"))
        logger.log_summary(metrics)
        for path in figures:
            logger.log_figure(path.stem, path)
    finally:
        logger.finish()
    log.info(summary_line(problem.name, spec.name, metrics))
    log.info("outputs written to %s", run_dir.resolve())
    return RunResult(problem, exact, solution, metrics)


def prepare_run(cfg: dict) -> tuple[MFGProblem, Solution | None, SolverSpec, Any]:
    """Build and validate everything a run needs before it solves: the problem (and its exact
    solution), the solver's registry entry and its settings object; refuses settings whose
    memory estimate exceeds the machine's (:mod:`mfgnet.resources`).  Raises ProblemError."""
    seed = int(cfg.get("seed", 0))
    problem_cfg = dict(cfg["problem"])
    problem, exact = build_problem(problem_cfg.pop("name"), **problem_cfg)
    solver_cfg = dict(cfg["solver"])
    spec = get_solver(solver_cfg.pop("name"))
    for group in spec.groups:  # e.g. the neural model=, sampler=, optim= are top-level config groups
        if group in cfg:
            solver_cfg[group] = dict(cfg[group])
    if solver_cfg.get("seed", 0) is None:  # the solver follows the run's seed unless it sets its own
        solver_cfg["seed"] = seed
    fields = {f.name for f in dataclasses.fields(spec.config_class)}
    if "progress" in fields and (not cfg.get("progress", True) or not is_main_process()):
        solver_cfg["progress"] = False  # one flag turns every progress bar off; only rank 0 draws one
    solver_config = spec.config_class.from_dict(solver_cfg)
    check_solver_memory(problem, solver_config)
    return problem, exact, spec, solver_config


def _is_short_table(value) -> bool:
    """A list of at most 50 flat dicts of scalars (kept in metrics.json as it is)."""
    scalar = (bool, int, float, str, type(None))
    return (isinstance(value, list) and 0 < len(value) <= 50
            and all(isinstance(row, dict) and all(isinstance(v, scalar) for v in row.values()) for row in value))


def collect_metrics(solution: Solution, exact: Solution | None, wall_time_s: float) -> dict:
    """The metrics every run reports (keys shared by all solvers)."""
    diag = solution.diagnostics
    metrics: dict = {
        "converged": bool(diag.converged),
        "iterations": int(diag.iterations),
        "residual": float(diag.residual),
        "wall_time_s": float(wall_time_s),
        "mass_error": mass_error(solution),
    }
    if diag.iterations > 0:  # cost per iteration (Adam step, Newton step, ...), e.g. against the dimension
        metrics["seconds_per_step"] = float(wall_time_s) / int(diag.iterations)
    if solution.ergodic_constant is not None:
        metrics["lambda"] = float(solution.ergodic_constant)
    for key, value in diag.extra.items():
        if key in metrics:
            continue
        if isinstance(value, (bool, int, float, str)):
            metrics[key] = value
        elif _is_short_table(value):  # e.g. the grid's continuation stages: a few rows of scalars
            metrics[key] = [{k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in row.items()}
                            for row in value]
    populations = getattr(solution, "populations", None)
    if populations is not None:  # K populations: each one's numbers, suffixed _1 .. _K
        for k, population in enumerate(populations, start=1):
            metrics[f"mass_error_{k}"] = mass_error(population)
            if population.ergodic_constant is not None:
                metrics[f"lambda_{k}"] = float(population.ergodic_constant)
            if exact is not None:
                metrics.update({f"{key}_{k}": value for key, value in compare(population, exact[k - 1]).items()})
    elif exact is not None:
        metrics.update(compare(solution, exact))
    bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:  # strict JSON has no NaN / Infinity: null, and the list of the keys that were not finite
        metrics["non_finite"] = bad
        metrics.update({k: None for k in bad})
    return metrics


def write_metrics(metrics: dict, path: Path) -> None:
    """``metrics.json`` as strict JSON (``allow_nan=False``: a non-finite float is an error here,
    :func:`collect_metrics` has already written it as null and listed it in ``non_finite``)."""
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True, allow_nan=False))


def save_arrays(solution: Solution, path: Path) -> None:
    """u and m on a grid: the solver's own grid when it has one, else a uniform one (K
    populations: ``u_1``, ``m_1``, ..., ``lambda_1``, ... on the shared grid)."""
    populations = getattr(solution, "populations", None)
    if populations is not None:
        arrays = {}
        for k, population in enumerate(populations, start=1):
            arrays.update({f"{key}_{k}" if key in ("u", "m", "lambda") else key: value
                           for key, value in _arrays_of(population).items()})
        np.savez_compressed(path, **arrays)
        return
    np.savez_compressed(path, **_arrays_of(solution))


def _arrays_of(solution: Solution) -> dict:
    if getattr(solution, "u", None) is not None and getattr(solution, "axes", None) is not None:
        arrays = {"u": np.asarray(solution.u), "m": np.asarray(solution.m)}
        for i, axis in enumerate(solution.axes):
            arrays[f"x{i}"] = np.asarray(axis)
        if getattr(solution, "times", None) is not None:
            arrays["t"] = np.asarray(solution.times)
    else:
        arrays = _sample_on_grid(solution)
    if solution.ergodic_constant is not None:
        arrays["lambda"] = np.asarray(float(solution.ergodic_constant))
    if getattr(solution.problem, "has_mean_control", False):  # an MFG of controls: ᾱ at the saved times
        times = arrays.get("t", np.linspace(0.0, solution.problem.horizon, 33))
        with torch.no_grad():
            arrays["mean_control"] = np.asarray(solution.mean_control(torch.as_tensor(times, dtype=torch.float64)))
        arrays.setdefault("t", np.asarray(times))
    return arrays


def _sample_on_grid(solution: Solution) -> dict:
    problem = solution.problem
    per_axis = {1: 256, 2: 64}.get(problem.dim, 0)
    if not per_axis:
        return {}
    lower, upper = problem.bounding_box().bounds()
    axes = cell_centres(lower, upper, per_axis)
    x = cell_centre_points(lower, upper, per_axis)
    shape = [per_axis] * problem.dim
    arrays = {f"x{i}": a.numpy() for i, a in enumerate(axes)}
    times = [None] if problem.is_ergodic else torch.linspace(0, problem.horizon, 33).tolist()
    with torch.no_grad():
        u = [solution.value(t, x).double().reshape(shape).numpy() for t in times]
        m = [solution.density(t, x).double().reshape(shape).numpy() for t in times]
    arrays["u"], arrays["m"] = (np.stack(f) if not problem.is_ergodic else f[0] for f in (u, m))
    if not problem.is_ergodic:
        arrays["t"] = np.asarray(times)
    return arrays


def histories_of(solution: Solution, tolerance: float | None = None, log_every: int | None = None) -> dict:
    """Named per-iteration curves of a run (what ``history.json`` holds).

    Neural: every recorded term (loss, hjb, fp, terminal, initial, mass, ..., lambda, lr, weights;
    one entry per Adam step, then one per L-BFGS chunk of ``log_every`` iterations), ``residual``
    √(hjb + fp), ``phase`` ("adam" / "lbfgs" per entry) and, with ``log_every``, ``step`` (the
    optimiser steps done at each entry).  Grid: ``residual`` per iteration and ``phase``
    ("picard", "newton", and "final" for the closing exact Fokker–Planck step).  ``tolerance``,
    when given, is stored too (the stopping tolerance of the solver).
    """
    diag = solution.diagnostics
    extra = diag.extra
    histories: dict = {k: [float(x) for x in v] for k, v in extra.get("history", {}).items() if isinstance(v, list)}
    if diag.residual_history and "residual" not in histories:
        histories["residual"] = [float(x) for x in diag.residual_history]
    if "mean_control_iterations" in extra and "residual" in histories:  # the fixed point on ᾱ (grid)
        histories["mean_control_gap"] = histories.pop("residual")
        histories["phase"] = ["anderson"] * len(histories["mean_control_gap"])
    elif "lbfgs_steps" in extra and "steps" in extra and histories:
        n = max(len(v) for k, v in histories.items() if not k.startswith("monitor_"))
        adam = min(int(extra["steps"]), n)
        histories["phase"] = ["adam"] * adam + ["lbfgs"] * (n - adam)
        if log_every:
            lbfgs = int(extra["lbfgs_steps"])
            histories["step"] = [k + 1 for k in range(adam)] + [
                adam + min((j + 1) * log_every, lbfgs) for j in range(n - adam)]
    elif "picard_iterations" in extra and "residual" in histories:
        fine = extra.get("fine")  # Richardson (order 2): the residual history is the fine solve's
        picard = int((fine.extra if fine is not None else extra)["picard_iterations"])
        n = len(histories["residual"])
        picard = min(picard, n - 1)
        histories["phase"] = ["picard"] * picard + ["newton"] * (n - picard - 1) + ["final"]
    if tolerance is not None and histories:
        histories["tolerance"] = float(tolerance)
    return histories


def save_figures(solution: Solution, exact: Solution | None, run_dir: Path, tolerance: float | None = None,
                 log_every: int | None = None) -> list[Path]:
    """``solution.png`` (with the error against ``exact``) and ``history.png`` in ``run_dir`` (and
    ``mean_control.png`` for an MFG of controls); for K
    populations ``solution_1.png`` … (each against its exact solution) and ``populations.png``
    (the K densities together)."""
    populations = getattr(solution, "populations", None)
    if populations is not None:
        from mfgnet.evaluation.populations_figures import plot_populations

        figures = [plot_solution(population, run_dir / f"solution_{k}.png",
                                 reference=None if exact is None else exact[k - 1], title=f"population {k}")
                   for k, population in enumerate(populations, start=1)]
        figures.append(plot_populations(solution, run_dir / "populations.png"))
    else:
        figures = [plot_solution(solution, run_dir / "solution.png", reference=exact)]
    if getattr(solution.problem, "has_mean_control", False):
        from mfgnet.evaluation.controls_figures import plot_mean_control

        figures.append(plot_mean_control(solution, run_dir / "mean_control.png", reference=exact))
    histories = histories_of(solution, tolerance, log_every)
    if histories:
        figures.append(plot_histories(histories, run_dir / "history.png", title="convergence"))
    return figures


def summary_line(problem_name: str, solver_name: str, metrics: dict) -> str:
    keys = ("converged", "iterations", "rel_l2_u", "rel_l2_m", "abs_err_lambda", "mass_error", "wall_time_s")
    body = "  ".join(f"{k}={metrics[k]:.3g}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}"
                     for k in keys if k in metrics)
    return f"[mfgnet] {problem_name} / {solver_name}: {body}"
