"""``bench dashboard`` and ``bench report`` .

Imports stay lazy: the server, numpy and plotly load only when a command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..limits import MAX_BOOTSTRAP
from ..store import DEFAULT_DB
from .common import check_out, parse_pairs, previous_report, write_out
from .common import fail as _fail


def _options(pairs: str, n_boot: int) -> dict:
    parsed = "auto"  # every pair of the models present, lstm:transformer first (as bench analyze)
    if pairs:
        try:
            parsed = parse_pairs(pairs)
        except ValueError as exc:
            _fail(str(exc))
    return {"pairs": parsed, "n_boot": n_boot}


def _check_db(db: Path, missing_ok: bool) -> None:
    """A file that exists but is not a readable results database, or has damaged pages: one
    line, exit 2 (``PRAGMA quick_check`` reads every page: milliseconds for a results file)."""
    from ..dashboard.data import check_database
    from ..store import Store, StoreError

    if not db.exists():
        if missing_ok:
            return
        _fail(f"no results database at {db}; run `bench run` first (e.g. `bench run --preset quick`)")
    try:
        check_database(db)
        with Store(db, readonly=True) as store:
            store.check()
    except StoreError as exc:
        _fail(str(exc))


_common = [
    click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False),
                 help="The results database (opened read-only)."),
    click.option("--pairs", default=None,
                 help="Model pairs to compare: 'a:b,c:d' or 'all' (default: every pair of the "
                      "models present, lstm:transformer first, as `bench analyze`)."),
    click.option("--n-boot", type=click.IntRange(100, MAX_BOOTSTRAP), default=2000,
                 show_default=True,
                 help="Bootstrap resamples for the CIs (as `bench analyze --bootstrap`)."),
]


def _with_common(f):
    for opt in reversed(_common):
        f = opt(f)
    return f


@click.command("dashboard")
@_with_common
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback exposes your results to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port to listen on; 0 picks a free one.")
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
def dashboard(db, pairs, n_boot, host, port, verbose):
    """Serve a local web page over the results, live while a matrix runs (Ctrl-C stops it).

    A database that does not exist yet is fine: the page shows how to start a matrix and picks
    the file up when it appears. One that exists but cannot be read is an error.
    """
    db = Path(db)
    _check_db(db, missing_ok=True)
    options = _options(pairs, n_boot)
    from ..dashboard.server import make_server, serve

    try:
        server = make_server(db, host=host, port=port, quiet=not verbose, **options)
    except (OSError, ValueError) as exc:  # ValueError: a host name that is no name at all
        _fail(f"cannot listen on {host}:{port} ({getattr(exc, 'strerror', None) or exc})")
    except RuntimeError as exc:  # plotly missing
        _fail(str(exc))
    where = "" if db.exists() else " (not there yet: the page shows how to start a matrix)"
    click.echo(f"seqbench dashboard: {server.url}")
    click.echo(f"reading {db}{where}, read-only; Ctrl-C stops the server", err=True)
    serve(server)
    click.echo("dashboard stopped", err=True)


@click.command("report")
@click.option("--out", default="report.html", show_default=True, type=click.Path(dir_okay=False),
              help="The HTML file to write.")
@click.option("--force", is_flag=True,
              help="Let --out replace an existing file that is not an earlier report.")
@_with_common
def report(out, force, db, pairs, n_boot):
    """Write the dashboard as one self-contained HTML file (works offline, from file://).

    --out is never the database, and an existing file that is not an earlier report is replaced
    only with --force.
    """
    path = check_out(out, db, force, previous_report, "report")
    db = Path(db)
    _check_db(db, missing_ok=False)
    options = _options(pairs, n_boot)
    from ..dashboard.report import build_report

    try:
        html, summary = build_report(db, **options)
    except OSError as exc:
        _fail(f"cannot build the report ({exc.strerror or exc})")
    except RuntimeError as exc:
        _fail(str(exc))
    if summary["status"] == "error":  # the file changed under us: write nothing
        _fail(summary["message"])
    write_out(path, html)
    size = path.stat().st_size / 1e6
    n = len(summary.get("rows", []))
    extra = "" if n else " (no runs yet: it shows how to start a matrix)"
    click.echo(f"wrote {out}: {n} runs, {size:.1f} MB{extra}")



