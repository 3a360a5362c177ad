"""N agents under a solution's own feedback policy, evaluated pointwise (no tabulation).

    X_{k+1} = X_k + α(t_k, X_k) Δt + √(2ν Δt) ξ_k,     ξ_k ~ N(0, I_d),   on R^d (no wrap)

A tabulated policy needs n^d nodes, which is out of reach beyond d = 2 or 3; here
``solution.policy(t, X)`` is called once per time step on a whole chunk of agents (for a
neural solution: one batched autograd pass through the value network).  Agents do not
interact once the policy is fixed, so chunks run one after another through all steps and
memory is O(chunk_size · d) whatever the number of agents.  Instead of histograms (bins^d
cells is as hopeless as the table), the first two moments are accumulated over chunks in
float64 at the recorded steps: the mean (d,) and the covariance (d, d).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from mfgnet.problems import ProblemError
from mfgnet.progress import progress_bar

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class PolicySimulationResult:
    """Moments of the population at the recorded times.

    Attributes
    ----------
    times : list of float
        The recorded times, length R.
    mean : torch.Tensor
        (R, d) empirical means (float64).
    covariance : torch.Tensor
        (R, d, d) empirical covariances (float64, divided by N - 1).
    n_agents, n_steps : int
        The population size and the number of time steps.
    dt : float
        The time step.
    samples : torch.Tensor or None
        (≤ keep, d) final positions of the first agents.
    wall_time_s : float
        Seconds for the whole run.
    agent_steps_per_s : float
        N · n_steps over the time spent in the steps (initial sampling excluded).
    timings : dict
        ``initial_s``, ``policy_s`` (time inside ``solution.policy``), ``steps_s``,
        ``chunk_size``, ``device``, ``dtype``.
    """

    times: list[float]
    mean: torch.Tensor
    covariance: torch.Tensor
    n_agents: int
    n_steps: int
    dt: float
    samples: torch.Tensor | None = None
    wall_time_s: float = 0.0
    agent_steps_per_s: float = 0.0
    timings: dict = field(default_factory=dict)

    def compare(self, exact_mean: torch.Tensor, exact_variance: torch.Tensor) -> dict:
        """Errors against exact moments with independent coordinates.

        Parameters
        ----------
        exact_mean : torch.Tensor
            (R, d) exact means at ``times``.
        exact_variance : torch.Tensor
            (R, d) exact variances per coordinate (the exact covariance is diagonal).

        Returns
        -------
        dict
            Lists over the recorded times: ``mean_err`` (max over coordinates of
            |mean - exact|), ``mean_se`` (the largest Monte Carlo standard error of a mean,
            √(var/N)), ``var_err`` (max |diag cov - exact|), ``var_se`` (largest
            √(2/(N-1)) var, the Gaussian standard error of a variance), ``offdiag_max``
            (max |cov_ij|, i ≠ j, exact 0), ``offdiag_se`` (largest √(var_i var_j / N)).
        """
        m_ex = torch.as_tensor(exact_mean, dtype=torch.float64).reshape(self.mean.shape)
        v_ex = torch.as_tensor(exact_variance, dtype=torch.float64).reshape(self.mean.shape)
        n = self.n_agents
        diag = torch.diagonal(self.covariance, dim1=-2, dim2=-1)
        off = self.covariance - torch.diag_embed(diag)
        sd = v_ex.sqrt()
        return {
            "mean_err": (self.mean - m_ex).abs().amax(-1).tolist(),
            "mean_se": (v_ex / n).sqrt().amax(-1).tolist(),
            "var_err": (diag - v_ex).abs().amax(-1).tolist(),
            "var_se": (v_ex * (2.0 / max(n - 1, 1)) ** 0.5).amax(-1).tolist(),
            "offdiag_max": off.abs().flatten(1).amax(-1).tolist(),
            "offdiag_se": ((sd.unsqueeze(-1) * sd.unsqueeze(-2)) / n ** 0.5).flatten(1).amax(-1).tolist(),
        }


def simulate_policy(solution, n_agents: int, n_steps: int, t0: float = 0.0, t1: float | None = None,
                    record_steps=None, chunk_size: int | None = None, dtype: str = "float32",
                    device: str | torch.device = "cpu", seed: int = 0, keep_samples: int = 0,
                    verbose: bool = False, progress: bool = True) -> PolicySimulationResult:
    """Simulate ``n_agents`` agents under ``solution.policy`` on R^d by Euler–Maruyama.

    Parameters
    ----------
    solution : Solution
        Any [`Solution`][mfgnet.solution.Solution] whose ``policy(t, x)`` takes x (n, d) and
        returns α (n, d); its problem gives ν, m0 and T.  The domain must be Euclidean.
    n_agents : int
        The number of agents N >= 1.
    n_steps : int
        Time steps on [t0, t1], >= 1.
    t0 : float
        Start time.
    t1 : float or None
        End time (default T).
    record_steps : sequence of int or None
        Step indices (0..n_steps) whose moments are kept; default the last.
    chunk_size : int or None
        Agents simulated together: one policy call per step on (chunk_size, d) positions
        (default 2^16 on a CPU, 2^20 on a GPU).  Memory is O(chunk_size · d) plus the
        policy's autograd graph for one chunk.
    dtype : str
        "float32" (default: half the memory and faster) or "float64" for the positions and
        the policy's inputs; the moments are summed in float64 either way.
    device : str or torch.device
        Where the positions live ("cpu", "cuda"); the policy is called with tensors there.
    seed : int
        Seed of the initial positions and the noise (one stream per chunk, so results for
        a given chunk size do not depend on anything else; a different chunk size gives a
        different but equally distributed sample).
    keep_samples : int
        How many final positions to return.
    verbose : bool
        One log line (INFO) per chunk (DEBUG otherwise).
    progress : bool
        A progress bar over chunk-steps (standard error) once the run takes a few seconds.

    Returns
    -------
    PolicySimulationResult
        Mean and covariance at the recorded times, speed and timings.
    """
    problem = solution.problem
    d = problem.dim
    if problem.domain.bounded:
        raise ProblemError(f"simulate_policy needs a Euclidean domain (no wrap or reflection), got {problem.domain!r}")
    if n_agents < 1 or n_steps < 1:
        raise ProblemError(f"n_agents and n_steps must be >= 1, got {n_agents}, {n_steps}")
    if dtype not in _DTYPES:
        raise ProblemError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}")
    if problem.is_ergodic and t1 is None:
        raise ProblemError("an ergodic problem needs the end time t1 of the simulation")
    t1 = problem.horizon if t1 is None else t1
    if not t1 > t0:
        raise ProblemError(f"t1 = {t1} must be greater than t0 = {t0}")
    dt = (t1 - t0) / n_steps
    record = [n_steps] if record_steps is None else sorted({int(k) for k in record_steps})
    if record[0] < 0 or record[-1] > n_steps:
        raise ProblemError(f"record_steps must lie in 0..{n_steps}")
    device = torch.device(device)
    chunk_size = int(chunk_size or (1 << 16 if device.type == "cpu" else 1 << 20))
    if chunk_size < 1:
        raise ProblemError(f"chunk_size must be >= 1, got {chunk_size}")
    tdtype = _DTYPES[dtype]
    sigma = problem.noise_std(dt)
    n_chunks = -(-n_agents // chunk_size)
    seeds = np.random.SeedSequence(seed).spawn(n_chunks)
    slot = {k: i for i, k in enumerate(record)}
    # Sums of x and x xᵀ in float64 (float32 sums over 10^6 agents would lose ~3 digits).
    s1 = torch.zeros(len(record), d, dtype=torch.float64, device=device)
    s2 = torch.zeros(len(record), d, d, dtype=torch.float64, device=device)
    samples = None
    t_init = t_policy = t_steps = 0.0
    bar = progress_bar(n_chunks * n_steps, f"simulate {n_agents:.0e} agents (policy, d={d})", enabled=progress,
                       unit="step")
    start = time.perf_counter()
    for c in range(n_chunks):
        n = min(chunk_size, n_agents - c * chunk_size)
        state = seeds[c].generate_state(2)
        ti = time.perf_counter()
        x = problem.sample_initial(n, torch.Generator().manual_seed(int(state[0]))).to(device=device, dtype=tdtype)
        t_init += time.perf_counter() - ti
        gen = torch.Generator(device=device).manual_seed(int(state[1]))
        xi = torch.empty_like(x)
        ts = time.perf_counter()
        for k in range(n_steps + 1):
            if k in slot:
                x64 = x.double()
                s1[slot[k]] += x64.sum(0)
                s2[slot[k]] += x64.T @ x64
            if k == n_steps:
                break
            tp = time.perf_counter()
            # The policy builds its own autograd graph for ∇u; no_grad keeps the state update
            # (and anything the policy does outside its enable_grad block) out of any graph.
            with torch.no_grad():
                alpha = solution.policy(t0 + k * dt, x)
                t_policy += time.perf_counter() - tp
                x.add_(alpha.to(dtype=tdtype), alpha=dt)
                if sigma > 0:
                    torch.randn(x.shape, generator=gen, out=xi, dtype=tdtype, device=device)
                    x.add_(xi, alpha=sigma)
            bar.update(1)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t_steps += time.perf_counter() - ts
        if c == 0 and keep_samples:
            samples = x[:keep_samples].double().cpu()
        log.log(logging.INFO if verbose else logging.DEBUG, "[simulate_policy] chunk %d/%d done", c + 1, n_chunks)
    bar.close()
    wall = time.perf_counter() - start
    mean = (s1 / n_agents).cpu()
    cov = ((s2 - n_agents * mean.to(device).unsqueeze(-1) * mean.to(device).unsqueeze(-2))
           / max(n_agents - 1, 1)).cpu()
    return PolicySimulationResult([t0 + k * dt for k in record], mean, cov, n_agents, n_steps, dt, samples, wall,
                                  n_agents * n_steps / max(t_steps, 1e-12),
                                  {"initial_s": t_init, "policy_s": t_policy, "steps_s": t_steps,
                                   "chunk_size": chunk_size, "device": str(device), "dtype": dtype})


class LinearFeedbackSolution:
    """A Solution-like wrapper whose policy is α(t, x) = -∂pH(x, A(t) x + b(t)) with a scalar
    A(t) and b(t) of shape (d,): the exact B2 (linear-quadratic) feedback, ∇u = a x + β,
    without the autograd pass or the quadrature behind u's constant term.

    Parameters
    ----------
    problem : MFGProblem
        The problem (gives the Hamiltonian).
    a : callable
        t (0-dim tensor) -> a(t), a scalar tensor.
    b : callable
        t (shape (1,)) -> β(t), shape (1, d).
    """

    def __init__(self, problem, a, b) -> None:
        self.problem, self._a, self._b = problem, a, b

    @classmethod
    def from_lq_coefficients(cls, problem, coefficients) -> LinearFeedbackSolution:
        """The exact policy of B2 from its ``exact.coefficients``."""
        return cls(problem, coefficients.a, coefficients.beta)

    def policy(self, t, x: torch.Tensor) -> torch.Tensor:
        """α(t, x), shape (n, d), in x's dtype and device."""
        tt = torch.tensor([float(t)], dtype=torch.float64)
        grad_u = float(self._a(tt[0])) * x + self._b(tt).to(dtype=x.dtype, device=x.device)
        return -self.problem.hamiltonian.grad_p(x, grad_u)


def euler_lq_moments(coefficients, var0: float, n_steps: int, t0: float = 0.0, t1: float | None = None):
    """The exact mean and variance (per coordinate) of the Euler–Maruyama chain for B2's
    exact policy with H = |p|²/2: the chain is linear Gaussian, so

        m_{k+1} = (1 - a_k Δt) m_k - β_k Δt,     v_{k+1} = (1 - a_k Δt)² v_k + 2ν Δt.

    The difference to the continuous moments is the scheme's bias (O(Δt)); the difference
    of a simulation to these is Monte Carlo error alone.

    Returns
    -------
    (mean, var) : tuple of torch.Tensor
        (n_steps + 1, d) each, float64, at t0 + k Δt.
    """
    t1 = coefficients.T if t1 is None else t1
    dt = (t1 - t0) / n_steps
    m = coefficients.mean(torch.tensor(float(t0), dtype=torch.float64)).clone()
    v = torch.full_like(m, float(var0)) if t0 == 0 else coefficients.variance(
        torch.tensor(float(t0), dtype=torch.float64), var0) * torch.ones_like(m)
    means, variances = [m.clone()], [v.clone()]
    for k in range(n_steps):
        t = torch.tensor([t0 + k * dt], dtype=torch.float64)
        a = float(coefficients.a(t[0]))
        m = (1 - a * dt) * m - coefficients.beta(t)[0] * dt
        v = (1 - a * dt) ** 2 * v + 2 * coefficients.nu * dt
        means.append(m.clone())
        variances.append(v.clone())
    return torch.stack(means), torch.stack(variances)
