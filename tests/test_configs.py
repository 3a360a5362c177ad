"""Every config composes; sweeps run through Optuna, joblib and submitit as a user launches them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore

from mfgnet.configs import CONFIG_DIR, EXPERIMENT_DIR, register_configs

ROOT = Path(__file__).resolve().parents[1]
CONF = Path(CONFIG_DIR)
EXPERIMENTS = sorted(p.stem for p in (Path(EXPERIMENT_DIR) / "experiment").glob("*.yaml"))


def options(group: str) -> list[str]:
    """Every option of a group: structured configs from the code and YAML presets."""
    register_configs()
    try:
        stored = [name.removesuffix(".yaml") for name in ConfigStore.instance().list(group)]
    except OSError:  # no structured options in this group
        stored = []
    return sorted(set(stored) | {p.stem for p in (CONF / group).glob("*.yaml")})


def compose_overrides(overrides, hydra_config=True):
    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=hydra_config)


@pytest.mark.parametrize("problem", options("problem"))
@pytest.mark.parametrize("solver", options("solver"))
def test_problem_and_solver_configs_compose(problem, solver):
    cfg = compose_overrides([f"problem={problem}", f"solver={solver}"])
    assert cfg.problem.name == problem and cfg.solver.name == solver


@pytest.mark.parametrize("group", ["logger", "hparams_search", "hydra/launcher", "model", "sampler", "optim"])
def test_other_groups_compose(group):
    names = options(group)
    assert names, group
    for name in names:
        compose_overrides([f"{group}={name}"])


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_configs_compose(experiment):
    cfg = compose_overrides([f"+experiment={experiment}"])
    assert cfg.problem.name and cfg.solver.name


def run_cli(*args, timeout=300):
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, "-m", "mfgnet", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_optuna_sweep_with_two_trials(tmp_path):
    result = run_cli("-m", "hparams_search=grid_cells_optuna", "hydra.sweeper.n_trials=2",
                     f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    best = (tmp_path / "optimization_results.yaml").read_text()
    errors = [json.loads((tmp_path / str(i) / "metrics.json").read_text())["rel_l2_m"] for i in range(2)]
    assert f"best_value: {min(errors)}" in best


def test_submitit_local_and_joblib_launchers(tmp_path):
    for launcher in ("local_submitit", "local_parallel"):
        out = tmp_path / launcher
        result = run_cli("-m", f"hydra/launcher={launcher}", "solver.cells=16", f"hydra.sweep.dir={out}")
        assert result.returncode == 0, (launcher, result.stderr[-3000:])
        metrics = json.loads((out / "0" / "metrics.json").read_text())
        assert metrics["converged"] and metrics["rel_l2_m"] < 0.2


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_each_experiment_runs_a_few_steps(tmp_path, experiment):
    """One fast real run of every named experiment, shrunk to a few steps / a coarse grid."""
    from omegaconf import OmegaConf

    from mfgnet.runner import run_experiment

    solver = compose_overrides([f"+experiment={experiment}"]).solver.name
    shrink = ["solver.steps=3", "sampler.n_interior=32", "sampler.n_quadrature=32"] if solver == "neural" \
        else ["solver.cells=16"]
    cfg = compose_overrides([f"+experiment={experiment}", *shrink], hydra_config=False)
    container = OmegaConf.to_container(cfg, resolve=True)
    metrics = run_experiment(container, tmp_path)
    assert metrics["rel_l2_m"] < (2.0 if solver == "neural" else 0.3)
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "solution.png").exists()
