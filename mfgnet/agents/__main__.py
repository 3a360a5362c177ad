"""Hydra entry point for the agents: ``python -m mfgnet.agents task=<finite|mfq|simulate>``.

Writes ``metrics.json`` and figures to the Hydra run directory (outputs/agents/...).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mfgnet.problems import ProblemError

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf" / "agents")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
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
    if not Path(CONFIG_DIR).is_dir():
        sys.exit(f"mfgnet.agents: config folder {CONFIG_DIR} not found; run from a checkout (pip install -e .)")
    _main()


if __name__ == "__main__":
    main()
