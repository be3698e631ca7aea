"""``bench export``: a results database as flat files that pandas, DuckDB or a spreadsheet read.

Imports stay lazy: pandas and pyarrow load only when the command runs.
"""

from __future__ import annotations

import click

from ..store import DEFAULT_DB
from .common import check_out, fail


@click.command("export")
@click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False),
              help="The results database (opened read-only).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The runs file, .parquet or .csv; the curves go beside it "
                   "(study.parquet -> study.curves.parquet).")
@click.option("--force", is_flag=True,
              help="Let the files replace existing ones that are not earlier exports.")
def export(db, out, force):
    """Write the runs, one flat column per hyperparameter, test metric and cost, and the
    validation curves, one row per run and step, as Parquet (or CSV)."""
    from ..library import StudyError, export as write, export_paths, is_export
    from ..store import StoreError

    try:
        paths = export_paths(out)
    except StudyError as exc:
        fail(f"--out {exc}")
    for path in paths:  # before any work: never the database, never someone else's file
        check_out(str(path), db, force, is_export, "export")
    try:
        runs, curves = write(db, out)
    except (StoreError, StudyError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out} ({exc.strerror or exc})")
    click.echo(f"wrote {runs} (runs) and {curves} (curves)", err=True)
