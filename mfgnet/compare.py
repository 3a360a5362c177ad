"""Run one problem with several solvers and compare them (and the exact solution, if any).

    python -m mfgnet.compare problem=ergodic_torus --solvers grid neural \\
        grid:solver.cells=512 neural:solver.steps=3000 --out results/compare/b1_1d

Plain overrides (``problem.dim=2``) apply to every run; ``<solver>:<override>`` to one.
Writes ``comparison.md``, ``comparison.csv``, ``densities.png`` and each run's folder
(metrics, arrays, ``solution.png`` with its error map) under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mfgnet.configs import CONFIG_DIR, register_configs
from mfgnet.problems.validation import ProblemError


def compose_config(overrides: list[str]) -> dict:
    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def run_comparison(overrides: list[str], solvers: list[str], out: Path, command: str = "") -> Path:
    from mfgnet.evaluation.comparison import COLUMNS, comparison_rows, markdown_table, plot_densities
    from mfgnet.runner import execute_run

    out.mkdir(parents=True, exist_ok=True)
    shared = [o for o in overrides if ":" not in o.split("=")[0]]
    results = {}
    for solver in solvers:
        own = [o.split(":", 1)[1] for o in overrides if o.split("=")[0].startswith(f"{solver}:")]
        cfg = compose_config([*shared, f"solver={solver}", *own])
        results[solver] = execute_run(cfg, out / solver)
    first = next(iter(results.values()))
    solutions = {name: r.solution for name, r in results.items()}
    rows = comparison_rows(solutions, {n: r.metrics for n, r in results.items()}, first.exact,
                           reference=solvers[0])
    title = f"{first.problem.name}: " + " vs ".join((["exact"] if first.exact else []) + solvers)
    (out / "comparison.md").write_text(markdown_table(rows, title, command or "python -m mfgnet.compare ..."))
    with (out / "comparison.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["solver", *COLUMNS], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    plot_densities(solutions, out / "densities.png", exact=first.exact)
    return out / "comparison.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mfgnet.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides; prefix with <solver>: for one solver")
    parser.add_argument("--solvers", nargs="+", default=["grid", "neural"])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    command = "python -m mfgnet.compare " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        table = run_comparison(args.overrides, args.solvers, args.out, command)
    except ProblemError as exc:
        print(f"mfgnet.compare: error: {exc}", file=sys.stderr)
        return 2
    print(table.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
