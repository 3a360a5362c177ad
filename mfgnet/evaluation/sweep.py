"""Turn a Hydra multirun directory into a table (markdown + CSV) and plots.

Each job directory of a multirun holds ``.hydra/overrides.yaml`` (what the sweep varied)
and the ``metrics.json`` / ``history.json`` that :mod:`mfgnet.runner` wrote.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

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
        for metric in ("rel_l2_u", "rel_l2_m", "abs_err_lambda"):
            slope = fitted_slope(runs, param, metric)
            if slope is not None:
                lines.append(f"\nFitted slope of log {metric} against log {param}: {slope:.2f}")
    paths["markdown"].write_text("\n".join(lines) + "\n")
    for param in params:
        if error_metric is None:
            break
        paths[f"error_vs_{param}"] = _plot_metric_vs(runs, param, error_metric, params,
                                                     out / f"error_vs_{param.replace('/', '_')}.png")
    if any(r["history"] for r in runs):
        paths["histories"] = _plot_histories(runs, params, out / "histories.png")
    return paths


def fitted_slope(runs: list[dict], param: str, metric: str) -> float | None:
    """Least-squares slope of log(metric) against log(param) when ``param`` is the only swept key
    and takes >= 3 positive values (e.g. the observed order of a grid: -slope vs cells)."""
    points = [(r["overrides"].get(param), r["metrics"].get(metric)) for r in runs]
    if len(swept_keys(runs)) != 1 or len({p for p, _ in points}) < 3:
        return None
    if not all(isinstance(p, (int, float)) and p > 0 and isinstance(v, (int, float)) and v > 0 for p, v in points):
        return None
    return float(np.polyfit(np.log([p for p, _ in points]), np.log([v for _, v in points]), 1)[0])


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _label(run: dict, params: list[str], skip: str | None = None) -> str:
    return ", ".join(f"{p}={run['overrides'].get(p)}" for p in params if p != skip) or run["job"]


def _plot_metric_vs(runs, param, metric, params, path):
    fig, ax = plt.subplots(figsize=(5.5, 4))
    groups: dict[str, list[tuple]] = {}
    for run in runs:
        if metric in run["metrics"]:
            groups.setdefault(_label(run, params, skip=param), []).append(
                (run["overrides"].get(param), run["metrics"][metric]))
    for label, points in groups.items():
        points.sort(key=lambda p: (isinstance(p[0], str), p[0]))
        xs = [str(p[0]) if isinstance(p[0], str) else p[0] for p in points]
        ax.plot(xs, [p[1] for p in points], "o-", label=label)
    ax.set_yscale("log")
    values = [r["overrides"].get(param) for r in runs]
    if all(isinstance(v, (int, float)) and v > 0 for v in values) and max(values) >= 8 * min(values):
        ax.set_xscale("log")
    ax.set_xlabel(param)
    ax.set_ylabel(metric)
    if len(groups) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_histories(runs, params, path):
    fig, ax = plt.subplots(figsize=(6, 4))
    for run in runs:
        history = run["history"]
        name = "total" if "total" in history else next(iter(history), None)
        if name:
            ax.semilogy([abs(v) + 1e-300 for v in history[name]], label=_label(run, params))
    ax.set_xlabel("iteration / step")
    ax.set_ylabel("loss" if any("total" in r["history"] for r in runs) else "residual")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
