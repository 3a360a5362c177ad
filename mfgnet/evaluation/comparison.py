"""Side-by-side comparison of several solutions of one problem: a table and figures."""

from __future__ import annotations

from pathlib import Path

import torch

from mfgnet.evaluation.metrics import compare, evaluation_points
from mfgnet.evaluation.style import panels, save, styled
from mfgnet.problems import cell_centre_points
from mfgnet.solution import Solution

COLUMNS = ("rel_l2_u", "rel_l2_m", "abs_err_lambda", "lambda", "mass_error", "m_vs_reference", "converged",
           "iterations", "residual", "wall_time_s")


def comparison_rows(solutions: dict[str, Solution], metrics: dict[str, dict], exact: Solution | None,
                    reference: str | None = None) -> list[dict]:
    """One row per solver: its own metrics plus ``m_vs_reference``, the relative L2 distance of
    its density from ``reference``'s (the exact solution's if any, else the named solver's)."""
    rows = []
    if exact is not None:
        row = {"solver": "exact", "rel_l2_u": 0.0, "rel_l2_m": 0.0, "mass_error": 0.0, "converged": True}
        if exact.ergodic_constant is not None:
            row.update(abs_err_lambda=0.0, **{"lambda": float(exact.ergodic_constant)})
        rows.append(row)
    ref_solution = exact if exact is not None else solutions.get(reference)
    for name, solution in solutions.items():
        row = {"solver": name, **{k: v for k, v in metrics[name].items() if k in COLUMNS}}
        if ref_solution is not None and ref_solution is not solution:
            row["m_vs_reference"] = compare(solution, ref_solution,
                                            points=evaluation_points(solution, seed=1))["rel_l2_m"]
        rows.append(row)
    return rows


def markdown_table(rows: list[dict], title: str, command: str) -> str:
    """A markdown table of comparison rows (one per solver), titled, naming the command."""
    columns = ["solver"] + [c for c in COLUMNS if any(c in r for r in rows)]
    lines = [f"# {title}", "", f"Made by `{command}`.", "", "| " + " | ".join(columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        cells = [row.get(c, "") for c in columns]
        lines.append("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in cells) + " |")
    return "\n".join(lines) + "\n"


@styled
def densities_figure(solutions: dict[str, Solution], exact: Solution | None = None):
    """Densities of every solver side by side.

    1D: m(t, x) of every solver as curves at t = 0, T/2, T (one panel per time), and below them
    each solver's error m − m_ref against the exact solution (or, without one, against the first
    solver).  2D and up: one image of m per solver in the (x₁, x₂) plane at the final time
    (other coordinates at the box centre), then one image of m − m_ref per solver, each with a
    labelled colour bar.
    """
    all_solutions = ({"exact": exact} if exact is not None else {}) | solutions
    ref_name, ref = next(iter(all_solutions.items()))
    others = {k: v for k, v in all_solutions.items() if k != ref_name}
    problem = ref.problem
    times = [None] if problem.is_ergodic else [0.0, problem.horizon / 2, problem.horizon]
    lower, upper = problem.bounding_box().bounds()
    if problem.dim == 1:
        x = torch.linspace(float(lower[0]), float(upper[0]), 400, dtype=torch.float64).unsqueeze(-1)
        fig, axes = panels(2 if others else 1, len(times))
        for j, t in enumerate(times):
            with torch.no_grad():
                m_ref = ref.density(t, x).double()
                for name, sol in all_solutions.items():
                    m = sol.density(t, x).double()
                    style = {"color": "k", "ls": "--", "lw": 1.0} if sol is ref else {}
                    axes[0][j].plot(x[:, 0], m, label=name, **style)
                    if sol is not ref:
                        axes[1][j].plot(x[:, 0], m - m_ref, label=f"{name} − {ref_name}")
            symbol = "m(x)" if t is None else "m(t, x)"
            axes[0][j].set(xlabel="x", ylabel=symbol, title="density m" if t is None else f"m at t = {t:.3g}")
            axes[0][j].legend()
            if others:
                axes[1][j].axhline(0.0, color="0.6", lw=0.6)
                axes[1][j].set(xlabel="x", ylabel=f"m − m_{ref_name}",
                               title=f"error against {ref_name}" + ("" if t is None else f", t = {t:.3g}"))
                axes[1][j].ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
                axes[1][j].legend()
        return fig
    k = 96
    pts = cell_centre_points(lower[:2], upper[:2], k)  # the (x₁, x₂) plane
    if problem.dim > 2:  # other coordinates at the box centre
        centre = ((lower + upper) / 2).repeat(pts.shape[0], 1)
        centre[:, :2] = pts
        pts = centre
    t = times[-1]
    extent = [float(lower[0]), float(upper[0]), float(lower[1]), float(upper[1])]
    fig, axes = panels(2 if others else 1, len(all_solutions))
    with torch.no_grad():
        images = {name: sol.density(t, pts).double().reshape(k, k).T for name, sol in all_solutions.items()}
    at = "" if t is None else f", t = {t:.3g}"
    for j, (name, image) in enumerate(images.items()):
        im = axes[0][j].imshow(image.numpy(), origin="lower", cmap="viridis", extent=extent)
        axes[0][j].set(xlabel="x₁", ylabel="x₂", title=f"{name}: m{at}")
        fig.colorbar(im, ax=axes[0][j]).set_label("m")
    if others:
        axes[1][0].axis("off")
        for j, name in enumerate(others, start=1):
            err = images[name] - images[ref_name]
            bound = float(err.abs().max()) or 1.0
            im = axes[1][j].imshow(err.numpy(), origin="lower", cmap="RdBu_r", vmin=-bound, vmax=bound,
                                   extent=extent)
            axes[1][j].set(xlabel="x₁", ylabel="x₂", title=f"{name} − {ref_name}{at}")
            fig.colorbar(im, ax=axes[1][j]).set_label(f"m − m_{ref_name}")
    return fig


def plot_densities(solutions: dict[str, Solution], path: str | Path, exact: Solution | None = None) -> Path:
    """Save :func:`densities_figure` to ``path``."""
    return save(densities_figure(solutions, exact), path)
