"""The results database: one SQLite file, WAL mode, written only by the parent process.

Readers (``bench results``, the analysis, the dashboard) open the file read-only. Several
launches may share one file (on one machine, or on several over a shared file system): a launch
claims a run with a lease before it trains it (:mod:`.leases`). Any failure to open or read the
file is a one-line :class:`StoreError`.

``schema`` holds the tables, ``files`` opens them, ``rows`` maps a row to a
:class:`~seqbench.records.RunRecord` and back, ``database`` is the :class:`Store` itself.
"""

from __future__ import annotations

from ..records import STATUSES
from .database import Store
from .errors import BadValue, NotResultsDatabase, StoreError
from .files import check_name, not_a_folder
from .leases import end_lease_owner, lease_free, lease_owner
from .schema import DEFAULT_DB, JSON_COLUMNS, SCHEMA_VERSION, SIDE_FILES, SQLITE_MAGIC

__all__ = [
    "BadValue", "DEFAULT_DB", "JSON_COLUMNS", "NotResultsDatabase", "SCHEMA_VERSION",
    "SIDE_FILES", "SQLITE_MAGIC", "STATUSES", "Store", "StoreError", "check_name",
    "end_lease_owner", "lease_free", "lease_owner", "not_a_folder",
]
