"""A fused 1D simulation kernel compiled by numba (the optional extra ``mfgnet[fast]``).

The numpy kernel of :mod:`mfgnet.agents.simulation.simulate` makes about a dozen passes over
its arrays per step, each a separate call.  Here a block of 512 agents is carried through all
its steps while it sits in the L1 cache (the blocks run on numba's threads): per step one table
lookup, a linear interpolation, a Gaussian increment and the boundary, with no traffic to
memory between the first step and the last.

Random numbers are counter-based: the pair of standard normals of agent ``i`` at steps
``2p, 2p + 1`` comes from one 64-bit word, SplitMix64's output function applied to
``key + i · P + p`` times γ (γ the golden-ratio increment, P the number of step pairs), by
Box–Muller with a logarithm, sine and cosine written as branch-free polynomials (no libm calls,
no table lookups), so that a block's noise is drawn on the vector units: 1.1 ns a pair on one
core of this machine, against 2.9 ns for a ziggurat (the kernel's generator until 2026-12-05:
a table lookup in 99 % of draws, but its slow path's exp and log calls in the other 1 % cost
as much again).  The
initial positions come from m0's quantile table (:func:`quantile_table`) at one counter per
agent as well (rejection sampling, the numpy path's draw, took longer than the steps at
N = 10^7).  So a run depends on the seed alone, not on the thread count or on how agents are
split into chunks, and any agent's path can be recomputed by itself.  The statistics are those
of the numpy kernel (same scheme, independent numbers): tests/test_simulation_fused.py compares
them, and ``python -m mfgnet.bench --only agents`` times the two side by side.
"""

from __future__ import annotations

import contextlib

import numpy as np

from mfgnet.fast import NUMBA_AVAILABLE

# numba is an optional dependency (without it the numpy kernel runs), imported on first use with
# the kernels' module (:mod:`mfgnet.agents.simulation.fused_kernels`): it costs about half a second,
# which `import mfgnet.agents` need not pay.
AVAILABLE = NUMBA_AVAILABLE  # a name of its own: the tests switch it off here alone
numba = None
_KERNELS = None


def _numba():
    global numba
    if numba is None:
        if not AVAILABLE:
            raise ImportError("the fused simulation kernel needs numba: pip install 'mfgnet[fast]'")
        import numba as module

        numba = module
    return numba


def _kernels():
    """The kernels' module, imported (and with it numba) on first use."""
    global _KERNELS
    if _KERNELS is None:
        _numba()
        from mfgnet.agents.simulation import fused_kernels

        _KERNELS = fused_kernels
    return _KERNELS


def kernel():
    """The kernel (numba compiles it on its first call, or loads it from its disk cache)."""
    return _kernels().run


def quantile_table(problem, nodes: int = 1 << 16) -> np.ndarray:
    """m0's quantile function at ``nodes`` equally spaced probabilities (1D, bounded domain): the CDF
    by the midpoint rule on as many cells, inverted by linear interpolation.  Sampling it linearly
    is exact for the piecewise-constant density on those cells (an O(h²) change of m0)."""
    import torch

    lower, upper = (float(v[0]) for v in problem.bounding_box().bounds())
    edges = np.linspace(lower, upper, nodes + 1)
    centres = torch.as_tensor(0.5 * (edges[1:] + edges[:-1]), dtype=torch.float64)[:, None]
    with torch.no_grad():
        weight = np.clip(problem.initial_density(centres).numpy().astype(np.float64), 0.0, None)
    cdf = np.concatenate([[0.0], np.cumsum(weight)])
    cdf /= cdf[-1]
    return np.interp(np.linspace(0.0, 1.0, nodes + 1), cdf, edges)


def initial_positions(quantiles: np.ndarray, key: int, first_agent: int, n: int) -> np.ndarray:
    """Positions (n, 1) float32 of agents first_agent ... first_agent + n − 1 drawn from the quantile
    table, each from its own counter (so independent of chunks and threads)."""
    out = np.empty(n, np.float64)
    _kernels().initial(quantiles, np.uint64(key), np.int64(first_agent), out)
    return out.astype(np.float32)[:, None]


def initial_cells(tables: FusedTables, quantiles: np.ndarray, key: int, first_agent: int, n: int) -> np.ndarray:
    """The same draw as :func:`initial_positions`, straight into the kernel's cell units (n,) float32."""
    out = np.empty(n, np.float32)
    _kernels().initial((quantiles - tables.lo) / tables.h, np.uint64(key), np.int64(first_agent), out)
    return out


def standard_normals(key: int, n: int) -> np.ndarray:
    """n float32 standard normals of the kernel's stream from counter ``key`` (for tests)."""
    return _kernels().draw(np.uint64(key), (n + 1) // 2)[:n]


@contextlib.contextmanager
def thread_count(threads: int):
    """numba's thread count set to ``threads`` (at most its pool size) for the block."""
    _numba()
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


class FusedTables:
    """The policy's tables in cell units (drift per step in cells), prepared once per run."""

    def __init__(self, spec) -> None:
        pol = spec.policy
        n = pol.n_nodes
        self.h, self.lo = float(pol.spacing[0]), float(pol.lower[0])
        scale = np.float32(spec.dt / self.h)
        self.vals = np.stack(spec.vals).astype(np.float32) * scale
        self.slopes = np.stack(spec.slopes).astype(np.float32) * scale
        self.periodic = bool(pol.periodic)
        self.extent = float(n if pol.periodic else n - 1)  # the domain in cell units: [0, n) or [0, n - 1]
        self.step_slice = np.asarray(spec.step_slice, np.int64)
        self.record_index = np.full(spec.n_steps + 1, -1, np.int64)
        for r, k in enumerate(spec.record):
            self.record_index[k] = r
        self.noise_scale = np.float32(spec.sigma / self.h)
        self.bins, self.n_record = spec.bins, len(spec.record)


def to_cells(tables: FusedTables, x: np.ndarray) -> np.ndarray:
    """Positions x (n, 1) in the kernel's cell units, (n,) float32."""
    return ((x[:, 0].astype(np.float64) - tables.lo) / tables.h).astype(np.float32)


def to_positions(tables: FusedTables, y: np.ndarray) -> np.ndarray:
    """Cell units back to positions (n, 1) float32."""
    return (tables.lo + y.astype(np.float64) * tables.h).astype(np.float32)[:, None]


def simulate_cells(tables: FusedTables, y: np.ndarray, key: int, first_agent: int) -> np.ndarray:
    """All steps of the agents ``first_agent, first_agent + 1, ...`` at y (n,) float32 in cell units
    (1D torus or box, linear interpolation, Gaussian noise), in place; returns the histograms
    (R, bins) int64 at the recorded steps."""
    t = tables
    _numba()
    hist = np.zeros((numba.get_num_threads(), t.n_record, t.bins), np.int64)
    # Blocks handed out 8 at a time rather than split evenly in advance: on a shared machine a
    # thread on a busy core would otherwise hold up the whole parallel region.
    with numba.parallel_chunksize(8):
        kernel()(y, t.vals, t.slopes, t.step_slice, t.record_index, t.noise_scale, t.periodic,
                 np.float32(t.extent), np.float32(t.bins / t.extent), t.bins, np.uint64(key), np.int64(first_agent),
                 hist)
    return hist.sum(0)
