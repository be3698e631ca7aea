"""Task labels: a short name a matrix gives one task variant (``label = "TREC-6"`` in
``[task_params.TASK]``), shown instead of the derived one by the overview, ``bench analyze`` and
the pooled tables.

A label is never part of a run's identity, nor of its matrix's: it is kept beside the matrices (a
row per label and launching matrix, in the ``matrices`` table under a ``label:`` id), so labelling
or relabelling a matrix that has already run retrains nothing; a run shows the latest label its
own matrix gave, else the one every matrix that labelled its task variant gave.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from ..api import PluginError
from ..util import shown

if TYPE_CHECKING:
    from ..records import RunRecord
    from ..store import Store

KEY = "label"  # the task parameter a matrix sets it with
MAX_LABEL = 40  # characters: a table column, not a description
PREFIX = "label:"  # its rows' ids in the matrices table


@dataclass(frozen=True)
class TaskLabel:
    task: str
    task_params: dict[str, Any]  # the variant's parameters as its runs store them
    label: str

    @property
    def variant(self) -> tuple[str, str]:
        return variant_of(self.task, self.task_params)


def variant_of(task: str, task_params: Mapping[str, Any]) -> tuple[str, str]:
    """A task variant as labels are keyed: the task and its stored parameters as JSON."""
    return task, json.dumps(task_params, sort_keys=True, default=str)


def checked(task: str, value: Any) -> str:
    """The label as shown; PluginError (one line) for anything but a short one-line name."""
    what = f"task {task!r}: label {shown(value)}"
    if not isinstance(value, str):
        raise PluginError(f"{what} is not text; give a short name, e.g. label = \"TREC-6\"")
    text = value.strip()
    if not text:
        raise PluginError(f"{what} is empty; give a short name, e.g. label = \"TREC-6\"")
    if len(text) > MAX_LABEL:
        raise PluginError(f"{what} has {len(text)} characters; a label has at most {MAX_LABEL}")
    if not text.isprintable():
        raise PluginError(f"{what} holds a control character; a label is one line of text")
    return text


def split(task_params: Mapping[str, Mapping[str, Any]]
          ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``{"*": {...}, "task": {..., "label": "X"}}`` -> (the parameters without labels, task ->
    checked label). A task's scope that held only its label is dropped, as if never written."""
    shared = task_params.get("*", {})
    if KEY in shared:
        raise PluginError(f"label {shown(shared[KEY])} names one task variant: set it for one "
                          "task, in [task_params.TASK] or as -t TASK.label=NAME")
    params: dict[str, dict[str, Any]] = {}
    labels: dict[str, str] = {}
    for owner, values in task_params.items():
        if owner != "*" and KEY in values:
            labels[owner] = checked(owner, values[KEY])
            values = {k: v for k, v in values.items() if k != KEY}
            if not values:
                continue
        params[owner] = dict(values)
    return params, labels


def check_unswept(task: str, label: str, params: Mapping[str, Any]) -> None:
    """A label names one variant: a task whose parameters the matrix sweeps has several."""
    swept = [k for k, v in params.items() if isinstance(v, list)]
    if swept:
        raise PluginError(f"task {task!r}: label {label!r} names one task variant, but the "
                          f"matrix sweeps {swept[0]}; give each variant its own matrix file "
                          "(a folder of parts)")


@dataclass
class StoredLabels:
    """The labels launches gave, by the matrix that gave them: one data set run at two model sizes
    (two matrices, one task variant) may carry two labels."""

    by_matrix: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def of(self, run: RunRecord) -> str | None:
        """A run's label: its own matrix's, else its variant's when every matrix that labelled
        that variant agrees."""
        variant = variant_of(run.task, run.task_params)
        own = self.by_matrix.get((run.matrix_id or "", *variant))
        if own:
            return own
        given = {label for (_, *v), label in self.by_matrix.items() if tuple(v) == variant}
        return given.pop() if len(given) == 1 else None

    def __bool__(self) -> bool:
        return bool(self.by_matrix)


def save(store: Store, matrix_id: str, labels: list[TaskLabel], created_at: str) -> None:
    """Keep each new or changed label beside the matrices; a matrix's latest row wins."""
    current = stored(store).by_matrix
    for lbl in labels:
        if current.get((matrix_id, *lbl.variant)) == lbl.label:
            continue
        request = {"matrix_id": matrix_id, **asdict(lbl)}
        row = json.dumps([request, created_at], sort_keys=True, default=str)
        store.add_matrix(PREFIX + hashlib.sha256(row.encode()).hexdigest()[:16], request,
                         created_at)


def stored(store: Store) -> StoredLabels:
    out = StoredLabels()
    for _, _, request in store.matrices(PREFIX):  # oldest first: a later label replaces
        try:
            lbl = TaskLabel(str(request["task"]), dict(request["task_params"]),
                            str(request["label"]))
            matrix_id = str(request["matrix_id"])
        except (KeyError, TypeError, ValueError):
            continue  # a row this version cannot read names no label
        out.by_matrix[(matrix_id, *lbl.variant)] = lbl.label
    return out
