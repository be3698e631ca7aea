"""``bench merge``: results databases from machines that share no file system, united in one."""

from __future__ import annotations

import click

from .common import check_out, fail


@click.command("merge")
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--into", required=True, type=click.Path(dir_okay=False),
              help="The merged database to write (a new file).")
@click.option("--force", is_flag=True, help="Let --into replace an existing file.")
def merge(sources, into, force):
    """Merge results databases into one, runs united by run id.

    Identical copies of a run collapse into one. Copies with different results are conflicts:
    each is reported by run id, the runs table keeps one (a finished run over a failed one, else
    the first database's) and the other copies are kept in full in the table merge_conflicts.
    Runs still marked running are not merged. Databases of different schema versions are refused.
    """
    from ..transfer import MergeError, merge as unite
    from ..store import StoreError

    check_out(into, None, force, lambda path: False, "merged database")
    try:
        report = unite(sources, into)
    except (MergeError, StoreError) as exc:
        fail(str(exc))
    for c in report.conflicts:
        click.echo(f"conflict: run {c.run_id} differs between {c.kept} and {c.other} "
                   f"({', '.join(c.differs)}); runs keeps {c.kept}'s copy, merge_conflicts "
                   f"{c.other}'s", err=True)
    skipped = (f"; {report.running_skipped} runs still marked running not merged"
               if report.running_skipped else "")
    click.echo(f"merged {len(sources)} databases into {into}: {report.runs} runs, "
               f"{report.duplicates} identical duplicates collapsed, {len(report.conflicts)} "
               f"conflicts kept side by side{skipped}", err=True)
