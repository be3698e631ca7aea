"""End to end through the real ``bench`` command, against a real SQLite file.

One small matrix (16 runs of 10 steps) is trained once for the module by a ``bench`` process of
its own and inspected by most tests; determinism, divergence and failure get their own tiny
runs. Commands whose process is not the point run in this one (``bench_here``): a ``bench``
process that trains or plans imports torch and Lightning again, seconds each on a busy core.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3

import pytest

from conftest import bench_here
from seqbench.experiment import matrixfile
from seqbench.experiment.plan import plan
from seqbench.registry import registry

MATRIX = [
    "--models", "lstm,transformer", "--tasks", "copy,classification",
    "--train-sizes", "16,32", "--seeds", "0,1", "--max-steps", "10", "--val-every", "5",
    "-t", "copy.T=5", "--param-budget", "3000",  # small models: a step costs little
]
REQUIRED = {"run_id", "model", "task", "train_size", "seed", "status", "params",
            "primary_metric", "test"}
CONVERGENCE = {"steps", "samples", "train_seconds", "steps_to_95", "samples_to_95",
               "seconds_to_95"}


def dump(db) -> list:
    """Every row of the runs, curves and matrices tables: equal dumps, unchanged database."""
    conn = sqlite3.connect(db)
    try:
        return [
            conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("runs", "curves", "matrices")
        ]
    finally:
        conn.close()


def strict_json(text: str):
    """JSON as every other tool reads it: NaN and Infinity are not JSON."""

    def refuse(name):
        raise ValueError(f"{name} is not valid JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def matrix_db(cli, tmp_path_factory):
    db = tmp_path_factory.mktemp("e2e") / "bench.sqlite"
    # in the launcher's process: the local executor's workers have tests of their own
    result = cli("run", *MATRIX, "--executor", "sequential", "--db", db)
    assert result.rc == 0, result.stderr[-3000:]
    return db, result


@pytest.fixture(scope="module")
def runs(matrix_db):
    db, _ = matrix_db
    rc, out, err = bench_here("results", "--db", db, "--json")
    assert rc == 0, err
    return strict_json(out)


# --------------------------------------------------------------------------------------------
# The matrix


def test_matrix_stores_every_run_done(matrix_db, runs):
    db, result = matrix_db
    assert "16 done, 0 diverged, 0 failed" in result.stdout
    assert len(runs) == 16
    assert {(r["model"], r["task"], r["train_size"], r["seed"]) for r in runs} == {
        (m, t, n, s) for m in ("lstm", "transformer") for t in ("copy", "classification")
        for n in (16, 32) for s in (0, 1)
    }
    for r in runs:
        assert REQUIRED | CONVERGENCE <= set(r)
        assert r["status"] == "done" and r["error"] is None
        assert len(r["run_id"]) == 16
        primary = {"copy": "recall_accuracy", "classification": "accuracy"}[r["task"]]
        assert r["primary_metric"] == primary
        assert 0.0 <= r["test"][primary] <= 1.0 and r["primary_value"] == r["test"][primary]
        assert r["param_count"] > 1000
        assert r["step_flops"] > r["param_count"]  # counted per run: a step's forward + backward
        assert r["train_examples"] == r["train_size"]
        assert r["steps"] == 10 and r["samples"] == 10 * min(32, r["train_size"])
        assert r["steps_to_95"] in (5, 10)
        assert r["params"]["training"]["max_steps"] == 10
        assert r["params"]["training"]["param_budget"] == 3000
        assert r["params"]["training"]["val_every"] == 5
        assert r["params"]["task"]["T" if r["task"] == "copy" else "data"] in (5, "digits")
        assert "hidden_size" in r["params"]["model"] or "d_model" in r["params"]["model"]
        versions = r["environment"]["versions"]
        assert {"seqbench", "torch", "pytorch-lightning"} <= set(versions)
        assert r["environment"]["device"] == "cpu"
    copy_run = next(r for r in runs if r["task"] == "copy")
    assert copy_run["extras"]["sequence_length"] == 5 + 2 * 10


def test_curves_are_stored(matrix_db, runs):
    db, _ = matrix_db
    conn = sqlite3.connect(db)
    curves = {}
    for run_id, step, samples, train_loss, val_primary in conn.execute(
        "SELECT run_id, step, samples, train_loss, val_primary FROM curves ORDER BY run_id, step"
    ):
        curves.setdefault(run_id, []).append((step, samples, train_loss, val_primary))
    conn.close()
    assert set(curves) == {r["run_id"] for r in runs}
    for r in runs:
        points = curves[r["run_id"]]
        assert [p[0] for p in points] == [5, 10]
        assert all(math.isfinite(p[2]) and p[3] is not None for p in points)
        best = max(p[3] for p in points)
        assert r["best_val"] == pytest.approx(best)


def test_run_ids_match_the_plan_in_this_process(runs):
    reg = registry()
    args = dict(zip(MATRIX[::2], MATRIX[1::2]))
    matrix = matrixfile.build_matrix(
        file_data={}, models=args["--models"], tasks=args["--tasks"],
        train_sizes=args["--train-sizes"], seeds=args["--seeds"], model_params=(),
        task_params=(args["-t"],),
        training={"max_steps": 10, "val_every": 5, "param_budget": 3000}, tuning={},
        all_models=list(reg.models), all_tasks=list(reg.tasks),
    )
    assert {r.run_id for r in plan(matrix, reg).runs} == {r["run_id"] for r in runs}


def test_rerun_skips_everything(matrix_db):
    db, _ = matrix_db
    before = dump(db)
    rc, out, err = bench_here("run", *MATRIX, "--db", db)
    assert rc == 0, err
    assert "16 of 16 runs already done" in out
    assert "0 done, 0 diverged, 0 failed" in out
    assert dump(db) == before


# --------------------------------------------------------------------------------------------
# A task label: a name for the overview, never part of a run's identity


def planned_ids(text: str) -> set[str]:
    return {line.split()[1] for line in text.splitlines()
            if line.startswith("│") and len(line.split()) > 2 and len(line.split()[1]) == 16}


def test_a_label_plans_the_same_runs(matrix_db, tmp_path):
    db = tmp_path / "copy.sqlite"
    db.write_bytes(matrix_db[0].read_bytes())
    plain = bench_here("run", *MATRIX, "--db", db, "--dry-run")
    labelled = bench_here("run", *MATRIX, "-t", "copy.label=Copy T5", "--db", db, "--dry-run")
    assert plain.rc == labelled.rc == 0, labelled.stderr
    assert len(planned_ids(plain.stdout)) == 16
    assert planned_ids(labelled.stdout) == planned_ids(plain.stdout)
    assert "matrix " + plain.stdout.split("(matrix ")[1][:12] in labelled.stdout  # same matrix id
    assert "16 of 16 planned runs already done" in labelled.stdout
    assert "copy is labelled 'Copy T5'" in labelled.stdout


def test_labelling_a_matrix_that_ran_retrains_nothing_and_shows(matrix_db, tmp_path):
    from seqbench.dashboard.data import build_snapshot

    db = tmp_path / "copy.sqlite"
    db.write_bytes(matrix_db[0].read_bytes())
    runs_before = dump(db)[:2]
    for label in ("Copy five", "Copy T5"):  # a changed label: the latest shows
        rc, out, err = bench_here("run", *MATRIX, "-t", f"copy.label={label}", "--db", db)
        assert rc == 0, err
        assert "16 of 16 runs already done" in out and "0 done, 0 diverged, 0 failed" in out
    assert dump(db)[:2] == runs_before
    rc, out, err = bench_here("analyze", "--db", db)
    assert rc == 0, err
    assert "Copy T5" in out and "Copy five" not in out
    assert "classification" in out  # the unlabelled task keeps its derived label
    snap = build_snapshot(db, "test", pairs="auto", confidence=0.95, n_boot=200)
    assert "Copy T5" in {v["label"] for v in snap.summary["variants"]}
    rc, out, err = bench_here("analyze", "--db", db, "--json")
    assert {c["variant"].get("label") for c in json.loads(out)["cells"]} == {"Copy T5", None}


@pytest.mark.parametrize("given, says", [
    ("copy.label=", "task 'copy': label '' is empty; give a short name"),
    ("copy.label=" + "x" * 41, "has 41 characters; a label has at most 40"),
    ("label=Copy", "names one task variant: set it for one task"),
    ("nosuch.label=X", "a label given for 'nosuch', which is not a task of this matrix"),
])
def test_a_bad_label_is_one_line(cli, given, says, tmp_path):
    rc, out, err = cli("run", *MATRIX, "-t", given, "--db", tmp_path / "x.sqlite", "--dry-run")
    assert rc == 2 and says in err, err
    assert len(err.strip().splitlines()) == 1


def test_a_label_on_a_swept_task_is_refused(cli, tmp_path):
    matrix = tmp_path / "m.toml"
    matrix.write_text('models = ["lstm"]\ntasks = ["copy"]\n[task_params.copy]\nT = [5, 6]\n'
                      'label = "Copy"\n')
    rc, out, err = cli("run", "--matrix", matrix, "--db", tmp_path / "x.sqlite", "--dry-run")
    assert rc == 2 and "names one task variant, but the matrix sweeps T" in err, err


# --------------------------------------------------------------------------------------------
# bench results


def test_results_csv(matrix_db, runs):
    db, _ = matrix_db
    rc, out, err = bench_here("results", "--db", db, "--csv")
    assert rc == 0, err
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == 16
    assert REQUIRED | CONVERGENCE <= set(table[0])
    by_id = {r["run_id"]: r for r in runs}
    for row in table:
        assert json.loads(row["test"]) == by_id[row["run_id"]]["test"]
        assert json.loads(row["params"]) == by_id[row["run_id"]]["params"]
        assert int(row["train_size"]) in (16, 32)


def test_results_filters(cli, matrix_db):
    db, _ = matrix_db
    rc, out, err = cli("results", "--db", db, "--json", "--model", "lstm", "--status", "done")
    assert rc == 0, err
    rows = strict_json(out)
    assert len(rows) == 8 and {r["model"] for r in rows} == {"lstm"}
    rc, out, err = cli("results", "--db", db, "--json", "--task", "copy", "--train-size", "16",
                       "--seed", "0")
    rows = strict_json(out)
    assert {(r["model"], r["task"], r["train_size"], r["seed"]) for r in rows} == {
        ("lstm", "copy", 16, 0), ("transformer", "copy", 16, 0)
    }
    rc, out, err = cli("results", "--db", db, "--json", "--status", "failed")
    assert rc == 0 and strict_json(out) == []


def test_results_table(cli, matrix_db, runs):
    db, _ = matrix_db
    rc, out, err = cli("results", "--db", db, "--model", "transformer")
    assert rc == 0, err
    assert "8 runs" in out
    ids = {r["run_id"] for r in runs if r["model"] == "transformer"}
    assert all(i in out for i in ids)


def test_results_without_a_database(cli, tmp_path):
    db = tmp_path / "none.sqlite"
    rc, out, err = cli("results", "--db", db)
    assert rc == 2
    assert err == f"error: no results database at {db}; run `bench run` first\n"
    assert not db.exists()


# --------------------------------------------------------------------------------------------
# bench data


def test_data_copy(cli):
    rc, out, err = cli("data", "copy", "--limit", "3", "--json", "-t", "T=5")
    assert rc == 0, err
    rows = json.loads(out)
    assert len(rows) == 3
    for row in rows:
        src, tgt = row["source"].split(), row["target"].split()
        assert len(src) == len(tgt) == 5 + 2 * 10
        assert src[14] == "a9" and tgt[:15] == ["a0"] * 15 and tgt[15:] == src[:10]


def test_data_translation_is_scan(cli):
    rc, out, err = cli("data", "translation", "--split", "test", "--limit", "2", "--json")
    assert rc == 0, err
    rows = json.loads(out)
    assert len(rows) == 2
    for row in rows:
        assert row["source"] and row["target"]
        assert all(tok.startswith("I_") for tok in row["target"].split())
    assert any("I_JUMP" in row["target"] for row in rows) or any(
        tok in rows[0]["target"] for tok in ("I_WALK", "I_RUN", "I_LOOK", "I_TURN_LEFT")
    )


def test_data_classification_shows_labels_and_sizes():
    rc, out, err = bench_here("data", "classification", "--limit", "4", "--json")
    assert rc == 0, err
    rows = json.loads(out)
    assert len(rows) == 4
    assert all(r["label"] in {str(d) for d in range(10)} for r in rows)
    assert all(len(r["source"].split()) == 64 for r in rows)

    rc, out, err = bench_here("data", "classification", "--limit", "2")
    assert rc == 0, err
    assert "classification / train: 2 of 1258 examples" in out  # no size: the full split
    assert "label" in out


def test_data_unknown_task(cli):
    rc, out, err = cli("data", "cpy")
    assert rc == 2
    assert err.startswith("error: unknown task 'cpy'") and "did you mean 'copy'" in err


# --------------------------------------------------------------------------------------------
# Determinism


def test_same_run_twice_gives_identical_results(matrix_db, runs, tmp_path):
    """One configuration of the matrix, run again alone into a new database, in this test's
    process (the matrix trained in a process of its own): the very same numbers (so neither the
    process nor the runs before it in the matrix change a result)."""
    one = ["--models", "transformer", "--tasks", "copy", "--train-sizes", "16", "--seeds", "1",
           "--max-steps", "10", "--val-every", "5", "-t", "copy.T=5", "--param-budget", "3000"]
    db = tmp_path / "again.sqlite"
    rc, out, err = bench_here("run", *one, "--executor", "sequential", "--db", db)
    assert rc == 0, err[-3000:]
    (again,) = strict_json(bench_here("results", "--db", db, "--json").stdout)
    (first,) = [r for r in runs if r["run_id"] == again["run_id"]]
    assert (first["model"], first["task"], first["train_size"], first["seed"]) == (
        "transformer", "copy", 16, 1)
    assert again["test"] == first["test"]  # exactly, not approximately
    assert again["best_val"] == first["best_val"]
    assert again["param_count"] == first["param_count"]
    query = "SELECT step, samples, train_loss, val_primary, val FROM curves WHERE run_id = ?"
    curves = []
    for path in (matrix_db[0], db):
        conn = sqlite3.connect(path)
        curves.append(conn.execute(query, (again["run_id"],)).fetchall())
        conn.close()
    assert curves[0] == curves[1] and len(curves[0]) == 2


# --------------------------------------------------------------------------------------------
# Runs that diverge or fail: recorded, and the matrix goes on

BAD_MODELS = """
from seqbench import hookimpl
from seqbench.api import ModelPlugin, Param


def build(kind, shape, hparams, fail=False):
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(shape.src_vocab_size, 8)
            self.out = nn.Linear(8, shape.num_classes)
            self.steps = 0

        def forward(self, src, src_len):
            if fail:
                raise RuntimeError("boom: this model always fails")
            logits = self.out(self.embed(src).mean(1))
            if self.training:
                self.steps += 1
                if self.steps > hparams["nan_after"]:
                    return logits * float("nan")
            return logits

    return Tiny()


@hookimpl
def register_models(register):
    register(ModelPlugin(
        name="nan-model", description="its loss becomes NaN after a few steps",
        kinds=("classification",), defaults={"nan_after": Param(2)}, build=build,
        width_param=None,
    ))
    register(ModelPlugin(
        name="boom-model", description="its forward raises",
        kinds=("classification",), defaults={}, build=lambda k, s, h: build(k, s, h, fail=True),
        width_param=None,
    ))
"""


@pytest.fixture(scope="module")
def bad_models(make_dist):
    return make_dist("seqbench-bad-models", {"seqbench_bad_models": BAD_MODELS},
                     {"bad-models": "seqbench_bad_models"})


def test_diverged_and_failed_runs_are_recorded_and_the_matrix_goes_on(bad_models, on_path,
                                                                      tmp_path):
    on_path(bad_models)
    db = tmp_path / "bad.sqlite"
    rc, out, err = bench_here(
        "run", "--models", "nan-model,boom-model,lstm", "--tasks", "classification",
        "--train-sizes", "16", "--seeds", "0", "--max-steps", "10", "--val-every", "5",
        "--executor", "sequential", "--db", db,
    )
    assert rc == 1, err[-3000:]
    assert "1 done, 1 diverged, 1 failed" in out
    rc, out, err = bench_here("results", "--db", db, "--json")
    assert rc == 0, err
    by_model = {r["model"]: r for r in strict_json(out)}
    assert by_model["lstm"]["status"] == "done"

    diverged = by_model["nan-model"]
    assert diverged["status"] == "diverged"
    assert diverged["error"].startswith("Diverged: training loss became nan")

    failed = by_model["boom-model"]
    assert failed["status"] == "failed"
    assert failed["error"].startswith("RuntimeError: boom: this model always fails")
    assert "Traceback" in failed["error"] or "forward" in failed["error"]  # where it happened

    # failed and diverged runs are results too: the same command does not redo them
    before = dump(db)
    rc, out, err = bench_here(
        "run", "--models", "nan-model,boom-model,lstm", "--tasks", "classification",
        "--train-sizes", "16", "--seeds", "0", "--max-steps", "10", "--val-every", "5",
        "--db", db,
    )
    assert rc == 0, err[-3000:]
    assert "3 of 3 runs already" in out
    assert dump(db) == before


def test_final_step_is_validated(tmp_path):
    db = tmp_path / "tail.sqlite"
    rc, out, err = bench_here(
        "run", "--models", "lstm", "--tasks", "copy", "-t", "copy.T=2", "-m", "hidden_size=8",
        "--train-sizes", "4", "--max-steps", "3", "--val-every", "2", "--patience", "0",
        "--executor", "sequential", "--db", db,
    )
    assert rc == 0, err[-3000:]
    conn = sqlite3.connect(db)
    steps = [s for (s,) in conn.execute("SELECT step FROM curves ORDER BY step")]
    conn.close()
    assert steps == [2, 3]


def test_the_pooled_tables_name_the_data_sets_by_their_labels(tmp_path):
    from test_analysis import make_db
    from test_pool import atlas_runs

    from seqbench.experiment import labels
    from seqbench.store import Store

    db = make_db(tmp_path / "atlas.sqlite", atlas_runs())
    names = {"mr": "MR", "subj": "Subj", "sst2": "SST-2", "trec": "TREC-6"}
    with Store(db) as store:
        for name, label in names.items():
            labels.save(store, "m", [labels.TaskLabel(
                "classification", {"data": f"data/{name}.all.gz"}, label)], "2026-01-01")
    rc, out, err = bench_here("analyze", "--db", db, "--pool", "--bootstrap", "200")
    assert rc == 0, err
    assert all(label in out for label in names.values()), out
    assert "data/trec" not in out + err
