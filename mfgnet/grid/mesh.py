"""The cell-centred space(-time) grid and its finite-difference operators.

Every axis of the discretised box ``[lower_i, upper_i]`` has ``N`` cells of width
``h_i = (upper_i - lower_i) / N`` and one node at each cell centre
``x_ij = lower_i + (j + 1/2) h_i``.  On a torus the node ``N`` is node ``0`` (no point is
duplicated and the length is exactly ``N h``); on a no-flux box the ghost node beyond a
face is the node itself, so one-sided differences across a face vanish and no flux leaves.

Nodes are numbered in C order (``numpy.ravel_multi_index`` with ``indexing="ij"``), so an
array of node values reshapes to ``cells``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from mfgnet.problems import MFGProblem, ProblemError, cell_centre_points, cell_centres


@dataclass
class Grid:
    """A tensor grid of ``cells`` cell centres (and, for time-dependent problems, ``times``).

    Attributes
    ----------
    lower : numpy.ndarray
        Lower box corner, (d,).
    upper : numpy.ndarray
        Upper box corner, (d,).
    cells : tuple of int
        Cells per axis, (d,).
    h : numpy.ndarray
        Cell widths, (d,).
    periodic : bool
        Torus (True) or no-flux box (False).
    axes : list of numpy.ndarray
        Node coordinates per axis, d arrays (N_i,).
    nodes : torch.Tensor
        All nodes as a float64 tensor (n, d), C order.
    cell_volume : float
        prod(h); ``cell_volume * sum(m)`` is the discrete mass.
    times : numpy.ndarray or None
        (Nt + 1,) time levels ``n * dt`` or None (ergodic).
    """

    lower: np.ndarray
    upper: np.ndarray
    cells: tuple[int, ...]
    periodic: bool
    times: np.ndarray | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.lower = np.asarray(self.lower, dtype=np.float64)
        self.upper = np.asarray(self.upper, dtype=np.float64)
        self.cells = tuple(int(c) for c in self.cells)
        self.h = (self.upper - self.lower) / np.asarray(self.cells, dtype=np.float64)
        self.axes = [a.numpy() for a in cell_centres(self.lower, self.upper, self.cells)]
        self.nodes = cell_centre_points(self.lower, self.upper, self.cells)
        self.cell_volume = float(np.prod(self.h))
        self._neighbours()
        self._operators()

    # ----------------------------------------------------------------- basics
    @property
    def dim(self) -> int:
        return len(self.cells)

    @property
    def n(self) -> int:
        """Number of nodes per time level."""
        return int(np.prod(self.cells))

    @property
    def time_steps(self) -> int | None:
        return None if self.times is None else len(self.times) - 1

    @property
    def dt(self) -> float | None:
        return None if self.times is None else float(self.times[1] - self.times[0])

    def mass(self, m: np.ndarray) -> np.ndarray:
        """Discrete mass ``cell_volume * sum(m)`` over the last axis of node values (..., n)."""
        return self.cell_volume * np.asarray(m).sum(axis=-1)

    def edge_mass(self, m: np.ndarray, band: float = 0.05) -> float:
        """Largest mass over the rows of m (..., n) in the cells within ``band`` of the box's
        width from any face (at least one cell per face)."""
        near = np.zeros(self.cells, dtype=bool)
        for i, c in enumerate(self.cells):
            k = max(1, math.ceil(band * c))
            index = [slice(None)] * self.dim
            index[i] = np.r_[0:k, c - k:c]
            near[tuple(index)] = True
        rows = np.asarray(m).reshape(-1, self.n)
        return float(self.cell_volume * rows[:, near.ravel()].sum(axis=-1).max())

    # -------------------------------------------------------------- operators
    def _neighbours(self) -> None:
        """``plus[i][j]`` / ``minus[i][j]``: the node next to j along axis i (j itself across a box face)."""
        index = np.arange(self.n).reshape(self.cells)
        self.plus, self.minus = [], []
        for i, c in enumerate(self.cells):
            if self.periodic:
                up, down = np.roll(index, -1, axis=i), np.roll(index, 1, axis=i)
            else:
                up = np.concatenate([np.take(index, range(1, c), axis=i), np.take(index, [c - 1], axis=i)], axis=i)
                down = np.concatenate([np.take(index, [0], axis=i), np.take(index, range(c - 1), axis=i)], axis=i)
            self.plus.append(up.ravel())
            self.minus.append(down.ravel())

    def _operators(self) -> None:
        """One-sided differences D+_i, D-_i and the (symmetric, zero row sum) Laplacian, CSR (n, n)."""
        n, rows = self.n, np.arange(self.n)
        eye = sp.identity(n, format="csr")
        self.d_plus, self.d_minus = [], []
        for i in range(self.dim):
            shift_up = sp.csr_matrix((np.ones(n), (rows, self.plus[i])), shape=(n, n))
            shift_down = sp.csr_matrix((np.ones(n), (rows, self.minus[i])), shape=(n, n))
            self.d_plus.append(((shift_up - eye) / self.h[i]).tocsr())
            self.d_minus.append(((eye - shift_down) / self.h[i]).tocsr())
        self.laplacian = sum(((dp - dm) / self.h[i]) for i, (dp, dm) in
                             enumerate(zip(self.d_plus, self.d_minus))).tocsr()
        self.laplacian.eliminate_zeros()

    def blocks(self, levels: int) -> dict:
        """The operators repeated block-diagonally over ``levels`` time levels (cached)."""
        if levels not in self._cache:
            eye = sp.identity(levels, format="csr")
            self._cache[levels] = {
                "d_plus": [sp.kron(eye, d, format="csr") for d in self.d_plus],
                "d_minus": [sp.kron(eye, d, format="csr") for d in self.d_minus],
                "laplacian": sp.kron(eye, self.laplacian, format="csr"),
                "nodes": self.nodes.repeat(levels, 1),
            }
        return self._cache[levels]


def make_grid(problem: MFGProblem, cells: int, time_steps: int | None = None) -> Grid:
    """The grid the solver uses for ``problem``: ``cells`` cells per axis on the problem's
    torus or box (``problem.bounding_box()`` with no-flux faces for R^d), and
    ``time_steps`` implicit Euler steps on ``[0, T]`` (None: about one step per cell width,
    ``dt <= min(h)``, at least 8 steps).
    """
    if isinstance(cells, bool) or not isinstance(cells, (int, np.integer)) or cells < 8:
        raise ProblemError(f"cells = {cells!r}: grid too coarse; cells per axis must be an integer >= 8")
    box = problem.bounding_box()
    lower, upper = (b.numpy() for b in box.bounds())
    periodic = bool(problem.domain.periodic)
    times = None
    if not problem.is_ergodic:
        if time_steps is None:
            h = float(np.min((upper - lower) / cells))
            time_steps = max(8, math.ceil(problem.horizon / h - 1e-9))
        if isinstance(time_steps, bool) or not isinstance(time_steps, (int, np.integer)) or time_steps < 2:
            raise ProblemError(f"time_steps = {time_steps!r}: must be an integer >= 2 (or None for the default)")
        times = np.linspace(0.0, problem.horizon, int(time_steps) + 1)
    return Grid(lower, upper, (int(cells),) * problem.dim, periodic, times)
