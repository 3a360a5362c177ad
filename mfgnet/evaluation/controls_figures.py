"""Figures of an MFG of controls: the crowd's mean control ᾱ(t) and the mean state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mfgnet.evaluation.style import panels, save


def _mean_state(solution, times: torch.Tensor, per_axis: int = 512) -> np.ndarray:
    """∫ x m(t, x) dx at each time, by midpoint quadrature on the problem's box (d <= 2)."""
    from mfgnet.problems import cell_centre_points

    problem = solution.problem
    lower, upper = problem.bounding_box().bounds()
    cells = per_axis if problem.dim == 1 else 64
    x = cell_centre_points(lower, upper, cells)
    volume = float(torch.prod(torch.as_tensor(upper - lower, dtype=torch.float64))) / x.shape[0]
    n = x.shape[0]
    with torch.no_grad():
        m = solution.density(times.repeat_interleave(n), x.repeat(len(times), 1)).double().reshape(len(times), n)
    return (m @ x).numpy() * volume


def mean_control_figure(solution, reference=None, title: str = ""):
    """ᾱ(t) (left) and the mean state ∫ x m(t) dx (right) of ``solution``, with ``reference``'s
    (dashed) when it has a mean control; one line per coordinate."""
    problem = solution.problem
    times = torch.linspace(0.0, problem.horizon, 41, dtype=torch.float64)
    fig, axes = panels(1, 2)
    with torch.no_grad():
        curves = [("solver", solution, "-")]
        if reference is not None:
            curves.append(("exact", reference, "--"))
        for label, source, style in curves:
            control = np.asarray(source.mean_control(times)).reshape(len(times), -1)
            state = _mean_state(source, times) if problem.dim <= 2 else None
            for i in range(control.shape[1]):
                suffix = f" (x{i + 1})" if control.shape[1] > 1 else ""
                axes[0][0].plot(times.numpy(), control[:, i], style, color=f"C{i}", label=label + suffix)
                if state is not None:
                    axes[0][1].plot(times.numpy(), state[:, i], style, color=f"C{i}", label=label + suffix)
    axes[0][0].set_xlabel("t")
    axes[0][0].set_ylabel("mean control ᾱ(t)")
    axes[0][1].set_xlabel("t")
    axes[0][1].set_ylabel("mean state ∫ x m(t, x) dx")
    for ax in axes[0]:
        ax.legend(frameon=False, fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def plot_mean_control(solution, path: str | Path, reference=None, title: str = "") -> Path:
    """Save [`mean_control_figure`][mfgnet.evaluation.controls_figures.mean_control_figure] to ``path``."""
    return save(mean_control_figure(solution, reference, title or f"{solution.problem.name}: mean control"), path)
