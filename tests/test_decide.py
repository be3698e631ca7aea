"""``bench decide``: one answer for the user's own data, within a wall-clock budget, resumable."""

from __future__ import annotations

import json
import math
import time

import pytest

from conftest import bench_here
from seqbench.api import PluginError
from seqbench.decision.request import parse_budget, task_for_data

# Small digits runs: a few seconds each, so a decision's phases fit a test's budget; one worker,
# so that a decision spending its budget leaves the other core to the rest of the suite.
SMALL = ["--task", "classification", "--train-size", "160", "--max-steps", "60",
         "--val-every", "20", "--param-budget", "8000", "--trials", "2", "--workers", "1",
         "--no-plan"]  # the budget plan's timing runs: tests/test_budget_plan.py


def _wall(run: dict) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(run["finished_at"]) -
            datetime.fromisoformat(run["started_at"])).total_seconds()


@pytest.mark.parametrize("text, seconds", [
    ("20m", 1200), ("1h", 3600), ("1h30m", 5400), ("90s", 90), ("2", 120), ("0.5h", 1800),
])
def test_budgets_are_durations(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text, message", [
    ("10s", "too small for even one round"), ("soon", "give a duration"), ("1x", "give a duration"),
    ("20m5", "give a duration"), ("9999h", "at most"),
])
def test_bad_budgets_say_what_is_accepted(text, message):
    with pytest.raises(PluginError, match=message):
        parse_budget(text)


def test_the_data_file_picks_its_task(tmp_path):
    tasks = {"classification": None, "translation": None}
    (tmp_path / "q.csv").write_text("question,label\nwhat is it ?,DESC\n")
    task, why = task_for_data(str(tmp_path / "q.csv"),
                              {"text_column": "question", "label_column": "label"}, tasks)
    assert task == "classification" and "'question' and 'label'" in why
    (tmp_path / "p.jsonl").write_text('{"source": "a b", "target": "c d"}\n')
    assert task_for_data(str(tmp_path / "p.jsonl"), {}, tasks)[0] == "translation"
    (tmp_path / "t.label").write_text("DESC:def What is a cat ?\n")
    assert task_for_data(str(tmp_path / "t.label"), {}, tasks)[0] == "classification"
    with pytest.raises(PluginError, match="neither a text and a label column"):
        task_for_data(str(tmp_path / "q.csv"), {}, tasks)
    with pytest.raises(PluginError, match="cannot tell which task"):
        (tmp_path / "x.bin").write_bytes(b"\0")
        task_for_data(str(tmp_path / "x.bin"), {}, tasks)


@pytest.mark.parametrize("args, message", [
    (["--task", "classification", "--models", "lstm,nope"], "unknown model 'nope'"),
    (["--task", "classification", "--models", "lstm"], "two or more different models"),
    (["--task", "classification", "--budget", "5s"], "too small for even one round"),
    (["--task", "nope"], "unknown task 'nope'"),
    (["--models", "lstm,gru"], "give --task NAME or --data FILE"),
    (["--task", "classification", "--data", "x.csv"], "give --task or --data, not both"),
    (["--data", "missing.csv"], "no such file"),
    (["--task", "classification", "--margin", "nan"], "--margin"),
    (["--task", "translation", "--models", "lstm,seq2seq-attention", "--train-size", "999999"],
     "larger than"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, args, message):
    db = tmp_path / "d.sqlite"
    monkeypatch.chdir(tmp_path)
    res = bench_here("decide", *args, "--db", db)
    assert res.rc == 2, res.stdout + res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error:")
    assert message in res.stderr
    assert not db.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_empty_data_file_is_one_line(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    res = bench_here("decide", "--data", tmp_path / "empty.csv", "--db", tmp_path / "d.sqlite")
    assert res.rc == 2 and res.stderr.count("\n") == 1
    assert not (tmp_path / "d.sqlite").exists()


def test_a_small_budget_ends_in_time_and_the_same_command_again_continues(tmp_path):
    db = tmp_path / "d.sqlite"
    began = time.monotonic()
    first = bench_here("decide", *SMALL, "--budget", "30s", "--tune-share", "0.8", "--db", db,
                       "--json")
    took = time.monotonic() - began
    assert first.rc == 0, first.stderr
    one = json.loads(first.stdout)
    assert one["budget_seconds"] == 30
    assert one["models"] == ["lstm", "transformer"] and one["metric"] == "accuracy"
    assert one["tuning"]["lstm"]["trials"] == one["tuning"]["transformer"]["trials"] >= 1
    runs = json.loads(bench_here("results", "--db", db, "--json").stdout)
    # the budget, plus at most one run's length and the workers' start (imports: seconds)
    longest = max(_wall(r) for r in runs)
    assert one["seconds"] <= 30 + longest + 15, (one["seconds"], longest)
    assert took <= one["seconds"] + 30
    tune = [r for r in runs if r["trial"].get("stage") == "tune"]
    assert tune and all(r["seed"] >= 10_000 for r in tune)  # tuning seeds are never evaluated

    # the smallest budget again: a call that was stopped by its budget goes on from the first
    second = bench_here("decide", *SMALL, "--budget", "30s", "--tune-share", "0.8", "--db", db,
                        "--json")
    assert second.rc == 0, second.stderr
    two = json.loads(second.stdout)
    again = json.loads(bench_here("results", "--db", db, "--json").stdout)
    assert {r["run_id"] for r in runs} <= {r["run_id"] for r in again}  # nothing redone or lost
    # How far 30 s gets depends on the machine (an idle one often decides): either way the
    # second call builds on the first.
    if one["stopped_because"] in ("decided", "sanity check"):
        assert len(again) == len(runs)  # an answer already given is not trained again
        assert (two["verdict"], two["seeds"]) == (one["verdict"], one["seeds"])
        assert two["stopped_because"] == one["stopped_because"]
    else:
        assert one["stopped_because"].startswith("budget") and one["verdict"] == "undecided"
        assert len(again) > len(runs)  # it continued
        assert sum(two["seeds"].values()) >= sum(one["seeds"].values())
    evaluated = [r for r in again if r["trial"].get("stage") == "eval"]
    assert all(r["seed"] < 10_000 for r in evaluated)
    # a paired design: every evaluation seed of one model is one of the other's
    seeds = {m: {r["seed"] for r in evaluated if r["model"] == m and r["status"] == "done"}
             for m in ("lstm", "transformer")}
    assert len(seeds["lstm"] ^ seeds["transformer"]) <= 1  # at most the round in flight
    diff = two["difference"]
    if two["verdict"] == "undecided" and diff["estimate"] is not None:
        assert diff["low"] is None or diff["low"] <= diff["estimate"] <= (diff["high"] or math.inf)


def test_a_verdict_once_reached_stands_when_the_round_in_flight_finishes():
    """Measured with `bench decide --task classification --param-budget 20000 --budget 10m`:
    the rule decided at 7 paired seeds; the 8th round, already training, then finished with a
    reversed difference. The repeated intervals hold at every look at once, so the verdict of
    look 7 stands (it was once reported as "Not decided yet (decided)")."""
    from seqbench.analysis.sequential import decide_best
    from seqbench.decision.procedure import first_decision

    scores = {"lstm": [0.847, 0.869, 0.897, 0.822, 0.852, 0.905, 0.844, 0.858],
              "transformer": [0.928, 0.894, 0.911, 0.919, 0.955, 0.939, 0.908, 0.805]}
    assert decide_best(scores, 0.01).verdict == "undecided"  # the last look alone
    d = first_decision(scores, 0.01, alpha=0.05, n_max=20, higher_is_better=True)
    assert (d.verdict, d.n) == ("transformer", 7)
    short = {m: v[:6] for m, v in scores.items()}  # no look decided: the last one is reported
    d = first_decision(short, 0.01, alpha=0.05, n_max=20, higher_is_better=True)
    assert (d.verdict, d.n) == ("undecided", 6)


# --------------------------------------------------------------------------------------------
# A decision's design, and diverged seeds, through the real command over a scripted executor

SCRIPTED = """
import hashlib
import os

from seqbench import hookimpl
from seqbench.experiment.plan import RunSpec


def score(model, seed):
    # a fixed draw per (model, seed): N(0.8, 0.05) from the hash, the same on every call
    u = [int(hashlib.sha256(f"{model}/{seed}/{i}".encode()).hexdigest()[:8], 16) / 2**32
         for i in range(12)]
    return 0.8 + 0.05 * (sum(u) - 6)


class Scripted:
    \"\"\"Trains nothing: a run's accuracy is a fixed function of its model and seed, and the
    seeds named in SCRIPTED_DIVERGE (model:seed,...) diverge.\"\"\"

    workers = 1

    def __init__(self, workers, logger_factory=None):
        pass

    def run(self, specs, on_start, on_record):
        bad = {tuple(x.split(":")) for x in os.environ.get("SCRIPTED_DIVERGE", "").split(",") if x}
        for raw in specs:
            if not on_start(raw):
                continue
            spec = RunSpec.from_dict(raw)
            value = score(spec.model, spec.seed)
            record = {"run_id": spec.run_id, "matrix_id": spec.matrix_id, "model": spec.model,
                      "task": spec.task, "kind": spec.kind, "train_size": spec.train_size,
                      "seed": spec.seed, "config": spec.config(), "trial": spec.trial,
                      "started_at": "2026-01-01T00:00:00", "finished_at": "2026-01-01T00:00:01",
                      "primary_metric": "accuracy", "higher_is_better": True,
                      "extras": {"chance": 0.1}, "train_examples": 160, "steps": 10,
                      "train_seconds": 0.01,
                      "curve": [{"step": 10, "samples": 320, "seconds": 0.01,
                                 "val_primary": value}]}
            if (spec.model, str(spec.seed)) in bad:
                record.update(status="diverged", error="Diverged: training loss became nan")
            else:
                record.update(status="done", best_val=value, test={"accuracy": value})
            on_record(record)


@hookimpl
def register_executors(register):
    register("scripted", Scripted, "fixed scores, no training")
"""

FAKE = ["--task", "classification", "--train-size", "160", "--param-budget", "8000",
        "--trials", "2", "--budget", "1m", "--executor", "scripted", "--json",
        "--no-plan"]  # the scripted executor trains nothing: no timing runs either


@pytest.fixture
def scripted(make_dist, on_path):
    """The scripted executor, installed for this process's registry."""
    return on_path(make_dist("seqbench-scripted", {"seqbench_scripted": SCRIPTED},
                             {"scripted": "seqbench_scripted"}))


def _fingerprint(db) -> tuple:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return tuple(conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                     for t in ("runs", "matrices"))
    finally:
        conn.close()


def test_the_stopping_rule_is_frozen_once_evaluation_begins(scripted, tmp_path):
    db = tmp_path / "d.sqlite"
    first = bench_here("decide", *FAKE, "--max-seeds", "4", "--db", db)
    assert first.rc == 0, first.stderr
    one = json.loads(first.stdout)
    assert one["stopped_because"] == "max seeds" and one["verdict"] == "undecided", one
    assert one["seeds"] == {"lstm": 4, "transformer": 4}
    before = _fingerprint(db)
    for args, stored in ((["--max-seeds", "8"], "--max-seeds 4"),
                         (["--max-seeds", "4", "--alpha", "0.1"], "--alpha 0.05")):
        res = bench_here("decide", *FAKE, *args, "--db", db)
        assert res.rc == 2, res.stdout + res.stderr
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("error:"), res.stderr
        assert stored in res.stderr and "frozen" in res.stderr
        assert res.stdout == ""
        assert _fingerprint(db) == before  # nothing trained, nothing written
    again = bench_here("decide", *FAKE, "--max-seeds", "4", "--db", db)
    assert again.rc == 0, again.stderr
    assert json.loads(again.stdout)["scores"] == one["scores"]
    import sqlite3

    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT request FROM matrices WHERE matrix_id LIKE 'decide-design:%'")
    designs = [json.loads(r[0])["design"] for r in rows]
    conn.close()
    assert designs == [{"alpha": 0.05, "max_seeds": 4, "margin": None, "n_min": 3}]


def test_a_diverged_seed_is_its_own_outcome_not_a_score_at_chance(scripted, tmp_path):
    db = tmp_path / "d.sqlite"
    res = bench_here("decide", *FAKE, "--max-seeds", "5", "--db", db,
                     env={"SCRIPTED_DIVERGE": "transformer:1,transformer:3"})
    assert res.rc == 0, res.stderr
    one = json.loads(res.stdout)
    assert one["diverged"]["transformer"] == {"seeds": [1, 3], "of": 5}
    assert one["diverged"]["lstm"] == {"seeds": [], "of": 5}
    # the paired scores leave the diverged seeds out for every model, not at chance (0.1)
    assert sorted(one["scores"]["transformer"]) == sorted(one["scores"]["lstm"]) == ["0", "2", "4"]
    assert min(one["scores"]["transformer"].values()) > 0.5


def test_the_first_line_reports_divergence_with_its_rate():
    from seqbench.decision.procedure import Decided
    from seqbench.decision.request import Request
    from seqbench.decision.summary import first_line

    out = Decided(Request(task="classification", models=["lstm", "transformer"], budget_s=60),
                  metric="accuracy", diverged={"transformer": [1, 3]},
                  finished={"lstm": [0, 1, 2, 3, 4], "transformer": [0, 1, 2, 3, 4]})
    line = first_line(out, {})
    assert line.startswith("Not decided yet: no evaluation seed has a score from every model")
    assert ("Warning: the Transformer diverged on 2 of 5 evaluation seeds (95% CI 5%–85% of its "
            "runs)") in line


def test_every_parameter_of_the_stopping_rule_is_part_of_the_frozen_design(tmp_path):
    from seqbench.decision import design
    from seqbench.decision.request import Request
    from seqbench.store import Store

    request = Request(task="classification", models=["lstm", "gru"], budget_s=60, max_seeds=6)
    with Store(tmp_path / "d.sqlite") as store:
        design.check(store, request)  # nothing stored yet: any design may start
        design.freeze(store, request, "2026-01-01T00:00:00")
        design.freeze(store, Request(**{**request.__dict__, "alpha": 0.2}), "later")  # kept first
        assert design.stored(store, request) == design.Design(0.05, 6, None)
        design.check(store, Request(**{**request.__dict__, "budget_s": 600}))  # budget: free
        for change, named in (({"margin": 0.02}, "no --margin"), ({"alpha": 0.1}, "--alpha 0.05"),
                              ({"max_seeds": 8}, "--max-seeds 6")):
            with pytest.raises(PluginError, match=named):
                design.check(store, Request(**{**request.__dict__, **change}))
        # another decision (other models) has a design of its own
        design.check(store, Request(**{**request.__dict__, "models": ["lstm", "transformer"],
                                       "alpha": 0.1}))
