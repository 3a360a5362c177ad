"""The neural solver on K populations: one (u_k, m_k) pair of networks per population, trained in turn.

Population k is trained as an ordinary [`MFGProblem`][mfgnet.problems.problem.MFGProblem]
(`MultiPopulationProblem.coupled_problem`) whose
coupling F_k(t, x, m_1, …, m_K) reads its own density from its networks (differentiated, as for
one population) and the others' from their networks as they are at that step (not differentiated:
each pair of networks answers the others' current state, like a best response taken one Adam step
at a time).  The K trainers step in turn, one Adam step each, so at the end every residual is
measured against the others' final networks.  Each population keeps everything a single run has:
its warm start, sampler, exact initial / terminal forms, renormalised mass, checks and diagnosis.

Why separate networks rather than one network with a population input: the populations may have
different viscosities, Hamiltonians and initial crowds (B6: different widths, segregation:
different places), and the single-population machinery (warm starts, the blend form m(0) = m0,
the crowd check) applies to each pair unchanged.  The alternative was not measured.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

import torch

from mfgnet.neural.config import NeuralSolverConfig
from mfgnet.neural.trainer import Trainer
from mfgnet.problems.populations import MultiPopulationProblem
from mfgnet.progress import progress_bar
from mfgnet.resources import check_solver_memory
from mfgnet.solution import Diagnostics

log = logging.getLogger(__name__)


def solve_neural_populations(problem: MultiPopulationProblem, config: NeuralSolverConfig, *, callback=None):
    """Train K pairs of networks on ``problem`` in turn (see the module); returns a
    [`MultiPopulationSolution`][mfgnet.grid.populations.MultiPopulationSolution] whose
    ``populations[k]`` is population k's NeuralSolution with its own diagnostics.  ``converged`` is
    True when every population's check passes; ``diagnostics.residual`` is the largest of theirs.
    Seeds: population k uses ``config.seed + k``; checkpoints go to ``checkpoint_dir/population_k``."""
    from mfgnet.grid.populations import MultiPopulationSolution
    from mfgnet.neural.solver import finish

    start = time.perf_counter()
    trainers: list[Trainer] = []

    def density_of(j: int, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        nets = trainers[j].nets
        return nets.density(t.to(trainers[j].dtype), x.to(trainers[j].dtype))

    for k in range(problem.size):
        settings = config.replace(seed=(config.seed or 0) + k, progress=False)  # one bar for all, below
        if config.checkpoint_dir is not None:
            settings = settings.replace(checkpoint_dir=str(Path(config.checkpoint_dir) / f"population_{k}"))
        view = problem.coupled_problem(k, density_of)
        check_solver_memory(view, settings)
        trainers.append(Trainer(view, settings, logger=_prefixed(callback, k)))
    # Warm starts one after the other: each sees the others' networks as they are then.
    clocks = [trainer.begin() for trainer in trainers]
    running = [True] * problem.size
    steps = [trainer.cfg.steps for trainer in trainers]  # resolved per population (steps=None: its default)
    bar = progress_bar(sum(steps), f"neural, {problem.size} populations", enabled=config.progress, unit="step")
    with bar:
        while any(running):
            for k, trainer in enumerate(trainers):
                if running[k]:
                    running[k] = trainer.step < steps[k] and trainer.advance(clocks[k])
                    bar.update(1)
    for trainer, clock in zip(trainers, clocks):
        trainer.end(clock)
    solutions = [finish(trainer) for trainer in trainers]
    checks = [s.diagnostics for s in solutions]
    residual = max(d.residual for d in checks)
    converged = all(d.converged for d in checks) and math.isfinite(residual)
    from mfgnet.evaluation.metrics import mass_error

    extra = {"kind": "neural", "populations": problem.size, "steps": max(steps),
             "mass_error": max(mass_error(s) for s in solutions),
             "residual_per_population": [float(d.residual) for d in checks],
             "converged_per_population": [bool(d.converged) for d in checks]}
    missed = [f"population {k}: {d.extra['diagnosis']['summary']}" for k, d in enumerate(checks)
              if not d.converged and isinstance(d.extra.get("diagnosis"), dict)]
    if missed:
        extra["diagnosis"] = "; ".join(missed)
    diagnostics = Diagnostics(converged=converged, iterations=max(steps), residual=residual,
                              residual_history=list(checks[0].residual_history),
                              wall_time_s=time.perf_counter() - start, extra=extra)
    for k, solution in enumerate(solutions):  # metrics per population need the view's own problem
        solution.diagnostics = dataclasses.replace(solution.diagnostics, extra={**solution.diagnostics.extra,
                                                                               "population": k})
    return MultiPopulationSolution(problem, solutions, diagnostics)


def _prefixed(callback, k: int):
    """The run's logger, with population k's metrics suffixed ``_k`` (K runs share one logger)."""
    if callback is None:
        return None
    return lambda step, metrics: callback(step, {f"{key}_{k}": value for key, value in metrics.items()})
