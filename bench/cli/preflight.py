"""Checks every command that trains makes before it writes a byte: the data is there and large
enough, every model fits its limits and parameter budget, the executor can start."""

from __future__ import annotations

import json

from ..api import PluginError
from .common import fail


def check_plan_fits(the_plan, reg) -> dict:
    """Sizes against the data, then models against their limits; the data shapes, by task variant."""
    shapes = check_sizes_fit(the_plan, reg)
    check_models_fit(the_plan, reg, shapes)
    return shapes


def make_executor(plugin, workers, logger_factory, options: dict):
    """``factory(workers, logger_factory=None, **options)`` with the options the user gave; an
    option this executor does not take is a one-line error, not a TypeError."""
    import inspect

    given = {k: v for k, v in options.items() if v is not None}
    try:
        accepted = inspect.signature(plugin.factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable: let the call decide
        accepted = None
    if accepted is not None and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = [k for k in given if k not in accepted]
        if unknown:
            names = ", ".join("--" + k.replace("_", "-") for k in unknown)
            verb = "does" if len(unknown) == 1 else "do"
            fail(f"{names} {verb} not apply to --executor {plugin.name}")
    try:
        return plugin.factory(workers, logger_factory=logger_factory, **given)
    except PluginError as exc:
        fail(str(exc))


def check_sizes_fit(the_plan, reg) -> dict:
    """A training size larger than a task's data is an error before anything runs.

    Returns each task variant's data shape (keyed as here), for :func:`check_models_fit`.
    """
    seen: dict[str, int] = {}
    shapes: dict = {}
    for spec in the_plan.runs:
        key = spec.task + json.dumps(spec.task_params, sort_keys=True)
        if key not in seen:
            try:
                data = reg.task(spec.task).load(dict(spec.task_params), None, 0)
            except PluginError as exc:
                fail(f"task {spec.task!r}: {exc}")
            except Exception as exc:  # a plugin's own bug: still one line, not a traceback
                fail(f"task {spec.task!r} could not load its data: {type(exc).__name__}: {exc}")
            seen[key] = len(data.train)
            try:
                shapes[key] = data.shape()
            except Exception:  # pragma: no cover - a third-party task's odd data; training says
                shapes[key] = None
        if spec.train_size is not None and spec.train_size > seen[key]:
            fail(
                f"training size {spec.train_size} is larger than task {spec.task!r}'s "
                f"{seen[key]} training examples; use sizes up to {seen[key]} or 'full'"
            )
    return shapes


def check_models_fit(the_plan, reg, shapes: dict) -> None:
    """Every model's parameter count (after fitting a parameter budget) within the limit, and
    every budget attainable, before anything is written: counted on torch's ``meta`` device, so
    nothing is allocated."""
    from ..util import one_line
    from ..experiment.budget import planned_size

    seen: set = set()
    for spec in the_plan.runs:
        task_key = spec.task + json.dumps(spec.task_params, sort_keys=True)
        budget = spec.training.get("param_budget") or 0
        key = (spec.model, json.dumps(spec.model_params, sort_keys=True), task_key, budget)
        if key in seen or shapes.get(task_key) is None:
            continue
        seen.add(key)
        try:
            planned_size(reg.model(spec.model), spec.kind, shapes[task_key],
                         dict(spec.model_params), budget)
        except PluginError as exc:
            fail(f"{exc} (task {spec.task!r})")
        except Exception as exc:  # a plugin's own bug: still one line, not a traceback
            fail(f"model {spec.model!r} could not be built for task {spec.task!r}: "
                 f"{one_line(exc)}")
