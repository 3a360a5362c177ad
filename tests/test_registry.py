"""Solvers are registered objects: a third-party solver (entry point ``mfgnet.solvers``)
works with the API, the CLI, sweeps, compare and report unchanged; one seed reaches every solver."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mfgnet
from mfgnet.problems import ProblemError
from mfgnet.registry import SolverSpec, get_solver, register_solver, solver_names

TOY_MODULE = '''
"""A toy third-party solver: the grid solver on a coarse grid, with settings of its own."""
from dataclasses import dataclass

from mfgnet.registry import SolverSpec
from mfgnet.settings import Settings, number


@dataclass(frozen=True)
class ToyConfig(Settings):
    section = "solver"
    cells: int = number(24, 8, 4096, integer=True)


def solve(problem, config, *, callback=None, workdir=None):
    from mfgnet.grid import solve_grid

    solution = solve_grid(problem, cells=config.cells, callback=callback)
    solution.diagnostics.extra["toy"] = True
    return solution


SPEC = SolverSpec("toy", ToyConfig, solve, description="coarse grid, for the plug-in test")
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    """A folder that importlib.metadata sees as an installed distribution with an entry point."""
    root = tmp_path_factory.mktemp("plugin")
    (root / "toy_mfg_solver.py").write_text(TOY_MODULE)
    info = root / "toy_mfg_solver-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-mfg-solver\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mfgnet.solvers]\ntoy = toy_mfg_solver:SPEC\n")
    return root


def run(args, plugin_path, cwd):
    env = {**os.environ, "WANDB_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300, env=env,
                          cwd=cwd)


def test_builtin_solvers_are_registered_lazily():
    assert {"grid", "neural"} <= set(solver_names())
    spec = get_solver("neural")
    assert isinstance(spec, SolverSpec) and spec.groups == {"model": "mlp", "sampler": "uniform", "optim": "adam"}
    with pytest.raises(ProblemError, match="solver must be one of"):
        get_solver("spectral")


def test_register_refuses_a_silent_redefinition():
    spec = SolverSpec("grid", "mfgnet.grid.config:GridSolverConfig", "x:y")
    with pytest.raises(ValueError, match="registered already"):
        register_solver(spec)


def test_plugin_solver_through_cli_sweep_compare_and_report(plugin_path, tmp_path):
    one = run(["mfgnet", "solver=toy", "solver.cells=16", f"hydra.run.dir={tmp_path / 'one'}"], plugin_path, tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    metrics = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert metrics["converged"] and metrics["toy"] is True and metrics["rel_l2_m"] < 0.2

    bad = run(["mfgnet", "solver=toy", "solver.cells=4", f"hydra.run.dir={tmp_path / 'bad'}"], plugin_path, tmp_path)
    assert bad.returncode == 2 and "solver.cells must be an integer in [8, 4096]" in bad.stderr

    sweep = tmp_path / "sweep"
    swept = run(["mfgnet", "-m", "solver=toy", "solver.cells=16,32", f"hydra.sweep.dir={sweep}"], plugin_path,
                tmp_path)
    assert swept.returncode == 0, swept.stderr[-2000:]
    report = run(["mfgnet.report", str(sweep), "--out", str(tmp_path / "report")], plugin_path, tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "| 16 |" in (tmp_path / "report" / "sweep.md").read_text()

    compared = run(["mfgnet.compare", "solver.cells=32", "toy:solver.cells=16", "--solvers", "grid", "toy",
                    "--out", str(tmp_path / "cmp")], plugin_path, tmp_path)
    assert compared.returncode == 0, compared.stderr[-2000:]
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| toy |" in table and "| grid |" in table


def test_one_seed_reaches_the_neural_solver(tmp_path):
    """``-m seed=0,1,2`` gives three different neural runs; solver.seed overrides it."""
    sweep = tmp_path / "seeds"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    out = subprocess.run([sys.executable, "-m", "mfgnet", "-m", "solver=neural", "seed=0,1,2", "solver.steps=5",
                          "sampler.n_interior=32", "sampler.n_quadrature=32", "model.width=8",
                          f"hydra.sweep.dir={sweep}"], capture_output=True, text=True, timeout=300, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    losses = [json.loads((sweep / str(i) / "metrics.json").read_text())["final_loss"] for i in range(3)]
    assert len(set(losses)) == 3, losses


def test_solve_api_takes_fields_and_nested_fields():
    from mfgnet.benchmarks import ergodic_torus

    problem, exact = ergodic_torus(1)
    grid = mfgnet.solve(problem, "grid", cells=32)
    assert grid.diagnostics.converged and grid.m.shape == (32,)
    neural = mfgnet.solve(problem, "neural", steps=3, optim={"lr": 1e-3}, model__width=8, cpu_threads=1)
    assert neural.diagnostics.iterations == 3
    with pytest.raises(ProblemError, match="solver.cellz"):
        mfgnet.solve(problem, "grid", cellz=32)


def test_checkout_layout_is_what_the_package_lists():
    """pyproject's explicit package list names every package folder under mfgnet/."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "mfgnet").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
