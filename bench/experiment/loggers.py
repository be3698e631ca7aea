"""Experiment trackers for every run, through Lightning's own loggers.

``bench run --logger wandb,mlflow,tensorboard,csv`` (any combination). Offline by default, under
the results folder: W&B offline runs in ``wandb/`` (online when logged in), MLflow's file store in
``mlruns/`` (a server when ``MLFLOW_TRACKING_URI`` is set), TensorBoard event files in
``tensorboard/``, CSV files in ``csv/``. A plugin adds a logger with the ``register_loggers`` hook.

Each logger gets the run's configuration as hyperparameters; at every validation step the
validation metrics (``val/<metric>``), the mean training loss since the previous validation
(``train/loss``, the stored curve's) and the learning rate of the last step (``train/lr``); then
the test metrics (``test/<metric>``). A logger
must never fail or stop a run: one that fails to start, or fails later, is one warning and the
run goes on without it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..util import one_line
from ..hookspecs import hookimpl


@dataclass(frozen=True)
class LoggerRun:
    """What a logger factory gets for one run: ``factory(run) -> lightning Logger``."""

    spec: Any               # the RunSpec: model, task, train_size, seed, run_id, matrix_id, trial
    save_dir: str           # this logger's folder under the results folder
    project: str            # the W&B project, MLflow experiment, TensorBoard/CSV name
    name: str               # the run's display name, e.g. lstm-copy-n64-s0-1a2b3c4d
    tags: dict[str, str]    # model, task, size, seed, stage, run_id, matrix
    config: dict            # the run's configuration (nested), logged as hyperparameters


def run_name(spec) -> str:
    return f"{spec.model}-{spec.task}-n{spec.train_size or 'full'}-s{spec.seed}-{spec.run_id[:8]}"


def _mlflow(run: LoggerRun):
    from pytorch_lightning.loggers import MLFlowLogger

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:  # the file store: one folder per run, so parallel workers never contend
        uri = Path(run.save_dir).resolve().as_uri()
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for the opt-in
    return MLFlowLogger(experiment_name=run.project, run_name=run.name, tracking_uri=uri,
                        tags=run.tags)


def _tensorboard(run: LoggerRun):
    from pytorch_lightning.loggers import TensorBoardLogger

    return TensorBoardLogger(run.save_dir, name=run.project, version=run.name,
                             default_hp_metric=False)


def _csv(run: LoggerRun):
    from pytorch_lightning.loggers import CSVLogger

    return CSVLogger(run.save_dir, name=run.project, version=run.name)


def _wandb(run: LoggerRun):
    from .wandb_logging import wandb_logger

    return wandb_logger(run)


BUILTIN = {  # name -> (factory, folder under the results folder, description)
    "wandb": (_wandb, "wandb", "Weights & Biases (offline unless logged in; `wandb sync` later)"),
    "mlflow": (_mlflow, "mlruns", "MLflow (file store under the results folder unless "
                                  "MLFLOW_TRACKING_URI is set)"),
    "tensorboard": (_tensorboard, "tensorboard", "TensorBoard event files"),
    "csv": (_csv, "csv", "CSV files (metrics.csv, hparams.yaml per run)"),
}
FOLDERS = {name: folder for name, (_, folder, _) in BUILTIN.items()}


@hookimpl
def register_loggers(register):
    for name, (factory, _, description) in BUILTIN.items():
        register(name, factory, description)


def parse_loggers(text: str, known) -> tuple[str, ...]:
    """'mlflow,tensorboard' -> ('mlflow', 'tensorboard'); ValueError naming what is accepted."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise ValueError(f"--logger {text!r}: {'unknown logger ' + repr(unknown[0]) if unknown else 'no logger named'}; "
                         f"loggers: {', '.join(sorted(known))} (comma-separated)")
    return names


DISPLAY = {"wandb": "W&B", "mlflow": "MLflow", "tensorboard": "TensorBoard", "csv": "CSV"}


def _warn(name: str, what: str, exc: BaseException) -> None:
    print(f"warning: {DISPLAY.get(name, name)} logging {what} for this run: {one_line(exc, typed=False)}",
          file=sys.stderr)


def _guarded(name: str, inner, config: dict):
    """``inner`` behind a Lightning Logger that turns its first error into one warning and then
    stops forwarding to it, so a logger can never stop a run."""
    from pytorch_lightning.loggers import Logger

    class Guarded(Logger):
        def __init__(self):
            super().__init__()
            self.inner, self.failed, self.logger_name = inner, False, name
            self.config, self.test_metrics = config, {}

        def _call(self, method: str, *args, **kwargs):
            if self.failed:
                return None
            try:
                return getattr(self.inner, method)(*args, **kwargs)
            except Exception as exc:
                self.failed = True
                _warn(name, "stopped", exc)
                return None

        @property
        def name(self):
            return self.inner.name

        @property
        def version(self):
            return self.inner.version

        @property
        def save_dir(self):
            return self.inner.save_dir

        @property
        def experiment(self):
            return self.inner.experiment

        def log_metrics(self, metrics, step=None):
            self.test_metrics.update({k: v for k, v in metrics.items() if k.startswith("test/")})
            self._call("log_metrics", metrics, step)

        def log_hyperparams(self, params, *args, **kwargs):
            self._call("log_hyperparams", params, *args, **kwargs)

        def save(self):
            self._call("save")

        def finalize(self, status):
            self._call("finalize", status)

        def after_save_checkpoint(self, checkpoint_callback):
            pass  # checkpoints are the run's own (a temporary folder), never uploaded

    return Guarded()


@dataclass(frozen=True)
class LoggerSet:
    """Picklable (it travels to worker processes); called once per run, it returns the run's
    loggers (False when none started)."""

    names: tuple[str, ...]
    results_dir: str
    project: str = "seqbench"

    def __call__(self, spec):
        from ..registry import registry

        if "wandb" in self.names:
            from .wandb_logging import offline_unless_logged_in

            offline_unless_logged_in()
        loggers = []
        for name in self.names:
            try:
                plugin = registry().logger(name)
                folder = Path(self.results_dir) / FOLDERS.get(name, name)
                folder.mkdir(parents=True, exist_ok=True)
                stage = "tuning" if spec.trial.get("stage") == "tune" else "evaluation"
                run = LoggerRun(
                    spec=spec, save_dir=str(folder), project=self.project, name=run_name(spec),
                    tags={"model": spec.model, "task": spec.task,
                          "size": str(spec.train_size or "full"), "seed": str(spec.seed),
                          "stage": stage, "run_id": spec.run_id, "matrix": str(spec.matrix_id)},
                    config=spec.config() | {"run_id": spec.run_id, "trial": spec.trial},
                )
                logger = plugin.factory(run)
                logger.experiment  # start now, so a failure is caught here, not in training
                logger.log_hyperparams(run.config)
                loggers.append(_guarded(name, logger, run.config))
            except Exception as exc:
                _warn(name, "disabled", exc)
        return loggers or False


def where_logged(loggers: LoggerSet) -> list[str]:
    """How to look at what the built-in file-based loggers wrote."""
    root = Path(loggers.results_dir)
    hints = {
        "mlflow": f"MLflow runs in {root / 'mlruns'}; browse them with: "
                  f"mlflow ui --backend-store-uri {(root / 'mlruns').resolve().as_uri()}",
        "tensorboard": f"TensorBoard event files in {root / 'tensorboard'}; browse them with: "
                       f"tensorboard --logdir {root / 'tensorboard'}",
        "csv": f"CSV logs in {root / 'csv' / loggers.project}",
    }
    if os.environ.get("MLFLOW_TRACKING_URI"):
        hints["mlflow"] = f"MLflow runs logged to {os.environ['MLFLOW_TRACKING_URI']}"
    return [hints[n] for n in loggers.names if n in hints]


def finish(loggers) -> None:
    """Close each logger's run (a worker process trains many); never raise."""
    for logger in loggers or ():
        inner = getattr(logger, "inner", logger)
        try:
            if type(inner).__name__ == "TensorBoardLogger" and logger.test_metrics:
                # the configuration beside the test metrics, for TensorBoard's HParams view
                logger._call("log_hyperparams", logger.config, logger.test_metrics)
            if not getattr(logger, "failed", False):
                inner.finalize("success")
            if type(inner).__name__ == "WandbLogger":
                inner.experiment.finish()
        except Exception as exc:
            _warn(getattr(logger, "logger_name", type(inner).__name__), "finish failed", exc)
