"""A solved MFG's feedback policy α(t, x) = -∂pH(x, ∇u(t, x)) tabulated on a grid.

Evaluating ``Solution.policy`` (autograd through u) for every agent at every step would
cost far more than the step itself, so the policy is evaluated once on a grid of nodes at
the simulation's step times and interpolated (multilinear, or nearest node).

Grids: on a torus [0, L)^d, n nodes per axis at j·L/n (periodic); on a box (or the
truncation box of R^d), n nodes per axis from lower to upper inclusive (values outside are
clamped to the edge).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mfgnet.problems import ProblemError, Torus


@dataclass
class TabulatedPolicy:
    """α on a grid.

    table: (n_t, n^d ... , d) policy values, float64 on CPU (moved to the simulation's
    device/dtype on use); times: (n_t,) the times of the slices (a step at time t uses the
    last slice with time <= t); lower, spacing: (d,) grid origin and node spacing;
    periodic: whether the grid wraps.
    """

    table: torch.Tensor
    times: torch.Tensor
    lower: torch.Tensor
    spacing: torch.Tensor
    periodic: bool
    n_nodes: int

    @property
    def dim(self) -> int:
        return self.table.shape[-1]

    @staticmethod
    def from_solution(solution, times, n_nodes: int = 512, batch: int = 1 << 16) -> TabulatedPolicy:
        """Tabulate ``solution.policy`` at the given times (a sequence, or None for an
        ergodic problem) on ``n_nodes`` nodes per axis."""
        problem = solution.problem
        d = problem.dim
        if n_nodes < 2:
            raise ProblemError(f"n_nodes must be >= 2, got {n_nodes}")
        if n_nodes ** d > 1 << 24:
            raise ProblemError(f"n_nodes^d = {n_nodes ** d} nodes is too many for a table; lower n_nodes")
        periodic = isinstance(problem.domain, Torus)
        lower, upper = problem.bounding_box().bounds()
        spacing = (upper - lower) / (n_nodes if periodic else n_nodes - 1)
        axes = [lower[i] + spacing[i] * torch.arange(n_nodes, dtype=torch.float64) for i in range(d)]
        nodes = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
        time_list = [None] if times is None else [float(t) for t in times]
        slices = []
        for t in time_list:
            vals = [solution.policy(t, nodes[k:k + batch]).detach().to(torch.float64)
                    for k in range(0, nodes.shape[0], batch)]
            slices.append(torch.cat(vals).reshape(*([n_nodes] * d), d))
        table = torch.stack(slices)
        if not torch.isfinite(table).all():
            raise ProblemError("the solution's policy is not finite on the grid")
        t_arr = torch.zeros(1, dtype=torch.float64) if times is None else torch.tensor(time_list, dtype=torch.float64)
        return TabulatedPolicy(table, t_arr, lower, spacing, periodic, n_nodes)

    def slice_index(self, t: float) -> int:
        """The index of the last tabulated time <= t (0 before the first)."""
        return max(int(torch.searchsorted(self.times, torch.tensor(float(t), dtype=torch.float64) + 1e-12)) - 1, 0)

    def prepare(self, device, dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per time slice, the (values, slopes) tables used by the 1D fast path, or the
        padded tables used by the multilinear path, on device/dtype."""
        out = []
        for k in range(self.table.shape[0]):
            tab = self.table[k]
            if self.periodic:  # one extra node per axis so that index i + 1 never wraps
                for ax in range(self.dim):
                    tab = torch.cat([tab, tab.narrow(ax, 0, 1)], dim=ax)
            out.append(tab.to(device=device, dtype=dtype).contiguous())
        return out

    def evaluate(self, tab: torch.Tensor, x: torch.Tensor, interp: str = "linear") -> torch.Tensor:
        """α at x (n, d) from a prepared slice ``tab``; returns (n, d)."""
        d = self.dim
        n = self.n_nodes
        inv_h = (1.0 / self.spacing).to(x)
        s = (x - self.lower.to(x)) * inv_h
        if interp == "nearest":
            idx = torch.round(s).long()
            idx = torch.remainder(idx, n) if self.periodic else idx.clamp_(0, n - 1)
            flat = idx[:, 0]
            for ax in range(1, d):
                flat = flat * tab.shape[ax] + idx[:, ax]
            return tab.reshape(-1, d)[flat]
        if not self.periodic:
            s = s.clamp(0, n - 1)
        i0 = torch.floor(s).clamp_(0, n - 1 if self.periodic else n - 2)
        w = s - i0
        i0 = i0.long()
        out = torch.zeros_like(x)
        for corner in range(1 << d):  # 2^d corners of the cell
            flat = torch.zeros_like(i0[:, 0])
            weight = torch.ones_like(x[:, 0])
            for ax in range(d):
                bit = (corner >> ax) & 1
                flat = flat * tab.shape[ax] + i0[:, ax] + bit
                weight = weight * (w[:, ax] if bit else 1 - w[:, ax])
            out += weight[:, None] * tab.reshape(-1, d)[flat]
        return out
