"""The README's code runs: its Python blocks execute in order, its command lines compose."""

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from mfgnet.configs import CONFIG_DIR, register_configs

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
# Single runs of the main entry point (sweeps and torchrun lines compose the same groups).
COMMANDS = sorted({line.strip() for line in README.splitlines()
                   if re.match(r"\s*(python -m mfgnet|mfgnet) (?!-m)[a-z+]", line) and "\\" not in line})


def test_readme_has_code():
    assert len(PYTHON_BLOCKS) >= 2 and len(COMMANDS) >= 4


def test_python_blocks_run_in_order():
    namespace: dict = {}
    for block in PYTHON_BLOCKS:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 (the README is ours)


@pytest.mark.parametrize("command", COMMANDS)
def test_command_lines_compose(command):
    words = shlex.split(command.split("#")[0])
    overrides = [w for w in words[1:] if "=" in w]
    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        compose(config_name="config", overrides=overrides)
