"""The results database: WAL, schema version, atomic saves, finished runs kept, clear errors."""

from __future__ import annotations

import sqlite3

import pytest

from seqbench.experiment.plan import RunSpec
from seqbench.store import SCHEMA_VERSION, Store, StoreError


def spec(seed: int = 0, **over) -> RunSpec:
    base = dict(
        model="lstm", task="copy", kind="aligned", train_size=16, seed=seed,
        model_params={"hidden_size": 8}, task_params={"T": 5}, training={"lr": 0.001},
        matrix_id="m1",
    )
    return RunSpec(**{**base, **over})


def record(s: RunSpec, status: str = "done", steps=(5, 10), **over) -> dict:
    """A record shaped like the runner's."""
    rec = {
        "run_id": s.run_id, "matrix_id": s.matrix_id, "model": s.model, "task": s.task,
        "kind": s.kind, "train_size": s.train_size, "seed": s.seed, "config": s.config(),
        "trial": s.trial, "status": status, "primary_metric": "recall_accuracy",
        "higher_is_better": True, "model_params": s.model_params,
        "started_at": "2024-01-01T00:00:00+00:00", "finished_at": "2024-01-01T00:00:09+00:00",
        "environment": {"versions": {"torch": "x"}},
        "curve": [
            {"step": st, "samples": st * 16, "seconds": st / 10, "train_loss": 1.0 / st,
             "val_primary": st / 100, "val": {"recall_accuracy": st / 100}}
            for st in steps
        ],
    }
    if status == "done":
        rec.update(test={"recall_accuracy": 0.5, "loss": 1.5}, best_val=0.1, param_count=123,
                   steps=10, steps_to_95=10)
    else:
        rec["error"] = f"RuntimeError: {status}"
    rec.update(over)
    return rec


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "r.sqlite") as s:
        yield s


def rows(path, sql, *args):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_new_database_is_wal_while_open_and_rollback_at_rest(tmp_path):
    path = tmp_path / "deep" / "r.sqlite"
    with Store(path):
        assert rows(path, "PRAGMA journal_mode") == [("wal",)]  # readers never block the writer
    # closed by its last connection: back in rollback mode, so read-only readers need no log
    assert rows(path, "PRAGMA journal_mode") == [("delete",)]
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.sqlite"]
    assert rows(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(SCHEMA_VERSION),)
    ]
    Store(path).close()  # opening again changes nothing
    assert rows(path, "SELECT count(*) FROM meta") == [(1,)]


def test_round_trip(store):
    s = spec()
    store.save(record(s))
    (run,) = store.runs()
    assert run.status == "done" and run.run_id == s.run_id
    assert run.test == {"recall_accuracy": 0.5, "loss": 1.5}
    assert run.primary_value == 0.5
    assert run.config == s.config()
    assert run.params == {"model": {"hidden_size": 8}, "task": {"T": 5},
                          "training": {"lr": 0.001}}
    assert run.environment == {"versions": {"torch": "x"}}
    assert run.higher_is_better is True
    curve = store.curve(s.run_id)
    assert [p["step"] for p in curve] == [5, 10]
    assert curve[0]["val"] == {"recall_accuracy": 0.05}
    assert list(store.curves()) == [s.run_id]
    assert store.status_of([s.run_id, "nope"]) == {s.run_id: "done"}


def test_filters(store):
    for seed in range(3):
        store.save(record(spec(seed)))
        store.save(record(spec(seed, model="gru"), status="failed"))
    assert len(store.runs()) == 6
    assert {r.model for r in store.runs(status="failed")} == {"gru"}
    assert [r.seed for r in store.runs(model="lstm", seed=1)] == [1]
    assert store.runs(train_size=32) == []


def test_status_of_many_ids(store):
    specs = [spec(seed) for seed in range(1200)]  # more than one chunk of ids
    for s in specs[::100]:
        store.mark_running(s, "now")
    status = store.status_of(s.run_id for s in specs)
    assert len(status) == 12 and set(status.values()) == {"running"}


def test_save_is_atomic(store):
    """A record whose curve cannot be written leaves the database as it was."""
    fresh, started = spec(1), spec(2)
    with pytest.raises(sqlite3.IntegrityError):
        store.save(record(fresh, steps=(5, 5)))  # the same step twice: the curve insert fails
    assert store.status_of([fresh.run_id]) == {}
    assert store.curve(fresh.run_id) == []

    store.mark_running(started, "now")
    with pytest.raises(sqlite3.IntegrityError):
        store.save(record(started, steps=(5, 5)))
    (run,) = store.runs()
    assert run.status == "running"  # the earlier row is back, not deleted
    assert store.curve(started.run_id) == []

    store.save(record(started))  # and the store still works
    assert store.status_of([started.run_id]) == {started.run_id: "done"}


def test_done_run_is_never_overwritten(store):
    s = spec()
    store.save(record(s, steps=(5, 10)))
    store.save(record(s, status="failed", steps=(1,)))
    store.mark_running(s, "later")
    store.forget_running([s.run_id])
    (run,) = store.runs()
    assert run.status == "done" and run.error is None
    assert run.started_at == "2024-01-01T00:00:00+00:00"
    assert [p["step"] for p in store.curve(s.run_id)] == [5, 10]


def test_failed_run_is_replaced_with_its_curve(store):
    s = spec()
    store.mark_running(s, "now")
    assert store.status_of([s.run_id]) == {s.run_id: "running"}
    store.save(record(s, status="diverged", steps=(1, 2, 3)))
    assert store.runs()[0].error == "RuntimeError: diverged"
    store.save(record(s, steps=(5, 10)))
    (run,) = store.runs()
    assert run.status == "done" and run.error is None
    assert [p["step"] for p in store.curve(s.run_id)] == [5, 10]  # old points gone
    assert rows(store.path, "SELECT count(*) FROM curves") == [(2,)]


def test_forget_running_keeps_finished_runs(store):
    a, b = spec(0), spec(1)
    store.mark_running(a, "now")
    store.save(record(b, status="failed"))
    store.forget_running([a.run_id, b.run_id])
    assert store.status_of([a.run_id, b.run_id]) == {b.run_id: "failed"}


def test_running_is_not_a_finished_status(store):
    with pytest.raises(ValueError, match="status 'running'"):
        store.save(record(spec(), status="running"))


# --------------------------------------------------------------------------------------------
# Opening: read-only, and files that are not a results database


def test_readonly_missing_file(tmp_path):
    path = tmp_path / "missing.sqlite"
    with pytest.raises(StoreError, match=f"no results database at {path}; run `bench run` first"):
        Store(path, readonly=True)
    assert not path.exists()


def test_readonly_cannot_write(tmp_path):
    path = tmp_path / "r.sqlite"
    Store(path).close()
    with Store(path, readonly=True) as ro:
        assert ro.runs() == []
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            ro.save(record(spec()))


@pytest.mark.parametrize("readonly", [True, False])
def test_not_an_sqlite_file(tmp_path, readonly):
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database\n" * 50)
    with pytest.raises(StoreError, match="is not a readable SQLite database"):
        Store(path, readonly=readonly)
    assert path.read_text().startswith("these are my notes")


@pytest.mark.parametrize("readonly", [True, False])
def test_someone_elses_sqlite_database_is_left_alone(tmp_path, readonly):
    path = tmp_path / "other.sqlite"
    rows(path, "CREATE TABLE people (name TEXT)")
    with pytest.raises(StoreError, match="is not a seqbench results database"):
        Store(path, readonly=readonly)
    assert rows(path, "SELECT name FROM sqlite_master") == [("people",)]


def test_empty_file_readonly_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.sqlite"
    path.write_bytes(b"")
    with pytest.raises(StoreError, match="is not a seqbench results database"):
        Store(path, readonly=True)
    Store(path).close()  # writable: an empty file simply becomes a new database
    assert rows(path, "SELECT count(*) FROM meta") == [(1,)]


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    Store(path).close()
    rows_conn = sqlite3.connect(path)
    rows_conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    rows_conn.commit()
    rows_conn.close()
    for readonly in (True, False):
        with pytest.raises(StoreError, match=f"schema version 99; this seqbench reads up to {SCHEMA_VERSION}"):
            Store(path, readonly=readonly)


def test_readonly_path_with_uri_characters(tmp_path):
    """'#', '?' and '%' are plain characters in a file name, not parts of a URI."""
    folder = tmp_path / "results #1?a=b%20c"
    folder.mkdir()
    path = folder / "r.sqlite"
    with Store(path) as s:
        s.save(record(spec()))
    with Store(path, readonly=True) as ro:
        assert len(ro.runs()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # no stray file


def test_exported_records_are_strict_json(store):
    import json

    from seqbench.analysis.tables import runs_csv, runs_json

    s = spec()
    store.save(record(s, status="diverged", best_val=float("nan"),
                      extras={"loss": float("inf"), "ok": [1.0, float("nan")]}))
    text = runs_json(store.runs())

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    (row,) = json.loads(text, parse_constant=refuse)
    assert row["best_val"] is None and row["extras"] == {"loss": None, "ok": [1.0, None]}
    assert "NaN" not in runs_csv(store.runs()) and "Infinity" not in runs_csv(store.runs())


# --------------------------------------------------------------------------------------------
# Readers leave no files; writers switch back to rollback mode; damage and bad paths are one line


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_readers_leave_no_wal_or_shm_and_change_no_byte(tmp_path):
    path = tmp_path / "r.sqlite"
    with Store(path) as s:
        s.save(record(spec()))
    before = _files(tmp_path)
    with Store(path, readonly=True) as ro:
        assert len(ro.runs()) == 1 and ro.curves()
    assert _files(tmp_path) == before


def test_a_wal_file_at_rest_from_an_older_seqbench_is_read_without_leaving_a_log(tmp_path):
    path = tmp_path / "r.sqlite"
    with Store(path) as s:
        s.save(record(spec()))
    rows(path, "PRAGMA journal_mode = WAL")  # as the previous version left every database
    before = _files(tmp_path)
    assert list(before) == ["r.sqlite"]
    with Store(path, readonly=True) as ro:
        assert len(ro.runs()) == 1
    assert _files(tmp_path) == before


def test_a_reader_open_keeps_wal_and_the_writer_closes_without_waiting(tmp_path):
    import time

    path = tmp_path / "r.sqlite"
    writer = Store(path)
    writer.save(record(spec()))
    reader = Store(path, readonly=True)
    assert len(reader.runs()) == 1
    t0 = time.monotonic()
    writer.close()  # another connection is open: the switch to rollback mode is refused at once
    assert time.monotonic() - t0 < 2
    assert len(reader.runs()) == 1
    reader.close()


def test_the_last_writer_of_two_switches_back(tmp_path):
    path = tmp_path / "r.sqlite"
    a, b = Store(path), Store(path)
    a.save(record(spec()))
    a.close()
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]
    b.save(record(spec(seed=1)))
    b.close()
    assert rows(path, "PRAGMA journal_mode") == [("delete",)]
    with Store(path, readonly=True) as ro:
        assert len(ro.runs()) == 2


def corrupt_pages(path, skip_pages: int = 2) -> None:
    """Overwrite every page after the first ``skip_pages`` with garbage (header intact)."""
    size = path.stat().st_size
    page = 4096
    with open(path, "r+b") as f:
        f.seek(page * skip_pages)
        f.write(bytes((i * 37 + 11) % 251 for i in range(size - page * skip_pages)))


def test_damaged_pages_are_one_line_for_readers_and_the_check(tmp_path):
    path = tmp_path / "r.sqlite"
    with Store(path) as s:
        for seed in range(40):
            s.save(record(spec(seed=seed), steps=tuple(range(1, 60))))
    corrupt_pages(path, skip_pages=3)
    with pytest.raises(StoreError) as err:
        with Store(path, readonly=True) as ro:
            ro.check()
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(StoreError, match="r.sqlite"):
        with Store(path, readonly=True) as ro:
            ro.runs()
            ro.curves()


@pytest.mark.parametrize("where", ["file/x.sqlite", "/proc/x.sqlite", "/sys/nope/x.sqlite", ""])
def test_unusable_paths_are_one_line_and_create_nothing(tmp_path, where, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("a file, not a folder")
    before = sorted(p.name for p in tmp_path.iterdir())
    for readonly in (False, True):
        with pytest.raises(StoreError) as err:
            Store(where, readonly=readonly)
        assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_old_schema_is_migrated_by_a_writer_and_read_as_is(tmp_path):
    path = tmp_path / "r.sqlite"
    with Store(path) as s:
        s.save(record(spec()))
    conn = sqlite3.connect(path)  # a version-1 database: no lease columns
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.execute("ALTER TABLE runs DROP COLUMN lease_owner")
    conn.execute("ALTER TABLE runs DROP COLUMN lease_expires")
    conn.execute("ALTER TABLE runs DROP COLUMN step_flops")  # (version 3)
    conn.commit()
    conn.close()
    with Store(path, readonly=True) as ro:
        assert len(ro.runs()) == 1
    with Store(path) as s:
        assert len(s.runs()) == 1
    assert rows(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(SCHEMA_VERSION),)
    ]
    assert {"lease_owner", "step_flops"} <= {r[1] for r in rows(path, "PRAGMA table_info(runs)")}


def test_a_run_comes_back_as_the_record_it_was_saved_from(store):
    """One mapping, both ways: the RunRecord saved is the RunRecord read, field for field; a
    third-party executor's plain dict with keys of its own is saved without them."""
    from seqbench.records import COLUMNS, RunRecord

    saved = RunRecord.from_dict(record(spec(0)))
    store.save(saved)
    store.save({**record(spec(1)), "note": "not a column", "higher_is_better": 1})
    first, second = store.runs()
    assert isinstance(first, RunRecord)
    assert [getattr(first, c) for c in COLUMNS] == [getattr(saved, c) for c in COLUMNS]
    assert first.primary_value == 0.5 and first.params["task"] == {"T": 5}
    assert second.higher_is_better is True  # stored as an integer, read as a bool
    assert store.curves()[first.run_id][1]["val_primary"] == 0.1
    assert [p["val"] for p in store.curve(first.run_id)] == [p["val"] for p in saved.curve]


def test_a_run_read_by_column_name_fails_loudly(store):
    """A RunRecord is read by attribute: ``r["task"]`` or ``r.get("task")`` raises at once
    rather than quietly reading a dict view that a renamed field would leave behind."""
    store.save(record(spec(0)))
    (run,) = store.runs()
    with pytest.raises(TypeError, match="not subscriptable"):
        run["task"]
    with pytest.raises(AttributeError, match="get"):
        run.get("task")
    with pytest.raises(TypeError):
        "task" in run  # noqa: B015
    with pytest.raises(TypeError):
        dict(run)
    assert run.task == "copy" and run.primary_value == 0.5


def test_a_record_still_running_is_refused(store):
    from seqbench.records import RunRecord

    with pytest.raises(ValueError, match="status 'running'"):
        store.save(RunRecord.from_dict(record(spec(0), status="running")))
