"""Decentralised execution: N agents each follow the solved MFG's feedback policy.

    X_{k+1} = X_k + α(t_k, X_k) Δt + √(2ν Δt) ξ_k,     then wrap (torus) or reflect (box)

Each agent sees only its own state and the (tabulated) policy.  Agents do not interact
once the policy is fixed, so they are simulated in chunks of ``chunk_size`` through all
steps: memory is O(chunk · threads), and 10^7 agents need no more than that.  Histograms
of the positions are accumulated over chunks at the recorded steps.

Backends: on a CPU, numpy kernels (in-place, preallocated buffers) run chunks on a pool
of ``threads`` threads — numpy releases the GIL inside each operation, and the threads
never meet until the end, where torch's intra-op threads would synchronise at every
operation (fatal on a loaded machine: each barrier can cost a scheduler slice).  In 2D the
drift is one gather per agent from a per-cell table of the bilinear coefficients (numpy, not
the torch ``TabulatedPolicy.evaluate``, which the numpy kernel once called here).  A chunk
of 2^16 agents keeps the working arrays in cache.  On a GPU the same steps run as torch
operations on large chunks (in 1D on a torus or box, m0 drawn on the device too, from its
quantile table, unless the problem has its own sampler).  Each chunk has its own random
stream (spawned from ``seed``), so results do not depend on the thread count.  With numba
installed (``mfgnet[fast]``), 1D problems on a torus or box with linear interpolation and
Gaussian noise run on the fused kernel of :mod:`mfgnet.agents.simulation.fused` instead
(``backend="numba"``, the default there): the same statistics, 2.6–3.7 times the numpy
kernel's rate on 2 cores (``python -m mfgnet.bench --only agents``).

Noise: "gaussian" is Euler–Maruyama (float32 Box–Muller on the CPU); "uniform" draws ξ uniform on [-√3, √3] (mean 0,
variance 1, symmetric), the simplified weak Euler scheme: the same weak order 1 for
distributions, and uniform numbers are cheaper than Gaussian ones on a CPU.
"""

from __future__ import annotations

import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from mfgnet.agents.simulation import fused
from mfgnet.agents.simulation.policy import TabulatedPolicy
from mfgnet.agents.simulation.policy_simulation import simulate_policy
from mfgnet.fast import numba_missing
from mfgnet.problems import Box, ProblemError, Torus, cell_centre_points, reflect_box, wrap_periodic
from mfgnet.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass
class SimulationResult:
    """Histograms of the population at the recorded times.

    times: (R,) recorded times; histograms: (R, bins, ..., bins) cell probabilities (sum 1)
    on the box [lower, upper]; samples: (≤ keep, d) final positions of the first agents;
    wall_time_s: seconds of the whole run (tabulation excluded); agent_steps_per_s: n_agents ·
    n_steps over ``timings["steps_s"]``.  timings: ``initial_s`` and ``steps_s``, wall-clock
    seconds of the initial draw and of the steps (with chunks side by side on a thread pool, the
    wall clock shared out in the proportion of the per-chunk times); ``initial_thread_s`` and
    ``steps_thread_s``, those per-chunk times summed over the chunks (up to ``threads`` × the
    wall clock); ``tabulate_s``, ``threads``, ``chunk_size``, ``backend``.
    """

    times: list[float]
    histograms: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    n_agents: int
    n_steps: int
    dt: float
    samples: torch.Tensor | None = None
    wall_time_s: float = 0.0
    agent_steps_per_s: float = 0.0
    timings: dict = field(default_factory=dict)


def _sample_initial(solution, problem, n: int, gen: torch.Generator, t0, initial: str,
                    density_cells: _DensityCells | None) -> torch.Tensor:
    if initial == "problem" and not problem.is_ergodic:
        return problem.sample_initial(n, gen)
    return (density_cells or _DensityCells(solution, t0)).sample(n, gen)


class _QuantileDraw:
    """m0's quantile table (:func:`fused.quantile_table`) on a torch device: ``sample`` draws there,
    u uniform and Q(u) linear between the table's nodes, as the fused kernel's ``initial`` does."""

    def __init__(self, quantiles: np.ndarray, device: torch.device) -> None:
        dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        q = torch.as_tensor(quantiles, dtype=dtype, device=device)
        self.steps = q.numel() - 1
        self.base, self.slope = q[:-1].contiguous(), (q[1:] - q[:-1]).contiguous()

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """``n`` points (n, 1) float32 on the table's device."""
        s = torch.rand(n, generator=gen, dtype=self.base.dtype, device=self.base.device).mul_(self.steps)
        k = s.long().clamp_(max=self.steps - 1)
        x = torch.addcmul(self.base.take(k), self.slope.take(k), s.sub_(k))
        return x.to(torch.float32)[:, None]


def sample_density(solution, t, n: int, gen: torch.Generator, n_cells: int | None = None) -> torch.Tensor:
    """``n`` points (n, d) from the solution's density m(t, ·): a cell drawn by its
    probability on a fine grid, then a uniform point inside it."""
    return _DensityCells(solution, t, n_cells).sample(n, gen)


class _DensityCells:
    """The fine grid of :func:`sample_density` with m(t, ·) at its cell centres, evaluated once:
    a simulation draws every chunk's initial positions from it (the density on 512² centres
    costs about as much as the draw itself).  The draws are those of sample_density."""

    def __init__(self, solution, t, n_cells: int | None = None) -> None:
        problem = solution.problem
        d = problem.dim
        n_cells = n_cells or {1: 8192, 2: 512}.get(d, 64)
        lower, upper = problem.bounding_box().bounds()
        self.h = (upper - lower) / n_cells
        self.centres = cell_centre_points(lower, upper, n_cells)
        with torch.no_grad():
            self.weights = solution.density(t, self.centres).clamp_min(0)

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """``n`` points (n, d), float64."""
        cell = torch.multinomial(self.weights, n, replacement=True, generator=gen)
        d = self.centres.shape[1]
        return self.centres[cell] + (torch.rand(n, d, generator=gen, dtype=torch.float64) - 0.5) * self.h


def simulate(solution, n_agents: int, n_steps: int, t0: float = 0.0, t1: float | None = None,
             record_steps=None, bins: int = 4096, chunk_size: int | None = None, n_nodes: int = 512,
             policy: TabulatedPolicy | None = None, interp: str = "linear", noise: str = "gaussian",
             device: str | torch.device = "cpu", backend: str | None = None, threads: int | None = None,
             seed: int = 0,
             initial: str = "problem", keep_samples: int = 0, verbose: bool = False,
             progress: bool = True) -> SimulationResult:
    """Simulate ``n_agents`` agents under ``solution``'s feedback policy for ``n_steps`` steps
    (float32 positions).

    Parameters
    ----------
    solution : Solution
        A [`Solution`][mfgnet.solution.Solution] (its problem gives ν, the domain and m0).
    n_agents : int
        The number of agents N >= 1.
    n_steps : int
        Time steps on [t0, t1], >= 1.
    t0 : float
        Start time.
    t1 : float or None
        End time (default T; required for an ergodic problem).
    record_steps : sequence of int or None
        Step indices (0..n_steps) whose histograms are kept; default the last.
    bins : int
        Histogram cells per axis over the problem's bounding box.
    chunk_size : int or None
        Agents simulated together (default 2^16 on CPU, 2^22 on GPU).
    n_nodes : int
        Nodes per axis of the tabulated policy (when ``policy`` is None).
    policy : TabulatedPolicy or None
        A ready [`TabulatedPolicy`][mfgnet.agents.simulation.TabulatedPolicy] (else tabulated from the solution at the
        step times, at most 1000 slices in 1D and 32 in higher d).
    interp : str
        "linear" (multilinear) or "nearest".
    noise : str
        "gaussian" (Euler–Maruyama) or "uniform" (weak Euler).
    device : str or torch.device
        "cpu" or a torch device such as "cuda".
    backend : str or None
        "numba" (the fused 1D kernel, CPU; the default where it applies and numba is installed),
        "numpy" (CPU; the default otherwise) or "torch" (the default on other devices).
    threads : int or None
        CPU worker threads (default: the cores available to this process).
    seed : int
        Seed of the initial positions and the noise.
    initial : str
        "problem" (m0) or "solution" (the solution's m(t0), the only choice for
        ergodic problems).
    keep_samples : int
        How many final positions to return (for sample-based distances).
    verbose : bool
        One log line (INFO) per chunk of agents (DEBUG otherwise).
    progress : bool
        A progress bar over the chunks (standard error) once the run takes a few seconds.

    Returns
    -------
    SimulationResult or PolicySimulationResult
        The histograms at the recorded times (and the kept samples); on R^d with d > 2,
        where neither a policy table nor bins^d histograms fit in memory, the run goes to
        [`simulate_policy`][mfgnet.agents.simulation.policy_simulation.simulate_policy] (the solution's policy
        called on each chunk, float32) and its result holds the mean and covariance instead.
    """
    problem = solution.problem
    d = problem.dim
    if d > 2 and not problem.domain.bounded and policy is None:
        return simulate_policy(solution, n_agents, n_steps, t0, t1, record_steps, chunk_size,
                               device=device, seed=seed, keep_samples=keep_samples, verbose=verbose,
                               progress=progress)
    if n_agents < 1 or n_steps < 1:
        raise ProblemError(f"n_agents and n_steps must be >= 1, got {n_agents}, {n_steps}")
    if interp not in ("linear", "nearest"):
        raise ProblemError(f"interp must be 'linear' or 'nearest', got {interp!r}")
    if noise not in ("gaussian", "uniform"):
        raise ProblemError(f"noise must be 'gaussian' or 'uniform', got {noise!r}")
    if initial not in ("problem", "solution"):
        raise ProblemError(f"initial must be 'problem' or 'solution', got {initial!r}")
    if t1 is None:
        if problem.is_ergodic:
            raise ProblemError("an ergodic problem needs the end time t1 of the simulation")
        t1 = problem.horizon
    if not t1 > t0:
        raise ProblemError(f"t1 = {t1} must be greater than t0 = {t0}")
    dt = (t1 - t0) / n_steps
    record = [n_steps] if record_steps is None else sorted({int(k) for k in record_steps})
    if record[0] < 0 or record[-1] > n_steps:
        raise ProblemError(f"record_steps must lie in 0..{n_steps}")
    device = torch.device(device)
    fused_fits = d == 1 and interp == "linear" and noise == "gaussian" and isinstance(problem.domain, (Torus, Box))
    if backend is None:
        backend = "torch" if device.type != "cpu" else ("numba" if fused.AVAILABLE and fused_fits else "numpy")
    if backend not in ("numpy", "numba", "torch") or (backend != "torch" and device.type != "cpu"):
        raise ProblemError(f"backend must be 'numpy' or 'numba' (CPU) or 'torch', got {backend!r} on {device}")
    if backend == "numba" and not fused_fits:
        raise ProblemError("backend='numba' (the fused kernel) covers 1D problems on a torus or box with "
                           f"interp='linear' and noise='gaussian'; got dim={d}, interp={interp!r}, noise={noise!r} "
                           f"on {type(problem.domain).__name__}: use backend='numpy'")
    if backend == "numba" and not fused.AVAILABLE:
        raise numba_missing()
    on_cpu = backend != "torch"
    chunk_size = int(chunk_size or (1 << 20 if backend == "numba" else 1 << 16 if on_cpu else 1 << 22))
    if chunk_size < 1:
        raise ProblemError(f"chunk_size must be >= 1, got {chunk_size}")
    threads = int(threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))

    tab_start = time.perf_counter()
    if policy is None:
        if problem.is_ergodic:
            policy = TabulatedPolicy.from_solution(solution, None, n_nodes)
        else:
            n_slices = min(n_steps, 1000 if d == 1 else 32)
            slice_times = [t0 + dt * math.floor(k * n_steps / n_slices) for k in range(n_slices)]
            policy = TabulatedPolicy.from_solution(solution, slice_times, n_nodes)
    tab_time = time.perf_counter() - tab_start

    lower, upper = problem.bounding_box().bounds()
    spec = _Spec(problem, policy, dt, n_steps, record, bins, interp, noise, lower, upper,
                 [policy.slice_index(t0 + k * dt) for k in range(n_steps)], device, backend)
    n_chunks = -(-n_agents // chunk_size)
    seeds = np.random.SeedSequence(seed).spawn(n_chunks)
    tables = fused.FusedTables(spec) if backend == "numba" else None
    key, initial_key = (int(v) for v in np.random.SeedSequence(seed).generate_state(2, np.uint64))
    # The fused and torch paths draw m0 from its quantile table (1D torus or box): a fraction of rejection
    # sampling's time.  The fused path uses one counter per agent, so its run no longer depends on the
    # chunk size; the torch path draws on the device (the CPU draw and its copy took most of a GPU run's
    # time).  A problem's own sampler wins.
    quantile_fits = (d == 1 and isinstance(problem.domain, (Torus, Box)) and initial == "problem"
                     and not problem.is_ergodic and problem.initial_sampler_function is None)
    quantiles = fused.quantile_table(problem) if quantile_fits and backend in ("numba", "torch") else None
    quantiles_dev = (_QuantileDraw(quantiles, device) if quantiles is not None and backend == "torch" else None)
    density_cells = (_DensityCells(solution, t0) if quantiles is None and (initial == "solution" or problem.is_ergodic)
                     else None)

    def run(c: int):
        n = min(chunk_size, n_agents - c * chunk_size)
        chunk_seed = int(seeds[c].generate_state(1)[0])
        gen = torch.Generator().manual_seed(chunk_seed)
        tgen = torch.Generator(device=device).manual_seed(chunk_seed) if backend == "torch" else None
        ti = time.perf_counter()
        if quantiles_dev is not None:  # on the device, from the generator that then draws the noise
            x0 = quantiles_dev.sample(n, tgen)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        elif tables is not None and quantiles is not None:  # drawn straight into the fused kernel's cell units
            y = fused.initial_cells(tables, quantiles, initial_key, c * chunk_size, n)
        else:
            x0 = _sample_initial(solution, problem, n, gen, t0, initial, density_cells)
            y = fused.to_cells(tables, x0.numpy()) if tables is not None else None
        t_init = time.perf_counter() - ti
        ts = time.perf_counter()
        if tables is not None:
            hist = fused.simulate_cells(tables, y, key, c * chunk_size)
            x = fused.to_positions(tables, y[:keep_samples]) if (c == 0 and keep_samples) else None
        elif on_cpu:
            hist, x = _run_numpy(spec, x0.numpy().astype(np.float32), np.random.default_rng(seeds[c]))
        else:
            hist, x = _run_torch(spec, x0.to(device=device, dtype=torch.float32), tgen)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        log.log(logging.INFO if verbose else logging.DEBUG, "[simulate] chunk %d/%d done", c + 1, n_chunks)
        bar.update(1)
        return hist, x[:keep_samples] if (c == 0 and keep_samples and x is not None) else None, t_init, \
            time.perf_counter() - ts

    start = time.perf_counter()
    bar = progress_bar(n_chunks, f"simulate {n_agents:.0e} agents", enabled=progress, unit="chunk")
    if backend == "numpy" and threads > 1 and n_chunks > 1:
        with ThreadPoolExecutor(threads) as pool:
            outs = list(pool.map(run, range(n_chunks)))
    elif backend == "numba":  # numba runs its own threads inside each chunk
        with fused.thread_count(threads):
            outs = [run(c) for c in range(n_chunks)]
    else:
        outs = [run(c) for c in range(n_chunks)]
    bar.close()
    wall = time.perf_counter() - start
    hist = sum(torch.as_tensor(o[0], dtype=torch.float64) for o in outs) / n_agents
    samples = outs[0][1]
    if samples is not None:
        samples = torch.as_tensor(np.asarray(samples.cpu() if isinstance(samples, torch.Tensor) else samples),
                                  dtype=torch.float64)
    t_init = sum(o[2] for o in outs)
    t_steps = sum(o[3] for o in outs)
    times = [t0 + k * dt for k in record]
    if backend == "numpy" and threads > 1 and n_chunks > 1:
        # Chunks ran side by side on the pool, so the per-chunk times add up to about threads × wall:
        # the wall clock is shared out between the draws and the steps in the proportion of those sums.
        steps_wall = wall * t_steps / max(t_init + t_steps, 1e-12)
        init_wall = wall - steps_wall
    else:  # one chunk at a time (numba's threads, or the device, inside each)
        steps_wall, init_wall = t_steps, t_init
    steps_wall = max(steps_wall, 1e-12)
    return SimulationResult(times, hist.reshape((len(record),) + (bins,) * d), lower, upper, n_agents, n_steps, dt,
                            samples, wall, n_agents * n_steps / steps_wall,
                            {"tabulate_s": tab_time, "initial_s": init_wall, "steps_s": steps_wall,
                             "initial_thread_s": t_init, "steps_thread_s": t_steps, "threads": threads,
                             "chunk_size": chunk_size, "backend": backend})


class _Spec:
    """Everything a chunk kernel needs, prepared once."""

    def __init__(self, problem, policy, dt, n_steps, record, bins, interp, noise, lower, upper, step_slice, device,
                 backend):
        self.d = problem.dim
        self.dt, self.n_steps, self.record, self.bins = dt, n_steps, record, bins
        self.interp, self.noise, self.step_slice = interp, noise, step_slice
        self.sigma = problem.noise_std(dt)
        self.policy = policy
        self.domain = problem.domain
        self.lower = lower.numpy().astype(np.float32)
        self.width = (upper - lower).numpy().astype(np.float32)
        self.torus_length = float(self.domain.length) if isinstance(self.domain, Torus) else None
        self.box = isinstance(self.domain, Box)
        self.tables = policy.prepare("cpu", torch.float32)
        self.vals = [t.reshape(-1).numpy() for t in self.tables] if self.d == 1 else None
        self.slopes = [np.append(v[1:] - v[:-1], np.float32(0)) for v in self.vals] if self.d == 1 else None
        self.inv_h = float(1.0 / policy.spacing[0])
        self.p_lo = float(policy.lower[0])
        # d >= 2 on the numpy kernel: the drift α·dt as numpy tables (see _drift_tables) where they fit;
        # else (d >= 3 on a fine grid) torch's policy.evaluate on the padded tables, as before.
        self.drift = (_drift_tables(policy, dt, interp)
                      if backend == "numpy" and self.d >= 2 and _drift_table_bytes(policy, interp) <= _DRIFT_TABLE_BYTES
                      else None)
        if backend == "torch":
            self.tables_dev = policy.prepare(device, torch.float32)
            self.vals_dev = [t.reshape(-1) for t in self.tables_dev] if self.d == 1 else None
            self.slopes_dev = [torch.as_tensor(s, device=device) for s in self.slopes] if self.d == 1 else None


_DRIFT_TABLE_BYTES = 256 << 20  # 2D: 256² nodes take 2 MB, 1024² 32 MB; d = 3 at 128³ nodes 200 MB


def _drift_table_bytes(policy: TabulatedPolicy, interp: str) -> int:
    d, n = policy.dim, policy.n_nodes
    return (n ** d) * d * 4 * (1 if interp == "nearest" else 1 << d) * policy.table.shape[0]


class _DriftTable:
    """The drift α·dt of one time slice for the numpy kernel in d >= 2, as one float32 row per
    cell, so that an agent's whole interpolation stencil is a single gather.

    Multilinear: on the cell [i, i + 1] (in node units) with weights w in [0, 1)^d, the
    interpolant is the polynomial Σ_S c_S Π_{a in S} w_a over the subsets S of the axes, with
    c_S = Σ_{T ⊆ S} (-1)^{|S|-|T|} v(i + e_T) (for d = 2: v00, v10 - v00, v01 - v00,
    v11 - v10 - v01 + v00).  Row = the 2^d coefficients × d components (32 bytes in 2D: one
    cache line per agent, against 2^d·d scattered reads of the node table).  A torus has n^d
    cells (the last one wraps to node 0), a box (n - 1)^d (positions clamped to the grid).
    Nearest: row = the node's d values.
    """

    def __init__(self, table: np.ndarray, periodic: bool, dt: float, nearest: bool) -> None:
        d = table.shape[-1]
        n = table.shape[0]
        self.dim, self.nearest, self.periodic = d, nearest, periodic
        if nearest:
            rows = table.reshape(-1, d)
            self.cells = n
        else:
            def corner(subset: int) -> np.ndarray:  # v(i + e_T) for every cell i
                v = table
                for ax in range(d):
                    if subset >> ax & 1:
                        v = np.roll(v, -1, axis=ax)
                return v if periodic else v[(slice(0, n - 1),) * d]
            corners = [corner(t) for t in range(1 << d)]
            coeffs = [sum((-1) ** (bin(s).count("1") - bin(t).count("1")) * corners[t]
                          for t in range(1 << d) if t & s == t) for s in range(1 << d)]
            self.cells = n if periodic else n - 1
            rows = np.stack(coeffs, axis=-2).reshape(self.cells ** d, (1 << d) * d)
        self.rows = np.ascontiguousarray(rows * dt, dtype=np.float32)


def _drift_tables(policy: TabulatedPolicy, dt: float, interp: str) -> list[_DriftTable]:
    return [_DriftTable(policy.table[k].numpy(), policy.periodic, dt, interp == "nearest")
            for k in range(policy.table.shape[0])]


class _DriftKernel:
    """x (n, d) += α(x)·dt from a _DriftTable, on buffers allocated once per chunk (numpy,
    releases the GIL: the pool's threads run side by side)."""

    def __init__(self, policy: TabulatedPolicy, n: int, nearest: bool) -> None:
        d = policy.dim
        self.d, self.nearest, self.n_nodes = d, nearest, policy.n_nodes
        self.mask = policy.n_nodes - 1 if policy.n_nodes & (policy.n_nodes - 1) == 0 else None  # a cheap wrap
        self.lower = [np.float32(v) for v in policy.lower.tolist()]
        self.inv_h = [np.float32(1.0 / v) for v in policy.spacing.tolist()]
        self.s = np.empty((d, n), np.float32)  # node units, then (linear) the weights w
        self.fl = np.empty(n, np.float32)
        self.idx = np.empty((d, n), np.intp)
        self.flat = np.empty(n, np.intp)
        self.rows = np.empty((n, d if nearest else (1 << d) * d), np.float32)
        self.tmp = np.empty((d, n), np.float32)  # one per Horner level

    def add_drift(self, x: np.ndarray, table: _DriftTable) -> None:
        d, n_nodes, s, idx = self.d, self.n_nodes, self.s, self.idx
        for ax in range(d):
            np.subtract(x[:, ax], self.lower[ax], out=s[ax])
            s[ax] *= self.inv_h[ax]
            if not table.periodic:
                np.clip(s[ax], 0, n_nodes - 1, out=s[ax])
            if self.nearest:
                s[ax] += np.float32(0.5)
            np.floor(s[ax], out=self.fl)
            np.copyto(idx[ax], self.fl, casting="unsafe")
            if not self.nearest:
                s[ax] -= self.fl  # the weight w in [0, 1)
            # A wrapped position can round up to L (index n): on a torus that is node/cell 0; in
            # a box the last node's index n - 1 belongs to cell n - 2 with w = 1.
            if table.periodic and self.mask is not None:
                idx[ax] &= self.mask
            elif table.periodic:
                np.remainder(idx[ax], n_nodes, out=idx[ax])
            elif not self.nearest:
                over = idx[ax] > table.cells - 1
                s[ax][over] += 1
                idx[ax][over] = table.cells - 1
        flat = self.flat
        np.copyto(flat, idx[0])
        for ax in range(1, d):
            flat *= table.cells
            flat += idx[ax]
        np.take(table.rows, flat, axis=0, out=self.rows)
        if self.nearest:
            x += self.rows
            return
        for c in range(d):
            self._horner(c, d, 0, self.tmp[0])
            x[:, c] += self.tmp[0]

    def _horner(self, c: int, level: int, base: int, out: np.ndarray) -> None:
        """out = component c of the polynomial in w_0..w_{level-1} whose coefficients start
        at subset ``base``: P_lower + w_{level-1} · P_upper (1D: a + w·b), 2 passes per
        coefficient instead of the 3 of summing the monomials."""
        d, rows, w = self.d, self.rows, self.s
        if level == 1:
            np.multiply(rows[:, (base + 1) * d + c], w[0], out=out)
            out += rows[:, base * d + c]
            return
        upper = self.tmp[level - 1]
        self._horner(c, level - 1, base, out)
        self._horner(c, level - 1, base + (1 << (level - 1)), upper)
        upper *= w[level - 1]
        out += upper


class _Normals:
    """float32 standard normals by Box–Muller, into a reused buffer.

    numpy's ``standard_normal`` (ziggurat, float32) costs about 13-15 ns per number on this
    kind of CPU; Box–Muller with vectorised float32 log/sqrt/cos/sin about 9 ns.  The
    uniforms are float32, so |ξ| <= sqrt(-2 ln 2^-24) = 5.8 (a tail of probability 1e-8,
    irrelevant to the distribution of the population).
    """

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        half = (size + 1) // 2
        self.rng, self.size = rng, size
        self.buf = np.empty(2 * half, np.float32)
        self.u, self.v = np.empty(half, np.float32), np.empty(half, np.float32)
        self.cos_part, self.sin_part = self.buf[:half], self.buf[half:]

    def fill(self) -> np.ndarray:
        u, v = self.u, self.v
        self.rng.random(dtype=np.float32, out=u)
        self.rng.random(dtype=np.float32, out=v)
        np.subtract(np.float32(1), u, out=u)  # (0, 1]: log is finite
        np.log(u, out=u)
        np.multiply(u, np.float32(-2), out=u)
        np.sqrt(u, out=u)
        np.multiply(v, np.float32(2 * np.pi), out=v)
        np.cos(v, out=self.cos_part)
        np.sin(v, out=self.sin_part)
        np.multiply(self.cos_part, u, out=self.cos_part)
        np.multiply(self.sin_part, u, out=self.sin_part)
        return self.buf[: self.size]


def _hist_numpy(x: np.ndarray, spec: _Spec) -> np.ndarray:
    idx = ((x - spec.lower) * (spec.bins / spec.width)).astype(np.int64)
    np.clip(idx, 0, spec.bins - 1, out=idx)
    flat = idx[:, 0]
    for ax in range(1, spec.d):
        flat = flat * spec.bins + idx[:, ax]
    return np.bincount(flat, minlength=spec.bins ** spec.d)


def _run_numpy(spec: _Spec, x: np.ndarray, rng: np.random.Generator):
    """One chunk through all steps, in place; returns (histograms (R, bins^d), x)."""
    n, d = x.shape
    if d == 1 and spec.policy.periodic and spec.torus_length is not None:
        return _run_numpy_torus_1d(spec, x, rng)
    hist = np.zeros((len(spec.record), spec.bins ** d), dtype=np.int64)
    xi = np.empty_like(x)
    normals = _Normals(rng, n * d) if spec.noise == "gaussian" else None
    if d == 1:
        x1 = x[:, 0]
        s, fl, a, b = (np.empty(n, np.float32) for _ in range(4))
        idx = np.empty(n, np.intp)
        n_nodes = spec.policy.n_nodes
        periodic = spec.policy.periodic
    drift = _DriftKernel(spec.policy, n, spec.interp == "nearest") if spec.drift is not None else None
    for k in range(spec.n_steps + 1):
        if k in spec.record:
            hist[spec.record.index(k)] += _hist_numpy(x, spec)
        if k == spec.n_steps:
            break
        j = spec.step_slice[k]
        if d == 1:
            np.subtract(x1, spec.p_lo, out=s)
            s *= spec.inv_h
            if not periodic:
                np.clip(s, 0, n_nodes - 1, out=s)
            if spec.interp == "nearest":
                s += 0.5
                np.copyto(idx, s, casting="unsafe")  # truncation = floor for s >= 0
                np.take(spec.vals[j], idx, out=a, mode="clip")
            else:
                np.floor(s, out=fl)
                np.copyto(idx, fl, casting="unsafe")
                s -= fl
                np.take(spec.vals[j], idx, out=a, mode="clip")
                np.take(spec.slopes[j], idx, out=b, mode="clip")
                b *= s
                a += b
            a *= spec.dt
            x1 += a
        elif drift is not None:
            drift.add_drift(x, spec.drift[j])
        else:
            xt = torch.from_numpy(x)
            xt.add_(spec.policy.evaluate(spec.tables[j], xt, spec.interp), alpha=spec.dt)
        if spec.sigma > 0:
            if normals is not None:
                np.multiply(normals.fill().reshape(n, d), np.float32(spec.sigma), out=xi)
            else:
                rng.random(dtype=np.float32, out=xi)
                xi -= 0.5
                xi *= spec.sigma * math.sqrt(12.0)
            x += xi
        _boundary_numpy(x, spec, xi)
    return hist, x


def _run_numpy_torus_1d(spec: _Spec, x: np.ndarray, rng: np.random.Generator):
    """The 1D torus kernel, written for memory passes: positions are kept in units of policy
    cells plus a large offset, y = off + (x - lo)/h (+ 1/2 for nearest), so that

    * the cell index is a plain truncation of y (y > 0), wrapped by a bit mask (n a power
      of two) or an integer remainder: no wrap of the positions at every step;
    * dt and 1/h are folded into the tables and the noise scale.

    Per step: linear 12 array passes, nearest 7 (against about 16 for the textbook form).
    The positions are re-wrapped every 32 steps so that y stays far from 0 and float32 keeps
    its resolution (y < 2^17 cells: ulp <= 2^-6 cell).
    """
    n_agents = x.shape[0]
    pol = spec.policy
    n = pol.n_nodes
    off = 64.0 * n  # with the re-wrap every 32 steps, y stays in (0, 2^17) for any sane step
    mask = n - 1 if n & (n - 1) == 0 else None
    scale = spec.dt * spec.inv_h
    vals = [(v[:n] * scale).astype(np.float32) for v in spec.vals]
    slopes = [(sl[:n] * scale).astype(np.float32) for sl in spec.slopes]
    nearest = spec.interp == "nearest"
    shift = off + (0.5 if nearest else 0.0)
    y = ((x[:, 0].astype(np.float64) - pol.lower[0].item()) * spec.inv_h + shift).astype(np.float32)
    hist = np.zeros((len(spec.record), spec.bins), dtype=np.int64)
    xi, a, b, fl = (np.empty(n_agents, np.float32) for _ in range(4))
    idx = np.empty(n_agents, np.intp)
    normals = None if spec.noise == "uniform" else _Normals(rng, n_agents)
    noise_scale = spec.sigma * spec.inv_h
    uniform = spec.noise == "uniform"
    if uniform:
        noise_scale *= math.sqrt(12.0)
        vals = [v - np.float32(0.5 * noise_scale) for v in vals]  # the uniform noise's -1/2, folded into the drift
    noise_scale = np.float32(noise_scale)

    def positions() -> np.ndarray:
        cells = np.mod(y.astype(np.float64) - shift, n)
        return (pol.lower[0].item() + cells / spec.inv_h)[:, None]

    for k in range(spec.n_steps + 1):
        if k in spec.record:
            hist[spec.record.index(k)] += _hist_numpy(positions(), spec)
        if k == spec.n_steps:
            break
        if k and k % 32 == 0:
            y -= np.floor((y - np.float32(shift)) / n) * np.float32(n)
        j = spec.step_slice[k]
        if nearest:
            np.copyto(idx, y, casting="unsafe")
        else:
            np.floor(y, out=fl)
            np.copyto(idx, fl, casting="unsafe")
        if mask is not None:
            idx &= mask
        else:
            np.remainder(idx, n, out=idx)
        np.take(vals[j], idx, out=a)
        if not nearest:
            np.take(slopes[j], idx, out=b)
            np.subtract(y, fl, out=fl)  # the weight w in [0, 1)
            b *= fl
            a += b
        y += a
        if spec.sigma > 0:
            if uniform:
                rng.random(dtype=np.float32, out=xi)
                xi *= noise_scale
            else:
                np.multiply(normals.fill(), noise_scale, out=xi)
            y += xi
    out = positions().astype(np.float32)
    return hist, out


def _boundary_numpy(x: np.ndarray, spec: _Spec, buf: np.ndarray) -> None:
    if spec.torus_length is not None:
        wrap_periodic(x, spec.torus_length, out=x, scratch=buf)  # in place, no allocation
    elif spec.box:
        reflect_box(x, spec.lower, spec.width, out=x)


def _run_torch(spec: _Spec, x: torch.Tensor, gen: torch.Generator):
    """One chunk through all steps with torch operations (GPU path)."""
    dev = x.device
    d = x.shape[1]
    hist = torch.zeros(len(spec.record), spec.bins ** d, dtype=torch.float64, device=dev)
    lo = torch.as_tensor(spec.lower, device=dev)
    width = torch.as_tensor(spec.width, device=dev)
    xi = torch.empty_like(x)
    for k in range(spec.n_steps + 1):
        if k in spec.record:
            idx = ((x - lo) / width * spec.bins).long().clamp_(0, spec.bins - 1)
            flat = idx[:, 0]
            for ax in range(1, d):
                flat = flat * spec.bins + idx[:, ax]
            hist[spec.record.index(k)] += torch.bincount(flat, minlength=spec.bins ** d).double()
        if k == spec.n_steps:
            break
        j = spec.step_slice[k]
        if d == 1:
            s = (x[:, 0] - spec.p_lo) * spec.inv_h
            if not spec.policy.periodic:
                s.clamp_(0, spec.policy.n_nodes - 1)
            if spec.interp == "nearest":
                alpha = spec.vals_dev[j].take((s + 0.5).long().clamp_(max=spec.vals_dev[j].numel() - 1))
            else:
                fl = torch.floor(s)
                idx = fl.long().clamp_(max=spec.vals_dev[j].numel() - 1)
                alpha = torch.addcmul(spec.vals_dev[j].take(idx), spec.slopes_dev[j].take(idx), s.sub_(fl))
            x[:, 0].add_(alpha, alpha=spec.dt)
        else:
            x.add_(spec.policy.evaluate(spec.tables_dev[j], x, spec.interp), alpha=spec.dt)
        if spec.sigma > 0:
            if spec.noise == "gaussian":
                torch.randn(x.shape, generator=gen, out=xi, device=dev)
                x.add_(xi, alpha=spec.sigma)
            else:
                torch.rand(x.shape, generator=gen, out=xi, device=dev)
                x.add_(xi.sub_(0.5), alpha=spec.sigma * math.sqrt(12.0))
        if spec.torus_length is not None:
            wrap_periodic(x, spec.torus_length, out=x)
        elif spec.box:
            x = reflect_box(x, lo, width)
    return hist.cpu().numpy(), x
