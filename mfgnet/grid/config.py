"""Settings of the grid solver, validated at the boundary."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from mfgnet.problems import ProblemError

METHODS = ("newton", "picard", "fictitious_play")


@dataclass(frozen=True)
class GridSolverConfig:
    """Grid solver settings.

    Attributes:
        cells: cells per axis (>= 8; "grid too coarse" below).
        time_steps: implicit Euler steps on [0, T]; None chooses dt <= h (time-dependent only).
        method: "newton" (damped Picard warm start, then Newton on the whole coupled system),
            "picard" (damped fixed point) or "fictitious_play" (averaging with weight 1/(k+1)).
        tol: stop when the max-norm residual of the discrete system is below tol (> 0).
        max_iterations: outer iterations (Newton or Picard), >= 1.
        picard_warmup: damped Picard steps before Newton, >= 0.
        damping: Picard step θ in (0, 1]: m <- (1-θ) m + θ m_best_response.
        order: 1 (the monotone first-order scheme) or 2 (Richardson extrapolation of the runs
            on N and 2N cells, see :func:`mfgnet.grid.solve_grid`).
        verbose: progress output per outer iteration.
    """

    cells: int = 128
    time_steps: int | None = None
    method: str = "newton"
    tol: float = 1e-10
    max_iterations: int = 50
    picard_warmup: int = 3
    damping: float = 0.5
    order: int = 1
    verbose: bool = False

    def __post_init__(self) -> None:
        _int(self.cells, "cells", 8, "grid too coarse: ")
        if self.time_steps is not None:
            _int(self.time_steps, "time_steps", 2)
        if self.method not in METHODS:
            raise ProblemError(f"method = {self.method!r}: must be one of {', '.join(METHODS)}")
        if isinstance(self.tol, bool) or not isinstance(self.tol, (int, float)) or not (math.isfinite(self.tol)
                                                                                       and self.tol > 0):
            raise ProblemError(f"tol = {self.tol!r}: must be a finite number > 0")
        _int(self.max_iterations, "max_iterations", 1)
        _int(self.picard_warmup, "picard_warmup", 0)
        if isinstance(self.damping, bool) or not isinstance(self.damping, (int, float)) \
                or not 0 < self.damping <= 1:
            raise ProblemError(f"damping = {self.damping!r}: must lie in (0, 1]")
        if self.order not in (1, 2) or isinstance(self.order, bool):
            raise ProblemError(f"order = {self.order!r}: must be 1 or 2")
        if not isinstance(self.verbose, bool):
            raise ProblemError(f"verbose = {self.verbose!r}: must be true or false")

    @classmethod
    def from_dict(cls, d: dict) -> GridSolverConfig:
        """Build from a mapping (e.g. a Hydra ``solver`` group); unknown keys are errors.
        A ``name`` key (the config group's label) is ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in dict(d).items() if k != "name"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ProblemError(f"unknown grid solver setting(s) {unknown}; allowed: {sorted(known)}")
        return cls(**values)

    def replace(self, **overrides) -> GridSolverConfig:
        return GridSolverConfig.from_dict({**dataclasses.asdict(self), **overrides})


def _int(value, name: str, minimum: int, prefix: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ProblemError(f"{prefix}{name} = {value!r}: must be an integer >= {minimum}")
