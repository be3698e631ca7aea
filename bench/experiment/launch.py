"""Launching a plan: skip what is done, hand the rest to an executor, store what comes back.

Only this (parent) process writes the database. A configuration whose run is ``done`` is never
run again. One left ``running`` by a launch that was killed (even ``kill -9``) is found and redone;
``failed`` and ``diverged`` runs are results too and are redone only with ``retry_failed``.
Ctrl-C keeps every finished run and forgets the ones in flight, so the same command continues.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..api import now
from ..store import Store
from .plan import Matrix, Plan, RunSpec


@dataclass
class Outcome:
    done: int = 0
    diverged: int = 0
    failed: int = 0
    interrupted: bool = False
    planned: set[str] = field(default_factory=set)  # run ids of this launch, for the summary


def select_todo(runs: list[RunSpec], status: dict[str, str], retry_failed: bool) -> list[RunSpec]:
    redo = {"running", "failed", "diverged"} if retry_failed else {"running"}
    return [r for r in runs if r.run_id not in status or status[r.run_id] in redo]


def launch(
    plan: Plan,
    matrix: Matrix,
    store: Store,
    executor,
    console,
    retry_failed: bool = False,
) -> Outcome:
    """Run what is missing (with tuning: the trials, then the selected trials' other seeds)."""
    store.add_matrix(plan.matrix_id, asdict(matrix), now())
    outcome = Outcome()
    planned = list(plan.runs)
    _stage("tuning trials" if plan.tuning else "matrix", plan.runs, store, executor, console,
           retry_failed, outcome)
    if plan.tuning and not outcome.interrupted:
        from .tuning import second_stage

        records = {r["run_id"]: r for r in store.runs()}
        stage = second_stage(plan.runs, plan.seeds, records, plan.tuning)
        for cell in stage.undecided:
            console.print(f"[yellow]{cell}: no trial finished, so no learning rate was selected")
        planned += stage.runs
        _stage("selected trials", stage.runs, store, executor, console, retry_failed, outcome)

    console.print(
        f"{outcome.done} done, {outcome.diverged} diverged, {outcome.failed} failed -> {store.path}"
    )
    outcome.planned = {r.run_id for r in planned}
    return outcome


def _stage(label, runs, store, executor, console, retry_failed, outcome: Outcome) -> None:
    """One batch of runs with a progress bar; Ctrl-C keeps what finished."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not runs:
        return
    status = store.status_of(r.run_id for r in runs)
    todo = select_todo(runs, status, retry_failed)
    left_running = sum(status.get(r.run_id) == "running" for r in todo)
    skipped = len(runs) - len(todo)
    if skipped:
        kept = "done" if retry_failed else "done, failed or diverged"
        console.print(
            f"{label}: {skipped} of {len(runs)} runs already {kept} in {store.path}; skipping them"
            + ("" if retry_failed else " (--retry-failed reruns failed and diverged ones)")
        )
    if left_running:
        console.print(f"{left_running} runs were left unfinished by an earlier launch; redoing them")
    if not todo:
        return
    by_id = {r.run_id: r for r in todo}
    in_flight: set[str] = set()
    counts = Outcome()
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("{task.fields[last]}"), console=console,
    ) as progress:
        bar = progress.add_task(label, total=len(todo), last="")

        def on_start(spec: dict) -> None:
            run = RunSpec.from_dict(spec)
            store.mark_running(by_id[run.run_id], now())
            in_flight.add(run.run_id)

        def on_record(record: dict) -> None:
            store.save(record)
            in_flight.discard(record["run_id"])
            for o in (counts, outcome):
                setattr(o, record["status"], getattr(o, record["status"]) + 1)
            progress.update(bar, advance=1, last=_describe(record))

        try:
            executor.run([r.to_dict() for r in todo], on_start, on_record)
        except KeyboardInterrupt:
            outcome.interrupted = True
            store.forget_running(in_flight)
            finished = counts.done + counts.diverged + counts.failed
            progress.update(
                bar,
                description=f"[yellow]{label} interrupted",
                last=f"{finished} finished and kept, {len(todo) - finished} left "
                f"({len(in_flight)} were in flight); run the same command to continue",
            )


def _describe(record: dict) -> str:
    test = record.get("test") or {}
    value = test.get(record.get("primary_metric") or "")
    size = record["train_size"] or "full"
    text = f"{record['model']} x {record['task']} n={size} seed={record['seed']}: {record['status']}"
    return text + (f" {record['primary_metric']}={value:.3f}" if value is not None else "")
