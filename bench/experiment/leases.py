"""Leases: launches that share one database never train a run twice.

A launch claims a run before training it (:meth:`Store.claim`, one statement); a heartbeat
renews its leases every quarter of their length, so a launch that stops (``kill -9``, a frozen
machine) loses its runs when their leases expire, or at once on its own machine when its process
is gone. ``SEQBENCH_LEASE_SECONDS`` (default 60) bounds how long a dead launch's run waits;
clocks of machines sharing a database must agree to well within it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time

from ..util import now
from ..store import Store, end_lease_owner, lease_free, lease_owner

DEFAULT_SECONDS = 60.0


def lease_seconds() -> float:
    value = os.environ.get("SEQBENCH_LEASE_SECONDS", "")
    try:
        seconds = float(value) if value else DEFAULT_SECONDS
    except ValueError:
        seconds = DEFAULT_SECONDS
    return max(seconds, 0.5)


class Leases:
    """One launch stage's leases: claim runs, keep them alive, wait for other launches' runs.

    Use as a context manager: the heartbeat runs inside it, and the owner id ends with it.
    """

    def __init__(self, db_path, seconds: float | None = None):
        self.path = db_path
        self.seconds = seconds or lease_seconds()
        self.owner = lease_owner()
        # --retry-failed retries failures recorded by this moment, not those another launch
        # that is retrying them too records while this one runs. Times are whole seconds: one
        # stored in this very second counts (a retry asked for at once is never skipped; at
        # worst two retrying launches started together both redo it).
        self.since = now()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Leases":
        self._thread = threading.Thread(target=self._beat, name="seqbench-lease-heartbeat",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        end_lease_owner(self.owner)

    def _expiry(self) -> float:
        return time.time() + self.seconds

    def _beat(self) -> None:
        # SQLite connections belong to one thread: the heartbeat has its own.
        store = Store(self.path)
        try:
            while not self._stop.wait(self.seconds / 4):
                try:
                    store.renew_leases(self.owner, self._expiry())
                except sqlite3.Error:
                    pass  # three more beats before the lease runs out; the next one retries
        finally:
            store.close()

    def claim(self, store: Store, spec, retry_failed: bool) -> str:
        """``"claimed"`` (train it), ``"finished"`` (another launch just stored it) or ``"held"``
        (another launch is training it)."""
        if store.claim(spec, now(), self.owner, self._expiry(),
                       self.since if retry_failed else None):
            return "claimed"
        status = store.status_of([spec.run_id]).get(spec.run_id)
        return "held" if status == "running" else "finished"

    def held_elsewhere(self, store: Store, run_ids) -> set[str]:
        """Of these runs, those under another launch's live lease."""
        return {
            run_id for run_id, (owner, expires) in store.leases(run_ids).items()
            if owner != self.owner and not lease_free(owner, expires)
        }

    def wait(self, store: Store, run_ids: set[str]) -> tuple[set[str], set[str]]:
        """Block until some of these runs (held by other launches) change: returns
        ``(finished, free)``: stored by their launch, or left by it (lease expired: ours now to
        claim)."""
        poll = min(2.0, self.seconds / 4)
        while True:
            status = store.status_of(run_ids)
            held = self.held_elsewhere(store, run_ids)
            finished = {i for i in run_ids if status.get(i) not in (None, "running")}
            free = set(run_ids) - finished - held
            if finished or free:
                return finished, free
            time.sleep(poll)
