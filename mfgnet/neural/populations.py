"""The neural solver on K populations: one (u_k, m_k) pair of networks per population, trained in turn.

Population k is trained as an ordinary [`MFGProblem`][mfgnet.problems.problem.MFGProblem]
(`MultiPopulationProblem.coupled_problem`) whose
coupling F_k(t, x, m_1, …, m_K) reads its own density from its networks (differentiated, as for
one population) and the others' from their networks as they are at that step (not differentiated:
each pair of networks answers the others' current state, like a best response taken one Adam step
at a time).  The K trainers step in turn, one Adam step each, so at the end every residual is
measured against the others' final networks.  Each population keeps everything a single run has:
its warm start, sampler, exact initial / terminal forms, renormalised mass, checks and diagnosis.

Why separate networks by default rather than one network with a population input
(``model.population_input=true``, also here: one u core and one m core shared by all populations,
population k's one-hot code an extra input, one Adam step on the sum of the K losses): measured side
by side, the same settings otherwise (4000 steps, rel L2 m of populations 1 / 2, shared against
separate): B6 1D 2.8e-4 / 2.0e-4 against 3.3e-4 / 2.8e-4, segregation 1D 0.150 / 0.104 against
0.145 / 0.113, B6 2D 4.6e-4 / 3.0e-3 against 2.8e-4 / 7.5e-4, walls within 3 % of each other
(results/populations/populations.md).  Level in 1D, worse in 2D, slower early on (B6 1D, 300 steps:
7e-4 / 5.7e-3 against 6e-4 / 2e-4); and the populations may have different viscosities, Hamiltonians
and crowds.  So the separate pairs stay the default; the shared networks have half the parameters.
Stepping the shared core with one Adam per population in turn (each with its own moments) was worse
still: B6 1D after 300 steps 1.4e-2 / 1.0e-2.  With a warm start (time-dependent box or torus) the
populations fit the shared core one after the other, the later fit moving the earlier one's.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from pathlib import Path

import torch

from mfgnet.neural.config import NeuralSolverConfig
from mfgnet.neural.trainer import Trainer, step_optimiser
from mfgnet.neural.warmstart import coarse_population_solutions
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
        shared = config.model.population_input
        trainers.append(Trainer(view, settings, logger=_prefixed(callback, k),
                                population=(k, problem.size) if shared else None))
        if shared and k > 0:
            trainers[k].share_cores(trainers[0])
    # warm_start='grid': one coupled coarse grid solve, each population fitted to its part of it (solved
    # apart, population k would answer the others' untrained networks).  Other warm starts run one after
    # the other: each sees the others' networks as they are then.
    coarse_info = None
    resuming = config.resume and all(t.checkpoint_path and os.path.exists(t.checkpoint_path) for t in trainers)
    if trainers[0].warm_start_mode() == "grid" and not resuming:
        coarse, coarse_info = coarse_population_solutions(problem, config.warm_start_cells)
        for trainer, part in zip(trainers, coarse):
            trainer.coarse_solution = part
    clocks = [trainer.begin() for trainer in trainers]
    if coarse_info is not None:  # the shared solve's cost and verdict in every population's record
        for trainer in trainers:
            if trainer.warm_start_info is not None:
                trainer.warm_start_info.update(coarse_info, coupled=True)
    running = [True] * problem.size
    steps = [trainer.cfg.steps for trainer in trainers]  # resolved per population (steps=None: its default)
    bar = progress_bar(sum(steps), f"neural, {problem.size} populations", enabled=config.progress, unit="step")
    with bar:
        if config.model.population_input:
            _train_together(trainers, clocks, min(steps), bar)
        else:
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
             "networks": "shared, population input" if config.model.population_input else "one pair per population",
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


def _joint_optimisers(trainers: list[Trainer]) -> dict[str, torch.optim.Adam]:
    """One Adam per optimiser name over every population's parameters, each shared core once
    (``model.population_input``), keeping each group's learning rate (λ has its own)."""
    joint = {}
    for name in trainers[0].optimisers:
        seen: set[int] = set()
        groups = []
        for trainer in trainers:
            for group in trainer.optimisers[name].param_groups:
                params = [p for p in group["params"] if id(p) not in seen]
                seen.update(id(p) for p in params)
                if params:
                    groups.append({"params": params, "lr": group["base_lr"], "base_lr": group["base_lr"]})
        joint[name] = torch.optim.Adam(groups)
    return joint


def _train_together(trainers: list[Trainer], clocks: list, steps: int, bar) -> None:
    """Shared networks: each step differentiates the sum of the K populations' losses and takes one
    Adam step on the union of their parameters (K optimisers stepping one core in turn, each with
    its own moments, were worse: B6 1D after 300 steps m 1.4e-2 / 1.0e-2 against 7e-4 / 5.7e-3).
    Stops for all when a guard stops one."""
    optimisers = _joint_optimisers(trainers)
    params = list({id(p): p for o in optimisers.values() for g in o.param_groups for p in g["params"]}.values())
    lead = trainers[0]
    while lead.step < steps:
        losses = [trainer.step_loss() for trainer in trainers]
        if any(loss is None for loss in losses):
            return
        optimiser = optimisers[losses[0].active]
        for o in optimisers.values():
            o.zero_grad(set_to_none=True)
        sum(loss.backward for loss in losses).backward()
        lr = step_optimiser(optimiser, params, lead.cfg.optim.grad_clip, lead._lr_factor(lead.step))
        if lr is None:
            lead._nonfinite("non-finite gradient", losses[0].terms)
            return
        for trainer, loss, clock in zip(trainers, losses, clocks):
            trainer.record_step(loss, lr)
            trainer.after_step(clock)
        bar.update(len(trainers))


def _prefixed(callback, k: int):
    """The run's logger, with population k's metrics suffixed ``_k`` (K runs share one logger)."""
    if callback is None:
        return None
    return lambda step, metrics: callback(step, {f"{key}_{k}": value for key, value in metrics.items()})
