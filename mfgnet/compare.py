"""Run one problem with several solvers and compare them (and the exact solution, if any).

    python -m mfgnet.compare problem=ergodic_torus --solvers grid neural \\
        grid:solver.cells=512 neural:solver.steps=3000 --out results/compare/b1_1d

Plain overrides (``problem.dim=2``) apply to every run; ``<solver>:<override>`` to one.
Writes ``comparison.md``, ``comparison.csv``, ``densities.png`` and each run's folder
(metrics, arrays, ``solution.png`` with its error map) under ``--out``.  Overrides may stand
anywhere on the line; every solver's config is validated before the first solve, and ``--out``
is replaced only when the whole comparison is done.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mfgnet.configs import CONFIG_DIR, register_configs
from mfgnet.problems.validation import ProblemError
from mfgnet.progress import console_logging


def compose_config(overrides: list[str]) -> dict:
    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def split_overrides(overrides: list[str], solvers: list[str]) -> dict[str, list[str]]:
    """Each solver's override list: the plain overrides (``problem.dim=2``, for every run) and
    then its own ``<solver>:<override>`` ones.  An override prefixed with a solver that is not
    compared is refused (it would be silently ignored)."""
    shared, own = [], {name: [] for name in solvers}
    for override in overrides:
        key = override.split("=", 1)[0]
        if ":" not in key:
            shared.append(override)
            continue
        name, rest = override.split(":", 1)
        if name not in own:
            raise ProblemError(f"override {override!r} is for solver {name!r}, which is not among --solvers "
                               f"{' '.join(solvers)}")
        own[name].append(rest)
    return {name: [*shared, f"solver={name}", *own[name]] for name in solvers}


def validate_runs(configs: dict[str, dict]) -> None:
    """Build every run's problem and solver settings (and check their memory) before any solve,
    so that a bad override of the last solver fails in a second, not after the others ran."""
    from mfgnet.runner import prepare_run

    for name, cfg in configs.items():
        try:
            prepare_run(cfg)
        except ProblemError as exc:
            raise ProblemError(f"solver {name}: {exc}") from exc


def run_comparison(overrides: list[str], solvers: list[str], out: Path, command: str = "") -> Path:
    """Compose and validate every solver's config, run them, and write the comparison into ``out``.

    Everything is written into a temporary sibling folder that replaces ``out`` only when all
    runs and tables are done: an interrupted or failed comparison leaves ``out`` as it was.
    """
    from mfgnet.evaluation.comparison import COLUMNS, comparison_rows, markdown_table, plot_densities
    from mfgnet.runner import execute_run

    if not solvers:
        raise ProblemError("--solvers needs at least one solver name")
    configs = {}
    for name, own in split_overrides(overrides, solvers).items():
        try:
            configs[name] = compose_config(own)
        except (HydraException, OmegaConfBaseException) as exc:  # unknown group or key: one line
            raise ProblemError(f"solver {name}: {exc}") from exc
    validate_runs(configs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        results = {name: execute_run(cfg, work / name) for name, cfg in configs.items()}
        first = next(iter(results.values()))
        solutions = {name: r.solution for name, r in results.items()}
        rows = comparison_rows(solutions, {n: r.metrics for n, r in results.items()}, first.exact,
                               reference=solvers[0])
        title = f"{first.problem.name}: " + " vs ".join((["exact"] if first.exact else []) + solvers)
        (work / "comparison.md").write_text(markdown_table(rows, title, command or "python -m mfgnet.compare ..."))
        with (work / "comparison.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["solver", *COLUMNS], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        plot_densities(solutions, work / "densities.png", exact=first.exact)
        _replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out / "comparison.md"


def _replace(new: Path, out: Path) -> None:
    """Put the folder ``new`` at ``out``: renames only, so ``out`` is never half written."""
    if not out.exists():
        new.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old.rmdir()
    out.rename(old)
    new.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mfgnet.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides; prefix with <solver>: for one solver")
    parser.add_argument("--solvers", nargs="+", default=["grid", "neural"])
    parser.add_argument("--out", type=Path, required=True)
    # Overrides may stand before, between or after the options (``--solvers grid neural
    # neural:solver.steps=300`` as well); an argument with "=" is an override, not a solver.
    args = parser.parse_intermixed_args(argv)
    names = [s for s in args.solvers if "=" not in s]
    args.overrides = [*args.overrides, *(s for s in args.solvers if "=" in s)]
    args.solvers = names
    command = "python -m mfgnet.compare " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    console_logging()
    try:
        table = run_comparison(args.overrides, args.solvers, args.out, command)
    except ProblemError as exc:
        print(f"mfgnet.compare: error: {exc}", file=sys.stderr)
        return 2
    print(table.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
