"""The store's errors: each message is one line for the user."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The database cannot be used; the message is one line for the user."""


class NotResultsDatabase(StoreError):
    """The file holds no seqbench tables: someone else's database, or (for a moment) one that
    another launch is creating."""


class BadValue(StoreError):
    """A stored value of the wrong type (a file edited by hand, or by another program)."""
