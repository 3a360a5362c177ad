"""One source of truth: defaults live in the code; YAML presets say only what they change."""

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mfgnet.configs import CONFIG_DIR, EXPERIMENT_DIR, register_configs
from mfgnet.registry import get_solver

CONF = Path(CONFIG_DIR)
PRESETS = sorted(p for group in ("problem", "solver", "model", "sampler", "optim", "logger")
                 for p in (CONF / group).glob("*.yaml"))
EXPERIMENTS = sorted((Path(EXPERIMENT_DIR) / "experiment").glob("*.yaml"))
# Keys of an experiment recipe that are not settings of the code.
NOT_SETTINGS = {"defaults", "hydra", "experiment_name", "objective"}


def composed(overrides):
    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return OmegaConf.to_container(compose(config_name="config", overrides=list(overrides)), resolve=False)


def leaves(node: dict, prefix: str = ""):
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def lookup(cfg: dict, dotted: str):
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_presets_change_only_existing_keys_and_restate_no_default(preset):
    data = yaml.safe_load(preset.read_text())
    group = preset.parent.name
    base = [entry for entry in data["defaults"] if entry != "_self_"]
    assert len(base) == 1, f"{preset}: a preset starts from one option of its group"
    defaults = composed([f"{group}={base[0]}"])[group]
    changed = {k: v for k, v in data.items() if k != "defaults"}
    assert changed, f"{preset} changes nothing: delete it"
    for key, value in leaves(changed):
        assert key in dict(leaves(defaults)), f"{preset}: {key} is not a setting of {group}"
        assert lookup(defaults, key) != value, f"{preset}: {key}: {value!r} restates the code default"


@pytest.mark.parametrize("recipe", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiments_change_only_existing_keys_and_restate_no_default(recipe):
    data = yaml.safe_load(recipe.read_text())
    selections = [f"{k.split('/')[-1]}={v}" for entry in data.get("defaults", []) if isinstance(entry, dict)
                  for k, v in entry.items() if k.startswith("override /")]
    base = composed(selections)
    for key, value in leaves({k: v for k, v in data.items() if k not in NOT_SETTINGS}):
        try:
            default = lookup(base, key)
        except KeyError:
            pytest.fail(f"{recipe.name}: {key} is not a setting")
        assert default != value, f"{recipe.name}: {key}: {value!r} restates the default"


def test_composed_defaults_are_the_code_defaults():
    """With no override, every solver's composed settings equal its dataclass defaults."""
    for name in ("grid", "neural"):
        spec = get_solver(name)
        cfg = composed([f"solver={name}"])
        data = {k: v for k, v in cfg["solver"].items() if k != "name"}
        data.update({group: cfg[group] for group in spec.groups})
        assert spec.config_class.from_dict(data) == spec.config_class()


def test_help_lists_options_not_internal_schemas():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "mfgnet", "--help"], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parent)
    assert out.returncode == 0, out.stderr
    assert "solver: grid, neural" in out.stdout
    assert "problem: crowd_aversion, ergodic_torus, hopf_cole, log_congestion, lq_gaussian" in out.stdout
    assert "_schema" not in out.stdout and "agents" not in out.stdout.split("== Config ==")[0]


def test_help_imports_no_torch():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "mfgnet", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "wandb" not in imported, sorted(m for m in imported if "torch" in m)
