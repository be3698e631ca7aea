"""Reading the results database for the page: read-only, one transaction, one-line errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..records import Curves, RunRecord


def read_database(path: Path) -> tuple[list[RunRecord], Curves]:
    """All runs and all curves, in one read transaction so that they agree.

    Raises ``StoreError`` (one line) when the file is missing or not a results database."""
    from ..store import Store, StoreError

    try:
        store = Store(path, readonly=True)
    except sqlite3.Error as exc:
        raise StoreError(f"{path} cannot be opened read-only ({exc})") from None
    try:
        conn = store.conn
        conn.execute("BEGIN")
        try:
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            if "runs" not in tables:
                return [], {}
            runs = store.runs()
            curves = store.curves() if "curves" in tables else {}
        finally:
            conn.rollback()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a readable results database ({exc})") from None
    finally:
        store.close()
    return runs, curves


def check_database(path: Path) -> None:
    """Raise ``StoreError`` with one line if ``path`` cannot be read as a results database."""
    from ..store import Store, StoreError

    try:
        with Store(path, readonly=True) as store:
            tables = {r[0] for r in store.conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            if "runs" in tables:
                store.conn.execute("SELECT run_id, status FROM runs LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"{path} is not a readable results database ({exc})") from None
