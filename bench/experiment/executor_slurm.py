"""``--executor slurm``: a SLURM job array through submitit, each array task a warm loop over a
chunk of runs (thousands of one-minute jobs would swamp the scheduler).

The driver (the ``bench run`` process) claims the runs, submits one array task per chunk of
``runs_per_task`` runs and polls. Inside a task, seqbench's own warm worker pool
(:class:`.executors.LocalExecutor`) trains the chunk: ``1 / gpus_per_run`` runs at a time on the
task's GPU (one run at a time without GPUs), a crashing run costs only itself, and each finished
record is written at once as a JSON file in the launch's folder (which must be on a file system
the driver shares). The driver turns those files into database rows as they appear: it alone
writes the database. A task that is preempted or reaches its time limit is requeued by submitit
(``checkpoint``), and the requeued task skips the runs whose records are already written, so only
the unfinished ones are done again. A task that ends for good leaves its unfinished runs failed,
with the cause.

Jobs are pickled by reference: the nodes must have seqbench and the same plugins installed.
``SEQBENCH_SUBMITIT_CLUSTER=local`` runs the array with submitit's local executor (tests, or a
machine without SLURM). Importing this module does not import submitit; the executor registers
through its own entry point (pyproject.toml).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from ..api import OnRecord, OnStart, PluginError
from ..hookspecs import RegisterExecutor, hookimpl
from .executor_ray import check_positive, require_extra
from .plan import RunSpec

DEFAULT_FOLDER = "results/slurm"
DEFAULT_RUNS_PER_TASK = 10


def _record_path(records: Path, spec: dict) -> Path:
    return records / f"{RunSpec.from_dict(spec).run_id}.json"


class _Chunk:
    """What one array task runs (pickled by submitit, by reference to this installed module).

    ``checkpoint`` makes it requeueable: submitit calls it on the preemption / time-limit signal
    and resubmits the same chunk; the records already on disk say what is left."""

    def __init__(self, records: str, runs_at_once: int, threads: int, gpus_per_run, logger_factory):
        self.records = records
        self.runs_at_once = runs_at_once
        self.threads = threads
        self.gpus_per_run = gpus_per_run
        self.logger_factory = logger_factory

    def __call__(self, chunk: list[dict]) -> int:
        from .executors import LocalExecutor

        records = Path(self.records)
        todo = [spec for spec in chunk if not _record_path(records, spec).exists()]
        pool = LocalExecutor(self.runs_at_once, self.logger_factory, gpus_per_run=self.gpus_per_run)
        pool.threads = self.threads  # the allocation's CPUs, not the whole node's os.cpu_count()
        stopping = {signal.Signals.SIGTERM.name, signal.Signals.SIGUSR2.name}

        def keep(record: dict) -> None:
            # A worker killed by the job's own end (SLURM signals every process of the step)
            # did not fail: its run is left for the requeued task.
            if record["status"] == "failed" and any(
                f"died from {name}" in (record.get("error") or "") for name in stopping
            ):
                return
            tmp = records / f".{record['run_id']}.tmp"
            tmp.write_text(json.dumps(record, default=str))
            tmp.replace(records / f"{record['run_id']}.json")  # atomic: never half a record

        pool.run(todo, lambda spec: True, keep)
        return len(todo)

    def checkpoint(self, *args, **kwargs):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


class SlurmExecutor:
    def __init__(self, workers: int = 0, logger_factory=None, slurm_partition: str | None = None,
                 slurm_time: float | None = None, cpus_per_run: float | None = None,
                 gpus_per_run: float | None = None, runs_per_task: int | None = None,
                 slurm_folder: str | None = None, signal_delay_s: int | None = None,
                 poll_seconds: float = 2.0):
        require_extra("submitit", "slurm")
        check_positive("slurm_time", slurm_time)
        check_positive("cpus_per_run", cpus_per_run, whole=True)
        check_positive("runs_per_task", runs_per_task, whole=True)
        check_positive("gpus_per_run", gpus_per_run)
        if gpus_per_run is not None and gpus_per_run > 1:
            raise PluginError(f"--gpus-per-run {gpus_per_run:g}: a run uses one GPU at most")
        self.cluster = os.environ.get("SEQBENCH_SUBMITIT_CLUSTER") or "slurm"
        if self.cluster not in ("slurm", "local"):
            raise PluginError(
                f"SEQBENCH_SUBMITIT_CLUSTER={self.cluster}: use slurm (the default) or local"
            )
        if self.cluster == "slurm" and shutil.which("sbatch") is None:
            raise PluginError(
                "--executor slurm: no SLURM here (sbatch is not on PATH); run bench on a SLURM "
                "login node, or set SEQBENCH_SUBMITIT_CLUSTER=local to try the array locally"
            )
        self.parallel = workers  # array tasks running at once (0: as many as SLURM allows)
        self.logger_factory = logger_factory
        self.partition = slurm_partition
        self.minutes = slurm_time or 60
        self.cpus = int(cpus_per_run or 1)
        self.gpus = gpus_per_run
        # Runs sharing one GPU train side by side in the task; without GPUs, one at a time.
        self.at_once = int(1 / gpus_per_run + 1e-9) if gpus_per_run else 1
        self.per_task = int(runs_per_task or DEFAULT_RUNS_PER_TASK)
        self.folder = Path(slurm_folder or DEFAULT_FOLDER).resolve()
        self.signal_delay_s = signal_delay_s
        self.poll = poll_seconds

    def _executor(self, folder: Path):
        import submitit

        if self.cluster == "local":  # one job per chunk, on this machine, same protocol
            ex = submitit.LocalExecutor(folder=folder / "%j")
            params = dict(timeout_min=self.minutes, signal_delay_s=self.signal_delay_s,
                          gpus_per_node=1 if self.gpus else 0)
        else:
            ex = submitit.AutoExecutor(folder=folder / "%A_%a", cluster="slurm")
            params = dict(
                name="seqbench", timeout_min=math.ceil(self.minutes),  # SLURM counts minutes
                cpus_per_task=self.cpus * self.at_once, gpus_per_node=1 if self.gpus else 0,
                tasks_per_node=1, nodes=1, slurm_partition=self.partition,
                slurm_array_parallelism=self.parallel or None,
                slurm_signal_delay_s=self.signal_delay_s,
            )
        ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
        return ex

    def run(self, specs: list[dict[str, Any]], on_start: OnStart, on_record: OnRecord) -> None:
        from .runner import failed_record

        claimed = [spec for spec in specs if on_start(spec) is not False]
        if not claimed:
            return
        folder = self.folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"
        records = folder / "records"
        records.mkdir(parents=True)
        chunks = [claimed[i : i + self.per_task] for i in range(0, len(claimed), self.per_task)]
        task = _Chunk(str(records), self.at_once, self.cpus, self.gpus, self.logger_factory)
        jobs = self._executor(folder).map_array(task, chunks)
        left = {RunSpec.from_dict(s).run_id: s for s in claimed}
        ended: set[int] = set()
        try:
            while left:
                self._collect(records, left, on_record)
                for i, job in enumerate(jobs):
                    if i in ended or not job.done():
                        continue
                    ended.add(i)
                    self._collect(records, left, on_record)  # its last records, if any
                    unfinished = [s for s in chunks[i] if RunSpec.from_dict(s).run_id in left]
                    if unfinished:
                        cause = _job_error(job)
                        for spec in unfinished:
                            left.pop(RunSpec.from_dict(spec).run_id)
                            on_record(failed_record(
                                spec, f"SLURM array task {job.job_id} ended without it: {cause}"))
                if left:
                    time.sleep(self.poll)
        except BaseException:
            for job in jobs:  # Ctrl-C: nobody would store what they train
                try:
                    job.cancel(check=False)
                except Exception:
                    pass
            raise

    @staticmethod
    def _collect(records: Path, left: dict, on_record: OnRecord) -> None:
        for path in sorted(records.glob("*.json")):
            if path.stem in left:
                left.pop(path.stem)
                on_record(json.loads(path.read_text()))


def _job_error(job) -> str:
    """Why a finished array task left runs undone, in one line."""
    try:
        error = job.exception()
    except Exception as exc:  # the job's outcome itself cannot be read
        error = exc
    if error is None:
        return f"it finished in state {job.state}"
    text = str(error)
    if "with trace:\n" in text:
        # The task raised: a header, its traceback between dashed lines, then log paths. The
        # traceback's last line says what happened.
        trace = text.split("with trace:\n", 1)[1].split("\n-----", 1)[0]
        lines = [line.strip() for line in trace.splitlines() if line.strip("- \n")]
        return (lines[-1] if lines else "it failed")[:500]
    # It produced no result at all (killed, cancelled, lost): submitit's first lines say so.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (" ".join(lines[:2]) if lines else type(error).__name__)[:500]


@hookimpl
def register_executors(register: RegisterExecutor) -> None:
    register("slurm", SlurmExecutor,
             "SLURM job arrays via submitit, chunks of runs per array task "
             "(pip install 'seqbench[slurm]')")
