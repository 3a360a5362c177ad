"""The three agent tasks behind ``python -m mfgnet.agents``: config dict -> metrics.json + figures."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from mfgnet.agents.config import (
    TASKS,
    EpidemicTask,
    FiniteTask,
    IsingTask,
    MFQConfig,
    MFQTask,
    NPlayerGridTask,
    NPlayerTask,
    PartialTask,
    SimulateTask,
)
from mfgnet.evaluation.style import panels, save, styled
from mfgnet.problems import ProblemError

log = logging.getLogger(__name__)


def run_task(cfg: dict, run_dir: str | Path) -> dict:
    """Run ``cfg['task']`` and write metrics.json (and figures) into ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fields = dict(cfg["task"])
    name = fields.pop("name", None)
    if name not in TASKS:
        raise ProblemError(f"task.name must be one of {sorted(TASKS)}, got {name!r}")
    task = TASKS[name].from_dict(fields)
    seed, verbose = int(cfg.get("seed", 0)), bool(cfg.get("verbose", False))
    if not cfg.get("progress", True) and "progress" in task.__dataclass_fields__:
        task = task.replace(progress=False)  # one flag turns every progress bar off
    log.info("task %s: run directory %s", name, run_dir.resolve())
    metrics = {"finite": _finite, "mfq": _mfq, "simulate": _simulate, "epidemic": _epidemic, "ising": _ising,
               "partial": _partial, "nplayer": _nplayer, "nplayer_grid": _nplayer_grid}[name](
        task, seed, verbose, run_dir)
    metrics["task"] = name
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    summary = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(metrics.items())
                        if isinstance(v, (int, float, str)))
    log.info("[agents %s] %s", name, summary)
    log.info("outputs written to %s", run_dir.resolve())
    return metrics


def action_names(game) -> list[str]:
    """What each action of a mean-field-Q game means, for legends: the game's own
    ``action_names`` when it has them, else a description per known game, else ``action k``."""
    names = getattr(game, "action_names", None)
    if names:
        return list(names)
    n = int(game.n_actions)
    if game.name in ("two_road_traffic", "typed_traffic"):
        return ["road A", "road B"]
    if game.name == "ride_sharing":
        return [f"price level {k}" + (" (lowest)" if k == 0 else " (highest)" if k == n - 1 else "")
                for k in range(n)]
    if game.name == "ising":
        return ["spin σ = −1", "spin σ = +1"]
    return [f"action {k}" for k in range(n)]


def _finite(task: FiniteTask, seed: int, verbose: bool, run_dir: Path) -> dict:
    from mfgnet.agents.finite import ENVS, fictitious_play, make_env, online_mirror_descent

    if task.env not in ENVS:
        raise ProblemError(f"task.env must be one of {sorted(ENVS)} for task=finite, got {task.env!r}")
    game = make_env(task.env, **task.env_params)
    if task.algorithm == "fp":
        res = fictitious_play(game, task.iterations, damping=task.damping, tol=task.tol, verbose=verbose)
    else:
        res = online_mirror_descent(game, task.iterations, step=task.step, tol=task.tol, verbose=verbose)
    expl = np.asarray(res.exploitability)
    hit = np.flatnonzero(expl <= 1e-2)
    metrics = {"env": game.name, "algorithm": res.algorithm, "iterations": len(expl) - 1,
               "exploitability": float(expl[-1]), "exploitability_initial": float(expl[0]),
               "wall_time_s": float(res.wall_time[-1]),
               "time_per_iteration_s": float(res.wall_time[-1] / max(len(expl) - 1, 1)),
               "time_to_1e-2_s": float(res.wall_time[hit[0]]) if hit.size else None,
               "exploitability_history": expl.tolist()}
    save(exploitability_figure(expl, res.mu.reshape((res.mu.shape[0],) + tuple(game.state_shape)), game.name,
                               res.algorithm), run_dir / "exploitability.png")
    return metrics


def _epidemic(task: EpidemicTask, seed: int, verbose: bool, run_dir: Path) -> dict:
    from mfgnet.agents.epidemic import n_agent_gap, social_cost, social_optimum
    from mfgnet.agents.finite import fictitious_play, make_env, online_mirror_descent
    from mfgnet.agents.finite.dynamics import mean_field

    if not task.sizes or min(task.sizes) < 1:
        raise ProblemError(f"task.sizes must be a non-empty list of agent counts >= 1, got {task.sizes!r}")
    game = make_env("sir_vaccination", **task.env_params)
    if task.algorithm == "fp":
        res = fictitious_play(game, task.iterations, verbose=verbose)
    else:
        res = online_mirror_descent(game, task.iterations, step=task.step, verbose=verbose)
    optimum = social_optimum(game, seed=seed)
    nash_cost = social_cost(game, res.pi)
    optimum_mu = mean_field(game, optimum.policy)[0].sum(-1)
    gap = n_agent_gap(game, res.pi, task.sizes, seeds=task.seeds)
    metrics = {"env": game.name, "algorithm": res.algorithm, "iterations": len(res.exploitability) - 1,
               "exploitability": float(res.exploitability[-1]), "wall_time_s": float(res.wall_time[-1]),
               "nash_cost": nash_cost, "optimum_cost": optimum.cost, "price_of_anarchy": nash_cost / optimum.cost,
               "nash_vaccinated": float(res.mu[-1, 3]), "optimum_vaccinated": float(optimum_mu[-1, 3]),
               "nash_peak_infected": float(res.mu[:, 1].max()), "optimum_peak_infected": float(optimum_mu[:, 1].max()),
               "n_agent_sizes": gap["sizes"], "n_agent_gaps": gap["gaps"], "n_agent_slope": gap["slope"]}
    save(epidemic_figure(res.mu, optimum_mu, res.pi[:, 0, 1], optimum.q, gap), run_dir / "epidemic.png")
    return metrics


@styled
def epidemic_figure(mu_nash, mu_opt, q_nash, q_opt, gap):
    """S/I/R/V fractions (equilibrium solid, social optimum dashed), the susceptibles' vaccination
    probability over time, and the N-agent distance to the mean field against N."""
    fig, axes = panels(1, 3)
    t = np.arange(mu_nash.shape[0])
    for k, name in enumerate(("S", "I", "R", "V")):
        axes[0][0].plot(t, mu_nash[:, k], color=f"C{k}", label=name)
        axes[0][0].plot(t, mu_opt[:, k], color=f"C{k}", ls="--")
    axes[0][0].plot([], [], "k-", label="equilibrium")
    axes[0][0].plot([], [], "k--", label="social optimum")
    axes[0][0].set(xlabel="t", ylabel="fraction of the population")
    axes[0][0].legend(frameon=False, fontsize=7, ncol=2)
    axes[0][1].plot(t[:-1], q_nash[:-1], label="equilibrium")
    axes[0][1].plot(t[:-1], q_opt[:-1], "--", label="social optimum")
    axes[0][1].set(xlabel="t", ylabel="P(seek vaccination | S)")
    axes[0][1].legend(frameon=False, fontsize=7)
    sizes = np.asarray(gap["sizes"], dtype=float)
    axes[0][2].loglog(sizes, gap["gaps"], "o-", label=f"N agents (slope {gap['slope']:.2f})")
    axes[0][2].loglog(sizes, gap["gaps"][0] * np.sqrt(sizes[0] / sizes), "k:", label="N^-1/2")
    axes[0][2].set(xlabel="N", ylabel="max_t,s |fraction − μ|")
    axes[0][2].legend(frameon=False, fontsize=7)
    return fig


def _nplayer(task: NPlayerTask, seed: int, verbose: bool, run_dir: Path) -> dict:
    from mfgnet.agents.finite import make_env, online_mirror_descent
    from mfgnet.agents.nplayer import n_player_curve

    sizes = sorted({int(n) for n in task.sizes})
    if len(sizes) < 2 or sizes[0] < 2:
        raise ProblemError(f"task.sizes needs at least two player counts >= 2, got {task.sizes!r}")
    env_params = task.env_params if task.env == "beach_bar" else {k: v for k, v in task.env_params.items()
                                                                    if k not in ("n", "horizon")}
    game = make_env(task.env, **env_params)
    started = time.perf_counter()
    eq = online_mirror_descent(game, task.iterations)
    curve = n_player_curve(game, eq.pi, sizes, task.samples, seed, seeds=task.seeds)
    metrics = {"env": game.name, "equilibrium_exploitability": float(eq.exploitability[-1]), "sizes": sizes,
               "epsilon": curve["epsilon"], "epsilon_spread": curve["epsilon_spread"], "slope": curve["slope"],
               "samples": task.samples, "seeds": task.seeds, "wall_time_s": time.perf_counter() - started}
    save(nplayer_figure(sizes, np.asarray(curve["epsilon"]), np.asarray(curve["epsilon_runs"]), curve["slope"],
                        game.name), run_dir / "nplayer_gap.png")
    return metrics


def _nplayer_grid(task: NPlayerGridTask, seed: int, verbose: bool, run_dir: Path) -> dict:
    from mfgnet.agents.nplayer_grid import DiscreteGame, gap_curve
    from mfgnet.catalog import build_problem

    sizes = sorted({int(n) for n in task.sizes})
    if len(sizes) < 2 or sizes[0] < 2:
        raise ProblemError(f"task.sizes needs at least two player counts >= 2, got {task.sizes!r}")
    problem, _ = build_problem(task.problem, **task.problem_params)
    started = time.perf_counter()
    game = DiscreteGame(problem, cells=task.cells)
    curve = gap_curve(game, sizes, task.realisations, seed, verbose=verbose)
    metrics = {"problem": problem.name, "cells": task.cells, "realisations": task.realisations,
               "equilibrium_residual": float(game.solution.diagnostics.residual),
               **curve, "wall_time_s": time.perf_counter() - started}
    save(nplayer_grid_figure(metrics), run_dir / "nplayer_gap.png")
    return metrics


@styled
def nplayer_grid_figure(metrics: dict):
    """Both gains against N with their fitted slopes, the crowd's L1 distance from m, and N^-a guides."""
    fig, axes = panels(1, 2)
    n = np.asarray(metrics["sizes"], dtype=float)
    ax = axes[0][0]
    informed, err = np.asarray(metrics["informed"]), np.asarray(metrics["informed_stderr"])
    ax.errorbar(n, informed, yerr=2 * err, fmt="o-", capsize=2,
                label=f"informed deviator (slope {metrics['slope_informed']:.2f})")
    ax.loglog(n, metrics["markov"], "s-", label=f"feedback deviator (slope {metrics['slope_markov']:.2f})")
    for power, style in ((0.5, ":"), (1.0, "--"), (2.0, "-.")):
        ax.loglog(n, informed[0] * (n[0] / n) ** power, "k" + style, lw=0.8, label=f"N^-{power:g}")
    ax.set(xscale="log", yscale="log", xlabel="players N", ylabel="gain of one deviating player ε_N",
           title=metrics["problem"])
    ax.legend(frameon=False, fontsize=7)
    ax = axes[0][1]
    ax.loglog(n, metrics["crowd_l1"], "o-", label=f"E ‖m^N − m‖₁ (slope {metrics['slope_crowd_l1']:.2f})")
    ax.loglog(n, metrics["crowd_l1"][0] * np.sqrt(n[0] / n), "k:", lw=0.8, label="N^-1/2")
    ax.set(xlabel="players N", ylabel="crowd's L1 distance from m (mean over t)")
    ax.legend(frameon=False, fontsize=7)
    return fig


@styled
def nplayer_figure(sizes, eps, runs, slope: float, name: str):
    """ε_N against N (mean and spread of the estimates) with N^-1/2 and N^-1 guides."""
    fig, axes = panels(1, 1)
    ax = axes[0][0]
    n = np.asarray(sizes, dtype=float)
    ax.loglog(n, eps, "o-", label=f"ε_N (fitted slope {slope:.2f})")
    ax.fill_between(n, np.maximum(runs.min(1), 1e-12), runs.max(1), alpha=0.2)
    ax.loglog(n, eps[0] * np.sqrt(n[0] / n), "k:", label="N^-1/2")
    ax.loglog(n, eps[0] * n[0] / n, "k--", label="N^-1")
    ax.set(xlabel="players N", ylabel="gain of one deviating player ε_N", title=name)
    ax.legend(frameon=False, fontsize=7)
    return fig


def _partial(task: PartialTask, seed: int, verbose: bool, run_dir: Path) -> dict:
    from mfgnet.agents.finite import make_env
    from mfgnet.agents.mfq import GAMES
    from mfgnet.agents.partial import finite_partial_curve, mfq_partial_curve

    ks = sorted({int(k) for k in task.ks})
    if not ks or ks[0] < 1:
        raise ProblemError(f"task.ks must be agent counts >= 1, got {task.ks!r}")
    started = time.perf_counter()
    cfg = MFQConfig(steps=task.mfq_steps, policy="egreedy", seed=seed, progress=False)
    distances = mfq_partial_curve(GAMES[task.mfq_env], _equilibrium_distance, [*ks, None], task.n_agents, cfg)
    game = make_env(task.finite_env, **({"n": 10, "horizon": 10} if task.finite_env == "beach_bar" else {}))
    exploitabilities = finite_partial_curve(game, [*ks, None], task.iterations, task.views, seed)
    metrics = {"ks": ks, "mfq_env": task.mfq_env, "finite_env": game.name,
               "mfq_distance": distances[:-1], "mfq_distance_full": distances[-1],
               "finite_exploitability": exploitabilities[:-1], "finite_exploitability_full": exploitabilities[-1],
               "wall_time_s": time.perf_counter() - started}
    save(partial_figure(ks, metrics), run_dir / "partial_observation.png")
    return metrics


def _equilibrium_distance(game, result) -> float:
    """How far MF-Q's last action profile is from the game's full-information equilibrium: total
    variation of the action shares (ride sharing), |μ_A − μ_A Nash| (two roads), max per-type share
    error (typed traffic)."""
    if game.name == "typed_traffic":
        return float(np.abs(game.type_shares(result.actions) - game.equilibrium()[1]).max())
    if game.name == "two_road_traffic":
        return abs(float(result.action_dist[-1, 0]) - game.traffic.nash_share())
    return float(0.5 * np.abs(result.action_dist[-1] - game.equilibrium()).sum())


@styled
def partial_figure(ks, metrics: dict):
    """Distance to equilibrium (MF-Q) and exploitability (finite MFG) against K, full information dashed."""
    fig, axes = panels(1, 2)
    for ax, key, label in ((axes[0][0], "mfq_distance", f"MF-Q on {metrics['mfq_env']}: distance to equilibrium"),
                           (axes[0][1], "finite_exploitability", f"{metrics['finite_env']}: exploitability")):
        ax.loglog(ks, metrics[key], "o-", label="K sampled agents")
        ax.axhline(metrics[key + "_full"], color="k", ls="--", label="full information")
        ax.set(xlabel="K (agents observed)", title=label)
        ax.legend(frameon=False, fontsize=7)
    return fig


def _ising(task: IsingTask, seed: int, verbose: bool, run_dir: Path) -> dict:
    from mfgnet.agents.ising import ONSAGER_TC, critical_temperature, metropolis_curve, mfq_curve

    temps = sorted(float(t) for t in task.temperatures)
    if len(temps) < 3 or temps[0] <= 0:
        raise ProblemError(f"task.temperatures needs at least 3 temperatures > 0, got {task.temperatures!r}")
    if not task.revise_probs or not all(0 < p <= 1 for p in task.revise_probs):
        raise ProblemError(f"task.revise_probs must be probabilities in (0, 1], got {task.revise_probs!r}")
    started = time.perf_counter()
    mcmc = metropolis_curve(task.side, temps, sweeps=task.sweeps, burn_in=task.burn_in, seed=seed)
    curves = {p: mfq_curve(task.side, temps, steps=task.mfq_steps, revise_prob=p, seed=seed) for p in task.revise_probs}
    metrics = {"side": task.side, "temperatures": temps, "mcmc_order": mcmc.tolist(),
               "tc_exact": ONSAGER_TC, "tc_mean_field": 1.0, "tc_mcmc": critical_temperature(temps, mcmc),
               "wall_time_s": time.perf_counter() - started}
    for p, curve in curves.items():
        metrics[f"mfq_order_revise_{p:g}"] = curve.tolist()
        metrics[f"tc_mfq_revise_{p:g}"] = critical_temperature(temps, curve)
    save(ising_figure(temps, mcmc, curves, task.side), run_dir / "ising_curve.png")
    return metrics


@styled
def ising_figure(temps, mcmc, curves: dict, side: int):
    """Order parameter |⟨σ⟩| against τ: Metropolis (black), MF-Q per revision probability, the
    exact (Onsager) and physics-mean-field critical temperatures."""
    from mfgnet.agents.ising import ONSAGER_TC

    fig, axes = panels(1, 1)
    ax = axes[0][0]
    ax.plot(temps, mcmc, "ko-", label="Metropolis MCMC")
    for k, (p, curve) in enumerate(curves.items()):
        ax.plot(temps, curve, "s--", color=f"C{k}", label=f"MF-Q, revise_prob {p:g}")
    ax.axvline(ONSAGER_TC, color="0.4", ls=":", label=f"exact τ_c = {ONSAGER_TC:.3f} J")
    ax.axvline(1.0, color="0.7", ls="-.", label="mean field τ_c = J")
    ax.set(xlabel="temperature τ (units of J)", ylabel="order parameter |⟨σ⟩|", title=f"Ising {side}×{side}")
    ax.legend(frameon=False, fontsize=7)
    return fig


def _mfq(task: MFQTask, seed: int, verbose: bool, run_dir: Path) -> dict:
    from mfgnet.agents.mfq import GAMES, train_neural, train_tabular

    params = dict(task.env_params)
    if task.env == "ising":
        params.setdefault("side", 100)
    game = GAMES[task.env](**params)
    n_agents = game.side ** 2 if task.env == "ising" else task.n_agents
    learning = {f: getattr(task, f) for f in MFQConfig.__dataclass_fields__}
    cfg = MFQConfig(**{**learning, "seed": seed if task.seed is None else task.seed})
    if task.variant == "neural" and getattr(game, "n_types", 1) > 1:
        raise ProblemError(f"task.variant=neural: the shared Q-network sees the mean action only, not the "
                           f"agent's type; use task.variant=tabular for {task.env}")
    if task.variant == "tabular":
        res = train_tabular(game, n_agents, cfg, verbose)
    else:
        res = train_neural(game, n_agents, cfg, verbose=verbose)
    metrics = {"env": game.name, "variant": task.variant, "n_agents": n_agents,
               "action_distribution": res.action_dist[-1].tolist(), "mean_reward": float(res.mean_reward[-1]),
               "mean_action": float(res.mean_action[-1]), "wall_time_s": res.wall_time_s,
               "agent_updates_per_s": res.agent_updates_per_s}
    if task.env == "two_road_traffic":
        tr = game.traffic
        mu_A = float(res.action_dist[-1, 0])
        metrics.update({"mu_A": mu_A, "nash_mu_A": tr.nash_share(), "optimal_mu_A": tr.optimal_share(),
                        "social_cost": float(tr.social_cost(mu_A)),
                        "social_cost_optimum": float(tr.social_cost(tr.optimal_share())),
                        "price_of_anarchy": tr.price_of_anarchy(),
                        "price_of_anarchy_learned": float(tr.social_cost(mu_A) / tr.social_cost(tr.optimal_share()))})
    if task.env == "typed_traffic":  # each type's share on road A against the typed Wardrop equilibrium
        share, mu = game.equilibrium()
        learned = game.type_shares(res.actions)
        metrics.update({"equilibrium_share_a": share, "share_a": float(1.0 - res.actions.mean()),
                        "exploitability": game.exploitability(res.actions),
                        "max_type_share_error": float(np.abs(learned - mu).max()),
                        **{f"type_share_a_{k + 1}": float(v) for k, v in enumerate(learned)},
                        **{f"equilibrium_type_share_a_{k + 1}": float(v) for k, v in enumerate(mu)}})
    save(actions_figure(res.steps, res.action_dist, action_names(game), f"MF-Q ({task.variant}) on {game.name}"),
         run_dir / "actions.png")
    return metrics


def _simulate(task: SimulateTask, seed: int, verbose: bool, run_dir: Path) -> dict:
    import torch

    from mfgnet.agents.simulation import cell_probabilities, compare_to_solution, simulate
    from mfgnet.benchmarks import ergodic_torus, hopf_cole

    if task.problem in ("two_populations", "segregation"):
        return _simulate_types(task, seed, verbose, run_dir)
    builders = {"hopf_cole": hopf_cole, "ergodic_torus": ergodic_torus}
    bench = builders[task.problem](**task.problem_params)
    problem = bench.problem
    solution = bench.exact
    started = time.perf_counter()
    if task.source == "grid":
        from mfgnet.grid import solve_grid

        solution = solve_grid(problem, cells=task.grid_cells)
    solve_time = time.perf_counter() - started
    t1 = task.t1 if task.t1 is not None else (0.5 if problem.is_ergodic else None)
    initial = "solution" if problem.is_ergodic else "problem"
    res = simulate(solution, task.n_agents, task.n_steps, t1=t1, bins=task.bins, n_nodes=task.n_nodes,
                   interp=task.interp, noise=task.noise, device=task.device, threads=task.threads, seed=seed,
                   initial=initial, verbose=verbose, progress=task.progress)
    dist = compare_to_solution(res, bench.exact, l1_coarsen=max(1, task.bins // 64))[-1]
    metrics = {"problem": problem.name, "source": task.source, "n_agents": res.n_agents, "n_steps": res.n_steps,
               "l1_64_cells": dist["l1"], "agent_steps_per_s": res.agent_steps_per_s,
               "wall_time_s": res.wall_time_s, "solve_time_s": solve_time, **{k: v for k, v in res.timings.items()}}
    if "w1" in dist:
        metrics["w1"] = dist["w1"]
    if task.exploitability:
        from mfgnet.agents.exploitability import population_exploitability

        metrics.update(population_exploitability(solution, n_agents=min(task.n_agents, 200_000),
                                                 cells=task.grid_cells, seed=seed))
    if problem.dim == 1:
        bins = res.histograms.shape[-1]
        t_last = None if problem.is_ergodic else res.times[-1]
        ref = cell_probabilities(bench.exact, t_last, res.lower, res.upper, bins) * bins
        edges = torch.linspace(float(res.lower[0]), float(res.upper[0]), bins + 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        width = float(res.upper[0] - res.lower[0])
        fig = density_figure(centres, res.histograms[-1] * bins / width, ref / width, res.n_agents,
                              f"{problem.name} at t = {res.times[-1]:.3g}")
        save(fig, run_dir / "density.png")
    return metrics


def _simulate_types(task: SimulateTask, seed: int, verbose: bool, run_dir: Path) -> dict:
    """Several types of agents: each population's crowd simulated under its own feedback (which
    already answers the other populations' equilibrium densities), its histogram against its own
    m_k.  Metrics per type carry the suffix ``_k`` (k = 1..K); ``density.png`` shows every type (1D)."""
    import torch

    from mfgnet.agents.simulation import cell_probabilities, compare_to_solution, simulate
    from mfgnet.catalog import build_problem

    problem, exact = build_problem(task.problem, **task.problem_params)
    started = time.perf_counter()
    if task.source == "grid":
        from mfgnet.grid import solve_grid

        solved = solve_grid(problem, cells=task.grid_cells, progress=task.progress)
        solutions = solved.populations
        reference = exact if exact is not None else solutions
    elif exact is None:
        raise ProblemError(f"task.source=exact: {task.problem!r} has no exact solution; use task.source=grid")
    else:
        solutions = reference = exact
    solve_time = time.perf_counter() - started
    t1 = task.t1 if task.t1 is not None else (0.5 if problem.is_ergodic else None)
    initial = "solution" if problem.is_ergodic else "problem"
    metrics: dict = {"problem": problem.name, "source": task.source, "types": problem.size,
                     "n_agents_per_type": task.n_agents, "n_steps": task.n_steps, "solve_time_s": solve_time}
    curves = []
    for k, solution in enumerate(solutions, start=1):  # one crowd per type (K is 2..a few), agents vectorised
        res = simulate(solution, task.n_agents, task.n_steps, t1=t1, bins=task.bins, n_nodes=task.n_nodes,
                       interp=task.interp, noise=task.noise, device=task.device, threads=task.threads,
                       seed=seed + k, initial=initial, verbose=verbose, progress=task.progress)
        dist = compare_to_solution(res, reference[k - 1], l1_coarsen=max(1, task.bins // 64))[-1]
        metrics.update({f"l1_64_cells_{k}": dist["l1"], f"agent_steps_per_s_{k}": res.agent_steps_per_s,
                        f"wall_time_s_{k}": res.wall_time_s})
        if "w1" in dist:
            metrics[f"w1_{k}"] = dist["w1"]
        if problem.dim == 1:  # the figure's histogram on at most 128 cells: visible next to m_k
            bins = res.histograms.shape[-1]
            merge = max(1, bins // 128) if bins % max(1, bins // 128) == 0 else 1
            t_last = None if problem.is_ergodic else res.times[-1]
            ref = cell_probabilities(reference[k - 1], t_last, res.lower, res.upper, bins)
            width = float(res.upper[0] - res.lower[0]) * merge / bins
            curves.append((res.histograms[-1].reshape(-1, merge).sum(1) / width,
                           ref.reshape(-1, merge).sum(1) / width, res))
    metrics["wall_time_s"] = sum(metrics[f"wall_time_s_{k}"] for k in range(1, problem.size + 1))
    if curves:
        res = curves[0][2]
        edges = torch.linspace(float(res.lower[0]), float(res.upper[0]), len(curves[0][0]) + 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        save(types_density_figure(centres, [(h, r) for h, r, _ in curves], task.n_agents,
                                  f"{problem.name}: {problem.size} types at t = {res.times[-1]:.3g}"),
             run_dir / "density.png")
    return metrics


@styled
def types_density_figure(centres, curves, n_agents: int, title: str):
    """Each type's histogram (thin) over its equilibrium density (dashed), one colour per type."""
    fig, axes = panels(1, 1)
    ax = axes[0][0]
    for k, (hist, _) in enumerate(curves):
        ax.plot(centres, hist, lw=0.8, color=f"C{k}", alpha=0.7, label=f"type {k + 1}: {n_agents:.0e} agents")
    for k, (_, density) in enumerate(curves):
        ax.plot(centres, density, "k--" if k == 0 else "k:", lw=1.0, label=f"m_{k + 1} (solution)")
    ax.set(xlabel="x", ylabel="density", title=title)
    ax.legend(frameon=False, fontsize=7)
    return fig


@styled
def exploitability_figure(expl: np.ndarray, mu: np.ndarray, env: str, algorithm: str):
    """Exploitability per iteration (log) and the final population μ with a labelled colour bar.

    ``mu``: (T + 1, *state_shape); one state axis: μ over (t, state); two: μ_T over the grid.
    """
    fig, ax = panels(1, 2)
    ax = ax[0]
    ax[0].semilogy(np.maximum(expl, 1e-16), label=algorithm)
    ax[0].set(xlabel="iteration n", ylabel="exploitability of π_n", title=f"{env}: {algorithm}")
    ax[0].legend()
    if mu.ndim == 2:
        im = ax[1].imshow(mu.T, aspect="auto", origin="lower", interpolation="nearest",
                          extent=[-0.5, mu.shape[0] - 0.5, -0.5, mu.shape[1] - 0.5])
        ax[1].set(xlabel="time step t", ylabel="state s", title="population μ_t(s)")
        fig.colorbar(im, ax=ax[1]).set_label("μ_t(s)")
    else:
        im = ax[1].imshow(mu[-1], origin="lower", interpolation="nearest")
        ax[1].set(xlabel="state coordinate 2", ylabel="state coordinate 1", title="population μ_T at the last step")
        fig.colorbar(im, ax=ax[1]).set_label("μ_T(s)")
    from matplotlib.ticker import MaxNLocator

    for axis in (ax[0].xaxis, ax[1].xaxis, ax[1].yaxis):  # iterations, time steps and states are integers
        axis.set_major_locator(MaxNLocator(integer=True))
    return fig


@styled
def actions_figure(steps, action_dist: np.ndarray, names: list[str], title: str):
    """Share of agents choosing each action against the learning step; ``action_dist``: (steps, actions)."""
    fig, ax = panels(1, 1)
    ax = ax[0][0]
    fig.set_size_inches(5.5, 3.4)
    for a in range(action_dist.shape[1]):
        ax.plot(steps, action_dist[:, a], label=names[a])
    ax.set(xlabel="learning step", ylabel="share of agents", title=title, ylim=(-0.02, 1.02))
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


@styled
def density_figure(centres, histogram, exact, n_agents: int, title: str):
    """Histogram of the simulated agents against the exact density m."""
    fig, ax = panels(1, 1)
    ax = ax[0][0]
    fig.set_size_inches(5.0, 3.4)
    ax.plot(centres, histogram, lw=0.6, label=f"{n_agents:.0e} agents (histogram)")
    ax.plot(centres, exact, "k--", label="exact m")
    ax.set(xlabel="x", ylabel="density m(t, x)", title=title)
    ax.legend()
    return fig
