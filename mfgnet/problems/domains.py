"""Spatial domains: where the agents live and how points are sampled there.

Three kinds:

* :class:`Torus` -- periodic cube ``[0, L)^d``; no boundary condition is needed.
* :class:`Box` -- ``[lower, upper]`` with no-flux (reflecting) boundaries.
* :class:`Euclidean` -- all of R^d.  Solvers work on a truncation box that the
  problem derives from its initial density (see ``MFGProblem.bounding_box``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def wrap(self, x: torch.Tensor) -> torch.Tensor:
        """Map points back into ``[0, length)^d``."""
        return torch.remainder(x, float(self.length))


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
        return len(self.lower)

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.tensor(self.lower, dtype=torch.float64),
                torch.tensor(self.upper, dtype=torch.float64))

    def reflect(self, x: torch.Tensor) -> torch.Tensor:
        """Fold points back into the box by mirror reflection at the faces."""
        lower, upper = (b.to(x) for b in self.bounds())
        width = upper - lower
        y = torch.remainder(x - lower, 2 * width)
        return lower + torch.where(y > width, 2 * width - y, y)


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
