"""bench decide plans its budget before tuning: timed short runs, whether the budget holds the
tuning and 3 paired seeds, the largest parameter budget that would, and --param-budget auto.

The planning is tested on a fake clock (a probe's seconds come from a known cost model); the real
4-minute decision on the embedded digits is opt-in (SEQBENCH_SLOW_TESTS=1): it takes minutes."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field

import pytest

from seqbench.decision import planning
from seqbench.decision.planning import (
    PROBE_STEPS, SEEDS, SHRINK, Probe, RunCost, at_size, from_probes, largest_fitting, plan,
    plan_budget,
)


@dataclass
class Spec:
    model: str
    model_params: dict = field(default_factory=dict)


@dataclass
class Req:
    budget_s: float
    trials: int = 4
    tune_share: float = 0.4
    training: dict = field(default_factory=lambda: {"max_steps": 1000, "val_every": 50})


# seconds per step grows with the parameter count; a run also pays a fixed 2 s (3 s transformer)
COST = {"lstm": (2.0, 0.002, 2e-7), "transformer": (3.0, 0.003, 4e-7)}


def true_cost(model: str, params: int) -> RunCost:
    fixed, base, per_param = COST[model]
    return RunCost(params, fixed, base + per_param * params)


@pytest.fixture
def fake_probe(monkeypatch):
    calls = []

    def probe(spec, steps, val_every, param_budget, threads):
        calls.append((spec.model, steps, val_every, param_budget))
        cost = true_cost(spec.model, param_budget)
        return Probe(steps, steps // val_every, cost.seconds(steps), cost.step_s * steps)

    monkeypatch.setattr(planning, "probe", probe)
    return calls


SPECS = [Spec("lstm", {"num_layers": 1}), Spec("lstm", {"num_layers": 3}), Spec("transformer")]


def options(req: Req, workers: int) -> dict:
    return dict(max_steps=req.training["max_steps"], trials=req.trials,
                tune_share=req.tune_share, workers=workers)


def test_two_probes_give_the_fixed_cost_and_the_cost_per_step():
    c = from_probes(1000, Probe(50, 1, 2.0 + 50 * 0.01, 50 * 0.01),
                    Probe(100, 2, 2.0 + 100 * 0.01, 100 * 0.01))
    assert c.fixed_s == pytest.approx(2.0) and c.step_s == pytest.approx(0.01)
    assert c.seconds(1000) == pytest.approx(12.0)
    # the second run's extra validation (0.5 s) is spread over the 50 steps between them
    v = from_probes(1000, Probe(50, 1, 3.0, 0.5), Probe(100, 2, 4.0, 1.0))
    assert (v.fixed_s, v.step_s) == pytest.approx((2.0, 0.02))
    # 10 steps validating once, then at every step: 9 more validations of 0.5 s, each
    # spread over the real run's 50 steps between validations
    w = from_probes(1000, Probe(10, 1, 2.6, 0.1), Probe(10, 10, 7.1, 0.1), val_every=50)
    assert (w.fixed_s, w.step_s) == pytest.approx((2.0, 0.02))
    # one-off costs in the first run (a slow first load) land in the fixed part, never make
    # a step look free: the runs' own training seconds set the cost per step
    slow_first = from_probes(1000, Probe(50, 1, 9.0, 0.5), Probe(100, 2, 3.5, 1.0))
    assert slow_first.step_s == pytest.approx(0.01) and slow_first.fixed_s == pytest.approx(8.5)
    mid = at_size([RunCost(1000, 2.0, 0.01), RunCost(9000, 4.0, 0.05)], 5000)
    assert (mid.fixed_s, mid.step_s) == pytest.approx((3.0, 0.03))
    assert at_size([RunCost(1000, 2.0, 0.01), RunCost(9000, 4.0, 0.05)], 10).step_s == 0.01
    three = [RunCost(100, 1.0, 0.001), RunCost(1000, 2.0, 0.01), RunCost(9000, 4.0, 0.05)]
    assert at_size(three, 550).step_s == pytest.approx(0.0055)  # between its neighbours


def test_plan_counts_waves_and_rounds_as_the_procedure_spends_them():
    costs = {"lstm": RunCost(0, 0, 0.01), "transformer": RunCost(0, 0, 0.02)}  # 10 s and 20 s
    p = plan(costs, budget_s=300, param_budget=0, max_steps=1000, trials=4, tune_share=0.4,
             workers=2)
    assert p.wave_s == pytest.approx(20)  # two workers: the slower run sets the pace
    assert (p.trials, p.seeds) == (4, 11) and p.fits  # 120 s of tuning, 180 s of rounds
    one = plan(costs, budget_s=300, param_budget=0, max_steps=1000, trials=4, tune_share=0.4,
               workers=1)
    assert one.wave_s == pytest.approx(30) and (one.trials, one.seeds) == (4, 6)
    short = plan(costs, budget_s=100, param_budget=0, max_steps=1000, trials=8, tune_share=0.4,
                 workers=2)
    assert not short.fits and short.trials == 2 and short.seeds == 3
    assert "does NOT hold 8 tuning trials per model and 3 paired seeds" in short.describe()


def test_a_budget_that_holds_is_said_so_and_kept(fake_probe):
    said = []
    req = Req(budget_s=3600)
    got = plan_budget(SPECS, req, param_budget=50_000, auto=True, workers=2, say=said.append)
    assert got == 50_000 and len(said) == 1
    assert "holds 4 tuning trials per model" in said[0] and "50,000 parameters" in said[0]
    # the deepest lstm trial is timed, validating once and at every step, nothing else
    n = PROBE_STEPS
    assert fake_probe == [("lstm", n, n, 50_000), ("lstm", n, 1, 50_000),
                          ("transformer", n, n, 50_000), ("transformer", n, 1, 50_000)]


def test_auto_chooses_the_largest_budget_that_fits(fake_probe):
    said = []
    req = Req(budget_s=240)
    got = plan_budget(SPECS, req, param_budget=100_000, auto=True, workers=2, say=said.append)
    assert "does NOT hold" in said[0]
    assert said[-1].startswith(f"--param-budget auto: {got:,}, the largest that fits")
    assert got < 100_000

    def fits(params: int) -> bool:
        costs = {m: true_cost(m, params) for m in COST}
        return plan(costs, budget_s=req.budget_s, param_budget=params, **options(req, 2)).fits

    # the cost model is linear in the parameters, so interpolation is exact: the choice holds
    # the tuning and 3 seeds, the next larger candidate would not
    assert fits(got) and not fits(int(got / SHRINK) + 1)


def test_without_auto_the_fitting_budget_is_named_and_the_given_one_kept(fake_probe):
    said = []
    got = plan_budget(SPECS, Req(budget_s=240), param_budget=100_000, auto=False, workers=2,
                      say=said.append)
    assert got == 100_000
    assert said[-1].startswith("the largest parameter budget that fits: ")
    assert "--param-budget auto to use it" in said[-1]


def test_a_budget_nothing_fits_says_what_to_change(fake_probe):
    said = []
    got = plan_budget(SPECS, Req(budget_s=30), param_budget=100_000, auto=False, workers=2,
                      say=said.append)
    # timed at an eighth (12,500), then an eighth of that (1,562): nothing fits even there
    assert got == 100_000 and said[-1].startswith("no parameter budget down to 1,562 fits")
    assert "give a larger --budget" in said[-1]
    assert [size for *_, size in fake_probe][-2:] == [1_562, 1_562]


def test_auto_where_nothing_fits_takes_the_smallest_size_timed(fake_probe):
    said = []
    got = plan_budget(SPECS, Req(budget_s=30), param_budget=100_000, auto=True, workers=2,
                      say=said.append)
    # never the size that fits least (the one given): the smallest timed, and why
    assert got == 1_562
    assert said[-1].startswith("no parameter budget down to 1,562 fits; --param-budget auto: 1,562")


def test_fewer_trials_than_planned_before_fewer_than_three_seeds(fake_probe):
    said = []
    req = Req(budget_s=150, trials=16)  # no size holds 16 trials; small ones hold 3 seeds
    got = plan_budget(SPECS, req, param_budget=100_000, auto=True, workers=2, say=said.append)
    costs = {m: true_cost(m, got) for m in COST}
    chosen = plan(costs, budget_s=req.budget_s, param_budget=got, **options(req, 2))
    assert not chosen.fits and chosen.seeds >= SEEDS and chosen.trials >= 2
    assert "paired seeds after" in said[-1] and "not the 16 planned" in said[-1]


def test_largest_fitting_skips_sizes_a_model_cannot_be_built_at():
    seen = []

    def cost_of(p):
        seen.append(p)
        return None if p > 20_000 else {"lstm": RunCost(p, 0, 1e-6 * p)}

    best = largest_fitting(cost_of, 40_000, budget_s=1000, max_steps=100, trials=2,
                           tune_share=0.5, workers=1)
    assert best is not None and best.param_budget <= 20_000 and best.seeds >= SEEDS
    assert seen[0] == 40_000


def test_param_budget_must_be_a_count_or_auto(cli, tmp_path):
    rc, out, err = cli("decide", "--task", "classification", "--budget", "1m",
                       "--param-budget", "lots", "--db", tmp_path / "d.sqlite")
    assert rc == 2 and err.count("\n") == 1
    assert "--param-budget 'lots': give a number of parameters (0 or more) or 'auto'" in err
    assert not (tmp_path / "d.sqlite").exists()


def test_decide_says_its_plan_first_and_auto_picks_a_size(tmp_path, make_dist, on_path):
    from conftest import bench_here  # the timing runs train in this process, as in bench's
    from test_decide import SCRIPTED  # fixed scores, no training: only the timing runs train

    on_path(make_dist("seqbench-scripted-plan", {"seqbench_scripted_plan": SCRIPTED},
                      {"scripted": "seqbench_scripted_plan"}))
    db = tmp_path / "d.sqlite"
    args = ["decide", "--task", "classification", "--train-size", "160", "--max-steps", "20",
            "--val-every", "10", "--trials", "2", "--budget", "1m", "--executor", "scripted",
            "--param-budget", "auto", "--json", "--db", db]
    res = bench_here(*args)
    assert res.rc == 0, res.stderr[-3000:]
    plan_line = next(x for x in res.stderr.splitlines() if x.startswith("budget plan:"))
    assert "a run takes at most" in plan_line and "(lstm)" in plan_line
    assert res.stderr.index("budget plan:") < res.stderr.index("deciding between")
    json.loads(res.stdout)  # stdout stays the JSON object alone
    with sqlite3.connect(db) as conn:
        (request,) = conn.execute("SELECT request FROM matrices").fetchone()
    chosen = json.loads(request)["training"]["param_budget"]
    if "does NOT hold" in plan_line:
        assert f"--param-budget auto: {chosen:,}" in res.stderr or "no parameter budget" in res.stderr
    again = bench_here(*args)  # the same decision continues at the same size
    assert again.rc == 0, again.stderr[-3000:]
    assert f"--param-budget auto: {chosen:,}, as the earlier call" in again.stderr


@pytest.mark.skipif(not os.environ.get("SEQBENCH_SLOW_TESTS"),
                    reason="a real 4-minute decision; set SEQBENCH_SLOW_TESTS=1 to run it")
def test_auto_on_the_digits_evaluates_paired_seeds_within_four_minutes(cli, tmp_path):
    rc, out, err = cli("decide", "--task", "classification", "--models", "lstm,transformer",
                       "--budget", "4m", "--param-budget", "auto", "--json",
                       "--db", tmp_path / "d.sqlite", timeout=900)
    assert rc == 0, err[-3000:]
    assert "budget plan:" in err
    result = json.loads(out)
    # on failure: the plan (the first lines) and how the budget went (the last)
    assert min(result["seeds"].values()) >= 2, (
        f"seeds {result['seeds']}, {result['seconds']:.0f} s\n{err[:1500]}\n…\n{err[-1500:]}")
