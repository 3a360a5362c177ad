"""The numba kernels of :mod:`mfgnet.agents.simulation.fused` (the optional extra ``mfgnet[fast]``).

This module imports numba at the top, so only :mod:`mfgnet.agents.simulation.fused` imports it, and
only on first use: numba costs about half a second that ``import mfgnet.agents`` need not pay.  The
kernels are module-level functions and their constants module-level globals (numba freezes a
global's value into the compiled code) rather than closures over a compiling function's locals:
numba's disk cache (``cache=True``) cannot find a closure again in a new process, so each process
recompiled the kernels (seconds); module-level functions are loaded from the cache.  Caching
follows this file's modification time only, so the constants here must not depend on anything
but this file.
"""

from __future__ import annotations

import numba
import numpy as np

BLOCK = 512  # agents advanced together (see run)

GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # the golden-ratio increment γ of SplitMix64
MIX1, MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)  # SplitMix64's multipliers
SHIFT30, SHIFT27, SHIFT31, SHIFT32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)
LOW32 = np.uint64(0xFFFFFFFF)
LN2 = np.float32(np.log(2.0))
SQRT_HALF = np.float32(np.sqrt(0.5))
QUARTER_TURN = np.float32(np.pi / 2)


@numba.njit(inline="always")
def hash64(counter):
    """SplitMix64's output function of counter · γ: a counter-based stream of 64-bit words."""
    z = counter * GOLDEN
    z = (z ^ (z >> SHIFT30)) * MIX1
    z = (z ^ (z >> SHIFT27)) * MIX2
    return z ^ (z >> SHIFT31)


@numba.njit(inline="always", fastmath=True, error_model="numpy")
def log_unit(x):
    """ln x for float32 x in [2^-33, 1), without libm and without branches (so that a loop over
    agents vectorises): x is doubled into [√½, √2) by masked multiplications (the halvings
    counted in e), then ln x = 2 artanh z, z = (x − 1)/(x + 1), |z| ≤ 0.172, by four terms of its
    series (truncation 2|z|⁹/9 < 3e-8).  Absolute error ≤ 3e-6 over the range (a test)."""
    e = np.float32(0.0)
    small = np.float32(x < np.float32(2.0 ** -16))  # 1.0 where the halving applies, else 0.0
    x = x * (np.float32(1.0) + small * np.float32(2.0 ** 16 - 1))
    e = e + small * np.float32(16.0)
    small = np.float32(x < np.float32(2.0 ** -8))
    x = x * (np.float32(1.0) + small * np.float32(2.0 ** 8 - 1))
    e = e + small * np.float32(8.0)
    small = np.float32(x < np.float32(2.0 ** -4))
    x = x * (np.float32(1.0) + small * np.float32(2.0 ** 4 - 1))
    e = e + small * np.float32(4.0)
    small = np.float32(x < np.float32(2.0 ** -2))
    x = x * (np.float32(1.0) + small * np.float32(3.0))
    e = e + small * np.float32(2.0)
    small = np.float32(x < np.float32(0.5))
    x = x * (np.float32(1.0) + small)
    e = e + small
    small = np.float32(x < SQRT_HALF)
    x = x * (np.float32(1.0) + small)
    e = e + small
    z = (x - np.float32(1.0)) / (x + np.float32(1.0))
    z2 = z * z
    series = z * (np.float32(2.0) + z2 * (np.float32(2.0 / 3.0) + z2 * (np.float32(0.4) + z2 * np.float32(2.0 / 7.0))))
    return series - e * LN2


@numba.njit(inline="always", fastmath=True, error_model="numpy")
def normals(word):
    """Two independent standard normals (float32) from one 64-bit word, by Box–Muller: the high
    32 bits give the radius √(−2 ln u), u = (k + ½) 2^-32 (so |z| ≤ 6.8), the low 32 bits the angle,
    two of them its quadrant and the other 30 an angle in [−π/4, π/4) whose sine and cosine are
    Taylor polynomials (truncation < 4e-7).  No table lookups, no rejections and no libm calls,
    so the loop over a block's agents runs on the vector units."""
    u = (np.float32(np.int64(word >> SHIFT32)) + np.float32(0.5)) * np.float32(2.0 ** -32)
    radius = np.sqrt(np.float32(-2.0) * log_unit(u))
    low = np.int64(word & LOW32)
    quadrant = low >> np.int64(30)
    phi = (np.float32(low & np.int64(0x3FFFFFFF)) * np.float32(2.0 ** -30) - np.float32(0.5)) * QUARTER_TURN
    p2 = phi * phi
    sin = phi * (np.float32(1.0) + p2 * (np.float32(-1.0 / 6.0) + p2 * (np.float32(1.0 / 120.0)
                                                                        + p2 * np.float32(-1.0 / 5040.0))))
    cos = np.float32(1.0) + p2 * (np.float32(-0.5) + p2 * (np.float32(1.0 / 24.0) + p2 * (
        np.float32(-1.0 / 720.0) + p2 * np.float32(1.0 / 40320.0))))
    # Rotate (cos, sin) by quadrant quarter turns: swap on odd quadrants, then the signs.
    swap = np.float32(quadrant & np.int64(1))
    first = cos + swap * (sin - cos)
    second = sin + swap * (cos - sin)
    first = first * np.float32(1 - 2 * ((quadrant ^ (quadrant >> np.int64(1))) & np.int64(1)))
    second = second * np.float32(1 - 2 * (quadrant >> np.int64(1)))
    return radius * first, radius * second


@numba.njit(parallel=True, fastmath=True, error_model="numpy", cache=True)
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
        # A block of agents (kept in L1) takes each step in passes over the block: the noise of two
        # steps at once (vectorised: see normals), then the drift, noise and boundary (scalar: the
        # table lookup is a gather that numba cannot prove free of aliasing with the stores).
        thread = numba.get_thread_id()
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n_agents)
        size = hi - lo
        yb = y[lo:hi].copy()
        noise_even = np.zeros(size, np.float32)
        noise_odd = np.zeros(size, np.float32)
        first_counter = key + np.uint64(first_agent + lo) * pairs
        for k in range(n_steps + 1):
            r = record_index[k]
            if r >= 0:
                for a in range(size):
                    b = int(yb[a] * bin_scale)
                    b = 0 if b < 0 else (bins - 1 if b > bins - 1 else b)
                    hist[thread, r, b] += 1
            if k == n_steps:
                break
            if noise_scale > 0 and k % 2 == 0:  # agent i's pair p: counter key + i P + p
                counter = first_counter + np.uint64(k // 2)
                for a in range(size):
                    z0, z1 = normals(hash64(counter + np.uint64(a) * pairs))
                    noise_even[a] = z0 * noise_scale
                    noise_odd[a] = z1 * noise_scale
            noise = noise_even if k % 2 == 0 else noise_odd
            vj, sj = vals[step_slice[k]], slopes[step_slice[k]]
            if periodic:
                for a in range(size):
                    yi = yb[a]
                    cell = int(yi)
                    yi += vj[cell] + sj[cell] * (yi - np.float32(cell)) + noise[a]
                    yi -= last * np.floor(yi * inv_last)
                    yb[a] = yi - last if yi >= last else yi  # round-off of the line above
            else:  # mirror reflection into [0, last]: the triangle wave of period 2 last
                for a in range(size):
                    yi = yb[a]
                    s = min(max(yi, np.float32(0.0)), last)
                    cell = int(s)
                    yi += vj[cell] + sj[cell] * (s - np.float32(cell)) + noise[a]
                    t = yi - period * np.floor(yi * inv_period)
                    yb[a] = last - abs(last - t)
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


@numba.njit(fastmath=True, error_model="numpy", cache=True)
def draw(key, n_pairs):
    """The 2 n_pairs normals of counters key, key + 1, ... (for tests)."""
    out = np.empty(2 * n_pairs, np.float32)
    for p in range(n_pairs):
        z0, z1 = normals(hash64(key + np.uint64(p)))
        out[2 * p] = z0
        out[2 * p + 1] = z1
    return out


@numba.njit(fastmath=True, error_model="numpy", cache=True)
def log_units(x):
    """log_unit at each of x (float32; for tests)."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = log_unit(x[i])
    return out
