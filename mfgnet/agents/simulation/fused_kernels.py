"""The numba kernels of :mod:`mfgnet.agents.simulation.fused` (the optional extra ``mfgnet[fast]``).

This module imports numba at the top, so only :mod:`mfgnet.agents.simulation.fused` imports it, and
only on first use: numba costs about half a second that ``import mfgnet.agents`` need not pay.  The
kernels are module-level functions and their constants module-level globals (numba freezes a
global's value into the compiled code) rather than closures over a compiling function's locals:
numba's disk cache (``cache=True``) cannot find a closure again in a new process, so each process
recompiled the kernels (seconds); module-level functions are loaded from the cache.  Caching
follows this file's modification time only, so the constants here must not depend on anything
but this file and :func:`~mfgnet.agents.simulation.fused.ziggurat_tables`.
"""

from __future__ import annotations

import numba
import numpy as np

from mfgnet.agents.simulation.fused import ziggurat_tables

BLOCK = 256  # agents advanced together (see run)

GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # the golden-ratio increment γ of SplitMix64
SALT = np.uint64(0xD1B54A32D192ED03)  # a second stream for the ziggurat's rare rejections
MIX1, MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)  # SplitMix64's multipliers
SHIFT30, SHIFT27, SHIFT31, SHIFT32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)
LOW32 = np.uint64(0xFFFFFFFF)
ZIGGURAT_K, ZIGGURAT_W, ZIGGURAT_F = ziggurat_tables()
ZIGGURAT_W32 = ZIGGURAT_W.astype(np.float32)  # the fast path in float32 (positions are float32 anyway)
TAIL = 3.442619855899  # r, where the ziggurat's base strip meets the tail


@numba.njit(inline="always")
def hash64(counter):
    """SplitMix64's output function of counter · γ: a counter-based stream of 64-bit words."""
    z = counter * GOLDEN
    z = (z ^ (z >> SHIFT30)) * MIX1
    z = (z ^ (z >> SHIFT27)) * MIX2
    return z ^ (z >> SHIFT31)


@numba.njit
def uniform(counter):
    """A uniform in (0, 1) from counter."""
    return ((hash64(counter) >> np.uint64(11)) + np.uint64(1)) * (1.0 / 9007199254740994.0)


@numba.njit
def rejected(j, i, counter):
    """The ziggurat's slow path (about 1.2 % of draws): the base strip's tail, or a wedge."""
    attempt = np.uint64(0)
    while True:
        x = j * ZIGGURAT_W[i]
        extra = (counter ^ SALT) + attempt * np.uint64(4)
        attempt += np.uint64(1)
        if i == 0:  # the tail beyond r, by Marsaglia's method
            while True:
                x = -np.log(uniform(extra)) / TAIL
                yv = -np.log(uniform(extra + np.uint64(1)))
                extra += np.uint64(2)
                if yv + yv >= x * x:
                    return TAIL + x if j > 0 else -TAIL - x
        if ZIGGURAT_F[i] + uniform(extra) * (ZIGGURAT_F[i - 1] - ZIGGURAT_F[i]) < np.exp(-0.5 * x * x):
            return x
        word = hash64(extra + np.uint64(1))
        j = np.int64(np.int32(word & LOW32))
        i = j & 127
        if abs(j) < ZIGGURAT_K[i]:
            return j * ZIGGURAT_W[i]


@numba.njit(inline="always")
def normal(word, counter):
    """A standard normal (float32) from the low 32 bits of word; counter seeds the slow path."""
    j = np.int64(np.int32(word & LOW32))
    i = j & 127
    if abs(j) < ZIGGURAT_K[i]:  # the fast path: a table lookup and a multiplication
        return np.float32(j) * ZIGGURAT_W32[i]
    return np.float32(rejected(j, i, counter))


@numba.njit(inline="always")
def normals(counter):
    """Two independent standard normals from one 64-bit word (the ziggurat on each half)."""
    word = hash64(counter)
    return normal(word, counter), normal(word >> SHIFT32, counter ^ GOLDEN)


@numba.njit(parallel=True, fastmath=True, cache=True)
def run(y, vals, slopes, step_slice, record_index, noise_scale, periodic, extent, bin_scale, bins, key,
        first_agent, hist):
    """All steps of agents y (cell units, in place), histograms added into hist[thread, record, bin]
    (see :func:`mfgnet.agents.simulation.fused.simulate_cells`)."""
    n_agents = y.shape[0]
    n_steps = step_slice.shape[0]
    last = extent
    period = np.float32(2.0) * last
    inv_last, inv_period = np.float32(1.0) / last, np.float32(1.0) / period
    pairs = np.uint64((n_steps + 1) // 2)
    n_blocks = (n_agents + BLOCK - 1) // BLOCK
    for blk in numba.prange(n_blocks):
        # A block of agents advances together: one agent's steps form a chain of dependent
        # operations (a lookup, an interpolation, the noise), and the block's independent
        # chains keep the core busy while each waits.
        thread = numba.get_thread_id()
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n_agents)
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
