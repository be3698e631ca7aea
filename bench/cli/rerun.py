"""``bench rerun RUN_ID``: train a stored run again from its configuration and compare."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from ..api import PluginError
from ..records import RunRecord
from ..store import DEFAULT_DB
from .common import console, database_file, fail


@click.command()
@click.argument("run_id")
@click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False),
              help="The results database holding the run (opened read-only).")
@click.option("--scratch", type=click.Path(dir_okay=False),
              help="Keep the fresh run in this database (default: a temporary one, removed).")
@click.option("--tolerance", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              help="Largest primary-metric gap accepted when the build differs.")
def rerun(run_id, db, scratch, tolerance):
    """Retrain one stored run from its stored configuration and check its numbers.

    Exact on the same CPU build (same torch, Python, platform, device and thread count); within
    --tolerance on the primary test metric elsewhere. Exit 0 when they match, 1 when they do not.
    """
    from ..experiment.rerun import compare, find_run, spec_from_record
    from ..store import Store, StoreError

    if scratch and database_file(Path(scratch), db) is not None:
        fail("--scratch must not be the database the run comes from (nor a link to it)")
    try:
        with Store(db, readonly=True) as store:
            stored = find_run(store.runs(), run_id)
            spec = spec_from_record(stored)
            stored.curve = store.curve(stored.run_id)
    except (StoreError, PluginError) as exc:
        fail(str(exc))
    if stored.status == "running":
        fail(f"run {stored.run_id} is still running (or was interrupted): nothing to compare")
    try:
        from ..registry import registry

        registry().model(spec.model), registry().task(spec.task)
    except PluginError as exc:
        fail(f"cannot rerun {stored.run_id}: {exc}")

    from ..analysis.display import markup_escape

    out = console()
    out.print(f"retraining {spec.model} x {spec.task} n={spec.train_size or 'full'} "
              f"seed={spec.seed} ({markup_escape(stored.run_id)}) from its stored configuration")
    with tempfile.TemporaryDirectory(prefix="seqbench-rerun-") as tmp:
        target = Path(scratch) if scratch else Path(tmp) / "rerun.sqlite"
        try:
            scratch_store = Store(target)
        except StoreError as exc:
            fail(str(exc))
        from ..experiment.runner import execute

        # The stored run's thread count: a different one changes the order of floating-point
        # sums inside matrix products, and with it the last bits of every number.
        threads = (stored.environment or {}).get("torch_threads")
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        fresh = RunRecord.from_dict(execute(spec))  # the runner hands back an executor's dict
        with scratch_store:
            scratch_store.save(fresh)
    result = compare(stored, fresh, tolerance)
    _print(out, stored, fresh, result)
    if scratch:
        out.print(f"the fresh run is in {scratch}")
    sys.exit(0 if result.verdict != "differs" else 1)


def _print(out, stored: RunRecord, fresh: RunRecord, result) -> None:
    from rich.table import Table

    from ..analysis.display import literal, markup_escape

    table = Table(title=literal(f"run {stored.run_id}: stored vs retrained"),
                  title_justify="left")
    for col in ("metric", "stored", "retrained", "difference"):
        table.add_column(col)
    for name, a, b in result.metrics:
        gap = "" if a is None or b is None else f"{b - a:+.6g}"
        table.add_row(literal(name), _fmt(a), _fmt(b), gap)
    out.print(table)
    build = "the same build" if result.same_build else "a different build"
    if stored.status != fresh.status:
        out.print(f"[red]differs[/red]: stored {stored.status}, retrained "
                  f"{fresh.status} {markup_escape(fresh.error or '')}".rstrip())
    elif result.verdict == "identical":
        out.print(f"[green]identical[/green] ({build})")
    elif result.verdict == "within tolerance":
        out.print(f"[yellow]within tolerance[/yellow]: {build}, primary metric off by "
                  f"{result.primary_gap:.4g} <= {result.tolerance:g}")
    else:
        why = ("the same build must reproduce it exactly" if result.same_build
               else f"primary metric off by more than {result.tolerance:g}")
        out.print(f"[red]differs[/red] ({build}: {why})")


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.6g}"
