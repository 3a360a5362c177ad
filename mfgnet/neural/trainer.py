"""The training loop: Adam (joint or alternating) with a schedule, optional L-BFGS finish,
adaptive loss weights, gradient clipping, a NaN/Inf guard, checkpoints and exact resume.

Everything random (initial weights, points, probes, particles) comes from one
``torch.Generator`` whose state is checkpointed with the optimiser states (the learning-rate
schedule is a function of the step),
so that ``resume=True`` after a kill continues bit for bit.  Checkpoints are read with
``weights_only=True`` and carry a fingerprint of the problem and settings; resuming refuses
one written for another run (see :mod:`mfgnet.neural.checkpoint`).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch

from mfgnet.neural import checkpoint, gaussian_start
from mfgnet.neural.check import check_residual, residual_check
from mfgnet.neural.checkpoint import CHECKPOINT_NAME
from mfgnet.neural.config import (
    NeuralSolverConfig,
    default_boundary_weight,
    default_fp_weight,
    default_free_mass_at_start,
    default_hjb_density,
    default_hjb_gradient,
    default_hjb_weight,
    default_interior_points,
    default_lbfgs_steps,
    default_steps,
    default_u_first_steps,
)
from mfgnet.neural.distributed import DataParallel
from mfgnet.neural.losses import M_TERMS, U_TERMS, compute_losses, fp_relative, log_mass_of
from mfgnet.neural.networks import MFGNetworks
from mfgnet.neural.residuals import mfg_residuals, rademacher
from mfgnet.neural.sampling import CollocationSampler, mass_grid_points
from mfgnet.neural.warmstart import default_warm_start_steps, initial_fit, warm_start
from mfgnet.problems import ProblemError
from mfgnet.progress import progress_bar

_WEIGHT_FIELD = {"hjb": "hjb", "fp": "fp", "terminal": "terminal", "initial": "initial", "boundary_u": "boundary",
                 "boundary_m": "boundary", "mass": "mass", "mean_zero": "mean_zero", "weak_fp": "weak_fp",
                 "hjb_gradient": "hjb_gradient"}

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training produced NaN/Inf (raised when ``on_nonfinite="raise"``)."""


class StepLoss(NamedTuple):
    """One step's loss before its backward pass (:meth:`Trainer.step_loss`)."""

    active: str  # the optimiser that steps: "joint", "u" or "m"
    backward: torch.Tensor  # the weighted loss to differentiate (this rank's points)
    terms: dict  # every term, averaged over ranks (logged; the guards decide on them)
    value: float  # the weighted loss of ``terms``


def step_optimiser(optimiser: torch.optim.Optimizer, params: list, grad_clip: float, lr_factor: float
                   ) -> float | None:
    """Clip the gradients of ``params`` (``grad_clip`` > 0), set every group's learning rate to
    ``base_lr × lr_factor`` and step; returns that rate, or None (no step) if the norm is not finite."""
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else math.inf)
    if not torch.isfinite(norm):
        return None
    for group in optimiser.param_groups:
        group["lr"] = group["base_lr"] * lr_factor
    optimiser.step()
    return optimiser.param_groups[0]["lr"]


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ProblemError("device='cuda' but CUDA is not available; use device='cpu' or 'auto'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    """Holds the networks, optimisers and sampler of one run; ``run()`` trains them."""

    def __init__(self, problem, cfg: NeuralSolverConfig, logger: Callable | None = None,
                 monitor: Callable | None = None, population: tuple[int, int] | None = None) -> None:
        """``population`` = (k, K): population k of K with one-hot input (``model.population_input``)."""
        if cfg.seed is None:  # no run-level seed given (a call from Python): seed 0
            cfg = cfg.replace(seed=0)
        if cfg.steps is None:
            cfg = cfg.replace(steps=default_steps(problem))
        if cfg.optim.lbfgs_steps is None:
            cfg = cfg.replace(optim=cfg.optim.replace(lbfgs_steps=default_lbfgs_steps(problem, cfg.steps)))
        if cfg.loss.hjb is None:
            cfg = cfg.replace(loss=cfg.loss.replace(hjb=default_hjb_weight(problem)))
        if cfg.loss.hjb_density is None:
            cfg = cfg.replace(loss=cfg.loss.replace(hjb_density=default_hjb_density(problem, cfg.loss.hjb)))
        if cfg.loss.hjb_gradient is None:
            cfg = cfg.replace(loss=cfg.loss.replace(hjb_gradient=default_hjb_gradient(problem)))
        if cfg.loss.fp is None:
            cfg = cfg.replace(loss=cfg.loss.replace(fp=default_fp_weight(problem)))
        if cfg.loss.boundary is None:
            cfg = cfg.replace(loss=cfg.loss.replace(boundary=default_boundary_weight(problem)))
        if cfg.model.free_mass_at_start is None:
            cfg = cfg.replace(model=cfg.model.replace(free_mass_at_start=default_free_mass_at_start(problem)))
        if cfg.sampler.n_interior is None:
            cfg = cfg.replace(sampler=cfg.sampler.replace(n_interior=default_interior_points(problem)))
        self.problem, self.cfg = problem, cfg
        self.logger, self.monitor = logger, monitor
        self.device = resolve_device(cfg.device)
        self.dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.nets = MFGNetworks(problem, cfg.model, self.gen, population).to(dtype=self.dtype, device=self.device)
        # Data-parallel ranks (torchrun): disabled, and every use below a no-op, in one process.
        self.dp = DataParallel()
        if self.dp.enabled and cfg.sampler.time_adaptive > 0:
            raise ProblemError("sampler.time_adaptive > 0 is not supported under data parallelism "
                               "(each rank would score its own slices); use 0")
        self.dp.broadcast_module(self.nets)
        if cfg.optim.u_first_steps is None:
            self.cfg = cfg = cfg.replace(optim=cfg.optim.replace(
                u_first_steps=default_u_first_steps(self.warm_start_mode(), cfg.steps)))
        lcfg = cfg.loss
        if problem.is_ergodic and lcfg.normalization == "penalty" and lcfg.mass == 0:
            raise ProblemError("loss.mass must be > 0 with loss.normalization='penalty' on an ergodic problem: "
                               "only the mass term pins the scale of m (m -> c m, λ -> λ + ln c)")
        need_quadrature = (problem.is_ergodic or (lcfg.mass > 0 and problem.domain.bounded) or self.nets.renormalise
                           or problem.coupling_needs_density_integral() or problem.has_mean_control)
        self.sampler = CollocationSampler(problem, cfg.sampler, self.dtype, self.device, self.gen, need_quadrature,
                                          slice_points=self.slice_points(), grid_quadrature=self.nets.renormalise)
        d = problem.dim
        self.hutchinson = lcfg.laplacian == "hutchinson" or (lcfg.laplacian == "auto" and d > lcfg.hutchinson_above_dim)
        self.trainable_lambda = problem.is_ergodic and lcfg.lambda_mode == "trainable"
        self._build_optimisers()
        self.weights = {k: float(getattr(lcfg, f)) for k, f in _WEIGHT_FIELD.items()}
        self.base_weights = dict(self.weights)
        self.step = 0
        self.elapsed = 0.0
        self.history: dict[str, list[float]] = {}
        self.residual_history: list[float] = []
        self.stopped_reason: str | None = None
        self.checkpoint_step: int | None = None
        self.lbfgs_done = 0
        self.lbfgs_guard_info: dict | None = None
        self.lbfgs_stop = ""  # why L-BFGS stopped before lbfgs_steps iterations, if it did
        # The guard's fallback: the networks at the lowest loss seen (finite is not enough: a
        # diverging run passes through finite states with a loss of 1e35).
        self.best_loss = math.inf
        self.best_step: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.steps_above = 0  # consecutive steps with a loss above divergence_factor × best
        self.bar = progress_bar(cfg.steps + cfg.optim.lbfgs_steps, "neural", enabled=cfg.progress and self.dp.is_main,
                                unit="step")
        self._fingerprint: dict | None = None
        self.warm_start_info: dict | None = None
        # warm_start='grid' of one population among several: its part of the coupled coarse solve
        # (set by mfgnet.neural.populations before begin()); None: the trainer solves its own problem.
        self.coarse_solution = None

    def slice_points(self) -> int | None:
        """Quadrature points per time slice when only the mass renormalisation needs them."""
        if not self.nets.renormalise:
            return None
        mass_points = self.cfg.sampler.n_mass or mass_grid_points(self.problem)
        # On a bounded domain ∫K m takes n_conv points (0: the sampler's kernel-resolving grid,
        # sampling.conv_grid_points).  On R^d (networks.renormalises_euclidean) the
        # grid over the bounding box serves ∫K m as well: 64 points (1D) resolve the crowds of the
        # zoo's R problems (std ≥ 0.15 against spacings of 0.1), and n_conv = 256 made lq_offset_1d's
        # run 1.7x longer (179 -> 301 s) for no gain.  In 2D, 16² points left a Gaussian of std 0.22
        # on lq_offset_2d's box (width 6) with a quadrature error of about 1e-3, 24² about 1e-7; where the
        # slices' grids follow the particle cloud (sampling.follows_cloud) 12² over the crowd do.
        if self.problem.coupling_needs_density_integral() and self.problem.domain.bounded:
            return None
        return mass_points

    def share_cores(self, other: Trainer) -> None:
        """Use ``other``'s u and m cores (``model.population_input``); this trainer's Adam then
        steps them too, with its own moments (built again here)."""
        self.nets.value_net.core = other.nets.value_net.core
        self.nets.density_net.core = other.nets.density_net.core
        self._build_optimisers()

    # ------------------------------------------------------------ optimisers
    def _build_optimisers(self) -> None:
        ocfg, nets = self.cfg.optim, self.nets
        lam = [{"params": [nets.lam], "lr": self.cfg.loss.lambda_lr}] if self.trainable_lambda else []
        if ocfg.training == "joint":
            groups = [{"params": nets.value_parameters() + nets.density_parameters()}] + lam
            self.optimisers = {"joint": torch.optim.Adam(groups, lr=ocfg.lr)}
        else:
            self.optimisers = {"u": torch.optim.Adam([{"params": nets.value_parameters()}] + lam, lr=ocfg.lr),
                               "m": torch.optim.Adam(nets.density_parameters(), lr=ocfg.lr)}
        for o in self.optimisers.values():
            for g in o.param_groups:
                g["base_lr"] = g["lr"]

    def _lr_factor(self, step: int) -> float:
        ocfg = self.cfg.optim
        if ocfg.warmup_steps and step < ocfg.warmup_steps:
            return (step + 1) / ocfg.warmup_steps
        span = max(1, self.cfg.steps - ocfg.warmup_steps)
        frac = min(1.0, (step - ocfg.warmup_steps) / span)
        if ocfg.schedule == "cosine":
            return ocfg.final_lr_factor + (1 - ocfg.final_lr_factor) * 0.5 * (1 + math.cos(math.pi * frac))
        if ocfg.schedule == "exponential":
            return ocfg.final_lr_factor ** frac
        return 1.0

    def _params(self) -> list[torch.nn.Parameter]:
        params = self.nets.value_parameters() + self.nets.density_parameters()
        return params + ([self.nets.lam] if self.trainable_lambda else [])

    # ------------------------------------------------------------ checkpoint
    @property
    def checkpoint_path(self) -> str | None:
        d = self.cfg.checkpoint_dir
        return None if d is None else os.path.join(d, CHECKPOINT_NAME)

    @property
    def fingerprint(self) -> dict:
        """What defines this run (problem, trajectory-relevant settings); computed once, on
        first use, as it evaluates the problem's callables at probe points."""
        if self._fingerprint is None:
            self._fingerprint = checkpoint.fingerprint(self.problem, self.cfg)
        return self._fingerprint

    def state_dict(self) -> dict:
        """Tensors and plain containers only, so that it loads with ``weights_only=True``."""
        return {"step": self.step, "elapsed": self.elapsed, "nets": self.nets.state_dict(),
                "optimisers": {k: o.state_dict() for k, o in self.optimisers.items()},
                "weights": dict(self.weights), "history": {k: list(v) for k, v in self.history.items()},
                "residual_history": list(self.residual_history), "generator": self.gen.get_state(),
                "sampler": self.sampler.state_dict(), "fingerprint": self.fingerprint}

    def load_state_dict(self, state: dict) -> None:
        checkpoint.check_fingerprint(state, self.fingerprint, self.checkpoint_path)
        try:
            self.nets.load_state_dict(state["nets"])
        except RuntimeError as exc:  # same settings, other networks: written by another mfgnet version
            missing = sorted(set(self.nets.state_dict()) ^ set(state["nets"]))
            raise ProblemError(
                f"checkpoint {self.checkpoint_path} holds networks of another layout (entries that differ: "
                f"{', '.join(missing) or 'shapes'}); it was written by another mfgnet version: start afresh "
                "with resume=false or another checkpoint_dir") from exc
        self.step, self.elapsed = state["step"], state["elapsed"]
        for k, o in self.optimisers.items():
            o.load_state_dict(state["optimisers"][k])
        self.weights = state["weights"]
        self.history = state["history"]
        self.residual_history = state["residual_history"]
        self.gen.set_state(state["generator"])
        self.sampler.load_state_dict(state["sampler"])
        self.checkpoint_step = self.step

    def save_checkpoint(self) -> None:
        path = self.checkpoint_path
        if path is None:
            return
        if self.dp.is_main:  # every rank holds the same state; one writer
            checkpoint.save(self.state_dict(), path)
        self.checkpoint_step = self.step

    def maybe_resume(self) -> None:
        """``resume=True``: continue from the checkpoint, which must exist (else a warning and
        a fresh start), be readable, and have been written for this very run."""
        if not self.cfg.resume:
            return
        path = self.checkpoint_path
        if path is None:
            raise ProblemError("resume=true needs checkpoint_dir (the folder holding "
                               f"{CHECKPOINT_NAME}); set checkpoint_dir or resume=false")
        if not os.path.exists(path):
            if self.dp.is_main:
                warnings.warn(f"resume=true but there is no checkpoint {path}; training starts from scratch",
                              RuntimeWarning, stacklevel=3)
            return
        # On the CPU first: the generator and sampler states live there; network and optimiser
        # states are copied onto the networks' device by their load_state_dict.
        self.load_state_dict(checkpoint.load(path, map_location="cpu"))

    # ------------------------------------------------------------------ step
    def _probes(self, n: int) -> torch.Tensor | None:
        if not self.hutchinson:
            return None
        return rademacher(self.cfg.loss.hutchinson_probes, n, self.problem.dim, self.nets.log_mass, self.gen)

    def _draw(self, refresh: bool = True):
        """This step's points and probes, drawn whole on every rank (identical RNG use), then sliced."""
        batch = self.sampler.draw(self.nets, self.step, refresh=refresh)
        probes = self._probes(batch.x.shape[0])
        if not self.dp.enabled:
            return batch, probes
        interior = "sampler.n_interior" + ("" if self.problem.is_ergodic
                                           else " (rounded up to a multiple of sampler.time_slices)")
        return self.dp.shard_batch(batch, interior), self.dp.shard_probes(probes)

    def compute(self, batch, probes):
        self.nets.refresh_terminal_crowd()  # u(T) = G(x, ∫K m(T)) with this step's m (a no-op for most G)
        out = compute_losses(self.problem, self.nets, batch, self.cfg, probes)
        if self.dp.enabled and self.problem.is_ergodic and not self.trainable_lambda:
            self._global_lambda(out)
        if self.problem.is_ergodic:
            # Kept in the networks for checkpoints and live views; never overwritten by NaN.
            with torch.no_grad():
                if self.cfg.loss.normalization == "hard" and torch.isfinite(out.log_mass):
                    self.nets.log_mass.copy_(out.log_mass.detach())
                lam = out.residuals.ergodic_constant
                if not self.trainable_lambda and torch.isfinite(lam):
                    self.nets.lam.copy_(lam)
        return out

    def _global_lambda(self, out) -> None:
        """Projected λ over all ranks' points: the least-squares λ is a mean of the HJB residual
        over the points, so each rank's own mean would change the loss; with equal slices the
        rank-mean of the local λ's is the full-batch λ, and the HJB term is re-formed with it."""
        res = out.residuals
        local = res.ergodic_constant.detach()
        lam = self.dp.mean_([local.clone().reshape(1)])[0].reshape(())
        res.hjb = res.hjb + (lam - local)
        res.ergodic_constant = lam
        out.terms["hjb"] = (res.hjb ** 2).mean()

    def _weighted(self, terms: dict, names=None) -> torch.Tensor:
        total = 0.0
        for k, v in terms.items():
            if (names is None or k in names) and self.weights[k] > 0:
                total = total + self.weights[k] * v
        return total

    def _adapt_weights(self, terms: dict) -> None:
        """Gradient-norm balancing: w_i ← (1-α) w_i + α base_i mean|∇L_pde| / mean|∇L_i|.

        (Wang, Teng & Perdikaris 2021 use max|∇L_pde| in the numerator; with it the data terms
        took over and the residuals stalled on B3, so the mean is used.)"""
        params = self.nets.value_parameters() + self.nets.density_parameters()

        def grads(loss):
            gs = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            self.dp.mean_([g for g in gs if g is not None])  # the full-batch gradients under data parallelism
            return torch.cat([g.abs().flatten() for g in gs if g is not None])

        ref = grads(self.base_weights["hjb"] * terms["hjb"] + self.base_weights["fp"] * terms["fp"]).mean()
        alpha = self.cfg.loss.adapt_alpha
        for k, v in terms.items():
            if k in ("hjb", "fp") or self.base_weights[k] == 0 or not v.requires_grad:
                continue
            g = grads(v).mean()
            target = self.base_weights[k] * float(ref / (g + 1e-30))
            target = min(max(target, 1e-3 * self.base_weights[k]), 1e4 * self.base_weights[k])
            self.weights[k] = (1 - alpha) * self.weights[k] + alpha * target

    def _remember_best(self, loss: float) -> None:
        """Keep a copy of the networks (parameters and buffers) when ``loss`` is the lowest yet."""
        if loss < self.best_loss:
            self.best_loss, self.best_step = loss, self.step
            self.best_state = self._weights_snapshot()

    def _diverged(self, loss: float) -> bool:
        """Loss ``divergence_factor`` times above the best seen for ``divergence_patience``
        steps in a row: the run is blowing up.  A single spike is not enough: on box_bump_1d
        one batch's FP term jumped 1e4-fold at step 75 and the default run stopped there at
        rel L2(m) 35 %, where training on reached 30 % (the spikes pass; the NaN guard
        still catches a real blow-up at once)."""
        if self.best_step is None or loss <= self.cfg.divergence_factor * self.best_loss:
            self.steps_above = 0
            return False
        self.steps_above += 1
        return self.steps_above >= self.cfg.divergence_patience

    def _nonfinite(self, what: str, terms: dict) -> None:
        """Stop training on a NaN/Inf or a diverging loss; restore the best state seen."""
        values = ", ".join(f"{k}={float(v.detach()):.3g}" for k, v in terms.items())
        restored = ""
        if self.best_state is not None:
            self.nets.load_state_dict(self.best_state)
            restored = (f"; the networks were restored to the best state seen (step {self.best_step}, "
                        f"loss {self.best_loss:.3g})")
        msg = (f"neural solver: {what} at step {self.step} ({values}); training stopped{restored}. "
               "Try a smaller optim.lr, optim.grad_clip > 0, or float64 (solver.dtype)")
        if self.cfg.on_nonfinite == "raise":
            raise NonFiniteLossError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        self.stopped_reason = msg

    def _record(self, terms: dict, loss: float, lr: float) -> None:
        h = self.history
        h.setdefault("loss", []).append(loss)
        terms = {k: float(v.detach()) for k, v in terms.items()}
        for k, v in terms.items():
            h.setdefault(k, []).append(v)
        for k in ("terminal", "initial", "boundary_u", "boundary_m", "mass", "mean_zero"):
            if k in terms:
                h.setdefault("weight_" + k, []).append(self.weights[k])
        if self.problem.is_ergodic:
            h.setdefault("lambda", []).append(float(self.nets.lam.detach()))
        h.setdefault("lr", []).append(lr)
        self.residual_history.append(math.sqrt(terms["hjb"] + terms["fp"]))

    def train_step(self) -> bool:
        """One Adam step; returns False when the NaN guard stopped training."""
        loss = self.step_loss()
        if loss is None:
            return False
        for o in self.optimisers.values():
            o.zero_grad(set_to_none=True)
        loss.backward.backward()
        if self._u_alone():
            for p in self.nets.density_parameters():  # the HJB term reaches m through F(m): held here
                p.grad = None
        self.dp.average_gradients(self._params())
        lr = step_optimiser(self.optimisers[loss.active], self._params(), self.cfg.optim.grad_clip,
                            self._lr_factor(self.step))
        if lr is None:
            self._nonfinite("non-finite gradient", loss.terms)
            return False
        self.record_step(loss, lr)
        return True

    def step_loss(self) -> StepLoss | None:
        """The step's loss before its backward pass: draw the points, compute the terms, run the
        guards (None when one stopped training) and pick the optimiser ("joint", or "u" / "m"
        in turn with ``optim.training=alternating``)."""
        cfg = self.cfg
        batch, probes = self._draw()
        if self.sampler.kind == "residual":
            self.sampler.refresh_pool(self._residual_score, self.nets, self.step)
        out = self.compute(batch, probes)
        terms = out.terms
        if batch.slice_id is not None and cfg.sampler.time_adaptive > 0:
            self._score_time(batch, out.residuals)
        if cfg.loss.adaptive == "grad_norm" and self.step % cfg.loss.adapt_every == 0:
            self._adapt_weights(terms)
        # Rank-means of the terms = full-batch terms: logged, and the NaN guard decides on them so
        # that every rank stops together (a rank leaving alone would hang the others).
        global_terms = self.dp.mean_terms(terms)
        global_loss = self._weighted(global_terms)
        loss_value = float(global_loss)
        if not math.isfinite(loss_value):
            self._nonfinite("non-finite loss", global_terms)
            return None
        if self._diverged(loss_value):
            self._nonfinite(f"diverging loss ({loss_value:.3g} > {self.cfg.divergence_factor:g} × the best "
                            f"{self.best_loss:.3g} for {self.steps_above} steps)", global_terms)
            return None
        self._remember_best(loss_value)
        if cfg.optim.training == "joint":
            # this rank's slice; gradients averaged
            active, backward_loss = "joint", self._weighted(terms, U_TERMS if self._u_alone() else None)
        else:
            active = "u" if (self.step // cfg.optim.alternate_every) % 2 == 0 else "m"
            backward_loss = self._weighted(terms, U_TERMS if active == "u" else M_TERMS)
        return StepLoss(active, backward_loss, global_terms, loss_value)

    def _u_alone(self) -> bool:
        """Whether this step of joint training moves u alone (``optim.u_first_steps``): its loss is u's terms and
        m's parameters get no gradient, which Adam skips."""
        return self.cfg.optim.training == "joint" and self.step < self.cfg.optim.u_first_steps

    def record_step(self, loss: StepLoss, lr: float) -> None:
        """Book-keeping after the optimiser stepped: history, step count, progress bar."""
        self._record(loss.terms, loss.value, lr)
        self.step += 1
        self.bar.update(1)

    def _score_time(self, batch, res) -> None:
        """Per-slice mean of HJB² + FP² into the sampler's residual-over-time score."""
        S = batch.quad_t.shape[0] - 1
        sq = (res.hjb.detach() ** 2 + res.fp.detach() ** 2)
        count = torch.zeros(S, dtype=sq.dtype, device=sq.device).index_add_(0, batch.slice_id, torch.ones_like(sq))
        per = torch.zeros(S, dtype=sq.dtype, device=sq.device).index_add_(0, batch.slice_id, sq) / count.clamp_min(1)
        self.sampler.update_time_score(batch.quad_t[:S], per)

    def _residual_score(self, t, x):
        """|HJB|² + |FP|² at candidate points, for the residual-following sampler."""
        if not self.problem.coupling.is_local or self.problem.has_mean_control:
            # No per-point ∫K m or ᾱ for scattered candidates: score by the density instead.
            with torch.no_grad():
                return self.nets.density(t, x)
        res = mfg_residuals(self.problem, self.nets.raw_value, self.nets.density_field, t, x,
                            density_output=self.nets.density_output, log_mass=self.nets.log_mass,
                            ergodic_constant=self.nets.lam.detach() if self.problem.is_ergodic else None,
                            probes=self._probes(x.shape[0]), fp_relative=fp_relative(self.problem, self.cfg.loss))
        return (res.hjb ** 2 + res.fp ** 2).detach()

    # ----------------------------------------------------------------- L-BFGS
    def lbfgs(self, clock) -> None:
        """L-BFGS on one fixed batch (deterministic closure), weights frozen.

        Runs in chunks of ``log_every`` iterations (the L-BFGS memory carries over) so that
        progress, logger and monitor see it too; ``clock()`` gives the counted seconds.  On a
        time-dependent problem with ``optim.lbfgs_guard`` set, the solver's residual check on fresh
        points (`mfgnet.neural.check`) runs before L-BFGS and after every chunk; the first chunk whose
        check exceeds ``lbfgs_guard`` times the first one stops L-BFGS and restores the weights of the
        last chunk that passed (or those Adam left).  ``self.lbfgs_guard_info`` records the checks.
        """
        n_iter = self.cfg.optim.lbfgs_steps
        if n_iter == 0 or self.stopped_reason:
            return
        if self.cfg.optim.lbfgs_dtype == "float64" and self.dtype != torch.float64:
            self.dtype = torch.float64
            self.nets.to(dtype=torch.float64)
            self.sampler.dtype = torch.float64
        batch, probes = self._draw()
        params = self._params()
        bound = None if self.problem.is_ergodic else self.cfg.optim.lbfgs_guard
        if bound is not None:
            start = check_residual(residual_check(self))
            kept = self._weights_snapshot()
            self.lbfgs_guard_info = {"bound": bound, "start": start, "checks": [], "kept": 0, "rolled_back": False}
        opt = torch.optim.LBFGS(params, lr=self.cfg.optim.lbfgs_lr, max_iter=n_iter, history_size=50,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-16)
        last: dict = {}

        def closure():
            opt.zero_grad(set_to_none=True)
            out = self.compute(batch, probes)
            loss = self._weighted(out.terms)
            if not self.dp.enabled:
                if torch.isfinite(loss):
                    loss.backward()
                    last["terms"] = out.terms
                return loss
            # All ranks see the full-batch loss and gradient, so their line searches agree.
            terms = self.dp.mean_terms(out.terms)
            total = torch.as_tensor(self._weighted(terms))
            if torch.isfinite(total):
                loss.backward()
                self.dp.average_gradients(params)
                last["terms"] = terms
            return total

        while self.lbfgs_done < n_iter:
            snapshot = [p.detach().clone() for p in params]
            chunk = min(self.cfg.log_every, n_iter - self.lbfgs_done)
            budget = chunk * 5 // 4  # torch's default evaluation budget for max_iter = chunk
            opt.param_groups[0]["max_iter"] = chunk
            opt.param_groups[0]["max_eval"] = budget
            state = opt.state[opt._params[0]]
            before, evals_before = state.get("n_iter", 0), state.get("func_evals", 0)
            final = opt.step(closure)
            state = opt.state[opt._params[0]]
            ran, evals = state.get("n_iter", 0) - before, state.get("func_evals", 0) - evals_before
            log.debug("L-BFGS chunk: %d of %d iterations, %d of %d evaluations", ran, chunk, evals, budget)
            if not torch.isfinite(torch.as_tensor(final)) or any(not torch.isfinite(p).all() for p in params):
                with torch.no_grad():
                    for p, saved in zip(params, snapshot):
                        p.copy_(saved)
                self._nonfinite("L-BFGS loss", last.get("terms", {}))
                return
            self.lbfgs_done += ran  # the iterations it made: fewer than the chunk when it stops early
            self.bar.update(chunk)
            if "terms" in last:
                self._record(last["terms"], float(self._weighted(last["terms"]).detach()), self.cfg.optim.lbfgs_lr)
            if bound is not None:
                value = check_residual(residual_check(self))
                info = self.lbfgs_guard_info
                info["checks"].append(value)
                if not math.isfinite(value) or value > bound * start:
                    self.nets.load_state_dict(kept)
                    info["rolled_back"] = True
                    log.info("L-BFGS stopped after %d iterations: the residual check on fresh points rose from "
                             "%.3g to %.3g (bound %g x); the weights after %d iterations are kept",
                             self.lbfgs_done, start, value, bound, info["kept"])
                    clock(log=True)
                    return
                kept = self._weights_snapshot()
                info["kept"] = self.lbfgs_done
            clock(log=True)
            if ran < chunk:
                # Its tolerances, or the chunk's evaluation budget (the line search's extra evaluations):
                # either way torch's L-BFGS stopped, and so does the finish, saying which.
                self.lbfgs_stop = "evaluation budget" if evals >= budget else "tolerance"
                log.info("L-BFGS stopped after %d of %d iterations (%s)", self.lbfgs_done, n_iter, self.lbfgs_stop)
                return

    def _weights_snapshot(self) -> dict:
        """A detached copy of the networks' state (parameters and buffers), for load_state_dict."""
        return {k: v.detach().clone() for k, v in self.nets.state_dict().items()}

    def warm_start_mode(self) -> str:
        """``cfg.warm_start`` with "auto" resolved: "initial" where m(0) = m0 holds by a blend
        form, "blend" or "heat" (time-dependent box or torus; see
        :func:`~mfgnet.neural.warmstart.initial_fit`), else "off"."""
        mode = self.cfg.warm_start
        if mode == "auto":
            if self.nets.hard_initial in ("blend", "heat"):
                return "initial"
            if gaussian_start.applies(self.problem, self.nets) and self.problem.dim <= gaussian_start.AUTO_MAX_DIM:
                return "gaussian"
            return "off"
        if mode == "gaussian" and not gaussian_start.applies(self.problem, self.nets):
            raise ProblemError("warm_start='gaussian' plays the game among Gaussian crowds on R^d: it needs a "
                               "time-dependent problem on a Euclidean domain with model.density_output='exp'; "
                               "use warm_start='auto' or 'off'")
        if mode == "initial" and self.nets.hard_initial == "off":
            raise ProblemError("warm_start='initial' fits the free part of the blended initial density, but "
                               "this run has no hard initial condition (model.hard_initial resolved to 'off': an "
                               "ergodic or R^d problem, or density_output='softplus'); use warm_start='auto' or 'off'")
        return mode

    # ------------------------------------------------------------------- run
    def run(self) -> None:
        """Warm start, Adam steps, L-BFGS: :meth:`begin`, :meth:`advance` until done, :meth:`end`
        (split so that several trainers can step in turn, as the populations of a game do)."""
        clock = self.begin()
        while self.step < self.cfg.steps:
            if not self.advance(clock):
                break
        self.end(clock)

    def begin(self) -> Callable[..., float]:
        """Resume or warm-start; returns the run's clock (``clock(log=False)`` -> seconds of
        training so far, logging time excluded; ``log=True`` also logs)."""
        cfg = self.cfg
        self.maybe_resume()
        start = time.perf_counter() - self.elapsed
        excluded = [0.0]
        mode = self.warm_start_mode()
        if mode != "off" and self.checkpoint_step is None:  # not on resume: it stays bit-exact
            steps = cfg.warm_start_steps if cfg.warm_start_steps is not None else default_warm_start_steps(mode,
                                                                                                            cfg.steps)
            if mode == "gaussian":
                # 0 steps (e.g. steps=0 to look at the untrained networks): no start at all, not even
                # its shape fit of m0.
                self.warm_start_info = gaussian_start.gaussian_start(self, steps) if steps > 0 else None
            else:
                fit = warm_start if mode == "grid" else initial_fit
                options = {"cells": cfg.warm_start_cells, "coarse": self.coarse_solution} if mode == "grid" else {}
                self.warm_start_info = fit(self.problem, self.nets, steps=steps, seed=cfg.seed, dtype=self.dtype,
                                           device=self.device, **options)
            self.bar.reset()  # its rate and ETA count the residual steps only

        def clock(log: bool = False) -> float:
            now = time.perf_counter() - start - excluded[0]
            if log:
                excluded[0] += self._log(now)
            return now

        return clock

    def advance(self, clock: Callable[..., float]) -> bool:
        """One Adam step with its checkpoint and log; False when the NaN guard stopped training."""
        if not self.train_step():
            return False
        self.after_step(clock)
        return True

    def after_step(self, clock: Callable[..., float]) -> None:
        """The checkpoint and log lines that follow a step (at their intervals and at the end)."""
        cfg = self.cfg
        if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
            self.elapsed = clock()
            self.save_checkpoint()
        if self.step % cfg.log_every == 0 or self.step == cfg.steps:
            clock(log=True)

    def end(self, clock: Callable[..., float]) -> None:
        """L-BFGS (``optim.lbfgs_steps``), then close the bar and stop the clock."""
        self.lbfgs(clock)
        self.nets.refresh_terminal_crowd()  # the final u's G reads the final m(T)
        self.bar.close()
        self.elapsed = clock()

    def _log(self, elapsed: float) -> float:
        """Progress line, monitor and logger calls; returns the seconds they took (not counted)."""
        t0 = time.perf_counter()
        metrics = {k: v[-1] for k, v in self.history.items()}
        if self.monitor is not None:
            from mfgnet.neural.solution import NeuralSolution

            self._finalise_normalisation()
            live = NeuralSolution(self.problem, self.nets,
                                  ergodic_constant=float(self.nets.lam.detach()) if self.problem.is_ergodic else None)
            extra = self.monitor(self.step + self.lbfgs_done, live) or {}
            for k, v in extra.items():
                self.history.setdefault("monitor_" + k, []).append(float(v))
            self.history.setdefault("monitor_step", []).append(self.step + self.lbfgs_done)
            self.history.setdefault("monitor_time_s", []).append(elapsed)
            metrics.update(extra)
        if self.logger is not None and self.dp.is_main:  # ranks log the same numbers: one writer
            self.logger(self.step + self.lbfgs_done, metrics)
        if self.dp.is_main:
            parts = " ".join(f"{k} {metrics[k]:.2e}" for k in ("loss", "hjb", "fp", "terminal", "initial", "mass")
                             if k in metrics)
            lam = f" λ {metrics['lambda']:+.5f}" if "lambda" in metrics else ""
            self.bar.set_postfix_str(f"{parts}{lam}", refresh=False)
            phase = f" + L-BFGS {self.lbfgs_done}" if self.lbfgs_done else ""
            log.log(logging.INFO if self.cfg.verbose else logging.DEBUG, "[neural] step %d/%d%s %s%s (%.1fs)",
                    self.step, self.cfg.steps, phase, parts, lam, elapsed)
        return time.perf_counter() - t0

    # ---------------------------------------------------------- normalisation
    @torch.no_grad()
    def _finalise_normalisation(self, fine: bool = False) -> None:
        """Ergodic: ∫u = 0 and (hard mode) ∫m = 1 on a periodic grid, stored in the networks; on
        R^d (where ∫u dx diverges) the mean of u under m is 0 and the grid is importance samples."""
        if not self.problem.is_ergodic:
            return
        n = {1: 4096, 2: 256 ** 2, 3: 48 ** 3}.get(self.problem.dim, 65536) if fine else self.cfg.sampler.n_quadrature
        gen_state = self.gen.get_state()
        y, logw = self.sampler.quadrature(n, final=fine)
        self.gen.set_state(gen_state)  # normalising must not move the training RNG
        y, logw = y.to(self.dtype).to(self.device), logw.to(self.dtype).to(self.device)
        t = torch.zeros(y.shape[0], 1, dtype=self.dtype, device=self.device)
        if self.problem.domain.bounded:
            w = torch.exp(logw)
        else:
            w = torch.softmax(logw + self.nets.density_field(t, y), 0)
        self.nets.u_shift.copy_((w * self.nets.raw_value(t, y)).sum() / w.sum())
        if self.cfg.loss.normalization == "hard":
            self.nets.log_mass.copy_(log_mass_of(self.nets, t, y, logw))
