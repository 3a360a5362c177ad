"""Side-by-side comparison of several solutions of one problem: a table and figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from mfgnet.evaluation.metrics import compare, evaluation_points  # noqa: E402
from mfgnet.problems import cell_centre_points  # noqa: E402
from mfgnet.solution import Solution  # noqa: E402

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


def plot_densities(solutions: dict[str, Solution], path: str | Path, exact: Solution | None = None) -> Path:
    """Densities of every solver side by side (1D: curves at a few times; 2D: one image each)."""
    all_solutions = ({"exact": exact} if exact is not None else {}) | solutions
    first = next(iter(all_solutions.values()))
    problem = first.problem
    times = [None] if problem.is_ergodic else [0.0, problem.horizon / 2, problem.horizon]
    lower, upper = problem.bounding_box().bounds()
    if problem.dim == 1:
        x = torch.linspace(float(lower[0]), float(upper[0]), 400, dtype=torch.float64).unsqueeze(-1)
        fig, axes = plt.subplots(1, len(times), figsize=(4.5 * len(times), 3.5), squeeze=False)
        for ax, t in zip(axes[0], times):
            for name, sol in all_solutions.items():
                with torch.no_grad():
                    ax.plot(x[:, 0], sol.density(t, x), "--" if name == "exact" else "-", label=name)
            ax.set_title("m" if t is None else f"m at t = {t:.3g}")
            ax.set_xlabel("x")
            ax.legend(fontsize=8)
    else:
        k = 96
        pts = cell_centre_points(lower[:2], upper[:2], k)  # the (x0, x1) plane
        if problem.dim > 2:  # other coordinates at the box centre
            centre = ((lower + upper) / 2).repeat(pts.shape[0], 1)
            centre[:, :2] = pts
            pts = centre
        t = times[-1]
        fig, axes = plt.subplots(1, len(all_solutions), figsize=(4 * len(all_solutions), 3.5), squeeze=False)
        for ax, (name, sol) in zip(axes[0], all_solutions.items()):
            with torch.no_grad():
                image = sol.density(t, pts).reshape(k, k).T
            im = ax.imshow(image.numpy(), origin="lower", cmap="viridis",
                           extent=[float(lower[0]), float(upper[0]), float(lower[1]), float(upper[1])])
            ax.set_title(name if t is None else f"{name}, t = {t:.3g}")
            fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
