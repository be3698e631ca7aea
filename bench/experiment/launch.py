"""Launching a plan: skip what is done, hand the rest to an executor, store what comes back.

Only this (parent) process writes the database. A configuration whose run is ``done`` is never
run again. One left ``running`` by a launch that was killed (even ``kill -9``) is found and redone;
``failed`` and ``diverged`` runs are results too and are redone only with ``retry_failed``.
Ctrl-C keeps every finished run and forgets the ones in flight, so the same command continues.
Launches sharing a database split the work: each run is claimed with a lease before it trains
(:mod:`.leases`), a run another launch is training is left to it and waited for, and one whose
launch died is taken over.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import asdict, dataclass, field

from ..records import RunRecord
from ..util import now
from ..store import Store
from . import labels
from .leases import Leases
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
    """Run what is missing (with tuning: the trials on the tuning seeds, any extension rounds,
    then the selected trials on every evaluation seed)."""
    store.add_matrix(plan.matrix_id, asdict(matrix), now())
    labels.save(store, plan.matrix_id, plan.labels, now())
    outcome = Outcome()
    planned = list(plan.runs)
    if plan.tuning:
        console.print(plan.tuning.describe())
    run_stage(plan.tuning.stage(0) if plan.tuning else "matrix", plan.runs, store, executor,
              console, retry_failed, outcome)
    if plan.tuning and not outcome.interrupted:
        tuner = plan.tuner()
        # decided from stored records only, so a relaunch repeats each decision
        while not outcome.interrupted:
            records = {r.run_id: r for r in store.runs()}
            extra = tuner.extension(records, store.curve)
            if not extra.runs:
                break
            for note in extra.notes:
                console.print(f"[cyan]{note}")
            planned += extra.runs
            run_stage(extra.label or f"extension round {tuner.round}", extra.runs, store,
                      executor, console, retry_failed, outcome)
    if plan.tuning and not outcome.interrupted:
        final = tuner.evaluation({r.run_id: r for r in store.runs()})
        for note in final.notes:
            console.print(f"[yellow]{note}")
        for cell in final.undecided:
            console.print(f"[yellow]{cell}: no trial finished, so no trial was selected")
        planned += final.runs
        run_stage("selected trials on the evaluation seeds", final.runs, store, executor, console,
               retry_failed, outcome)

    console.print(
        f"{outcome.done} done, {outcome.diverged} diverged, {outcome.failed} failed -> {store.path}"
    )
    outcome.planned = {r.run_id for r in planned}
    return outcome


def run_stage(label, runs, store, executor, console, retry_failed, outcome: Outcome, *,
              gate=None, saved=None) -> None:
    """One batch of runs with a progress bar; Ctrl-C keeps what finished.

    ``gate(spec)`` (optional) is asked just before a run is handed out; False skips it (a budget
    that has run out, a decision already reached). ``saved(record)`` (optional) sees every record
    once it is stored.
    """
    if not runs:
        return
    status = store.status_of(r.run_id for r in runs)
    todo = select_todo(runs, status, retry_failed)
    leases = Leases(store.path)
    busy = leases.held_elsewhere(store, (r.run_id for r in todo))
    _announce(label, runs, todo, status, busy, store.path, retry_failed, console)
    if todo:
        _Stage(label, todo, store, leases, retry_failed, outcome, gate, saved).run(executor,
                                                                                   console)


def _announce(label: str, runs: list[RunSpec], todo: list[RunSpec], status: dict[str, str],
              busy: set, path, retry_failed: bool, console) -> None:
    """What the stage skips, redoes and leaves to another launch."""
    skipped = len(runs) - len(todo)
    if skipped:
        kept = "done" if retry_failed else "done, failed or diverged"
        console.print(
            f"{label}: {skipped} of {len(runs)} runs already {kept} in {path}; skipping them"
            + ("" if retry_failed else " (--retry-failed reruns failed and diverged ones)")
        )
    left_running = sum(status.get(r.run_id) == "running" for r in todo) - len(busy)
    if left_running:
        console.print(f"{left_running} runs were left unfinished by an earlier launch; redoing them")
    if busy:
        console.print(f"{len(busy)} runs are being trained by another launch on {path}; "
                      "doing the others, then waiting for those")


class _Stage:
    """The runs of one stage in flight: claimed through leases, stored as they come back."""

    def __init__(self, label: str, todo: list[RunSpec], store: Store, leases: Leases,
                 retry_failed: bool, outcome: Outcome, gate, saved):
        self.label, self.todo, self.store, self.leases = label, todo, store, leases
        self.retry_failed, self.outcome, self.gate, self.saved = retry_failed, outcome, gate, saved
        self.by_id = {r.run_id: r for r in todo}
        self.in_flight: set[str] = set()
        self.elsewhere: set[str] = set()  # runs another launch holds: waited for, taken over
        self.counts = Outcome()
        self.progress = self.bar = None

    def run(self, executor, console) -> None:
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
        )

        with self.leases, Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[last]}"), console=console,
        ) as self.progress:
            self.bar = self.progress.add_task(self.label, total=len(self.todo), last="")
            try:
                executor.run([r.to_dict() for r in self.todo], self.on_start, self.on_record)
                self._finish_elsewhere(executor)
            except KeyboardInterrupt:
                self._interrupted()
            except Exception:  # the executor broke (no process could start, ...): the runs it
                # claimed and never finished are not left "running" for a lease to expire; the
                # executor's own error is the one to report, even if the file has gone bad too
                with contextlib.suppress(sqlite3.Error):
                    self._forget_claimed()
                raise

    def _forget_claimed(self) -> None:
        """Drop every run this stage holds still marked running: all of the stage's runs, not
        only those in ``in_flight`` (Ctrl-C can land between a claim's commit and its noting)."""
        self.store.forget_running(self.by_id, self.leases.owner)

    def _note(self, advance: int = 0, **fields) -> None:
        self.progress.update(self.bar, advance=advance, **fields)

    def on_start(self, spec: dict) -> bool:
        """Claim the run; False tells the executor to skip it (another launch has it)."""
        run_id = RunSpec.from_dict(spec).run_id
        if self.gate is not None and not self.gate(self.by_id[run_id]):
            self._note(1, last=f"{run_id}: not started (budget spent or decision reached)")
            return False
        claimed = self.leases.claim(self.store, self.by_id[run_id], self.retry_failed)
        if claimed == "claimed":
            self.in_flight.add(run_id)
            return True
        if claimed == "held":
            self.elsewhere.add(run_id)
        else:
            self._note(1, last=f"{run_id}: finished by another launch")
        return False

    def on_record(self, finished: dict) -> None:
        record = RunRecord.from_dict(finished)  # executors carry plain dicts
        if record.run_id not in self.in_flight:
            return  # an executor that ignored on_start's False: the other launch stores it
        self.store.save(record)
        self.in_flight.discard(record.run_id)
        if self.saved is not None:
            self.saved(record)
        for o in (self.counts, self.outcome):
            setattr(o, record.status, getattr(o, record.status) + 1)
        self._note(1, last=_describe(record))

    def _finish_elsewhere(self, executor) -> None:
        """Later stages and the summary need these: wait for the runs other launches train, and
        do those whose launch stopped renewing its lease."""
        if self.elsewhere:
            self._note(last=f"waiting for {len(self.elsewhere)} runs another launch is training "
                       "(Ctrl-C leaves them to it)")
        while self.elsewhere:
            finished, free = self.leases.wait(self.store, self.elsewhere)
            self.elsewhere -= finished | free
            self._note(len(finished), last=f"{len(finished)} runs finished by another launch")
            if free:
                self._note(last=f"another launch left {len(free)} runs; doing them")
                executor.run([self.by_id[i].to_dict() for i in sorted(free)], self.on_start,
                             self.on_record)

    def _interrupted(self) -> None:
        self.outcome.interrupted = True
        self._forget_claimed()
        finished = self.counts.done + self.counts.diverged + self.counts.failed
        self._note(
            description=f"[yellow]{self.label} interrupted",
            last=f"{finished} finished and kept, {len(self.todo) - finished} left "
            f"({len(self.in_flight)} were in flight); run the same command to continue",
        )


def _describe(record: RunRecord) -> str:
    value = (record.test or {}).get(record.primary_metric or "")
    size = record.train_size or "full"
    text = f"{record.model} x {record.task} n={size} seed={record.seed}: {record.status}"
    return text + (f" {record.primary_metric}={value:.3f}" if value is not None else "")
