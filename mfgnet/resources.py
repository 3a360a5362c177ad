"""Up-front memory estimates: refuse a run that cannot fit before it allocates anything.

Each estimate is ``unknowns × bytes per unknown``, with the bytes per unknown measured once
(peak of ``tracemalloc`` over a small run, see the constants) and rounded up.  A run whose
estimate exceeds the memory the machine has available now raises :class:`ProblemError`
naming the setting to lower, instead of dying later with a ``MemoryError`` traceback.
"""

from __future__ import annotations

import math
import os

from mfgnet.problems.validation import ProblemError

# Peak bytes per unknown of the coupled grid system (u and m at every node and time level),
# measured with tracemalloc on B1 (1D, 2D), B2 and B3 at 32-1024 cells: 0.6-1.07 kB; times 1.4.
GRID_BYTES_PER_UNKNOWN = 1536
# Neural solver: peak RSS growth per collocation point of one training step with the default
# model (B2, 4096 -> 65536 points): 28 kB in 1D, 125 kB in 4D, about 32 kB per dimension
# (the exact Laplacian keeps one backward graph per axis); see sampler_bytes.
NEURAL_BYTES_PER_POINT_DIM = 32 * 1024
NEURAL_BYTES_PER_POINT = 8 * 1024
# Tabular MF-Q (tracemalloc, 2^18 agents, chunks of 2^18 vs 2^12): the per-step work arrays
# take 28-93 bytes per agent of a chunk, at most ~22 per agent and (1 + actions); the state
# besides the Q-tables (actions, rewards, bins, the games' O(N) arrays) at most ~50 per agent.
MFQ_BYTES_PER_CHUNK_AGENT_ACTION = 24
MFQ_STATE_BYTES_PER_AGENT = 64

def available_memory() -> int | None:
    """Bytes of physical memory available now (``os.sysconf``), or None where unknown."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_AVPHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def check_memory(estimate: float, what: str, setting: str, available: int | None = None) -> None:
    """Raise :class:`ProblemError` when ``estimate`` bytes exceed the available memory.

    Args:
        estimate: bytes the run would need.
        what: the run, for the message (``"grid solver with 10000000 cells"``).
        setting: the setting(s) to lower, named as on the command line (``"solver.cells"``).
        available: bytes available (default: :func:`available_memory`; no check when unknown).
    """
    available = available_memory() if available is None else available
    if available is None or estimate <= available:
        return
    raise ProblemError(
        f"{what} needs about {_gib(estimate)} of memory, more than the {_gib(available)} available on this "
        f"machine; lower {setting}")


def grid_unknowns(dim: int, cells: int, time_steps: int | None, ergodic: bool, width: float,
                  horizon: float | None, order: int = 1) -> int:
    """Unknowns of the grid solver's coupled system: u and m on cells^dim nodes and every time
    level (default time steps as :func:`mfgnet.grid.mesh.make_grid`: dt <= h); with ``order=2``
    the run on 2·cells (and twice the steps) dominates."""
    if order == 2:
        cells, time_steps = 2 * cells, None if time_steps is None else 2 * time_steps
    nodes = float(cells) ** dim
    if ergodic:
        return int(2 * nodes + 2)
    if time_steps is None:
        time_steps = max(8, math.ceil(horizon / (width / cells) - 1e-9))
    return int(2 * nodes * time_steps)


def check_grid_memory(problem, config, available: int | None = None) -> None:
    """Refuse a grid solve whose system would not fit in memory (names ``solver.cells``)."""
    lower, upper = problem.bounding_box().bounds()
    width = float((upper - lower).min())
    unknowns = grid_unknowns(problem.dim, config.cells, config.time_steps, problem.is_ergodic, width,
                             problem.horizon, config.order)
    setting = "solver.cells" if problem.is_ergodic else "solver.cells (or solver.time_steps)"
    check_memory(unknowns * GRID_BYTES_PER_UNKNOWN,
                 f"the grid solver with {config.cells} cells per axis in {problem.dim}D ({unknowns:.3g} unknowns)",
                 setting, available)


def sampler_bytes(n_points: int, dim: int) -> float:
    """Bytes of one training step on ``n_points`` collocation points in ``dim`` dimensions: the
    points and the residuals' autograd graph over them (the Hutchinson estimator above d = 6
    needs less; the estimate stays an upper bound there)."""
    return float(n_points) * (NEURAL_BYTES_PER_POINT + NEURAL_BYTES_PER_POINT_DIM * dim)


def check_solver_memory(problem, config, available: int | None = None) -> None:
    """Refuse a solve whose sampled collocation points (``config.sampler.n_interior``, the neural
    solver's) would not fit in memory; settings without a sampler pass (the grid solver checks
    its own system in :func:`mfgnet.grid.solve_grid`)."""
    sampler = getattr(config, "sampler", None)
    n = getattr(sampler, "n_interior", 0)
    if n is None:  # the neural solver's per-problem default
        from mfgnet.neural.config import default_interior_points
        n = default_interior_points(problem)
    n = int(n or 0)
    if n <= 0:
        return
    # sampler.hjb_fraction adds that share of HJB-only points on time-dependent R^d (counted everywhere:
    # an upper bound).
    extra = float(getattr(sampler, "hjb_fraction", 0.0) or 0.0)
    total = int(round(n * (1.0 + extra)))
    what = f"sampler.n_interior = {n} points" + (f" (+ {total - n} HJB-only points)" if total > n else "")
    check_memory(sampler_bytes(total, problem.dim), f"the neural solver with {what} in {problem.dim}D",
                 "sampler.n_interior", available)


def mfq_bytes(n_agents: int, n_bins: int, n_actions: int, shared: bool, egreedy: bool, chunk: int) -> float:
    """Bytes of tabular MF-Q: the Q-tables (float32, bins × actions × agents unless shared),
    the ε-greedy tie-break jitter (float32, actions × agents), the per-agent state and one
    chunk's per-step work arrays."""
    n = float(n_agents)
    tables = 4.0 * n_bins * n_actions * (1 if shared else n)
    jitter = 4.0 * n_actions * n if egreedy else 0.0
    state = MFQ_STATE_BYTES_PER_AGENT * n
    work = MFQ_BYTES_PER_CHUNK_AGENT_ACTION * (1 + n_actions) * min(n, float(chunk))
    return tables + jitter + state + work


def check_mfq_memory(n_agents: int, n_bins: int, n_actions: int, shared: bool, egreedy: bool, chunk: int,
                     available: int | None = None) -> None:
    """Refuse tabular MF-Q that would not fit (names ``task.n_agents``)."""
    setting = "task.n_agents" if shared else "task.n_agents (or share one table: task.shared=true)"
    check_memory(mfq_bytes(n_agents, n_bins, n_actions, shared, egreedy, chunk),
                 f"tabular MF-Q with {n_agents} agents", setting, available)


class PeakMemory:
    """The peak memory of one run, as a context manager: ``peak_rss_mb`` (the process's resident
    set high-water mark, reset at entry where Linux allows it through /proc/self/clear_refs;
    elsewhere the process-wide peak since start, so an upper bound in a sweep run in one
    process) and, on CUDA, ``peak_gpu_mb`` (torch's allocator peak since entry)."""

    def __enter__(self) -> PeakMemory:
        self.reset = _reset_rss_peak()
        self.cuda = _cuda_ready()
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
        self.metrics: dict[str, float | bool] = {}
        return self

    def __exit__(self, *exc) -> None:
        rss = _rss_peak_bytes()
        if rss is not None:
            self.metrics["peak_rss_mb"] = rss / 2**20
            self.metrics["peak_rss_since_start"] = not self.reset
        if self.cuda:
            import torch

            self.metrics["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20


def _cuda_ready() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_initialized()


def _reset_rss_peak() -> bool:
    """Reset VmHWM (Linux >= 4.0: writing 5 to /proc/self/clear_refs); False where not possible.

    Some kernels and sandboxes accept the write and leave the mark where it was, so the reset
    counts only when the mark afterwards is back near the current resident set."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    status = _proc_status_kib("VmHWM", "VmRSS")
    if status is None:
        return False
    peak, resident = status
    return peak <= resident + 16 * 1024  # a little slack: the process may allocate in between


def _proc_status_kib(*fields: str) -> tuple[int, ...] | None:
    """The named fields of /proc/self/status in KiB, or None where it cannot be read."""
    values: dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                name = line.split(":", 1)[0]
                if name in fields:
                    values[name] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    if len(values) != len(fields):
        return None
    return tuple(values[name] for name in fields)


def _rss_peak_bytes() -> int | None:
    status = _proc_status_kib("VmHWM")
    if status is not None:
        return status[0] * 1024
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, kB on Linux
    except (ImportError, OSError):
        return None
