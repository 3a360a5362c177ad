"""Matplotlib figures of any solution (and its error against a reference), and of a run's history.

1D time-dependent: u and m as space-time images (t up, x across); 1D ergodic: u and m as
curves; 2D: snapshots of m and u (at t = 0, T/2, T for time-dependent problems); d > 2: curves
along x₁ through the box centre.  With a reference (the exact solution, or another solver's)
every layout adds the u and m error panels u − u_ref and m − m_ref.

Each figure has a ``*_figure`` function that returns the :class:`matplotlib.figure.Figure`
(what tests inspect) and a ``plot_*`` function that saves it at :data:`DPI`.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from mfgnet.evaluation.style import DPI, PANEL, STYLE, panels, save, styled  # noqa: F401  (re-exported)
from mfgnet.problems import cell_centre_points, cell_centres
from mfgnet.solution import Solution

# Curves of a history that are coordinates or bookkeeping, not convergence curves.
HISTORY_META = ("phase", "step", "tolerance", "monitor_step", "monitor_time_s")


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


@styled
def solution_figure(solution: Solution, reference: Solution | None = None, title: str = "",
                    reference_name: str = "ref"):
    """The figure of u and m (and u − u_ref, m − m_ref when ``reference`` is given).

    ``reference_name`` is the subscript of the reference in labels ("exact", "grid", ...).
    """
    problem = solution.problem
    if problem.dim == 1 and problem.is_ergodic:
        fig = _plot_1d_ergodic(solution, reference, reference_name)
    elif problem.dim == 1:
        fig = _plot_1d(solution, reference, reference_name)
    elif problem.dim == 2:
        fig = _plot_2d(solution, reference, reference_name)
    else:
        fig = _plot_slices(solution, reference, reference_name)
    fig.suptitle(title or problem.name)
    return fig


def plot_solution(solution: Solution, path: str | Path, reference: Solution | None = None,
                  title: str = "", reference_name: str = "exact") -> Path:
    """Save :func:`solution_figure` to ``path``."""
    return save(solution_figure(solution, reference, title, reference_name), path)


def _image(fig, ax, field, extent, symbol: str, error: bool, xlabel: str, ylabel: str, title: str):
    """One labelled image with a labelled colour bar; errors get a diverging map centred at 0."""
    if error:
        bound = float(field.abs().max()) or 1.0
        colour = {"cmap": "RdBu_r", "vmin": -bound, "vmax": bound}
    else:
        colour = {"cmap": "viridis"}
    im = ax.imshow(field.numpy(), origin="lower", aspect="auto", extent=extent, interpolation="nearest", **colour)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    bar = fig.colorbar(im, ax=ax)
    bar.set_label(symbol)
    bar.formatter.set_powerlimits((-2, 3))
    bar.update_ticks()
    return im


def _plot_1d(solution, reference, ref):
    """Space-time images: u(t, x), m(t, x); below them u − u_ref and m − m_ref."""
    problem = solution.problem
    (axis,), x = _axis_points(problem, 256)
    times = torch.linspace(0, problem.horizon, 128, dtype=torch.float64)
    tt = times.repeat_interleave(x.shape[0]).unsqueeze(-1)
    xx = x.repeat(times.numel(), 1)
    u, m = (f.reshape(times.numel(), -1) for f in _fields(solution, tt, xx))
    rows = [[(u, "u(t, x)", "value u", False), (m, "m(t, x)", "density m", False)]]
    if reference is not None:
        u_ref, m_ref = (f.reshape(times.numel(), -1) for f in _fields(reference, tt, xx))
        rows.append([(u - u_ref, f"u − u_{ref}", f"error in u against {ref}", True),
                     (m - m_ref, f"m − m_{ref}", f"error in m against {ref}", True)])
    fig, axes = panels(len(rows), 2)
    extent = [float(axis[0]), float(axis[-1]), 0.0, problem.horizon]
    for i, row in enumerate(rows):
        for j, (field, symbol, title, error) in enumerate(row):
            _image(fig, axes[i][j], field, extent, symbol, error, "x", "t", title)
    return fig


def _plot_1d_ergodic(solution, reference, ref):
    """Curves u(x) (mean removed) and m(x); below them u − u_ref and m − m_ref."""
    problem = solution.problem
    (axis,), x = _axis_points(problem, 256)
    u, m = _fields(solution, None, x)
    fig, axes = panels(2 if reference is not None else 1, 2)
    top = ((axes[0][0], u, "u(x) − mean u", "value u (mean removed)"), (axes[0][1], m, "m(x)", "density m"))
    for ax, field, symbol, title in top:
        ax.plot(axis, field, label="solution")
        ax.set(xlabel="x", ylabel=symbol, title=title)
    if reference is not None:
        u_ref, m_ref = _fields(reference, None, x)
        for (ax, *_), field in zip(top, (u_ref, m_ref)):
            ax.plot(axis, field, "k--", lw=1.0, label=ref)
            ax.legend()
        for ax, err, symbol in ((axes[1][0], u - u_ref, f"u − u_{ref}"), (axes[1][1], m - m_ref, f"m − m_{ref}")):
            ax.plot(axis, err, color="C3", label=symbol)
            ax.axhline(0.0, color="0.6", lw=0.6)
            ax.set(xlabel="x", ylabel=symbol, title=f"error against {ref}")
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            ax.legend()
    return fig


def _snapshot_times(problem):
    return [None] if problem.is_ergodic else [0.0, problem.horizon / 2, problem.horizon]


def _plot_2d(solution, reference, ref):
    """Snapshots (columns: times) of m and u; below them m − m_ref and u − u_ref (ergodic: 2 × 2)."""
    problem = solution.problem
    k = 96
    (ax0, ax1), x = _axis_points(problem, k)
    times = _snapshot_times(problem)
    n_items = 4 if reference is not None else 2
    stationary = len(times) == 1  # ergodic: one snapshot, laid out m, u / m − m_ref, u − u_ref
    fig, axes = panels(n_items // 2, 2) if stationary else panels(n_items, len(times))
    extent = [float(ax0[0]), float(ax0[-1]), float(ax1[0]), float(ax1[-1])]
    for j, t in enumerate(times):
        u, m = _fields(solution, t, x)
        items = [(m, "m", False), (u, "u" + (" − mean u" if t is None else ""), False)]
        if reference is not None:
            u_ref, m_ref = _fields(reference, t, x)
            items += [(m - m_ref, f"m − m_{ref}", True), (u - u_ref, f"u − u_{ref}", True)]
        for i, (field, symbol, error) in enumerate(items):
            title = symbol if t is None else f"{symbol} at t = {t:.3g}"
            ax = axes[i // 2][i % 2] if stationary else axes[i][j]
            im = _image(fig, ax, field.reshape(k, k).T, extent, symbol, error, "x₁", "x₂", title)
            im.axes.set_aspect("equal")
    return fig


def _plot_slices(solution, reference, ref):
    """d > 2: m and u along the first coordinate axis through the box centre (and their errors)."""
    problem = solution.problem
    lower, upper = problem.bounding_box().bounds()
    s = torch.linspace(float(lower[0]), float(upper[0]), 256, dtype=torch.float64)
    x = ((lower + upper) / 2).repeat(256, 1)
    x[:, 0] = s
    times = _snapshot_times(problem)
    fig, axes = panels(2 if reference is not None else 1, 2)
    for n, t in enumerate(times):
        u, m = _fields(solution, t, x)
        tag = "" if t is None else f", t = {t:.3g}"
        axes[0][0].plot(s, u, color=f"C{n}", label=f"u{tag}")
        axes[0][1].plot(s, m, color=f"C{n}", label=f"m{tag}")
        if reference is not None:
            u_ref, m_ref = _fields(reference, t, x)
            axes[0][0].plot(s, u_ref, "k--", lw=0.8, label=f"u_{ref}" if n == 0 else None)
            axes[0][1].plot(s, m_ref, "k--", lw=0.8, label=f"m_{ref}" if n == 0 else None)
            axes[1][0].plot(s, u - u_ref, color=f"C{n}", label=f"u − u_{ref}{tag}")
            axes[1][1].plot(s, m - m_ref, color=f"C{n}", label=f"m − m_{ref}{tag}")
    xlabel = "x₁ (other coordinates at the box centre)"
    axes[0][0].set(ylabel="u", title="value u")
    axes[0][1].set(ylabel="m", title="density m")
    if reference is not None:
        axes[1][0].set(ylabel=f"u − u_{ref}", title=f"error in u against {ref}")
        axes[1][1].set(ylabel=f"m − m_{ref}", title=f"error in m against {ref}")
    for ax in axes.flat:
        ax.set_xlabel(xlabel)
        ax.legend()
    return fig


def history_curves(history: dict) -> dict[str, list[float]]:
    """The convergence curves of a history (lists of numbers), without its bookkeeping entries."""
    return {k: v for k, v in history.items()
            if k not in HISTORY_META and isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v)}


def phase_spans(phases: list[str], steps: list[float] | None = None) -> list[tuple[str, float, float]]:
    """Consecutive runs of equal ``phases`` as (name, first x, last x), x = ``steps`` or the index."""
    xs = list(steps) if steps is not None else list(range(len(phases)))
    spans: list[tuple[str, float, float]] = []
    for name, x in zip(phases, xs):
        if spans and spans[-1][0] == name:
            spans[-1] = (name, spans[-1][1], x)
        elif steps is not None and spans:  # a phase starts where the previous one ended
            spans.append((name, spans[-1][2], x))
        else:
            spans.append((name, x, x))
    return spans


_PHASE_COLOURS = {"picard": "tab:orange", "newton": "tab:blue", "adam": "tab:green", "lbfgs": "tab:purple",
                  "final": "0.5"}
_PHASE_NAMES = {"picard": "Picard iterations", "newton": "Newton iterations", "adam": "Adam steps",
                "lbfgs": "L-BFGS iterations", "final": "final exact FP step"}
# Loss-term histories plotted on the loss panel; the rest (λ, lr, weights) go on the second panel.
_SECOND_PANEL = ("lambda", "lr")


@styled
def history_figure(history: dict, title: str = "", tolerance: float | None = None):
    """The convergence figure of one run's history (what ``history.json`` holds).

    ``history`` maps curve names to per-iteration lists; optional entries ``phase`` (one name per
    entry: picard/newton for the grid, adam/lbfgs for the neural solver), ``step`` (the x of each
    entry) and ``tolerance`` (a number; ``tolerance=`` overrides it) mark the phases and the
    stopping tolerance.  Loss terms and residuals share a log axis; λ and the learning rate,
    when present, get a second panel.
    """
    curves = history_curves(history)
    tolerance = tolerance if tolerance is not None else history.get("tolerance")
    phases = history.get("phase")
    steps = history.get("step")
    second = {k: v for k, v in curves.items() if k in _SECOND_PANEL}
    first = {k: v for k, v in curves.items() if k not in _SECOND_PANEL and not k.startswith("weight_")
             and not k.startswith("monitor_")}
    monitor = {k: v for k, v in curves.items() if k.startswith("monitor_")}
    fig, axes = panels(2 if second else 1, 1, sharex=True)
    fig.set_size_inches(PANEL[0] * 1.9, PANEL[1] * (1.7 if second else 1.1))
    ax = axes[0][0]
    grid_like = set(first) == {"residual"}
    for name, values in first.items():
        xs = steps if steps is not None and len(steps) == len(values) else range(len(values))
        style = {"marker": "o", "ms": 3} if grid_like else {"lw": 1.4 if name in ("loss", "residual") else 0.9}
        ax.plot(list(xs), [abs(v) if math.isfinite(v) and v != 0 else math.nan for v in values],
                label=_curve_label(name), **style)
    if monitor and "monitor_step" in history:
        for name, values in monitor.items():
            ax.plot(history["monitor_step"], [abs(v) for v in values], "s--", ms=3, label=name.removeprefix("monitor_"))
    ax.set_yscale("log")
    if not second:
        ax.set_xlabel("iteration" if grid_like else "optimiser step")
    ax.set_ylabel("residual (max norm)" if grid_like else "loss term / residual")
    if tolerance is not None:
        ax.axhline(tolerance, color="k", ls=":", lw=1.0,
                   label=f"tolerance {tolerance:.0e}" + ("" if grid_like else " (on the residual)"))
    if phases:
        _mark_phases([a for row in axes for a in row], phases, steps)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_title(title or "convergence")
    if second:
        ax2 = axes[1][0]
        for name, values in second.items():
            xs = steps if steps is not None and len(steps) == len(values) else range(len(values))
            target = ax2 if name == "lambda" else ax2.twinx() if "lambda" in second else ax2
            colour = "C0" if name == "lambda" else "C3"
            target.plot(list(xs), values, color=colour, label=_curve_label(name))
            target.set_ylabel(_curve_label(name), color=colour)
            if name == "lr":
                target.set_yscale("log")
        ax2.set_xlabel("optimiser step")
        pairs = [(h, lab) for a in fig.axes if a is not ax for h, lab in zip(*a.get_legend_handles_labels())
                 if lab in {_curve_label(k) for k in second}]
        ax2.legend(*zip(*pairs), loc="upper left", bbox_to_anchor=(1.15 if len(pairs) > 1 else 1.02, 1.0))
    return fig


def _curve_label(name: str) -> str:
    return {"lambda": "λ", "lr": "learning rate", "loss": "loss (weighted sum)", "hjb": "HJB residual²",
            "fp": "FP residual²", "residual": "residual"}.get(name, name)


def _mark_phases(axes, phases, steps):
    """Shade each phase's x range and say its name once in the first panel's legend."""
    seen = set()
    for name, lo, hi in phase_spans(phases, steps):
        colour = _PHASE_COLOURS.get(name, "0.8")
        for n, ax in enumerate(axes):
            label = _PHASE_NAMES.get(name, name) if n == 0 and name not in seen else None
            ax.axvspan(lo - 0.5 if steps is None else lo, hi + 0.5 if steps is None else hi,
                       color=colour, alpha=0.12, lw=0, label=label)
        seen.add(name)


def plot_histories(histories: dict, path: str | Path, title: str = "", tolerance: float | None = None) -> Path:
    """Save :func:`history_figure` of ``histories`` to ``path``."""
    return save(history_figure(histories, title, tolerance), path)
