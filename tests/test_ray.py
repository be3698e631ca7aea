"""``--executor ray`` on a real two-node Ray cluster on this machine.

One cluster for the whole module (Ray takes seconds to start): ``ray start --head`` plus a second
node joined with ``ray start --address``, one CPU each, so a matrix spreads over both. Both nodes
have the ``counted`` test model installed (tests/counted.py, on their PYTHONPATH), which writes
``SEED NODE PID`` per training: trainings are counted per node, not read from the database.
The node-killing test comes last in this file and the fixture brings the node back for any test
after it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import OFFLINE, PLUGIN_VARS
from counted import TINY, lines, make_counted, trainings

CRASH_SEED = 999  # the counted model's worker kills itself on this seed, every time
STEP_SLEEP = "0.05"  # a run lasts about two seconds, long enough to be caught mid-run


def test_a_missing_ray_extra_is_a_one_line_error_naming_the_pip_command(monkeypatch):
    import importlib.util

    from seqbench.api import PluginError
    from seqbench.experiment.executor_ray import RayExecutor

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(PluginError) as err:
        RayExecutor()
    assert str(err.value) == "--executor ray needs the ray package: pip install 'seqbench[ray]'"


def test_an_option_the_executor_does_not_take_is_a_one_line_error(tmp_path):
    db = tmp_path / "none.sqlite"
    res = bench_here(["run", "--models", "lstm", "--tasks", "copy", "--seeds", "0",
                      "--executor", "local", "--ray-address", "auto", "--slurm-time", "5",
                      "--db", db])
    assert res.exit_code == 2, res.stderr
    assert res.stderr.strip() == (
        "error: --ray-address, --slurm-time do not apply to --executor local")
    assert not db.exists()


def test_listing_the_executors_imports_neither_ray_nor_submitit():
    code = ("import sys; from seqbench.registry import registry; "
            "names = sorted(registry().executors); "
            "print(names, 'ray' in sys.modules, 'submitit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **OFFLINE}, timeout=120)
    assert out.stdout.split("] ")[-1].strip() == "False False", out.stdout + out.stderr
    assert "'ray'" in out.stdout and "'slurm'" in out.stdout


ray = pytest.importorskip(
    "ray", reason="the ray extra is not installed: pip install 'seqbench[ray]'")


def test_an_unreachable_ray_address_is_a_one_line_error_in_seconds(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "none.sqlite"
    started = time.time()
    res = bench_here(["run", "--models", "lstm", "--tasks", "copy", "--seeds", "0",
                      "--executor", "ray", "--ray-address", f"127.0.0.1:{port}", "--db", db])
    assert res.exit_code == 2 and not ray.is_initialized()
    err = res.stderr
    assert err.startswith(f"error: cannot reach the Ray cluster at 127.0.0.1:{port} (")
    assert len(err.strip().splitlines()) == 1 and not db.exists()
    assert time.time() - started < 60  # Ray alone retries for minutes


class Cluster:
    """A head node and a second node, each `ray start --block` in its own process group."""

    def __init__(self, root: Path, counted: Path):
        self.root = root
        self.temp = Path(tempfile.mkdtemp(prefix="sbray", dir="/tmp"))  # short: socket paths
        with socket.socket() as s:
            s.bind(("", 0))
            self.port = s.getsockname()[1]
        self.count = root / "count"
        self.env = {k: v for k, v in os.environ.items() if k not in PLUGIN_VARS}
        self.env.update(
            OFFLINE, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
            PYTHONPATH=os.pathsep.join([str(counted), self.env.get("PYTHONPATH", "")]),
            SEQBENCH_COUNT_FILE=str(self.count), SEQBENCH_STEP_SLEEP=STEP_SLEEP,
            SEQBENCH_CRASH_SEED=str(CRASH_SEED),
            # A lost node is declared dead after ~3 s instead of ~30 s.
            RAY_health_check_period_ms="1000", RAY_health_check_timeout_ms="1000",
            RAY_health_check_failure_threshold="3",
        )
        self.address = None
        self.head = self._start("head", ["--head", "--port", str(self.port)])
        self.second = None

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        ray_cli = Path(sys.executable).with_name("ray")
        log = open(self.root / f"{name}.log", "w")
        proc = subprocess.Popen(
            [str(ray_cli), "start", *args, "--num-cpus", "1", "--resources", json.dumps({name: 1}),
             "--object-store-memory", str(100 * 2**20), "--temp-dir", str(self.temp),
             *(["--include-dashboard=false", "--disable-usage-stats"] if name == "head" else []),
             "--block"],
            env={**self.env, "SEQBENCH_NODE": name}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill the node, workers and all
        )
        log.close()
        deadline = time.time() + 120
        while "This command will now block" not in (self.root / f"{name}.log").read_text():
            assert proc.poll() is None, (self.root / f"{name}.log").read_text()[-3000:]
            assert time.time() < deadline, f"ray node {name} did not start"
            time.sleep(0.3)
        return proc

    def nodes_alive(self) -> int:
        return sum(1 for n in ray.nodes() if n["Alive"])

    def ensure_second(self) -> None:
        if self.second is None or self.second.poll() is not None:
            self.second = self._start("second", ["--address", f"127.0.0.1:{self.port}"])
        if ray.is_initialized():
            deadline = time.time() + 60
            while self.nodes_alive() < 2:
                assert time.time() < deadline, "the second node did not join"
                time.sleep(0.3)

    def kill_second(self) -> None:
        """The node is lost: its raylet and every worker it started die at once (Ray starts
        workers in sessions of their own, so the process group is not enough)."""
        for pid in [self.second.pid, *descendants(self.second.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.second.wait()

    def stop(self) -> None:
        for proc in (self.second, self.head):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in (self.second, self.head):
            if proc is not None:
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:  # a busy head can take minutes: no need
                    for pid in descendants(proc.pid):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left
                proc.wait()
        subprocess.run(["rm", "-rf", str(self.temp)])


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.fixture(scope="module")
def counted(make_dist):
    return make_counted(make_dist)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, counted):
    auth = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # this process's driver, like the nodes
    from seqbench import registry

    sys.path.insert(0, str(counted))  # the driver plans with the counted model too
    registry.reset()
    c = Cluster(tmp_path_factory.mktemp("ray"), counted)
    try:
        c.address = f"127.0.0.1:{c.port}"
        c.ensure_second()
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.stop()
        sys.path.remove(str(counted))
        registry.reset()
        if auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = auth


def specs(seeds) -> list[dict]:
    from seqbench.experiment.plan import Matrix, plan
    from seqbench.registry import registry

    matrix = Matrix(
        models=["counted"], tasks=["copy"], train_sizes=[16], seeds=list(seeds),
        task_params={"copy": {"T": 3, "val_size": 20, "test_size": 20}},
        model_params={"counted": {"hidden_size": 8}},
        training={"max_steps": 20, "val_every": 10, "patience": 0},
    )
    return [r.to_dict() for r in plan(matrix, registry()).runs]


@contextlib.contextmanager
def executor(cluster, **options):
    """A driver in this process; its actors are stopped afterwards (they hold the CPUs)."""
    from seqbench.experiment.executor_ray import RayExecutor

    ex = RayExecutor(ray_address=cluster.address, **options)
    try:
        cluster.ensure_second()
        yield ex
    finally:
        ex.close()


def run_all(ex, batch) -> dict[int, dict]:
    """seed -> record, checking every run was handed out once and came back once."""
    started, records = [], []
    ex.run(batch, started.append, records.append)
    assert len(started) == len(batch) and len(records) == len(batch)
    return {r["seed"]: r for r in records}


def bench_here(args):
    """``bench ARGS`` in this process (the driver only plans and hands out: no separate process
    needed, and none to pay torch's imports for)."""
    from click.testing import CliRunner

    from seqbench.cli import main

    result = CliRunner(env={"COLUMNS": "250", "NO_COLOR": "1"}).invoke(main, list(map(str, args)))
    if "ray" in sys.modules:  # as `bench` exiting would: the driver leaves, its actors with it
        sys.modules["ray"].shutdown()
    return result


@pytest.fixture(scope="module")
def driver(cluster):
    """One connection of this process to the cluster, shared by the executor tests (a driver
    that joins and leaves is the matrix test's); executors that did not connect keep it open."""
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    cluster.ensure_second()


def test_a_matrix_spreads_over_both_nodes_and_resumes(cluster, tmp_path):
    cluster.ensure_second()
    db = tmp_path / "ray.sqlite"
    args = ["run", *TINY, "--seeds", "0-5", "--executor", "ray", "--ray-address",
            cluster.address, "--db", db]
    proc = bench_here(args)
    assert proc.exit_code == 0, proc.stderr[-3000:]
    conn = sqlite3.connect(db)
    assert sorted(s for (s,) in conn.execute("SELECT status FROM runs")) == ["done"] * 6
    conn.close()
    mine = [(seed, node) for seed, node, _ in lines(cluster.count) if seed in range(6)]
    assert sorted(seed for seed, _ in mine) == list(range(6))  # each trained once
    assert {node for _, node in mine} == {"head", "second"}  # on both nodes

    again = bench_here(args)
    assert again.exit_code == 0, again.stderr[-3000:]
    assert "6 of 6 runs already done" in again.stdout
    assert trainings(cluster.count)[0] == 1  # nothing trained again


def test_closing_after_the_driver_left_starts_no_local_ray(cluster):
    with executor(cluster) as ex:  # connects itself: no shared driver yet
        run_all(ex, specs([50]))
        ray.shutdown()  # its actor is gone with the driver: nothing left to kill
    assert not ray.is_initialized()


def test_a_dying_actor_costs_only_its_run_retried_a_bounded_number_of_times(cluster, driver):
    with executor(cluster, max_retries=2) as ex:
        records = run_all(ex, specs([200, CRASH_SEED, 201]))
    assert records[200]["status"] == records[201]["status"] == "done"
    crashed = records[CRASH_SEED]
    assert crashed["status"] == "failed"
    assert crashed["error"].startswith("its Ray actor died 3 times; last: ")
    counts = trainings(cluster.count)
    assert counts[CRASH_SEED] == 3 and counts[200] == counts[201] == 1


def test_a_plugin_missing_on_the_workers_is_a_clear_error_not_a_hang(cluster, driver, make_dist):
    from seqbench import registry

    driver_only = make_dist("seqbench-driver-only", {"seqbench_driver_only": SOURCE_DRIVER_ONLY},
                            {"driver-only": "seqbench_driver_only"})
    sys.path.insert(0, str(driver_only))  # on the driver, not on the nodes
    registry.reset()
    try:
        batch = [dict(s, model="driver-only") for s in specs([300])]
        started = time.time()
        with executor(cluster) as ex:
            (record,) = run_all(ex, batch).values()
    finally:
        sys.path.remove(str(driver_only))
        registry.reset()
    assert record["status"] == "failed"
    assert record["error"].startswith("model 'driver-only' not installed on Ray node ")
    assert "install the same plugin packages on every node" in record["error"]
    assert time.time() - started < 60


SOURCE_DRIVER_ONLY = """
import dataclasses
from seqbench import hookimpl


@hookimpl
def register_models(register):
    import seqbench_plugins.lstm as lstm

    found = []
    lstm.register_models(register=found.append)
    register(dataclasses.replace(found[0], name="driver-only", description="not on the nodes"))
"""


def test_a_lost_node_s_runs_are_retried_on_the_other_nothing_lost_nothing_twice(cluster, driver):
    """Kill the second node (raylet, workers and all) while it trains: the runs it had are
    retried on the head, every run ends done, and no run was trained more than its one retry."""
    cluster.ensure_second()
    seeds = list(range(100, 110))

    def killer():
        deadline = time.time() + 240
        while time.time() < deadline:
            if any(node == "second" and seed in seeds for seed, node, _ in lines(cluster.count)):
                cluster.kill_second()  # mid-run: the line is written as the run starts
                return
            time.sleep(0.05)

    with executor(cluster, max_retries=2) as ex:
        watcher = threading.Thread(target=killer, daemon=True)
        watcher.start()
        records = run_all(ex, specs(seeds))
        watcher.join(timeout=5)
    assert cluster.second.poll() is not None, "the second node was never killed"
    assert all(r["status"] == "done" for r in records.values()), {
        s: r.get("error") for s, r in records.items() if r["status"] != "done"}
    trained = [(seed, node) for seed, node, _ in lines(cluster.count) if seed in seeds]
    lost = [seed for seed, node in trained if node == "second"]
    assert len(lost) == 1, trained  # killed as its first run started
    for seed in seeds:
        nodes = [n for s, n in trained if s == seed]
        assert nodes == (["second", "head"] if seed in lost else ["head"]), (seed, trained)
