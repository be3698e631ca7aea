"""Weights & Biases through Lightning's ``WandbLogger`` (``bench run --logger wandb``).

Offline by default (``WANDB_MODE=offline``: no login, no network; upload later with
``wandb sync``), online when the user has logged in. Errors are handled by
:mod:`seqbench.experiment.loggers`: W&B never fails or stalls a run.
"""

from __future__ import annotations

import os
from pathlib import Path


def logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path.home() / ".netrc"
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def offline_unless_logged_in() -> None:
    os.environ.setdefault("WANDB_MODE", "online" if logged_in() else "offline")
    os.environ.setdefault("WANDB_SILENT", "true")


def wandb_logger(run):
    """The run's WandbLogger (``run``: a :class:`seqbench.experiment.loggers.LoggerRun`)."""
    import wandb
    from pytorch_lightning.loggers import WandbLogger

    offline_unless_logged_in()
    return WandbLogger(
        project=run.project,
        save_dir=run.save_dir,
        name=run.name,
        # a fresh W&B id per attempt: a retried run is a new W&B run, never a resumed one
        id=f"{run.spec.run_id}-{os.getpid()}-{os.urandom(3).hex()}",
        group=run.spec.matrix_id,
        tags=[f"{k}:{v}" for k, v in run.tags.items() if k in ("model", "task", "size", "seed")],
        config=run.config,
        settings=wandb.Settings(init_timeout=30, console="off"),
    )
