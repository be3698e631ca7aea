"""Matrices that survive interruption: kill -9, Ctrl-C, dying workers, retries; presets; tuning."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import OFFLINE, PLUGIN_VARS, bench_command, default_sigint

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


def wait_for_done(db: Path, proc: subprocess.Popen, at_least: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the matrix finished before it could be interrupted"
        if db.exists():
            try:
                done = sum(r["status"] == "done" for r in rows(db).values())
            except sqlite3.OperationalError:
                done = 0
            if done >= at_least:
                return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {at_least} runs done after {timeout} s")


@pytest.mark.parametrize("executor", ["sequential", "local"])
def test_kill_9_then_relaunch_redoes_only_what_is_missing(cli, tmp_path, executor):
    db = tmp_path / "killed.sqlite"
    args = ["run", "--models", "lstm,gru", "--seeds", "0-7", *TINY, "--executor", executor,
            "--workers", "2", "--db", str(db)]
    proc = subprocess.Popen([*bench_command(), *args], env=env(), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_done(db, proc, at_least=3)
    os.kill(proc.pid, signal.SIGKILL)  # no cleanup of any kind
    proc.wait()
    before = rows(db)
    done_before = {k: v for k, v in before.items() if v["status"] == "done"}
    assert any(v["status"] == "running" for v in before.values()), "nothing was in flight"

    rc, out, err = cli(*args, cwd=tmp_path)
    assert rc == 0, err[-2000:]
    assert "left unfinished by an earlier launch; redoing them" in out
    after = rows(db)
    assert len(after) == 16 and all(v["status"] == "done" for v in after.values())
    for run_id, row in done_before.items():  # finished runs kept exactly, not redone
        assert after[run_id]["finished_at"] == row["finished_at"]
        assert after[run_id]["test"] == row["test"]
    assert f"{16 - len(done_before)} done" in out


def test_ctrl_c_keeps_finished_runs_and_says_what_is_left(tmp_path):
    db = tmp_path / "interrupted.sqlite"
    args = ["run", "--models", "lstm", "--seeds", "0-19", *TINY, "--executor", "local",
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
    assert left and all(v["status"] == "done" for v in left.values())  # nothing half-written

    rerun = subprocess.run([*bench_command(), *args], env=env(), cwd=tmp_path, text=True,
                           capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{len(left)} of 20 runs already" in rerun.stdout
    assert len(rows(db)) == 20


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
    rc, out, err = cli("run", "--models", "dies,lstm", "--seeds", "0,1", *TINY,
                       "--executor", "local", "--workers", "2", "--db", db, pythonpath=[dist])
    assert rc == 1, err[-2000:]
    by_model: dict[str, list] = {}
    for row in rows(db).values():
        by_model.setdefault(row["model"], []).append(row)
    assert [r["status"] for r in by_model["dies"]] == ["failed", "failed"]
    assert all("died from SIGKILL" in r["error"] for r in by_model["dies"])
    assert [r["status"] for r in by_model["lstm"]] == ["done", "done"]


def test_retry_failed_reruns_only_with_the_flag(cli, make_dist, tmp_path):
    dist = make_dist("seqbench-dies2", {"seqbench_dies2": SUICIDAL}, {"dies": "seqbench_dies2"})
    db = tmp_path / "retry.sqlite"
    args = ["run", "--models", "dies,lstm", "--seeds", "0", *TINY, "--workers", "1", "--db", db]
    assert cli(*args, pythonpath=[dist]).rc == 1
    first = rows(db)

    rc, out, _ = cli(*args, pythonpath=[dist])
    assert rc == 0 and "2 of 2 runs already done, failed or diverged" in out
    assert rows(db) == first

    rc, out, _ = cli(*args, "--retry-failed", pythonpath=[dist])
    assert rc == 1 and "1 of 2 runs already done" in out
    again = rows(db)
    failed = [k for k, v in first.items() if v["status"] == "failed"]
    assert again[failed[0]]["started_at"] >= first[failed[0]]["started_at"]
    assert again[failed[0]]["status"] == "failed"
    kept = [k for k, v in first.items() if v["status"] == "done"]
    assert again[kept[0]] == first[kept[0]]


# --------------------------------------------------------------------------------------------
# Presets and the tuning protocol


def test_presets_are_valid_and_the_claim_preset_is_the_study(cli):
    from seqbench.experiment import matrixfile
    from seqbench.experiment.plan import plan
    from seqbench.registry import registry

    reg = registry()
    assert {"quick", "claim"} <= set(matrixfile.presets())
    for name in matrixfile.presets():
        data = matrixfile.read(matrixfile.preset_path(name))
        matrix = matrixfile.build_matrix(data, None, None, None, None, (), (), {}, {},
                                         list(reg.models), list(reg.tasks))
        assert plan(matrix, reg).runs, name
        rc, out, err = cli("run", "--preset", name, "--dry-run")
        assert rc == 0, err

    claim = matrixfile.read(matrixfile.preset_path("claim"))
    assert set(claim["models"]) == {"rnn", "lstm", "gru", "seq2seq-attention", "transformer"}
    assert set(claim["tasks"]) == {"classification", "copy", "translation"}
    assert len(claim["seeds"]) >= 6  # the fewest for p < 0.05 in a paired two-sided test
    assert len(claim["tuning"]["lr"]) >= 3
    for task, sizes in claim["train_sizes"].items():
        assert len(sizes) >= 5 and sizes[-1] is None, task  # up to the full data set
        numeric = sizes[:-1]
        assert all(b / a >= 1.9 for a, b in zip(numeric, numeric[1:])), task
    assert len(claim["task_params"]["copy"]["T"]) >= 2


def test_matrix_file_errors_are_one_line(cli, tmp_path):
    cases = {
        "unknown key": 'models = ["lstm"]\nmodles = ["x"]\n',
        "zero seeds": 'models = ["lstm"]\ntasks = ["copy"]\nseeds = []\n',
        "size too large": 'models = ["lstm"]\ntasks = ["copy"]\n[train_sizes]\ncopy = [20000]\n',
        "sizes for a task not in the matrix": 'tasks = ["copy"]\n[train_sizes]\ncopyy = [10]\n',
        "tuning without lrs": 'tasks = ["copy"]\n[tuning]\nseeds = 1\n',
    }
    for what, text in cases.items():
        path = tmp_path / "m.toml"
        path.write_text(text)
        db = tmp_path / f"{what}.sqlite"
        rc, out, err = cli("run", "--matrix", path, "--db", db)
        assert rc == 2, (what, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("error:"), (what, err)
        assert not db.exists(), what


def _record(run_id, model, lr, seed, best_val, size=64):
    return {"run_id": run_id, "model": model, "task": "copy", "train_size": size, "seed": seed,
            "status": "done", "best_val": best_val, "higher_is_better": True,
            "trial": {"lr": lr}}


def test_second_stage_runs_the_trial_best_on_validation_on_the_other_seeds():
    from seqbench.experiment.plan import Matrix, plan
    from seqbench.registry import registry
    from seqbench.experiment.tuning import second_stage, select_trial

    matrix = Matrix(models=["lstm"], tasks=["copy"], train_sizes=[64], seeds=[0, 1, 2],
                    tuning={"lr": [1e-3, 1e-2], "seeds": 1})
    p = plan(matrix, registry())
    assert sorted(r.training["lr"] for r in p.runs) == [1e-3, 1e-2]
    assert {r.seed for r in p.runs} == {0}
    records = {r.run_id: {**_record(r.run_id, "lstm", r.training["lr"], 0,
                                    0.9 if r.training["lr"] == 1e-2 else 0.5),
                          "config": r.config()} for r in p.runs}
    stage = second_stage(p.runs, p.seeds, records, p.tuning)
    assert sorted(r.seed for r in stage.runs) == [1, 2]
    assert {r.training["lr"] for r in stage.runs} == {1e-2}
    assert all(r.trial == {"lr": 1e-2} for r in stage.runs)

    # After stage two, the choice is still made on the shared (tuning) seed: a worse mean over
    # more seeds does not switch it.
    more = [_record("a", "lstm", 1e-2, 0, 0.9), _record("b", "lstm", 1e-2, 1, 0.1),
            _record("c", "lstm", 1e-2, 2, 0.1), _record("d", "lstm", 1e-3, 0, 0.5)]
    assert json.loads(select_trial(more, True)) == {"lr": 1e-2}
    diverged = [{**_record("e", "lstm", 1e-2, 0, None), "status": "diverged"},
                _record("f", "lstm", 1e-3, 0, 0.1)]
    assert json.loads(select_trial(diverged, True)) == {"lr": 1e-3}


def test_wandb_logs_offline_and_a_wandb_failure_only_warns(cli, tmp_path):
    pytest.importorskip("wandb")
    db = tmp_path / "wb.sqlite"
    args = ["run", "--models", "lstm", "--seeds", "0", *TINY, "--workers", "1", "--wandb",
            "--wandb-project", "seqbench-test", "--db", db]
    rc, out, err = cli(*args, env={"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)})
    assert rc == 0, err[-2000:]
    runs = list((tmp_path / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list(tmp_path.rglob("*"))[:20]
    assert "wandb sync" in out

    db2 = tmp_path / "wb2.sqlite"
    rc, out, err = cli(*args[:-1], db2, env={"WANDB_MODE": "no-such-mode"})
    assert rc == 0, err[-2000:]
    assert "warning: W&B logging disabled for this run" in err
    assert [r["status"] for r in rows(db2).values()] == ["done"]
