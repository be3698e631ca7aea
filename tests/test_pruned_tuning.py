"""Successive halving within each model's trials: equal trials, rungs and budgets for every
model, promotion and selection on mean validation over the tuning seeds, the unpruned protocol's
own points, and a relaunch that trains nothing."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter

import pytest

from seqbench.api import PluginError
from seqbench.experiment import matrixfile
from seqbench.experiment.plan import plan
from seqbench.experiment.tuning import chosen_trials, select_trial, spec_key
from seqbench.records import RunRecord

HALVING = {"prune": "halving", "trials": 10, "eta": 3, "rungs": 3, "min_steps": 10,
           "seeds": 2}


@pytest.fixture
def reg(fresh_registry):
    return fresh_registry.registry()


def pruned(reg, models="lstm,gru,transformer", sizes="64", tuning=None, training=None):
    matrix = matrixfile.build_matrix(
        file_data={}, models=models, tasks="copy", train_sizes=sizes, seeds="0-2",
        model_params=(), task_params=(),
        training=training or {"max_steps": 200, "schedule": "cosine"},
        tuning={**HALVING, **(tuning or {})}, all_models=list(reg.models),
        all_tasks=list(reg.tasks),
    )
    return plan(matrix, reg)


def records(specs, val, test=None):
    """Stored records for ``specs``: validation ``val(spec)``, test ``test(spec)``."""
    return {s.run_id: RunRecord(run_id=s.run_id, model=s.model, task=s.task, kind=s.kind,
                                seed=s.seed, train_size=s.train_size, status="done",
                                best_val=val(s), test={"accuracy": (test or val)(s)},
                                higher_is_better=True, config=s.config(), trial=s.trial)
            for s in specs}


def rung_of(spec) -> int:
    return spec.trial["rung"]


def test_every_model_gets_the_same_trials_rungs_and_budgets(reg):
    p = pruned(reg)
    tuner = p.tuner()
    lr = {"lstm": 3e-3, "gru": 1e-2, "transformer": 3e-4}  # each model's own optimum
    score = lambda s: -abs(math.log(s.training["lr"] / lr[s.model]))  # noqa: E731
    stages = [tuner.first]
    recs = records(tuner.first, score)
    while (nxt := tuner.extension(recs)).runs:
        stages.append(nxt.runs)
        recs |= records(nxt.runs, score)
    assert len(stages) == 3 and tuner.round == 2
    for rung, (runs, steps, kept) in enumerate(zip(stages, (10, 30, 90), (10, 4, 2))):
        per_model = Counter(s.model for s in runs)
        assert per_model == {m: kept * 2 for m in ("lstm", "gru", "transformer")}, per_model
        assert {s.training["max_steps"] for s in runs} == {steps}
        assert {rung_of(s) for s in runs} == {rung}
        assert {s.seed for s in runs} == {10_000, 10_001}
        assert {s.trial["full_steps"] for s in runs} == {200}
    final = tuner.evaluation(recs)
    assert Counter(s.model for s in final.runs) == {"lstm": 3, "gru": 3, "transformer": 3}
    assert {s.training["max_steps"] for s in final.runs} == {200}  # the recipe's own budget
    assert {s.seed for s in final.runs} == {0, 1, 2}
    for s in final.runs:
        assert s.trial["stage"] == "eval" and s.trial["trials"] == 10
        assert s.trial["prune"] == "halving" and "rung" not in s.trial
    # Each model's selection is the best of its own points, found through the rungs.
    for model, best in lr.items():
        tried = {s.training["lr"] for s in tuner.first if s.model == model}
        chosen = {s.training["lr"] for s in final.runs if s.model == model}
        assert chosen == {min(tried, key=lambda x: abs(math.log(x / best)))}


def test_promotion_and_selection_use_mean_validation_over_the_tuning_seeds_only(reg):
    p = pruned(reg, "lstm", tuning={"trials": 4, "eta": 2, "rungs": 2})
    tuner = p.tuner()
    points = sorted({s.training["lr"] for s in tuner.first})
    a, b, c = points[:3]

    def val(s):
        lr, seed, rung = s.training["lr"], s.seed, s.trial["rung"]
        if lr == a:  # the best single score, but not on average over the tuning seeds
            return 0.95 if seed == 10_000 else 0.05
        if lr == b:  # second at rung 0, best at the last rung
            return 0.7 if rung == 0 else 0.9
        if lr == c:
            return 0.8 if rung == 0 else 0.85
        return 0.1

    # Test scores say the opposite everywhere: they must never move a decision.
    recs = records(tuner.first, val, test=lambda s: 1.0 - val(s))
    top = tuner.extension(recs)
    promoted = sorted({s.training["lr"] for s in top.runs})
    assert promoted == sorted([b, c])  # means 0.7 and 0.8 beat a's 0.5 and the rest
    recs |= records(top.runs, val, test=lambda s: 1.0 - val(s))
    assert tuner.extension(recs).runs == []
    final = tuner.evaluation(recs)
    assert {s.training["lr"] for s in final.runs} == {b}  # the last rung decides, not rung 0
    # The analysis picks the same trial, and its key is the evaluation runs' key.
    every = list(recs.values()) + list(records(final.runs, lambda s: 0.5).values())
    key = spec_key(final.runs[0])
    assert select_trial(every, True) == key
    assert chosen_trials(every) == {64: key}


def test_a_run_that_failed_or_diverged_is_never_promoted(reg):
    p = pruned(reg, "lstm", tuning={"trials": 4, "eta": 2, "rungs": 2})
    tuner = p.tuner()
    best = max(s.training["lr"] for s in tuner.first)
    recs = records(tuner.first, lambda s: s.training["lr"])
    for r in recs.values():
        if r.training["lr"] == best and r.seed == 10_001:
            r.status, r.best_val = "diverged", None
    promoted = {s.training["lr"] for s in tuner.extension(recs).runs}
    assert best not in promoted and len(promoted) == 2


def test_pruned_and_unpruned_tuning_try_the_very_same_trials(reg):
    """The same scrambled Sobol points as the unpruned protocol (rounds.py), the learning rate in
    the shared first column: a survivor's full run is the unpruned protocol's run of that trial
    (one run id), so the two protocols differ only in what pruning discards."""
    from dataclasses import replace

    full = pruned(reg, tuning={**FULL_LAST, "trials": 6}, training=WSD).tuner().first
    matrix = matrixfile.build_matrix(
        file_data={}, models="lstm,gru,transformer", tasks="copy", train_sizes="64",
        seeds="0-2", model_params=(), task_params=(), training=WSD,
        tuning={"trials": 6, "seeds": 2}, all_models=list(reg.models), all_tasks=list(reg.tasks))
    unpruned = plan(matrix, reg).tuner().first
    as_full = {replace(s, training={k: v for k, v in s.training.items() if k != "stop_step"}
                       ).run_id for s in full}
    assert as_full == {s.run_id for s in unpruned} and len(as_full) == 3 * 6 * 2
    lrs = {m: sorted({s.training["lr"] for s in full if s.model == m})
           for m in ("lstm", "gru", "transformer")}
    assert lrs["lstm"] == lrs["gru"] == lrs["transformer"]  # common random numbers


def test_bad_pruning_settings_are_one_line_errors(reg):
    for tuning, message in [
        ({"trials": 9}, "leaves 1 trial at rung 3 of 3"),
        ({"prune": "asha"}, "'asha'"),
        ({"eta": 1}, "eta"),
        ({"extend": 1}, "extend goes with the unpruned protocol"),
        ({"min_steps": 100}, "the last rung trains 900 steps"),
        ({"prune": "off"}, 'eta goes with prune = "halving"'),
    ]:
        with pytest.raises(PluginError, match=message):
            pruned(reg, "lstm", tuning=tuning)
    # wsd: a first rung that ends inside its warm-up (100 steps, then a cooldown) judges nothing
    wsd = {"max_steps": 5000, "schedule": "wsd", "warmup_steps": 100, "val_every": 50}
    with pytest.raises(PluginError, match="the first rung ends inside its warm-up"):
        pruned(reg, "lstm", tuning={"min_steps": 150}, training=wsd)
    rungs = pruned(reg, "lstm", tuning={"min_steps": 200}, training=wsd).tuner().first
    assert {s.training["max_steps"] for s in rungs} == {200}
    with pytest.raises(PluginError, match="a fixed lr"):
        matrix = matrixfile.build_matrix({"tuning": {"lr": [1e-3, 1e-2], "prune": "halving"}},
                                         "lstm", "copy", "64", "0", (), (), {}, {},
                                         list(reg.models), list(reg.tasks))
        plan(matrix, reg)


def test_a_pruned_study_runs_end_to_end_and_a_relaunch_trains_nothing(cli, tmp_path):
    db = tmp_path / "pruned.sqlite"
    args = ["run", "--models", "lstm", "--tasks", "copy", "--train-sizes", "16",
            "--seeds", "0", "--max-steps", "8", "--val-every", "1", "--warmup-steps", "1",
            "-t", "copy.T=5",
            "-m", "hidden_size=8", "--tune-trials", "3", "--tune-seeds", "2",
            "--tune-prune", "halving", "--tune-eta", "2", "--tune-rungs", "2",
            "--tune-min-steps", "4", "--executor", "sequential", "--db", db]
    first = cli(*args)
    assert first.rc == 0, first.stderr[-3000:]
    assert "rung 2 of 2 (2 trials x 8 steps)" in first.stdout
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT model, json_extract(trial, '$.stage'), "
                        "json_extract(trial, '$.rung'), json_extract(config, "
                        "'$.training.max_steps'), count(*) FROM runs GROUP BY 1, 2, 3, 4"
                        ).fetchall()
    conn.close()
    # 3 trials x 2 tuning seeds at 4 steps, the best 2 x 2 seeds at 8, the winner on seed 0
    assert sorted(rows, key=str) == sorted([("lstm", "tune", 0, 4, 6), ("lstm", "tune", 1, 8, 4),
                                            ("lstm", "eval", None, 8, 1)], key=str), rows
    again = cli(*args)
    assert again.rc == 0, again.stderr[-3000:]
    assert "0 done, 0 diverged, 0 failed" in again.stdout
    assert "skipping them" in again.stdout


def _replay():
    """benchmarks/pruning_replay.py (a script, not a package module)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "pruning_replay.py"
    spec = importlib.util.spec_from_file_location("pruning_replay", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_pruning_replay_judges_rungs_on_the_curves_and_selects_on_full_runs():
    replay = _replay()

    def trial(key, scores, final, jitter=0.0):
        # one validation every 100 steps, one second per step; two tuning seeds
        runs = [replay.SeedRun(final + d, 100.0 * len(scores),
                               [replay.Point(100 * (k + 1), 100.0 * (k + 1), v + d, None, None)
                                for k, v in enumerate(scores)]) for d in (-jitter, jitter)]
        return replay.Trial(key, runs)

    fast = trial("a", [0.6, 0.7, 0.7, 0.7], 0.70)  # leads early, plateaus
    slow = trial("b", [0.2, 0.5, 0.7, 0.8, 0.85, 0.9], 0.90)  # the unpruned selection
    rest = [trial(f"c{i}", [0.3, 0.6, 0.6, 0.6], 0.6 + i / 100, jitter=0.1) for i in range(4)]
    trials = [fast, slow, *rest]
    last = replay.Rule("last")
    out = replay.race(trials, eta=3, rungs=2, min_steps=100, rule=last)
    # rung 100 keeps the best 2 of 6: fast, and c0 (0.3 beats slow's 0.2; c0 wins the tie)
    assert out.discarded and math.isclose(out.regret, 0.2)
    assert math.isclose(out.cost, (6 * 2 * 100 + 2 * 2 * 300) / (2 * (400 + 600 + 4 * 400)))
    # trained in full, the survivors are judged by their full runs: still without slow
    full = replay.race(trials, 3, 2, 100, last, full_last=True)
    assert full.discarded and math.isclose(full.regret, 0.2)
    # at rung 200 the best 2 are fast (0.7) and c0 (0.6); the tuning seeds' disagreement
    # (c: +-0.1) puts slow (0.5) within 2 standard errors of a difference, so the band keeps it
    plain = replay.race(trials, 3, 2, 200, replay.Rule("best"), full_last=True)
    band = replay.race(trials, 3, 2, 200, replay.Rule("best+band"), z=2.0, full_last=True)
    assert plain.discarded and not band.discarded and band.regret == 0.0
    assert band.cost > plain.cost


FULL_LAST = {"trials": 6, "eta": 3, "rungs": 2, "min_steps": 100, "last_rung": "full",
             "rank": "loss"}
WSD = {"max_steps": 5000, "schedule": "wsd", "warmup_steps": 100, "val_every": 50}


def test_a_full_last_rung_trains_the_survivors_in_full_after_the_first_steps_of_the_same_run(reg):
    p = pruned(reg, "lstm,transformer", tuning=FULL_LAST, training=WSD)
    tuner = p.tuner()
    first = tuner.first
    # rung 1: every model's 6 trials x 2 tuning seeds, the first 100 steps of the 5,000-step run
    assert Counter(s.model for s in first) == {"lstm": 12, "transformer": 12}
    assert {(s.training["max_steps"], s.training["stop_step"]) for s in first} == {(5000, 100)}
    loss = {}  # rank by loss: the lowest loss is not the best score
    for s in first:
        loss[s.run_id] = 1.0 + s.training["lr"]  # the smallest lr has the lowest loss

    def curve(run_id):
        return [{"step": 50, "val": {"loss": loss[run_id] + 0.5}},
                {"step": 100, "val": {"loss": loss[run_id]}}]

    recs = records(first, lambda s: s.training["lr"])  # ... and the worst score
    nxt = tuner.extension(recs, curve)
    assert nxt.label == "rung 2 of 2 (2 trials in full)"
    for model in ("lstm", "transformer"):
        tried = sorted({s.training["lr"] for s in first if s.model == model})
        assert {s.training["lr"] for s in nxt.runs if s.model == model} == set(tried[:2])
    # rung 2: the survivors' full runs, which the rung-1 runs were the start of
    assert all("stop_step" not in s.training and s.training["max_steps"] == 5000
               for s in nxt.runs)
    assert {spec_key(s) for s in nxt.runs} <= {spec_key(s) for s in first}
    recs |= records(nxt.runs, lambda s: 0.5 + s.training["lr"])  # in full, the larger lr wins
    assert tuner.extension(recs, curve).runs == []
    final = tuner.evaluation(recs)
    for model in ("lstm", "transformer"):
        tried = sorted({s.training["lr"] for s in first if s.model == model})
        runs = [s for s in final.runs if s.model == model]
        assert {s.training["lr"] for s in runs} == {tried[1]} and len(runs) == 3
    assert all("stop_step" not in s.training for s in final.runs)
    assert {s.trial["last_rung"] for s in final.runs} == {"full"}
    every = list(recs.values()) + list(records(final.runs, lambda s: 0.0).values())
    assert select_trial([r for r in every if r.model == "lstm"], True) == spec_key(
        next(s for s in final.runs if s.model == "lstm"))


def test_bad_full_last_rung_settings_are_one_line_errors(reg):
    for tuning, message in [
        ({"min_steps": 50}, "ends inside its warm-up \\(warmup_steps = 100\\)"),
        ({"min_steps": 5000}, "the rung before the last trains 5,000 steps .*not fewer than max_steps"),
        ({"last_rung": "half"}, "'half'"),
        ({"rank": "speed"}, "'speed'"),
    ]:
        with pytest.raises(PluginError, match=message):
            pruned(reg, "lstm", tuning={**FULL_LAST, **tuning}, training=WSD)
    from seqbench.experiment.tuning import Tuning

    for key, value in (("rank", "loss"), ("last_rung", "full")):
        with pytest.raises(PluginError, match=f'{key} goes with prune = "halving"'):
            Tuning.parse({"trials": 4, key: value}, [0])


def test_a_full_last_rung_study_repeats_its_rung_runs_exactly_and_ranks_by_loss(cli, tmp_path):
    db = tmp_path / "pruned.sqlite"
    args = ["run", "--models", "lstm", "--tasks", "copy", "--train-sizes", "16",
            "--seeds", "0", "--max-steps", "12", "--val-every", "2", "--warmup-steps", "2",
            "-t", "copy.T=5", "-m", "hidden_size=8", "--tune-trials", "4", "--tune-seeds", "2",
            "--tune-prune", "halving", "--tune-eta", "2", "--tune-rungs", "2",
            "--tune-min-steps", "4", "--tune-last-rung", "full", "--tune-rank", "loss",
            "--executor", "sequential", "--db", db]
    first = cli(*args)
    assert first.rc == 0, first.stderr[-3000:]
    assert "rung 2 of 2 (2 trials in full)" in first.stdout
    conn = sqlite3.connect(db)
    runs = conn.execute("SELECT run_id, json_extract(trial, '$.rung'), json_extract(trial, "
                        "'$.stage'), json_extract(config, '$.training.stop_step'), steps, "
                        "seed, json_extract(config, '$.training.lr') FROM runs").fetchall()
    curves = {}
    for run_id, step, val_primary, val in conn.execute(
            "SELECT run_id, step, val_primary, val FROM curves ORDER BY step"):
        curves.setdefault(run_id, []).append((step, val_primary, val))
    conn.close()
    rung0 = {(lr, seed): (rid, steps) for rid, rung, _, stop, steps, seed, lr in runs
             if rung == 0}
    rung1 = {(lr, seed): rid for rid, rung, _, stop, _, seed, lr in runs if rung == 1}
    assert len(rung0) == 8 and len(rung1) == 4
    assert {steps for _, steps in rung0.values()} == {4}
    # a survivor's full run starts exactly as its rung-1 run did: the same validations
    for key, full_id in rung1.items():
        prefix_id = rung0[key][0]
        assert curves[prefix_id] == [p for p in curves[full_id] if p[0] <= 4]
    # the survivors are the 2 trials of lowest mean validation loss over the 2 tuning seeds
    import json
    mean_loss = {}
    for (lr, seed), (rid, _) in rung0.items():
        best = min(json.loads(v)["loss"] for _, _, v in curves[rid])
        mean_loss.setdefault(lr, []).append(best)
    ranked = sorted(mean_loss, key=lambda lr: sum(mean_loss[lr]) / 2)
    assert {lr for lr, _ in rung1} == set(ranked[:2])
    assert sum(1 for r in runs if r[2] == "eval") == 1
    again = cli(*args)
    assert again.rc == 0 and "0 done, 0 diverged, 0 failed" in again.stdout
