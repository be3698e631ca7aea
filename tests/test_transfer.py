"""Results that travel: `bench merge` of databases made by separate launches, and `bench export`."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import bench_here  # the launches train in this process too

TINY = ["--models", "lstm,gru", "--tasks", "copy", "-t", "copy.T=3", "-t", "copy.val_size=20",
        "-t", "copy.test_size=20", "-m", "hidden_size=8", "--train-sizes", "16",
        "--max-steps", "10", "--val-every", "5", "--patience", "0",
        "--executor", "sequential"]  # in the launcher: no worker process to start


@pytest.fixture(scope="module")
def launches(tmp_path_factory):
    """Two launches on overlapping seeds (seed 1 in both), and one launch of every seed."""
    root = tmp_path_factory.mktemp("launches")
    for name, seeds in (("a", "0-1"), ("b", "1-2"), ("one", "0-2")):
        rc, out, err = bench_here("run", *TINY, "--seeds", seeds, "--db", root / f"{name}.sqlite")
        assert rc == 0, err[-3000:]
    return root


def run_id(db: Path, model: str, seed: int) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT run_id FROM runs WHERE model = ? AND seed = ?",
                            (model, seed)).fetchone()[0]


def conflicting(launches: Path, tmp_path: Path) -> tuple[Path, Path, str]:
    """a and a copy of b in which lstm's seed-1 run found another test score (another machine)."""
    a, b = launches / "a.sqlite", tmp_path / "b.sqlite"
    shutil.copy(launches / "b.sqlite", b)
    rid = run_id(b, "lstm", 1)
    with sqlite3.connect(b) as conn:
        test = json.loads(conn.execute("SELECT test FROM runs WHERE run_id = ?", (rid,)).fetchone()[0])
        test["recall_accuracy"] += 0.25
        conn.execute("UPDATE runs SET test = ? WHERE run_id = ?", (json.dumps(test), rid))
    conn.close()
    return a, b, rid


def accuracy_view(analysis: dict) -> list:
    """The analysis without what timings decide (seconds differ from launch to launch)."""
    out = []
    for cell in analysis["cells"]:
        models = [(m["model"], m["seeds"], m["values"], m["mean"], m["ci"], m["run_ids"])
                  for m in cell["models"]]
        cmps = [(c["a"], c["b"], c["diff"], c["ci"], c["p_value"], c.get("winner"))
                for c in cell["comparisons"]]
        out.append((cell["task"], cell["n"], models, cmps))
    return out


def test_merge_of_two_launches_analyses_as_one_launch(launches, tmp_path):
    a, b, rid = conflicting(launches, tmp_path)
    merged = tmp_path / "merged.sqlite"
    rc, out, err = bench_here("merge", a, b, "--into", merged)
    assert rc == 0, err
    assert f"conflict: run {rid}" in err and "test" in err
    assert "6 runs, 1 identical duplicates collapsed, 1 conflicts kept side by side" in err
    with sqlite3.connect(merged) as conn:
        kept = json.loads(conn.execute("SELECT test FROM runs WHERE run_id = ?", (rid,)).fetchone()[0])
        other = conn.execute("SELECT source, differs, record FROM merge_conflicts").fetchall()
    conn.close()
    assert len(other) == 1 and other[0][0] == str(b) and json.loads(other[0][1]) == ["test"]
    theirs = json.loads(json.loads(other[0][2])["test"])
    assert theirs["recall_accuracy"] == pytest.approx(kept["recall_accuracy"] + 0.25)

    rc, out, err = bench_here("analyze", "--db", merged, "--json")
    assert rc == 0, err
    rc, one, err = bench_here("analyze", "--db", launches / "one.sqlite", "--json")
    assert rc == 0, err
    assert accuracy_view(json.loads(out)) == accuracy_view(json.loads(one))
    assert json.loads(out)["counts"] == json.loads(one)["counts"]


def test_merge_refuses_other_schema_versions_and_guards_into(launches, tmp_path):
    a = launches / "a.sqlite"
    old = tmp_path / "old.sqlite"
    shutil.copy(launches / "b.sqlite", old)
    with sqlite3.connect(old) as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.close()
    into = tmp_path / "merged.sqlite"
    rc, out, err = bench_here("merge", a, old, "--into", into)
    assert rc == 2 and err.count("\n") == 1 and "different schema versions" in err
    assert not into.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["old.sqlite"]

    rc, out, err = bench_here("merge", a, launches / "b.sqlite", "--into", a)
    assert rc == 2 and "SQLite database; refusing to overwrite" in err
    into.write_text("my notes\n")
    rc, out, err = bench_here("merge", a, launches / "b.sqlite", "--into", into)
    assert rc == 2 and "refusing to overwrite" in err and into.read_text() == "my notes\n"
    rc, out, err = bench_here("merge", a, launches / "b.sqlite", "--into", into, "--force")
    assert rc == 0, err
    assert "6 runs, 2 identical duplicates collapsed, 0 conflicts" in err


def test_merge_leaves_running_runs_out_and_says_so(launches, tmp_path):
    b = tmp_path / "b.sqlite"
    shutil.copy(launches / "b.sqlite", b)
    with sqlite3.connect(b) as conn:
        conn.execute("UPDATE runs SET status = 'running' WHERE seed = 2 AND model = 'gru'")
    conn.close()
    rc, out, err = bench_here("merge", launches / "a.sqlite", b, "--into", tmp_path / "m.sqlite")
    assert rc == 0, err
    assert ": 5 runs, 2 identical duplicates collapsed" in err
    assert "1 runs still marked running not merged" in err


def test_export_is_flat_and_read_by_pandas(launches, tmp_path):
    import pandas as pd

    db = launches / "one.sqlite"
    out = tmp_path / "study.parquet"
    rc, _, err = bench_here("export", "--db", db, "--out", out)
    assert rc == 0, err
    runs = pd.read_parquet(out)
    curves = pd.read_parquet(tmp_path / "study.curves.parquet")
    assert len(runs) == 6 and set(runs.model) == {"lstm", "gru"}
    assert {"hp.hidden_size", "test.recall_accuracy", "param_count", "train_seconds",
            "stage"} <= set(runs.columns)
    assert not runs.map(lambda v: isinstance(v, str) and v[:1] in "[{").any().any()
    assert set(curves.run_id) == set(runs.run_id) and set(curves.step) == {5, 10}
    assert "val.recall_accuracy" in curves.columns

    rc, _, err = bench_here("export", "--db", db, "--out", out)  # an earlier export: replaced
    assert rc == 0, err
    csv = tmp_path / "study.csv"
    rc, _, err = bench_here("export", "--db", db, "--out", csv)
    assert rc == 0, err
    assert pd.read_csv(csv)["test.recall_accuracy"].notna().all()
    rc, _, err = bench_here("export", "--db", db, "--out", tmp_path / "study.xlsx")
    assert rc == 2 and ".parquet or .csv" in err
