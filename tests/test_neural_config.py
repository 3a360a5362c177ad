"""NeuralSolverConfig validation and the Hydra yaml of the neural solver."""

from pathlib import Path

import pytest
import yaml

from mfgnet.neural import NeuralSolverConfig
from mfgnet.problems import ProblemError

YAML = Path(__file__).resolve().parents[1] / "conf" / "solver" / "neural.yaml"


def test_yaml_matches_the_dataclass_defaults():
    """solver=neural with the default model/sampler/optim groups is the dataclass default."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mfgnet.configs import CONFIG_DIR, NEURAL_GROUPS, register_configs

    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name="config", overrides=["solver=neural"]), resolve=True)
    data = dict(cfg["solver"], **{group: cfg[group] for group in NEURAL_GROUPS})
    assert data["name"] == "neural"
    assert NeuralSolverConfig.from_dict(data) == NeuralSolverConfig()
    assert yaml.safe_load(YAML.read_text())["name"] == "neural"


def test_nested_dict_and_replace():
    cfg = NeuralSolverConfig.from_dict({"steps": 10, "optim": {"lr": 1e-3}, "model": {"width": 8}})
    assert (cfg.steps, cfg.optim.lr, cfg.model.width, cfg.model.depth) == (10, 1e-3, 8, 3)
    cfg2 = cfg.replace(**{"optim.lr": 5e-4, "loss": {"fp": 2.0}})
    assert (cfg2.optim.lr, cfg2.loss.fp, cfg2.loss.hjb, cfg2.model.width) == (5e-4, 2.0, 1.0, 8)


@pytest.mark.parametrize("data, field, allowed", [
    ({"stepz": 3}, "stepz", "allowed"),
    ({"optim": {"learning_rate": 1e-3}}, "optim.learning_rate", "allowed"),
    ({"optim": {"lr": 0.0}}, "optim.lr", "(0.0, 10.0]"),
    ({"optim": {"lr": -1}}, "optim.lr", "(0.0, 10.0]"),
    ({"steps": -1}, "steps", "[0, "),
    ({"steps": 2.5}, "steps", "integer"),
    ({"steps": True}, "steps", "integer"),
    ({"dtype": "float16"}, "dtype", "['float32', 'float64']"),
    ({"device": "tpu"}, "device", "['cpu', 'cuda', 'auto']"),
    ({"model": {"activation": "relu6"}}, "model.activation", "tanh"),
    ({"sampler": {"adaptive_fraction": 1.5}}, "sampler.adaptive_fraction", "[0.0, 1.0]"),
    ({"loss": {"hjb": -1.0}}, "loss.hjb", "[0.0, inf)"),
    ({"loss": {"fp": float("nan")}}, "loss.fp", "[0.0, inf)"),
    ({"resume": "yes"}, "resume", "true or false"),
    ({"model": 3}, "model", "mapping"),
    ({"name": "grid"}, "solver.name", "neural"),
])
def test_bad_values_name_the_field_and_the_allowed_range(data, field, allowed):
    with pytest.raises(ProblemError) as info:
        NeuralSolverConfig.from_dict(data)
    msg = str(info.value)
    assert field in msg and allowed in msg, msg
