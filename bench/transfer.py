"""Results that travel: several results databases merged into one.

Runs are united by ``run_id`` (the hash of a run's configuration, so the same run launched on two
machines has the same id). Two copies with the same results collapse into one; two with different
results are a *conflict*: the ``runs`` table keeps one (a finished run over a failed or diverged
one, else the first source's) and the others are kept in full beside it, in ``merge_conflicts``,
never dropped. Timings, host and timestamps are not results: copies differing only there collapse.
Runs still marked running (a launch in progress, or killed) are not merged, and are counted.

The merged file is written under a temporary name and renamed into place once complete.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .store import SIDE_FILES, Store, StoreError

# What a run found: copies of one run that differ here are a conflict.
RESULT_COLUMNS = ("status", "model_params", "primary_metric", "higher_is_better", "best_val",
                  "test", "param_count", "step_flops", "train_examples", "steps", "samples",
                  "steps_to_95", "samples_to_95", "extras")
CURVE_RESULT = ("step", "samples", "train_loss", "val_primary", "val")  # not the seconds
JSON_FIELDS = {"model_params", "test", "extras", "val"}

CONFLICTS_TABLE = """
CREATE TABLE IF NOT EXISTS merge_conflicts (
    run_id TEXT NOT NULL,               -- the run the `runs` table holds another copy of
    source TEXT NOT NULL,               -- the database this copy came from
    differs TEXT NOT NULL,              -- JSON: the result fields that differ from the kept copy
    record TEXT NOT NULL,               -- JSON: this copy's row of `runs`
    curve TEXT NOT NULL                 -- JSON: this copy's rows of `curves`
)
"""


class MergeError(StoreError):
    """The databases cannot be merged; the message is one line for the user."""


@dataclass(frozen=True)
class Conflict:
    run_id: str
    kept: str        # the source whose copy the runs table holds
    other: str       # the source of the copy kept in merge_conflicts
    differs: tuple[str, ...]


@dataclass
class MergeReport:
    runs: int = 0                 # runs in the merged database
    duplicates: int = 0           # identical copies collapsed into one
    running_skipped: int = 0      # runs still marked running in a source, not merged
    conflicts: list[Conflict] = field(default_factory=list)


@dataclass
class _Copy:
    """One source's copy of a run: its stored row as it is, so that the merge keeps its bytes."""

    source: str
    row: dict
    curve: list[dict]
    gradients: str | None


def schema_version(store: Store) -> int:
    row = store.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0])


def _parsed(name: str, value):
    return json.loads(value) if name in JSON_FIELDS and isinstance(value, str) else value


def _differences(a: _Copy, b: _Copy) -> tuple[str, ...]:
    out = [c for c in RESULT_COLUMNS
           if _parsed(c, a.row.get(c)) != _parsed(c, b.row.get(c))]
    points = [[tuple(_parsed(k, p.get(k)) for k in CURVE_RESULT) for p in copy.curve]
              for copy in (a, b)]
    if points[0] != points[1]:
        out.append("curve")
    return tuple(out)


def _read(path: Path) -> tuple[list[_Copy], list[tuple], list[tuple], int]:
    """A source's finished runs, its matrices, its own merge conflicts and its running count."""
    with Store(path, readonly=True) as store:
        conn = store.conn
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        curves: dict[str, list[dict]] = {}
        for p in conn.execute("SELECT * FROM curves ORDER BY run_id, step"):
            curves.setdefault(p["run_id"], []).append(dict(p))
        grads = ({r[0]: r[1] for r in conn.execute("SELECT run_id, data FROM gradients")}
                 if "gradients" in names else {})
        copies, running = [], 0
        for r in conn.execute("SELECT * FROM runs ORDER BY run_id"):
            if r["status"] == "running":
                running += 1
                continue
            copies.append(_Copy(str(path), dict(r), curves.get(r["run_id"], []),
                                grads.get(r["run_id"])))
        matrices = [tuple(r) for r in conn.execute("SELECT matrix_id, created_at, request "
                                                   "FROM matrices")]
        earlier = ([tuple(r) for r in conn.execute("SELECT * FROM merge_conflicts")]
                   if "merge_conflicts" in names else [])
    return copies, matrices, earlier, running


def _identity(path: Path) -> object:
    """The file behind ``path`` whatever its name (symbolic links, '..', hard links)."""
    try:
        st = path.stat()
        return st.st_dev, st.st_ino
    except (OSError, ValueError):
        return path.resolve()


def _check_sources(sources: Sequence[Path], into: Path) -> None:
    if len(sources) < 2:
        raise MergeError("give at least two databases to merge")
    seen: dict[object, Path] = {}
    for path in sources:
        real = _identity(path)
        if real in seen:
            raise MergeError(f"{path} is given twice")
        seen[real] = path
    if _identity(into) in seen:
        raise MergeError(f"--into {into} is one of the databases to merge; write a new file")
    versions = {}
    for path in sources:
        with Store(path, readonly=True) as store:
            versions[path] = schema_version(store)
    if len(set(versions.values())) > 1:
        listed = ", ".join(f"{p} has {v}" for p, v in versions.items())
        raise MergeError(f"the databases have different schema versions ({listed}); "
                         "merge databases of one version")


def merge(sources: Sequence[str | Path], into: str | Path) -> MergeReport:
    """Merge ``sources`` into the new database ``into`` (replaced atomically if it exists)."""
    paths, into = [Path(s) for s in sources], Path(into)
    _check_sources(paths, into)
    chosen: dict[str, _Copy] = {}
    others: dict[str, list[_Copy]] = {}
    matrices: dict[str, tuple] = {}
    earlier: list[tuple] = []
    report = MergeReport()
    for path in paths:
        copies, mats, conflicts, running = _read(path)
        report.running_skipped += running
        earlier += conflicts
        for m in mats:
            matrices.setdefault(m[0], m)
        for copy in copies:
            kept = chosen.get(copy.row["run_id"])
            if kept is None:
                chosen[copy.row["run_id"]] = copy
            elif not _differences(kept, copy):
                report.duplicates += 1
            elif copy.row["status"] == "done" and kept.row["status"] != "done":
                chosen[copy.row["run_id"]] = copy  # a finished run beats a failed attempt
                others.setdefault(copy.row["run_id"], []).append(kept)
            else:
                others.setdefault(copy.row["run_id"], []).append(copy)
    for run_id, copies in sorted(others.items()):
        kept = chosen[run_id]
        for copy in copies:
            report.conflicts.append(Conflict(run_id, kept.source, copy.source,
                                             _differences(kept, copy)))
    report.runs = len(chosen)
    _write(into, list(chosen.values()), others, list(matrices.values()), earlier, report)
    return report


def _write(into: Path, runs: list[_Copy], others: dict[str, list[_Copy]], matrices: list[tuple],
           earlier: list[tuple], report: MergeReport) -> None:
    tmp = into.with_name(f".{into.name}.{os.getpid()}.merging")
    try:
        _fill(tmp, runs, others, matrices, earlier, report)
        os.replace(tmp, into)
    except BaseException:
        for suffix in ("", *SIDE_FILES):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        raise


def _fill(tmp: Path, runs: list[_Copy], others: dict[str, list[_Copy]], matrices: list[tuple],
          earlier: list[tuple], report: MergeReport) -> None:
    tmp.unlink(missing_ok=True)
    with Store(tmp) as store:
        conn = store.conn
        columns = [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
        try:
            with conn:
                conn.execute(CONFLICTS_TABLE)
                conn.executemany("INSERT OR IGNORE INTO matrices VALUES (?, ?, ?)", matrices)
                for copy in runs:
                    cols = [c for c in columns if c in copy.row]
                    conn.execute(f"INSERT INTO runs ({', '.join(cols)}) "
                                 f"VALUES ({', '.join('?' * len(cols))})",
                                 [copy.row[c] for c in cols])
                    conn.executemany(
                        "INSERT INTO curves (run_id, step, samples, seconds, train_loss, "
                        "val_primary, val) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [(p["run_id"], p["step"], p["samples"], p["seconds"], p.get("train_loss"),
                          p.get("val_primary"), p.get("val")) for p in copy.curve])
                    if copy.gradients is not None:
                        conn.execute("INSERT INTO gradients VALUES (?, ?)",
                                     (copy.row["run_id"], copy.gradients))
                conn.executemany("INSERT INTO merge_conflicts VALUES (?, ?, ?, ?, ?)", earlier)
                by_pair = {(c.run_id, c.other): c for c in report.conflicts}
                conn.executemany(
                    "INSERT INTO merge_conflicts VALUES (?, ?, ?, ?, ?)",
                    [(run_id, c.source, json.dumps(by_pair[run_id, c.source].differs),
                      json.dumps(c.row), json.dumps(c.curve))
                     for run_id, copies in others.items() for c in copies])
        except sqlite3.Error as exc:
            raise MergeError(f"cannot write {tmp} ({exc})") from None
