"""The results database: one SQLite file, WAL mode, written only by the parent process.

A run's record and its curve are written in one transaction, so a crash never leaves half a run.
A run that is ``done`` is never overwritten: the same configuration launched again is skipped.
Readers (``bench results``, the analysis, the dashboard) open the file read-only.

The file is in WAL mode while a launch has it open (readers never block the writer) and back in
rollback mode once the last writer closes it, so a read-only reader needs no ``-wal``/``-shm``
files and leaves none (a WAL file at rest from an older version is read immutable, for the same
reason). Any failure to open or read the file is a one-line :class:`StoreError`.

Several launches may share one file (on one machine, or on several over a shared file system):
a launch *claims* a run with a lease (``lease_owner``, ``lease_expires``) in one statement before
it trains it, renews its leases while the runs train, and skips runs under another launch's live
lease. A lease ends when it expires (its launch stopped renewing: killed, frozen, unplugged) or,
on the owner's own machine, as soon as the owner's process is gone. Every write transaction
starts with ``BEGIN IMMEDIATE`` and connections wait for locks (``busy_timeout``), so concurrent
launches queue for the write lock instead of failing with "database is locked".
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

DEFAULT_DB = "results/bench.sqlite"  # every command's --db default
SCHEMA_VERSION = 3
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
    step_flops INTEGER,                 -- FLOPs of one training step (forward + backward)
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
    finished_at TEXT,
    lease_owner TEXT,                   -- the launch training a 'running' run (see lease_owner())
    lease_expires REAL                  -- unix time; past it, another launch may take the run over
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
-- Gradient probes of runs trained with --probe-gradients (seqbench.experiment.probes), one JSON
-- object per run, apart from `runs` so that reading runs never drags the arrays along. Purely
-- additive: a file opened for writing gains the table; older readers ignore it, and readers
-- of files that predate it find no table and no probes (Store.gradients).
CREATE TABLE IF NOT EXISTS gradients (
    run_id TEXT PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE,
    data TEXT NOT NULL                  -- JSON: {"probes": [...], "grad_norm": {...}, ...}
);
"""

JSON_COLUMNS = ("config", "trial", "model_params", "test", "extras", "environment")
SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file

# Schema version -> statements that bring a database from the version before it up to it.
MIGRATIONS = {
    2: [  # leases, so that concurrent launches never train a run twice
        "ALTER TABLE runs ADD COLUMN lease_owner TEXT",
        "ALTER TABLE runs ADD COLUMN lease_expires REAL",
    ],
    3: [  # the cost of a step, so that "converges faster" can be paid for in FLOPs
        "ALTER TABLE runs ADD COLUMN step_flops INTEGER",
    ],
}


class StoreError(RuntimeError):
    """The database cannot be used; the message is one line for the user."""


class NotResultsDatabase(StoreError):
    """The file holds no seqbench tables: someone else's database, or (for a moment) one that
    another launch is creating."""


def _uri(path: Path, **query: str) -> str:
    # as_uri() percent-encodes the path: a raw '#' or '?' in it would cut the URI short and
    # open (even create) a different file, read-write.
    return path.resolve().as_uri() + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def _wal_at_rest(path: Path) -> bool:
    """A WAL-mode file with no ``-wal`` beside it: no connection has it open (a WAL connection
    keeps its log while open, and the last one to close removes it)."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError:
        return False
    wal = path.with_name(path.name + "-wal")
    return header[:16] == SQLITE_MAGIC and header[18:20] == b"\x02\x02" and not wal.exists()


SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's own files beside a database


def check_name(path: Path) -> None:
    """Refuse a database SQLite would confuse with another's side file, or whose side file is
    in fact a database: opening it would treat that file as a log and delete it."""
    if path.name.endswith(SIDE_FILES):
        raise StoreError(
            f"{path}: a database name must not end in -wal, -shm or -journal (SQLite keeps "
            f"{path.name.rsplit('-', 1)[0]}'s own files under such names and deletes them); "
            "choose another name")
    for suffix in ("-wal", "-journal"):
        side = path.with_name(path.name + suffix)
        try:
            with open(side, "rb") as f:
                is_db = f.read(16) == SQLITE_MAGIC
        except (OSError, ValueError):
            continue
        if is_db:
            raise StoreError(f"{side} is a database, not {path.name}'s log: SQLite would delete "
                             f"it on opening {path.name}; rename it first")


def _open(path: Path, readonly: bool) -> sqlite3.Connection:
    """The raw connection; any failure to open is a one-line StoreError."""
    try:
        check_name(path)
        if readonly:
            if not path.is_file():
                raise StoreError(f"no results database at {path}; run `bench run` first")
            # A read-only connection to a WAL-mode file creates -wal and -shm files beside it and
            # cannot remove them when it closes. A file at rest in WAL mode (written by an older
            # seqbench; this one returns files to rollback mode when it closes them) is opened
            # immutable instead: nobody is writing it, and a read takes milliseconds.
            query = {"mode": "ro", **({"immutable": "1"} if _wal_at_rest(path) else {})}
            return sqlite3.connect(_uri(path, **query), uri=True, timeout=30)
        if path.exists() and not path.is_file():
            raise StoreError(f"{path} is not a file")
        path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(path, timeout=30)
    except StoreError:
        raise
    except (OSError, sqlite3.Error, ValueError) as exc:  # ValueError: a NUL in the path
        reason = _not_a_folder(path) or getattr(exc, "strerror", None) or str(exc)
        raise StoreError(f"cannot open {path} ({reason})") from None


def _not_a_folder(path: Path) -> str | None:
    """'somefile is a file, not a folder' when a parent of ``path`` is a file."""
    try:
        for parent in path.parents:
            if parent.exists() and not parent.is_dir():
                return f"{parent} is a file, not a folder"
    except (OSError, ValueError):
        pass
    return None


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    conn = _open(path, readonly)
    conn.row_factory = sqlite3.Row
    conn.create_function("lease_free", 2, lease_free)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        version = None
        # One read, one snapshot: another launch may be creating the tables right now, and two
        # reads could see "no meta table" and then "some tables" (not ours, it would seem).
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "meta" in names:
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else None
        elif readonly or names:
            # Read-only: an empty file has no runs table to read. Writable: never add our tables
            # to someone else's database.
            raise NotResultsDatabase(f"{path} is not a seqbench results database")
    except StoreError:
        conn.close()
        raise
    except (sqlite3.Error, ValueError) as exc:  # ValueError: a schema_version that is no number
        conn.close()
        raise StoreError(f"{path} is not a readable SQLite database ({exc})") from None
    if version is not None and version > SCHEMA_VERSION:
        conn.close()
        raise StoreError(
            f"{path} has schema version {version}; this seqbench reads up to {SCHEMA_VERSION}"
        )
    if not readonly:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            if version is not None and version < SCHEMA_VERSION:
                with conn:
                    for step in range(version + 1, SCHEMA_VERSION + 1):
                        for statement in MIGRATIONS.get(step, []):
                            conn.execute(statement)
                    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                                 (str(SCHEMA_VERSION),))
            conn.executescript(SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            conn.commit()
        except sqlite3.Error as exc:  # a read-only file or folder, a full disk
            conn.close()
            raise StoreError(f"cannot write {path} ({exc})") from None
    return conn


# ---- leases (see seqbench.experiment.leases)

_HOST = socket.gethostname()
_ENDED: set[str] = set()  # owner ids of this process whose launch stage has ended


def lease_owner() -> str:
    """A new owner id for one launch stage: ``host:pid:nonce`` (the nonce tells stages of one
    process apart, and a reused pid from the process that had it)."""
    return f"{_HOST}:{os.getpid()}:{os.urandom(4).hex()}"


def end_lease_owner(owner: str) -> None:
    """The stage that owned ``owner`` is over: its leases are free at once."""
    _ENDED.add(owner)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: alive
    return True


def lease_free(owner: str | None, expires: float | None) -> bool:
    """Whether a running run's lease no longer holds: none, expired, ended in this process, or
    owned by a process of this machine that is gone. (Also an SQL function on every connection.)"""
    if owner is None or expires is None or expires < time.time():
        return True
    if owner in _ENDED:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return False  # another machine's launch: only its expiry frees the run
    pid = int(pid_text)
    return pid != os.getpid() and not _pid_alive(pid)


def _readable(method):
    """A damaged page shows only when a query reaches it: one line, not a traceback."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} could not be read ({exc})") from None
        except BadValue as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    return wrapper


class Store:
    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self.conn = _connect(self.path, readonly)

    def close(self) -> None:
        if not self.readonly:
            # Back to rollback mode when this is the last connection, so that readers opening the
            # file later (read-only) need no -wal/-shm files and leave none. With a reader or
            # another launch still connected the switch is refused at once and WAL stays.
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

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self.conn:  # commits, or rolls back on any exception
            # Take the write lock now (waiting for it): a deferred transaction that reads and
            # then writes fails with "database is locked" when another launch wrote in between.
            self.conn.execute("BEGIN IMMEDIATE")
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

    def claim(self, spec, started_at: str, owner: str, expires: float,
              retry_finished_before: str | None = None) -> bool:
        """Lease a run for ``owner`` before training it, in one statement; False when it is not
        to be trained here: done, under another launch's live lease, or failed/diverged (unless
        ``retry_finished_before``: then failed and diverged runs that finished before that time
        are claimed again, but not those another launch retried since)."""
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
                      OR (runs.status IN ('failed', 'diverged') AND runs.finished_at < ?)""",
                (
                    spec.run_id, spec.matrix_id, spec.model, spec.task, spec.kind,
                    spec.train_size, spec.seed, json.dumps(spec.config(), sort_keys=True),
                    json.dumps(spec.trial, sort_keys=True), started_at, owner, expires,
                    retry_finished_before or "",
                ),
            )
            return cursor.rowcount == 1

    def renew_leases(self, owner: str, expires: float) -> int:
        """Extend every lease ``owner`` holds on a running run (its heartbeat)."""
        with self._tx() as c:
            return c.execute(
                "UPDATE runs SET lease_expires = ? WHERE lease_owner = ? AND status = 'running'",
                (expires, owner),
            ).rowcount

    def leases(self, run_ids: Iterable[str]) -> dict[str, tuple[str | None, float | None]]:
        """``run_id -> (lease_owner, lease_expires)`` of the given runs still marked running."""
        ids = list(run_ids)
        out: dict[str, tuple[str | None, float | None]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = (
                "SELECT run_id, lease_owner, lease_expires FROM runs WHERE status = 'running' "
                f"AND run_id IN ({','.join('?' * len(chunk))})"
            )
            out.update({r[0]: (r[1], r[2]) for r in self.conn.execute(q, chunk)})
        return out

    def forget_running(self, run_ids: Iterable[str], owner: str | None = None) -> None:
        """Drop runs still marked running (interrupted before they finished: nothing to keep);
        with ``owner``, only those it still holds (another launch may have taken one over)."""
        with self._tx() as c:
            c.executemany(
                "DELETE FROM runs WHERE run_id = ? AND status = 'running'"
                + ("" if owner is None else " AND lease_owner IS ?"),
                [(i,) if owner is None else (i, owner) for i in run_ids],
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
            if record.get("gradients") is not None:
                c.execute(
                    "INSERT INTO gradients VALUES (?, ?)",
                    (row["run_id"], json.dumps(record["gradients"], default=str)),
                )

    # ---- reading

    @_readable
    def status_of(self, run_ids: Iterable[str]) -> dict[str, str]:
        ids = list(run_ids)
        out: dict[str, str] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = f"SELECT run_id, status FROM runs WHERE run_id IN ({','.join('?' * len(chunk))})"
            out.update({r[0]: r[1] for r in self.conn.execute(q, chunk)})
        return out

    @_readable
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

    @_readable
    def matrix(self, matrix_id: str) -> dict[str, Any] | None:
        """The request ``add_matrix`` stored under ``matrix_id``, or None."""
        row = self.conn.execute(
            "SELECT request FROM matrices WHERE matrix_id = ?", (matrix_id,)
        ).fetchone()
        return _loads(row[0], f"matrix {matrix_id!r}", "request", dict) if row else None

    @_readable
    def curve(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT * FROM curves WHERE run_id = ? ORDER BY step", (run_id,)
        ).fetchall()
        _check_curve_numbers(self.conn, "WHERE run_id = ?", (run_id,))
        return [dict(r) | {"val": _loads(r["val"] or "{}", f"run {run_id!r}", "curves.val", dict)}
                for r in rows]

    @_readable
    def curves(self, run_ids: Iterable[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        wanted = None if run_ids is None else set(run_ids)
        _check_curve_numbers(self.conn)
        for r in self.conn.execute(
            "SELECT run_id, step, samples, seconds, train_loss, val_primary FROM curves "
            "ORDER BY run_id, step"
        ):
            if wanted is None or r[0] in wanted:
                out.setdefault(r[0], []).append(dict(r))
        return out


    @_readable
    def gradients(self, run_ids: Iterable[str] | None = None) -> dict[str, dict]:
        """``run_id -> gradient probes`` of the runs that have them (all, or ``run_ids``)."""
        if not self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='gradients'"
        ).fetchone():
            return {}  # a file from before probes, opened read-only
        if run_ids is None:
            rows = self.conn.execute("SELECT run_id, data FROM gradients").fetchall()
        else:
            ids, rows = list(run_ids), []
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                rows += self.conn.execute(
                    f"SELECT run_id, data FROM gradients WHERE run_id IN "
                    f"({','.join('?' * len(chunk))})", chunk,
                ).fetchall()
        return {r[0]: _loads(r[1], f"run {r[0]!r}", "gradients.data", dict) for r in rows}


class BadValue(StoreError):
    """A stored value of the wrong type (a file edited by hand, or by another program)."""


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
    text = repr(value)  # repr: control characters escaped, one line
    return text if len(text) <= 40 else text[:37] + "..."


def _loads(text: Any, owner: str, column: str, kind: type | tuple = object) -> Any:
    """JSON from a stored column, or a BadValue naming the owner and the column."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise BadValue(f"{owner}: column {column!r} holds {_shown(text)}, not JSON") from None
    if not isinstance(value, kind):
        raise BadValue(f"{owner}: column {column!r} holds {_shown(text)}, not a JSON object")
    return value


def _check_curve_numbers(conn: sqlite3.Connection, where: str = "", args: tuple = ()) -> None:
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


def decode_row(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    owner = f"run {_shown(out.get('run_id'))}"
    for key, (types, required) in _COLUMN_TYPES.items():
        value = out.get(key)
        if value is None and not required:
            continue
        if not isinstance(value, types) or (types == _NUMBER and isinstance(value, bool)):
            raise BadValue(f"{owner}: column {key!r} holds {_shown(value)}, not "
                           f"{_TYPE_WORDS[types]}")
    if out["status"] not in STATUSES:
        raise BadValue(f"{owner}: column 'status' holds {_shown(out['status'])}, not one of "
                       f"{', '.join(STATUSES)}")
    for key in JSON_COLUMNS:
        if out.get(key) is not None:
            out[key] = _loads(out[key], owner, key, dict if key == "config" else (dict, type(None)))
    if out.get("higher_is_better") is not None:
        out["higher_is_better"] = bool(out["higher_is_better"])
    out["params"] = {
        "model": (out.get("model_params") or (out.get("config") or {}).get("model_params")),
        "task": (out.get("config") or {}).get("task_params"),
        "training": (out.get("config") or {}).get("training"),
    }
    test = out.get("test") or {}
    out["primary_value"] = test.get(out.get("primary_metric")) if out.get("primary_metric") else None
    if out["primary_value"] is not None and (not isinstance(out["primary_value"], _NUMBER)
                                             or isinstance(out["primary_value"], bool)):
        raise BadValue(f"{owner}: column 'test' holds {_shown(out['primary_value'])} for "
                       f"{out['primary_metric']!r}, not a number")
    return out
