"""``--executor slurm`` end to end through submitit's local executor (no SLURM needed).

``SEQBENCH_SUBMITIT_CLUSTER=local`` makes submitit run each array task as a local job with the
same protocol as on SLURM: pickled by reference, a time limit with the preemption signal
(USR2) before it, requeue through ``checkpoint``. Trainings are counted by the ``counted`` test
model (tests/counted.py).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from conftest import bench_here
from counted import TINY, lines, make_counted, trainings
from seqbench.api import PluginError


def test_a_missing_slurm_extra_is_a_one_line_error_naming_the_pip_command(monkeypatch):
    from seqbench.experiment.executor_slurm import SlurmExecutor

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "submitit" else real(name, *a))
    with pytest.raises(PluginError) as err:
        SlurmExecutor()
    assert str(err.value) == ("--executor slurm needs the submitit package: "
                              "pip install 'seqbench[slurm]'")


submitit = pytest.importorskip(
    "submitit", reason="the slurm extra is not installed: pip install 'seqbench[slurm]'")


def test_without_slurm_the_executor_says_so(monkeypatch):
    import shutil

    from seqbench.experiment.executor_slurm import SlurmExecutor

    monkeypatch.delenv("SEQBENCH_SUBMITIT_CLUSTER", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(PluginError, match="no SLURM here \\(sbatch is not on PATH\\)"):
        SlurmExecutor()


@pytest.mark.parametrize("options, message", [
    (dict(gpus_per_run=2), "--gpus-per-run 2: a run uses one GPU at most"),
    (dict(runs_per_task=2.5), "--runs-per-task 2.5: give a whole number above 0"),
    (dict(slurm_time=0), "--slurm-time 0: give a number above 0"),
])
def test_bad_options_are_one_line_errors(monkeypatch, options, message):
    from seqbench.experiment.executor_slurm import SlurmExecutor

    monkeypatch.setenv("SEQBENCH_SUBMITIT_CLUSTER", "local")
    with pytest.raises(PluginError) as err:
        SlurmExecutor(**options)
    assert str(err.value) == message


@pytest.fixture
def counted(make_dist, on_path, monkeypatch, tmp_path):
    """The counted model for this process (the driver) and the array tasks it starts."""
    folder = on_path(make_counted(make_dist))
    monkeypatch.setenv("PYTHONPATH",
                       os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("SEQBENCH_COUNT_FILE", str(tmp_path / "count"))
    monkeypatch.setenv("SEQBENCH_SUBMITIT_CLUSTER", "local")
    return folder


def specs(seeds, max_steps: int = 20) -> list[dict]:
    from seqbench.experiment.plan import Matrix, plan
    from seqbench.registry import registry

    matrix = Matrix(
        models=["counted"], tasks=["copy"], train_sizes=[16], seeds=list(seeds),
        task_params={"copy": {"T": 3, "val_size": 20, "test_size": 20}},
        model_params={"counted": {"hidden_size": 8}},
        training={"max_steps": max_steps, "val_every": 10, "patience": 0},
    )
    return [r.to_dict() for r in plan(matrix, registry()).runs]


def test_a_matrix_runs_as_an_array_of_warm_chunks(counted, tmp_path):
    db, folder = tmp_path / "slurm.sqlite", tmp_path / "logs"
    # The driver (bench run) in this process: it only plans, submits and stores.
    rc, _, err = bench_here("run", *TINY, "--seeds", "0-5", "--executor", "slurm",
                            "--runs-per-task", "3", "--slurm-time", "5", "--slurm-folder",
                            folder, "--db", db)
    assert rc == 0, err[-3000:]
    conn = sqlite3.connect(db)
    assert sorted(s for (s,) in conn.execute("SELECT status FROM runs")) == ["done"] * 6
    conn.close()
    assert trainings(tmp_path / "count") == {seed: 1 for seed in range(6)}
    # Two array tasks of three runs, each trained by one warm worker of its own.
    by_pid: dict[int, list[int]] = {}
    for seed, _, pid in lines(tmp_path / "count"):
        by_pid.setdefault(pid, []).append(seed)
    assert sorted(len(seeds) for seeds in by_pid.values()) == [3, 3]
    launch_dirs = list(folder.iterdir())
    assert len(launch_dirs) == 1 and len(list((launch_dirs[0] / "records").glob("*.json"))) == 6


def capture_jobs(ex) -> list:
    """The submitit jobs ``ex`` submits, as they are submitted."""
    jobs: list = []
    make = ex._executor

    def capturing(folder):
        inner = make(folder)
        submit = inner.map_array
        inner.map_array = lambda fn, chunks: jobs.extend(submit(fn, chunks)) or jobs
        return inner

    ex._executor = capturing
    return jobs


def task_process(job) -> int | None:
    """The pid of the array task's own Python process (the local controller's child)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == job._process.pid and b"submitit.core._submit" in cmd:
            return int(entry.name)
    return None


def test_a_preempted_task_is_requeued_and_does_only_its_unfinished_runs(counted, monkeypatch,
                                                                        tmp_path):
    """The signal SLURM sends before a time limit or a preemption (USR2) comes as the second
    run trains: the task checkpoints and is requeued, and the requeued task skips the run whose
    record is written and trains the rest."""
    from seqbench.experiment.executor_slurm import SlurmExecutor

    monkeypatch.setenv("SEQBENCH_STEP_SLEEP", "0.1")  # a run of a few seconds
    ex = SlurmExecutor(runs_per_task=3, slurm_time=10, slurm_folder=str(tmp_path / "logs"),
                       poll_seconds=0.2)
    jobs = capture_jobs(ex)
    signalled: list[int] = []

    def preempt_after_the_first_record(record):
        records.append(record)
        if not signalled:
            pid = task_process(jobs[0])
            os.kill(pid, signal.SIGUSR2)
            signalled.append(pid)

    records: list[dict] = []
    ex.run(specs([0, 1, 2]), lambda spec: True, preempt_after_the_first_record)
    assert signalled
    assert sorted(r["seed"] for r in records) == [0, 1, 2]
    assert all(r["status"] == "done" for r in records), [r.get("error") for r in records]
    attempts: dict[int, list[int]] = {}  # worker pid -> seeds in order: one worker per attempt
    for seed, _, pid in lines(tmp_path / "count"):
        attempts.setdefault(pid, []).append(seed)
    assert len(attempts) == 2, f"the task was not requeued once: {attempts}"
    first, second = attempts.values()
    done_first = records[0]["seed"]
    assert done_first not in second  # its record was written: not trained again
    assert set(first) | set(second) == {0, 1, 2}
    log = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*_log.err"))
    assert "Caught signal SIGUSR2" in log, log[-2000:]


def test_a_task_that_never_finishes_leaves_its_runs_failed_with_the_cause(counted, monkeypatch,
                                                                          tmp_path):
    from seqbench.experiment.executor_slurm import SlurmExecutor

    monkeypatch.setenv("SEQBENCH_STEP_SLEEP", "2")  # far longer than the task's time limit
    ex = SlurmExecutor(runs_per_task=2, slurm_time=0.1, signal_delay_s=3,
                       slurm_folder=str(tmp_path / "logs"), poll_seconds=0.5)
    records = []
    ex.run(specs([0, 1]), lambda spec: True, records.append)
    assert [r["status"] for r in records] == ["failed", "failed"]
    for r in records:
        assert r["error"].startswith("SLURM array task ")
        assert "timed-out too many times" in r["error"], r["error"]


@pytest.fixture
def sigint_default():
    """submitit cancels a local job with SIGINT, and a suite started in the background
    (``cmd &``, as a CI script may) has SIGINT ignored, a setting the jobs inherit: without this
    they never see the cancel (two of three jobs still running 30 s later)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_an_interrupted_driver_cancels_its_array(counted, monkeypatch, tmp_path, sigint_default):
    """Ctrl-C in the driver (here: raised by its on_record) cancels the jobs still running:
    nobody would store what they train."""
    from seqbench.experiment.executor_slurm import SlurmExecutor

    monkeypatch.setenv("SEQBENCH_STEP_SLEEP", "0.15")
    ex = SlurmExecutor(runs_per_task=1, slurm_folder=str(tmp_path / "logs"), poll_seconds=0.2)
    jobs = capture_jobs(ex)

    def interrupt(record):
        raise KeyboardInterrupt

    # Seed 0 ends after 20 steps (~3 s); seeds 1 and 2 would take 400 steps (~1 min), so only
    # cancelling them ends them within the deadline below, on a busy machine or an idle one.
    with pytest.raises(KeyboardInterrupt):
        ex.run(specs([0]) + specs([1, 2], max_steps=400), lambda spec: True, interrupt)
    assert len(jobs) == 3
    deadline = time.time() + 30
    while not all(job.done() for job in jobs):
        assert time.time() < deadline, [job.state for job in jobs]
        time.sleep(0.2)
    # Every job has ended; had the others not been stopped mid-run, their records were here.
    (records,) = (tmp_path / "logs").glob("*/records")
    assert len(list(records.glob("*.json"))) == 1
