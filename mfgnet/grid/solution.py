"""The grid solver's :class:`Solution`: node arrays plus (multi)linear interpolation."""

from __future__ import annotations

import numpy as np
import torch

from mfgnet.grid.mesh import Grid
from mfgnet.solution import Diagnostics, Solution


def interpolate(grid: Grid, values: np.ndarray, t, x: torch.Tensor) -> torch.Tensor:
    """Multilinear interpolation of node values at points x (n, d), and linear in time.

    ``values`` has shape (Nt + 1, *cells) (time-dependent) or (*cells) (ergodic; t ignored).
    On a torus indices wrap; on a box, points between the outermost node and the face take
    the outermost node's value (the no-flux condition).  Returns (n,) in x's dtype/device.
    The result is differentiable in x (piecewise linear), so ``Solution.policy`` works.
    """
    table = torch.as_tensor(values, dtype=torch.float64)
    xd = x.to(torch.float64)
    n = xd.shape[0]
    corners_idx, corners_w = [torch.zeros(n, dtype=torch.long)], [torch.ones(n, dtype=torch.float64)]
    stride = 1
    strides = []
    for c in reversed(grid.cells):
        strides.append(stride)
        stride *= c
    strides = strides[::-1]
    for i, c in enumerate(grid.cells):
        s = (xd[:, i] - float(grid.lower[i])) / float(grid.h[i]) - 0.5
        if grid.periodic:
            base = torch.floor(s)
            w = s - base
            i0 = torch.remainder(base.long(), c)
            i1 = torch.remainder(i0 + 1, c)
        else:
            s = s.clamp(0.0, c - 1.0)
            i0 = torch.clamp(torch.floor(s).long(), max=c - 2)
            w = s - i0.to(s.dtype)
            i1 = i0 + 1
        corners_idx = [ci + k * strides[i] for ci in corners_idx for k in (i0, i1)]
        corners_w = [cw * kw for cw in corners_w for kw in (1 - w, w)]
    index = torch.stack(corners_idx, 0)  # (2^d, n)
    weight = torch.stack(corners_w, 0)
    if grid.times is None:
        flat = table.reshape(-1)
        out = (flat[index] * weight).sum(0)
    else:
        flat = table.reshape(table.shape[0], -1)
        tt = _time(t, n)
        T, nt = float(grid.times[-1]), len(grid.times) - 1
        tau = (tt.clamp(0.0, T) / T) * nt
        k0 = torch.clamp(torch.floor(tau).long(), max=nt - 1)
        a = tau - k0.to(tau.dtype)
        v0 = (flat[k0.unsqueeze(0), index] * weight).sum(0)
        v1 = (flat[(k0 + 1).unsqueeze(0), index] * weight).sum(0)
        out = (1 - a) * v0 + a * v1
    return out.to(dtype=x.dtype, device=x.device)


def _time(t, n: int) -> torch.Tensor:
    if t is None:
        raise ValueError("a time-dependent solution needs t")
    if not isinstance(t, torch.Tensor):
        return torch.full((n,), float(t), dtype=torch.float64)
    t = t.detach().to(dtype=torch.float64, device="cpu")
    return t.expand(n) if t.dim() == 0 else t.reshape(n)


class GridSolution(Solution):
    """Grid solver output.

    Attributes
    ----------
    grid : Grid
        The [`Grid`][mfgnet.grid.mesh.Grid].
    times : numpy.ndarray or None
        (Nt + 1,) time levels or None (ergodic).
    axes : list of numpy.ndarray
        d node-coordinate arrays (N,).
    nodes : torch.Tensor
        (n_nodes, d) float64 tensor, C order (matches ``u.reshape(..., -1)``).
    u : numpy.ndarray
        (Nt + 1, *cells) or (*cells); ``u[-1] = G(m(T))``.
    m : numpy.ndarray
        (Nt + 1, *cells) or (*cells); ``m[0]`` is the normalised m0.
    cell_volume : float
        h^d, the quadrature weight of every node.
    ergodic_constant : float or None
        λ (ergodic) or None.
    diagnostics : Diagnostics
        converged, iterations, residual (final max-norm residual of the discrete
        system), residual_history, wall_time_s, extra (mass_error, min_density,
        newton_iterations, picard_iterations, ...).
    """

    def __init__(self, problem, grid: Grid, u: np.ndarray, m: np.ndarray, ergodic_constant: float | None,
                 diagnostics: Diagnostics) -> None:
        self.problem = problem
        self.grid = grid
        self.u = u
        self.m = m
        self.ergodic_constant = ergodic_constant
        self.diagnostics = diagnostics

    @property
    def times(self) -> np.ndarray | None:
        return self.grid.times

    @property
    def axes(self) -> list[np.ndarray]:
        return self.grid.axes

    @property
    def nodes(self) -> torch.Tensor:
        return self.grid.nodes

    @property
    def cell_volume(self) -> float:
        return self.grid.cell_volume

    def value(self, t, x: torch.Tensor) -> torch.Tensor:
        return interpolate(self.grid, self.u, t, x)

    def density(self, t, x: torch.Tensor) -> torch.Tensor:
        return interpolate(self.grid, self.m, t, x)

    @property
    def can_sample(self) -> bool:
        """Grid densities can always be sampled (see :meth:`sample`)."""
        return True

    def sample(self, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One point per time of ``t`` (n,) drawn from the grid density: the nearest time level,
        a cell with probability m · cell volume, uniform inside the cell; (n, d) float64.  It is
        the piecewise-constant density of the nodal values, a sample where m has its mass for
        evaluating other solutions there, not an exact draw from the interpolant."""
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
        m = torch.as_tensor(self.m, dtype=torch.float64).clamp_min(0)
        if self.grid.times is None:
            levels = torch.zeros(t.shape[0], dtype=torch.long)
            m = m.reshape(1, -1)
        else:
            dt = float(self.grid.times[1] - self.grid.times[0])
            levels = torch.round(t / dt).long().clamp(0, len(self.grid.times) - 1)
            m = m.reshape(m.shape[0], -1)
        cells = torch.empty(t.shape[0], dtype=torch.long)
        for level in torch.unique(levels).tolist():  # one categorical draw per time level
            rows = (levels == level).nonzero()[:, 0]
            cells[rows] = torch.multinomial(m[level], rows.shape[0], replacement=True, generator=generator)
        h = torch.as_tensor(self.grid.h, dtype=torch.float64)
        jitter = (torch.rand(t.shape[0], self.grid.dim, generator=generator, dtype=torch.float64) - 0.5) * h
        return self.grid.nodes.to(torch.float64)[cells] + jitter
