"""``bench results``: the stored runs as a table, JSON or CSV."""

from __future__ import annotations

import click

from ..store import DEFAULT_DB, STATUSES
from .common import SEED, TRAIN_SIZE, console, fail


@click.command()
@click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False))
@click.option("--model")
@click.option("--task")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--train-size", type=TRAIN_SIZE)
@click.option("--seed", type=SEED)
@click.option("--json", "as_json", is_flag=True, help="Print the records as a JSON list.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the records as CSV.")
def results(db, model, task, status, train_size, seed, as_json, as_csv):
    """Show stored runs."""
    from ..store import Store, StoreError

    if as_json and as_csv:
        fail("give --json or --csv, not both")
    try:
        with Store(db, readonly=True) as store:
            rows = store.runs(model=model, task=task, status=status, train_size=train_size, seed=seed)
            # JSON carries each run's gradient probes (null without --probe-gradients)
            gradients = store.gradients(r.run_id for r in rows) if as_json else None
    except StoreError as exc:
        fail(str(exc))
    from ..analysis.tables import print_runs, runs_csv, runs_json

    if as_json:
        click.echo(runs_json(rows, gradients))
    elif as_csv:
        click.echo(runs_csv(rows), nl=False)
    else:
        print_runs(rows, console())
