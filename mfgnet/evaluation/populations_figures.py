"""The K densities of a multi-population solution together (segregation shows here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mfgnet.evaluation.style import panels, save
from mfgnet.problems import cell_centre_points, cell_centres


def populations_figure(solution, title: str = ""):
    """1D: every population's density at t = 0, T/2, T (or the stationary one), one panel per
    time; 2D: each population's density at T (or stationary), one panel per population."""
    problem = solution.problem
    lower, upper = problem.bounding_box().bounds()
    times = [None] if problem.is_ergodic else [0.0, problem.horizon / 2, problem.horizon]
    names = [p.name or f"population {k + 1}" for k, p in enumerate(problem.populations)]
    if problem.dim == 1:
        (axis,) = cell_centres(lower, upper, 400)
        x = axis[:, None]
        fig, axes = panels(1, len(times))
        for ax, t in zip(axes[0], times):
            with torch.no_grad():
                for k, name in enumerate(names):
                    ax.plot(axis.numpy(), solution.density(k, t, x).numpy(), label=name)
            ax.set(xlabel="x", ylabel="density", title="stationary" if t is None else f"t = {t:.3g}")
        axes[0][0].legend(frameon=False)
    else:
        per_axis = 96
        x = cell_centre_points(lower, upper, per_axis)
        fig, axes = panels(1, len(names))
        extent = [float(lower[0]), float(upper[0]), float(lower[1]), float(upper[1])]
        with torch.no_grad():
            fields = [solution.density(k, times[-1], x).reshape(per_axis, per_axis).numpy() for k in range(len(names))]
        top = max(float(np.max(f)) for f in fields)
        for ax, field, name in zip(axes[0], fields, names):
            image = ax.imshow(field.T, origin="lower", extent=extent, vmin=0, vmax=top, cmap="viridis")
            when = "stationary" if times[-1] is None else f"t = {times[-1]:.3g}"
            ax.set(xlabel="x₁", ylabel="x₂", title=f"{name}, {when}")
        fig.colorbar(image, ax=axes[0][-1], shrink=0.8, label="density")
    if title:
        fig.suptitle(title)
    return fig


def plot_populations(solution, path: str | Path, title: str = "") -> Path:
    """Save [`populations_figure`][mfgnet.evaluation.populations_figures.populations_figure]."""
    return save(populations_figure(solution, title or solution.problem.name), path)
