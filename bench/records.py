"""One run as it travels: the runner fills a :class:`RunRecord`, the store writes and reads it
(``seqbench.store.rows`` maps it to the ``runs`` table and back), the analysis reads its fields.

Standard library only: every layer above the store imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol, TypedDict, cast

Status = Literal["running", "done", "failed", "diverged"]
STATUSES: tuple[Status, ...] = ("running", "done", "failed", "diverged")
FINISHED: tuple[Status, ...] = ("done", "failed", "diverged")  # what ``Store.save`` writes
REPORTED: tuple[Status, ...] = (*FINISHED, "running")  # the order reports count runs in


class Training(TypedDict, total=False):
    """The training recipe as stored in ``config``: the keys the analysis reads."""

    schedule: str  # absent before schedules existed: cosine
    warmup_steps: int
    cooldown: float
    max_steps: int
    patience: int
    param_budget: int  # the parameter budget models were fitted to (0 or absent: none)


class RunConfig(TypedDict, total=False):
    """The canonical configuration (``RunSpec.config()``): what the run id hashes."""

    model: str
    model_params: dict[str, Any]
    task: str
    task_params: dict[str, Any]
    train_size: int | None
    seed: int
    training: Training
    trial: dict[str, Any]  # a record with no configuration: its trial's hyperparameters


class Extras(TypedDict, total=False):
    """The task's extras plus the anchors the analysis reads; a task may add its own keys."""

    chance: float
    perfect: float
    val_size: int  # validation examples scored
    stop_reason: str  # wsd: why its cooldown began
    warmup_steps: int
    cooldown_start: int


class Environment(TypedDict, total=False):
    python: str
    platform: str
    host: str
    versions: dict[str, str]
    git_commit: str | None
    device: str
    torch_threads: int


class CurvePoint(TypedDict, total=False):
    """One validation of a run: ``val`` (every metric) only when read with ``Store.curve``."""

    run_id: str
    step: int
    samples: int
    seconds: float
    train_loss: float | None
    val_primary: float | None
    val: dict[str, Any]


Curves = dict[str, list[CurvePoint]]  # run_id -> its validations, in step order


class Planned(Protocol):
    """What a run is before it trains (``seqbench.experiment.plan.RunSpec``)."""

    run_id: str
    matrix_id: str | None
    model: str
    task: str
    kind: str
    train_size: int | None
    seed: int
    trial: dict[str, Any]

    def config(self) -> dict[str, Any]: ...

@dataclass
class RunRecord:
    """One row of the ``runs`` table, typed; ``curve`` and ``gradients`` ride along to the store.
    Read by attribute only: ``r["task"]`` is a TypeError, not a silent dict lookup."""

    run_id: str
    model: str
    task: str
    kind: str
    seed: int
    status: Status
    config: RunConfig = field(default_factory=lambda: RunConfig())  # {} only in legacy records
    matrix_id: str | None = None
    train_size: int | None = None  # None: the task's full training split
    error: str | None = None
    trial: dict[str, Any] | None = field(default_factory=dict)  # what a tuning sweep varied
    model_params: dict[str, Any] | None = None  # as built (after budget fitting)
    primary_metric: str | None = None
    higher_is_better: bool | None = None
    best_val: float | None = None
    test: dict[str, Any] | None = None  # test metrics of the best checkpoint
    param_count: int | None = None
    step_flops: int | None = None  # one training step, forward + backward
    train_examples: int | None = None
    steps: int | None = None
    samples: int | None = None
    train_seconds: float | None = None  # validation excluded
    steps_to_95: int | None = None  # until val primary first reached 95% of its own best
    samples_to_95: int | None = None
    seconds_to_95: float | None = None
    extras: Extras | None = None
    environment: Environment | None = None
    started_at: str | None = None
    finished_at: str | None = None
    lease_owner: str | None = None
    lease_expires: float | None = None
    # not columns of ``runs``: what the store writes beside the row
    curve: list[CurvePoint] = field(default_factory=list)
    gradients: dict[str, Any] | None = None  # the probes of a run trained with them

    @property
    def params(self) -> dict[str, Any]:
        """The hyperparameters as built, the task's parameters and the training recipe."""
        return {"model": self.model_params or self.config.get("model_params"),
                "task": self.config.get("task_params"), "training": self.config.get("training")}

    @property
    def primary_value(self) -> float | int | None:
        """The primary metric on the test split."""
        if not self.primary_metric or not self.test:
            return None
        value: float | int | None = self.test.get(self.primary_metric)
        return value

    @property
    def task_params(self) -> dict[str, Any]:
        return self.config.get("task_params") or {}

    @property
    def training(self) -> Training:
        return self.config.get("training") or {}

    @classmethod
    def planned(cls, spec: Planned, started_at: str | None) -> RunRecord:
        """The record of ``spec`` as it starts: running, nothing measured yet."""
        return cls(run_id=spec.run_id, matrix_id=spec.matrix_id, model=spec.model, task=spec.task,
                   kind=spec.kind, train_size=spec.train_size, seed=spec.seed, status="running",
                   config=cast(RunConfig, spec.config()), trial=spec.trial,
                   started_at=started_at)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> RunRecord:
        """A record as executors carry it (a plain dict); keys that are no field are dropped."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """The plain dict executors carry: every field, the curve included, the gradient probes
        only for a probed run."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.gradients is None:
            del out["gradients"]
        return out


# The ``runs`` table's columns, in its order (the store's schema creates them so).
COLUMNS = (
    "run_id", "matrix_id", "model", "task", "kind", "train_size", "seed", "status", "error",
    "config", "trial", "model_params", "primary_metric", "higher_is_better", "best_val", "test",
    "param_count", "step_flops", "train_examples", "steps", "samples", "train_seconds",
    "steps_to_95", "samples_to_95", "seconds_to_95", "extras", "environment", "started_at",
    "finished_at", "lease_owner", "lease_expires",
)
