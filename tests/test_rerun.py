"""``bench rerun RUN_ID``: any stored run retrained from its stored configuration, compared."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import replace

import pytest

from conftest import bench_here
from seqbench.experiment.rerun import compare, spec_from_record
from seqbench.records import RunRecord

TINY = ["--models", "lstm", "--tasks", "copy", "-t", "copy.T=3", "-t", "copy.val_size=20",
        "-t", "copy.test_size=20", "-m", "hidden_size=8", "--train-sizes", "32", "--seeds", "0",
        "--max-steps", "30", "--val-every", "10", "--executor", "sequential"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """One tiny run, trained in this process (a ``bench rerun`` process then retrains it)."""
    db = tmp_path_factory.mktemp("rerun") / "db.sqlite"
    res = bench_here("run", *TINY, "--db", db)
    assert res.rc == 0, res.stderr
    runs = json.loads(bench_here("results", "--db", db, "--json").stdout)
    assert len(runs) == 1
    return db, runs[0]


def test_a_run_retrained_on_the_same_build_is_identical(cli, stored, tmp_path):
    db, run = stored
    before = db.read_bytes()
    scratch = tmp_path / "scratch.sqlite"
    res = cli("rerun", run["run_id"][:8], "--db", db, "--scratch", scratch)
    assert res.rc == 0, res.stdout + res.stderr
    assert "identical (the same build)" in res.stdout
    assert db.read_bytes() == before  # the source database is only read
    fresh = json.loads(cli("results", "--db", scratch, "--json").stdout)
    assert [r["run_id"] for r in fresh] == [run["run_id"]]
    assert fresh[0]["test"] == run["test"]


def test_a_stored_number_that_does_not_come_back_is_reported(stored, tmp_path):
    db, run = stored
    forged = tmp_path / "forged.sqlite"
    shutil.copy(db, forged)
    test = dict(run["test"], **{run["primary_metric"]: run["primary_value"] + 0.5})
    with sqlite3.connect(forged) as conn:
        conn.execute("UPDATE runs SET test = ? WHERE run_id = ?", (json.dumps(test), run["run_id"]))
    res = bench_here("rerun", run["run_id"], "--db", forged)  # the retraining: in this process
    assert res.rc == 1
    assert "differs (the same build: the same build must reproduce it exactly)" in res.stdout


def test_an_unknown_run_id_is_one_line(cli, stored):
    db, _ = stored
    res = cli("rerun", "nope", "--db", db)
    assert res.rc == 2 and res.stderr.strip().count("\n") == 0
    assert "no run 'nope' in this database" in res.stderr


def test_an_ambiguous_prefix_is_refused():
    from seqbench.api import PluginError
    from seqbench.experiment.rerun import find_run

    runs = [RunRecord(run_id=i, model="lstm", task="copy", kind="aligned", seed=0,
                      status="done") for i in ("ab12", "ab34")]
    with pytest.raises(PluginError, match="matches 2 runs"):
        find_run(runs, "ab")
    assert find_run(runs, "ab3").run_id == "ab34"


def test_scratch_cannot_be_the_source_database(cli, stored):
    db, run = stored
    before = db.read_bytes()
    res = cli("rerun", run["run_id"], "--db", db, "--scratch", db)
    assert res.rc == 2 and "must not be the database" in res.stderr
    assert db.read_bytes() == before


def test_missing_database_is_one_line(cli, tmp_path):
    res = cli("rerun", "abc", "--db", tmp_path / "none.sqlite")
    assert res.rc == 2 and res.stderr.startswith("error: no results database")
    assert not (tmp_path / "none.sqlite").exists()


def test_across_builds_the_primary_metric_is_compared_within_the_tolerance(stored):
    run = RunRecord.from_dict(stored[1])
    primary = run.primary_metric
    other_build = replace(run, environment={**run.environment, "device": "cuda: H200"})
    near = replace(run, test={**run.test, primary: run.primary_value + 0.01})
    far = replace(run, test={**run.test, primary: run.primary_value + 0.05})
    assert compare(other_build, near, tolerance=0.02).verdict == "within tolerance"
    assert compare(other_build, far, tolerance=0.02).verdict == "differs"
    assert compare(run, near, tolerance=0.02).verdict == "differs"  # same build: exact or nothing
    assert compare(run, replace(run), tolerance=0.0).verdict == "identical"


def test_a_configuration_that_no_longer_hashes_to_its_id_is_refused(stored):
    from seqbench.api import PluginError

    from seqbench.store import Store

    with Store(stored[0], readonly=True) as store:
        run = store.runs()[0]
    changed = replace(run, config={**run.config, "seed": run.config["seed"] + 1})
    with pytest.raises(PluginError, match="hashes to"):
        spec_from_record(changed)
    assert spec_from_record(run).run_id == run.run_id
