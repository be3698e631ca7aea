"""The one mapping between a :class:`RunRecord` and a row of ``runs``: JSON columns, types
checked on the way in, so that a file edited by hand fails in one line naming run and column."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, cast

from ..util import shown
from ..records import COLUMNS, STATUSES, CurvePoint, RunRecord
from .errors import BadValue
from .schema import JSON_COLUMNS

_NUMBER = (int, float)
# column -> (accepted types, required); a value of another type is a one-line BadValue
_COLUMN_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {
    **{c: ((str,), True) for c in ("run_id", "model", "task", "kind", "status", "config")},
    **{c: ((str,), False) for c in ("matrix_id", "error", "primary_metric", "started_at",
                                    "finished_at", "lease_owner", "trial", "model_params",
                                    "test", "extras", "environment")},
    "seed": ((int,), True),
    **{c: ((int,), False) for c in ("train_size", "higher_is_better", "param_count",
                                    "step_flops", "train_examples", "steps", "samples",
                                    "steps_to_95", "samples_to_95")},
    **{c: (_NUMBER, False) for c in ("best_val", "train_seconds", "seconds_to_95",
                                     "lease_expires")},
}
_TYPE_WORDS = {(str,): "text", (int,): "an integer", _NUMBER: "a number"}


def _shown(value: Any) -> str:
    return shown(value, 40)


def loads(text: Any, owner: str, column: str, kind: type | tuple[type, ...] = object) -> Any:
    """JSON from a stored column, or a BadValue naming the owner and the column."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise BadValue(f"{owner}: column {column!r} holds {_shown(text)}, not JSON") from None
    if not isinstance(value, kind):
        raise BadValue(f"{owner}: column {column!r} holds {_shown(text)}, not a JSON object")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER) and not isinstance(value, bool)


def _check_types(out: dict[str, Any], owner: str) -> None:
    for key, (types, required) in _COLUMN_TYPES.items():
        value = out.get(key)
        if value is None and not required:
            continue
        if not isinstance(value, types) or (types == _NUMBER and not _is_number(value)):
            raise BadValue(f"{owner}: column {key!r} holds {_shown(value)}, not "
                           f"{_TYPE_WORDS[types]}")
    if out["status"] not in STATUSES:
        raise BadValue(f"{owner}: column 'status' holds {_shown(out['status'])}, not one of "
                       f"{', '.join(STATUSES)}")


def to_record(row: sqlite3.Row) -> RunRecord:
    """A stored row as a RunRecord: JSON decoded, types checked (BadValue otherwise)."""
    out = dict(row)
    owner = f"run {_shown(out.get('run_id'))}"
    _check_types(out, owner)
    for key in JSON_COLUMNS:
        if out.get(key) is not None:
            out[key] = loads(out[key], owner, key, dict if key == "config" else (dict, type(None)))
    if out.get("higher_is_better") is not None:
        out["higher_is_better"] = bool(out["higher_is_better"])
    record = RunRecord(**{k: out[k] for k in COLUMNS if k in out})
    value = record.primary_value
    if value is not None and not _is_number(value):
        raise BadValue(f"{owner}: column 'test' holds {_shown(value)} for "
                       f"{record.primary_metric!r}, not a number")
    return record


def to_row(record: RunRecord) -> dict[str, Any]:
    """The record's columns as stored: JSON columns as text (sorted keys)."""
    row = {k: getattr(record, k) for k in COLUMNS}
    for key in JSON_COLUMNS:
        if row[key] is not None:
            row[key] = json.dumps(row[key], sort_keys=True, default=str)
    return row


def curve_rows(record: RunRecord) -> list[tuple[Any, ...]]:
    """The record's curve as rows of ``curves``."""
    return [(record.run_id, p["step"], p["samples"], p["seconds"], p.get("train_loss"),
             p.get("val_primary"), json.dumps(p.get("val", {}), sort_keys=True))
            for p in record.curve]


def to_point(row: sqlite3.Row, with_val: bool) -> CurvePoint:
    """A stored curve point; ``val`` (every metric) decoded when asked for."""
    point = cast(CurvePoint, dict(row))
    if with_val:
        point["val"] = loads(row["val"] or "{}", f"run {row['run_id']!r}", "curves.val", dict)
    return point


def check_curve_numbers(conn: sqlite3.Connection, where: str = "",
                        args: tuple[Any, ...] = ()) -> None:
    """A BadValue for the first curve point whose numbers are not numbers (one scan in SQLite)."""
    bad = conn.execute(
        "SELECT run_id, step, CASE WHEN typeof(step) != 'integer' THEN 'step' "
        "WHEN typeof(samples) != 'integer' THEN 'samples' "
        "WHEN typeof(seconds) NOT IN ('integer', 'real') THEN 'seconds' "
        "WHEN typeof(train_loss) NOT IN ('integer', 'real', 'null') THEN 'train_loss' "
        "WHEN typeof(val_primary) NOT IN ('integer', 'real', 'null') THEN 'val_primary' END AS col "
        f"FROM curves {where} {'AND' if where else 'WHERE'} col IS NOT NULL LIMIT 1", args,
    ).fetchone()
    if bad is not None:
        raise BadValue(f"run {bad[0]!r}: curve point {_shown(bad[1])}: column {bad[2]!r} "
                       "does not hold a number")
