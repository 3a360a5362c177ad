"""``solve_neural``: train u_θ and m_φ on a problem and return a :class:`NeuralSolution`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import torch

from mfgnet.neural.config import NeuralSolverConfig
from mfgnet.neural.distributed import init_from_env
from mfgnet.neural.losses import compute_losses
from mfgnet.neural.residuals import mfg_residuals
from mfgnet.neural.sampling import CollocationSampler
from mfgnet.neural.solution import NeuralSolution
from mfgnet.neural.trainer import Trainer
from mfgnet.problems import MFGProblem, ProblemError
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

    ``diagnostics.extra`` holds final_loss, hjb_residual, fp_residual (RMS on fresh points),
    steps, lbfgs_steps, history (per-step lists: loss, each term, lambda, lr, ...), weights,
    device, dtype, stopped_reason and checkpoint.
    """
    if not isinstance(problem, MFGProblem):
        raise ProblemError(f"problem must be an MFGProblem, got {type(problem).__name__}")
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

    # Under torchrun (WORLD_SIZE > 1) join the process group: data-parallel training
    # (mfgnet.neural.distributed); a no-op in a single process.
    init_from_env(config.device)
    threads = torch.get_num_threads()
    if config.cpu_threads:
        torch.set_num_threads(config.cpu_threads)
    try:
        trainer = Trainer(problem, config, logger=callback, monitor=monitor)
        trainer.run()
        trainer._finalise_normalisation(fine=True)
        hjb_rms, fp_rms, lam = _evaluate(trainer)
    finally:
        torch.set_num_threads(threads)
    steps_done = trainer.step
    history = trainer.history
    final_loss = history["loss"][-1] if history.get("loss") else float("nan")
    residual = math.sqrt(hjb_rms ** 2 + fp_rms ** 2)
    diagnostics = Diagnostics(
        converged=trainer.stopped_reason is None and math.isfinite(residual) and residual <= config.tolerance,
        iterations=steps_done, residual=residual, residual_history=list(trainer.residual_history),
        wall_time_s=trainer.elapsed,
        extra={"final_loss": final_loss, "hjb_residual": hjb_rms, "fp_residual": fp_rms, "steps": steps_done,
               "lbfgs_steps": trainer.lbfgs_done, "history": history, "weights": dict(trainer.weights),
               "device": str(trainer.device), "dtype": config.dtype, "stopped_reason": trainer.stopped_reason,
               "checkpoint": trainer.checkpoint_path, "hutchinson": trainer.hutchinson,
               "fp_form": config.loss.fp_form, "kind": "neural", "world_size": trainer.dp.world,
               "warm_start": trainer.warm_start_info})
    trainer.nets.eval()
    return NeuralSolution(problem, trainer.nets, diagnostics, ergodic_constant=lam)


def _evaluate(trainer: Trainer) -> tuple[float, float, float | None]:
    """RMS of the HJB and FP residuals on fresh points (own generator), and λ."""
    cfg = trainer.cfg
    gen = torch.Generator().manual_seed(cfg.seed + 7919)
    scfg = dataclasses.replace(cfg.sampler, kind="uniform", n_interior=cfg.n_eval, box_fraction=0.0)
    sampler = CollocationSampler(trainer.problem, scfg, trainer.dtype, trainer.device, gen,
                                 trainer.sampler.need_quadrature)
    sampler.cloud = trainer.sampler.cloud
    nets = trainer.nets
    if trainer.problem.is_ergodic and cfg.loss.normalization == "hard":
        saved_log_mass = nets.log_mass.clone()
    batch = sampler.draw(nets, step=1)
    probes = trainer._probes(batch.x.shape[0]) if trainer.hutchinson else None
    out = compute_losses(trainer.problem, nets, batch, cfg, probes)
    hjb = float(out.residuals.hjb.detach().pow(2).mean().sqrt())
    fp = float(out.residuals.fp.detach().pow(2).mean().sqrt())
    lam = None
    if trainer.problem.is_ergodic:
        if cfg.loss.normalization == "hard":
            with torch.no_grad():
                nets.log_mass.copy_(saved_log_mass)
        lam = _ergodic_constant(trainer, sampler) if not trainer.trainable_lambda else float(nets.lam.detach())
        if not math.isfinite(lam):
            lam = float(nets.lam.detach())
        with torch.no_grad():
            nets.lam.copy_(torch.as_tensor(lam))
    return hjb, fp, lam


def _ergodic_constant(trainer: Trainer, sampler: CollocationSampler) -> float:
    """λ = ∫(F - H + νΔu) / |Ω| on the periodic (shifted) grid rather than at random points:
    on the grid ∫Δu vanishes exactly, so λ carries no Monte Carlo noise of Δu."""
    n = {1: 4096, 2: 128 ** 2, 3: 32 ** 3}.get(trainer.problem.dim, 16384)
    y, _ = sampler.shifted_grid(n)
    y = y.to(dtype=trainer.dtype, device=trainer.device)
    t = torch.zeros(y.shape[0], 1, dtype=trainer.dtype, device=trainer.device)
    nets = trainer.nets
    probes = trainer._probes(y.shape[0])
    conv = None
    if not trainer.problem.coupling.is_local:
        return float(nets.lam.detach())  # the last training estimate (needs ∫K m per point otherwise)
    res = mfg_residuals(trainer.problem, nets.raw_value, nets.density_field, t, y,
                        density_output=nets.density_output, log_mass=nets.log_mass, conv=conv, probes=probes)
    return float(res.ergodic_constant)
