"""The analysis at a glance: short task labels, a sentence per verdict, and `bench analyze`'s
default summary (a line per cell, 100 columns) beside `--full`'s tables."""

from __future__ import annotations

from seqbench.analysis.glance import short_labels, stage, tuned
from test_dashboard import make_db, record


def test_labels_are_short_and_readable():
    trec = {"data": "../shared/data/trec/train_5500.label", "encoding": "latin-1",
            "test_data": "../shared/data/trec/TREC_10.label"}
    labels = short_labels([
        ("classification", trec),
        ("classification", {"data": "digits", "encoding": "utf-8"}),
        ("translation", {"data": "../shared/data/multi30k", "max_len": 25}),
        ("copy", {"T": 50}),
        ("copy", {}),
        ("classification", {"data": "x/sst.csv", "label": "SST-2"}),
    ])
    assert list(labels.values()) == [
        "classification · trec/train_5500", "classification · digits",
        "translation · multi30k [max_len=25]", "copy [T=50]", "copy", "SST-2"]


def test_labels_stay_apart_when_only_data_parameters_differ():
    a = {"data": "digits", "min_freq": 1}
    b = {"data": "digits", "min_freq": 2}
    labels = short_labels([("classification", a), ("classification", b)])
    assert len(set(labels.values())) == 2 and all("min_freq" in v for v in labels.values())


def test_stage_and_tuned_hyperparameters():
    trial = {"lr": 0.00312345, "dropout": 0.25, "stage": "tune", "trials": 6, "lr_range": [1, 2]}
    assert stage(trial) == "tuning" and stage({"lr": 1}) == "evaluation" and stage(None) == "evaluation"
    assert tuned(trial) == "lr=0.00312, dropout=0.25"


def test_analyze_prints_a_line_per_cell_within_100_columns(tmp_path, cli):
    recs = []
    for size in (32, 64, 128):
        for seed in range(3):
            recs.append(record("lstm", size=size, seed=seed, value=0.8 + seed / 100))
            recs.append(record("transformer", size=size, seed=seed, value=0.3 + seed / 100))
    db = make_db(tmp_path / "r.sqlite", recs, running=0)
    rc, out, err = cli("analyze", "--db", db, "--bootstrap", "200")
    assert rc == 0, err
    lines = out.splitlines()
    assert max(map(len, lines)) <= 100
    cell_lines = [line for line in lines if line.startswith("  n=")]
    assert len(cell_lines) == 3
    # the fake runs all stopped at their step budget: "ahead", never "better"
    assert cell_lines[0].startswith("  n=32: lstm 0.81 vs transformer 0.31 (3/3 seeds): budget-")
    assert "lstm ahead" in cell_lines[0]
    assert any(line.startswith("  copy: lstm vs transformer: lstm ahead when the steps ran out at "
                               "n = 32, 64, 128") for line in lines)
    assert "budget-limited in 1 of 1 task" in " ".join(out.split())
    rc, full, err = cli("analyze", "--db", db, "--bootstrap", "200", "--full")
    assert rc == 0, err
    assert len(full.splitlines()) > len(lines) and "paired" in full
    rc, _, err = cli("analyze", "--db", db, "--full", "--json")
    assert rc == 2 and "give one of" in err


def test_headline_counts_a_task_without_the_pair_as_not_compared():
    from seqbench.analysis.glance import headline

    verdicts = [{"a": "lstm", "b": "transformer", "accuracy_claim": "holds"},
                {"a": "lstm", "b": "transformer", "accuracy_claim": "inconclusive"},
                {"a": "lstm", "b": "transformer", "accuracy_claim": None}]
    assert headline(verdicts) == ("'lstm is more accurate than transformer' at each task's "
                                  "smallest size: holds in 1, inconclusive in 1, not compared "
                                  "in 1 of 3 tasks.")
