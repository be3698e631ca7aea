"""Launching a plan: skip what is done, hand the rest to an executor, store what comes back.

Only this (parent) process writes the database. A configuration whose run is ``done`` is never
run again; one left ``running`` by a killed launch, or ``failed``/``diverged``, is run again.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from .plan import Matrix, Plan
from .runner import now
from .store import Store, StoreError


def launch(plan: Plan, matrix: Matrix, db: Path, executor_factory, workers: int, console) -> int:
    """Run what is missing; print progress and a summary. Returns the number of failed runs."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    try:
        store = Store(db)
    except StoreError as exc:
        from .cli import fail

        fail(str(exc))
    with store:
        store.add_matrix(plan.matrix_id, asdict(matrix), now())
        status = store.status_of(r.run_id for r in plan.runs)
        todo = [r for r in plan.runs if status.get(r.run_id) != "done"]
        done_before = len(plan.runs) - len(todo)
        interrupted = sum(status.get(r.run_id) == "running" for r in todo)
        if done_before:
            console.print(f"{done_before} of {len(plan.runs)} runs already done in {db}; skipping them")
        if interrupted:
            console.print(f"{interrupted} runs were left unfinished by an earlier launch; redoing them")
        counts = {"done": 0, "failed": 0, "diverged": 0}
        by_id = {r.run_id: r for r in todo}

        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[last]}"), console=console,
            transient=False,
        ) as progress:
            bar = progress.add_task("matrix", total=len(todo), last="")

            def on_start(spec: dict) -> None:
                store.mark_running(by_id[_id(spec)], now())

            def on_record(record: dict) -> None:
                store.save(record)
                counts[record["status"]] += 1
                test = record.get("test") or {}
                value = test.get(record.get("primary_metric") or "", None)
                last = f"{record['model']} x {record['task']} n={record['train_size'] or 'full'} " \
                       f"seed={record['seed']}: {record['status']}" + (
                           f" {record['primary_metric']}={value:.3f}" if value is not None else "")
                progress.update(bar, advance=1, last=last)

            executor = executor_factory(workers)
            executor.run([r.to_dict() for r in todo], on_start, on_record)

        console.print(
            f"{counts['done']} done, {counts['diverged']} diverged, {counts['failed']} failed "
            f"-> {db}"
        )
        from .report_table import print_summary

        print_summary(store.runs(), console, run_ids={r.run_id for r in plan.runs})
        if counts["failed"]:
            console.print(
                f"[red]{counts['failed']} runs failed[/red]: see `bench results --db {db} "
                "--status failed --json` for their errors"
            )
        return counts["failed"]


def _id(spec: dict) -> str:
    from .plan import RunSpec

    return RunSpec.from_dict(spec).run_id
