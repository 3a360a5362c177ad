"""Hydra entry point: ``python -m mfgnet problem=ergodic_torus solver=grid solver.cells=64``.

Composing and checking the config imports no torch; the solver (and torch) is imported only
when a run starts, so ``--help`` and a typo answer at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mfgnet.configs import CONFIG_DIR, register_configs
from mfgnet.problems.validation import ProblemError

register_configs()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def _main(cfg: DictConfig) -> float | None:
    from mfgnet.runner import is_main_process, run_experiment

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if is_main_process():  # under torchrun only rank 0 writes files
        (run_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    try:
        metrics = run_experiment(OmegaConf.to_container(cfg, resolve=True), run_dir)
    except ProblemError as exc:
        # A bad field gets one clear line, not a traceback from deep inside.
        print(f"mfgnet: error: {exc}", file=sys.stderr)
        sys.exit(2)
    objective = cfg.get("objective")
    return metrics.get(objective) if objective else None


def main() -> None:
    """The ``mfgnet`` console script."""
    _main()


if __name__ == "__main__":
    main()
