"""What every command shares: the one-line usage error, the console, the registry, option parsing.

Every command module imports this one and no other command module.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Callable

import click

from ..api import PluginError
from ..limits import MAX_SEED, MAX_TRAIN_SIZE


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


def console(stderr: bool = False):
    """A rich console that prints stored text as data: control characters in any text it is
    given are dropped (its own colours and cursor moves are not text and stay)."""
    from rich.console import Console
    from rich.segment import Segment

    from ..analysis.display import plain

    class DataConsole(Console):
        def _render_buffer(self, buffer):
            return super()._render_buffer(
                seg if seg.control else Segment(plain(seg.text), seg.style, seg.control)
                for seg in buffer)

    # Piped to a file or a CI log, rich would assume 80 columns and cut the tables' cells.
    tty = (sys.stderr if stderr else sys.stdout).isatty()
    return DataConsole(stderr=stderr) if tty else DataConsole(stderr=stderr, width=160)


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


# --------------------------------------------------------------------------------------------
# Option types with the bounds every command shares


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses nan and inf (nan passes every comparison)."""

    def convert(self, value, param, ctx):
        out = super().convert(value, param, ctx)
        if not math.isfinite(out):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return out


SEED = click.IntRange(0, MAX_SEED)  # numpy's seed range, as `bench run --seeds`
TRAIN_SIZE = click.IntRange(1, MAX_TRAIN_SIZE)


# --------------------------------------------------------------------------------------------
# Output files: never the database, never someone else's file


def _same_file(a: Path, b: Path) -> bool:
    """The same file by any path: symbolic links, '..', hard links."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)  # hard links too
    except (OSError, ValueError):
        return False


def database_file(path: Path, db: str) -> str | None:
    """Which file of the database ``db`` ``path`` is, by any name: "" for the database itself,
    "-wal", "-shm" or "-journal" for SQLite's files beside it; None for none of them."""
    from ..store import SIDE_FILES

    dbp = Path(db)
    names = ("", *SIDE_FILES)
    return next((s for s in names if _same_file(path, dbp.with_name(dbp.name + s))), None)


def _head(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def check_out(out: str, db: str | None, force: bool, is_previous: Callable[[Path], bool],
              what: str, option: str = "--out", can_force: bool = True) -> Path:
    """Refuse an output path that would destroy data, before anything is computed.

    The results database (or its -wal/-shm/-journal files) is refused outright. An existing
    SQLite file, or any existing file that is not ``is_previous`` (an earlier output of the same
    command, which is simply replaced), needs ``--force`` (where ``can_force``).
    """
    path = Path(out)
    flag = f"{option} {out}"
    remedy = "(--force replaces it)" if can_force else "(remove it first, or choose another file)"
    suffix = None if db is None else database_file(path, db)
    if suffix is not None:
        fail(f"{flag} is the results database{suffix and ' ' + suffix[1:] + ' file'}"
             f" ({db}); write the {what} to another file")
    try:
        exists = path.exists()
        is_dir = path.is_dir()
        special = exists and not is_dir and not path.is_file()
    except (OSError, ValueError) as exc:
        fail(f"{flag}: {getattr(exc, 'strerror', None) or exc}")
    if is_dir:
        fail(f"{flag} is a folder; give a file name")
    if special:  # a named pipe or a device: writing it would block or reach hardware
        fail(f"{flag} is not a regular file; give a file name")
    if not exists:
        _check_writable(path, flag)
        return path
    if force and can_force:
        return path
    from ..store import SQLITE_MAGIC

    if _head(path, 16) == SQLITE_MAGIC:
        fail(f"{flag} is an SQLite database; refusing to overwrite it {remedy}")
    if not is_previous(path):
        fail(f"{flag} exists and is not an earlier {what}; refusing to overwrite it {remedy}")
    return path


def _check_writable(path: Path, flag: str) -> None:
    """Fail now, not after the work, when ``path`` cannot be created (a file where a folder
    should be, /proc, a read-only folder): a file is created beside it and removed at once."""
    import tempfile

    from ..store import not_a_folder

    reason = not_a_folder(path)
    if reason is None:
        folder = next((p for p in path.absolute().parents if p.exists()), None)
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".seqbench-probe-"):
                return
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
    fail(f"{flag}: cannot write there ({reason})")


def previous_report(path: Path) -> bool:
    """An earlier HTML report of seqbench: an HTML file whose title says so, near its top."""
    head = _head(path, 4096)
    return head.lstrip().lower().startswith(b"<!doctype html>") and (
        b"<title>seqbench report</title>" in head
    )


def write_out(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file, then a rename): an error leaves
    the old file, if any, as it was. One-line error on failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:
        from ..store import not_a_folder

        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        fail(f"cannot write {path} ({not_a_folder(path) or getattr(exc, 'strerror', None) or exc})")

