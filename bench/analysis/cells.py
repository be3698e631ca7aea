"""Shared by the analysis, the dashboard and the run summary: task variants and JSON-safe values.

Standard library only (the summary printed by ``bench run`` uses it): numpy values are recognised
by duck typing, never by importing numpy.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Sequence


def task_params(run: dict) -> dict:
    """The task parameters a run was configured with (``{}`` when it has none)."""
    return (run.get("config") or {}).get("task_params") or {}


def fmt_value(v: Any) -> str:
    """A parameter value as a variant key writes it: strings bare, anything else as JSON."""
    return v if isinstance(v, str) else json.dumps(v, default=str)


def variant_key(variant: dict) -> str:
    """``{"T": 50}`` -> ``"T=50"``; no varying parameter -> ``"default"``."""
    return ",".join(f"{k}={fmt_value(v)}" for k, v in variant.items()) or "default"


def variant_keys(
    runs: Sequence[dict], among: Iterable[dict] | None = None
) -> dict[str, tuple[dict, str]]:
    """run_id -> (the task parameters that vary among the runs of its task, their short key).

    A task whose runs all share their parameters has the variant ``({}, "default")``; one run at
    ``T=50`` and one at ``T=100`` have ``({"T": 50}, "T=50")`` and ``({"T": 100}, "T=100")``.
    ``among`` (default: ``runs``) are the runs whose parameters decide what varies, e.g. only
    the finished ones, so that a run still in progress does not rename the finished runs' cells.
    """
    seen: dict[str, list[dict]] = {}
    for r in runs if among is None else among:
        seen.setdefault(r["task"], []).append(task_params(r))
    varying: dict[str, list[str]] = {}
    for task, params in seen.items():
        keys = sorted({k for p in params for k in p})
        varying[task] = [
            k for k in keys if len({json.dumps(p.get(k), sort_keys=True) for p in params}) > 1
        ]
    out = {}
    for r in runs:
        p = task_params(r)
        variant = {k: p.get(k) for k in varying.get(r["task"], ())}
        out[r["run_id"]] = (variant, variant_key(variant))
    return out


def clean(x: Any, *, drop_private: bool = False) -> Any:
    """JSON-safe, recursively through dicts, lists and tuples.

    numpy scalars and arrays become Python numbers and lists, non-finite floats (a diverged run's
    losses) become None, tuples become lists, dict keys become strings, and anything else that
    JSON cannot hold becomes its ``str``. ``drop_private`` drops the dict keys starting with ``_``.
    """
    if isinstance(x, dict):
        return {
            str(k): clean(v, drop_private=drop_private)
            for k, v in x.items()
            if not (drop_private and str(k).startswith("_"))
        }
    if isinstance(x, (list, tuple)):
        return [clean(v, drop_private=drop_private) for v in x]
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, float):  # numpy's float64 too (a float subclass)
        return float(x) if math.isfinite(x) else None
    if isinstance(x, (str, int)):
        return x
    if hasattr(x, "tolist"):  # a numpy scalar or array
        return clean(x.tolist(), drop_private=drop_private)
    return str(x)
