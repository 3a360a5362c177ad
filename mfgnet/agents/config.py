"""Settings of the agents' tasks (``python -m mfgnet.agents task=<finite|mfq|simulate>``).

Typed and validated like every mfgnet config ([`mfgnet.settings`][mfgnet.settings]): Hydra rejects a
wrong type (``task.n_agents=abc``) and construction rejects a value out of range
(``task.epsilon=-1``, ``task.bins=0``) with the field's name and its allowed range.
No torch or numpy is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mfgnet.settings import Settings, choice, flag, number, text


@dataclass(frozen=True)
class MFQConfig(Settings):
    """Hyper-parameters of (tabular or neural) mean field Q-learning.

    policy: "boltzmann" (temperature τ) or "egreedy" (ε decays geometrically from
    ``epsilon`` to ``epsilon_min`` with factor ``epsilon_decay`` per step).
    shared: one Q-table for all agents (parameter sharing) instead of one per agent.
    q_init: initial Q value; optimistic (>= the largest reward) makes every agent try every
    action before it settles, where zero tables and positive rewards lock agents in on the
    first action they tried.
    revise_prob: fraction of agents that re-draw their action each step (the others keep
    theirs); < 1 avoids the period-2 oscillations of fully synchronous play on a lattice.
    chunk_size: tabular MF-Q does each step's work in chunks of this many agents (the same
    run for any chunk size).
    """

    section = "task"

    steps: int = number(500, 1, 10**9, integer=True)
    lr: float = number(0.1, 0.0, 1.0, lo_open=True)
    gamma: float = number(0.0, 0.0, 1.0, hi_open=True)
    policy: str = choice("boltzmann", "egreedy")
    temperature: float = number(0.1, 0.0, lo_open=True)
    epsilon: float = number(0.5, 0.0, 1.0)
    epsilon_decay: float = number(0.99, 0.0, 1.0)
    epsilon_min: float = number(0.0, 0.0, 1.0)
    revise_prob: float = number(1.0, 0.0, 1.0, lo_open=True)
    shared: bool = flag(False)
    q_init: float = number(0.0, -1e12, 1e12)
    record_every: int = number(10, 1, 10**9, integer=True)
    # A progress bar (standard error) for runs longer than a few seconds.
    progress: bool = flag(True)
    seed: int = number(0, 0, 2**63 - 1, integer=True)
    chunk_size: int = number(1 << 20, 1, 10**9, integer=True,
                             doc="agents per chunk of the per-step work (tabular); memory stays bounded")


@dataclass(frozen=True)
class FiniteTask(Settings):
    """A finite MFG solved by fictitious play or online mirror descent, exploitability exact."""

    section = "task"

    # beach_bar | left_right | crowd_motion | crowd_modelling | susceptible_infected |
    # linear_quadratic | two_road_traffic (checked against mfgnet.agents.finite.ENVS)
    env: str = text("beach_bar")
    # builder keywords, added with +: +task.env_params.n=20 +task.env_params.horizon=10
    env_params: dict[str, Any] = field(default_factory=dict)
    algorithm: str = choice("fp", "omd")
    iterations: int = number(200, 1, 10**7, integer=True)
    damping: float = number(0.0, 0.0, 1.0, hint="fp: 0 gives the weights 1/(n+2)")
    step: float = number(1.0, 0.0, lo_open=True, doc="omd step size")
    tol: float = number(0.0, 0.0, doc="stop once exploitability <= tol")


@dataclass(frozen=True)
class MFQTask(MFQConfig):
    """Mean field Q-learning (Yang et al. 2018), vectorised over agents."""

    env: str = choice("two_road_traffic", "ride_sharing", "ising", "typed_traffic",
                      doc="typed_traffic: two roads, K types of drivers (tabular only)")
    # add keys with +, e.g. +task.env_params.side=1000 (ising), +task.env_params.n_bins=9
    env_params: dict[str, Any] = field(default_factory=dict)
    variant: str = choice("tabular", "neural")
    n_agents: int = number(10000, 1, 10**9, integer=True, hint="ising: side² (set env_params.side instead)")
    # None: the run's top-level seed.
    seed: int | None = number(None, 0, 2**63 - 1, integer=True, optional=True)


@dataclass(frozen=True)
class SimulateTask(Settings):
    """N agents following a solved MFG's feedback policy; distances to the solution's density."""

    section = "task"

    problem: str = choice("hopf_cole", "ergodic_torus", "two_populations", "segregation",
                          doc="two_populations (B6) and segregation: one simulated crowd per type")
    problem_params: dict[str, Any] = field(default_factory=dict)  # e.g. ergodic_torus {dim: 1, sigma: 1.0}
    source: str = choice("exact", "grid", doc="grid: solve with mfgnet.grid first (segregation: grid only)")
    grid_cells: int = number(256, 8, 10**6, integer=True)
    n_agents: int = number(1_000_000, 1, 10**10, integer=True)
    n_steps: int = number(400, 1, 10**7, integer=True)
    t1: float | None = number(None, 0.0, lo_open=True, optional=True,
                              doc="end time (required for ergodic problems; default 0.5 there)")
    bins: int = number(4096, 1, 10**8, integer=True)
    n_nodes: int = number(512, 2, 10**8, integer=True)
    interp: str = choice("linear", "nearest")
    noise: str = choice("gaussian", "uniform")
    device: str = choice("cpu", "cuda")
    threads: int | None = number(None, 1, 1024, integer=True, optional=True)
    exploitability: bool = flag(False, doc="1D: cost of the policy - best response cost (needs mfgnet.grid)")
    progress: bool = flag(True, doc="a progress bar over the chunks of agents")


@dataclass(frozen=True)
class EpidemicTask(Settings):
    """The SIR vaccination game: equilibrium (fictitious play or mirror descent, exact
    exploitability), social optimum and price of anarchy, and N-agent simulations against the
    mean field."""

    section = "task"

    # sir_vaccination keywords, added with +: +task.env_params.vaccination_cost=1.0
    env_params: dict[str, Any] = field(default_factory=dict)
    algorithm: str = choice("omd", "fp")
    iterations: int = number(300, 1, 10**7, integer=True)
    step: float = number(1.0, 0.0, lo_open=True, doc="omd step size")
    sizes: list[int] = field(default_factory=lambda: [100, 1000, 10000, 100000])  # N of the N-agent runs
    seeds: int = number(5, 1, 10**6, integer=True, doc="N-agent runs per N (averaged)")


@dataclass(frozen=True)
class IsingTask(Settings):
    """MF-Q's order parameter against temperature on the Ising lattice, next to Metropolis Monte
    Carlo of the same model, with the critical temperature each gives (mfgnet.agents.ising)."""

    section = "task"

    side: int = number(48, 4, 10**5, integer=True, doc="lattice side L (N = L² agents)")
    temperatures: list[float] = field(default_factory=lambda: [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9])
    mfq_steps: int = number(1000, 2, 10**7, integer=True)
    revise_probs: list[float] = field(default_factory=lambda: [0.5, 0.1])  # one MF-Q curve per revision probability
    sweeps: int = number(1000, 1, 10**7, integer=True, doc="Metropolis sweeps measured (after burn_in)")
    burn_in: int = number(500, 0, 10**7, integer=True)


@dataclass(frozen=True)
class PartialTask(Settings):
    """Partial observation: agents see K sampled others.  MF-Q's distance to the full-information
    equilibrium and a finite MFG's exact exploitability against K (mfgnet.agents.partial)."""

    section = "task"

    ks: list[int] = field(default_factory=lambda: [1, 3, 10, 30, 100])  # plus full information, always
    mfq_env: str = choice("ride_sharing", "typed_traffic", "two_road_traffic")
    n_agents: int = number(10000, 1, 10**8, integer=True)
    mfq_steps: int = number(500, 1, 10**7, integer=True)
    finite_env: str = choice("sir_vaccination", "beach_bar")
    iterations: int = number(60, 1, 10**6, integer=True, doc="fictitious-play iterations")
    views: int = number(16, 1, 10**5, integer=True, doc="sampled agents' views averaged per best response")


@dataclass(frozen=True)
class NPlayerTask(Settings):
    """The N-player gap ε_N of a finite MFG's equilibrium (mfgnet.agents.nplayer) against N."""

    section = "task"

    env: str = choice("beach_bar", "left_right", "sir_vaccination", "crowd_modelling")
    # builder keywords, added with +: +task.env_params.n=10
    env_params: dict[str, Any] = field(default_factory=lambda: {"n": 4, "horizon": 2})
    iterations: int = number(500, 1, 10**7, integer=True, doc="mirror-descent iterations for the equilibrium")
    sizes: list[int] = field(default_factory=lambda: [5, 10, 20, 50, 100, 200])
    samples: int = number(2000, 2, 10**7, integer=True, doc="simulated N-player populations per N")
    seeds: int = number(3, 1, 1000, integer=True, doc="independent estimates per N (averaged; spread reported)")


@dataclass(frozen=True)
class NPlayerGridTask(Settings):
    """The N-player gap of a continuous 1D MFG's grid equilibrium (mfgnet.agents.nplayer_grid) against N."""

    section = "task"

    problem: str = choice("hopf_cole", "crowd_aversion", "log_congestion",
                          doc="catalog problem (1D, time-dependent, local couplings)")
    # builder keywords, added with +: +task.problem_params.kappa=2
    problem_params: dict[str, Any] = field(default_factory=dict)
    cells: int = number(128, 8, 4096, integer=True, doc="grid cells of the equilibrium (the game's states)")
    sizes: list[int] = field(default_factory=lambda: [10, 30, 100, 300, 1000, 3000, 10000, 100000])
    realisations: int = number(32, 2, 10**6, integer=True, doc="simulated crowds per N (informed gain)")


TASKS: dict[str, type[Settings]] = {"finite": FiniteTask, "mfq": MFQTask, "simulate": SimulateTask,
                                    "epidemic": EpidemicTask, "ising": IsingTask, "partial": PartialTask,
                                    "nplayer": NPlayerTask, "nplayer_grid": NPlayerGridTask}
