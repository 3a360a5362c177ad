"""Experiment loggers: none, console, or wandb (offline unless the user says otherwise).

Each logger's settings are a [`Settings`][mfgnet.settings.Settings] dataclass, registered as
the Hydra option ``logger=<name>``; wandb is imported only when ``logger=wandb`` is chosen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mfgnet.settings import Settings, choice, text


@dataclass(frozen=True)
class NoLoggerConfig(Settings):
    """``logger=none``: nothing is logged beyond the run directory's files."""

    section = "logger"


@dataclass(frozen=True)
class ConsoleLoggerConfig(Settings):
    """``logger=console``: one line of metrics per logged step on standard output."""

    section = "logger"


@dataclass(frozen=True)
class WandbLoggerConfig(Settings):
    """``logger=wandb``: offline by default (no network); upload later with
    ``wandb sync <run dir>/wandb/offline-run-*``.  Runs of one experiment share a group,
    tags name the problem and the solver."""

    section = "logger"
    project: str = text("mfgnet")
    mode: str = choice("offline", "online", "disabled")
    group: str | None = text("${experiment_name}")
    tags: list[str] = field(default_factory=lambda: ["${problem.name}", "${solver.name}"])
    run_name: str | None = text(None, doc="the run's name in wandb (None: wandb picks one)")


LOGGER_CONFIGS: dict[str, type[Settings]] = {"none": NoLoggerConfig, "console": ConsoleLoggerConfig,
                                              "wandb": WandbLoggerConfig}


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
    """Logs to wandb with the settings of `WandbLoggerConfig`."""

    def __init__(self, run_dir: Path, config: dict, settings: WandbLoggerConfig) -> None:
        import wandb  # imported here: wandb is slow to import and most runs do not log to it

        os.environ.setdefault("WANDB_SILENT", "true")
        self._wandb = wandb
        self.run = wandb.init(project=settings.project, mode=settings.mode, group=settings.group,
                              tags=list(settings.tags), name=settings.run_name, dir=str(run_dir), config=config,
                              reinit=True)

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
    from mfgnet.problems.validation import ProblemError

    options = dict(cfg)
    name = options.pop("name", "none")
    if name not in LOGGER_CONFIGS:
        raise ProblemError(f"logger.name must be one of {sorted(LOGGER_CONFIGS)}, got {name!r}")
    settings = LOGGER_CONFIGS[name].from_dict(options)
    if name == "wandb":
        return WandbLogger(run_dir, config, settings)
    return ConsoleLogger() if name == "console" else NullLogger()
