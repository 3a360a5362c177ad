"""Experiment loggers: none, console, or wandb (offline unless the user says otherwise)."""

from __future__ import annotations

import os
from pathlib import Path

from mfgnet.problems import ProblemError


class NullLogger:
    def log(self, step: int, metrics: dict) -> None:
        pass

    def log_summary(self, metrics: dict) -> None:
        pass

    def log_figure(self, name: str, path: Path) -> None:
        pass

    def finish(self) -> None:
        pass

    def __call__(self, step: int, metrics: dict) -> None:
        self.log(step, metrics)


class ConsoleLogger(NullLogger):
    def log(self, step, metrics):
        body = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
        print(f"[step {step}] {body}", flush=True)


class WandbLogger(NullLogger):
    """Logs to wandb; ``mode`` defaults to offline (sync later with ``wandb sync <run dir>/wandb``)."""

    def __init__(self, run_dir: Path, config: dict, project: str = "mfgnet", mode: str = "offline",
                 group: str | None = None, tags: list[str] | None = None, name: str | None = None) -> None:
        if mode not in ("offline", "online", "disabled"):
            raise ProblemError(f"logger.mode must be offline, online or disabled, got {mode!r}")
        import wandb  # imported here: wandb is slow to import and most runs do not log to it

        os.environ.setdefault("WANDB_SILENT", "true")
        self._wandb = wandb
        self.run = wandb.init(project=project, mode=mode, group=group, tags=list(tags or []), name=name,
                              dir=str(run_dir), config=config, reinit=True)

    def log(self, step, metrics):
        self.run.log(dict(metrics), step=step)

    def log_summary(self, metrics):
        for key, value in metrics.items():
            self.run.summary[key] = value

    def log_figure(self, name, path):
        self.run.log({name: self._wandb.Image(str(path))})

    def finish(self):
        self.run.finish()


def make_logger(cfg: dict, run_dir: Path, config: dict) -> NullLogger:
    """A logger from the ``logger`` config group (``name``: none | console | wandb)."""
    name = cfg.get("name", "none")
    options = {k: v for k, v in cfg.items() if k != "name"}
    if name == "none":
        return NullLogger()
    if name == "console":
        return ConsoleLogger()
    if name == "wandb":
        return WandbLogger(run_dir, config, **options)
    raise ProblemError(f"logger.name must be none, console or wandb, got {name!r}")
