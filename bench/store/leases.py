"""Who holds a running run: a launch claims it with a lease (owner, expiry) before training it.

A lease ends when it expires (its launch stopped renewing: killed, frozen, unplugged) or, on the
owner's own machine, as soon as the owner's process is gone.
"""

from __future__ import annotations

import os
import socket
import time

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
