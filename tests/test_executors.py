"""Matrices that survive interruption: kill -9, Ctrl-C, dying workers, retries; presets; tuning."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import OFFLINE, PLUGIN_VARS, bench_command, bench_here, default_sigint

TINY = ["--tasks", "copy", "-t", "copy.T=3", "-t", "copy.val_size=20", "-t", "copy.test_size=20",
        "-m", "hidden_size=8", "--train-sizes", "16", "--max-steps", "40", "--val-every", "20"]


def env() -> dict:
    full = {k: v for k, v in os.environ.items() if k not in PLUGIN_VARS}
    full.update(OFFLINE, COLUMNS="250", NO_COLOR="1")
    return full


def rows(db: Path) -> dict[str, dict]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    out = {r["run_id"]: dict(r) for r in conn.execute("SELECT * FROM runs")}
    conn.close()
    return out


def wait_for_done(db: Path, proc: subprocess.Popen, at_least: int, in_flight: int = 0,
                  timeout: float = 120) -> None:
    """Wait until `at_least` runs are done and `in_flight` more are marked running.

    Between two runs nothing is marked running, so a kill timed by the done count alone
    sometimes finds nothing in flight (seen in CI with the sequential executor).
    """
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the matrix finished before it could be interrupted"
        if db.exists():
            try:
                statuses = [r["status"] for r in rows(db).values()]
            except sqlite3.OperationalError:
                statuses = []
            if statuses.count("done") >= at_least and statuses.count("running") >= in_flight:
                return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {at_least} runs done and {in_flight} running after {timeout} s")


@pytest.mark.parametrize("executor", ["sequential", "local"])
def test_kill_9_then_relaunch_redoes_only_what_is_missing(tmp_path, executor):
    db = tmp_path / "killed.sqlite"
    args = ["run", "--models", "lstm,gru", "--seeds", "0-5", *TINY, "--executor", executor,
            "--workers", "2", "--db", str(db)]  # 12 runs: room for three kills of 3 runs each
    done_so_far = 0
    for _attempt in range(3):  # a run may still finish between the last look and the kill
        proc = subprocess.Popen([*bench_command(), *args], env=env(), cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_done(db, proc, at_least=done_so_far + 3, in_flight=1)
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup of any kind
        proc.wait()
        before = rows(db)
        done_before = {k: v for k, v in before.items() if v["status"] == "done"}
        done_so_far = len(done_before)
        if any(v["status"] == "running" for v in before.values()):
            break
    else:
        raise AssertionError("three kills found nothing in flight")

    rc, out, err = bench_here(*args)  # the relaunch: in this process, no imports to pay again
    assert rc == 0, err[-2000:]
    assert "left unfinished by an earlier launch; redoing them" in out
    after = rows(db)
    assert len(after) == 12 and all(v["status"] == "done" for v in after.values())
    for run_id, row in done_before.items():  # finished runs kept exactly, not redone
        assert after[run_id]["finished_at"] == row["finished_at"]
        assert after[run_id]["test"] == row["test"]
    assert f"{12 - len(done_before)} done" in out


def test_ctrl_c_keeps_finished_runs_and_says_what_is_left(tmp_path):
    db = tmp_path / "interrupted.sqlite"
    args = ["run", "--models", "lstm", "--seeds", "0-9", *TINY, "--executor", "local",
            "--workers", "2", "--db", str(db)]
    # A terminal's Ctrl-C reaches the whole foreground process group: the workers too.
    proc = subprocess.Popen([*bench_command(), *args], env=env(), cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=default_sigint)
    wait_for_done(db, proc, at_least=2)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in out and "run the same command to continue" in out
    left = rows(db)
    assert left and all(v["status"] == "done" for v in left.values()), (  # nothing half-written
        [(v["status"], v["error"]) for v in left.values()], err[-2000:])

    rc, out, err = bench_here(*args)  # the same command again, in this process
    assert rc == 0, err[-2000:]
    assert f"{len(left)} of 10 runs already" in out
    assert len(rows(db)) == 10


SUICIDAL = """
import os, signal
from seqbench import hookimpl
from seqbench.api import ModelPlugin, Param


def build(kind, shape, hparams):
    from torch import nn

    class Dies(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(shape.src_vocab_size, 4)
            self.out = nn.Linear(4, shape.tgt_vocab_size)

        def forward(self, src, src_len):
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would

    return Dies()


@hookimpl
def register_models(register):
    register(ModelPlugin(name="dies", description="its worker is killed mid-run",
                         kinds=("aligned",), defaults={"unused": Param(0)}, build=build,
                         width_param=None))
"""


def test_a_dead_worker_fails_its_run_and_the_matrix_goes_on(cli, make_dist, tmp_path):
    dist = make_dist("seqbench-dies", {"seqbench_dies": SUICIDAL}, {"dies": "seqbench_dies"})
    db = tmp_path / "dead.sqlite"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    rc, out, err = cli("run", "--models", "dies,lstm", "--seeds", "0,1", *TINY,
                       "--executor", "local", "--workers", "2", "--db", db, pythonpath=[dist],
                       env={"TMPDIR": str(scratch)})
    assert rc == 1, err[-2000:]
    assert not list(scratch.glob("seqbench-*")), "a killed worker's temporary files were left"
    by_model: dict[str, list] = {}
    for row in rows(db).values():
        by_model.setdefault(row["model"], []).append(row)
    assert [r["status"] for r in by_model["dies"]] == ["failed", "failed"]
    assert all("died from SIGKILL" in r["error"] for r in by_model["dies"])
    assert [r["status"] for r in by_model["lstm"]] == ["done", "done"]


KILL = "os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would"
FAILS = SUICIDAL.replace(KILL, "raise RuntimeError('this model always fails')")


def test_retry_failed_reruns_only_with_the_flag(on_path, make_dist, tmp_path):
    # a run that raises fails like one whose worker died, and needs no worker process; the
    # launches run in this process (each bench process would import torch and Lightning again)
    on_path(make_dist("seqbench-fails", {"seqbench_fails": FAILS}, {"fails": "seqbench_fails"}))
    db = tmp_path / "retry.sqlite"
    args = ["run", "--models", "dies,lstm", "--seeds", "0", *TINY, "--executor", "sequential",
            "--db", db]
    assert bench_here(*args).rc == 1
    first = rows(db)

    rc, out, _ = bench_here(*args)
    assert rc == 0 and "2 of 2 runs already done, failed or diverged" in out
    assert rows(db) == first

    rc, out, _ = bench_here(*args, "--retry-failed")
    assert rc == 1 and "1 of 2 runs already done" in out
    again = rows(db)
    failed = [k for k, v in first.items() if v["status"] == "failed"]
    assert "this model always fails" in first[failed[0]]["error"]
    assert again[failed[0]]["started_at"] >= first[failed[0]]["started_at"]
    assert again[failed[0]]["status"] == "failed"
    kept = [k for k, v in first.items() if v["status"] == "done"]
    assert again[kept[0]] == first[kept[0]]


# --------------------------------------------------------------------------------------------
# Presets and the tuning protocol


def test_presets_are_valid_and_the_claim_preset_is_the_study():
    from seqbench.experiment import matrixfile
    from seqbench.experiment.plan import plan
    from seqbench.registry import registry

    reg = registry()
    assert {"quick", "claim"} <= set(matrixfile.presets())
    for name in matrixfile.presets():
        for path in matrixfile.matrix_files(matrixfile.preset_path(name)):  # a folder: its parts
            data = matrixfile.read(path)
            matrix = matrixfile.build_matrix(data, None, None, None, None, (), (), {}, {},
                                             list(reg.models), list(reg.tasks))
            assert plan(matrix, reg).runs, path
        result = bench_here("run", "--preset", name, "--dry-run")
        assert result.rc == 0, result.stderr

    claim = matrixfile.read(matrixfile.preset_path("claim"))
    assert set(claim["models"]) == {"rnn", "lstm", "gru", "seq2seq-attention", "transformer"}
    assert set(claim["tasks"]) == {"classification", "copy", "translation"}
    assert len(claim["seeds"]) >= 6  # the fewest for p < 0.05 in a paired two-sided test
    assert claim["tuning"]["trials"] >= 8 and "lr" not in claim["tuning"]
    for task, sizes in claim["train_sizes"].items():
        assert len(sizes) >= 5 and sizes[-1] is None, task  # up to the full data set
        numeric = sizes[:-1]
        assert all(b / a >= 1.9 for a, b in zip(numeric, numeric[1:])), task
    assert len(claim["task_params"]["copy"]["T"]) >= 2


def test_the_published_claim_study_plans_its_parts_at_convergence():
    """results/claim-study (the study behind results/claim.sqlite): every part converges
    (early stopping, a high step cap), tunes every model equally (drawn trials or one grid of
    learning rates for all) and evaluates 6 seeds. The TREC-6 and Multi30k parts read
    ../shared/data; without it they are only read, not planned."""
    from seqbench.experiment import matrixfile
    from seqbench.experiment.plan import plan
    from seqbench.registry import registry

    root = Path(__file__).resolve().parents[1]
    reg = registry()
    parts = matrixfile.matrix_files(root / "results" / "claim-study")
    assert len(parts) == 6
    for path in parts:
        data = matrixfile.read(path)
        training, tuning = data["training"], data["tuning"]
        assert training["patience"] >= 5 and training["max_steps"] >= 50 * training["val_every"]
        trials = tuning.get("trials") or len(tuning["lr"])
        assert len(data["seeds"]) >= 6 and trials >= 2 and len(data["train_sizes"]) >= 5
        local = [p["data"] for p in data.get("task_params", {}).values() if "data" in p]
        if any(not (root / d).exists() for d in local):
            continue
        matrix = matrixfile.build_matrix(data, None, None, None, None, (), (), {}, {},
                                         list(reg.models), list(reg.tasks))
        assert plan(matrix, reg).runs, path


def test_matrix_file_errors_are_one_line(tmp_path):
    cases = {
        "unknown key": 'models = ["lstm"]\nmodles = ["x"]\n',
        "zero seeds": 'models = ["lstm"]\ntasks = ["copy"]\nseeds = []\n',
        "size too large": 'models = ["lstm"]\ntasks = ["copy"]\n[train_sizes]\ncopy = [20000]\n',
        "sizes for a task not in the matrix": 'tasks = ["copy"]\n[train_sizes]\ncopyy = [10]\n',
        "tuning without trials": 'tasks = ["copy"]\n[tuning]\nseeds = 1\n',
        "tuning seed is an evaluation seed":
            'tasks = ["copy"]\nseeds = [0, 1]\n[tuning]\ntrials = 4\nseeds = [1]\n',
    }
    for what, text in cases.items():
        path = tmp_path / "m.toml"
        path.write_text(text)
        db = tmp_path / f"{what}.sqlite"
        rc, _, err = bench_here("run", "--matrix", path, "--db", db)
        assert rc == 2, (what, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("error:"), (what, err)
        assert not db.exists(), what


class Scripted:
    """An executor that trains nothing: each run "scores" ``score(spec)`` on validation, so a
    whole tuning launch (trials, extension rounds, evaluation) runs in a second."""

    def __init__(self, score):
        self.score = score
        self.seen: list[dict] = []

    def run(self, specs, on_start, on_record):
        from seqbench.experiment.plan import RunSpec
        from seqbench.experiment.runner import failed_record

        for d in specs:
            on_start(d)
            self.seen.append(d)
            value = self.score(RunSpec.from_dict(d))
            on_record({**failed_record(d, ""), "status": "done", "error": None,
                       "best_val": value, "primary_value": value, "higher_is_better": True,
                       "primary_metric": "recall_accuracy", "test": {"recall_accuracy": value}})


def test_a_tuning_launch_extends_at_an_edge_then_evaluates_on_every_seed(tmp_path):
    import math

    from rich.console import Console

    from seqbench.analysis.tables import print_summary
    from seqbench.experiment import matrixfile
    from seqbench.experiment.launch import launch
    from seqbench.experiment.plan import plan
    from seqbench.registry import registry
    from seqbench.store import Store

    reg = registry()
    matrix = matrixfile.build_matrix(
        {"tuning": {"trials": 8, "seeds": 1, "extend": 2, "extend_trials": 4}},
        "lstm,transformer", "copy", "64,128", "0-2", (), (), {}, {},
        list(reg.models), list(reg.tasks))
    the_plan = plan(matrix, reg)

    def score(spec):  # the LSTM at n=64 wants ever larger learning rates; all else peaks at 3e-3
        if spec.model == "lstm" and spec.train_size == 64:
            return min(spec.training["lr"], 1.0)
        return 1 - abs(math.log10(spec.training["lr"] / 3e-3)) / 10

    console = Console(record=True, width=250)
    with Store(tmp_path / "t.sqlite") as store:
        outcome = launch(the_plan, matrix, store, Scripted(score), console)
        stored = store.runs()
        print_summary(stored, console, run_ids=outcome.planned)
    text = console.export_text()
    assert "lstm on copy n=64: selected lr" in text and "round 1 of at most 2" in text
    assert "extension round 2" in text and "still at the high edge" in text

    tune = [r for r in stored if r.trial["stage"] == "tune"]
    evals = [r for r in stored if r.trial["stage"] == "eval"]
    assert len(tune) + len(evals) == len(stored) == len(outcome.planned)
    assert {r.seed for r in tune} == {10_000}
    assert {r.seed for r in evals} == {0, 1, 2}  # the tuning seed is never evaluated
    counts: dict = {}
    for r in tune:
        counts[(r.model, r.train_size)] = counts.get((r.model, r.train_size), 0) + 1
    # The extended cell: 8 + 2 rounds x 4 for both models; the other cell: 8 for both.
    assert counts == {("lstm", 64): 16, ("transformer", 64): 16, ("lstm", 128): 8,
                      ("transformer", 128): 8}
    chosen = {(r.model, r.train_size): r.trial for r in evals}
    assert chosen[("lstm", 64)]["extended"] == ["high", "high"]
    assert chosen[("lstm", 64)]["lr_edge"] == "high" and chosen[("lstm", 64)]["trials"] == 16
    assert chosen[("transformer", 64)]["trials"] == 16
    assert "extended" not in chosen[("lstm", 128)]
    assert len(evals) == 4 * 3
    # The summary scores the 3 evaluation runs of each selection, none of the trials.
    summary = [line for line in text.splitlines() if line.startswith("│ copy")]
    assert len(summary) == 4
    assert all(re.search(r"│ 3\b", line) for line in summary), summary
    # ... as does the analysis: no run on the tuning seed is ever evaluated.
    from seqbench.analysis.cells import group

    for cell in group(stored):
        for m in cell.models.values():
            assert sorted(r.seed for r in m.done) == [0, 1, 2], (cell.train_size, m.name)

    # Relaunching repeats every decision from the stored records and runs nothing new.
    again = Scripted(score)
    with Store(tmp_path / "t.sqlite") as store:
        launch(the_plan, matrix, store, again, Console(record=True, width=250))
        assert len(store.runs()) == len(stored)
    assert again.seen == []


def test_tuning_trials_train_on_a_tuning_seed_and_the_winner_on_every_seed(tmp_path):
    db = tmp_path / "tuned.sqlite"
    args = ["run", "--models", "lstm", "--seeds", "0,1", *TINY, "--tune-trials", "2",
            "--tune-extend", "0", "--executor", "sequential", "--db", db]
    dry = bench_here(*args[:-2], "--dry-run")
    assert dry.rc == 0, dry.stderr
    out = dry.stdout
    assert "lstm: lr 0.0001 .. 0.03 (log-uniform)" in out and "num_layers 1 .. 3" in out
    assert "2 planned runs" in out

    rc, out, err = bench_here(*args)
    assert rc == 0, err[-2000:]
    stored = list(rows(db).values())
    for r in stored:
        r["trial"], r["config"] = json.loads(r["trial"]), json.loads(r["config"])
    tune = [r for r in stored if r["trial"]["stage"] == "tune"]
    evals = [r for r in stored if r["trial"]["stage"] == "eval"]
    assert sorted(r["seed"] for r in tune) == [10_000, 10_000]
    assert sorted(r["seed"] for r in evals) == [0, 1]
    best = max(tune, key=lambda r: r["best_val"])
    strip = lambda c: {k: v for k, v in c.items() if k != "seed"}  # noqa: E731
    assert all(strip(r["config"]) == strip(best["config"]) for r in evals)
    assert all(r["trial"]["trials"] == 2 for r in evals)


def test_wandb_logs_offline_and_a_wandb_failure_only_warns(cli, tmp_path):
    pytest.importorskip("wandb")
    db = tmp_path / "wb.sqlite"
    args = ["run", "--models", "lstm", "--seeds", "0", *TINY, "--executor", "sequential",
            "--wandb", "--wandb-project", "seqbench-test", "--db", db]
    rc, out, err = cli(*args, env={"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)})
    assert rc == 0, err[-2000:]
    runs = list((tmp_path / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list(tmp_path.rglob("*"))[:20]
    assert "wandb sync" in out

    db2 = tmp_path / "wb2.sqlite"  # W&B refuses to start: nothing of it lingers in this process
    rc, out, err = bench_here(*args[:-1], db2, env={"WANDB_MODE": "no-such-mode"})
    assert rc == 0, err[-2000:]
    assert "warning: W&B logging disabled for this run" in err
    assert [r["status"] for r in rows(db2).values()] == ["done"]


# --------------------------------------------------------------------------------------------
# Workers end with their launcher; torch threads follow the cores a run has


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_exit_at_once_and_quietly_when_the_launcher_is_killed(tmp_path):
    db = tmp_path / "orphans.sqlite"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    log = tmp_path / "stderr.log"
    args = ["run", "--models", "lstm", "--seeds", "0,1", *TINY[:-4], "--max-steps", "200000",
            "--val-every", "100000", "--executor", "local", "--workers", "2", "--db", str(db)]
    with open(log, "w") as err:
        proc = subprocess.Popen([*bench_command(), *args], env={**env(), "TMPDIR": str(scratch)},
                                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.time() + 120
        while time.time() < deadline:  # both workers training
            running = 0
            if db.exists():
                try:
                    running = sum(r["status"] == "running" for r in rows(db).values())
                except sqlite3.OperationalError:
                    pass
            if running == 2:
                break
            time.sleep(0.2)
        else:
            proc.kill()
            raise AssertionError("the workers never started training")
        workers = _children(proc.pid)
        assert workers, "no worker processes"
        time.sleep(1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        t0 = time.time()
        while any(_alive(w) for w in workers) and time.time() - t0 < 10:
            time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "workers outlived their launcher"
    assert time.time() - t0 < 5
    time.sleep(0.5)
    text = log.read_text()
    assert "Traceback" not in text and "BrokenPipe" not in text, text[-2000:]
    assert not list(scratch.glob("seqbench-worker-*")), "a worker left its temporary files"


def test_local_workers_split_the_usable_cores(monkeypatch):
    from seqbench.api import PluginError
    from seqbench.experiment import executors

    monkeypatch.setattr(executors, "usable_cores", lambda: 6)
    monkeypatch.setattr(executors.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert executors.LocalExecutor(2).threads == 3
    assert executors.LocalExecutor(0).workers == 6 and executors.LocalExecutor(0).threads == 1
    monkeypatch.setattr(executors.os, "getloadavg", lambda: (4.2, 4.0, 4.0))
    assert executors.LocalExecutor(2).threads == 2  # 2 cores left free: one thread each
    with pytest.raises(PluginError, match="at most 24 local workers"):
        executors.LocalExecutor(25)


@pytest.mark.parametrize("load, threads", [(0.1, 2), (1.0, 1), (5.0, 1)])
def test_a_sequential_run_uses_the_cores_it_has_not_every_core_of_the_machine(
        monkeypatch, load, threads):
    """Two threads on a 2-core machine that other work keeps busy spin against each other
    (10-60x slower); the sequential executor gives each run the cores not busy elsewhere."""
    import torch

    from seqbench.experiment import executors, runner

    seen = []
    monkeypatch.setattr(executors, "usable_cores", lambda: 2)
    monkeypatch.setattr(executors.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(runner, "execute", lambda spec, factory=None: seen.append(
        torch.get_num_threads()) or {"run_id": spec["run_id"]})
    before = torch.get_num_threads()
    try:
        executors.SequentialExecutor().run([{"run_id": "a"}, {"run_id": "b"}],
                                           lambda spec: None, lambda record: None)
    finally:
        torch.set_num_threads(before)
    assert seen == [threads, threads]


# --------------------------------------------------------------------------------------------
# Local workers that die starting or between runs, and starts that cannot happen


def _copy_runs(count: int) -> list[dict]:
    from seqbench.experiment import matrixfile
    from seqbench.experiment.plan import plan
    from seqbench.registry import registry

    reg = registry()
    matrix = matrixfile.build_matrix(
        {}, "lstm", "copy", "16", f"0-{count - 1}", ("hidden_size=8",),
        ("copy.T=3", "copy.val_size=20", "copy.test_size=20"), {"max_steps": 20, "val_every": 10},
        {}, list(reg.models), list(reg.tasks))
    return [r.to_dict() for r in plan(matrix, reg).runs]


def test_a_worker_killed_while_starting_leaves_its_run_to_the_next_worker(monkeypatch):
    from seqbench.experiment import executors

    start, killed = executors.LocalExecutor._start, []

    def start_then_kill(self):
        conn = start(self)
        if not killed:  # the first worker, long before it is warm: as the OOM killer would
            killed.append(self.procs[conn])
            os.kill(killed[0].pid, signal.SIGKILL)
        return conn

    monkeypatch.setattr(executors.LocalExecutor, "_start", start_then_kill)
    records: list[dict] = []
    executors.LocalExecutor(1).run(_copy_runs(1), lambda spec: True, records.append)
    assert killed and killed[0].exitcode == -signal.SIGKILL
    assert [r["status"] for r in records] == ["done"]  # trained by the next worker, not failed


def test_a_worker_dead_between_runs_costs_no_run_it_never_received():
    from seqbench.experiment import executors

    pool, records = executors.LocalExecutor(1), []

    def record_then_kill(record: dict) -> None:
        records.append(record)
        if len(records) == 1:  # the idle worker dies before it is handed the next run
            [proc] = pool.procs.values()
            proc.kill()
            proc.join()

    pool.run(_copy_runs(2), lambda spec: True, record_then_kill)
    assert [r["status"] for r in records] == ["done", "done"], [r.get("error") for r in records]


def test_a_logger_factory_workers_cannot_receive_is_one_error_before_anything_runs():
    from seqbench.api import PluginError
    from seqbench.experiment import executors

    with pytest.raises(PluginError, match="cannot be sent to worker processes.*sequential"):
        executors.LocalExecutor(1, logger_factory=lambda spec: None)


def test_a_start_that_fails_leaves_no_run_marked_running(monkeypatch, tmp_path):
    from seqbench.experiment import executors

    def no_process(self):
        raise OSError(11, "Resource temporarily unavailable")  # fork's EAGAIN

    monkeypatch.setattr(executors.LocalExecutor, "_start", no_process)
    db = tmp_path / "nothing.sqlite"
    with pytest.raises(OSError, match="Resource temporarily unavailable"):
        bench_here("run", "--models", "lstm", "--seeds", "0-1", *TINY, "--executor", "local",
                   "--workers", "1", "--db", db)
    assert not rows(db)  # the claimed run went with the launch that could not train it


def test_an_executor_error_is_reported_even_when_the_file_fails_too(monkeypatch, tmp_path):
    from seqbench.experiment import executors
    from seqbench.store import Store

    def no_process(self):
        raise OSError(11, "Resource temporarily unavailable")

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(executors.LocalExecutor, "_start", no_process)
    monkeypatch.setattr(Store, "forget_running", broken)
    with pytest.raises(OSError, match="Resource temporarily unavailable"):  # not the cleanup's
        bench_here("run", "--models", "lstm", "--seeds", "0", *TINY, "--executor", "local",
                   "--workers", "1", "--db", tmp_path / "x.sqlite")


def test_ctrl_c_between_a_claim_and_its_noting_leaves_nothing_running(monkeypatch, tmp_path):
    from seqbench.experiment.leases import Leases

    claim, claims = Leases.claim, []

    def claim_then_interrupt(self, store, spec, retry_failed):
        outcome = claim(self, store, spec, retry_failed)  # committed: the row says running
        claims.append(outcome)
        if len(claims) == 2:
            raise KeyboardInterrupt  # as a Ctrl-C landing just after the commit
        return outcome

    monkeypatch.setattr(Leases, "claim", claim_then_interrupt)
    db = tmp_path / "interrupted.sqlite"
    rc, out, err = bench_here("run", "--models", "lstm", "--seeds", "0-2", *TINY,
                              "--executor", "sequential", "--db", db)
    assert rc == 130 and claims == ["claimed", "claimed"]
    assert [r["status"] for r in rows(db).values()] == ["done"]  # the second claim is gone


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux's")
def test_workers_outlive_their_fork_server_and_the_matrix_ends():
    import threading
    from multiprocessing import forkserver
    from multiprocessing.connection import wait

    from seqbench.experiment import executors

    pool, records = executors.LocalExecutor(2), []

    def record_then_kill_the_server(record: dict) -> None:
        records.append(record)
        if len(records) == 1:  # one worker idle, one training: the server goes (OOM killer)
            os.kill(forkserver._forkserver._forkserver_pid, signal.SIGKILL)
            wait([p.sentinel for p in pool.procs.values()], timeout=30)  # the pool sees it

    runs = _copy_runs(2)
    # the second trains on when the first is done: its worker busy, the first one's idle
    runs[1]["training"] = {**runs[1]["training"], "max_steps": 2000, "patience": 2000}
    launch = threading.Thread(
        target=pool.run, args=(runs, lambda spec: True, record_then_kill_the_server), daemon=True)
    launch.start()
    launch.join(timeout=240)
    assert not launch.is_alive(), "the launch hung once the fork server was gone"
    assert [r["status"] for r in records] == ["done", "done"], [r.get("error") for r in records]
