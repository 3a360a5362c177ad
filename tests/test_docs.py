"""The docs' code runs: each page's Python blocks execute in order, its command lines compose.

A block preceded by a line ``<!-- skip: reason -->`` (e.g. one that needs a GPU) is not run.
Command lines are the single runs of ``python -m mfgnet`` and ``python -m mfgnet.agents``
(sweeps with ``-m`` and ``torchrun`` lines compose the same groups); they are composed after
the page's Python ran, so a solver registered on the page is known to them.
"""

import os
import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore

from mfgnet import registry
from mfgnet.configs import CONFIG_DIR, register_configs

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
BLOCK = re.compile(r"(?P<skip><!-- skip:[^>]*-->\s*\n)?```python\n(?P<code>.*?)```", re.S)
COMMAND = re.compile(r"^\s*python -m mfgnet(?P<agents>\.agents)? (?!-m)[a-z+]")


def python_blocks(text: str) -> list[str]:
    return [m["code"] for m in BLOCK.finditer(text) if not m["skip"]]


def command_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if COMMAND.match(line) and "\\" not in line]


def compose_command(command: str) -> None:
    words = shlex.split(command.split("#")[0])
    agents = words[2] == "mfgnet.agents"
    overrides = [w for w in words[3:] if "=" in w]
    if agents:
        from mfgnet.agents.__main__ import register_task_configs
        register_task_configs()
    else:
        register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        compose(config_name="agents" if agents else "config", overrides=overrides)


def test_pages_have_code():
    texts = {p.relative_to(DOCS).as_posix(): p.read_text() for p in PAGES}
    assert sum(len(python_blocks(t)) for t in texts.values()) >= 15
    assert sum(len(command_lines(t)) for t in texts.values()) >= 15
    skipped = sum(len(re.findall(r"<!-- skip:", t)) for t in texts.values())
    assert skipped <= 2, "skip blocks sparingly"


@pytest.mark.parametrize("page", [p.relative_to(DOCS).as_posix() for p in PAGES
                                  if python_blocks(p.read_text()) or command_lines(p.read_text())])
def test_page_code_runs(page, tmp_path, monkeypatch):
    text = (DOCS / page).read_text()
    monkeypatch.chdir(tmp_path)                   # anything a page writes lands here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    solvers = dict(registry._SOLVERS)             # a page may register a solver of its own
    solver_nodes = dict(ConfigStore.instance().repo.get("solver", {}))
    try:
        namespace: dict = {"__name__": f"docs_{page}"}
        for i, block in enumerate(python_blocks(text)):
            exec(compile(block, f"docs/{page} (python block {i + 1})", "exec"), namespace)  # noqa: S102
        for command in command_lines(text):
            try:
                compose_command(command)
            except Exception as exc:
                raise AssertionError(f"docs/{page}: {command!r} does not compose: {exc}") from exc
    finally:
        registry._SOLVERS.clear()
        registry._SOLVERS.update(solvers)
        repo = ConfigStore.instance().repo
        if "solver" in repo:
            repo["solver"].clear()
            repo["solver"].update(solver_nodes)
    assert os.getcwd() == str(tmp_path)
