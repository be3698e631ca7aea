"""The :class:`Store`: runs, curves, probes and matrices in one SQLite file.

A run's record and its curve are written in one transaction, so a crash never leaves half a run.
A run that is ``done`` is never overwritten: the same configuration launched again is skipped.
Every write transaction starts with ``BEGIN IMMEDIATE`` and connections wait for locks
(``busy_timeout``), so concurrent launches queue for the write lock instead of failing.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

from ..records import COLUMNS, FINISHED, Curves, CurvePoint, Planned, RunRecord
from .errors import BadValue, StoreError
from .files import connect
from .rows import check_curve_numbers, curve_rows, loads, to_point, to_record, to_row

PLANNED = ("run_id", "matrix_id", "model", "task", "kind", "train_size", "seed", "config",
           "trial", "started_at")  # the columns a run has before it trains, in the inserts' order
BATCH = 500  # ids per IN (...): SQLite's limit on bound parameters is 999 in old builds
F = TypeVar("F", bound=Callable[..., Any])


def _readable(method: F) -> F:
    """A damaged page shows only when a query reaches it: one line, not a traceback."""
    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} could not be read ({exc})") from None
        except BadValue as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    return wrapper  # type: ignore[return-value]


class Store:
    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self.conn = connect(self.path, readonly)

    def close(self) -> None:
        if not self.readonly:
            # Back to rollback mode when this is the last connection, so that readers opening the
            # file later (read-only) need no -wal/-shm files; refused at once while others are on.
            try:
                self.conn.execute("PRAGMA busy_timeout = 0")
                self.conn.execute("PRAGMA journal_mode = DELETE")
            except sqlite3.Error:
                pass
        self.conn.close()

    @_readable
    def check(self) -> None:
        """Raise StoreError unless every page of the file reads back (``PRAGMA quick_check``)."""
        rows = [r[0] for r in self.conn.execute("PRAGMA quick_check(1)")]
        if rows != ["ok"]:
            first = (rows[0] if rows else "no answer").replace("*** in database main ***", "")
            raise StoreError(f"{self.path} is damaged ({' '.join(first.split())})")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self.conn:  # commits, or rolls back on any exception
            # the write lock now: a deferred transaction that reads and then writes fails with
            # "database is locked" when another launch wrote in between
            self.conn.execute("BEGIN IMMEDIATE")
            yield self.conn

    def _where_in(self, sql: str, ids: Iterable[str]) -> list[sqlite3.Row]:
        """``sql`` (ending in ``run_id IN``) over ``ids``, a batch of bound ids at a time."""
        ids, rows = list(ids), []
        for i in range(0, len(ids), BATCH):
            chunk = ids[i : i + BATCH]
            rows += self.conn.execute(f"{sql} ({','.join('?' * len(chunk))})", chunk).fetchall()
        return rows

    # ---- writing (parent process only)

    def add_matrix(self, matrix_id: str, request: dict[str, Any], created_at: str) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR IGNORE INTO matrices VALUES (?, ?, ?)",
                (matrix_id, created_at, json.dumps(request, default=str)),
            )

    @staticmethod
    def _spec_values(spec: Planned, started_at: str) -> tuple[Any, ...]:
        row = to_row(RunRecord.planned(spec, started_at))
        return tuple(row[c] for c in PLANNED)

    def mark_running(self, spec: Planned, started_at: str) -> None:
        """Note that a run was handed to a worker; a later launch redoes it unless it finished."""
        with self._tx() as c:
            c.execute(
                """INSERT INTO runs (run_id, matrix_id, model, task, kind, train_size, seed,
                       status, config, trial, started_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)
                   ON CONFLICT (run_id) DO UPDATE SET status='running', error=NULL,
                       matrix_id=excluded.matrix_id, started_at=excluded.started_at
                   WHERE runs.status != 'done'""",
                self._spec_values(spec, started_at),
            )

    def claim(self, spec: Planned, started_at: str, owner: str, expires: float,
              retry_failed_until: str | None = None) -> bool:
        """Lease a run for ``owner`` before training it, in one statement; False when it is not
        to be trained here: done, under another launch's live lease, or failed/diverged (unless
        ``retry_failed_until``: then failed and diverged runs that finished by that time (its
        whole second included) are claimed again, but not those another launch retried since)."""
        with self._tx() as c:
            cursor = c.execute(
                """INSERT INTO runs (run_id, matrix_id, model, task, kind, train_size, seed,
                       status, config, trial, started_at, lease_owner, lease_expires)
                   VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)
                   ON CONFLICT (run_id) DO UPDATE SET status='running', error=NULL,
                       matrix_id=excluded.matrix_id, started_at=excluded.started_at,
                       lease_owner=excluded.lease_owner, lease_expires=excluded.lease_expires
                   WHERE (runs.status = 'running' AND (runs.lease_owner = excluded.lease_owner
                                OR lease_free(runs.lease_owner, runs.lease_expires)))
                      OR (runs.status IN ('failed', 'diverged') AND runs.finished_at <= ?)""",
                (*self._spec_values(spec, started_at), owner, expires,
                 retry_failed_until or ""),
            )
            return cursor.rowcount == 1

    def renew_leases(self, owner: str, expires: float) -> int:
        """Extend every lease ``owner`` holds on a running run (its heartbeat)."""
        with self._tx() as c:
            count: int = c.execute(
                "UPDATE runs SET lease_expires = ? WHERE lease_owner = ? AND status = 'running'",
                (expires, owner),
            ).rowcount
            return count

    def leases(self, run_ids: Iterable[str]) -> dict[str, tuple[str | None, float | None]]:
        """``run_id -> (lease_owner, lease_expires)`` of the given runs still marked running."""
        rows = self._where_in("SELECT run_id, lease_owner, lease_expires FROM runs "
                              "WHERE status = 'running' AND run_id IN", run_ids)
        return {r[0]: (r[1], r[2]) for r in rows}

    def forget_running(self, run_ids: Iterable[str], owner: str | None = None) -> None:
        """Drop runs still marked running (interrupted before they finished: nothing to keep);
        with ``owner``, only those it still holds (another launch may have taken one over)."""
        with self._tx() as c:
            c.executemany(
                "DELETE FROM runs WHERE run_id = ? AND status = 'running'"
                + ("" if owner is None else " AND lease_owner IS ?"),
                [(i,) if owner is None else (i, owner) for i in run_ids],
            )

    def save(self, record: RunRecord | Mapping[str, Any]) -> None:
        """Write one finished run (done / failed / diverged) and its curve, atomically; a plain
        dict (an executor's record) keeps only the keys that are RunRecord fields."""
        if not isinstance(record, RunRecord):
            record = RunRecord.from_dict(record)
        if record.status not in FINISHED:
            raise ValueError(f"cannot save a run with status {record.status!r}")
        row = to_row(record)
        with self._tx() as c:
            done = c.execute("SELECT status FROM runs WHERE run_id = ?", (record.run_id,))
            if (done.fetchone() or [None])[0] == "done":
                return  # never overwrite a finished run
            c.execute("DELETE FROM runs WHERE run_id = ?", (record.run_id,))
            c.execute(f"INSERT INTO runs ({', '.join(COLUMNS)}) "
                      f"VALUES ({', '.join('?' * len(COLUMNS))})", [row[k] for k in COLUMNS])
            c.executemany("INSERT INTO curves VALUES (?, ?, ?, ?, ?, ?, ?)", curve_rows(record))
            if record.gradients is not None:
                c.execute("INSERT INTO gradients VALUES (?, ?)",
                          (record.run_id, json.dumps(record.gradients, default=str)))

    # ---- reading

    @_readable
    def status_of(self, run_ids: Iterable[str]) -> dict[str, str]:
        rows = self._where_in("SELECT run_id, status FROM runs WHERE run_id IN", run_ids)
        return {r[0]: r[1] for r in rows}

    @_readable
    def runs(self, model: str | None = None, task: str | None = None, status: str | None = None,
             train_size: int | None = None, seed: int | None = None) -> list[RunRecord]:
        """The stored runs matching every filter given, in (task, model, size, seed) order."""
        where, args = [], []
        for col, val in (("model", model), ("task", task), ("status", status), ("seed", seed),
                         ("train_size", train_size)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        sql = "SELECT * FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY task, model, train_size, seed, run_id"
        return [to_record(r) for r in self.conn.execute(sql, args)]

    @_readable
    def matrix(self, matrix_id: str) -> dict[str, Any] | None:
        """The request ``add_matrix`` stored under ``matrix_id``, or None."""
        row = self.conn.execute(
            "SELECT request FROM matrices WHERE matrix_id = ?", (matrix_id,)
        ).fetchone()
        return loads(row[0], f"matrix {matrix_id!r}", "request", dict) if row else None

    @_readable
    def matrices(self, prefix: str = "") -> list[tuple[str, str, dict[str, Any]]]:
        """(matrix_id, created_at, request) of every request whose id starts with ``prefix``,
        oldest first."""
        rows = self.conn.execute(
            "SELECT matrix_id, created_at, request FROM matrices WHERE substr(matrix_id, 1, ?) = ?"
            " ORDER BY created_at, rowid", (len(prefix), prefix)).fetchall()
        return [(r[0], r[1], loads(r[2], f"matrix {r[0]!r}", "request", dict)) for r in rows]

    @_readable
    def curve(self, run_id: str) -> list[CurvePoint]:
        """One run's validations with every metric (``val``), in step order."""
        rows = self.conn.execute(
            "SELECT * FROM curves WHERE run_id = ? ORDER BY step", (run_id,)
        ).fetchall()
        check_curve_numbers(self.conn, "WHERE run_id = ?", (run_id,))
        return [to_point(r, with_val=True) for r in rows]

    @_readable
    def curves(self, run_ids: Iterable[str] | None = None) -> Curves:
        """``run_id -> validations`` (primary metric only) of every run, or of ``run_ids``."""
        out: Curves = {}
        wanted = None if run_ids is None else set(run_ids)
        check_curve_numbers(self.conn)
        for r in self.conn.execute(
            "SELECT run_id, step, samples, seconds, train_loss, val_primary FROM curves "
            "ORDER BY run_id, step"
        ):
            if wanted is None or r[0] in wanted:
                out.setdefault(r[0], []).append(to_point(r, with_val=False))
        return out

    @_readable
    def gradients(self, run_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """``run_id -> gradient probes`` of the runs that have them (all, or ``run_ids``)."""
        if not self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='gradients'"
        ).fetchone():
            return {}  # a file from before probes, opened read-only
        if run_ids is None:
            rows = self.conn.execute("SELECT run_id, data FROM gradients").fetchall()
        else:
            rows = self._where_in("SELECT run_id, data FROM gradients WHERE run_id IN", run_ids)
        return {r[0]: loads(r[1], f"run {r[0]!r}", "gradients.data", dict) for r in rows}
