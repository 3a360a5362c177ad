"""Hydra entry point for the agents: ``python -m mfgnet.agents task=<finite|mfq|simulate>``.

Writes ``metrics.json`` and figures to the Hydra run directory (outputs/agents/...).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mfgnet.agents.config import TASKS
from mfgnet.configs import CONFIG_DIR, schema_of
from mfgnet.problems.validation import ProblemError


def register_task_configs() -> None:
    """Each task's typed settings as the Hydra option ``task=<name>`` (idempotent)."""
    store = ConfigStore.instance()
    for name, cls in TASKS.items():
        schema = schema_of(cls, f"{name.title()}Task", extra=[("name", str, name)])
        store.store(group="task", name=name, node=schema)


register_task_configs()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="agents")
def _main(cfg: DictConfig) -> None:
    from mfgnet.agents.tasks import run_task

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    (run_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    try:
        run_task(OmegaConf.to_container(cfg, resolve=True), run_dir)
    except ProblemError as exc:
        print(f"mfgnet.agents: error: {exc}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    """The ``mfgnet-agents`` console script."""
    _main()


if __name__ == "__main__":
    main()
