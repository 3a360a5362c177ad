"""Warm start of the neural solver on R^d: Gaussian fictitious play.

On R^d the residual training starts from u ≈ 0 and m = m0 at every t, and the collocation
points follow particles simulated under the current u.  When the crowd must travel far (the
zoo's lq_offset problems: eight m0-widths), the Fokker–Planck residual moves the density
network's mass there too slowly and training stalls or blows up (lq_offset_1d: rel L2 m 0.75
after 4000 steps, 2.1e3 after 12000).  The particles themselves are the Fokker–Planck solution
for the current u (in law), so this start takes m from them instead:

1. the density network is left out of the density field, so m is the Gaussian base alone, whose
   mean and log-width are polynomials in t/T (``MFGNetworks.base_motion``);
2. every ``REFRESH_EVERY`` steps the particles are simulated under the current u with
   ``PARTICLE_STEPS`` Euler–Maruyama steps and the base is set to the least-squares fit of their
   per-time mean and log standard deviation (averaged with the previous fits, as fictitious
   play averages best responses);
3. between refreshes u_θ takes Adam steps on its own loss terms (HJB, terminal) with m fixed;
4. at the end the density network is fitted so that m(t) is m0 carried along by the base's
   affine motion (:func:`carry_initial_shape`): exact for a Gaussian m0, the shape of m0 otherwise.

That is the mean field game restricted to Gaussian crowds, exact for linear-quadratic problems
and a first guess elsewhere; the residual training then corrects both networks, u alone for its
first ``optim.u_first_steps`` (by default an eighth of the steps after this start: full-rate Adam
steps on both networks at once threw the start's close pair far off on lq_sharp_pull_1d).  Measured on
lq_offset_1d (results/neural_zoo/means.md, sixth and fortieth sessions).
"""

from __future__ import annotations

import logging
import math
import time
import warnings

import torch

from mfgnet.neural.losses import U_TERMS
from mfgnet.neural.warmstart import _adam_fit, cosine_factor  # the supervised fits' Adam loop and schedule
from mfgnet.progress import progress_bar

log = logging.getLogger(__name__)

# Euler–Maruyama steps of the particle paths during the start (sampler.particle_steps, 32, only
# places points): the fitted path inherits the scheme's error, which is first order; estimated for
# lq_offset_1d (a ≈ 1.4, T = 2), 1 - a dt against e^{-a dt} is 0.4 % per step with 32 steps, about
# 12 % of the distance travelled, and a quarter of that with 128.
PARTICLE_STEPS = 128
# Adam steps of u between two refreshes of the particles and of the Gaussian fit, and the paths of a refresh
# (the residual training's own cloud keeps sampler.particles).  Why: the refreshes were ~60 % of the start's
# time (lq_terminal_pull_1d, 300 start steps, one thread: 31 refreshes of 2048 paths took 20 s of 34 s) and
# the start about half of an R row's wall.  Every 20 with 1024 instead of every 10 with 2048: the start
# 0.59x (300 steps, A B A B A B, medians); on the zoo's R rows (forty-first session, results/neural_zoo/
# means.md) every row but one stayed within the error targets on every seed run (m 0.03-2.3 % -> 0.03-1.96 %),
# but the sharp pull (lq_sharp_pull_1d, a miss either way) went 6.2 / 25 / 21 % -> 32 / 61 / 17 % in m on seeds
# 0 / 1 / 2 (every 20 with 2048: 17 / 46 %): our reading: its fixed-point map amplifies an error
# in the crowd's mean some 20-fold.
REFRESH_EVERY = 20
START_PARTICLES = 1024
# Weight of the newest least-squares fit in the running average of the base's coefficients
# (at least; 1/k for the k-th fit before that).
FIT_AVERAGE = 0.3
# The shape fit after the play (carry_initial_shape): Adam steps, points per step, and the floor of
# the target log(m0 / its Gaussian fit) where m0's tails are thinner than the fit's (a bimodal m0's
# log-ratio falls to -inf there and would take the whole fit).  A floor on m0 itself instead
# (1e-4 of the peak) forced large positive targets in the far tails of a Gaussian m0 (RMS 0.08-0.2
# where the exact target is ~0).
SHAPE_STEPS = 1000
SHAPE_BATCH = 1024
LOG_SHAPE_FLOOR = math.log(1e-4)


# "auto" starts this way up to this dimension.  Above it the per-coordinate moments of the particle
# cloud carry sampling noise into every coordinate of m: at d = 10 the start made m worse (B2, 2000
# residual steps: rel L2 m 0.025 -> 0.045; B5 time-dependent, 600 steps: 1.0e-3 -> 2.8e-3), where in
# 1D/2D it won (lq_offset_1d 0.751 -> 0.028, lq_offset_2d 1.08 -> 0.19, B2 d = 1 0.011 -> 0.0016).
AUTO_MAX_DIM = 2


def applies(problem, nets) -> bool:
    """True where the Gaussian start can run: a time-dependent problem on R^d with a Gaussian base."""
    return (not problem.is_ergodic and not problem.domain.bounded and nets.base_motion is not None)


def project_cloud(cloud: torch.Tensor, nets) -> torch.Tensor:
    """Least-squares coefficients of the base motion for a particle cloud (K + 1, P, d) at the
    times k T / K: the per-time mean (in units of the input scale) and log of the std ratio,
    each on the basis (t/T)^j, j = 1..degree (zero at t = 0).  Returns (degree, 2, d)."""
    K = cloud.shape[0] - 1
    degree = nets.base_motion.shape[0]
    s = (torch.arange(K + 1, dtype=torch.float64) / K).unsqueeze(-1) ** torch.arange(1, degree + 1)
    base_mean, base_std = nets.base_mean.double().cpu(), nets.base_std.double().cpu()
    scale = nets.density_net.embed.scale.double().cpu()
    mean_units = (cloud.mean(1) - base_mean) / scale                 # (K + 1, d)
    log_ratio = torch.log(cloud.std(1).clamp_min(1e-12) / base_std)  # (K + 1, d)
    targets = torch.stack([mean_units, log_ratio], 1).reshape(K + 1, -1)
    # Normal equations (a degree × degree system, condition ~1e6 for degree 4 on [0, 1], fine in
    # float64) rather than lstsq, whose LAPACK driver gave run-to-run round-off differences that broke
    # the exact resume.
    return torch.linalg.solve(s.T @ s, s.T @ targets).reshape(degree, 2, -1)


def gaussian_start(trainer, steps: int) -> dict:
    """Run the Gaussian fictitious play on ``trainer`` (its networks and sampler, in place).

    A non-finite loss or gradient, or a loss above ``divergence_factor`` × the lowest seen for
    ``divergence_patience`` steps, ends the play early with u and the base restored to the
    lowest-loss state, and one RuntimeWarning (the residual training's own guard follows).

    Returns
    -------
    dict
        ``source`` ("gaussian"), ``steps`` (Adam steps of u taken), ``fits`` (particle refreshes),
        ``fit_time_s``, ``hjb`` (the last HJB loss term), ``shape_rms`` (see
        :func:`carry_initial_shape`) and ``stopped`` (None, or why the play ended early).
    """
    nets, sampler, cfg = trainer.nets, trainer.sampler, trainer.cfg
    nets.density_net_enabled = False
    params = nets.value_parameters()
    opt = torch.optim.Adam(params, lr=cfg.optim.lr)
    start = time.perf_counter()
    fits, hjb, stopped, done, above = 0, math.nan, None, 0, 0
    best, best_state = math.inf, _snapshot(params, nets)
    bar = progress_bar(steps, "gaussian start", enabled=cfg.progress and trainer.dp.is_main, unit="step")
    for k in range(steps):
        if k % REFRESH_EVERY == 0:
            sampler.refresh_cloud(nets, particle_steps=PARTICLE_STEPS, particles=START_PARTICLES)
            fit = project_cloud(sampler.cloud, nets)
            if not torch.isfinite(fit).all():
                stopped = "non-finite particle cloud"
                break
            fits += 1
            weight = max(FIT_AVERAGE, 1.0 / fits)
            with torch.no_grad():
                nets.base_motion.mul_(1 - weight).add_(weight * fit.to(nets.base_motion))
        for g in opt.param_groups:  # cosine to 5 %, like the fits of mfgnet.neural.warmstart
            g["lr"] = cfg.optim.lr * cosine_factor(k, steps)
        batch, probes = trainer._draw(refresh=False)
        terms = trainer.compute(batch, probes).terms
        loss = trainer._weighted(terms, U_TERMS)  # this rank's slice under torchrun
        value = float(trainer._weighted(trainer.dp.mean_terms(terms), U_TERMS))  # every rank decides alike
        if not math.isfinite(value):
            stopped = "non-finite loss"
            break
        above = above + 1 if value > cfg.divergence_factor * best else 0
        if above >= cfg.divergence_patience:
            stopped = f"diverging loss ({value:.3g} > {cfg.divergence_factor:g} × the best {best:.3g})"
            break
        if value < best:
            best, best_state = value, _snapshot(params, nets)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = g
        trainer.dp.average_gradients(params)  # before the check, so that every rank stops alike
        if not all(p.grad is None or torch.isfinite(p.grad).all() for p in params):
            stopped = "non-finite gradient"
            break
        torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else math.inf)
        opt.step()
        done += 1
        hjb = float(terms["hjb"].detach())
        bar.update(1)
        if k % REFRESH_EVERY == 0:
            bar.set_postfix_str(f"hjb {hjb:.2e}", refresh=False)
    bar.close()
    if stopped is not None:
        _restore(best_state, params, nets)
        warnings.warn(f"neural solver: the Gaussian start stopped at step {done}: {stopped}; u and the base "
                      f"restored to the lowest loss seen ({best:.3g}); lower optim.lr or use warm_start='off'",
                      RuntimeWarning, stacklevel=2)
    nets.density_net_enabled = True
    sampler.cloud = None  # the residual training simulates its own cloud under the final u
    shape_rms = carry_initial_shape(trainer)
    info = {"source": "gaussian", "steps": done, "fits": fits,
            "fit_time_s": time.perf_counter() - start, "hjb": hjb, "shape_rms": shape_rms, "stopped": stopped}
    log.info("gaussian start: %d steps, %d particle fits in %.1f s, HJB loss %.3g, shape fit RMS %.3g%s",
             info["steps"], fits, info["fit_time_s"], hjb, shape_rms,
             "" if stopped is None else f" (stopped: {stopped})")
    return info


def _snapshot(params, nets) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params] + [nets.base_motion.detach().clone()]


def _restore(state: list[torch.Tensor], params, nets) -> None:
    with torch.no_grad():
        for p, saved in zip(list(params) + [nets.base_motion], state):
            p.copy_(saved)


def carry_initial_shape(trainer, steps: int = SHAPE_STEPS) -> float:
    """Fit the density network so that m(t) is m0 carried by the base's affine motion.

    The Gaussian start leaves m(t) = N(mean(t), std(t)²), which at t = 0 is only m0's Gaussian
    fit: a bimodal m0 (r_two_crowds_1d) kept rel L2 m 0.89 at t = 0 (0.61 over [0, T]), the
    initial loss (100 % of the residual) unable to carve the second crowd back in.  The target
    field is net(t, x) = log m0(y) - log N(y; mean0, std0) with y = mean0 + (x - mean(t)) std0 / std(t),
    i.e. m(t, x) = m0(y) (std0 / std(t))^d: exact m(0) = m0 up to the fit, mass 1, and zero for a
    Gaussian m0.  Points: the base at uniform times, widened by 1.5.  Returns the last batch's RMS.
    """
    nets, problem, dtype, device = trainer.nets, trainer.problem, trainer.dtype, trainer.device
    gen = torch.Generator().manual_seed(int(trainer.cfg.seed) + 1)
    mean0, std0 = nets.base_mean.double().cpu(), nets.base_std.double().cpu()

    def batch_misfit() -> torch.Tensor:
        t = problem.horizon * torch.rand(SHAPE_BATCH, 1, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            mean_t, std_t = (v.double().cpu() for v in nets.base_moments(t.to(dtype=dtype, device=device)))
        x = mean_t + 1.5 * std_t * torch.randn(SHAPE_BATCH, problem.dim, generator=gen, dtype=torch.float64)
        y = mean0 + (x - mean_t) * std0 / std_t
        log_gauss = (-0.5 * ((y - mean0) / std0) ** 2 - torch.log(std0 * math.sqrt(2 * math.pi))).sum(-1)
        log_m0 = torch.log(problem.initial_density(y).clamp_min(torch.finfo(torch.float64).tiny))
        target = (log_m0 - log_gauss).clamp_min(LOG_SHAPE_FLOOR)
        out = nets.density_net(t.to(dtype=dtype, device=device), x.to(dtype=dtype, device=device))
        return out - target.to(dtype=dtype, device=device)

    loss = _adam_fit(list(nets.density_net.parameters()), steps, lambda: (batch_misfit() ** 2).mean())
    return math.sqrt(loss)
