"""Smoke runs of every agents config through the Hydra entry point."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mfgnet.agents.__main__ import register_task_configs
from mfgnet.agents.tasks import run_task
from mfgnet.configs import CONFIG_DIR
from mfgnet.problems import ProblemError

REPO = Path(__file__).resolve().parents[1]


def _cfg(*overrides):
    register_task_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return OmegaConf.to_container(compose(config_name="agents", overrides=list(overrides)), resolve=True)


def test_entry_point_writes_metrics(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mfgnet.agents", "task=finite", "task.env=left_right",
                          "task.algorithm=omd", "task.iterations=50", f"hydra.run.dir={tmp_path}"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["exploitability"] < 1e-10
    assert (tmp_path / "exploitability.png").exists()


@pytest.mark.parametrize("overrides, key, check", [
    (["task=mfq", "task.policy=egreedy", "task.steps=300", "task.n_agents=2000"], "mu_A", lambda v: v > 0.95),
    (["task=mfq", "task.env=ising", "+task.env_params.side=32", "task.policy=boltzmann", "task.temperature=0.3",
      "task.shared=true", "task.revise_prob=0.5", "task.steps=400"], "mean_reward", lambda v: v > 0.8),
    (["task=simulate", "task.n_agents=20000", "task.n_steps=50", "task.bins=1024"], "l1_64_cells",
     lambda v: v < 0.1),
    (["task=finite", "task.env=two_road_traffic", "task.iterations=100"], "exploitability", lambda v: v < 1e-2),
    (["task=mfq", "task.env=typed_traffic", "task.policy=egreedy", "task.steps=1000", "task.n_agents=20000"],
     "max_type_share_error",
     lambda v: v < 0.02),
])
def test_every_task_config_runs(tmp_path, overrides, key, check):
    metrics = run_task(_cfg(*overrides), tmp_path)
    assert check(metrics[key]), metrics
    assert (tmp_path / "metrics.json").exists()


def test_bad_config_values_are_named(tmp_path):
    with pytest.raises(ProblemError, match="task.algorithm"):
        run_task(_cfg("task=finite", "task.algorithm=sgd"), tmp_path)
    with pytest.raises(ProblemError, match="task.env"):
        run_task(_cfg("task=mfq", "task.env=chess"), tmp_path)
    with pytest.raises(ProblemError, match="type"):
        run_task(_cfg("task=mfq", "task.env=typed_traffic", "task.variant=neural"), tmp_path)
    with pytest.raises(ProblemError, match=r"task.epsilon must be a finite number in \[0.0, 1.0\]"):
        run_task(_cfg("task=mfq", "task.epsilon=-1"), tmp_path)
    with pytest.raises(ProblemError, match="task.bins must be an integer"):
        run_task(_cfg("task=simulate", "task.bins=0"), tmp_path)


def test_wrong_types_are_rejected_by_hydra():
    with pytest.raises(Exception, match="n_agents"):
        _cfg("task=mfq", "task.n_agents=abc")


def test_simulate_several_types_each_under_its_own_policy(tmp_path):
    """B6's two types, each simulated under its own exact feedback: each histogram matches its own
    m_k (L1 on 64 cells; 0.030 / 0.018 at 2e5 agents when written), while the two densities are far
    apart, so agreeing with one's own m_k is not an accident of similar crowds."""
    import torch

    from mfgnet.agents.simulation import cell_probabilities
    from mfgnet.benchmarks.two_populations import two_populations

    metrics = run_task(_cfg("task=simulate", "task.problem=two_populations", "task.n_agents=200000",
                            "task.n_steps=200", "task.bins=1024", "progress=false"), tmp_path)
    assert metrics["types"] == 2 and metrics["l1_64_cells_1"] < 0.05 and metrics["l1_64_cells_2"] < 0.05
    _, exact = two_populations()
    lower, upper = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    apart = float((cell_probabilities(exact[0], None, lower, upper, 64)
                   - cell_probabilities(exact[1], None, lower, upper, 64)).abs().sum())
    assert apart > 0.3
    assert (tmp_path / "density.png").stat().st_size > 0
    with pytest.raises(ProblemError, match="no exact solution"):
        run_task(_cfg("task=simulate", "task.problem=segregation", "task.n_agents=10"), tmp_path / "seg")
