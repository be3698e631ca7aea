"""The results database: one SQLite file, WAL mode, written only by the parent process.

A run's record and its curve are written in one transaction, so a crash never leaves half a run.
A run that is ``done`` is never overwritten: the same configuration launched again is skipped.
Readers (``bench results``, the analysis, the dashboard) open the file read-only.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

DEFAULT_DB = "results/bench.sqlite"  # every command's --db default
SCHEMA_VERSION = 1
STATUSES = ("running", "done", "failed", "diverged")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS matrices (
    matrix_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    request TEXT NOT NULL               -- JSON: the matrix as the user asked for it
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,            -- hash of the canonical configuration
    matrix_id TEXT,
    model TEXT NOT NULL,
    task TEXT NOT NULL,
    kind TEXT NOT NULL,
    train_size INTEGER,                 -- NULL: the task's full training split
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'diverged')),
    error TEXT,
    config TEXT NOT NULL,               -- JSON: model/task params, training recipe, size, seed
    trial TEXT NOT NULL DEFAULT '{}',   -- JSON: what a tuning sweep varied
    model_params TEXT,                  -- JSON: hyperparameters as built (after budget fitting)
    primary_metric TEXT,
    higher_is_better INTEGER,
    best_val REAL,                      -- best validation primary metric
    test TEXT,                          -- JSON: test metrics from the best checkpoint
    param_count INTEGER,
    train_examples INTEGER,
    steps INTEGER,                      -- optimizer steps taken
    samples INTEGER,                    -- training examples seen
    train_seconds REAL,                 -- training time, validation excluded
    steps_to_95 INTEGER,                -- until val primary first reached 95% of its own best
    samples_to_95 INTEGER,
    seconds_to_95 REAL,
    extras TEXT,                        -- JSON: task extras (e.g. the copy task's baseline)
    environment TEXT,                   -- JSON: versions, device, git commit, host
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS runs_cell ON runs (task, train_size, model);
CREATE TABLE IF NOT EXISTS curves (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    seconds REAL NOT NULL,
    train_loss REAL,
    val_primary REAL,
    val TEXT,                           -- JSON: every validation metric
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
"""

JSON_COLUMNS = ("config", "trial", "model_params", "test", "extras", "environment")


class StoreError(RuntimeError):
    """The database cannot be used; the message is one line for the user."""


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        if not path.exists():
            raise StoreError(f"no results database at {path}; run `bench run` first")
        # as_uri() percent-encodes the path: a raw '#' or '?' in it would cut the URI short and
        # open (even create) a different file, read-write.
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        version = None
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if has_meta:
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else None
        elif readonly or conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            # Read-only: an empty file has no runs table to read. Writable: never add our tables
            # to someone else's database.
            raise StoreError(f"{path} is not a seqbench results database")
    except StoreError:
        conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path} is not a readable SQLite database ({exc})") from None
    if version is not None and version > SCHEMA_VERSION:
        conn.close()
        raise StoreError(
            f"{path} has schema version {version}; this seqbench reads up to {SCHEMA_VERSION}"
        )
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        conn.commit()
    return conn


class Store:
    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self.conn = _connect(self.path, readonly)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self.conn:  # commits, or rolls back on any exception
            yield self.conn

    # ---- writing (parent process only)

    def add_matrix(self, matrix_id: str, request: dict, created_at: str) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR IGNORE INTO matrices VALUES (?, ?, ?)",
                (matrix_id, created_at, json.dumps(request, default=str)),
            )

    def mark_running(self, spec, started_at: str) -> None:
        """Note that a run was handed to a worker; a later launch redoes it unless it finished."""
        with self._tx() as c:
            c.execute(
                """INSERT INTO runs (run_id, matrix_id, model, task, kind, train_size, seed,
                       status, config, trial, started_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)
                   ON CONFLICT (run_id) DO UPDATE SET status='running', error=NULL,
                       matrix_id=excluded.matrix_id, started_at=excluded.started_at
                   WHERE runs.status != 'done'""",
                (
                    spec.run_id, spec.matrix_id, spec.model, spec.task, spec.kind,
                    spec.train_size, spec.seed, json.dumps(spec.config(), sort_keys=True),
                    json.dumps(spec.trial, sort_keys=True), started_at,
                ),
            )

    def forget_running(self, run_ids: Iterable[str]) -> None:
        """Drop runs still marked running (interrupted before they finished: nothing to keep)."""
        with self._tx() as c:
            c.executemany(
                "DELETE FROM runs WHERE run_id = ? AND status = 'running'", [(i,) for i in run_ids]
            )

    def save(self, record: dict) -> None:
        """Write one finished run (done / failed / diverged) and its curve, atomically."""
        if record["status"] not in STATUSES[1:]:
            raise ValueError(f"cannot save a run with status {record['status']!r}")
        # Only the table's own columns: a record may come from a third-party executor, and its
        # keys become SQL identifiers below.
        columns = {r[1] for r in self.conn.execute("PRAGMA table_info(runs)")}
        row = {k: v for k, v in record.items() if k in columns}
        for key in JSON_COLUMNS:
            if key in row and row[key] is not None:
                row[key] = json.dumps(row[key], sort_keys=True, default=str)
        cols = list(row)
        with self._tx() as c:
            done = c.execute(
                "SELECT status FROM runs WHERE run_id = ?", (row["run_id"],)
            ).fetchone()
            if done and done[0] == "done":
                return  # never overwrite a finished run
            c.execute("DELETE FROM runs WHERE run_id = ?", (row["run_id"],))
            c.execute(
                f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [row[k] for k in cols],
            )
            c.executemany(
                "INSERT INTO curves VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        row["run_id"], p["step"], p["samples"], p["seconds"], p.get("train_loss"),
                        p.get("val_primary"), json.dumps(p.get("val", {}), sort_keys=True),
                    )
                    for p in record.get("curve", [])
                ],
            )

    # ---- reading

    def status_of(self, run_ids: Iterable[str]) -> dict[str, str]:
        ids = list(run_ids)
        out: dict[str, str] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = f"SELECT run_id, status FROM runs WHERE run_id IN ({','.join('?' * len(chunk))})"
            out.update({r[0]: r[1] for r in self.conn.execute(q, chunk)})
        return out

    def runs(
        self,
        model: str | None = None,
        task: str | None = None,
        status: str | None = None,
        train_size: int | None = None,
        seed: int | None = None,
    ) -> list[dict[str, Any]]:
        where, args = [], []
        for col, val in (("model", model), ("task", task), ("status", status), ("seed", seed)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if train_size is not None:
            where.append("train_size = ?")
            args.append(train_size)
        sql = "SELECT * FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY task, model, train_size, seed, run_id"
        return [decode_row(r) for r in self.conn.execute(sql, args)]

    def curve(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT * FROM curves WHERE run_id = ? ORDER BY step", (run_id,)
        ).fetchall()
        return [dict(r) | {"val": json.loads(r["val"] or "{}")} for r in rows]

    def curves(self, run_ids: Iterable[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        wanted = None if run_ids is None else set(run_ids)
        for r in self.conn.execute(
            "SELECT run_id, step, samples, seconds, train_loss, val_primary FROM curves "
            "ORDER BY run_id, step"
        ):
            if wanted is None or r[0] in wanted:
                out.setdefault(r[0], []).append(dict(r))
        return out


def decode_row(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for key in JSON_COLUMNS:
        if out.get(key) is not None:
            out[key] = json.loads(out[key])
    if out.get("higher_is_better") is not None:
        out["higher_is_better"] = bool(out["higher_is_better"])
    out["params"] = {
        "model": (out.get("model_params") or (out.get("config") or {}).get("model_params")),
        "task": (out.get("config") or {}).get("task_params"),
        "training": (out.get("config") or {}).get("training"),
    }
    test = out.get("test") or {}
    out["primary_value"] = test.get(out.get("primary_metric")) if out.get("primary_metric") else None
    return out
