"""A matrix request -> the list of runs to do (and the pairings skipped, with why).

A :class:`RunSpec` is plain data (JSON-serialisable), so any executor — the in-process loop, a
process pool, a cluster engine — can carry it to where it is trained.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

from ..api import (
    TUNABLE_RECIPE, Choice, ModelPlugin, PluginError, Range, TaskPlugin, check_space,
    resolve_params,
)
from ..limits import MAX_RUNS, MAX_SEED, MAX_SEEDS, MAX_TRAIN_SIZE
from ..registry import Registry
from ..util import did_you_mean, shown
from . import labels as task_labels
from .algorithms import check_recipe
from .halving import HalvingTuner
from .labels import TaskLabel
from .recipe import (
    IDENTITY_IF_NOT, MODEL_IDENTITY_IF_NOT, NOT_IDENTITY, TRAINING, check_schedule_keys,
)
from .rounds import Search, Tuner
from .sampling import divisors_only
from .schedule import unread_keys
from .tuning import Tuning


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
    labels: list[TaskLabel] = field(default_factory=list)  # names the matrix gave task variants

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
        check_max_runs(combos, f"combinations of parameters {', '.join(map(repr, keys))}", "runs")
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes)]


def check_max_runs(count: int, what: str, instead: str) -> None:
    """The one limit on a matrix's size: PluginError once ``count`` passes MAX_RUNS."""
    if count > MAX_RUNS:
        raise PluginError(f"this matrix has more than {MAX_RUNS:,} {what}; a matrix plans at "
                          f"most that many {instead}")


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


def plan(matrix: Matrix, reg: Registry) -> Plan:
    """Expand a matrix into runs. Raises PluginError (one line) on anything invalid."""
    check_sizes_and_seeds(matrix)
    scope = _Scope.of(matrix, reg)
    tuning = _tuning(matrix, scope)
    matrix_id = hashlib.sha256(
        json.dumps(asdict(replace(matrix, task_params=scope.given_task_params)), sort_keys=True,
                   default=str).encode()
    ).hexdigest()[:12]
    out = _Expansion(matrix, matrix_id, tuning)
    for task in scope.tasks:
        for variant in _variants(task, matrix, scope, tuning):
            if task.name in scope.labels:
                out.labels.append(TaskLabel(task.name, variant.params, scope.labels[task.name]))
            for model in scope.models:
                if variant.kind not in model.kinds:
                    out.skip(model, variant)
                    continue
                for mparams in _sweep(scope.model_params[model.name]):
                    mp = resolve_params(f"model {model.name!r}", model.defaults, mparams)
                    out.add(variant, model, mp, pinned={*scope.model_params[model.name]})
    return out.plan()


@dataclass
class _Scope:
    """The plugins a matrix names, each with its own parameters, and the labels it gives."""

    models: list[ModelPlugin]
    tasks: list[TaskPlugin]
    model_params: dict[str, dict]
    task_params: dict[str, dict]
    given_task_params: dict[str, dict]  # as the matrix gave them, less the labels
    labels: dict[str, str]  # task -> its label

    @classmethod
    def of(cls, matrix: Matrix, reg: Registry) -> "_Scope":
        models = [reg.model(m) for m in dict.fromkeys(matrix.models)]
        tasks = [reg.task(t) for t in dict.fromkeys(matrix.tasks)]
        given, labels = task_labels.split(matrix.task_params)
        model_params = _scoped("model", matrix.model_params, [m.name for m in models],
                               {m.name: m.defaults for m in models})
        task_params = _scoped("task", given, [t.name for t in tasks],
                              {t.name: t.params for t in tasks})
        names = [t.name for t in tasks]
        for what, scoped in (
            ("training sizes or recipe", matrix.train_sizes
             if isinstance(matrix.train_sizes, dict) else {}),
            ("training sizes or recipe",
             {k: v for k, v in matrix.training.items() if isinstance(v, dict)}),
            ("a label", labels),
        ):
            for name in scoped:
                if name not in names:
                    raise PluginError(f"{what} given for {name!r}, which is not a task of this "
                                      f"matrix{did_you_mean(name, names)}")
        for name, label in labels.items():
            task_labels.check_unswept(name, label, task_params[name])
        return cls(models, tasks, model_params, task_params, given, labels)


def _tuning(matrix: Matrix, scope: _Scope) -> Tuning | None:
    if not matrix.tuning:
        return None
    tuning = Tuning.parse(matrix.tuning, matrix.seeds)
    names = [m.name for m in scope.models]
    for name in tuning.space:
        if name not in names:
            raise PluginError(f"[tuning.space.{name}] names a model not in this matrix"
                              f"{did_you_mean(name, names)}")
    return tuning


@dataclass
class _Variant:
    """One task variant (a combination of its swept parameters) with its training recipes."""

    task: str
    kind: str
    params: dict  # the task parameters as its runs store them
    search_label: str  # the variant in words: the task and its swept values
    recipes: list[dict]  # every combination of the swept recipe keys, resolved
    varied: list[str]  # the recipe keys swept
    given: dict  # the recipe keys the matrix set: never tuned
    sizes: list[int | None]


def _variants(task: TaskPlugin, matrix: Matrix, scope: _Scope,
              tuning: Tuning | None) -> list[_Variant]:
    training = matrix.training_for(task.name)
    if tuning and "lr" in training:
        raise PluginError("the learning rate is tuned: set lr in [tuning] or [training], not both")
    recipes = [resolve_params("training", TRAINING, t) for t in _sweep(training)]
    varied = [k for k, v in training.items() if isinstance(v, list)]
    swept = [k for k, v in scope.task_params[task.name].items() if isinstance(v, list)]
    out = []
    for tparams in _sweep(scope.task_params[task.name]):
        tp = resolve_params(f"task {task.name!r}", task.params, tparams)
        kind = task.kind_for(tp)
        for recipe in recipes:
            check_recipe(recipe, kind, f"task {task.name!r}")
            check_schedule_keys(recipe, training)
        out.append(_Variant(
            task.name, kind, task.stored_params(tp),
            " ".join([task.name, *(f"{k}={tp[k]}" for k in swept)]), recipes, varied, training,
            matrix.sizes_for(task.name),
        ))
    return out


class _Expansion:
    """The runs (or, with tuning, the searches) of a matrix, gathered pairing by pairing."""

    def __init__(self, matrix: Matrix, matrix_id: str, tuning: Tuning | None):
        self.matrix, self.matrix_id, self.tuning = matrix, matrix_id, tuning
        self.runs: list[RunSpec] = []
        self.skipped: list[Skipped] = []
        self.searches: list[Search] = []
        self.labels: list[TaskLabel] = []

    def skip(self, model: ModelPlugin, variant: _Variant) -> None:
        self.skipped.append(Skipped(
            model.name, variant.task,
            f"task {variant.task!r} is {variant.kind}; model {model.name!r} supports "
            f"{', '.join(model.kinds)}",
        ))

    def add(self, variant: _Variant, model: ModelPlugin, mp: dict, pinned: set) -> None:
        """One model in one task variant: its searches with tuning, else its runs."""
        if self.tuning:
            for recipe in variant.recipes:
                self.searches += _searches(model, variant, mp, recipe, pinned | {*variant.given},
                                           self.tuning, self.matrix_id)
                check_max_runs(len(self.searches) * self.tuning.trials, "tuning trials", "runs")
            return
        combos = itertools.product(variant.recipes, variant.sizes, self.matrix.seeds)
        check_max_runs(len(self.runs) + len(variant.recipes) * len(variant.sizes)
                       * len(self.matrix.seeds), "runs", "(fewer seeds, sizes or swept values)")
        self.runs += [
            RunSpec(model=model.name, task=variant.task, kind=variant.kind, train_size=size,
                    seed=seed, model_params=mp, task_params=variant.params, training=recipe,
                    matrix_id=self.matrix_id, trial={k: recipe[k] for k in variant.varied})
            for recipe, size, seed in combos
        ]

    def plan(self) -> Plan:
        out = Plan([], self.skipped, self.matrix_id, list(self.matrix.seeds), self.tuning,
                   self.searches, self.labels)
        runs = out.tuner().first if self.tuning else self.runs
        # The same configuration twice (e.g. a swept value equal to another) is one run.
        out.runs = list({r.run_id: r for r in runs}.values())
        return out


def _searches(model: ModelPlugin, variant: _Variant, mp: dict, recipe: dict, pinned: set,
              tuning: Tuning, matrix_id: str) -> list[Search]:
    """One model's searches in one task variant: one per training size, or one for all sizes
    when selecting per task."""
    space, fixed = _space(model, mp, recipe, pinned, tuning)
    params = {k: TRAINING[k] if k in TUNABLE_RECIPE else model.defaults[k] for k in space}
    task, label = variant.task, variant.search_label
    bases = [
        RunSpec(model=model.name, task=task, kind=variant.kind, train_size=size,
                seed=tuning.seeds[0], model_params=mp, task_params=variant.params,
                training=recipe, matrix_id=matrix_id,
                trial={k: recipe[k] for k in variant.varied})
        for size in variant.sizes
    ]
    tp_key = json.dumps(variant.params, sort_keys=True)
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
