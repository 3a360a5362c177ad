"""The neural solver's own check: residuals of every equation on fresh points.

Used once at the end of a run (``converged``, the diagnosis) and, while L-BFGS runs on its one
fixed batch, as the held-out test that decides whether its iterations are kept
(``optim.lbfgs_guard``, `mfgnet.neural.trainer.Trainer.lbfgs`)."""

from __future__ import annotations

import dataclasses
import math

import torch

from mfgnet.neural.losses import compute_losses
from mfgnet.neural.residuals import mfg_residuals
from mfgnet.neural.sampling import CollocationSampler


def check_residual(check: dict) -> float:
    """The check's one number: the root of the summed squares of its terms' RMS (PDEs and conditions)."""
    return math.sqrt(sum(v ** 2 for v in check["terms"].values()))


# Largest dimension at which the final residual check differentiates the Laplacian exactly
# (d backward passes over n_eval points); above it the check uses the training's probes.
EXACT_CHECK_MAX_DIM = 32


def residual_check(trainer) -> dict:
    """The residual check on fresh points (own generator): RMS of the HJB and FP residuals and of
    every condition term present ("terms"), where |HJB| and |FP| peak ("worst"), and λ."""
    cfg = trainer.cfg
    gen = torch.Generator().manual_seed(cfg.seed + 7919)
    scfg = dataclasses.replace(cfg.sampler, kind="uniform", n_interior=cfg.n_eval, box_fraction=0.0,
                               time_warp="uniform")
    sampler = CollocationSampler(trainer.problem, scfg, trainer.dtype, trainer.device, gen,
                                 trainer.sampler.need_quadrature, slice_points=trainer.slice_points(),
                                 grid_quadrature=trainer.sampler.grid_quadrature)
    sampler.cloud, sampler.proposal = trainer.sampler.cloud, trainer.sampler.proposal
    nets = trainer.nets
    if trainer.problem.is_ergodic and cfg.loss.normalization == "hard":
        saved_log_mass = nets.log_mass.clone()
    batch = sampler.draw(nets, step=1)
    # The check uses the exact Laplacian up to EXACT_CHECK_MAX_DIM even when training estimates it,
    # so that `converged` does not depend on probe noise (B5 at d = 10 after 600 steps: 0.0153 with
    # the training's 4 probes, 0.0147 exact; small there, but larger for rougher networks).
    exact_check = trainer.problem.dim <= EXACT_CHECK_MAX_DIM
    probes = trainer._probes(batch.x.shape[0]) if (trainer.hutchinson and not exact_check) else None
    # the equations' residuals only: loss.hjb_gradient is a training device, not a residual of the MFG
    out = compute_losses(trainer.problem, nets, batch, cfg.replace(loss=cfg.loss.replace(hjb_gradient=0.0)), probes)
    hjb = float(out.residuals.hjb.detach().pow(2).mean().sqrt())
    fp = float(out.residuals.fp.detach().pow(2).mean().sqrt())
    terms = {"hjb": hjb, "fp": fp}
    terms.update({k: math.sqrt(max(float(v.detach()), 0.0)) for k, v in out.terms.items() if k not in terms})
    worst = {}
    fp_values = out.residuals.fp
    if batch.fp_scale is not None:  # undo the loss's per-slice scale; HJB-only points (scale 0) are no FP point
        fp_values = torch.where(batch.fp_scale > 0, fp_values.detach() / batch.fp_scale, 0.0)
    for key, values in (("hjb", out.residuals.hjb), ("fp", fp_values)):
        values = torch.nan_to_num(values.detach().abs(), nan=float("inf"))
        i = int(values.argmax())
        worst[key] = {"value": float(values[i]), "x": [round(v, 4) for v in batch.x[i].tolist()],
                      "t": None if trainer.problem.is_ergodic else round(float(batch.t[i, 0]), 4)}
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
    return {"hjb": hjb, "fp": fp, "terms": terms, "worst": worst, "lambda": lam,
            "laplacian": "hutchinson" if probes is not None else "exact"}


def _ergodic_constant(trainer, sampler: CollocationSampler) -> float:
    """λ = ∫(F - H + νΔu) / |Ω| on the periodic (shifted) grid rather than at random points:
    on the grid ∫Δu vanishes exactly, so λ carries no Monte Carlo noise of Δu.  On R^d, the mean
    of F - H + νΔu under m (importance samples of the proposal, self-normalised weights)."""
    problem = trainer.problem
    n = {1: 4096, 2: 128 ** 2, 3: 32 ** 3}.get(problem.dim, 16384)
    y, logw = sampler.quadrature(n, final=True)
    y = y.to(dtype=trainer.dtype, device=trainer.device)
    t = torch.zeros(y.shape[0], 1, dtype=trainer.dtype, device=trainer.device)
    nets = trainer.nets
    probes = trainer._probes(y.shape[0]) if problem.dim > EXACT_CHECK_MAX_DIM else None
    conv = None
    if not problem.coupling.is_local:
        return float(nets.lam.detach())  # the last training estimate (needs ∫K m per point otherwise)
    # λ = 0 in the call gives the HJB residual without λ as is (subtracting a mean over far-out
    # R^d points, where ln m is huge, and adding it back lost every digit in float32).
    zero = torch.zeros((), dtype=trainer.dtype, device=trainer.device)
    res = mfg_residuals(problem, nets.raw_value, nets.density_field, t, y, density_output=nets.density_output,
                        log_mass=nets.log_mass, ergodic_constant=zero, conv=conv, probes=probes)
    hjb = res.hjb.detach()
    logw = logw.to(hjb)
    # The (equal) grid weights on a bounded domain; the weights of m among the importance samples on R^d.
    w = torch.softmax(logw if problem.domain.bounded else logw + nets.density_field(t, y).detach(), 0)
    finite = torch.isfinite(hjb)
    if float(w[~finite].sum()) > 1e-9:  # non-finite where m has mass: no trustworthy λ here
        return float("nan")
    # Far out (ln m below the float's range) the residual can be ±inf, where m's weight is 0.
    return float(-(w * torch.where(finite, hjb, torch.zeros_like(hjb))).sum())
