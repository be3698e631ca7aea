"""Opening the database file: one-line errors, our tables only, migrations, journal modes.

The file is in WAL mode while a launch has it open (readers never block the writer) and back in
rollback mode once the last writer closes it, so a read-only reader needs no ``-wal``/``-shm``
files and leaves none.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .errors import NotResultsDatabase, StoreError
from .leases import lease_free
from .schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, SIDE_FILES, SQLITE_MAGIC


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


def not_a_folder(path: Path) -> str | None:
    """'somefile is a file, not a folder' when a parent of ``path`` is a file, else None."""
    try:
        for parent in Path(path).parents:
            if parent.exists() and not parent.is_dir():
                return f"{parent} is a file, not a folder"
    except (OSError, ValueError):
        pass
    return None


def _open(path: Path, readonly: bool) -> sqlite3.Connection:
    """The raw connection; any failure to open is a one-line StoreError."""
    try:
        check_name(path)
        if readonly:
            if not path.is_file():
                raise StoreError(f"no results database at {path}; run `bench run` first")
            # read-only on a WAL file would leave -wal/-shm behind: a file at rest (from an
            # older seqbench) is opened immutable instead, nobody is writing it
            query = {"mode": "ro", **({"immutable": "1"} if _wal_at_rest(path) else {})}
            return sqlite3.connect(_uri(path, **query), uri=True, timeout=30)
        if path.exists() and not path.is_file():
            raise StoreError(f"{path} is not a file")
        path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(path, timeout=30)
    except StoreError:
        raise
    except (OSError, sqlite3.Error, ValueError) as exc:  # ValueError: a NUL in the path
        reason = not_a_folder(path) or getattr(exc, "strerror", None) or str(exc)
        raise StoreError(f"cannot open {path} ({reason})") from None


def _schema_version(conn: sqlite3.Connection, path: Path, readonly: bool) -> int | None:
    """The file's schema version; None for an empty file opened for writing."""
    # One read, one snapshot: another launch may be creating the tables right now, and two
    # reads could see "no meta table" and then "some tables" (not ours, it would seem).
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    if "meta" in names:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else None
    if readonly or names:
        # read-only: no runs table to read; writable: never add our tables to another's database
        raise NotResultsDatabase(f"{path} is not a seqbench results database")
    return None


def _migrate(conn: sqlite3.Connection, path: Path, version: int | None) -> None:
    """WAL mode, the migrations from ``version`` up, and the tables a newer version added."""
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
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                     (str(SCHEMA_VERSION),))
        conn.commit()
    except sqlite3.Error as exc:  # a read-only file or folder, a full disk
        conn.close()
        raise StoreError(f"cannot write {path} ({exc})") from None


def connect(path: Path, readonly: bool) -> sqlite3.Connection:
    """A connection to a results database, migrated to this version when writable."""
    conn = _open(path, readonly)
    conn.row_factory = sqlite3.Row
    conn.create_function("lease_free", 2, lease_free)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        version = _schema_version(conn, path, readonly)
    except StoreError:
        conn.close()
        raise
    except (sqlite3.Error, ValueError) as exc:  # ValueError: a schema_version that is no number
        conn.close()
        raise StoreError(f"{path} is not a readable SQLite database ({exc})") from None
    if version is not None and version > SCHEMA_VERSION:
        conn.close()
        raise StoreError(
            f"{path} has schema version {version}; this seqbench reads up to {SCHEMA_VERSION}")
    if not readonly:
        _migrate(conn, path, version)
    return conn
