"""What every command shares: the one-line usage error, the console, the registry, option parsing.

Every command module imports this one and no other command module.
"""

from __future__ import annotations

import sys

import click

from ..api import PluginError


class UserError(click.ClickException):
    """One line on stderr, exit 2, nothing written."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def fail(message: str) -> None:
    raise UserError(message)


def load_registry():
    from ..registry import registry

    try:
        return registry()
    except PluginError as exc:
        fail(str(exc))


def console():
    from rich.console import Console

    # Piped to a file or a CI log, rich would assume 80 columns and cut the tables' cells.
    return Console() if sys.stdout.isatty() else Console(width=160)


def warn_broken(reg) -> None:
    for b in reg.broken:
        click.echo(f"warning: plugin {b.plugin!r} ({b.source}) was not loaded: {b.error}", err=True)


def parse_pairs(text: str):
    """'all' or 'a:b,c:d' -> 'all' or [(a, b), (c, d)]; ValueError with a message otherwise."""
    text = text.strip()
    if text == "all":
        return "all"
    pairs = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        parts = [p.strip() for p in item.split(":")]
        if len(parts) != 2 or not all(parts):
            raise ValueError(
                f"--pairs: {item!r} is not MODEL:MODEL (e.g. lstm:transformer) or 'all'")
        if parts[0] == parts[1]:
            raise ValueError(f"--pairs: {item!r} compares a model with itself")
        pairs.append(tuple(parts))
    if not pairs:
        raise ValueError("--pairs: give MODEL:MODEL pairs separated by commas, or 'all'")
    return pairs
