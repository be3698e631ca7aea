"""The one training path: a LightningModule that adapts any model module to any compatible task.

Imported only when a run actually trains (``import pytorch_lightning`` costs seconds).
"""

from __future__ import annotations

import copy
import math
import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Sampler

from ..api import BOS, EOS, PAD, Split, TaskData
from .algorithms import algorithm
from .schedule import Schedule
from .tbptt import manual_step


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


# ---------------------------------------------------------------------------------------------
# Batches


class Batches:
    """Pre-tensorised examples of one split and the collate function for its kind."""

    def __init__(self, split: Split, kind: str):
        self.kind = kind
        self.src = [torch.tensor(s, dtype=torch.long) for s in split.sources]
        if kind == "classification":
            self.tgt = torch.tensor(split.targets, dtype=torch.long)
        elif kind == "seq2seq":
            # Decoder input starts with BOS; the label sequence ends with EOS (teacher forcing).
            self.tgt_in = [torch.tensor([BOS, *t], dtype=torch.long) for t in split.targets]
            self.tgt_out = [torch.tensor([*t, EOS], dtype=torch.long) for t in split.targets]
        else:  # aligned: one label per input step
            self.tgt = [torch.tensor(t, dtype=torch.long) for t in split.targets]

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> int:
        return i  # the collate function gathers by index: cheaper than per-item tuples

    def collate(self, idx: list[int]) -> dict:
        src = pad_sequence([self.src[i] for i in idx], batch_first=True, padding_value=PAD)
        batch = {
            "src": src,  # (B, S)
            "src_len": torch.tensor([len(self.src[i]) for i in idx]),  # (B,)
            "idx": torch.tensor(idx),
        }
        if self.kind == "classification":
            batch["y"] = self.tgt[idx]  # (B,)
        elif self.kind == "seq2seq":
            batch["tgt_in"] = pad_sequence([self.tgt_in[i] for i in idx], True, PAD)  # (B, T)
            batch["y"] = pad_sequence([self.tgt_out[i] for i in idx], True, PAD)  # (B, T)
        else:
            batch["y"] = pad_sequence([self.tgt[i] for i in idx], True, PAD)  # (B, S)
        return batch


class EpochsSampler(Sampler):
    """Fresh permutations of the data, back to back, for exactly ``num_samples`` draws.

    One long "epoch" instead of hundreds of tiny ones: with 64 training examples and a batch of
    32, Lightning's per-epoch bookkeeping would otherwise run every two steps.
    """

    def __init__(self, n: int, num_samples: int, seed: int):
        self.n, self.num_samples, self.seed = n, num_samples, seed

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed)
        left = self.num_samples
        while left > 0:
            perm = torch.randperm(self.n, generator=g)[:left].tolist()
            left -= len(perm)
            yield from perm


def train_loader(split: Split, kind: str, batch_size: int, steps: int, seed: int) -> DataLoader:
    data = Batches(split, kind)
    batch_size = min(batch_size, len(data))
    sampler = EpochsSampler(len(data), steps * batch_size, seed)
    return DataLoader(data, batch_size=batch_size, sampler=sampler, collate_fn=data.collate)


def eval_loader(split: Split, kind: str, batch_size: int = 256) -> DataLoader:
    data = Batches(split, kind)
    return DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=data.collate)


# ---------------------------------------------------------------------------------------------
# The LightningModule


class SeqModule(pl.LightningModule):
    """Loss, optimiser and evaluation for one (model, task) pairing."""

    def __init__(self, model: torch.nn.Module, data: TaskData, training: dict):
        super().__init__()
        self.model = model
        self.data = data
        self.kind = data.kind
        self.training_cfg = training
        self.max_tgt_len = data.shape().max_tgt_len if data.kind == "seq2seq" else 0
        self.eval_splits: dict[str, Split] = {}
        self.scores: dict[str, dict] = {}  # split name -> metrics of its latest evaluation
        # Accumulated on the device without .item(): a sync per step would stall a GPU.
        self._loss_sum = torch.zeros(())
        self._loss_steps = 0
        self.samples_seen = 0
        # Truncated BPTT and RTRL make several updates per batch: manual optimisation (tbptt.py).
        self.automatic_optimization = algorithm(training) == "bptt"
        self.update_norms: list[torch.Tensor] = []  # manual: each update's pre-clip norm
        self.schedule = Schedule.from_recipe(training)

    def lr_of_step(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based)."""
        return self.training_cfg["lr"] * self.schedule.factor(step)

    # ---- training

    @property
    def ignore_index(self) -> int:
        """The target id the loss skips: PAD for token targets. A class label is never padding,
        and class 0 is a real class (the digit 0): skipping it, as this once did, left a tenth
        of the digits out of every loss."""
        return -100 if self.kind == "classification" else PAD  # -100: torch's "skip nothing"

    def _logits(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Flattened logits (N, V or C) and their targets (N,), N = scored positions + padding."""
        if self.kind == "seq2seq":
            logits = self.model(batch["src"], batch["src_len"], batch["tgt_in"])  # (B, T, V)
        else:
            logits = self.model(batch["src"], batch["src_len"])  # (B, C) or (B, S, V)
        return logits.reshape(-1, logits.size(-1)), batch["y"].reshape(-1)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.automatic_optimization:
            logits, y = self._logits(batch)
            loss = F.cross_entropy(logits, y, ignore_index=self.ignore_index)  # mean over targets
        else:  # truncated BPTT or RTRL: several updates per batch, made here
            loss = manual_step(self, batch)
        if self._loss_sum.device != loss.device:
            self._loss_sum = self._loss_sum.to(loss.device)
        self._loss_sum += loss.detach()  # a NaN anywhere makes the sum NaN: checked at validation
        self._loss_steps += 1
        self.samples_seen += batch["src"].size(0)
        return loss

    def pop_train_loss(self) -> float | None:
        if not self._loss_steps:
            return None
        mean = float(self._loss_sum) / self._loss_steps
        self._loss_sum.zero_()
        self._loss_steps = 0
        return mean

    def configure_optimizers(self):
        cfg = self.training_cfg
        opt = torch.optim.AdamW(self.model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        # One schedule for every model (schedule.py); the callbacks read and move its cooldown.
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: self.schedule.factor(step))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ---- evaluation (validation and test share it)

    def on_validation_epoch_start(self) -> None:
        self._start_eval()

    def on_test_epoch_start(self) -> None:
        self._start_eval()

    def _start_eval(self) -> None:
        self._preds: dict[int, object] = {}
        self._eval_loss = [0.0, 0]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch)

    def _eval_step(self, batch: dict) -> None:
        logits, y = self._logits(batch)
        ignore = self.ignore_index
        self._eval_loss[0] += float(F.cross_entropy(logits, y, ignore_index=ignore, reduction="sum"))
        self._eval_loss[1] += int((y != ignore).sum())
        if self.kind == "seq2seq":
            # Greedy decoding: the model sees its own outputs, as at use time.
            out = self.model.generate(batch["src"], batch["src_len"], self.max_tgt_len + 1)
            preds = [_cut_at_eos(row) for row in out.tolist()]
        elif self.kind == "classification":
            preds = logits.argmax(-1).tolist()
        else:  # aligned: one prediction per real input position
            best = logits.argmax(-1).view(batch["src"].shape).tolist()
            preds = [row[:n] for row, n in zip(best, batch["src_len"].tolist())]
        for i, p in zip(batch["idx"].tolist(), preds):
            self._preds[i] = p

    def on_validation_epoch_end(self) -> None:
        self._finish_eval("val")
        primary = self.scores["val"][self.data.primary_metric]
        # Logged for EarlyStopping and ModelCheckpoint; not sent to any logger per step.
        self.log("val_primary", primary, logger=False)
        self.log_dict({f"val/{k}": v for k, v in self.scores["val"].items()}, logger=True)

    def on_test_epoch_end(self) -> None:
        self._finish_eval("test")
        self.log_dict({f"test/{k}": v for k, v in self.scores["test"].items()}, logger=True)

    def _finish_eval(self, name: str) -> None:
        split = self.eval_splits[name]
        preds = [self._preds[i] for i in range(len(split))]
        loss = self._eval_loss[0] / max(self._eval_loss[1], 1)
        scores = self.data.score(split, preds, loss)
        scores.setdefault("loss", loss)
        self.scores[name] = {k: float(v) for k, v in scores.items()}


def _cut_at_eos(ids: list[int]) -> list[int]:
    return ids[: ids.index(EOS)] if EOS in ids else ids


# ---------------------------------------------------------------------------------------------
# The curve, divergence and the run's own time-to-95%


class WarmupStableDecay(pl.Callback):
    """The wsd schedule's run: early stopping's patience, counted only once warm-up has ended,
    starts the cooldown instead of stopping; the run stops when the cooldown ends, and its score
    is the best validation checkpoint inside the cooldown (never one taken at the full rate)."""

    def __init__(self, patience: int, higher_is_better: bool):
        self.patience, self.sign = patience, 1.0 if higher_is_better else -1.0
        self.best = -math.inf  # sign * the best validation value so far
        self.wait = 0  # validations since warm-up without improvement
        self.cooldown_best = -math.inf  # sign * the score's validation value
        self.best_state: dict | None = None  # the score's weights (in memory: small models)

    @property
    def best_val(self) -> float | None:
        """The validation value of the checkpoint the run is scored on."""
        return None if self.best_state is None else self.sign * self.cooldown_best

    @property
    def score(self) -> float:
        """``best_val``; for a run stopped before its cooldown (a rung of pruned tuning that
        trains a run's first steps) the best validation so far, taken at the full rate."""
        return self.sign * self.best if self.best_val is None else self.best_val

    def on_validation_end(self, trainer, module) -> None:
        schedule, step = module.schedule, trainer.global_step
        value = self.sign * module.scores["val"][module.data.primary_metric]
        if schedule.in_cooldown and step > schedule.cooldown_start:
            if value > self.cooldown_best or self.best_state is None:
                self.cooldown_best = value
                self.best_state = copy.deepcopy(module.model.state_dict())
            if step >= schedule.end:
                trainer.should_stop = True
            return
        if value > self.best:
            self.best, self.wait = value, 0
        elif step >= schedule.warmup:
            self.wait += 1
        if self.patience and self.wait >= self.patience:
            schedule.start_cooldown(step)

    def restore_best(self, module) -> None:
        """Load the score's checkpoint into ``module`` (kept as is if no cooldown point)."""
        if self.best_state is not None:
            module.model.load_state_dict(self.best_state)


class CurveRecorder(pl.Callback):
    """At every validation: step, samples seen, training seconds (validation excluded), losses."""

    def __init__(self, val_every: int):
        self.val_every = val_every
        self.points: list[dict] = []
        self.train_seconds = 0.0
        self._t0 = 0.0
        self._val_seconds = 0.0

    def on_train_start(self, trainer, module) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        # Lightning validates every `val_every` steps only; asking it to stop at the budget's last
        # step makes it validate there too, so the final steps can still be the best checkpoint.
        step = trainer.global_step
        if step >= trainer.max_steps and step % self.val_every:
            trainer.should_stop = True

    def on_validation_start(self, trainer, module) -> None:
        self._tv = time.perf_counter()
        self._trained = self._tv - self._t0 - self._val_seconds

    def on_validation_end(self, trainer, module) -> None:
        self._val_seconds += time.perf_counter() - self._tv
        train_loss = module.pop_train_loss()
        self.points.append(
            {
                "step": trainer.global_step,
                "samples": module.samples_seen,
                "seconds": self._trained,
                "train_loss": train_loss,
                "val_primary": module.scores["val"][module.data.primary_metric],
                # the rate of the last step before this validation, beside the metrics
                "val": {**module.scores["val"], "lr": module.lr_of_step(trainer.global_step - 1)},
            }
        )
        if train_loss is not None and not math.isfinite(train_loss):
            raise Diverged(f"training loss became {train_loss} by step {trainer.global_step}")
        if trainer.loggers and train_loss is not None:
            # the loggers' training curve is the stored one: no extra sync on the training path
            lr = self.points[-1]["val"]["lr"]
            log_training(trainer, {"train/loss": train_loss, "train/lr": lr})

    def on_train_end(self, trainer, module) -> None:
        self.train_seconds = time.perf_counter() - self._t0 - self._val_seconds
        train_loss = module.pop_train_loss()  # steps after the last validation
        if train_loss is not None and not math.isfinite(train_loss):
            raise Diverged(f"training loss became {train_loss} by step {trainer.global_step}")


def log_training(trainer, metrics: dict[str, float]) -> None:
    """Send the training loss and rate to every logger, at the step they were measured at."""
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=trainer.global_step)


def time_to_fraction(points: list[dict], higher_is_better: bool, fraction: float = 0.95) -> dict:
    """Steps, samples and seconds until the validation metric first reached ``fraction`` of the
    run's own best (for a lower-is-better metric: best / fraction)."""
    values = [p["val_primary"] for p in points if p["val_primary"] is not None]
    if not values:
        return {"steps_to_95": None, "samples_to_95": None, "seconds_to_95": None}
    best = max(values) if higher_is_better else min(values)
    target = best * fraction if higher_is_better else best / fraction
    for p in points:
        v = p["val_primary"]
        if v is not None and (v >= target if higher_is_better else v <= target):
            return {
                "steps_to_95": p["step"],
                "samples_to_95": p["samples"],
                "seconds_to_95": p["seconds"],
            }
    return {"steps_to_95": None, "samples_to_95": None, "seconds_to_95": None}
