"""One run: task data -> model -> Lightning -> a :class:`RunRecord` (sent back as a plain dict).

Runs in whatever process the executor chose; it never touches the database.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import random
import signal
import subprocess
import tempfile
import threading
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, cast

from ..api import Split, TaskData
from ..records import Environment, Extras, RunRecord
from ..util import now, one_line
from .plan import RunSpec
from ..registry import registry


@functools.lru_cache(maxsize=1)
def _static_environment() -> dict:
    from importlib import metadata

    versions = {}
    for dist in ("seqbench", "torch", "pytorch-lightning", "torchmetrics", "datasets", "sacrebleu"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    commit = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
            text=True, timeout=5,
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": platform.node(),
        "versions": versions,
        "git_commit": commit,
    }


def environment() -> dict:
    import torch

    env = dict(_static_environment())
    if torch.cuda.is_available():
        env["device"] = f"cuda: {torch.cuda.get_device_name(0)}"
    else:
        env["device"] = "cpu"
    env["torch_threads"] = torch.get_num_threads()
    return env


def _quiet_lightning() -> None:
    """Lightning's banners ("GPU available", tips) would break the matrix's one progress bar."""
    import pytorch_lightning  # noqa: F401  (its import sets its loggers to INFO: override after)

    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    warnings.filterwarnings("ignore", module="lightning_fabric")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def warm_up() -> None:
    """Pay a fresh process's one-off costs before its first run is timed: importing Lightning,
    and the lazy ``torch._dynamo`` import of the first optimizer step."""
    _quiet_lightning()
    import torch

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p])
    p.sum().backward()
    opt.step()


# Fixed, not the run's seed: every run of a task variant scores the same validation examples, so
# their validation scores (which select trials, checkpoints and early stopping) are comparable.
VAL_SAMPLE_SEED = 20_260_107


def validation_sample(val: Split, limit: int) -> Split:
    """The validation examples a run scores: all of them, or (``limit`` > 0) a random sample of
    ``limit``, drawn with a fixed seed; never a prefix, a task's split may be sorted (SCAN's is)."""
    if not limit or limit >= len(val):
        return val
    chosen = random.Random(VAL_SAMPLE_SEED).sample(range(len(val)), limit)
    return val.subset(sorted(chosen))


def task_extras(data: TaskData, val_size: int) -> dict:
    """The task's extras as stored with the run, plus the anchors the analysis reads: ``chance``
    and ``perfect`` (from the TaskData fields, when the task declares them) and ``val_size``,
    the number of validation examples scored (the standard error of a validation accuracy p is
    about sqrt(p (1 - p) / val_size))."""
    extras = dict(data.extras)
    for key in ("chance", "perfect"):
        value = getattr(data, key)
        if value is not None:
            extras[key] = float(value)
    extras["val_size"] = val_size
    return extras


def failed_record(spec: RunSpec | dict, reason: str) -> dict:
    """The record of a run that could not report for itself (its worker died)."""
    if isinstance(spec, dict):
        spec = RunSpec.from_dict(spec)
    record = RunRecord.planned(spec, now())
    record.status, record.error, record.finished_at = "failed", reason, now()
    return record.to_dict()


def execute(spec: RunSpec | dict, logger_factory: Callable | None = None) -> dict:
    """Train and test one run; always returns a record (as the plain dict executors carry),
    never raises for a failing run."""
    if isinstance(spec, dict):
        spec = RunSpec.from_dict(spec)
    record = RunRecord.planned(spec, now())
    try:
        _train(spec, record, logger_factory)
        record.status = "done"
    except Exception as exc:  # the matrix goes on; the record says what happened
        from .lit import Diverged

        record.status = "diverged" if isinstance(exc, Diverged) else "failed"
        record.error = one_line(exc)
        if record.status == "failed":
            record.error += "\n" + "".join(traceback.format_exc(limit=-6))
    record.finished_at = now()
    try:
        record.environment = cast(Environment, environment())
    except Exception:  # never lose a run's result over its metadata
        record.environment = {}
    return record.to_dict()


def _step_flops(model, train, kind: str, batch_size: int, seed: int) -> int | None:
    """FLOPs of one training step, counted on a copy (the run is untouched); None if the count
    fails: a run's result is never lost over its cost."""
    from .flops import train_step_flops

    try:
        return train_step_flops(model, train, kind, batch_size, seed)
    except Exception:
        return None


def _prepare(spec: RunSpec, record: RunRecord) -> tuple[Any, Any, Split, Any]:
    """The task's data, the validation sample and the model (fitted to its parameter budget),
    noted on the record as they are made."""
    from .budget import count_params, fit_to_budget

    reg = registry()
    task, plugin = reg.task(spec.task), reg.model(spec.model)
    cfg = spec.training
    data = task.load(dict(spec.task_params), spec.train_size, spec.seed)
    record.train_examples = len(data.train)
    record.primary_metric = data.primary_metric
    record.higher_is_better = data.higher_is_better
    val = validation_sample(data.val, cfg["val_limit"])
    record.extras = cast(Extras, task_extras(data, len(val)))

    import pytorch_lightning as pl

    pl.seed_everything(spec.seed, workers=True, verbose=False)
    shape = data.shape()
    hparams = dict(spec.model_params)
    if cfg["param_budget"]:
        hparams = fit_to_budget(plugin, spec.kind, shape, hparams, cfg["param_budget"])
    record.model_params = hparams
    model = plugin.build(spec.kind, shape, hparams)
    record.param_count = count_params(model)
    record.step_flops = _step_flops(model, data.train, spec.kind, cfg["batch_size"], spec.seed)
    return data, model, val, cfg


def _callbacks(module: Any, data: Any, cfg: dict, tmp: str) -> tuple[list, Any, Any]:
    """(callbacks, the best checkpoint, the wsd stopper): wsd scores the best validation inside
    its cooldown, the other schedules the best checkpoint, with early stopping on patience."""
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    from .lit import WarmupStableDecay
    from .schedule import Kind

    if module.schedule.kind is Kind.WSD:
        # patience starts the cooldown; the score is the best checkpoint inside it
        wsd = WarmupStableDecay(cfg["patience"], data.higher_is_better)
        return [wsd], None, wsd
    mode = "max" if data.higher_is_better else "min"
    best = ModelCheckpoint(dirpath=tmp, monitor="val_primary", mode=mode, save_top_k=1,
                           save_weights_only=True)
    callbacks: list = [best]
    if cfg["patience"]:
        callbacks.append(EarlyStopping(monitor="val_primary", mode=mode, patience=cfg["patience"]))
    return callbacks, best, None


def _stop_step(cfg: dict) -> int:
    """Where training stops at the latest: ``max_steps``, or for a rung of pruned tuning
    (halving.py) its ``stop_step``: the first steps of the run ``max_steps`` defines, on the same
    schedule and batches, so the survivor's full run repeats them exactly."""
    return cfg.get("stop_step") or cfg["max_steps"]


def _trainer(module: Any, cfg: dict, val_every: int, callbacks: list, logger: Any,
             tmp: str) -> Any:
    import pytorch_lightning as pl

    return pl.Trainer(
        accelerator=os.environ.get("SEQBENCH_ACCELERATOR", "auto"),
        devices=1,
        max_steps=_stop_step(cfg),
        max_epochs=-1,
        val_check_interval=val_every,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        # Manual optimisation (truncated BPTT, RTRL) clips each update itself.
        gradient_clip_val=(cfg["grad_clip"] or None) if module.automatic_optimization else None,
        callbacks=callbacks,
        logger=logger,
        # only the run's own checkpoint: Lightning's default one would land in a logger's folder
        enable_checkpointing=any(type(c).__name__ == "ModelCheckpoint" for c in callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp,
    )


def _fit(trainer: Any, module: Any, train: Any, val: Any, test: Any, wsd: Any,
         logger: Any) -> None:
    """Fit, then test the best validation checkpoint (never simply the last weights)."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, train, val)
        if wsd:
            wsd.restore_best(module)
        trainer.test(module, test, ckpt_path=None if wsd else "best", verbose=False)
    except SystemExit:
        # Lightning turns Ctrl-C into sys.exit(1) after ignoring further SIGINTs; the
        # launcher needs the interrupt itself to stop the matrix cleanly.
        raise KeyboardInterrupt from None
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)
        if logger:
            from .loggers import finish

            finish(logger)


def _train(spec: RunSpec, record: RunRecord, logger_factory: Callable | None) -> None:
    """Train and test ``spec``, filling ``record``; its curve fills as training goes (and is
    kept if the run diverges)."""
    _quiet_lightning()
    from .lit import CurveRecorder, SeqModule, eval_loader, time_to_fraction, train_loader

    data, model, val, cfg = _prepare(spec, record)
    module = SeqModule(model, data, cfg)
    module.eval_splits = {"val": val, "test": data.test}
    val_every = min(cfg["val_every"], cfg["max_steps"])  # a rung's too: the full run's cadence
    curve = CurveRecorder(val_every)
    record.curve = curve.points
    probe = None
    if cfg.get("probe_gradients"):
        from .probes import GradientProbe

        probe = GradientProbe(data.train, spec.kind, cfg["grad_clip"])
        record.gradients = probe.data  # likewise filled as training goes

    logger = logger_factory(spec) if logger_factory else False
    with tempfile.TemporaryDirectory(prefix="seqbench-") as tmp:
        callbacks, best, wsd = _callbacks(module, data, cfg, tmp)
        callbacks = [curve, *callbacks, *([probe] if probe else [])]
        trainer = _trainer(module, cfg, val_every, callbacks, logger, tmp)
        train = train_loader(data.train, spec.kind, cfg["batch_size"], cfg["max_steps"], spec.seed)
        _fit(trainer, module, train, eval_loader(val, spec.kind),
             eval_loader(data.test, spec.kind), wsd, logger)

    if wsd:
        sched = module.schedule
        record.extras = cast(Extras, {**(record.extras or {}), "stop_reason": sched.cause,
                                      "warmup_steps": sched.warmup,
                                      "cooldown_start": sched.cooldown_start})
    record.best_val = float(wsd.score if wsd else best.best_model_score)
    record.test = module.scores["test"]
    record.steps = trainer.global_step
    record.samples = module.samples_seen
    record.train_seconds = curve.train_seconds
    for key, value in time_to_fraction(curve.points, data.higher_is_better).items():
        setattr(record, key, value)
