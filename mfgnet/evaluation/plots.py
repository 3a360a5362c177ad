"""Matplotlib figures of any solution (and its difference to a reference).

1D time-dependent: u and m as space-time images; 1D ergodic: u and m as curves;
2D: snapshots of m and u (at t = 0, T/2, T for time-dependent problems).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures go to files; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from mfgnet.problems import cell_centre_points, cell_centres  # noqa: E402
from mfgnet.solution import Solution  # noqa: E402


def _axis_points(problem, per_axis: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    lower, upper = problem.bounding_box().bounds()
    return cell_centres(lower, upper, per_axis), cell_centre_points(lower, upper, per_axis)


def _fields(solution: Solution, t, x):
    with torch.no_grad():
        u = solution.value(t, x).double()
        m = solution.density(t, x).double()
    if solution.problem.is_ergodic:
        u = u - u.mean()
    return u, m


def plot_solution(solution: Solution, path: str | Path, reference: Solution | None = None,
                  title: str = "") -> Path:
    """Save a figure of u and m (and solution − reference when given) to ``path``."""
    problem = solution.problem
    path = Path(path)
    if problem.dim == 1:
        fig = _plot_1d(solution, reference)
    elif problem.dim == 2:
        fig = _plot_2d(solution, reference)
    else:
        fig = _plot_slices(solution, reference)
    fig.suptitle(title or problem.name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_1d(solution, reference):
    problem = solution.problem
    (axis,), x = _axis_points(problem, 256)
    if problem.is_ergodic:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        u, m = _fields(solution, None, x)
        for ax, field, label in ((axes[0], u, "u (mean removed)"), (axes[1], m, "m")):
            ax.plot(axis, field, label="solution")
            ax.set_title(label)
            ax.set_xlabel("x")
        if reference is not None:
            u_ref, m_ref = _fields(reference, None, x)
            axes[0].plot(axis, u_ref, "--", label="reference")
            axes[1].plot(axis, m_ref, "--", label="reference")
            axes[0].legend()
        return fig
    times = torch.linspace(0, problem.horizon, 128, dtype=torch.float64)
    tt = times.repeat_interleave(x.shape[0]).unsqueeze(-1)
    xx = x.repeat(times.numel(), 1)
    u, m = (f.reshape(times.numel(), -1) for f in _fields(solution, tt, xx))
    panels = [(u, "u(t, x)"), (m, "m(t, x)")]
    if reference is not None:
        u_ref, m_ref = (f.reshape(times.numel(), -1) for f in _fields(reference, tt, xx))
        panels += [(u - u_ref, "u − reference"), (m - m_ref, "m − reference")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.5))
    extent = [float(axis[0]), float(axis[-1]), 0.0, problem.horizon]
    for ax, (field, label) in zip(axes, panels):
        im = ax.imshow(field.numpy(), origin="lower", aspect="auto", extent=extent, **_colour(label, field))
        ax.set_title(label)
        ax.set_xlabel("x")
        ax.set_ylabel("t")
        fig.colorbar(im, ax=ax)
    return fig


def _colour(label: str, field: torch.Tensor) -> dict:
    """Differences get a diverging map with 0 at its white centre; fields a sequential one."""
    if "−" not in label:
        return {"cmap": "viridis"}
    bound = float(field.abs().max()) or 1.0
    return {"cmap": "RdBu_r", "vmin": -bound, "vmax": bound}


def _snapshot_times(problem):
    return [None] if problem.is_ergodic else [0.0, problem.horizon / 2, problem.horizon]


def _plot_2d(solution, reference):
    problem = solution.problem
    k = 96
    (ax0, ax1), x = _axis_points(problem, k)
    times = _snapshot_times(problem)
    rows = 3 if reference is not None else 2
    fig, axes = plt.subplots(rows, len(times), figsize=(4 * len(times), 3.3 * rows), squeeze=False)
    extent = [float(ax0[0]), float(ax0[-1]), float(ax1[0]), float(ax1[-1])]
    for j, t in enumerate(times):
        u, m = _fields(solution, t, x)
        panels = [(m, "m"), (u, "u")]
        if reference is not None:
            panels.append((m - _fields(reference, t, x)[1], "m − reference"))
        for i, (field, label) in enumerate(panels):
            ax = axes[i][j]
            im = ax.imshow(field.reshape(k, k).T.numpy(), origin="lower", extent=extent, **_colour(label, field))
            ax.set_title(label if t is None else f"{label}, t = {t:.3g}")
            fig.colorbar(im, ax=ax)
    return fig


def _plot_slices(solution, reference):
    """d > 2: m and u along the first coordinate axis through the box centre."""
    problem = solution.problem
    lower, upper = problem.bounding_box().bounds()
    s = torch.linspace(float(lower[0]), float(upper[0]), 256, dtype=torch.float64)
    x = ((lower + upper) / 2).repeat(256, 1)
    x[:, 0] = s
    times = _snapshot_times(problem)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for t in times:
        u, m = _fields(solution, t, x)
        tag = "" if t is None else f"t = {t:.3g}"
        axes[0].plot(s, u, label=f"u {tag}")
        axes[1].plot(s, m, label=f"m {tag}")
        if reference is not None:
            u_ref, m_ref = _fields(reference, t, x)
            axes[0].plot(s, u_ref, "k--", lw=0.8)
            axes[1].plot(s, m_ref, "k--", lw=0.8)
    for ax in axes:
        ax.set_xlabel("x_1 (other coordinates at the box centre)")
        ax.legend(fontsize=7)
    return fig


def plot_histories(histories: dict[str, list[float]], path: str | Path, title: str = "") -> Path:
    """Loss/residual curves on a log scale, one line per named history."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in histories.items():
        if values:
            ax.semilogy([abs(v) + 1e-300 for v in values], label=name)
    ax.set_xlabel("iteration / step")
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
