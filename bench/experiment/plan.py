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

from ..api import (
    TUNABLE_RECIPE, Choice, ModelPlugin, Param, PluginError, Range, check_space, resolve_params,
)
from ..limits import MAX_PARAMS, MAX_RUNS, MAX_SEED, MAX_SEEDS, MAX_TRAIN_SIZE
from ..util import did_you_mean, shown
from ..registry import Registry
from .sampling import divisors_only
from .algorithms import RTRL_MODES, check_recipe
from .halving import HalvingTuner
from .schedule import Kind, Schedule, unread_keys
from .tuning import LR, Search, Tuner, Tuning

# The training recipe is the same for every model of a task (a fair comparison); the tuning
# protocol varies only the recipe keys a model's search space names (api.TUNABLE_RECIPE).
TRAINING: dict[str, Param] = {
    # Upper bounds: what a machine can honour (see api's limits); every value is checked before
    # anything is planned or allocated.
    "max_steps": Param(1000, "optimizer steps at most", minimum=1, maximum=10_000_000),
    "batch_size": Param(32, "examples per step", minimum=1, maximum=65_536),
    "lr": LR,
    "weight_decay": Param(0.01, "AdamW weight decay", minimum=0.0, maximum=10.0),
    "schedule": Param("wsd", "learning-rate schedule: wsd (warm-up, constant, then a cooldown "
                      "once early stopping's patience runs out or before the step cap), or the "
                      "earlier cosine / constant over max_steps", tuple(k.value for k in Kind)),
    "warmup_steps": Param(100, "wsd: optimizer steps of linear warm-up, the same for every model "
                          "(at most until the step cap's cooldown)", minimum=0,
                          maximum=10_000_000),
    "cooldown": Param(0.2, "wsd: cooldown length as a share of the steps trained before it (at "
                      "least 2 validations); the rate decays to 0 as 1 - sqrt", minimum=0.0,
                      maximum=1.0, min_open=True),
    "warmup": Param(0.05, "cosine, constant: share of max_steps spent warming the learning rate "
                    "up from 0", minimum=0.0, maximum=0.5),
    "grad_clip": Param(1.0, "gradient-norm clipping threshold; 0 turns clipping off", minimum=0.0),
    "val_every": Param(100, "validate every this many steps", minimum=1, maximum=10_000_000),
    "patience": Param(5, "stop after this many validations without improvement; 0 = never",
                      minimum=0, maximum=100_000),
    "val_limit": Param(0, "score at most this many validation examples; 0 = all", minimum=0,
                       maximum=MAX_TRAIN_SIZE),
    "param_budget": Param(0, "size each model's width to this many parameters; 0 = off",
                          minimum=0, maximum=MAX_PARAMS),
    # The mechanisms of issue 10 (see experiment/probes.py and experiment/tbptt.py).
    "probe_gradients": Param(False, "record gradient probes: per-position input-gradient norms "
                             "at step 0 and every validation, the pre-clip norm every step"),
    "tbptt": Param(0.0, "truncated BPTT window (aligned tasks, recurrent models): K steps (a "
                   "whole number), a share of the sequence length (below 1), or 0 = full BPTT",
                   minimum=0.0),
    "rtrl": Param("off", "real-time recurrent learning (aligned tasks, one-layer Elman RNN): "
                  "an update every time step (online) or one per batch (accumulated)",
                  RTRL_MODES),
}
# Keys that join a run's identity (its run_id) only when they differ from these values, so that
# runs stored before the keys existed keep their ids; and keys that never do: probing records
# the gradients without changing the result (tests/test_gradients.py), so a probed run is the
# same run and the analysis never counts it twice.
IDENTITY_IF_NOT = {"tbptt": 0.0, "rtrl": "off"}
NOT_IDENTITY = ("probe_gradients",)
# Model parameters likewise: the GRU's update_bias = 0 is torch's initialisation, as before it.
MODEL_IDENTITY_IF_NOT = {"update_bias": 0.0}


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
        unread = unread_keys(self.training)  # another schedule's keys decide nothing here
        training = {
            k: v for k, v in self.training.items()
            if k not in NOT_IDENTITY and k not in unread
            and not (k in IDENTITY_IF_NOT and v == IDENTITY_IF_NOT[k])
        }
        model_params = {k: v for k, v in self.model_params.items()
                        if not (k in MODEL_IDENTITY_IF_NOT and v == MODEL_IDENTITY_IF_NOT[k])}
        return {
            "model": self.model,
            "model_params": model_params,
            "task": self.task,
            "task_params": self.task_params,
            "train_size": self.train_size,
            "seed": self.seed,
            "training": training,
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
    runs: list[RunSpec]  # with tuning: the first round of trials, on the tuning seeds
    skipped: list[Skipped]
    matrix_id: str
    seeds: list[int] = field(default_factory=list)  # the evaluation seeds
    tuning: Tuning | None = None
    searches: list[Search] = field(default_factory=list)  # with tuning: what each model tunes

    def tuner(self) -> Tuner | HalvingTuner:
        """The tuning rounds (or rungs) of this plan (the first is :attr:`runs`)."""
        if self.tuning.prune == "halving":
            return HalvingTuner(self.searches, self.tuning, self.seeds)
        return Tuner(self.searches, self.tuning, self.seeds)


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
    tuning: dict = field(default_factory=dict)  # {"trials": 8, "seeds": 1, "per": "size", ...}

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
    combos = 1
    for axis in axes:  # counted before any is built: three lists of 1000 are 10**9 dicts
        combos *= len(axis)
        if combos > MAX_RUNS:
            raise PluginError(
                f"parameters {', '.join(map(repr, keys))} sweep more than {MAX_RUNS:,} "
                f"combinations; a matrix plans at most {MAX_RUNS:,} runs"
            )
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
    for what, names in (("model", matrix.models), ("task", matrix.tasks)):
        for name in names:
            if not isinstance(name, str):
                raise PluginError(f"{what} {shown(name)} is not a name (a string)")
    if len(matrix.seeds) > MAX_SEEDS:
        raise PluginError(f"{len(matrix.seeds):,} seeds; a matrix has at most {MAX_SEEDS:,}")
    for s in matrix.seeds:
        if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= MAX_SEED:
            raise PluginError(
                f"seed {shown(s)} is not an integer from 0 to {MAX_SEED} (numpy's seed range)"
            )
    sizes = matrix.train_sizes
    every = [n for v in sizes.values() for n in v] if isinstance(sizes, dict) else sizes
    for n in every:
        if n is not None and (not isinstance(n, int) or isinstance(n, bool)
                              or not 1 <= n <= MAX_TRAIN_SIZE):
            raise PluginError(
                f"training size {shown(n)} is not an integer from 1 to {MAX_TRAIN_SIZE:,} "
                "(or 'full')"
            )
    # Each axis names every value once: a repeat is a typo, never a request for more runs.
    per_task = sizes.items() if isinstance(sizes, dict) else [("", sizes)]
    for label, values in (("seeds", matrix.seeds), ("models", matrix.models),
                          ("tasks", matrix.tasks),
                          *((f"training sizes{' of ' + t if t else ''}", v) for t, v in per_task)):
        seen = set()
        for v in values:
            if v in seen:
                name = "full" if v is None else v
                raise PluginError(f"{label} repeat: {name!r} is given twice; each once")
            seen.add(v)


def check_schedule_keys(recipe: dict, given: Mapping) -> None:
    """A recipe key the chosen schedule does not read is a mistake, never silently ignored: an
    older matrix file that sets ``warmup`` (a share) meant the cosine schedule, once the default."""
    unread = sorted(unread_keys(recipe) & set(given))
    if unread:
        key = unread[0]
        raise PluginError(
            f"training key {key!r} is not read by schedule {recipe['schedule']!r}"
            + (" (it warms up over warmup_steps); set schedule = \"cosine\" to reproduce runs "
               "made before wsd became the default" if key == "warmup" else
               f"; it belongs to schedule {Kind.WSD.value!r}")
        )
    # The default warm-up shortens to fit a short budget; one the matrix asks for must fit.
    if "warmup_steps" in given and recipe["schedule"] == Kind.WSD:
        cap_start = Schedule.from_recipe(recipe).cap_start
        if recipe["warmup_steps"] > cap_start:
            raise PluginError(
                f"warmup_steps = {recipe['warmup_steps']:,} does not fit max_steps = "
                f"{recipe['max_steps']:,}: the cooldown before the step cap starts at step "
                f"{cap_start:,}; lower warmup_steps or raise max_steps"
            )


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
    tuning = Tuning.parse(matrix.tuning, matrix.seeds) if matrix.tuning else None
    for name in tuning.space if tuning else ():
        if name not in [m.name for m in models]:
            raise PluginError(f"[tuning.space.{name}] names a model not in this matrix"
                              f"{did_you_mean(name, [m.name for m in models])}")
    matrix_id = hashlib.sha256(
        json.dumps(asdict(matrix), sort_keys=True, default=str).encode()
    ).hexdigest()[:12]

    runs: list[RunSpec] = []
    skipped: list[Skipped] = []
    searches: list[Search] = []
    for task in tasks:
        training = matrix.training_for(task.name)
        if tuning and "lr" in training:
            raise PluginError("the learning rate is tuned: set lr in [tuning] or [training], not both")
        training_sweep = [resolve_params("training", TRAINING, t) for t in _sweep(training)]
        varied = [k for k, v in training.items() if isinstance(v, list)]
        swept_task = [k for k, v in task_params[task.name].items() if isinstance(v, list)]
        for tparams in _sweep(task_params[task.name]):
            tp = resolve_params(f"task {task.name!r}", task.params, tparams)
            kind = task.kind_for(tp)
            stored_tp = task.stored_params(tp)
            for recipe in training_sweep:
                check_recipe(recipe, kind, f"task {task.name!r}")
                check_schedule_keys(recipe, training)
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
                    if tuning:
                        pinned = {*model_params[model.name], *training}
                        label = " ".join([task.name, *(f"{k}={tp[k]}" for k in swept_task)])
                        for recipe in training_sweep:
                            if len(searches) * tuning.trials > MAX_RUNS:
                                raise PluginError(
                                    f"this matrix has more than {MAX_RUNS:,} tuning trials; a "
                                    "matrix plans at most that many runs"
                                )
                            searches += _searches(
                                model, task.name, kind, stored_tp, mp, recipe, varied, pinned,
                                label, matrix.sizes_for(task.name), tuning, matrix_id,
                            )
                        continue
                    for recipe, size, seed in itertools.product(
                        training_sweep, matrix.sizes_for(task.name), matrix.seeds
                    ):
                        trial = {k: recipe[k] for k in varied}
                        if len(runs) >= MAX_RUNS:
                            raise PluginError(
                                f"this matrix has more than {MAX_RUNS:,} runs; a matrix plans at "
                                "most that many (fewer seeds, sizes or swept values)"
                            )
                        runs.append(
                            RunSpec(
                                model=model.name,
                                task=task.name,
                                kind=kind,
                                train_size=size,
                                seed=seed,
                                model_params=mp,
                                task_params=stored_tp,
                                training=recipe,
                                matrix_id=matrix_id,
                                trial=trial,
                            )
                        )
    the_plan = Plan([], skipped, matrix_id, list(matrix.seeds), tuning, searches)
    if tuning:
        if len(searches) * tuning.trials > MAX_RUNS:
            raise PluginError(f"this matrix has more than {MAX_RUNS:,} tuning trials; a matrix "
                              "plans at most that many runs")
        runs = the_plan.tuner().first
    # The same configuration twice (e.g. a swept value equal to another) is one run.
    the_plan.runs = list({r.run_id: r for r in runs}.values())
    return the_plan


def _searches(
    model: ModelPlugin, task: str, kind: str, tp: dict, mp: dict, recipe: dict, varied: list,
    pinned: set, label: str, sizes: list, tuning: Tuning, matrix_id: str,
) -> list[Search]:
    """One model's searches in one task variant: one per training size, or one for all sizes
    when selecting per task."""
    space, fixed = _space(model, mp, recipe, pinned, tuning)
    params = {k: TRAINING[k] if k in TUNABLE_RECIPE else model.defaults[k] for k in space}
    bases = [
        RunSpec(model=model.name, task=task, kind=kind, train_size=size, seed=tuning.seeds[0],
                model_params=mp, task_params=tp, training=recipe, matrix_id=matrix_id,
                trial={k: recipe[k] for k in varied})
        for size in sizes
    ]
    tp_key = json.dumps(tp, sort_keys=True)
    recipe_keys = frozenset(k for k in space if k in TUNABLE_RECIPE)
    if tuning.per == "task":
        return [Search(model.name, (task, tp_key, "*"), f"{label} (every size)", bases, space,
                       params, recipe_keys, fixed)]
    return [
        Search(model.name, (task, tp_key, b.train_size),
               f"{label} n={b.train_size or 'full'}", [b], space, params, recipe_keys, fixed)
        for b in bases
    ]


def _space(model: ModelPlugin, mp: dict, recipe: dict, pinned: set, tuning: Tuning) -> tuple:
    """What this model draws from (its plugin's space, with the matrix's [tuning.space]
    overrides, less the keys the matrix pins) and which keys were pinned."""
    if tuning.grid:
        return {"lr": Choice(tuning.grid)}, ()  # the legacy fixed list: only the lr varies
    declared = {**model.space, **tuning.space.get(model.name, {})}
    if model.name in tuning.space:
        try:
            check_space(model.name, declared, model.defaults)
        except PluginError as exc:
            raise PluginError(f"[tuning.space.{model.name}]: {exc}") from None
    space = {k: d for k, d in declared.items() if k not in pinned}
    if not space:
        raise PluginError(f"model {model.name!r}: the matrix pins every key of its search space, "
                          "so nothing is left to tune")
    owner = model.width_multiple_of
    if owner in space and not recipe["param_budget"]:
        # Without a budget the width is the given one, so only divisors of it are valid.
        width = mp[model.width_param]
        space[owner] = divisors_only(space[owner], width)
        if space[owner] is None:
            raise PluginError(
                f"model {model.name!r}: no {owner} in its search space divides "
                f"{model.width_param}={width}; set --param-budget (the width is then fitted "
                f"to {owner}) or pin {owner}"
            )
    for key, dist in space.items():  # recipe bounds are the core's (warm-up at most half)
        if key in TUNABLE_RECIPE:
            try:
                for v in (dist.low, dist.high) if isinstance(dist, Range) else dist.values:
                    TRAINING[key].coerce(key, v)
            except PluginError as exc:
                raise PluginError(f"model {model.name!r}: search space: {exc}") from None
        if key in unread_keys(recipe):
            raise PluginError(f"model {model.name!r}: search space: {key!r} is not read by "
                              f"schedule {recipe['schedule']!r}, so tuning it changes nothing")
    return space, tuple(k for k in declared if k in pinned)
