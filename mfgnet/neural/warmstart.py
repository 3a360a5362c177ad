"""Warm start of the neural solver from a coarse grid solve (d ≤ 2).

The residual losses alone find the solution slowly where m0 is narrow or the crowd travels
far: the networks start from u ≈ 0, m ≈ uniform and the Fokker–Planck residual has to
transport the mass there step by step.  In 1D and 2D the finite-difference solver
(:func:`mfgnet.grid.solve_grid`) gives a first-order solution on a coarse grid in seconds;
:func:`warm_start` fits u_θ and the density network to it by supervised regression, so that
the residual training starts near the solution instead of transporting the mass there.
Measured on four hard 1D zoo problems (results/neural_warmstart.md): the fit alone is
2-7 % off the fine reference in m, but the residual training then moves away from it (to
9-35 % after 500 steps on the issue-11 solver), so this is an option, not a default.

The fit respects the networks' parametrisation (:class:`~mfgnet.neural.networks.MFGNetworks`):
``raw_value`` is fitted to the grid's u, ``density_field`` to the field that gives the grid's m
with the current ``log_mass`` (log m + log_mass for ``density_output="exp"``, the inverse
softplus for ``"softplus"``), and λ of an ergodic problem is set to the grid's
``ergodic_constant``.
"""

from __future__ import annotations

import math
import time

import torch

from mfgnet.problems import MFGProblem, ProblemError

# Relative floor of the density targets (times the mean of m over the box): the grid's m
# decays like a Gaussian tail (down to 1e-60 for a narrow bump), and fitting those logs
# would spend the whole budget on regions without mass.
DENSITY_FLOOR = 1e-4
# Points per fitting step, fraction of them placed at t = 0 / t = T (time-dependent
# problems; the PINN's data terms weigh 10 there) and the Adam rate (cosine to 5 %).  On
# box_bump_1d (64 cells) 1e-2 fitted m to 2.4 % of the grid in 1000 steps, 3e-3 to 10 % in 500;
# an L-BFGS finish on a fixed batch gained nothing for the same time.
BATCH = 1024
EDGE_FRACTION = 0.125
LR = 1e-2
# Fitting steps when ``warm_start_steps`` is None: the grid fit (u and m, 1000 steps as measured
# above) and the initial fit (m only; on box_narrow_far_1d 500 steps left the log-density 0.04
# RMS off log m0 in 3.7 s on the loaded machine, 1000 steps 0.02 in 6.9 s; the zoo was measured
# with 500).
WARM_START_STEPS = {"grid": 1000, "initial": 500, "gaussian": 2000}


def default_warm_start_steps(mode: str, steps: int) -> int:
    """Fitting steps when ``warm_start_steps`` is None: ``WARM_START_STEPS[mode]``, and for the
    Gaussian start (which costs about as much per step as the residual training) at most half the
    residual steps, so that a short run stays short."""
    if mode == "gaussian":
        return min(WARM_START_STEPS[mode], steps // 2)
    return WARM_START_STEPS[mode]


def default_cells(dim: int) -> int:
    """Coarse grid cells per axis: 128 in 1D, 32 in 2D.

    Measured on the zoo (1 thread, shared CPU): 128 cells in 1D take 3-9 s and are 0.3-1.7 %
    off the fine reference in m (64 cells: 1-2 s, 0.6-3 %); 32² in 2D takes 13 s and is 5 %
    off on box_bump_2d (24²: 6 s, 6.5 %).  Either is below the fit's own error or its time.
    """
    return 128 if dim == 1 else 32


def warm_start(problem: MFGProblem, nets, *, cells: int | None = None, steps: int = 1000,
               seed: int = 0, dtype: torch.dtype = torch.float64,
               device: torch.device | str = "cpu", coarse=None) -> dict:
    """Fit the networks to a coarse grid solution of ``problem`` (in place).

    Parameters
    ----------
    problem : MFGProblem
        A 1D or 2D problem the grid solver handles (RadialHamiltonian; R^d problems are
        solved on their bounding box with no-flux faces).
    nets : MFGNetworks
        The networks, modified in place: u_θ, the density network and (ergodic) λ.
    cells : int or None
        Coarse grid cells per axis (None: :func:`default_cells`).
    steps : int
        Adam steps of the supervised fit.
    seed : int
        Seed of the fit's own generator (the training generator is not touched, so that
        the residual training draws the same points as without the warm start).
    dtype, device
        Those of the networks.
    coarse : Solution or None
        A coarse solution already at hand (population k's part of a coupled grid solve of several
        populations, :func:`coarse_population_solutions`): fitted instead of solving ``problem``.

    Returns
    -------
    dict
        ``cells``, ``time_steps``, ``grid_time_s`` (the coarse solve), ``fit_time_s``,
        ``grid_converged``, ``steps``, ``fit_rel_l2_u`` and ``fit_rel_l2_m`` (the fitted
        networks against the coarse grid solution on fresh random points) and ``lambda``
        (ergodic).

    Raises
    ------
    ProblemError
        For d ≥ 3 (the grid solver's cost grows like cells^d), or when the grid solver
        refuses the problem (its message is kept).
    """
    from mfgnet.grid import solve_grid  # the grid package is only needed here

    if problem.dim > 2:
        raise ProblemError(f"warm_start='grid' needs a 1D or 2D problem (problem.dim = {problem.dim}): the "
                           "coarse grid solve costs cells^d; use warm_start='off' for dim >= 3")
    cells = cells or default_cells(problem.dim)
    start = time.perf_counter()
    if coarse is None:
        try:
            coarse = solve_grid(problem, cells=cells, progress=False)
        except ProblemError as exc:
            raise ProblemError(f"warm_start='grid': the coarse grid solve failed: {exc}") from exc
    grid_time = time.perf_counter() - start

    gen = torch.Generator().manual_seed(seed)
    lower, upper = problem.bounding_box().bounds()
    horizon = problem.horizon
    floor = DENSITY_FLOOR / problem.bounding_box().volume()

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = lower + (upper - lower) * torch.rand(n, problem.dim, generator=gen, dtype=torch.float64)
        if problem.is_ergodic:
            t = torch.zeros(n, 1, dtype=torch.float64)
        else:
            t = horizon * torch.rand(n, 1, generator=gen, dtype=torch.float64)
            k = int(EDGE_FRACTION * n)
            t[:k] = 0.0
            t[k:2 * k] = horizon
        return t, x

    def targets(t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tt = None if problem.is_ergodic else t[:, 0]
        u = coarse.value(tt, x)
        m = coarse.density(tt, x).clamp_min(floor)
        return u.to(dtype=dtype, device=device), m.to(dtype=dtype, device=device)

    def field_target(m: torch.Tensor) -> torch.Tensor:
        scaled = torch.log(m) + nets.log_mass
        if nets.density_output == "exp":
            return scaled
        y = torch.exp(scaled)
        return y + torch.log(-torch.expm1(-y))  # softplus⁻¹(y), stable for small and large y

    def batch_loss() -> torch.Tensor:
        t, x = draw(BATCH)
        u_ref, m_ref = targets(t, x)
        t, x = t.to(dtype=dtype, device=device), x.to(dtype=dtype, device=device)
        u = nets.raw_value(t, x)
        field = nets.density_field(t, x)
        # u relative to its spread (its scale is the problem's), log m in absolute terms.
        return ((u - u_ref) ** 2).mean() / u_ref.var().clamp_min(1e-12) + ((field - field_target(m_ref)) ** 2).mean()

    fit_start = time.perf_counter()
    _adam_fit(nets.value_parameters() + nets.density_parameters(), steps, batch_loss)
    fit_time = time.perf_counter() - fit_start

    lam = None
    if problem.is_ergodic and nets.lam is not None and coarse.ergodic_constant is not None:
        lam = float(coarse.ergodic_constant)
        with torch.no_grad():
            nets.lam.copy_(torch.as_tensor(lam, dtype=nets.lam.dtype))

    # The fit's errors on fresh points, against the coarse solution (the floor left out).
    t, x = draw(4096)
    tt = None if problem.is_ergodic else t[:, 0]
    u_ref, m_ref = coarse.value(tt, x), coarse.density(tt, x)
    with torch.no_grad():
        t_, x_ = t.to(dtype=dtype, device=device), x.to(dtype=dtype, device=device)
        u = nets.raw_value(t_, x_).double().cpu()
        m = nets.density(t_, x_).double().cpu()
    if problem.is_ergodic:  # u is defined up to a constant
        u, u_ref = u - u.mean(), u_ref - u_ref.mean()
    info = {"cells": cells, "time_steps": None if coarse.times is None else len(coarse.times) - 1,
            "grid_time_s": grid_time, "fit_time_s": fit_time, "grid_converged": bool(coarse.diagnostics.converged),
            "steps": steps, "fit_rel_l2_u": _rel(u, u_ref), "fit_rel_l2_m": _rel(m, m_ref), "lambda": lam}
    return info


def coarse_population_solutions(problem, cells: int | None = None) -> tuple[list, dict]:
    """The coupled coarse grid solve of a MultiPopulationProblem (d ≤ 2) for ``warm_start='grid'``:
    every population's part of one equilibrium, so that each pair of networks starts from the
    crowds the others really form (fitting each population alone would solve it against the
    others' untrained networks).  Returns the K solutions and ``{"cells", "grid_time_s",
    "grid_converged"}``."""
    from mfgnet.grid import solve_grid

    if problem.dim > 2:
        raise ProblemError(f"warm_start='grid' needs a 1D or 2D problem (problem.dim = {problem.dim}): the "
                           "coarse grid solve costs cells^d; use warm_start='off' for dim >= 3")
    cells = cells or default_cells(problem.dim)
    start = time.perf_counter()
    try:
        coarse = solve_grid(problem, cells=cells, progress=False)
    except ProblemError as exc:
        raise ProblemError(f"warm_start='grid': the coarse grid solve of the {problem.size} populations "
                           f"failed: {exc}") from exc
    return coarse.populations, {"cells": cells, "grid_time_s": time.perf_counter() - start,
                                "grid_converged": bool(coarse.diagnostics.converged)}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b).clamp_min(1e-300))


def initial_fit(problem: MFGProblem, nets, *, steps: int, seed: int, dtype: torch.dtype = torch.float64,
                device: torch.device | str = "cpu") -> dict:
    """Fit the density network so that m(t, ·) = m0 at every t before the residual training.

    With the blend form of the hard initial condition, m = (1 - s(t)) m0 + s(t) exp(free(t, x)),
    a free part that starts near a uniform density lets the crowd appear anywhere within the
    blend time: on box_narrow_far_1d the trained crowd's mean jumped from 0.15 to 0.52 by
    t = 0.1 (the reference is at 0.24) and stayed 43-47 % off in m whatever the steps.  Starting
    from free = log m0 the mass has to move by the Fokker-Planck dynamics instead.  Only the
    density network moves (u keeps its form, u(T) = G); log m0 is floored at
    ``DENSITY_FLOOR`` / |Ω| like the grid warm start's targets.  The heat blend (m0 replaced by
    its heat flow in the fading part) gets the same fit.  Fitting the free part to the heat flow
    of m0 instead (tried with the m0 blend, 4000 steps) was no better on torus_bimodal_1d (rel
    L2 m 0.103 against 0.106) and worse on torus_nonlocal_1d (0.238 against 0.061).

    Returns
    -------
    dict
        ``source`` ("initial"), ``steps``, ``fit_time_s`` and ``fit_rms`` (the RMS of the
        log-density misfit on the last batch).
    """
    gen = torch.Generator().manual_seed(seed)
    box = problem.bounding_box()
    lower, upper = box.bounds()
    floor = DENSITY_FLOOR / box.volume()

    def batch_misfit() -> torch.Tensor:
        x = lower + (upper - lower) * torch.rand(BATCH, problem.dim, generator=gen, dtype=torch.float64)
        t = problem.horizon * torch.rand(BATCH, 1, generator=gen, dtype=torch.float64)
        target = torch.log(problem.initial_density(x).clamp_min(floor)).to(dtype=dtype, device=device)
        t, x = t.to(dtype=dtype, device=device), x.to(dtype=dtype, device=device)
        return nets.free_field(t, x) - nets.free_shift(dtype) - target

    start = time.perf_counter()
    loss = _adam_fit(nets.density_parameters(), steps, lambda: (batch_misfit() ** 2).mean())
    return {"source": "initial", "steps": steps, "fit_time_s": time.perf_counter() - start,
            "fit_rms": math.sqrt(loss)}


def cosine_factor(k: int, steps: int) -> float:
    """The supervised fits' learning-rate factor at step k of ``steps``: cosine from 1 to 5 %."""
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * k / max(1, steps)))


def _adam_fit(params: list[torch.nn.Parameter], steps: int, batch_loss) -> float:
    """``steps`` Adam steps on ``batch_loss()`` (a fresh batch each call) at rate LR with a cosine
    decay to 5 % and gradients clipped to norm 1; returns the last batch's loss (nan if none)."""
    opt = torch.optim.Adam(params, lr=LR)
    loss = torch.tensor(float("nan"))
    for k in range(steps):
        for g in opt.param_groups:
            g["lr"] = LR * cosine_factor(k, steps)
        loss = batch_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return float(loss.detach())
