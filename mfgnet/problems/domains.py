"""Spatial domains: where the agents live and how points are sampled there.

Three kinds:

* [`Torus`][mfgnet.problems.domains.Torus] -- periodic cube ``[0, L)^d``; no boundary condition is needed.
* [`Box`][mfgnet.problems.domains.Box] -- ``[lower, upper]`` with no-flux (reflecting) boundaries.
* [`Euclidean`][mfgnet.problems.domains.Euclidean] -- all of R^d.  Solvers work on a truncation box that the
  problem derives from its initial density (see ``MFGProblem.bounding_box``).

Shared geometry, written once here for every solver and tool:

* [`cell_centres`][mfgnet.problems.domains.cell_centres],
  [`cell_centre_points`][mfgnet.problems.domains.cell_centre_points] -- the cell-centred
  tensor grid of a box (the grid solver's nodes, midpoint quadrature, plotting grids);
* [`wrap_periodic`][mfgnet.problems.domains.wrap_periodic] -- a torus's identification of points (``Torus.wrap``);
* [`reflect_box`][mfgnet.problems.domains.reflect_box] -- mirror reflection at a box's faces (``Box.reflect``).

The last two take torch tensors or numpy arrays, and an ``out=`` for in-place kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
import torch

from mfgnet.problems.validation import ProblemError


class Domain:
    """Base class.  ``dim`` is the spatial dimension d."""

    dim: int
    periodic: bool = False
    bounded: bool = True

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper corners, each of shape (d,), float64."""
        raise NotImplementedError

    def volume(self) -> float:
        """The volume of the domain (of its bounds, for R^d)."""
        lower, upper = self.bounds()
        return float(torch.prod(upper - lower))

    def sample(self, n: int, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``n`` uniform points in the domain (or its bounds), shape (n, d).

        On a torus the upper face is excluded, so no point is counted twice.
        """
        lower, upper = self.bounds()
        u = torch.rand(n, self.dim, generator=generator, dtype=torch.float64)
        return (lower + (upper - lower) * u).to(dtype)

    def contains(self, x: torch.Tensor, atol: float = 1e-12) -> torch.Tensor:
        """Boolean mask (n,) of points inside the closed domain."""
        lower, upper = (b.to(x) for b in self.bounds())
        return ((x >= lower - atol) & (x <= upper + atol)).all(dim=-1)


def _check_dim(dim: int) -> int:
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ProblemError(f"domain.dim must be an integer >= 1, got {dim!r}")
    return dim


@dataclass(frozen=True)
class Torus(Domain):
    """Periodic cube ``[0, length)^dim``."""

    dim: int
    length: float = 1.0
    periodic: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        _check_dim(self.dim)
        if not (float(self.length) > 0):
            raise ProblemError(f"Torus.length must be > 0, got {self.length!r}")

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        lower = torch.zeros(self.dim, dtype=torch.float64)
        return lower, lower + float(self.length)

    def wrap(self, x, out=None, scratch=None):
        """Map points (..., d), a tensor or a numpy array, back into ``[0, length)^d``;
        ``out`` and ``scratch`` as in [`wrap_periodic`][mfgnet.problems.domains.wrap_periodic]."""
        return wrap_periodic(x, float(self.length), out=out, scratch=scratch)


@dataclass(frozen=True)
class Box(Domain):
    """Rectangle ``[lower, upper]`` with no-flux (Neumann) boundaries.

    ``lower`` and ``upper`` are sequences of length d (or floats for d = 1).
    """

    lower: tuple[float, ...]
    upper: tuple[float, ...]

    def __init__(self, lower, upper) -> None:
        lo = _as_tuple(lower, "Box.lower")
        hi = _as_tuple(upper, "Box.upper")
        if len(lo) != len(hi):
            raise ProblemError(
                f"Box.lower has {len(lo)} entries but Box.upper has {len(hi)}; "
                "they must have the same length (the dimension)")
        for i, (a, b) in enumerate(zip(lo, hi)):
            if not b > a:
                raise ProblemError(
                    f"Box.upper[{i}] = {b} must be greater than Box.lower[{i}] = {a}")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)

    @property
    def dim(self) -> int:  # type: ignore[override]
        """The dimension d: the number of entries of ``lower``."""
        return len(self.lower)

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``lower`` and ``upper`` as float64 tensors of shape (d,)."""
        return (torch.tensor(self.lower, dtype=torch.float64),
                torch.tensor(self.upper, dtype=torch.float64))

    def reflect(self, x: torch.Tensor) -> torch.Tensor:
        """Fold points (n, d) back into the box by mirror reflection at the faces."""
        lower, upper = (b.to(x) for b in self.bounds())
        return reflect_box(x, lower, upper - lower)


@dataclass(frozen=True)
class Euclidean(Domain):
    """All of R^dim.  Sampling uses a box given here or derived by the problem."""

    dim: int
    box: Box | None = None
    bounded: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        _check_dim(self.dim)
        if self.box is not None and self.box.dim != self.dim:
            raise ProblemError(
                f"Euclidean.box has dimension {self.box.dim}, expected {self.dim}")

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.box is None:
            raise ProblemError(
                "Euclidean domain has no truncation box; use "
                "MFGProblem.bounding_box() or pass Euclidean(dim, box=Box(...))")
        return self.box.bounds()

    def contains(self, x: torch.Tensor, atol: float = 1e-12) -> torch.Tensor:
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)


# ------------------------------------------------------------------ shared geometry
def cell_centres(lower, upper, cells: int | Sequence[int]) -> list[torch.Tensor]:
    """The cell centres of a tensor grid on the box ``[lower, upper]``, axis by axis.

    Parameters
    ----------
    lower : tensor, array, sequence of float or float
        The lower box corner, shape (d,) (a float for d = 1).
    upper : tensor, array, sequence of float or float
        The upper box corner, shape (d,).
    cells : int or sequence of int
        Cells per axis, one int for every axis or d ints.

    Returns
    -------
    list of torch.Tensor
        d float64 CPU tensors; axis i has shape (cells_i,) and entries
        ``lower_i + (j + 1/2) h_i`` with ``h_i = (upper_i - lower_i) / cells_i``.  The product
        ``(j + 1/2) * h_i`` (not ``(j + 1/2) * width_i / cells_i``) is the grid solver's form:
        its nodes, and everything tabulated on them, keep their exact values.
    """
    lower = torch.as_tensor(lower, dtype=torch.float64).reshape(-1)
    upper = torch.as_tensor(upper, dtype=torch.float64).reshape(-1)
    counts = [int(cells)] * lower.shape[0] if isinstance(cells, Integral) else [int(c) for c in cells]
    h = (upper - lower) / torch.tensor(counts, dtype=torch.float64)
    return [lower[i] + (torch.arange(k, dtype=torch.float64) + 0.5) * h[i] for i, k in enumerate(counts)]


def cell_centre_points(lower, upper, cells: int | Sequence[int]) -> torch.Tensor:
    """All cell centres of [`cell_centres`][mfgnet.problems.domains.cell_centres]' grid as points,
    (prod_i cells_i, d) float64.

    Points are in C order (the last axis fastest: ``meshgrid(indexing="ij")``, as
    ``numpy.ravel_multi_index`` numbers them), so values at the points reshape to ``cells``.
    """
    axes = cell_centres(lower, upper, cells)
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))


def wrap_periodic(x, length: float, out=None, scratch=None):
    """``x mod length``: points of the torus ``[0, length)^d`` back into it.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        Positions of any shape.
    length : float
        The period.
    out : torch.Tensor or numpy.ndarray or None
        Where to write the result (may be ``x`` itself); a new array when None.
    scratch : numpy.ndarray or None
        Numpy only: a buffer of x's shape and dtype for the in-place kernel.

    Returns
    -------
    torch.Tensor or numpy.ndarray
        ``out`` (or a new array/tensor) of x's shape.  torch uses ``torch.remainder``.  numpy
        uses ``x - length * floor(x / length)`` in place (given ``out`` and ``scratch``, the
        only temporary is x / length, none for length 1): cheaper than ``np.remainder`` in the
        agent simulation's per-step kernel.  It then lifts rounding's tiny negatives (x just
        below a multiple of length) to 0.
    """
    if isinstance(x, torch.Tensor):
        return torch.remainder(x, length, out=out)
    out = np.empty_like(x) if out is None else out
    scratch = np.empty_like(x) if scratch is None else scratch
    np.floor(x / length if length != 1.0 else x, out=scratch)
    scratch *= length
    np.subtract(x, scratch, out=out)
    np.maximum(out, 0, out=out)
    return out


def reflect_box(x, lower, width, out=None):
    """Mirror reflection of points into the box ``[lower, lower + width]`` (no-flux faces).

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        Positions, shape (..., d).
    lower : torch.Tensor or numpy.ndarray or float
        The box's lower corner, (d,) or a scalar, in x's kind and dtype.
    width : torch.Tensor or numpy.ndarray or float
        The box's side lengths, (d,) or a scalar, in x's kind and dtype (callers pass their
        own: the simulation's float32 width is ``upper - lower`` rounded once, which
        ``upper32 - lower32`` need not equal).
    out : torch.Tensor or numpy.ndarray or None
        Where to write the result (may be ``x`` itself); a new array when None.

    Returns
    -------
    torch.Tensor or numpy.ndarray
        The reflected positions, x's shape: with ``y = (x - lower) mod 2 width``, ``lower + y``
        where ``y <= width`` and the mirror image ``lower + 2 width - y`` elsewhere.
    """
    xp = torch if isinstance(x, torch.Tensor) else np
    y = xp.remainder(x - lower, 2 * width)
    folded = lower + xp.where(y > width, 2 * width - y, y)
    if out is None:
        return folded
    if xp is np:
        np.copyto(out, folded)
    else:
        out.copy_(folded)
    return out


def _as_tuple(value, name: str) -> tuple[float, ...]:
    if isinstance(value, (int, float)):
        return (float(value),)
    try:
        out = tuple(float(v) for v in value)
    except TypeError as exc:
        raise ProblemError(f"{name} must be a number or a sequence of numbers, got {value!r}") from exc
    if not out:
        raise ProblemError(f"{name} must not be empty")
    return out
