"""The Hydra entry point end to end, as a user runs it: files written, metrics right, errors clear."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mfgnet.configs import CONFIG_DIR, register_configs
from mfgnet.problems import ProblemError
from mfgnet.report import main as report_main
from mfgnet.runner import run_experiment

ROOT = Path(__file__).resolve().parent.parent


def run_in_process(overrides, run_dir):
    """What ``python -m mfgnet <overrides>`` does, without paying a new interpreter per case."""
    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return run_experiment(OmegaConf.to_container(cfg, resolve=True), run_dir)


def run_cli(*overrides, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "mfgnet", *overrides], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "WANDB_MODE": "disabled"})


@pytest.mark.parametrize("problem, extra, checks", [
    ("ergodic_torus", ["solver.cells=64"], {"rel_l2_m": 0.05, "abs_err_lambda": 0.6}),
    ("ergodic_torus", ["problem.dim=2", "solver.cells=16"], {"rel_l2_m": 0.3}),
    ("hopf_cole", ["solver.cells=32"], {"rel_l2_m": 0.03}),
    ("lq_gaussian", ["solver.cells=64"], {"rel_l2_m": 0.2}),
    ("crowd_aversion", ["solver.cells=32"], {}),
])
def test_grid_run_writes_outputs(tmp_path, problem, extra, checks):
    returned = run_in_process([f"problem={problem}", "solver=grid", *extra], tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == returned
    assert metrics["converged"] is True
    assert metrics["mass_error"] <= 1e-12
    for key, bound in checks.items():
        assert metrics[key] < bound, (key, metrics[key])
    for name in ("solution.npz", "solution.png", "history.json"):
        assert (tmp_path / name).exists(), name


@pytest.mark.parametrize("override, message", [
    ("solver.cells=4", "grid too coarse"),
    ("problem.sigma=-1", "sigma must be > 0"),
    ("solver.method=gauss", "method"),
])
def test_bad_values_are_rejected_by_name(tmp_path, override, message):
    with pytest.raises(ProblemError, match=message):
        run_in_process(["solver=grid", override], tmp_path)


@pytest.mark.parametrize("overrides, message", [
    (["problem=crowd_aversion", "problem.aversion=nan"], "aversion must be a finite number, got nan"),
    (["problem=hopf_cole", "problem.kappa=inf"], "kappa must be a finite number, got inf"),
    (["problem=crowd_aversion", "problem.target=inf"], "target must be a finite number, got inf"),
    (["solver=neural", "optim.lr=nan"], "optim.lr must be a finite number in (0.0, 10.0], got nan"),
    (["solver.damping=inf"], "solver.damping must be a finite number in (0.0, 1.0], got inf"),
])
def test_nan_and_inf_are_refused_in_every_field(tmp_path, overrides, message):
    with pytest.raises(ProblemError) as info:
        run_in_process(overrides, tmp_path)
    assert message in str(info.value)
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize("override, message", [
    ("problem.dimm=2", "Could not override 'problem.dimm'"),
    ("+problem.dimension=2", "unknown parameter(s) ['problem.dimension']"),
    ("solver.cells=abc", "could not be converted to Integer"),
    ("problem.sigma=wide", "could not be converted to Float"),
])
def test_structured_configs_reject_typos_and_wrong_types(tmp_path, override, message):
    with pytest.raises(Exception) as info:
        run_in_process(["solver=grid", override], tmp_path)
    chain, exc = [], info.value
    while exc is not None:  # Hydra wraps OmegaConf's precise message as the cause
        chain.append(str(exc))
        exc = exc.__cause__
    assert any(message in text for text in chain), chain
    assert not (tmp_path / "metrics.json").exists()


def test_command_line_run_and_clear_error(tmp_path):
    """The real entry point: a run writes its resolved config; a bad field exits 2 with one line."""
    result = run_cli("solver=grid", "solver.cells=32", f"hydra.run.dir={tmp_path / 'ok'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "ok" / "config_resolved.yaml").exists()
    assert "[mfgnet] ergodic_torus_1d / grid" in result.stdout
    assert f"run directory {tmp_path / 'ok'}" in result.stdout  # logged at the start
    assert f"outputs written to {tmp_path / 'ok'}" in result.stdout  # and at the end
    assert "run directory" in (tmp_path / "ok" / "__main__.log").read_text()  # Hydra's log file
    result = run_cli("solver=grid", "solver.cells=4", f"hydra.run.dir={tmp_path / 'bad'}")
    assert result.returncode == 2
    assert "grid too coarse" in result.stderr and "Traceback" not in result.stderr


def test_tiny_multirun_and_report(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("-m", "solver=grid", "solver.cells=16,32", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    out = tmp_path / "report"
    assert report_main([str(sweep), "--out", str(out)]) == 0
    table = (out / "sweep.md").read_text()
    assert "| 16 |" in table and "| 32 |" in table
    rows = (out / "sweep.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[0].startswith("job,solver.cells")
    errors = [float(r.split(",")[rows[0].split(",").index("rel_l2_m")]) for r in rows[1:]]
    assert errors[1] < errors[0]  # the finer grid is more accurate
    assert (out / "error_vs_solver.cells.png").exists()
    assert (out / "cost_vs_solver.cells.png").exists()  # wall time against the swept key
