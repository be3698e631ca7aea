"""Small helpers every layer shares: timestamps, one-line errors, names the user may have meant."""

from __future__ import annotations

import difflib
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence


def now() -> str:
    """The current UTC time as stored with runs and reports (ISO 8601, whole seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def one_line(exc: BaseException, *, typed: bool = True) -> str:
    """``"TypeName: first line of the message"``, or the type name alone for an empty message.

    ``typed=False`` leaves the type name out when there is a message (one that already says what
    went wrong, e.g. a data set hub's).
    """
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    return f"{type(exc).__name__}: {lines[0]}" if typed else lines[0]


def shown(value: Any, width: int = 60) -> str:
    """``repr(value)`` cut to ``width`` characters, for error messages about user input."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print (Python's 4300-digit limit)
        return "a number too long to print"
    return text if len(text) <= width else text[: width - 3] + "..."


def did_you_mean(name: str, choices: Sequence[str] | Mapping[str, Any]) -> str:
    """`` (available: a, b); did you mean 'a'?`` to end an unknown-name error."""
    names = sorted(choices)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f" (available: {', '.join(names) or 'none'}){hint}"

