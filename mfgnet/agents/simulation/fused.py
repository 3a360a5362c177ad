"""A fused 1D simulation kernel compiled by numba (the optional extra ``mfgnet[fast]``).

The numpy kernel of :mod:`mfgnet.agents.simulation.simulate` makes about a dozen passes over
its arrays per step, each a separate call.  Here each agent is carried through all its steps
in registers (the loop over agents runs on numba's threads): per step one table lookup, a
linear interpolation, a Gaussian increment and the boundary, with no array traffic at all.

Random numbers are counter-based: the pair of standard normals of agent ``i`` at steps
``2p, 2p + 1`` comes from one 64-bit word, SplitMix64's output function applied to
``key + i · P + p`` times γ (γ the golden-ratio increment, P the number of step pairs), by a
ziggurat (Marsaglia and Tsang 2000) on each 32-bit half: a table lookup and a multiplication in
99 % of draws (Box–Muller's logarithm and sine cost three times the rest of the step).  The
initial positions come from m0's quantile table (:func:`quantile_table`) at one counter per
agent as well (rejection sampling, the numpy path's draw, took longer than the steps at
N = 10^7).  So a run depends on the seed alone, not on the thread count or on how agents are
split into chunks, and any agent's path can be recomputed by itself.  The statistics are those
of the numpy kernel (same scheme, independent numbers): tests/test_simulation_fused.py compares
them, and ``python -m mfgnet.bench --only agents`` times the two side by side.
"""

from __future__ import annotations

import contextlib
import importlib.util

import numpy as np

# numba is an optional dependency (without it the numpy kernel runs), imported on first use: it
# costs about half a second, which `import mfgnet.agents` need not pay.
AVAILABLE = importlib.util.find_spec("numba") is not None
numba = None
_KERNEL = None
_BLOCK = 256  # agents advanced together (see the kernel)


def _numba():
    global numba
    if numba is None:
        if not AVAILABLE:
            raise ImportError("the fused simulation kernel needs numba: pip install 'mfgnet[fast]'")
        import numba as module

        numba = module
    return numba


def _compiled():
    global _KERNEL
    if _KERNEL is None:
        _numba()
        _KERNEL = _compile()
    return _KERNEL


def kernel():
    """The compiled kernel (compiled on first use, cached on disk by numba)."""
    return _compiled()[0]


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
    _compiled()[2](quantiles, np.uint64(key), np.int64(first_agent), out)
    return out.astype(np.float32)[:, None]


def initial_cells(tables: FusedTables, quantiles: np.ndarray, key: int, first_agent: int, n: int) -> np.ndarray:
    """The same draw as :func:`initial_positions`, straight into the kernel's cell units (n,) float32."""
    out = np.empty(n, np.float32)
    _compiled()[2]((quantiles - tables.lo) / tables.h, np.uint64(key), np.int64(first_agent), out)
    return out


def standard_normals(key: int, n: int) -> np.ndarray:
    """n float32 standard normals of the kernel's stream from counter ``key`` (for tests)."""
    return _compiled()[1](np.uint64(key), (n + 1) // 2)[:n]


def ziggurat_tables(layers: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marsaglia and Tsang's (2000) ziggurat for the standard normal on 32-bit signed integers:
    (k, w, f) — acceptance thresholds on |j|, the scale of layer i, and the density at its top."""
    r, v = 3.442619855899, 9.91256303526217e-3  # the 128-layer constants of the paper
    m1 = 2.0 ** 31
    k, w, f = np.zeros(layers, np.int64), np.zeros(layers), np.zeros(layers)
    q = v / np.exp(-0.5 * r * r)
    k[0], k[1] = int(r / q * m1), 0
    w[0], w[-1] = q / m1, r / m1
    f[0], f[-1] = 1.0, np.exp(-0.5 * r * r)
    d = t = r
    for i in range(layers - 2, 0, -1):
        d = np.sqrt(-2.0 * np.log(v / d + np.exp(-0.5 * d * d)))
        k[i + 1] = int(d / t * m1)
        t = d
        f[i] = np.exp(-0.5 * d * d)
        w[i] = d / m1
    return k, w, f


def _compile():
    golden = np.uint64(0x9E3779B97F4A7C15)
    salt = np.uint64(0xD1B54A32D192ED03)  # a second stream for the ziggurat's rare rejections
    mix1, mix2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
    s30, s27, s31, s32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)
    low32 = np.uint64(0xFFFFFFFF)
    zk, zw, zf = ziggurat_tables()
    zw32 = zw.astype(np.float32)  # the fast path in float32 (positions are float32 anyway)
    tail = 3.442619855899

    @numba.njit(inline="always")
    def hash64(counter):
        """SplitMix64's output function of counter · γ: a counter-based stream of 64-bit words."""
        z = counter * golden
        z = (z ^ (z >> s30)) * mix1
        z = (z ^ (z >> s27)) * mix2
        return z ^ (z >> s31)

    @numba.njit
    def uniform(counter):  # in (0, 1)
        return ((hash64(counter) >> np.uint64(11)) + np.uint64(1)) * (1.0 / 9007199254740994.0)

    @numba.njit
    def rejected(j, i, counter):
        """The ziggurat's slow path (about 1.2 % of draws): the base strip's tail, or a wedge."""
        attempt = np.uint64(0)
        while True:
            x = j * zw[i]
            extra = (counter ^ salt) + attempt * np.uint64(4)
            attempt += np.uint64(1)
            if i == 0:  # the tail beyond r, by Marsaglia's method
                while True:
                    x = -np.log(uniform(extra)) / tail
                    yv = -np.log(uniform(extra + np.uint64(1)))
                    extra += np.uint64(2)
                    if yv + yv >= x * x:
                        return tail + x if j > 0 else -tail - x
            if zf[i] + uniform(extra) * (zf[i - 1] - zf[i]) < np.exp(-0.5 * x * x):
                return x
            word = hash64(extra + np.uint64(1))
            j = np.int64(np.int32(word & low32))
            i = j & 127
            if abs(j) < zk[i]:
                return j * zw[i]

    @numba.njit(inline="always")
    def normal(word, counter):
        j = np.int64(np.int32(word & low32))
        i = j & 127
        if abs(j) < zk[i]:  # the fast path: a table lookup and a multiplication
            return np.float32(j) * zw32[i]
        return np.float32(rejected(j, i, counter))

    @numba.njit(inline="always")
    def normals(counter):
        """Two independent standard normals from one 64-bit word (the ziggurat on each half)."""
        word = hash64(counter)
        return normal(word, counter), normal(word >> s32, counter ^ golden)

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def run(y, vals, slopes, step_slice, record_index, noise_scale, periodic, extent, bin_scale, bins, key,
            first_agent, hist):
        n_agents = y.shape[0]
        n_steps = step_slice.shape[0]
        last = extent
        period = np.float32(2.0) * last
        inv_last, inv_period = np.float32(1.0) / last, np.float32(1.0) / period
        pairs = np.uint64((n_steps + 1) // 2)
        n_blocks = (n_agents + _BLOCK - 1) // _BLOCK
        for blk in numba.prange(n_blocks):
            # A block of agents advances together: one agent's steps form a chain of dependent
            # operations (a lookup, an interpolation, the noise), and the block's independent
            # chains keep the core busy while each waits.
            thread = numba.get_thread_id()
            lo = blk * _BLOCK
            hi = min(lo + _BLOCK, n_agents)
            yb = y[lo:hi].copy()
            spare = np.empty(hi - lo, np.float32)
            for k in range(n_steps + 1):
                r = record_index[k]
                if r >= 0:
                    for a in range(hi - lo):
                        b = int(yb[a] * bin_scale)
                        b = 0 if b < 0 else (bins - 1 if b > bins - 1 else b)
                        hist[thread, r, b] += 1
                if k == n_steps:
                    break
                j = step_slice[k]
                even = k % 2 == 0
                for a in range(hi - lo):
                    yi = yb[a]
                    s = yi if periodic else min(max(yi, np.float32(0.0)), last)
                    cell = int(s)
                    yi += vals[j, cell] + slopes[j, cell] * (s - np.float32(cell))
                    if noise_scale > 0:
                        if even:
                            xi, spare[a] = normals(key + np.uint64(first_agent + lo + a) * pairs + np.uint64(k // 2))
                        else:
                            xi = spare[a]
                        yi += noise_scale * xi
                    if periodic:
                        yi -= last * np.floor(yi * inv_last)
                        if yi >= last:  # round-off of the line above
                            yi -= last
                    else:  # mirror reflection into [0, last]: the triangle wave of period 2 last
                        t = yi - period * np.floor(yi * inv_period)
                        yi = last - abs(last - t)
                    yb[a] = yi
            y[lo:hi] = yb

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def initial(quantiles, key, first_agent, out):
        """out[i] = Q(u) for agent first_agent + i, u its own uniform, Q linear between the table's
        nodes (the quantile function of m0 at equally spaced probabilities)."""
        steps = quantiles.shape[0] - 1
        for i in numba.prange(out.shape[0]):
            u = (hash64(key + np.uint64(first_agent + i)) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
            s = u * steps
            k = min(int(s), steps - 1)
            out[i] = quantiles[k] + (quantiles[k + 1] - quantiles[k]) * (s - k)

    @numba.njit(cache=True)
    def draw(key, n_pairs):
        """The 2 n_pairs normals of counters key, key + 1, ... (for tests)."""
        out = np.empty(2 * n_pairs, np.float32)
        for p in range(n_pairs):
            out[2 * p], out[2 * p + 1] = normals(key + np.uint64(p))
        return out

    return run, draw, initial


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
