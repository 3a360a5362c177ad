"""Turn a Hydra multirun directory into a table (markdown + CSV) and plots.

Each job directory of a multirun holds ``.hydra/overrides.yaml`` (what the sweep varied)
and the ``metrics.json`` / ``history.json`` that :mod:`mfgnet.runner` wrote.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import yaml

from mfgnet.evaluation.style import save, styled

DEFAULT_METRICS = ("rel_l2_u", "rel_l2_m", "abs_err_lambda", "mass_error", "converged", "iterations",
                   "final_loss", "wall_time_s")


def collect_runs(multirun_dir: str | Path) -> list[dict]:
    """One record per finished job: {"job": name, "overrides": {k: v}, "metrics": {...}, "history": {...}}."""
    runs = []
    for metrics_file in sorted(Path(multirun_dir).rglob("metrics.json"), key=_job_order):
        job = metrics_file.parent
        overrides_file = job / ".hydra" / "overrides.yaml"
        overrides = {}
        if overrides_file.exists():
            for item in yaml.safe_load(overrides_file.read_text()) or []:
                key, _, value = str(item).partition("=")
                overrides[key.lstrip("+~")] = _parse(value)
        history_file = job / "history.json"
        runs.append({
            "job": str(job.relative_to(multirun_dir)),
            "overrides": overrides,
            "metrics": json.loads(metrics_file.read_text()),
            "history": json.loads(history_file.read_text()) if history_file.exists() else {},
        })
    return runs


def _job_order(path: Path):
    name = path.parent.name
    return (0, int(name)) if name.isdigit() else (1, str(path))


def _parse(value: str):
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def swept_keys(runs: list[dict]) -> list[str]:
    """Override keys whose value differs between runs (constant overrides are not a sweep axis)."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run["overrides"] if k not in keys]
    return [k for k in keys if len({json.dumps(r["overrides"].get(k), default=str) for r in runs}) > 1] or keys


def write_report(multirun_dir: str | Path, out_dir: str | Path, metrics: tuple[str, ...] = DEFAULT_METRICS,
                 title: str | None = None) -> dict[str, Path]:
    """Write ``sweep.md``, ``sweep.csv``, ``error_vs_<param>.png`` and ``histories.png`` to ``out_dir``."""
    runs = collect_runs(multirun_dir)
    if not runs:
        raise FileNotFoundError(f"no metrics.json under {multirun_dir}: is it a finished multirun directory?")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = swept_keys(runs)
    present = [m for m in metrics if any(m in r["metrics"] for r in runs)]
    header = ["job", *params, *present]
    rows = [[r["job"], *(r["overrides"].get(p, "") for p in params), *(r["metrics"].get(m, "") for m in present)]
            for r in runs]
    paths = {"csv": out / "sweep.csv", "markdown": out / "sweep.md"}
    with paths["csv"].open("w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    lines = [f"# {title or 'Sweep'}", "", f"Made by `python -m mfgnet.report {multirun_dir} --out {out_dir}`.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    error_metric = next((m for m in ("rel_l2_m", "rel_l2_u", "final_loss") if m in present), None)
    for param in params:
        for metric in ("rel_l2_u", "rel_l2_m", "abs_err_lambda", *COST_METRICS):
            slope = fitted_slope(runs, param, metric)
            if slope is not None:
                lines.append(f"\nFitted slope of log {metric} against log {param}: {slope:.2f}")
    paths["markdown"].write_text("\n".join(lines) + "\n")
    for param in params:
        if error_metric is None:
            break
        paths[f"error_vs_{param}"] = _plot_metric_vs(runs, param, error_metric, params,
                                                     out / f"error_vs_{param.replace('/', '_')}.png")
    for param in params:  # cost against each swept key (e.g. seconds per step against d)
        costs = [m for m in COST_METRICS if m in present]
        if costs and all(_positive(r["overrides"].get(param)) for r in runs):
            paths[f"cost_vs_{param}"] = save(metric_vs_figure(runs, param, params, costs[:1], kind="cost"),
                                            out / f"cost_vs_{param.replace('/', '_')}.png")
    if any(r["history"] for r in runs):
        paths["histories"] = _plot_histories(runs, params, out / "histories.png")
    return paths


def loglog_slope(xs, ys) -> float:
    """Least-squares slope of log y against log x over the pairs where both are positive (a rate:
    -1 for y ∝ 1/x); nan when fewer than two such pairs have distinct x."""
    pairs = [(x, y) for x, y in ((float(a), float(b)) for a, b in zip(xs, ys)) if 0 < x < np.inf and 0 < y < np.inf]
    if len({x for x, _ in pairs}) < 2:
        return float("nan")
    return float(np.polyfit(np.log([x for x, _ in pairs]), np.log([y for _, y in pairs]), 1)[0])


def fitted_slope(runs: list[dict], param: str, metric: str) -> float | None:
    """Least-squares slope of log(metric) against log(param) when ``param`` is the only swept key
    and takes >= 3 positive values (e.g. the observed order of a grid: -slope vs cells)."""
    points = [(r["overrides"].get(param), r["metrics"].get(metric)) for r in runs]
    if len(swept_keys(runs)) != 1 or len({p for p, _ in points}) < 3:
        return None
    if not all(isinstance(p, (int, float)) and p > 0 and isinstance(v, (int, float)) and v > 0 for p, v in points):
        return None
    return loglog_slope(*zip(*points))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _label(run: dict, params: list[str], skip: str | None = None) -> str:
    return ", ".join(f"{p}={run['overrides'].get(p)}" for p in params if p != skip) or run["job"]


METRIC_LABELS = {"rel_l2_u": "relative L2 error of u", "rel_l2_m": "relative L2 error of m",
                 "abs_err_lambda": "|λ − λ_exact|", "final_loss": "final loss", "mass_error": "|∫m − 1|",
                 "seconds_per_step": "seconds per step", "wall_time_s": "wall time (s)"}
# Plotted as cost against a swept key when present (the first one found).
COST_METRICS = ("seconds_per_step", "wall_time_s")


def _slope(points: list[tuple]) -> float | None:
    """Least-squares slope of log y against log x, for >= 3 distinct positive numeric x."""
    points = [(x, y) for x, y in points if _positive(x) and _positive(y)]
    if len({x for x, _ in points}) < 3:
        return None
    return loglog_slope(*zip(*points))


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


@styled
def metric_vs_figure(runs: list[dict], param: str, params: list[str], metrics: list[str], kind: str = "error"):
    """Error (or, ``kind="cost"``, cost) against the swept ``param`` (never against job numbers).

    One swept key: one curve per metric in ``metrics``, each with its fitted slope in the legend.
    Several: one curve per combination of the other swept keys, for the first metric present.
    Both axes are logarithmic when every value of ``param`` is a positive number.
    """
    from mfgnet.evaluation.style import panels

    others = [p for p in params if p != param]
    present = [m for m in metrics if any(m in r["metrics"] for r in runs)]
    shown = present if not others else present[:1]
    curves: dict[str, list[tuple]] = {}
    for run in runs:
        x = run["overrides"].get(param)
        for metric in shown:
            if metric in run["metrics"]:
                name = METRIC_LABELS.get(metric, metric) if not others else _label(run, params, skip=param)
                curves.setdefault(name, []).append((x, run["metrics"][metric]))
    numeric = all(_positive(r["overrides"].get(param)) for r in runs)
    fig, axes = panels(1, 1)
    fig.set_size_inches(4.8, 3.6)
    ax = axes[0][0]
    for n, (name, points) in enumerate(curves.items()):
        points.sort(key=lambda p: (isinstance(p[0], str), p[0]))
        xs = [p[0] if numeric else str(p[0]) for p in points]
        slope = _slope(points) if numeric else None
        label = name if slope is None else f"{name}, slope {slope:.2f}"
        ax.plot(xs, [p[1] for p in points], marker="os^Dv<>"[n % 7], label=label)
    ax.set_yscale("log")
    if kind == "cost":  # costs often span less than a decade: label 1, 1.5, 2, 3, 5, 7 × 10^k
        from matplotlib import ticker

        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    if numeric:
        ax.set_xscale("log")
        values = sorted({r["overrides"].get(param) for r in runs})
        if len(values) <= 8:  # tick every swept value, written plainly
            ax.set_xticks(values, [f"{v:g}" for v in values])
            ax.minorticks_off()
    ax.set_xlabel(param)
    ax.set_ylabel(METRIC_LABELS.get(shown[0], shown[0]) if others or len(shown) == 1 else kind)
    ax.set_title(f"{kind} against {param}")
    ax.legend(title=None if not others else ", ".join(others))
    return fig


def _plot_metric_vs(runs, param, metric, params, path):
    metrics = [metric] + [m for m in ("rel_l2_u", "rel_l2_m", "abs_err_lambda") if m != metric]
    if metric == "final_loss":
        metrics = [metric]
    return save(metric_vs_figure(runs, param, params, metrics), path)


# Grid iterations: Picard hollow circles, Newton filled circles, the closing exact FP step a cross.
_PHASE_MARKERS = {"picard": ("o", False), "newton": ("o", True), "final": ("X", True)}
_PHASE_LABELS = {"picard": "Picard iteration", "newton": "Newton iteration", "final": "final exact FP step"}


@styled
def histories_figure(runs: list[dict], params: list[str]):
    """One convergence curve per run (the total loss, else the residual), labelled by its overrides,
    with the solvers' tolerance and phases (Picard/Newton, Adam/L-BFGS) when every run shares them."""
    from mfgnet.evaluation.plots import _mark_phases, history_curves, panels

    fig, axes = panels(1, 1)
    ax = axes[0][0]
    fig.set_size_inches(6.5, 3.4)
    kinds: set[str] = set()
    used: set[str] = set()
    for run in runs:
        curves = history_curves(run["history"])
        name = next((k for k in ("total", "loss", "residual") if k in curves), next(iter(curves), None))
        if name:
            kinds.add(name)
            steps = run["history"].get("step")
            xs = steps if steps is not None and len(steps) == len(curves[name]) else range(len(curves[name]))
            ys = [abs(v) if v == v and v != 0 else float("nan") for v in curves[name]]
            line, = ax.semilogy(list(xs), ys, lw=1.2, label=_label(run, params))
            phase = run["history"].get("phase")
            if name == "residual" and phase and len(phase) == len(ys):  # grid: each iteration's kind
                for kind, (marker, fill) in _PHASE_MARKERS.items():
                    pts = [(x, y) for x, y, k in zip(xs, ys, phase) if k == kind]
                    if pts:
                        ax.plot(*zip(*pts), ls="none", marker=marker, ms=4, color=line.get_color(),
                                markerfacecolor=line.get_color() if fill else "white")
                        used.add(kind)
    tolerances = {r["history"].get("tolerance") for r in runs if r["history"]}
    if len(tolerances) == 1 and None not in tolerances and kinds == {"residual"}:  # a tolerance bounds residuals
        tol = tolerances.pop()
        ax.axhline(tol, color="k", ls=":", lw=1.0, label=f"tolerance {tol:.0e}")
    for kind in [k for k in _PHASE_MARKERS if k in used]:  # legend entries for the markers
        marker, fill = _PHASE_MARKERS[kind]
        ax.plot([], [], ls="none", marker=marker, ms=4, color="0.3", markerfacecolor="0.3" if fill else "white",
                label=_PHASE_LABELS[kind])
    phases = {json.dumps([r["history"].get("phase"), r["history"].get("step")]) for r in runs if r["history"]}
    if not used and len(phases) == 1:  # every run went through the same phases: shade them once
        phase, steps = json.loads(phases.pop())
        if phase:
            _mark_phases([ax], phase, steps)
    ax.set_xlabel("iteration" if kinds == {"residual"} else "optimiser step")
    ax.set_ylabel("residual (max norm)" if kinds == {"residual"} else "loss" if kinds <= {"loss", "total"}
                  else " / ".join(sorted(kinds)))
    ax.set_title("convergence of each run")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def _plot_histories(runs, params, path):
    from mfgnet.evaluation.style import save

    return save(histories_figure(runs, params), path)
