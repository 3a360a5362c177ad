"""The neural solver on the problem zoo (issue 11): every problem with default settings.

    python experiments/neural_zoo.py                              # all problems, default config
    python experiments/neural_zoo.py --problems box_bump_1d readme_box_1d --steps 500
    python experiments/neural_zoo.py --references-only            # compute / check the cache
    python experiments/neural_zoo.py --config '{"optim": {"lbfgs_steps": 0}}' --tag variant

References (grid solver, or the closed form) are computed once and cached as small .npz
files under results/neural_zoo/references/: u and m on a fixed evaluation grid (21 times ×
200 nodes in 1D, 21 × 40² in 2D; ergodic: the nodes only).  The neural solution is evaluated
on the same points.  rel L2(u) removes the mean for ergodic problems and is weighted by the
reference m on R^d (as :func:`mfgnet.evaluation.compare`); the mass error is
:func:`mfgnet.evaluation.metrics.mass_error` over 21 times.  Each finished problem is stored
as JSON under results/neural_zoo/runs/<tag>/ and the table (zoo.md / zoo.csv, or
zoo_<tag>.* for another tag) is rebuilt from all stored rows, so a subset run updates it.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from mfgnet.evaluation.metrics import mass_error, relative_l2  # noqa: E402
from mfgnet.grid import solve_grid  # noqa: E402
from mfgnet.neural import NeuralSolverConfig, networks_solution, solve_neural  # noqa: E402
from mfgnet.neural.equilibrium import applies, decide, equilibrium_check  # noqa: E402
from mfgnet.neural.solver import vetoed_diagnosis, with_check_clauses  # noqa: E402
from mfgnet.problems.zoo import REFERENCE, ZOO, exact_solution  # noqa: E402

OUT = ROOT / "results" / "neural_zoo"
TARGETS = {"rel_l2_m": 3e-2, "rel_l2_u": 5e-2, "mass_error": 1e-3, "wall_s": 300.0}
EVAL_TIMES = 21


def evaluation_grid(problem) -> tuple[np.ndarray | None, np.ndarray]:
    """Fixed evaluation points: times (k,) or None, nodes (n, d) (cell centres of the box)."""
    per_axis = {1: 200, 2: 40}[problem.dim]
    lower, upper = problem.bounding_box().bounds()
    axes = [lower[i] + (torch.arange(per_axis, dtype=torch.float64) + 0.5) * (upper[i] - lower[i]) / per_axis
            for i in range(problem.dim)]
    x = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, problem.dim)
    times = None if problem.is_ergodic else np.linspace(0.0, problem.horizon, EVAL_TIMES)
    return times, x.numpy()


def on_grid(solution, times, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """u and m of any Solution at every (time, node): (k, n) arrays, or (n,) for ergodic."""
    xt = torch.from_numpy(x)
    with torch.no_grad():
        if times is None:
            return solution.value(None, xt).double().numpy(), solution.density(None, xt).double().numpy()
        u = np.stack([solution.value(float(t), xt).double().numpy() for t in times])
        m = np.stack([solution.density(float(t), xt).double().numpy() for t in times])
    return u, m


def reference(name: str) -> dict:
    """The cached reference of ``name`` (computed and written on first use)."""
    path = OUT / "references" / f"{name}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    problem = ZOO[name]()
    times, x = evaluation_grid(problem)
    spec = REFERENCE[name]
    start = time.perf_counter()
    if spec["kind"] == "exact":
        sol = exact_solution(name)
        info = {"converged": True, "mass_error": 0.0, "residual": 0.0}
    else:
        settings = {k: v for k, v in spec.items() if k != "kind"}
        sol = solve_grid(problem, **settings)
        d = sol.diagnostics
        info = {"converged": d.converged, "mass_error": d.extra["mass_error"], "residual": d.residual}
    wall = time.perf_counter() - start
    u, m = on_grid(sol, times, x)
    lam = np.nan if sol.ergodic_constant is None else float(sol.ergodic_constant)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"x": x, "times": np.array([]) if times is None else times, "u": u, "m": m, "lam": np.array(lam),
            "wall_s": np.array(wall), "converged": np.array(info["converged"]),
            "mass_error": np.array(info["mass_error"]), "residual": np.array(info["residual"]),
            "spec": np.array(json.dumps(spec))}
    np.savez_compressed(path, **data)
    print(f"[reference] {name}: {spec} in {wall:.1f} s, converged {info['converged']}, "
          f"mass error {info['mass_error']:.1e}", flush=True)
    return data


def evaluate(name: str, solution, ref: dict) -> dict:
    """Errors of ``solution`` against the cached reference."""
    problem = solution.problem
    times = None if problem.is_ergodic else ref["times"]
    u, m = on_grid(solution, times, ref["x"])
    weights = None if problem.domain.bounded else ref["m"]
    out = {"rel_l2_m": relative_l2(m, ref["m"]),
           "rel_l2_u": relative_l2(u, ref["u"], weights, center=problem.is_ergodic),
           "mass_error": mass_error(solution, n_times=EVAL_TIMES)}
    if problem.is_ergodic:
        out["abs_err_lambda"] = abs(float(solution.ergodic_constant) - float(ref["lam"]))
    else:  # where in time m's error sits: rel L2 at each evaluation time (the row's JSON) and the worst one
        by_time = {f"{float(t):g}": relative_l2(m[i], ref["m"][i]) for i, t in enumerate(times)}
        out["rel_l2_m_by_time"] = by_time
        worst = max(by_time, key=lambda t: by_time[t] if math.isfinite(by_time[t]) else math.inf)
        out["m_worst_time"] = f"t={worst}: {by_time[worst]:.2g}"
    return out


def networks_path(tag: str, name: str) -> Path:
    """Where a run's trained networks are kept (``*.pt`` is git-ignored: local, for ``--recheck``)."""
    return OUT / "runs" / tag / "networks" / f"{name}.pt"


def run(name: str, config: dict, steps: int | None, tag: str = "default") -> dict:
    ref = reference(name)
    problem = ZOO[name]()
    cfg = dict(config)
    if steps is not None:
        cfg["steps"] = steps
    start = time.perf_counter()
    sol = solve_neural(problem, cfg)
    total = time.perf_counter() - start
    path = networks_path(tag, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"networks": sol.networks.state_dict(), "config": cfg}, path)
    d = sol.diagnostics
    row = {"problem": name, **evaluate(name, sol, ref), "wall_s": d.wall_time_s, "total_s": total,
           "converged": bool(d.converged), "residual": d.residual, "steps": d.iterations,
           "lbfgs_steps": d.extra.get("lbfgs_steps", 0), "lbfgs_kept": lbfgs_kept(d.extra.get("lbfgs_guard")),
           "hjb_residual": d.extra["hjb_residual"],
           "fp_residual": d.extra["fp_residual"], "crowd_gap": d.extra.get("crowd_gap"),
           "crowd_scheme_error": d.extra.get("crowd_scheme_error"), "value_gap": d.extra.get("value_gap"),
           "value_scheme_error": d.extra.get("value_scheme_error"),
           **{k: d.extra.get(k) for k in DISTANCE_COLUMNS},
           "converged_by": d.extra.get("converged_by"),
           "residual_ok": d.extra["residual_ok"],
           "diagnosis": d.extra.get("diagnosis", {}).get("summary", "")}
    row["met"] = all(row[k] <= v for k, v in TARGETS.items())
    return row


def recheck(name: str, tag: str) -> tuple[dict, dict] | None:
    """The solver's fixed-point check and ``converged`` again for a stored row, from its saved networks
    (no training; e.g. after the check changed): the row, updated and written, and the config overrides
    it was trained with; None without both files."""
    row_path, net_path = OUT / "runs" / tag / f"{name}.json", networks_path(tag, name)
    if not (row_path.exists() and net_path.exists()):
        return None
    saved = torch.load(net_path, weights_only=True)  # tensors and plain containers only: cannot run code
    problem = ZOO[name]()
    cfg = NeuralSolverConfig.from_dict(saved["config"])
    solution = networks_solution(problem, cfg, saved["networks"])
    check = equilibrium_check(solution, cfg.equilibrium_tolerance) if applies(problem, cfg.equilibrium_tolerance) \
        else None
    row = json.loads(row_path.read_text())
    residual_ok = row.get("residual_ok", row["residual"] <= cfg.tolerance)
    row["converged"], row["converged_by"] = decide(residual_ok, check)
    row["residual_ok"] = residual_ok
    if check is not None:
        row.update({k: v for k, v in check.record().items() if k in COLUMNS})
    row["diagnosis"] = rechecked_diagnosis(row, check, cfg.tolerance)
    row["rechecked"] = time.strftime("%Y-%m-%d")
    row_path.write_text(json.dumps(row, indent=1))
    return row, saved["config"]


# Where the fixed-point check's clauses begin in a stored diagnosis (mfgnet.neural.solver.with_check_clauses
# appends them to the residual's diagnosis; rows run before the thirty-third session carry the older crowd
# check's wording).
_CHECK_CLAUSES = ("; and m is ", "; and u is ", "; the crowd check could not", "; the value check could not")


def rechecked_diagnosis(row: dict, check, tolerance: float) -> str:
    """A stored row's diagnosis under its new verdict, as a fresh run would write it: none when it converged,
    the veto's when its residual passes, else its residual part (what training left: dominant term, where,
    advice) followed by the new check's clauses."""
    if row["converged"]:
        return ""
    if row["residual_ok"]:  # a passing residual fails to converge only by a veto
        return vetoed_diagnosis(row["residual"], tolerance, check)["summary"]
    text = row.get("diagnosis") or ""
    cut = min((i for i in (text.find(c) for c in _CHECK_CLAUSES) if i >= 0), default=len(text))
    # a row that converged before has no residual part stored: say what the residual check found
    residual_part = text[:cut] or f"residual {row['residual']:.2e} > tolerance {tolerance:.1e}"
    return with_check_clauses({"summary": residual_part}, check)["summary"]


def lbfgs_kept(guard: dict | None) -> str | None:
    """The L-BFGS guard's outcome: the iterations kept, and whether it rolled back (None: no guard ran)."""
    if guard is None:
        return None
    return f"{guard['kept']}" + (" (rolled back)" if guard["rolled_back"] else "")


def fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.2e}" if math.isfinite(v) else "n/a"
    return str(v)


# the distances of the pair to the grid's equilibrium (mfgnet.neural.equilibrium), as diagnostics.extra names them
DISTANCE_COLUMNS = ("equilibrium_m_gap", "equilibrium_m_scheme_error", "equilibrium_u_gap",
                    "equilibrium_u_scheme_error")
COLUMNS = ("problem", "rel_l2_m", "m_worst_time", "rel_l2_u", "mass_error", "abs_err_lambda", "wall_s", "steps",
           "lbfgs_steps", "lbfgs_kept", "converged", "converged_by", "residual", "crowd_gap", "crowd_scheme_error",
           "value_gap", "value_scheme_error", *DISTANCE_COLUMNS, "met", "diagnosis")


def missed_targets(row: dict) -> list[str]:
    """The targets a stored row misses, by name ("m", "u", "mass", "wall")."""
    names = {"rel_l2_m": "m", "rel_l2_u": "u", "mass_error": "mass", "wall_s": "wall"}
    return [names[k] for k, v in TARGETS.items() if not row[k] <= v]


def misses_accuracy(row: dict) -> bool:
    """Whether a row misses an error or mass target (the wall aside: it depends on the machine's load)."""
    return bool(set(missed_targets(row)) - {"wall"})


def geometry(name: str) -> str:
    """Where a zoo problem lives, e.g. "box, 1D, time-dependent" (read from its declaration)."""
    problem = ZOO[name]()
    domain = problem.domain
    kind = "torus" if domain.periodic else ("box" if domain.bounded else "R^d")
    return f"{kind}, {problem.dim}D, {'ergodic' if problem.is_ergodic else 'time-dependent'}"


def summary_lines(rows: list[dict]) -> list[str]:
    """A compact table: one line per problem, its errors and wall, and the targets it misses."""
    lines = ["| problem | where | rel L2 m | rel L2 u | mass error | wall (s) | converged | targets missed |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        missed = ", ".join(missed_targets(r)) or "none"
        lines.append(f"| {r['problem']} | {geometry(r['problem'])} | {r['rel_l2_m']:.2g} | {r['rel_l2_u']:.2g} | "
                     f"{r['mass_error']:.1g} | {r['wall_s']:.0f} | {fmt(r['converged'])} | {missed} |")
    return lines


def plot_rows(rows: list[dict], path: Path) -> Path:
    """Errors and walls of the stored rows against the targets, one line of the figure per problem."""
    from mfgnet.evaluation.style import STYLE, _pyplot, save

    plt = _pyplot()
    names = [r["problem"] for r in rows]
    y = np.arange(len(rows))[::-1]
    with plt.rc_context(STYLE):
        fig, (ax_err, ax_wall) = plt.subplots(1, 2, figsize=(7.2, 1.3 + 0.19 * len(rows)), sharey=True,
                                              layout="constrained", gridspec_kw={"width_ratios": [2, 1]})
        ax_err.scatter([r["rel_l2_m"] for r in rows], y, marker="o", s=18, color="C0", label="rel L2 m", zorder=3)
        ax_err.scatter([r["rel_l2_u"] for r in rows], y, marker="s", s=14, facecolors="none", edgecolors="C1",
                       label="rel L2 u", zorder=3)
        ax_err.axvline(TARGETS["rel_l2_m"], color="C0", lw=0.8, ls="--", label="target m")
        ax_err.axvline(TARGETS["rel_l2_u"], color="C1", lw=0.8, ls=":", label="target u")
        ax_err.set_xscale("log")
        ax_err.set_xlabel("relative L2 error against the reference")
        ax_err.set_yticks(y, names)
        for label, r in zip(ax_err.get_yticklabels(), rows):
            if misses_accuracy(r):  # red: an error or mass target missed (the wall: right panel)
                label.set_color("C3")
        ax_err.grid(axis="x", lw=0.3, alpha=0.5)
        ax_err.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=4, frameon=False, fontsize=7)
        ax_wall.barh(y, [r["wall_s"] for r in rows], color="0.6", height=0.6)
        ax_wall.axvline(TARGETS["wall_s"], color="k", lw=0.8, ls="--", label="target")
        ax_wall.set_xlabel("wall (s), shared 2-core CPU")
        ax_wall.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), frameon=False, fontsize=7)
        fig.suptitle("Neural solver on the problem zoo (red: an error or mass target missed)")
    return save(fig, path)


def write_tables(tag: str, command: str, config: dict) -> None:
    rows = []
    run_dir = OUT / "runs" / tag
    for name in ZOO:
        path = run_dir / f"{name}.json"
        if path.exists():
            rows.append(json.loads(path.read_text()))
    suffix = "" if tag == "default" else f"_{tag}"
    figure = plot_rows(rows, OUT / f"zoo{suffix}.png")
    with open(OUT / f"zoo{suffix}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS) + ["uptime"], extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow(r)
    met = sum(r["met"] for r in rows)
    # The wall depends on the machine and its load (one shared 2-core box, several jobs at a time); the errors
    # are deterministic, so they are counted on their own as well.
    accurate = sum(not misses_accuracy(r) for r in rows)
    # The default table is rebuilt by subset runs too: say what runs the whole of it, and what ran last.
    commands = (f"Command (every problem): `python experiments/neural_zoo.py`; the last update: `{command}`  "
                if tag == "default" else f"Command: `{command}`  ")
    lines = [f"# Neural solver on the problem zoo ({tag})", "",
             commands,
             f"Config overrides: `{json.dumps(config)}` (empty = the defaults of mfgnet.neural.NeuralSolverConfig)  ",
             *(["Rows come from several invocations; which session ran which rows, with which defaults: "
                "[history.md](history.md); every remedy measured: [means.md](means.md).  "]
               if tag == "default" else []),
             *([f"Every row again with seed {k} (`--tag seed{k} --config '{{\"progress\": false, \"seed\": {k}}}'`): "
                f"[zoo_seed{k}.md](zoo_seed{k}.md).  " for k in (1, 2)
                if tag == "default" and (OUT / f"zoo_seed{k}.md").exists()]),
             f"Machine: {platform.machine()}, 2-core CPU shared with other jobs (load per row below), "
             f"1 torch thread; torch {torch.__version__}.  ",
             f"Targets: rel L2(m) ≤ {TARGETS['rel_l2_m']:g}, rel L2(u) ≤ {TARGETS['rel_l2_u']:g}, mass error ≤ "
             f"{TARGETS['mass_error']:g}, wall ≤ {TARGETS['wall_s']:g} s.  Met: {met} of {len(rows)}; the error and "
             f"mass targets alone: {accurate} of {len(rows)}.", "",
             f"![errors and walls of every row]({figure.name})", "",
             *summary_lines(rows), "",
             "## Every column, with the solver's diagnosis", "",
             "Errors on the fixed evaluation grid against the cached reference (grid solver or exact); "
             "u centred for ergodic problems, weighted by the reference m on R^d; m_worst_time the evaluation time "
             "where m's rel L2 is largest, and that error (rows run from the forty-fourth session on; the row's "
             "JSON holds it at every time: rel_l2_m_by_time); mass error = max over 21 "
             "times of |∫m − 1|. 'converged' is the solver's own verdict (mfgnet.neural.equilibrium), "
             "'converged_by' which check gave it (residual, or the equilibrium check: both gaps and both distances "
             "within 3 %); crowd_gap is m against the crowd that u's feedback produces on a grid, value_gap u "
             "against the value of the best response to m, equilibrium_m_gap / equilibrium_u_gap m and u against "
             "the equilibrium the grid solver's Newton iteration reaches from the pair (run where no gap fails; "
             "rows run before the thirty-seventh session and not rechecked have none), each *_scheme_error that "
             "grid's own estimated error (in 1D what the 400-cell grid cannot decide is solved again on 800 "
             "cells).  Ergodic rows have no gaps (no grid "
             "check; the residual decides); time-dependent rows without value_gap were run before the "
             "thirty-third session, when 'converged' was the residual check (vetoed by a crowd gap above 5 % plus "
             "its grid's error) and never true on a time-dependent row; `--recheck` brings a row with saved "
             "networks up to date.", "",
             "| " + " | ".join(COLUMNS) + " | load (1 min) |", "|" + "---|" * (len(COLUMNS) + 1)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c, "")) for c in COLUMNS) + f" | {r.get('load', '')} |")
    (OUT / f"zoo{suffix}.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", nargs="+", choices=sorted(ZOO), default=list(ZOO))
    parser.add_argument("--steps", type=int, default=None, help="Adam steps (default: the config's)")
    parser.add_argument("--config", default="{}", help="JSON dict of neural config overrides")
    parser.add_argument("--tag", default="default", help="run label; 'default' writes zoo.md / zoo.csv")
    parser.add_argument("--references-only", action="store_true")
    parser.add_argument("--recheck", action="store_true",
                        help="no training: the solver's fixed-point check and converged again for stored rows, "
                             "from their saved networks (runs/<tag>/networks/)")
    args = parser.parse_args(argv)
    config = json.loads(args.config)
    command = "python experiments/neural_zoo.py " + " ".join(sys.argv[1:] if argv is None else argv)
    for name in args.problems:
        if args.references_only:
            reference(name)
            continue
        if args.recheck:
            done = recheck(name, args.tag)
            if done is None:
                print(f"[zoo] {name}: no stored row and networks", flush=True)
                continue
            row, config = done  # the table names the overrides the rows were trained with
            print(f"[zoo] {name}: converged {row['converged']} ({row['converged_by']})", flush=True)
            continue
        load = os.getloadavg()[0]
        row = run(name, config, args.steps, args.tag)
        row["load"] = f"{load:.1f}–{os.getloadavg()[0]:.1f}"
        run_dir = OUT / "runs" / args.tag
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / f"{name}.json").write_text(json.dumps(row, indent=1))
        print(f"[zoo] {name}: m {row['rel_l2_m']:.2e} u {row['rel_l2_u']:.2e} mass {row['mass_error']:.1e} "
              f"wall {row['wall_s']:.0f} s converged {row['converged']} met {row['met']}", flush=True)
        write_tables(args.tag, command, config)
    if args.recheck:  # the table keeps naming the command that trained its rows
        suffix = "" if args.tag == "default" else f"_{args.tag}"
        table = OUT / f"zoo{suffix}.md"
        last = next((line for line in table.read_text().splitlines() if line.startswith("Command")), "") \
            if table.exists() else ""
        # the default table names the whole run first and the last update second
        position = 3 if "the last update: `" in last else 1
        trained = last.split("`")[position] if last.count("`") > position else "(unknown)"
        write_tables(args.tag, f"{trained}`, rechecked with `{command}", config)


if __name__ == "__main__":
    main()
