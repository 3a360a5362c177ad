"""Tabular MF-Q's per-step work compiled by numba (the optional extra ``mfgnet[fast]``).

At N = 10^4 the numpy step of :mod:`mfgnet.agents.mfq.tabular` is about twenty array calls of
10^4 to 5·10^4 numbers each, and per-call overhead, temporaries and the (A, N) passes of the
softmax or the running argmax are most of its time.  Here one call, :func:`step`, does a chunk's
TD updates of step t (looking the rewards up in the game's
:meth:`~mfgnet.agents.mfq.games.MeanActionGame.reward_table` where it has one) and its action
draw of step t + 1 (the policy and, when ``revise_prob < 1``, who keeps its old action), and
counts the drawn actions.  Agents are taken in blocks of ``_BLOCK``: each block's Q-values are
copied into a small (A, block) buffer (ε-greedy reads one bin's rows in place) and every loop
runs along the block, on 1-D slices, so that LLVM vectorises it.

Same numbers as the numpy path: the kernels take the uniforms numpy draws from the same
generators in the same order (``rng.random(n, dtype=float32)`` for the actions, the revision
stream in float64), and repeat the numpy path's float32 arithmetic operation for operation
(no fused multiply-adds, the same order of sums).  The one difference is exp: a polynomial
(relative error 2.2e-7, two float32 ulps) that vectorises, where ``math.exp`` is a libm call per
number and was as slow as the rest of the step.  So an action differs from the numpy path's only
when its uniform lands within a few 1e-7 of a boundary of the policy's CDF, and runs agree in
distribution; tests/test_mfq_kernel.py compares both.

Tables are one per agent (``shared=False``): the shared table's averaged update stays in numpy.
"""

from __future__ import annotations

import numpy as np

from mfgnet.fast import NUMBA_AVAILABLE

# numba is optional (without it the numpy step runs) and imported on first use: it costs about
# half a second that `import mfgnet.agents` need not pay.
AVAILABLE = NUMBA_AVAILABLE
_KERNELS = None
_BLOCK = 256  # agents per vectorised block: their (A, block) Q-values stay in L1
# The kernel counts a block's actions in 12-bit fields of one int64: 5 fields, counts up to 4095.
_FIELD_BITS, _FIELD_MASK, _PACKED_ACTIONS = 12, 4095, 5
assert _BLOCK <= _FIELD_MASK and _PACKED_ACTIONS * _FIELD_BITS <= 63


def _compiled():
    global _KERNELS
    if _KERNELS is None:
        if not AVAILABLE:
            raise ImportError("the MF-Q kernel needs numba: pip install 'mfgnet[fast]'")
        _KERNELS = _compile()
    return _KERNELS


def compile_now() -> None:
    """Compile the kernels (or load them from numba's disk cache) now rather than on first use."""
    _compiled()


def step(Q: np.ndarray, first: int, current: np.ndarray, update: bool, ctx: np.ndarray, rewards: np.ndarray,
         table: np.ndarray, types: np.ndarray, lr: float, gamma: float, update_epsilon: float, next_ctx: np.ndarray,
         u: np.ndarray, boltzmann: bool, temperature: float, epsilon: float, jitter: np.ndarray,
         revise_u: np.ndarray, revise_prob: float, out: np.ndarray, counts: np.ndarray) -> None:
    """One chunk's TD updates of step t and its action draw of step t + 1, agent block by block, for
    the agents ``first .. first + len(current) - 1`` (``current``: their actions at step t, int32).

    The update (when ``update``): Q[ctx_i, a_i, i] += lr (r_i + γ v_i(next_ctx_i) - Q[ctx_i, a_i, i])
    as the numpy path does it (v as :func:`mfgnet.agents.mfq.tabular.policy_values` at
    ``update_epsilon``); ``rewards`` holds those agents' rewards or, where ``table`` (T, A) float32
    is not empty, is filled here with r_i = table[types[agent], a_i] (``types`` (N,) int; empty:
    row 0 for everyone).

    The draw (when ``u``, the agents' float32 uniforms, is not empty): their actions at step t + 1
    into ``out`` (int32) from Q(next_ctx_i, ·) after the update, as
    :func:`mfgnet.agents.mfq.tabular.sample_actions` draws them from ``u``; jitter (A, N):
    ε-greedy's tie-breaking preferences; revise_u: the revision stream's uniforms (float64, empty
    when everyone revises), an agent with revise_u >= revise_prob keeps its ``current`` action.
    ``counts`` (A,) int64 is incremented by the number of drawn actions of each kind.

    Q (bins, A, N) float32; ctx, next_ctx: the bin of every one of those agents, or one bin for all
    (size 1).  Each agent's draw reads only its own column of Q, which its own update wrote just
    before, so doing both in one pass gives the numbers of an update pass followed by a draw pass."""
    # The scalars go in as Python floats and become float32 inside (the same rounding as
    # np.float32 here, without ~0.3 us per conversion at every call).
    _compiled()[0](Q, first, current, update, ctx, rewards, table, types, lr, gamma, update_epsilon, next_ctx, u,
                   boltzmann, temperature, epsilon, jitter, revise_u, revise_prob, out, counts)


def exp_float32(x: np.ndarray) -> np.ndarray:
    """The kernels' exp of float32 numbers (for tests)."""
    z = np.array(x, dtype=np.float32).reshape(-1)
    _compiled()[1](z, z.size, np.empty(z.size, np.int32))
    return z.reshape(np.shape(x))


# Module-level constants (numba freezes globals into the compiled code; closures defeated its cache).
_F32 = np.float32
_LOG2E, _LN2_HI, _LN2_LO = _F32(1.4426950408889634), _F32(0.693145751953125), _F32(1.428606765330187e-06)
# exp(-87) is the smallest normal float32 power of two the construction below reaches, exp(88)
# the largest below float32's overflow; numpy gives 0 and inf beyond them, which no
# probability here can tell apart from these.
_X_MIN, _X_MAX = _F32(-87.0), _F32(88.0)
_C2, _C3, _C4, _C5, _C6 = _F32(1 / 2), _F32(1 / 6), _F32(1 / 24), _F32(1 / 120), _F32(1 / 720)
_ONE, _HALF = _F32(1.0), _F32(0.5)
_I32_ZERO = np.int32(0)
_exp_block_compiled = None  # set by _compile(): _step_kernel calls it


def _exp_block(z, m, bits):
    """z[:m] = exp(z[:m]) in place: exp(x) = 2^k exp(r), k = round(x / ln 2), |r| <= ln 2 / 2,
    exp(r) by its degree-6 Taylor polynomial, 2^k written straight into the exponent bits."""
    scale = bits.view(np.float32)
    for j in range(m):
        x = min(max(z[j], _X_MIN), _X_MAX)
        k = np.floor(x * _LOG2E + _HALF)
        r = x - k * _LN2_HI - k * _LN2_LO
        p = ((((_C6 * r + _C5) * r + _C4) * r + _C3) * r + _C2) * r
        z[j] = p * r + r + _ONE
        bits[j] = (np.int32(k) + np.int32(127)) << np.int32(23)
    for j in range(m):
        z[j] *= scale[j]


def _step_kernel(Q, first, current, update, ctx, rewards, table, types, lr64, gamma64, update_epsilon64, next_ctx,
                 u, boltzmann, temperature64, epsilon64, jitter, revise_u, revise_prob, out, counts):
    # Every inner loop runs over j in range(m) on 1-D slices of the block: indices LLVM sees
    # are non-negative and in range, so it vectorises them (3-D indexing with offsets it did not).
    # No loop writes x[j] with a select (or max) between a new value and x[j] itself: LLVM turns
    # ``x[j] = y if c else x[j]`` into a masked store (vmaskmovps), tens of cycles per 8 lanes on
    # AMD Zen, which made ε-greedy's running argmax the slowest loop of the step.  Such loops
    # write into ``staged`` instead, an unconditional store, and copy it back (or use an integer
    # max, which LLVM keeps as vpmaxsd).
    n_act = Q.shape[1]
    n = current.size
    sample = u.size > 0
    # float32 parameters, each computed in float64 and rounded once, as the numpy path does
    lr, gamma, temperature = _F32(lr64), _F32(gamma64), _F32(temperature64)
    update_epsilon, greedy_weight = _F32(update_epsilon64), _F32(1 - update_epsilon64)
    beta, epsilon = _F32(1.0 / temperature64), _F32(epsilon64)
    explore_scale = _F32(n_act / max(epsilon64, 1e-30))
    target = np.empty(_BLOCK, np.float32)
    q = np.empty((n_act, _BLOCK), np.float32)
    best = np.empty(_BLOCK, np.float32)
    staged = np.empty(_BLOCK, np.float32)
    chosen = np.empty(_BLOCK, np.int32)  # int32: vectorises twice as wide as int64
    bits = np.empty(_BLOCK, np.int32)
    for s in range(0, n, _BLOCK):
        m = min(_BLOCK, n - s)
        col = first + s
        acts = current[s:s + m]
        # -- the TD update of step t ----------------------------------------------------------------
        if update:
            rs = rewards[s:s + m]
            if table.size:  # the rewards from the game's table (row: the agent's type)
                if types.size:
                    ts = types[col:col + m]
                    for j in range(m):
                        rs[j] = table[ts[j], acts[j]]
                else:
                    row0 = table[0]
                    for j in range(m):
                        rs[j] = row0[acts[j]]
            for j in range(m):
                target[j] = rs[j]
            if gamma > 0:  # v = Σ_a π(a | next_ctx) Q(next_ctx, a), summed in the numpy path's order
                for j in range(m):
                    cn = next_ctx[0] if next_ctx.size == 1 else next_ctx[s + j]
                    top = Q[cn, 0, col + j]
                    total = Q[cn, 0, col + j]
                    for k in range(1, n_act):
                        top = max(top, Q[cn, k, col + j])
                        total += Q[cn, k, col + j]
                    if boltzmann:  # off the hot path (the speed table runs γ = 0): libm's exp is fine
                        weights = _F32(0.0)
                        weighted = _F32(0.0)
                        for k in range(n_act):
                            z = _F32(np.exp((Q[cn, k, col + j] - top) / temperature))
                            weights += z
                            weighted += z * Q[cn, k, col + j]
                        v = weighted / weights
                    else:
                        v = greedy_weight * top + update_epsilon * (total / _F32(n_act))
                    target[j] = target[j] + gamma * v
            if ctx.size == 1:
                # One bin: every action's row is rewritten, the acted entry updated and the others
                # unchanged: a select that vectorises, where the scattered update (AVX2 has no
                # scatter) did not.  The acted entry gets the numpy path's q + lr (target - q),
                # computed for every entry so that target is read unconditionally (no masked load).
                for k in range(n_act):
                    row = Q[ctx[0], k, col:col + m]
                    kk = np.int32(k)
                    for j in range(m):
                        old = row[j]
                        learned = old + lr * (target[j] - old)
                        staged[j] = learned if acts[j] == kk else old
                    for j in range(m):
                        row[j] = staged[j]
            else:
                for j in range(m):
                    c, a = ctx[s + j], acts[j]
                    old = Q[c, a, col + j]
                    Q[c, a, col + j] = old + lr * (target[j] - old)
        if not sample:
            continue
        # -- the action draw of step t + 1, from the updated tables ------------------------------------
        us = u[s:s + m]
        for k in range(n_act if boltzmann or next_ctx.size != 1 else 0):  # ε-greedy reads one bin's rows in place
            qk = q[k]
            if next_ctx.size == 1:  # everyone in one bin: a contiguous row of Q
                row = Q[next_ctx[0], k, col:col + m]
                for j in range(m):
                    qk[j] = row[j]
            else:
                cs = next_ctx[s:s + m]
                for j in range(m):
                    qk[j] = Q[cs[j], k, col + j]
        if boltzmann and n_act == 2:  # the numpy path's logistic form: one exp
            q0, q1 = q[0], q[1]
            for j in range(m):
                best[j] = (q0[j] - q1[j]) * beta
            _exp_block_compiled(best, m, bits)
            for j in range(m):
                chosen[j] = 1 if us[j] * (_ONE + best[j]) < _ONE else 0
        elif boltzmann:  # inverse CDF: z = exp(β (q - max q)), running sums, count the sums below u Σz
            q0 = q[0]
            for j in range(m):
                best[j] = q0[j]
            for k in range(1, n_act):
                qk = q[k]
                for j in range(m):
                    staged[j] = max(best[j], qk[j])
                for j in range(m):
                    best[j] = staged[j]
            for k in range(n_act):
                qk = q[k]
                for j in range(m):
                    qk[j] = (qk[j] - best[j]) * beta
                _exp_block_compiled(qk, m, bits)
            for k in range(1, n_act):
                qk, qp = q[k], q[k - 1]
                for j in range(m):
                    qk[j] += qp[j]
            total = q[n_act - 1]
            for j in range(m):
                best[j] = us[j] * total[j]  # u Σz
                chosen[j] = 0
            for k in range(n_act - 1):
                qk = q[k]
                for j in range(m):
                    chosen[j] += np.int32(best[j] > qk[j])
        else:  # ε-greedy: running argmax of q + jitter (first maximum wins), u < ε explores
            one_bin = next_ctx.size == 1
            q0, jit0 = Q[next_ctx[0], 0, col:col + m] if one_bin else q[0], jitter[0, col:col + m]
            for j in range(m):
                best[j] = q0[j] + jit0[j]
                chosen[j] = 0
            for k in range(1, n_act):
                qk, jitk = Q[next_ctx[0], k, col:col + m] if one_bin else q[k], jitter[k, col:col + m]
                kk = np.int32(k)
                for j in range(m):  # the numpy path's ``better = qj[k] > best``: the first maximum wins
                    v = qk[j] + jitk[j]
                    b = best[j]
                    # k is above every action chosen so far: max(chosen, k if better else 0) is k
                    # exactly when v beats the best so far (an int32 max: vpmaxsd, no masked store)
                    chosen[j] = np.maximum(chosen[j], kk if v > b else _I32_ZERO)
                    staged[j] = v if v > b else b
                for j in range(m):
                    best[j] = staged[j]
            top = _F32(n_act - 1)
            for j in range(m):  # an exploring agent's u / ε is uniform on [0, 1): a uniform action
                # min before the conversion (numpy's after it is the same for u >= 0): no overflow
                # for tiny ε, and float32 -> int32 conversions vectorise.
                explore = np.int32(min(us[j] * explore_scale, top))
                chosen[j] = explore if us[j] < epsilon else chosen[j]
        if revise_u.size:
            rs_u = revise_u[s:s + m]
            for j in range(m):
                chosen[j] = chosen[j] if rs_u[j] < revise_prob else acts[j]
        outs = out[s:s + m]
        for j in range(m):
            outs[j] = chosen[j]
        # The action counts (the mean action and the recorded shares without another pass over the
        # population in numpy).  Up to 5 actions: one pass adding 2^(12 a) per agent, every action's
        # count in a 12-bit field of one int64 (a block's count, <= 256, fits); else a pass per action.
        if n_act <= _PACKED_ACTIONS:
            packed = np.int64(0)
            for j in range(m):
                packed += np.int64(1) << (np.int64(_FIELD_BITS) * chosen[j])
            for k in range(n_act):
                counts[k] += (packed >> (_FIELD_BITS * k)) & _FIELD_MASK
        else:
            for k in range(n_act):
                kk = np.int32(k)
                hits = 0
                for j in range(m):
                    hits += chosen[j] == kk
                counts[k] += hits


_SIGNATURES = {
    "step": "void(f4[:, :, ::1], i8, i4[::1], b1, i8[::1], f4[::1], f4[:, ::1], i8[::1], f8, f8, f8, i8[::1], "
            "f4[::1], b1, f8, f8, f4[:, ::1], f8[::1], f8, i4[::1], i8[::1])",
    "exp": "void(f4[::1], i8, i4[::1])",
}


def _compile():
    """Compile the kernels for their one signature each (or load them from numba's disk cache)."""
    global _exp_block_compiled
    import numba

    def jit(signature, func):
        return numba.njit(signature, cache=True, nogil=True, error_model="numpy", boundscheck=False)(func)

    _exp_block_compiled = jit(_SIGNATURES["exp"], _exp_block)
    return jit(_SIGNATURES["step"], _step_kernel), _exp_block_compiled
