"""``solve_neural``: train u_θ and m_φ on a problem and return a :class:`NeuralSolution`."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from mfgnet.neural import gaussian_start
from mfgnet.neural.check import check_residual, residual_check
from mfgnet.neural.config import (
    HJB_DENSITY_2D_BOX,
    NeuralSolverConfig,
    default_fp_weight,
    default_hjb_weight,
    on_time_dependent_2d_box,
)
from mfgnet.neural.distributed import init_from_env
from mfgnet.neural.equilibrium import decide
from mfgnet.neural.heat import HeatFlow
from mfgnet.neural.losses import fp_relative
from mfgnet.neural.networks import MFGNetworks, fourier_feature_count
from mfgnet.neural.sampling import resolve_kind, resolve_time_warp
from mfgnet.neural.solution import NeuralSolution
from mfgnet.neural.trainer import Trainer
from mfgnet.problems import MFGProblem, ProblemError
from mfgnet.problems.populations import MultiPopulationProblem
from mfgnet.resources import check_solver_memory
from mfgnet.solution import Diagnostics


def solve_neural(problem: MFGProblem, config: NeuralSolverConfig | dict | None = None, *,
                 callback: Callable[[int, dict], None] | None = None, workdir: str | Path | None = None,
                 monitor: Callable[[int, NeuralSolution], dict] | None = None,
                 **overrides) -> NeuralSolution:
    """Train the two networks on ``problem`` and return the solution.

    Args:
        config: a :class:`NeuralSolverConfig`, a dict for ``from_dict``, or ``None`` (defaults).
        callback: ``fn(step, metrics)`` called every ``log_every`` steps (e.g. a wandb logger).
        workdir: the run's folder; checkpoints go to ``workdir/checkpoints`` when
            ``checkpoint_dir`` is not set (no checkpoints without either).
        monitor: ``fn(step, live_solution) -> dict`` called every ``log_every`` steps; its
            numbers (e.g. errors against an exact solution) go into the histories and the
            logger's metrics; its time is not counted in ``wall_time_s``.
        overrides: config fields, nested ones as ``optim={"lr": 1e-3}`` or ``optim__lr=1e-3``.

    Launched by ``torchrun`` (``WORLD_SIZE`` > 1), the ranks train data-parallel: each on its
    slice of the collocation points, gradients averaged, the same loss curve as one process;
    only rank 0 writes checkpoints and calls ``callback`` (see :mod:`mfgnet.neural.distributed`).

    ``diagnostics.residual`` is the solver's own residual check: the root of the summed mean squares,
    on fresh points, of the HJB and FP residuals and of every condition that is not exact by
    construction.  For time-dependent problems in d <= 2 the solver also checks the pair as a fixed
    point on a grid (`mfgnet.neural.equilibrium`): m against the crowd that u's feedback produces
    (``extra["crowd_gap"]``, relative L2) and u against the value of the best response to m
    (``extra["value_gap"]``), each with its grid's own estimated error (``extra["crowd_scheme_error"]``,
    ``extra["value_scheme_error"]``), and, where neither gap fails, m and u against the equilibrium the
    grid's Newton iteration reaches from the pair (``extra["equilibrium_m_gap"]``, ``extra["equilibrium_u_gap"]``).
    ``converged`` is True exactly when no NaN stopped the run and either the residual is finite and
    <= ``tolerance`` and nothing of the check exceeds ``equilibrium_tolerance`` plus its grid's error, or
    both gaps and both distances, and their grids' errors, are within ``equilibrium_tolerance``
    (``extra["converged_by"]`` says which).  A gap between the two is no verdict, and the run says so.
    A run that misses gets ``extra["diagnosis"]`` (dominant term, where the residuals peak, mass
    drift, the gaps, advice) and one RuntimeWarning.

    ``diagnostics.extra`` holds final_loss, hjb_residual, fp_residual (RMS on fresh points),
    steps, lbfgs_steps, history (per-step lists: loss, each term, lambda, lr, ...), weights,
    device, dtype, stopped_reason and checkpoint.
    """
    if not isinstance(problem, (MFGProblem, MultiPopulationProblem)):
        raise ProblemError(f"problem must be an MFGProblem or a MultiPopulationProblem, got {type(problem).__name__}")
    config = _settings(config, overrides, workdir)
    if not isinstance(problem, MultiPopulationProblem):
        # Refuse a run whose collocation points cannot fit before anything is allocated (the grid
        # solver checks its own system likewise in solve_grid; populations check each one's).
        check_solver_memory(problem, config)
    # Under torchrun (WORLD_SIZE > 1) join the process group: data-parallel training
    # (mfgnet.neural.distributed); a no-op in a single process.
    init_from_env(config.device)
    threads = torch.get_num_threads()
    if config.cpu_threads:
        torch.set_num_threads(config.cpu_threads)
    try:
        if isinstance(problem, MultiPopulationProblem):
            from mfgnet.neural.populations import solve_neural_populations

            return solve_neural_populations(problem, config, callback=callback)
        trainer = Trainer(problem, config, logger=callback, monitor=monitor)
        trainer.run()
        return finish(trainer)
    finally:
        torch.set_num_threads(threads)


def _settings(config, overrides: dict, workdir) -> NeuralSolverConfig:
    if config is None:
        config = NeuralSolverConfig()
    elif isinstance(config, dict):
        config = NeuralSolverConfig.from_dict(config)
    elif not isinstance(config, NeuralSolverConfig):
        raise ProblemError(f"config must be a NeuralSolverConfig or a dict, got {type(config).__name__}")
    if overrides:
        config = config.replace(**overrides)
    if config.checkpoint_dir is None and workdir is not None:
        config = config.replace(checkpoint_dir=str(Path(workdir) / "checkpoints"))
    return config


def networks_solution(problem: MFGProblem, config: NeuralSolverConfig | dict | None, state: dict) -> NeuralSolution:
    """A solution from saved weights (``solution.networks.state_dict()``) and the config they were trained
    with: the networks are built as the solver builds them and loaded; no training, no diagnostics."""
    config = _settings(config, {}, None)
    if config.model.free_mass_at_start is None and "norm_log_mass0" not in state:
        # saved before the free part's mass at t = 0 was held by the form (model.free_mass_at_start): its form
        config = config.replace(model=config.model.replace(free_mass_at_start=False))
    nets = MFGNetworks(problem, config.model, torch.Generator().manual_seed(config.seed or 0))
    nets = nets.to(dtype=torch.float64 if config.dtype == "float64" else torch.float32)
    nets.load_state_dict(state)
    nets.eval()
    lam = float(nets.lam.detach()) if problem.is_ergodic else None
    return NeuralSolution(problem, nets, None, ergodic_constant=lam)


def finish(trainer: Trainer) -> NeuralSolution:
    """The trained networks as a solution, with the solver's own checks: residuals on fresh points, the
    fixed-point gaps (d <= 2), ``converged``, and a diagnosis (and one RuntimeWarning) when it misses."""
    problem, config = trainer.problem, trainer.cfg
    trainer._finalise_normalisation(fine=True)
    check = residual_check(trainer)
    mass_drift = _mass_drift(trainer)
    steps_done = trainer.step
    history = trainer.history
    final_loss = history["loss"][-1] if history.get("loss") else float("nan")
    hjb_rms, fp_rms, lam = check["hjb"], check["fp"], check["lambda"]
    # The solver's own check: the RMS of every equation it solves on fresh points, the PDEs and the
    # conditions that are not exact by construction (terminal, initial, no-flux, mass) alike.
    residual = check_residual(check)
    clean = trainer.stopped_reason is None and math.isfinite(residual)  # no NaN stop, a finite residual
    residual_ok = clean and residual <= config.tolerance
    extra = {"final_loss": final_loss, "hjb_residual": hjb_rms, "fp_residual": fp_rms,
             "check_terms": dict(check["terms"]), "check_laplacian": check["laplacian"], "steps": steps_done,
             "lbfgs_steps": trainer.lbfgs_done, "lbfgs_guard": trainer.lbfgs_guard_info,
             "lbfgs_stop": trainer.lbfgs_stop, "history": history,
             "weights": dict(trainer.weights),
             "device": str(trainer.device), "dtype": config.dtype, "stopped_reason": trainer.stopped_reason,
             "checkpoint": trainer.checkpoint_path, "hutchinson": trainer.hutchinson,
             "fp_form": "relative" if fp_relative(problem, config.loss) else "density", "kind": "neural",
             "world_size": trainer.dp.world,
             "mass_drift": mass_drift, "hard_terminal": trainer.nets.hard_terminal,
             "hard_initial": trainer.nets.hard_initial, "renormalise": trainer.nets.renormalise,
             "fourier_features": fourier_feature_count(problem, config.model),
             "warm_start": trainer.warm_start_info}
    trainer.nets.eval()
    solution = NeuralSolution(problem, trainer.nets, None, ergodic_constant=lam)
    eq = _equilibrium_check(solution, config)
    extra["residual_ok"] = residual_ok
    if eq is not None:
        extra.update(eq.record())
    # The fixed-point check decides where it can: both gaps passing certify the pair whatever the residual's
    # size, a failed gap vetoes a residual that passes (mfgnet.neural.equilibrium).  A NaN stop never converges.
    converged, extra["converged_by"] = decide(residual_ok, eq) if clean else (False, None)
    if residual_ok and not converged and eq is not None and eq.vetoes:
        extra["diagnosis"] = vetoed_diagnosis(residual, config.tolerance, eq)
    elif not converged:
        extra["diagnosis"] = with_check_clauses(diagnose(trainer, check, mass_drift, residual), eq)
    elif eq is not None and not eq.certifies and eq.unresolved():
        # converged by the residual check alone: say that the fixed-point check could not confirm it
        extra["equilibrium_check"] = eq.unresolved()
        warnings.warn(f"neural solver on {problem.name!r}: converged by the residual check; {eq.unresolved()}",
                      RuntimeWarning, stacklevel=3)
    if not converged:
        warnings.warn(f"neural solver on {problem.name!r}: {extra['diagnosis']['summary']}", RuntimeWarning,
                      stacklevel=3)
    solution.diagnostics = Diagnostics(
        converged=converged, iterations=steps_done, residual=residual,
        residual_history=list(trainer.residual_history), wall_time_s=trainer.elapsed, extra=extra)
    return solution


def vetoed_diagnosis(residual: float, tolerance: float, eq) -> dict:
    """The diagnosis of a run whose residual passes but whose fixed-point check vetoes ``converged``: which
    gap failed, and what to try."""
    verdicts = eq.verdicts()
    if verdicts.get("crowd") == "fail":
        dominant, advice = "crowd_gap", [_CROWD_ADVICE, _SEED_ADVICE]
    elif verdicts.get("value") == "fail":
        dominant, advice = "value_gap", [_VALUE_ADVICE]
    else:
        dominant, advice = "equilibrium_distance", [_DISTANCE_ADVICE, _SEED_ADVICE]
    return {"dominant": dominant, "advice": advice, "summary": (
        f"residual {residual:.2e} <= tolerance {tolerance:.1e}, but {eq.failures()}: the networks "
        f"settled in a state the residual check does not see; try: {'; '.join(advice)}")}


def with_check_clauses(diagnosis: dict, eq) -> dict:
    """A failed residual's diagnosis (:func:`diagnose`, or its stored summary) with
    the fixed-point check's clauses appended: both gaps and the distances to the grid's equilibrium, what the
    check could not decide, and another seed among the advice where the crowd gap fails (else what to try where a
    distance fails).  ``eq`` None (no check ran) leaves it as it is."""
    if eq is None:
        return diagnosis
    diagnosis["summary"] += f"; and {eq.summary()}"
    if eq.unresolved():
        diagnosis["summary"] += f"; {eq.unresolved()}"
    verdicts = eq.verdicts()
    if verdicts.get("crowd") == "fail":
        diagnosis.setdefault("advice", []).append(_SEED_ADVICE)
        diagnosis["summary"] += f"; try also {_SEED_ADVICE}"
    elif "fail" in (verdicts.get("equilibrium_m"), verdicts.get("equilibrium_u")):
        diagnosis.setdefault("advice", []).append(_DISTANCE_ADVICE)
        diagnosis["summary"] += f"; try also {_DISTANCE_ADVICE}"
    return diagnosis


# The fixed-point check vetoes `converged` only where a gap exceeds the tolerance by more than its
# grid's estimated error, because the extrapolated answer is not reliably more accurate than that
# estimate.  Sometimes it is (lq_offset_1d with the exact policy: estimate 7.1 %, extrapolated crowd
# 1.8 % off), sometimes not: on lq_offset_2d (64² cells on a box 6 wide, a crowd of std 0.2) the
# estimate is 24 % and the extrapolated crowd still 17 % off the exact m (the check reported the
# networks' m "32 % off the crowd of u's feedback" where m and 20000 particles simulated under u
# agreed to 1 % in mean and 3 % in variance; results/neural_zoo/means.md, twenty-fourth session), and
# on B2 d = 2 the networks' m, 0.04 % off the exact one, was 5.2 % off the extrapolated crowd whose
# estimate was 6.3 % (twenty-eighth session).  For the same reason a gap certifies only where its
# grid's error is within the tolerance too (mfgnet.neural.equilibrium.verdict).
_CROWD_ADVICE = ("the crowd jumps where few collocation points are (often at t ≈ 0): sampler.kind=density, "
                 "more sampler.time_slices, warm_start=grid, or the grid solver (solver=grid) in 1D/2D")
# Where the density network left the crowd u steers, the state a run ends in can depend on the seed, and
# even on float32 round-off: the zoo's box_wall_push_2d 9.2 / 26.9 % in m with seeds 0 / 1,
# torus_power_two_1d 3.8 / 10.8 %, box_narrow_far_1d with compiled jets (the same arithmetic in another
# order) 1.7 / 37 / 1.6 % with seeds 0 / 1 / 2 (results/neural_zoo/means.md, thirty-second to thirty-fourth
# sessions); box_narrow_far_1d 1.4 / 36.5 / 1.3 % (forty-second; seed 1 1.6 % since its free part's mass at t = 0
# is held: loss.mass_at_start in the forty-ninth session, model.free_mass_at_start since the fiftieth),
# torus_power_two_1d 3.8 / 10.8 / 9.3 % with today's defaults.  The gaps say which run to keep.
# Where the check's largest |HJB| or |FP| lies at t ≤ this fraction of T, the residual's layer is the first
# transient (on the zoo's 2D boxes the first slices' times ≈ 0.011 T).
EARLY_PEAK_FRACTION = 0.05

_SEED_ADVICE = ("another seed (seed=N): on the hardest problems of results/neural_zoo runs land in better or worse "
                "states by seed (two crowds on the circle under H = |p|⁴/4 3.8 % or 10.8 % off in m); keep the run "
                "with the smaller gaps")
# Both gaps pass but the pair is off the grid's equilibrium: the fixed-point map amplifies small gaps (the zoo's
# lq_terminal_pull_1d: gaps 0.2 % and 0.6-0.8 %, m 4.6-8.8 % off; results/neural_zoo/means.md, thirty-seventh
# session).  The grid's answer is at hand in d <= 2.
_DISTANCE_ADVICE = ("more steps, or the grid solver (solver=grid) in 1D/2D, whose equilibrium the check has just "
                    "computed (each half of the pair is close to the other's answer but the pair is off the "
                    "equilibrium: the fixed-point map amplifies small gaps)")
_VALUE_ADVICE = ("u is not the value of the best response to m: more steps, loss.hjb=10, or the grid solver "
                 "(solver=grid) in 1D/2D")


def _equilibrium_check(solution: NeuralSolution, config: NeuralSolverConfig):
    """`mfgnet.neural.equilibrium.equilibrium_check` of the trained networks, or None where it does
    not run (ergodic problems, d > 2, ``equilibrium_tolerance=None``)."""
    from mfgnet.neural import equilibrium

    if not equilibrium.applies(solution.problem, config.equilibrium_tolerance):
        return None
    return equilibrium.equilibrium_check(solution, config.equilibrium_tolerance, progress=config.progress)


_ADVICE = {
    "hjb": "the HJB residual dominates: train longer (steps) or widen the network (model.width)",
    "fp": "the Fokker-Planck residual dominates: if it peaks near t = 0 or where m0 is narrow, use "
          "sampler.kind=density or residual and more sampler.time_slices; else more steps",
    # With density points already on (the default on time-dependent 1D and 2D boxes) the advice above would
    # name what the run did; more points per step did not replace steps on the 2D boxes (forty-third session:
    # box_bump_2d 4.65 % with 512 points and 11000 steps, 4.70 % with 1024 and 9000, 4.89 % with 2048 and 6000).
    "fp_density": "the Fokker-Planck residual dominates (with density-following points already on): more steps",
    "terminal": "u(T) misses G: G depends on m so it is a loss term; raise loss.terminal or use "
                "loss.adaptive=grad_norm",
    "initial": "m(0) misses m0: set model.hard_initial=auto (exact by construction) or raise loss.initial",
    "boundary_u": "the no-flux condition on u is violated: raise loss.boundary and sampler.n_boundary",
    "boundary_m": "the no-flux condition on m is traded against the residuals (mass leaves through a face and "
                  "the renormalisation spreads it over the box): raise loss.boundary (10 instead of 1 took the "
                  "zoo's box_noisy_long_1d from rel L2 m 0.136 to 0.020; 4x sampler.n_boundary did not help there)",
    "mass": "the mass penalty is not met: model.renormalise=true (bounded domains, R^d with d ≤ 2) or raise loss.mass",
    # With renormalised mass the mass term is the free part of m's blend leaving m0's mass while m0 fades: m then
    # jumps at t = 0+, between the slices (seventeenth session); box_narrow_far_1d's seed 1 ends there (m 37 %
    # off, the term 82 % of the residual; forty-second session), and leaves it with model.free_mass_at_start (the free
    # part carries m0's mass at t = 0 by construction; fiftieth session).
    "mass_blend": "the mass term dominates: the free part of m's blend carries another mass than m0 while m0 "
                  "fades, so m jumps just after t = 0 (where no time slice looks); try another seed (seed=N) "
                  "or raise loss.mass",
    "free_mass_at_start": "model.free_mass_at_start=true gives the free part m0's mass at t = 0 by construction (the "
                          "default on 1D boxes, where it took the zoo's narrow crowd at a face from 23.0 % to 1.3 % in "
                          "m on the seed that had landed there)",
}


def _loss_weight(trainer: Trainer, term: str, default: Callable) -> float:
    """The weight of loss ``term`` in use: the config's, or ``default(problem)`` where it is None (a Trainer resolves
    it on construction; the diagnosis is also called with unresolved configs)."""
    value = getattr(trainer.cfg.loss, term)
    return value if value is not None else default(trainer.problem)


def diagnose(trainer: Trainer, check: dict, mass_drift: float | None, residual: float) -> dict:
    """Why the run missed its tolerance: the dominant term, where the PDE residual peaks in (t, x),
    whether the mass drifted, and what to try."""
    terms = check["terms"]
    finite = {k: v for k, v in terms.items() if math.isfinite(v)}
    dominant = max(finite, key=finite.get) if finite else "hjb"
    shares = {k: (v ** 2 / residual ** 2 if residual > 0 and math.isfinite(residual) else float("nan"))
              for k, v in terms.items()}
    worst = check["worst"]
    key = dominant
    if dominant == "fp" and resolve_kind(trainer.cfg.sampler.kind, trainer.problem) != "uniform":
        key = "fp_density"
    if dominant == "mass" and getattr(trainer.nets, "renormalise", False):
        key = "mass_blend"
    advice = [_ADVICE.get(key, "train longer")]
    if key == "mass_blend" and not getattr(trainer.nets, "free_mass_at_start", False):
        advice.append(_ADVICE["free_mass_at_start"])
    if dominant in ("hjb", "fp"):
        advice.append(_lbfgs_advice(trainer))
    if dominant == "hjb" and trainer.problem.domain.periodic and not trainer.problem.is_ergodic \
            and trainer.cfg.sampler.time_adaptive == 0:
        # With FP weight 1 (twenty-first session) 0.5 lowered rel L2 u on all five circle rows (torus_power_1d
        # 0.077 -> 0.019) and every box row got worse.  With the circle's FP weight 0.1 (twenty-sixth) it is
        # mixed: torus_power_two_1d 0.093 / 0.047 -> 0.069 / 0.036 and torus_low_noise_1d 0.0087 -> 0.0053, but m
        # worse on the other four (torus_power_1d 0.013 -> 0.023): results/neural_zoo/means.md.
        advice.append("sampler.time_adaptive=0.5 puts slice times where the residual is (on the zoo's circle it "
                      "helped the hardest row and low noise, and cost m on the other four: compare)")
    box = trainer.problem.domain.bounded and not trainer.problem.domain.periodic
    hjb_weight = _loss_weight(trainer, "hjb", default_hjb_weight)
    if dominant == "hjb" and box and not trainer.problem.is_ergodic and hjb_weight <= 1.0:
        # Weight 10 (the default on R^d and on 1D and 2D boxes, there with HJB_DENSITY_2D_BOX) on the zoo's boxes:
        # box_narrow_far_1d 0.077 -> 0.018, seven more 1D rows gained; on 2D boxes with hjb_density 1 three rows
        # gained 1.2-3x (results/neural_zoo/means.md, twenty-fifth to thirty-second sessions).
        advice.append("loss.hjb=10 weighs the HJB residual more (the default on R^d and on 1D and 2D boxes, where "
                      f"it took a narrow crowd 7.7 -> 1.8 %; on 2D boxes with loss.hjb_density={HJB_DENSITY_2D_BOX:g}"
                      "): compare with the grid")
    if dominant == "hjb" and box and trainer.problem.dim == 1 and not trainer.problem.is_ergodic \
            and hjb_weight > 1.0 and not getattr(trainer.nets, "terminal_layer", False):
        # Its default turns it on from corner strength 4 (networks.default_terminal_layer); below that it was
        # measured to hurt (box_noisy_long_1d, strength 1.3: 0.011 -> 0.040; twenty-seventh session).
        advice.append("model.terminal_layer=true puts HJB's layer at the faces G rises into in u's form (on by "
                      "default where G's slope s into a face makes s² ν^1.5 √T ≥ 4: a crowd pushed against the "
                      "opposite face went 6.1 -> 1.4 % with it; below that a crowd ending inside the layer went "
                      "1.1 -> 4.0 %): compare")
    if dominant in ("hjb", "fp") and trainer.problem.domain.bounded and not trainer.problem.is_ergodic \
            and trainer.cfg.loss.weak_fp == 0:
        # The weak form alone (fp 0, weak_fp 100) on the zoo's misses: box_narrow_far_1d 0.077 / 0.032 -> 0.029 /
        # 0.0066, u 0.5-0.8 % on three more, but m lost on box_wall_push_1d 0.017 -> 0.071-0.090 and
        # torus_power_two_1d 0.093 -> 0.145 (results/neural_zoo/means.md, twenty-ninth session).
        advice.append("loss.fp=0 loss.weak_fp=100 trains m on the weak form of FP instead (no derivatives of m: on "
                      "the zoo a narrow crowd far from its target went 7.7 -> 2.9 % in m and 3.2 -> 0.7 % in u, but "
                      "a crowd against a face 1.7 -> 7-9 % and two crowds on the circle 9.3 -> 14.5 %): compare")
    fp_weight = _loss_weight(trainer, "fp", default_fp_weight)
    if dominant == "fp" and fp_weight < 1.0 and not trainer.problem.is_ergodic:
        # A light FP term (the default 0.1 on the time-dependent circle and 2D boxes) leaves the FP residual the
        # largest on purpose: weight 1 lowers it but leaves m further off (the 2D boxes, seed 0: bump 2.6 -> 4.3 %,
        # corner 8.1 -> 10.7 %; results/neural_zoo/means.md, twenty-sixth and forty-seventh sessions).
        advice.append(f"the FP residual weighs {fp_weight:g} here (loss.fp; 0.1 by default on the time-dependent "
                      "circle and 2D boxes, where weight 1 lowered this residual but left m further off the "
                      "reference, e.g. a bump in a 2D box 2.6 -> 4.3 %): its size is partly the weight's")
    if dominant in ("hjb", "fp") and trainer.problem.dim == 1 and not trainer.problem.is_ergodic \
            and resolve_time_warp(trainer.cfg.sampler.time_warp, trainer.problem) == "uniform":
        # Importance-weighted slice times crowding t = 0 and T (thirtieth and thirty-first sessions, one seed each;
        # "auto" picks them on the circle, where m gained on four of the six rows and u on five, and on R, two of
        # three): on the 1D boxes a wash (box_bump_1d 0.015 -> 0.011, box_wall_push_1d 0.017 -> 0.012,
        # box_noisy_long_1d 0.0135 -> 0.0165, box_narrow_far_1d u 0.032 -> 0.023 with m as before); worse on the
        # 2D boxes: results/neural_zoo/means.md.
        advice.append("sampler.time_warp=ends (auto: ends on the circle and R only) crowds the slice times at t = 0 "
                      "and T with importance weights (the same loss, sampled where its layers are: on the zoo's "
                      "circle two crowds went 4.7-4.9 -> 1.1-1.5 % in u on two seeds, m 9.3 -> 3.8 % on one and "
                      "9.2 -> 10.8 % on the other; on its 1D boxes m moved 0.7-1.2x): compare")
    first_slices = EARLY_PEAK_FRACTION * (trainer.problem.horizon or 0.0)
    peaks_early = any(w.get("t") is not None and w["t"] <= first_slices for w in worst.values())
    if on_time_dependent_2d_box(trainer.problem) and peaks_early \
            and resolve_time_warp(trainer.cfg.sampler.time_warp, trainer.problem) == "uniform":
        # Forty-fourth session (results/neural_zoo/means.md): box_wall_corner_2d, a narrow crowd that congestion
        # spreads within a few hundredths of T, m 19.1 / 19.1 / 19.5 -> 13.5 / 18.7 / 16.8 % on seeds 0 / 1 / 2
        # (60 -> 10-12 % at t = 0.05, later times worse; u 4.7 / 4.4 / 4.6 -> 2.9 / 6.4 / 5.6 %); seed 0
        # elsewhere: box_bump_2d 4.70 -> 5.20 %, box_wall_push_2d 9.24 -> 8.97 %, box_two_crowds_2d 3.23 -> 4.32 %.
        # With loss.boundary=10 as well (its no-flux term on u dominates under the warp): 10.7 / 12.8 / 11.3 % in m,
        # u 0.91 / 1.06 / 0.76 %; loss.boundary=10 alone 19.4 % (seed 0).  The pair is the default on time-dependent
        # 2D boxes since the forty-fifth session (LossConfig.boundary's comment): advised where a run set uniform.
        advice.append("the residual peaks in the first slices: sampler.time_warp=early crowds the slice times at "
                      "t = 0 with importance weights, with loss.boundary=10 (on the zoo a narrow crowd that "
                      "congestion spreads within a few hundredths of T went 19-20 -> 10.7-12.8 % in m and 4.4-4.7 -> "
                      "0.8-1.1 % in u on three seeds, the warp alone 13.5-18.7 % and u worse on two; the warp alone "
                      "took two crowds 3.2 -> 4.3 % and a smooth bump 4.7 -> 5.2 %): compare")
    if dominant == "hjb" and not trainer.problem.domain.bounded and not trainer.problem.is_ergodic \
            and trainer.cfg.sampler.hjb_fraction == 0 and trainer.problem.dim <= 2:
        # (1, 6): lq_offset_1d 0.023 -> 0.0059, lq_offset_2d 0.135 -> 0.011; two crowds got worse
        # (r_two_crowds_1d 0.022 -> 0.065); B2 at d = 10 did not move: results/neural_zoo/means.md,
        # twenty-fourth session.  Where G grows faster than quadratically the wide points' HJB residual
        # is huge and training diverges (r_split_1d, G = (x² - 1)²: stopped at step ~200; twenty-fifth).
        advice.append("for a single crowd and costs at most quadratic in x, sampler.hjb_fraction=1 "
                      "sampler.hjb_bandwidth=6 adds HJB points wider than the crowd, which pin the curvature of u "
                      "that steers it (off-centre LQ on R 2.3 -> 0.6 %, on R² 13.5 -> 1.1 %; not for several "
                      "crowds: two crowds on R 2.2 -> 6.5 %; a quartic G diverged)")
    if not trainer.problem.domain.bounded and not trainer.problem.is_ergodic and trainer.warm_start_info is None \
            and trainer.problem.dim > gaussian_start.AUTO_MAX_DIM:
        # Twenty-eighth session (seed 1, 4000 steps, B5 600; results/neural_dimension/README.md): a narrow crowd far
        # from where G pulls it at d = 10 (B2 κ = 2, ν = 0.05, x̄0 = 2, s0 = 0.05) 0.543 -> 0.092 with the start;
        # with B2's and B5's default parameters it lost (0.0125 -> 0.022, 0.0020 -> 0.0092), B7 d = 10 0.033 -> 0.030.
        advice.append("warm_start=gaussian plays the game among Gaussian crowds first (off above d = 2 by default: at "
                      "d = 10 it took a narrow crowd far from its target 54 -> 9 % in m, but LQ and log-congestion "
                      "with their default parameters 1.3 -> 2.2 % and 0.2 -> 0.9 %: compare)")
    drifted = mass_drift is not None and mass_drift > 1e-3
    if drifted:
        advice.append(f"the mass drifted by {mass_drift:.1e}: " + _ADVICE["mass"])
    if trainer.nets.hard_initial == "blend" and dominant == "fp" and HeatFlow.build(trainer.problem) is not None:
        # On the zoo (12000 steps): torus_bimodal_1d 0.106 -> 0.033 in m, torus_power_1d 0.048 -> 0.067.
        advice.append("model.hard_initial=heat makes the early spreading of a narrow crowd exact (it fixed "
                      "one zoo problem and hurt another: results/neural_zoo/means.md)")
    if trainer.problem.dim <= 2:
        # Measured on the zoo: a 2 % fit to a coarse grid solve drifts to 9-12 % under the residual
        # loss, and cold training stays at 10-30 % on narrow or fast-moving crowds; in 1D/2D the
        # grid is the reliable answer.
        # Not warm_start=grid on R^d: on lq_offset_1d it ended at rel L2 m 13.8 (the Gaussian start: 0.028).
        advice.append("in 1D/2D the grid solver (solver=grid) solves this problem directly" + (
            "; warm_start=grid starts the networks from a coarse grid solve" if trainer.problem.domain.bounded
            else " on its bounding box"))
    if trainer.warm_start_info and trainer.warm_start_info.get("stopped"):
        advice.append(f"the Gaussian start stopped early ({trainer.warm_start_info['stopped']})")
    if trainer.stopped_reason:
        advice.insert(0, "training stopped early (" + trainer.stopped_reason.split(";")[0] + "): lower optim.lr")
    where = ", ".join(f"|{k}| max {w['value']:.2e} at t={w['t']}, x={w['x']}" for k, w in worst.items())
    summary = (f"residual {residual:.2e} > tolerance {trainer.cfg.tolerance:.1e}; dominant term {dominant} "
               f"({100 * shares.get(dominant, float('nan')):.0f} % of the squared residual); {where}; "
               f"mass drift {'n/a' if mass_drift is None else f'{mass_drift:.1e}'}; try: " + "; ".join(advice))
    return {"dominant": dominant, "shares": shares, "worst": worst, "mass_drift": mass_drift,
            "mass_drifted": drifted, "advice": advice, "summary": summary}


def _lbfgs_advice(trainer: Trainer) -> str:
    """What to say about the L-BFGS finish: add it, give it more iterations, or why more will not help."""
    info = trainer.lbfgs_guard_info
    if info is not None and info["rolled_back"]:
        return (f"not more L-BFGS: its guard rolled the finish back to {info['kept']} iterations (the residual "
                f"check rose from {info['start']:.2g} to {info['checks'][-1]:.2g})")
    if trainer.lbfgs_done:
        return f"more optim.lbfgs_steps (the finish made {trainer.lbfgs_done} iterations and kept them)"
    return "add optim.lbfgs_steps (a float64 L-BFGS finish after Adam)"


@torch.no_grad()
def _mass_drift(trainer: Trainer) -> float | None:
    """max over 11 times of |∫m(t) - 1| by midpoint quadrature on the bounding box (time-dependent
    problems on a bounded domain, or renormalised on R^d; None elsewhere)."""
    problem = trainer.problem
    if problem.is_ergodic or not (problem.domain.bounded or trainer.nets.renormalise) or problem.dim > 3:
        return None
    from mfgnet.neural.networks import fixed_quadrature

    y, logw = fixed_quadrature(problem)
    y = y.to(dtype=trainer.dtype, device=trainer.device)
    w = torch.exp(logw).to(dtype=trainer.dtype, device=trainer.device)
    drift = 0.0
    for t in torch.linspace(0.0, problem.horizon, 11).tolist():
        tt = torch.full((y.shape[0], 1), t, dtype=trainer.dtype, device=trainer.device)
        drift = max(drift, abs(float((w * trainer.nets.density(tt, y)).sum()) - 1.0))
    return drift


