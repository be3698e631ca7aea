"""Optional Weights & Biases logging through Lightning's ``WandbLogger``.

Offline by default (``WANDB_MODE=offline``: no login, no network; upload later with
``wandb sync``), online when the user has logged in. W&B must never fail or stall a run: any
error while starting it becomes one warning and the run trains without it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..api import one_line


def logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path.home() / ".netrc"
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


@dataclass(frozen=True)
class WandbLoggerFactory:
    """Picklable (it travels to worker processes); called once per run."""

    project: str
    save_dir: str

    def __call__(self, spec):
        os.environ.setdefault("WANDB_MODE", "online" if logged_in() else "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        try:
            import wandb
            from pytorch_lightning.loggers import WandbLogger

            Path(self.save_dir).mkdir(parents=True, exist_ok=True)
            size = spec.train_size or "full"
            logger = WandbLogger(
                project=self.project,
                save_dir=self.save_dir,
                name=f"{spec.model}-{spec.task}-n{size}-s{spec.seed}-{spec.run_id[:8]}",
                id=f"{spec.run_id}-{os.getpid()}-{os.urandom(3).hex()}",
                group=spec.matrix_id,
                tags=[f"model:{spec.model}", f"task:{spec.task}", f"size:{size}", f"seed:{spec.seed}"],
                config=spec.config() | {"run_id": spec.run_id, "trial": spec.trial},
                settings=wandb.Settings(init_timeout=30, console="off"),
            )
            logger.experiment  # start now, so a failure is caught here and not inside training
            return logger
        except Exception as exc:
            print(f"warning: W&B logging disabled for this run: {one_line(exc, typed=False)}",
                  file=sys.stderr)
            return False


def finish(logger) -> None:
    """Close the W&B run (a worker process runs many); never raise."""
    if not logger:
        return
    try:
        logger.experiment.finish()
    except Exception as exc:
        print(f"warning: W&B finish failed: {exc}", file=sys.stderr)
