"""Classic finite MFGs, rebuilt from MFGLib 0.3.0's and OpenSpiel 2.0's definitions.

Each builder returns a [`FiniteMFG`][mfgnet.agents.finite.FiniteMFG] (rewards are maximised).  Where the reference
implementation has a quirk that changes the game, the builder reproduces it by default (so
exploitability trajectories can be compared) and names it in the docstring.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mfgnet.agents.finite.game import FiniteMFG
from mfgnet.benchmarks import TwoRoadTraffic
from mfgnet.problems import ProblemError


def _clip_walk(n: int, moves: np.ndarray, probs: np.ndarray, wrap: bool) -> np.ndarray:
    """P[s, a, s'] for a 1D walk s' = s + move_a + noise, noise ~ probs (on -1, 0, 1), clipped or wrapped."""
    s = np.arange(n)[:, None, None]
    dest = s + moves[None, :, None] + np.array([-1, 0, 1])[None, None, :]
    dest = np.mod(dest, n) if wrap else np.clip(dest, 0, n - 1)
    P = np.zeros((n, moves.size, n))
    si, ai, _ = np.broadcast_arrays(s, np.arange(moves.size)[None, :, None], dest)
    np.add.at(P, (si.ravel(), ai.ravel(), dest.ravel()), np.broadcast_to(probs, dest.shape).ravel())
    return P


def beach_bar(n: int = 4, horizon: int = 2, bar_loc: int = 2, log_eps: float = 1e-20,
              p_still: float = 0.5) -> FiniteMFG:
    """Beach bar (Perrin et al. 2020; MFGLib 0.3.0): n sites, actions left/stay/right.

    r(s, a, μ) = -d(s, bar) - |a - 1|/n - ln(μ(s) + log_eps).  As in MFGLib, the distance d
    to the bar is measured around the ring while the moves stop at the edges.
    """
    if n < 1 or not 0 <= bar_loc < n:
        raise ProblemError(f"beach_bar needs n >= 1 and 0 <= bar_loc < n, got n={n}, bar_loc={bar_loc}")
    if not 0 <= p_still <= 1:
        raise ProblemError(f"p_still must lie in [0, 1], got {p_still}")
    q = (1 - p_still) / 2
    P = _clip_walk(n, np.array([-1, 0, 1]), np.array([q, p_still, q]), wrap=False)
    diff = np.abs(np.arange(n) - bar_loc)
    base = -np.minimum(diff, n - diff)[:, None] - np.array([1.0, 0.0, 1.0])[None, :] / n

    def reward(t, L):
        return base - np.log(L.sum(-1) + log_eps)[:, None]

    def reward_flow(L):  # reward(t, L[t]) for every t at once
        return base - np.log(L.sum(-1) + log_eps)[..., None]

    return FiniteMFG(horizon, np.full(n, 1.0 / n), 3, reward, lambda t, L: P, static_transition=True,
                     name=f"beach_bar_n{n}_T{horizon}", reward_flow=reward_flow)


def left_right(mu0=(1.0, 0.0, 0.0)) -> FiniteMFG:
    """Left-right (Cui & Koeppl 2021): from the centre go left or right; being on a side costs
    its share, doubled on the right.  Equilibrium: left with probability 2/3."""
    P = np.zeros((3, 2, 3))
    P[:, 0, 1] = 1.0
    P[:, 1, 2] = 1.0

    def reward(t, L):
        mu = L.sum(-1)
        r = np.zeros((3, 2))
        r[1], r[2] = -mu[1], -2 * mu[2]
        return r

    return FiniteMFG(1, np.asarray(mu0, dtype=float), 2, reward, lambda t, L: P, static_transition=True,
                     name="left_right")


def susceptible_infected(horizon: int = 50, mu0=(0.4, 0.6)) -> FiniteMFG:
    """Susceptible-infected (Cui & Koeppl 2021): states S/I, actions go out / distance.
    A susceptible agent going out is infected with probability 0.81 μ(I); I recovers w.p. 0.3."""
    r = np.array([[0.0, -0.5], [-1.0, -1.5]])

    def transition(t, L):
        infected = L[1].sum()
        P = np.zeros((2, 2, 2))
        P[1, :, 0], P[1, :, 1] = 0.3, 0.7
        P[0, 0, 1] = 0.81 * infected
        P[0, 0, 0] = 1 - 0.81 * infected
        P[0, 1, 0] = 1.0
        return P

    return FiniteMFG(horizon, np.asarray(mu0, dtype=float), 2, lambda t, L: r, transition,
                     name="susceptible_infected")


SIRV_STATES = ("S", "I", "R", "V")


def sir_vaccination(horizon: int = 80, infection: float = 0.3, recovery: float = 0.1, vaccination: float = 0.2,
                    vaccination_cost: float = 0.4, infection_cost: float = 1.0, infected0: float = 0.01) -> FiniteMFG:
    """SIR with individual vaccination (in the spirit of Doncel, Gast and Gaujal's vaccination
    game): states S, I, R, V; a susceptible agent chooses each step whether to seek vaccination
    (action 1, cost ``vaccination_cost`` per step of effort, success with probability
    ``vaccination``, then V for good) or not (action 0).  A susceptible agent is infected with
    probability ``infection`` × (fraction infected) per step, whatever it does (the shot takes
    effect once it succeeds); an infected one recovers with probability ``recovery`` and pays
    ``infection_cost`` per step ill.  R and V are absorbing; the action matters in S only.
    Rewards are the negated costs (agents maximise).  Vaccinating protects the others too, which
    a selfish agent does not count: the equilibrium vaccinates less than the social optimum
    (:mod:`mfgnet.agents.epidemic`)."""
    for name, value in (("infection", infection), ("recovery", recovery), ("vaccination", vaccination)):
        if not 0 <= value <= 1:
            raise ProblemError(f"sir_vaccination: {name} must be a probability in [0, 1], got {value!r}")
    if infection + vaccination > 1:
        raise ProblemError(f"sir_vaccination: infection + vaccination must be <= 1 (one step's probabilities), "
                           f"got {infection} + {vaccination}")
    if not 0 < infected0 < 1:
        raise ProblemError(f"sir_vaccination: infected0 must lie in (0, 1), got {infected0!r}")
    r = np.zeros((4, 2))
    r[0, 1] = -vaccination_cost
    r[1, :] = -infection_cost

    def transition(t, L):
        infected = L[1].sum()
        P = np.zeros((4, 2, 4))
        p_inf = infection * infected
        P[0, 0, 1], P[0, 0, 0] = p_inf, 1 - p_inf
        P[0, 1, 3], P[0, 1, 1], P[0, 1, 0] = vaccination, p_inf, 1 - vaccination - p_inf
        P[1, :, 2], P[1, :, 1] = recovery, 1 - recovery
        P[2, :, 2] = 1.0
        P[3, :, 3] = 1.0
        return P

    def reward(t, L):
        return r if t < horizon else np.zeros_like(r)  # no decision is paid for after the horizon

    game = FiniteMFG(horizon, np.array([1 - infected0, infected0, 0.0, 0.0]), 2, reward, transition,
                     name="sir_vaccination")
    game.info.update(states=SIRV_STATES, infection=infection, recovery=recovery, vaccination=vaccination,
                     vaccination_cost=vaccination_cost, infection_cost=infection_cost)
    return game


def linear_quadratic(horizon: int = 3, el: int = 5, m: int = 2, sigma: float = 3.0, delta: float = 0.1,
                     k: float = 1.0, q: float = 0.01, kappa: float = 0.5, c_term: float = 1.0,
                     mfglib_noise: bool = True) -> FiniteMFG:
    """Linear-quadratic chain (Perrin et al. 2020) on states -el..el with actions -m..m.

    x' = round(x + (k(x̄ - x) + a)Δ + σ ε √Δ) clipped, ε on -3..3 with Gaussian weights.
    MFGLib 0.3.0 puts σ into ε as well (noise scale σ²); ``mfglib_noise=False`` uses σ once.
    """
    xs = np.arange(-el, el + 1, dtype=float)
    acts = np.arange(-m, m + 1, dtype=float)
    eps = np.arange(-3, 4, dtype=float)
    w = np.exp(-0.5 * (eps * sigma) ** 2 if mfglib_noise else -0.5 * eps**2)
    w /= w.sum()
    noise = sigma * (eps * sigma if mfglib_noise else eps) * math.sqrt(delta)
    n_s, n_a = xs.size, acts.size

    def transition(t, L):
        mean = xs @ L.sum(-1)
        nxt = xs[:, None, None] + (k * (mean - xs)[:, None, None] + acts[None, :, None]) * delta \
            + noise[None, None, :]
        idx = np.clip(np.round(nxt), -el, el).astype(int) + el  # np.round: half to even, like torch
        P = np.zeros((n_s, n_a, n_s))
        si, ai, _ = np.broadcast_arrays(np.arange(n_s)[:, None, None], np.arange(n_a)[None, :, None], idx)
        np.add.at(P, (si.ravel(), ai.ravel(), idx.ravel()), np.broadcast_to(w, idx.shape).ravel())
        return P

    def reward(t, L):
        gap = xs @ L.sum(-1) - xs[:, None]  # (S, 1): x̄ - x
        if t == horizon:
            return np.broadcast_to(-0.5 * c_term * gap**2, (n_s, n_a)).copy()
        return (-0.5 * acts[None, :] ** 2 + q * acts[None, :] * gap - 0.5 * kappa * gap**2) * delta

    return FiniteMFG(horizon, np.full(n_s, 1.0 / n_s), n_a, reward, transition, name="linear_quadratic")


def crowd_motion(horizon: int = 3, torus_l: int = 20, torus_w: int = 20, loc_change_freq: int = 2, c: float = 10.0,
                 log_eps: float = 1e-10, p_still: float = 0.5, seed: int = 0) -> FiniteMFG:
    """Crowd motion (MFGLib 0.3.0): beach bar on an l×w grid (moves clipped at the edges) with a
    bar that may jump diagonally every ``loc_change_freq`` steps.  The bar path is drawn from
    torch's generator seeded with ``seed`` exactly as MFGLib does (without touching the
    global RNG).  States are flattened in C order: s = i·w + j."""
    gen = torch.Generator().manual_seed(seed)
    bar = (torus_l // 2, torus_w // 2)
    bars = [bar]
    for i in range(horizon + 1):
        if (i + 1) % loc_change_freq == 0:
            d0 = [-1, 1][int(torch.randint(0, 2, size=(1,), generator=gen))]
            d1 = [-1, 1][int(torch.randint(0, 2, size=(1,), generator=gen))]
            new = (bar[0] + d0, bar[1] + d1)
            if 0 <= new[0] < torus_l and 0 <= new[1] < torus_w:
                bar = new
        bars.append(bar)
    ii, jj = np.meshgrid(np.arange(torus_l), np.arange(torus_w), indexing="ij")
    attract = [c * (1.0 - (np.abs(ii - b[0]) + np.abs(jj - b[1])) / (torus_l + torus_w)).reshape(-1)
               for b in bars[:horizon + 1]]

    moves = np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (0, 0)])
    probs = np.array([(1 - p_still) / 4] * 4 + [p_still])
    dest0 = np.clip(ii.reshape(-1)[:, None, None] + moves[None, :, None, 0] + moves[None, None, :, 0], 0, torus_l - 1)
    dest1 = np.clip(jj.reshape(-1)[:, None, None] + moves[None, :, None, 1] + moves[None, None, :, 1], 0, torus_w - 1)
    dest = dest0 * torus_w + dest1
    n = torus_l * torus_w
    P = np.zeros((n, 5, n))
    si, ai, _ = np.broadcast_arrays(np.arange(n)[:, None, None], np.arange(5)[None, :, None], dest)
    np.add.at(P, (si.ravel(), ai.ravel(), dest.ravel()), np.broadcast_to(probs, dest.shape).ravel())

    attract_flow = np.stack(attract)  # (T + 1, S)

    def reward(t, L):
        return np.repeat((attract[t] - np.log(L.sum(-1) + log_eps))[:, None], 5, axis=1)

    def reward_flow(L):  # reward(t, L[t]) for every t at once
        return np.repeat((attract_flow - np.log(L.sum(-1) + log_eps))[..., None], 5, axis=2)

    return FiniteMFG(horizon, np.full(n, 1.0 / n), 5, reward, lambda t, L: P, static_transition=True,
                     state_shape=(torus_l, torus_w), name="crowd_motion", info={"bars": bars[:horizon + 1]},
                     reward_flow=reward_flow)


def crowd_modelling(size: int = 10, horizon: int = 10) -> FiniteMFG:
    """OpenSpiel's crowd_modelling (Perrin et al. 2020, §4.2): a ring of ``size`` sites (moves
    wrap), actions -1/0/+1, then uniform noise on -1/0/+1.  Reward at t = 0..T:
    1 - |x - size//2| / (size//2) - ln μ_t(x), and -|move|/size for the action.  OpenSpiel
    charges the move cost one step later; the total return, hence every policy's value, is the
    same."""
    if size < 2:
        raise ProblemError(f"size must be >= 2, got {size}")
    moves = np.array([-1, 0, 1])
    P = _clip_walk(size, moves, np.full(3, 1.0 / 3), wrap=True)
    x = np.arange(size)
    r_x = 1.0 - np.abs(x - size // 2) / (size // 2)
    r_a = -np.abs(moves) / size

    # the move cost by time step: charged at t < T, none at T
    r_a_flow = np.where(np.arange(horizon + 1)[:, None, None] < horizon, r_a[None, None, :], 0.0)

    def reward(t, L):
        r = (r_x - np.log(L.sum(-1)))[:, None] + (r_a[None, :] if t < horizon else 0.0)
        return np.broadcast_to(r, (size, 3)).copy()

    def reward_flow(L):  # reward(t, L[t]) for every t at once
        return (r_x - np.log(L.sum(-1)))[..., None] + r_a_flow

    return FiniteMFG(horizon, np.full(size, 1.0 / size), 3, reward, lambda t, L: P, static_transition=True,
                     name="crowd_modelling", reward_flow=reward_flow)


def two_road_traffic(traffic: TwoRoadTraffic | None = None) -> FiniteMFG:
    """B4 as a static finite MFG (T = 0, one state, actions = roads A, B): r(a) = -T_a(μ_a)."""
    traffic = TwoRoadTraffic() if traffic is None else traffic
    a = np.array([traffic.a_A, traffic.a_B])
    b = np.array([traffic.b_A, traffic.b_B])

    def reward(t, L):
        return -(a + b * L[0])[None, :]

    return FiniteMFG(0, np.ones(1), 2, reward, lambda t, L: np.ones((1, 2, 1)), static_transition=True,
                     name="two_road_traffic", info={"traffic": traffic})


ENVS = {"beach_bar": beach_bar, "left_right": left_right, "susceptible_infected": susceptible_infected,
        "sir_vaccination": sir_vaccination,
        "linear_quadratic": linear_quadratic, "crowd_motion": crowd_motion, "crowd_modelling": crowd_modelling,
        "two_road_traffic": two_road_traffic}


def make_env(name: str, **kwargs) -> FiniteMFG:
    """Build a finite MFG by name.

    Parameters
    ----------
    name : str
        One of ``ENVS``: ``beach_bar``, ``crowd_modelling``, ``crowd_motion``,
        ``left_right``, ``linear_quadratic``, ``sir_vaccination``, ``susceptible_infected``,
        ``two_road_traffic``.
    **kwargs
        The builder's parameters (e.g. sizes, horizon).

    Returns
    -------
    FiniteMFG
        The game.
    """
    if name not in ENVS:
        raise ProblemError(f"unknown finite env {name!r}; choose one of {sorted(ENVS)}")
    return ENVS[name](**kwargs)
