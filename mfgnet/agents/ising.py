"""Mean field Q-learning on the Ising lattice against Metropolis Monte Carlo (Yang et al. 2018, Fig. 4).

Agents on an L×L periodic lattice choose a spin σ ∈ {−1, +1} and earn J σ ā with ā the mean spin of
their 4 neighbours ([`IsingGame`][mfgnet.agents.mfq.games.IsingGame]).  A Boltzmann policy at
temperature τ on the learned Q(σ, ā) ≈ J σ ā picks σ with probability ∝ exp(J σ Σ_j σ_j / (4τ)):
the heat-bath rule of the Ising model with bond coupling K = J/4 at inverse temperature 1/τ.  So
the order parameter |⟨σ⟩| that MF-Q settles at should follow that model's, whose exact critical
temperature (Onsager) is τ_c = 2K / ln(1 + √2) = J / (2 ln(1 + √2)) ≈ 0.567 J, while the physics
mean field (m = tanh(J m / τ)) puts it at τ_c = J.

`metropolis_curve` samples the same model by single-spin Metropolis on the two checkerboard
sublattices (each half-sweep vectorised), `mfq_curve` trains MF-Q at each temperature, and
`critical_temperature` reads τ_c off a curve as the temperature where |m| falls fastest.
"""

from __future__ import annotations

import math

import numpy as np

from mfgnet.agents.config import MFQConfig
from mfgnet.agents.mfq.games import IsingGame
from mfgnet.agents.mfq.tabular import train_tabular

ONSAGER_TC = 1.0 / (2.0 * math.log(1.0 + math.sqrt(2.0)))  # in units of J (bond coupling K = J/4)


def metropolis_curve(side: int, temperatures, sweeps: int = 2000, burn_in: int = 1000, coupling: float = 1.0,
                     seed: int = 0) -> np.ndarray:
    """|m| (mean over the sweeps after ``burn_in``) of the Ising model with bond coupling J/4 at
    each temperature τ (Metropolis, checkerboard half-sweeps, all spins up at the start)."""
    rng = np.random.default_rng(seed)
    ii, jj = np.indices((side, side))
    sublattices = [(ii + jj) % 2 == 0, (ii + jj) % 2 == 1]
    out = []
    for tau in temperatures:
        spins = np.ones((side, side))
        beta_k = coupling / (4.0 * tau)
        total, count = 0.0, 0
        for sweep in range(burn_in + sweeps):  # sweeps are sequential; each updates half the lattice at once
            for mask in sublattices:
                neighbours = (np.roll(spins, 1, 0) + np.roll(spins, -1, 0) + np.roll(spins, 1, 1)
                              + np.roll(spins, -1, 1))
                delta = 2.0 * beta_k * spins * neighbours  # −β ΔE of flipping each spin
                flip = mask & (rng.random((side, side)) < np.exp(-np.maximum(delta, 0.0)))
                spins = np.where(flip, -spins, spins)
            if sweep >= burn_in:
                total += abs(spins.mean())
                count += 1
        out.append(total / count)
    return np.asarray(out)


def mfq_curve(side: int, temperatures, steps: int = 2000, coupling: float = 1.0, revise_prob: float = 0.5,
              seed: int = 0) -> np.ndarray:
    """|m| that tabular MF-Q (shared Q, Boltzmann at τ, half the agents revising per step, all
    spins up at the start) holds over the second half of ``steps``, at each temperature."""
    out = []
    for tau in temperatures:
        game = IsingGame(side, coupling=coupling, ordered_start=True)
        cfg = MFQConfig(steps=steps, temperature=float(tau), revise_prob=revise_prob, shared=True, record_every=10,
                        seed=seed, progress=False)
        res = train_tabular(game, side * side, cfg)
        late = res.steps > steps // 2
        out.append(float(np.abs(res.mean_action[late]).mean()))
    return np.asarray(out)


def critical_temperature(temperatures, order) -> float:
    """The temperature where the order parameter falls fastest: the midpoint of the steepest
    segment of the curve (a finite-lattice estimate of τ_c)."""
    t, m = np.asarray(temperatures, dtype=float), np.asarray(order, dtype=float)
    slope = np.diff(m) / np.diff(t)
    k = int(np.argmin(slope))
    return float(0.5 * (t[k] + t[k + 1]))
