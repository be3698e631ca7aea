"""The one pass from run records to cells, shared by the analysis, the summary table printed by
``bench run`` and the dashboard; task variants and JSON-safe values.

:func:`group` sorts the runs into cells (task x task variant x training size) and keeps, per
model, the trial the launcher's own rule selected and that trial's evaluation runs (see
docs/methods.md#cells). Standard library only, with the launcher's selection rule
(``seqbench.experiment.tuning``): the summary printed by ``bench run`` uses it. numpy values are
recognised by duck typing, never by importing numpy.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Iterable, Sequence

from ..records import FINISHED, RunRecord

COUNTED = FINISHED  # a run still running is in no cell yet


class TextEnum(str, Enum):
    """A str Enum that reads as its value everywhere (str, f-strings, JSON), on Python 3.10+."""

    def __str__(self) -> str:
        return str(self.value)

    __hash__ = str.__hash__  # equal to its value, so hashed like it: one dict key for both


def task_params(run: RunRecord) -> dict[str, Any]:
    """The task parameters a run was configured with (``{}`` when it has none)."""
    return run.task_params


def protocol(run: RunRecord) -> str:
    """The training protocol of a run: its schedule and, for wsd, its warm-up and cooldown.
    Runs of different protocols are never one cell (:func:`variant_keys` keys them apart)."""
    training = run.training
    schedule = training.get("schedule", "cosine")  # before the key existed: cosine
    if schedule != "wsd":
        return schedule
    return f"wsd warmup_steps={training.get('warmup_steps')} cooldown={training.get('cooldown')}"


def _variant_params(run: RunRecord) -> dict[str, Any]:
    return {**task_params(run), "protocol": protocol(run)}


def fmt_value(v: Any) -> str:
    """A parameter value as a variant key writes it: strings bare, anything else as JSON."""
    return v if isinstance(v, str) else json.dumps(v, default=str)


def variant_key(variant: dict[str, Any]) -> str:
    """``{"T": 50}`` -> ``"T=50"``; no varying parameter -> ``"default"``. A matrix's ``label``
    names the variant and is not one of its parameters."""
    return ",".join(f"{k}={fmt_value(v)}" for k, v in variant.items() if k != "label") or "default"


def variant_keys(
    runs: Sequence[RunRecord], among: Iterable[RunRecord] | None = None
) -> dict[str, tuple[dict[str, Any], str]]:
    """run_id -> (the task parameters that vary among the runs of its task, their short key);
    a ``protocol`` (:func:`protocol`) among them when the runs of a task differ in it.

    A task whose runs all share their parameters has the variant ``({}, "default")``; one run at
    ``T=50`` and one at ``T=100`` have ``({"T": 50}, "T=50")`` and ``({"T": 100}, "T=100")``.
    ``among`` (default: ``runs``) are the runs whose parameters decide what varies, e.g. only
    the finished ones, so that a run still in progress does not rename the finished runs' cells.
    """
    seen: dict[str, list[dict[str, Any]]] = {}
    for r in runs if among is None else among:
        seen.setdefault(r.task, []).append(_variant_params(r))
    varying: dict[str, list[str]] = {}
    for task, params in seen.items():
        keys = sorted({k for p in params for k in p})
        varying[task] = [
            k for k in keys if len({json.dumps(p.get(k), sort_keys=True) for p in params}) > 1
        ]
    out = {}
    for r in runs:
        p = _variant_params(r)
        variant = {k: p.get(k) for k in varying.get(r.task, ())}
        out[r.run_id] = (variant, variant_key(variant))
    return out


def clean(x: Any) -> Any:
    """JSON-safe, recursively through dicts, lists and tuples.

    numpy scalars and arrays become Python numbers and lists, non-finite floats (a diverged run's
    losses) become None, tuples become lists, dict keys become strings, and anything else that
    JSON cannot hold becomes its ``str``.
    """
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, Enum):  # a str Enum: its value, so JSON is the plain string
        return clean(x.value)
    if isinstance(x, float):  # numpy's float64 too (a float subclass)
        return float(x) if math.isfinite(x) else None
    if isinstance(x, (str, int)):
        return x
    if hasattr(x, "tolist"):  # a numpy scalar or array
        return clean(x.tolist())
    return str(x)


# ---------------------------------------------------------------------------- runs -> cells


def _hyper(trial: dict[str, Any]) -> dict[str, Any]:
    """A trial's hyperparameters: the protocol's bookkeeping (stage, round, trial count, the
    learning-rate range and its extensions) left out; ``per`` stays, selection reads it."""
    from ..experiment.tuning import META

    return {k: v for k, v in trial.items() if k not in META or k == "per"}


def _as_selected(run: RunRecord) -> RunRecord:
    """The run as the trial selection sees it. A tuning run and the evaluation runs of its
    configuration are one trial: ``trial_key`` reads the ``config``, which has no stage; a
    record without one is keyed by its trial's hyperparameters (its stage and bookkeeping differ
    between the two stages), its ``trial`` left as it is for ``is_tune``."""
    if run.config:
        return run
    return replace(run, config={"trial": _hyper(run.trial or {})})


@dataclass
class ModelRuns:
    """One model in one cell, after the tuning selection."""

    name: str
    trials: int  # distinct trials (configurations) this model ran in the cell
    selected_trial: dict[str, Any]  # the selected trial's hyperparameters
    done: list[RunRecord]  # selected trial, evaluation stage, status done, with a test value
    diverged: list[RunRecord]  # selected trial, evaluation stage, status diverged
    n_failed: int  # failed runs of any trial
    n_tune: int  # runs on tuning seeds: selection only, never evaluated
    # the evaluation runs' tuning record (lr_edge...)
    tuning: dict[str, Any] = field(default_factory=dict)
    values: list[float] = field(init=False)
    seeds: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.values = [float(r.primary_value) for r in self.done if r.primary_value is not None]
        self.seeds = [r.seed for r in self.done]

    @property
    def mean(self) -> float | None:
        return math.fsum(self.values) / len(self.values) if self.values else None


@dataclass
class Cell:
    """The runs of one task variant at one training size."""

    task: str
    variant: dict[str, Any]
    variant_key: str
    train_size: int | None
    n: int | None  # training examples (the most common ``train_examples``), else the train size
    primary_metric: str | None
    higher_is_better: bool
    runs: list[RunRecord]
    models: dict[str, ModelRuns]  # by name, sorted
    # chance, perfect, val_size: the most common value among the runs that have it
    extras: dict[str, Any]


def _sort_value(v: Any) -> tuple[Any, ...]:
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def size_key(v: Any) -> float:
    """A training size (or n) as it sorts: the full split (None) last."""
    return math.inf if v is None else float(v)


EXTRAS = ("chance", "perfect", "val_size")
ModelKey = tuple[str, str, str]  # (task, variant key, model)


def _model_runs(name: str, runs: list[RunRecord], pick: Any) -> ModelRuns:
    """One model's runs in a cell: the picked trial's evaluation runs, and what was left out."""
    from ..experiment.tuning import is_tune, trial_key

    keys = [trial_key(_as_selected(r)) for r in runs]
    sel = [r for r, k in zip(runs, keys) if k == pick and not is_tune(r)]
    trial = next((r.trial or {} for r, k in zip(runs, keys) if k == pick), {})
    meta = (sel[0].trial or {}) if sel else {}
    return ModelRuns(
        name=name, trials=len(set(keys)),
        selected_trial={k: v for k, v in _hyper(trial).items() if k != "per"},
        done=[r for r in sel if r.status == "done" and r.primary_value is not None],
        diverged=[r for r in sel if r.status == "diverged"],
        n_failed=sum(r.status == "failed" for r in runs),
        n_tune=sum(is_tune(r) for r in runs),
        tuning={k: v for k, v in meta.items() if k not in _hyper(meta) and k != "stage"},
    )


def _common_extras(runs: list[RunRecord]) -> dict[str, Any]:
    """chance, perfect, val_size: each the most common number among the runs that have it."""
    out = {}
    for name in EXTRAS:
        vals = [(r.extras or {}).get(name) for r in runs]
        vals = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if vals:
            out[name] = Counter(vals).most_common(1)[0][0]
    return out


def _cell(task: str, variant: dict[str, Any], vkey: str, size: int | None,
          runs: list[RunRecord], chosen: dict[ModelKey, dict[Any, Any]]) -> Cell:
    """The cell of ``runs`` (one task variant, one size), each model's chosen trial kept."""
    done = [r for r in runs if r.status == "done"]
    ref = next((r for r in done if r.primary_metric), None) or next(
        (r for r in runs if r.primary_metric), None)
    sizes = Counter(r.train_examples for r in runs if r.train_examples is not None)
    by_model: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_model.setdefault(r.model, []).append(r)
    models = {name: _model_runs(name, mrs, chosen[(task, vkey, name)].get(size))
              for name, mrs in sorted(by_model.items())}
    return Cell(
        task=task, variant=variant, variant_key=vkey, train_size=size,
        n=sizes.most_common(1)[0][0] if sizes else size,
        primary_metric=ref.primary_metric if ref is not None else None,
        higher_is_better=bool(ref.higher_is_better) if ref is not None else True,
        runs=runs, models=models, extras=_common_extras(runs),
    )


def group(runs: Sequence[RunRecord]) -> list[Cell]:
    """Finished, failed and diverged runs as cells, sorted by task, variant and size.

    Per model and task variant the trial is chosen once over every size's runs (the launcher's
    rule, :func:`chosen_trials`; tuning-stage runs alone when there are any, since they are what
    the launcher chose on); per cell only that trial's evaluation-stage runs are kept.
    """
    from ..experiment.tuning import chosen_trials

    counted = [r for r in runs if r.status in COUNTED]
    variants = variant_keys(counted)
    per_model: dict[ModelKey, list[RunRecord]] = {}  # every size's runs
    groups: dict[tuple[str, str, int | None], list[RunRecord]] = {}
    for r in counted:
        vkey = variants[r.run_id][1]
        per_model.setdefault((r.task, vkey, r.model), []).append(r)
        groups.setdefault((r.task, vkey, r.train_size), []).append(r)
    # the launcher's rule: on the tuning runs where there are any, never on evaluation runs
    chosen = {key: chosen_trials([_as_selected(r) for r in rs]) for key, rs in per_model.items()}
    cells = [_cell(task, variants[rs[0].run_id][0], vkey, size, rs, chosen)
             for (task, vkey, size), rs in groups.items()]
    cells.sort(key=lambda c: (c.task, tuple(_sort_value(v) for v in c.variant.values()),
                              c.variant_key, size_key(c.n), size_key(c.train_size)))
    return cells
