"""A matrix request -> the list of runs to do (and the pairings skipped, with why).

A :class:`RunSpec` is plain data (JSON-serialisable), so any executor — the in-process loop, a
process pool, a cluster engine — can carry it to where it is trained.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from ..api import Param, PluginError, did_you_mean, resolve_params
from ..registry import Registry
from .tuning import Tuning

# The training recipe is the same for every model of a task (a fair comparison); the learning
# rate is the one knob the tuning protocol varies per model.
TRAINING: dict[str, Param] = {
    "max_steps": Param(1000, "optimizer steps at most", minimum=1),
    "batch_size": Param(32, "examples per step", minimum=1),
    "lr": Param(1e-3, "AdamW learning rate", minimum=0.0),
    "weight_decay": Param(0.01, "AdamW weight decay", minimum=0.0),
    "schedule": Param("cosine", "learning-rate schedule after warm-up", ("cosine", "constant")),
    "warmup": Param(0.05, "share of max_steps spent warming the learning rate up from 0",
                    minimum=0.0, maximum=0.5),
    "grad_clip": Param(1.0, "gradient-norm clipping threshold; 0 turns clipping off", minimum=0.0),
    "val_every": Param(100, "validate every this many steps", minimum=1),
    "patience": Param(5, "stop after this many validations without improvement; 0 = never", minimum=0),
    "val_limit": Param(0, "score at most this many validation examples; 0 = all", minimum=0),
    "param_budget": Param(0, "size each model's width to this many parameters; 0 = off", minimum=0),
}


@dataclass(frozen=True)
class RunSpec:
    model: str
    task: str
    kind: str
    train_size: int | None  # None: the task's full training split
    seed: int
    model_params: dict
    task_params: dict
    training: dict
    matrix_id: str = ""
    trial: dict = field(default_factory=dict)  # what a tuning sweep varied, for the analysis

    def config(self) -> dict:
        """The canonical configuration: everything that decides the run's result."""
        return {
            "model": self.model,
            "model_params": self.model_params,
            "task": self.task,
            "task_params": self.task_params,
            "train_size": self.train_size,
            "seed": self.seed,
            "training": self.training,
        }

    @property
    def run_id(self) -> str:
        canonical = json.dumps(self.config(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "RunSpec":
        return cls(**d)


@dataclass
class Skipped:
    model: str
    task: str
    reason: str


@dataclass
class Plan:
    runs: list[RunSpec]  # with tuning: stage one (every trial on the tuning seeds)
    skipped: list[Skipped]
    matrix_id: str
    seeds: list[int] = field(default_factory=list)
    tuning: Tuning | None = None


@dataclass
class Matrix:
    """What the user asked for. Parameter values that are lists are swept."""

    models: list[str]
    tasks: list[str]
    train_sizes: list[int | None] | dict[str, list[int | None]]  # a dict: per task
    seeds: list[int]
    model_params: dict = field(default_factory=dict)  # {"*": {...}, "lstm": {...}}
    task_params: dict = field(default_factory=dict)  # {"*": {...}, "copy": {...}}
    training: dict = field(default_factory=dict)  # a sub-dict under a task's name: its own
    tuning: dict = field(default_factory=dict)  # {"lr": [...], "seeds": 1, "per": "size"}

    def sizes_for(self, task: str) -> list[int | None]:
        if isinstance(self.train_sizes, dict):
            return self.train_sizes.get(task, [None])
        return self.train_sizes

    def training_for(self, task: str) -> dict:
        """The recipe for one task: the shared keys, overridden by the task's own sub-table."""
        shared = {k: v for k, v in self.training.items() if not isinstance(v, dict)}
        return {**shared, **self.training.get(task, {})}


def _sweep(values: Mapping[str, Any]) -> list[dict]:
    """{"a": [1, 2], "b": 3} -> [{"a": 1, "b": 3}, {"a": 2, "b": 3}]."""
    keys = list(values)
    axes = [v if isinstance(v, list) else [v] for v in values.values()]
    for k, axis in zip(keys, axes):
        if not axis:
            raise PluginError(f"parameter {k!r}: an empty list sweeps nothing")
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes)]


def _scoped(owner_kind: str, params: Mapping, names: list[str], declared_by: dict) -> dict:
    """Split {"*": {...}, "name": {...}} into each plugin's own values; check every key lands."""
    unknown = set(params) - {"*", *names}
    if unknown:
        bad = sorted(unknown)[0]
        raise PluginError(
            f"{owner_kind} parameters given for {bad!r}, which is not in this matrix"
            f"{did_you_mean(bad, names)}"
        )
    out: dict[str, dict] = {n: {} for n in names}
    for key, value in params.get("*", {}).items():
        takers = [n for n in names if key in declared_by[n]]
        if not takers:
            every = sorted({k for n in names for k in declared_by[n]})
            raise PluginError(
                f"no selected {owner_kind} has a parameter {key!r}{did_you_mean(key, every)}"
            )
        for n in takers:
            out[n][key] = value
    for n in names:
        for key, value in params.get(n, {}).items():
            if key not in declared_by[n]:
                raise PluginError(
                    f"{owner_kind} {n!r} has no parameter {key!r}{did_you_mean(key, declared_by[n])}"
                )
            out[n][key] = value
    return out


def check_sizes_and_seeds(matrix: Matrix) -> None:
    if not matrix.seeds:
        raise PluginError("no seeds given: at least one seed is needed")
    if not matrix.models or not matrix.tasks:
        raise PluginError("at least one model and one task are needed")
    for s in matrix.seeds:
        if not isinstance(s, int) or isinstance(s, bool) or s < 0:
            raise PluginError(f"seed {s!r} is not a non-negative integer")
    sizes = matrix.train_sizes
    every = [n for v in sizes.values() for n in v] if isinstance(sizes, dict) else sizes
    for n in every:
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise PluginError(f"training size {n!r} is not a positive integer (or 'full')")
    if len(set(matrix.seeds)) != len(matrix.seeds):
        raise PluginError("seeds repeat: each seed once")


def plan(matrix: Matrix, reg: Registry) -> Plan:
    """Expand a matrix into runs. Raises PluginError (one line) on anything invalid."""
    check_sizes_and_seeds(matrix)
    models = [reg.model(m) for m in dict.fromkeys(matrix.models)]
    tasks = [reg.task(t) for t in dict.fromkeys(matrix.tasks)]
    model_params = _scoped(
        "model", matrix.model_params, [m.name for m in models], {m.name: m.defaults for m in models}
    )
    task_params = _scoped(
        "task", matrix.task_params, [t.name for t in tasks], {t.name: t.params for t in tasks}
    )
    names = [t.name for t in tasks]
    for scoped in (matrix.train_sizes if isinstance(matrix.train_sizes, dict) else {},
                   {k: v for k, v in matrix.training.items() if isinstance(v, dict)}):
        for name in scoped:
            if name not in names:
                raise PluginError(
                    f"training sizes or recipe given for {name!r}, which is not a task of this "
                    f"matrix{did_you_mean(name, names)}"
                )
    tuning = Tuning.parse(matrix.tuning) if matrix.tuning else None
    seeds = matrix.seeds
    if tuning:
        if tuning.seeds > len(seeds):
            raise PluginError(f"[tuning] seeds = {tuning.seeds}, but the matrix has {len(seeds)} seeds")
        seeds = seeds[: tuning.seeds]
    matrix_id = hashlib.sha256(
        json.dumps(asdict(matrix), sort_keys=True, default=str).encode()
    ).hexdigest()[:12]

    runs: list[RunSpec] = []
    skipped: list[Skipped] = []
    for task in tasks:
        training = matrix.training_for(task.name)
        if tuning:
            if "lr" in training:
                raise PluginError("the learning rate is tuned: set lr in [tuning] or [training], not both")
            training["lr"] = list(tuning.lr)
        training_sweep = [resolve_params("training", TRAINING, t) for t in _sweep(training)]
        varied = [k for k, v in training.items() if isinstance(v, list)]
        for tparams in _sweep(task_params[task.name]):
            tp = resolve_params(f"task {task.name!r}", task.params, tparams)
            kind = task.kind_for(tp)
            for model in models:
                if kind not in model.kinds:
                    skipped.append(
                        Skipped(
                            model.name,
                            task.name,
                            f"task {task.name!r} is {kind}; model {model.name!r} supports "
                            f"{', '.join(model.kinds)}",
                        )
                    )
                    continue
                for mparams in _sweep(model_params[model.name]):
                    mp = resolve_params(f"model {model.name!r}", model.defaults, mparams)
                    for recipe, size, seed in itertools.product(
                        training_sweep, matrix.sizes_for(task.name), seeds
                    ):
                        trial = {k: recipe[k] for k in varied}
                        if tuning and tuning.per == "task":
                            trial["per"] = "task"  # the analysis selects as the launcher did
                        runs.append(
                            RunSpec(
                                model=model.name,
                                task=task.name,
                                kind=kind,
                                train_size=size,
                                seed=seed,
                                model_params=mp,
                                task_params=tp,
                                training=recipe,
                                matrix_id=matrix_id,
                                trial=trial,
                            )
                        )
    # The same configuration twice (e.g. a swept value equal to another) is one run.
    unique = list({r.run_id: r for r in runs}.values())
    return Plan(unique, skipped, matrix_id, list(matrix.seeds), tuning)
