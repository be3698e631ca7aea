"""Launches that share a database: each run trained once, dead launches' runs taken over.

Trainings are counted by the ``counted`` test model (tests/counted.py), not by rows: the database
keeps one record per run whatever happens, so only a count at training time shows a run trained
twice.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import OFFLINE, PLUGIN_VARS, bench_command, bench_here
from counted import TINY, make_counted, trainings
from seqbench.experiment.leases import Leases
from seqbench.experiment.plan import RunSpec
from seqbench.store import SCHEMA_VERSION, Store, lease_owner, end_lease_owner


def spec(seed: int = 0) -> RunSpec:
    return RunSpec(model="lstm", task="copy", kind="aligned", train_size=16, seed=seed,
                   model_params={}, task_params={}, training={}, matrix_id="m")


def failed(s: RunSpec, finished_at: str) -> dict:
    return {"run_id": s.run_id, "matrix_id": "m", "model": s.model, "task": s.task,
            "kind": s.kind, "train_size": s.train_size, "seed": s.seed, "config": s.config(),
            "trial": {}, "status": "failed", "error": "boom", "finished_at": finished_at}


OTHER_HOST = "elsewhere.example:4242:abcd"  # a launch on another machine: only expiry tells


# --------------------------------------------------------------------------------------------
# The claim itself


def test_a_live_lease_keeps_a_run_until_it_expires(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        s = spec()
        assert store.claim(s, "t0", OTHER_HOST, time.time() + 1.0)
        mine = lease_owner()
        try:
            assert not store.claim(s, "t1", mine, time.time() + 60)  # held elsewhere
            time.sleep(1.2)  # the other machine stopped renewing
            assert store.claim(s, "t2", mine, time.time() + 60)
            assert store.leases([s.run_id])[s.run_id][0] == mine
            assert not store.claim(s, "t3", OTHER_HOST, time.time() + 60)  # now mine
        finally:
            end_lease_owner(mine)


def test_a_lease_of_a_dead_process_on_this_machine_ends_at_once(tmp_path):
    child = subprocess.run(
        ["python3", "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(child.stdout)
    with Store(tmp_path / "r.sqlite") as store:
        s = spec()
        dead = f"{socket.gethostname()}:{dead_pid}:0bad"  # the format of store.lease_owner()
        assert store.claim(s, "t0", dead, time.time() + 3600)
        mine = lease_owner()
        try:
            assert store.claim(s, "t1", mine, time.time() + 60)
        finally:
            end_lease_owner(mine)


def test_done_runs_are_never_claimed_and_failures_only_when_retrying_older_ones(tmp_path):
    from test_store import record

    with Store(tmp_path / "r.sqlite") as store:
        done, old_fail, new_fail = spec(0), spec(1), spec(2)
        store.save(record(done))
        store.save(failed(old_fail, "2026-01-01T00:00:00+00:00"))
        store.save(failed(new_fail, "2026-01-01T00:10:00+00:00"))
        owner = lease_owner()
        try:
            since = "2026-01-01T00:05:00+00:00"  # when this launch began
            assert not store.claim(done, "t", owner, time.time() + 60, since)
            assert not store.claim(old_fail, "t", owner, time.time() + 60)  # not retrying
            assert store.claim(old_fail, "t", owner, time.time() + 60, since)
            # Failed after this launch began: another launch retried it already.
            assert not store.claim(new_fail, "t", owner, time.time() + 60, since)
        finally:
            end_lease_owner(owner)


def test_a_failure_stored_this_second_is_retried_by_a_launch_starting_now(tmp_path):
    from seqbench.util import now

    db = tmp_path / "r.sqlite"
    s = spec()
    with Store(db) as store:
        store.save(failed(s, now()))  # most often the same whole second as the launch's start
        with Leases(db) as leases:
            assert leases.claim(store, s, retry_failed=True) == "claimed"


def test_the_heartbeat_renews_leases_while_runs_train(tmp_path):
    db = tmp_path / "r.sqlite"
    with Store(db) as store, Leases(db, seconds=0.8) as leases:
        s = spec()
        assert leases.claim(store, s, retry_failed=False) == "claimed"
        time.sleep(2.0)  # two and a half lease lengths: alive only if renewed
        assert leases.held_elsewhere(store, [s.run_id]) == set()  # ours
        assert not store.claim(s, "t", OTHER_HOST, time.time() + 60)
    with Store(db) as store:  # the launch ended: its lease is over on this machine
        assert store.claim(s, "t", OTHER_HOST, time.time() + 60)


def test_an_old_database_is_migrated_and_keeps_its_runs(tmp_path):
    from test_store import record

    db = tmp_path / "old.sqlite"
    with Store(db) as store:
        store.save(record(spec(0)))
    conn = sqlite3.connect(db)  # make it what seqbench with schema version 1 wrote
    conn.execute("ALTER TABLE runs DROP COLUMN lease_owner")
    conn.execute("ALTER TABLE runs DROP COLUMN lease_expires")
    conn.execute("ALTER TABLE runs DROP COLUMN step_flops")  # (version 3)
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with Store(db, readonly=True) as store:  # readers never write: still version 1, readable
        assert [r.status for r in store.runs()] == ["done"]
    with Store(db) as store:
        assert [r.status for r in store.runs()] == ["done"]
        assert store.claim(spec(1), "t", OTHER_HOST, time.time() + 60)
    conn = sqlite3.connect(db)
    version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    conn.close()
    assert int(version) == SCHEMA_VERSION and {"lease_owner", "lease_expires"} <= columns


def test_built_in_executors_skip_runs_they_may_not_claim():
    from seqbench.experiment.executors import LocalExecutor, SequentialExecutor

    specs = [spec(i).to_dict() for i in range(3)]
    local = LocalExecutor(1)
    local._start = lambda: pytest.fail("a worker was started for a run it may not train")
    for executor in (SequentialExecutor(), local):
        offered, records = [], []
        executor.run(specs, lambda s: offered.append(s) or False, records.append)
        assert len(offered) == 3 and records == []


# --------------------------------------------------------------------------------------------
# Real launches


@pytest.fixture
def counted(make_dist):
    return make_counted(make_dist)


def launch_env(count_file: Path, counted: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PLUGIN_VARS}
    env.update(OFFLINE, COLUMNS="250", NO_COLOR="1", SEQBENCH_COUNT_FILE=str(count_file),
               PYTHONPATH=os.pathsep.join([str(counted), env.get("PYTHONPATH", "")]), **extra)
    return env


def start(args, env, cwd) -> subprocess.Popen:
    return subprocess.Popen([*bench_command(), *map(str, args)], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def statuses(db: Path) -> dict[str, str]:
    if not db.exists():
        return {}
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return dict(conn.execute("SELECT run_id, status FROM runs"))
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return {}


def seeds_of(db: Path, run_ids) -> set[int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {conn.execute("SELECT seed FROM runs WHERE run_id = ?", (r,)).fetchone()[0]
                for r in run_ids}
    finally:
        conn.close()


def wait_until(condition, proc, timeout=180.0, what="") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"the launch ended before {what}: {proc.stderr.read()[-2000:]}"
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not {what} after {timeout} s")


def test_two_concurrent_launches_train_each_run_once(counted, tmp_path):
    db, count = tmp_path / "shared.sqlite", tmp_path / "count"
    args = ["run", *TINY, "--seeds", "0-7", "--executor", "sequential", "--db", db]
    env = launch_env(count, counted, SEQBENCH_STEP_SLEEP="0.05")
    a, b = start(args, env, tmp_path), start(args, env, tmp_path)
    outs = [p.communicate(timeout=300) for p in (a, b)]
    for proc, (out, err) in zip((a, b), outs):
        assert proc.returncode == 0, err[-2000:]
        assert "locked" not in out + err
    assert trainings(count) == {seed: 1 for seed in range(8)}  # 8 trainings, not 16
    assert sorted(statuses(db).values()) == ["done"] * 8
    pids = {line.split()[2] for line in count.read_text().splitlines()}
    assert pids == {str(a.pid), str(b.pid)}, "one launch did everything: nothing was shared"


def test_a_killed_launch_s_runs_are_done_by_the_next_one(counted, tmp_path, on_path):
    db, count = tmp_path / "killed.sqlite", tmp_path / "count"
    args = ["run", *TINY, "--seeds", "0-3", "--executor", "sequential", "--db", db]
    env = launch_env(count, counted, SEQBENCH_STEP_SLEEP="0.05")
    first = start(args, env, tmp_path)
    def one_done_and_one_training() -> bool:
        # "running" is stored before the model is built: wait until the in-flight run has
        # really started training (counted), or the kill would land before it and leave
        # nothing trained twice to see.
        states = list(statuses(db).values())
        done = states.count("done")
        return done >= 1 and "running" in states and sum(trainings(count).values()) > done

    wait_until(one_done_and_one_training, first, what="one run was done and another training")
    os.kill(first.pid, signal.SIGKILL)  # no cleanup of any kind: its lease stays in the file
    first.communicate()
    killed_in_flight = [run for run, status in statuses(db).items() if status == "running"]
    assert len(killed_in_flight) == 1

    # The next launch runs in this process (no torch and Lightning to import again).
    on_path(counted)
    rc, out, err = bench_here(*args, env={"SEQBENCH_COUNT_FILE": str(count),
                                          "SEQBENCH_STEP_SLEEP": "0.05"})
    assert rc == 0, err[-2000:]
    assert "1 runs were left unfinished by an earlier launch; redoing them" in out
    assert sorted(statuses(db).values()) == ["done"] * 4
    counts = trainings(count)
    assert sorted(counts) == list(range(4)) and sorted(counts.values()) == [1] * 3 + [2]


def test_a_frozen_launch_s_leases_expire_and_a_waiting_launch_takes_over(counted, tmp_path):
    """A launch that stops renewing without dying (frozen, or on a machine that went away) keeps
    its runs only until its leases expire; a launch waiting for them then trains them."""
    db, count = tmp_path / "frozen.sqlite", tmp_path / "count"
    args = ["run", *TINY, "--executor", "sequential", "--db", db]
    slow = launch_env(count, counted, SEQBENCH_STEP_SLEEP="1", SEQBENCH_LEASE_SECONDS="3")
    frozen = start([*args, "--seeds", "0-3"], slow, tmp_path)
    try:
        wait_until(lambda: "running" in statuses(db).values(), frozen, what="a run was in flight")
        held = [run for run, status in statuses(db).items() if status == "running"]
        (seed,) = seeds_of(db, held)
        # The taker wants exactly the run the first launch trains (a run of about 25 s).
        taker = start([*args, "--seeds", seed], launch_env(
            count, counted, SEQBENCH_LEASE_SECONDS="3", PYTHONUNBUFFERED="1"), tmp_path)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(taker.stdout), daemon=True)
        reader.start()
        wait_until(lambda: any("being trained by another launch" in line for line in lines),
                   taker, what="the second launch saw the first one's lease")
        os.kill(frozen.pid, signal.SIGSTOP)  # alive, but its heartbeat stops from now on
        taker.wait(timeout=300)
        reader.join(timeout=10)
        assert taker.returncode == 0, taker.stderr.read()[-2000:]
        assert statuses(db)[held[0]] == "done"
        by_taker = [int(s) for s, _, pid in
                    (line.split() for line in count.read_text().splitlines())
                    if int(pid) == taker.pid]
        assert by_taker == [seed]  # the frozen launch's run, trained by the taker
        assert "1 runs finished by another launch" not in "".join(lines)
    finally:
        os.kill(frozen.pid, signal.SIGKILL)
        os.kill(frozen.pid, signal.SIGCONT)
        frozen.communicate()


def test_a_tuning_launch_waits_for_the_trials_another_launch_trains(counted, tmp_path):
    """The second stage selects from every trial's result, so a launch whose trials another
    launch is training waits for them instead of selecting from half the evidence."""
    db, count = tmp_path / "tuned.sqlite", tmp_path / "count"
    args = ["run", *TINY, "--seeds", "0,1", "--tune-lr", "1e-3,3e-3", "--tune-seeds", "1",
            "--executor", "sequential", "--db", db]
    env = launch_env(count, counted, SEQBENCH_STEP_SLEEP="0.05")
    a, b = start(args, env, tmp_path), start(args, env, tmp_path)
    for proc in (a, b):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    # Two trials on the tuning seed, then the selected one on seeds 0 and 1: each once. A
    # launch that selected without waiting would have trained another trial's runs too.
    assert trainings(count) == {10000: 2, 0: 1, 1: 1}
    assert sorted(statuses(db).values()) == ["done"] * 4
