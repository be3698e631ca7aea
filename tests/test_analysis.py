"""The analysis on hand-made records whose answers are known: no training anywhere."""

import json
import math
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.optimize import brentq

from seqbench.analysis import stats as st
from seqbench.analysis.analyze import analyze
from seqbench.cli.analyze import analyze as analyze_cmd
from seqbench.cli.common import parse_pairs
from seqbench.analysis.verdict import render_markdown

NB = 300  # bootstrap resamples in tests: enough for the checks, fast


def run(model, seed, test, val=None, *, task="toy", size=100, n=None, lr=0.001, status="done",
        metric="accuracy", higher=True, curve=None, task_params=None, params=1000, steps95=None):
    rid = f"{task}-{json.dumps(task_params, sort_keys=True)}-{model}-{size}-{lr}-{seed}"
    return {
        "run_id": rid, "model": model, "task": task, "train_size": size, "seed": seed,
        "status": status, "config": {"task_params": task_params or {}, "training": {"lr": lr}},
        "trial": {"lr": lr}, "primary_metric": metric, "higher_is_better": higher,
        "best_val": (test if val is None else val) if status == "done" else None,
        "test": {metric: test} if status == "done" else None,
        "primary_value": test if status == "done" else None,
        "train_examples": n if n is not None else size, "param_count": params,
        "steps_to_95": steps95, "_curve": curve or [],
    }


def split(runs):
    return runs, {r["run_id"]: r.pop("_curve") for r in runs}


def go(runs, **kw):
    kw.setdefault("n_boot", NB)
    return analyze(*split(runs), **kw)


def cell_of(res, size=None):
    cells = res["cells"] if size is None else [c for c in res["cells"] if c["train_size"] == size]
    return cells[0]


def model_of(cell, name):
    return next(m for m in cell["models"] if m["model"] == name)


def two_models(a_vals, b_vals, a_seeds=None, b_seeds=None, **kw):
    a_seeds = a_seeds or range(len(a_vals))
    b_seeds = b_seeds or range(len(b_vals))
    return ([run("lstm", s, v, **kw) for s, v in zip(a_seeds, a_vals)]
            + [run("transformer", s, v, **kw) for s, v in zip(b_seeds, b_vals)])


NOISE = [0.001, -0.002, 0.003, 0.0, -0.001, 0.002, -0.003, 0.0015]


# ---------------------------------------------------------------------------- primitives


def test_bootstrap_ci_contains_mean_and_narrows_with_seeds():
    rng = np.random.default_rng(0)
    small = rng.normal(0.7, 0.05, 5)
    large = np.concatenate([small, rng.normal(0.7, 0.05, 45)])
    lo5, hi5 = st.bootstrap_mean_ci(small, 0.95, 2000, st.rng_for(0, "a"))
    lo50, hi50 = st.bootstrap_mean_ci(large, 0.95, 2000, st.rng_for(0, "a"))
    assert lo5 <= small.mean() <= hi5 and lo50 <= large.mean() <= hi50
    assert hi50 - lo50 < hi5 - lo5
    assert st.bootstrap_mean_ci([0.5], 0.95, 100, st.rng_for(0)) is None


def test_median_and_quantile_keep_infinity():
    inf = math.inf
    assert st.median([1, 2, inf]) == 2
    assert st.median([1, inf, inf]) == inf
    assert st.median([1, 2, inf, inf]) == inf  # even count: the middle pair averages to inf
    assert st.quantile([1.0, inf], 0.5) == inf and st.quantile([1.0, 3.0], 0.5) == 2.0


def test_sampled_sign_flip_beyond_exact_limit():
    d = np.full(17, 0.1) + np.linspace(0, 0.01, 17)  # 2^17 > 100,000 -> sampled
    p, exact = st.sign_flip_test(d, st.rng_for(0))
    assert not exact and p == pytest.approx(3 / (1 + st.N_PERM), abs=2 / st.N_PERM)


def test_profile_fit_recovers_a_power_law():
    n = np.array([100, 200, 400, 800, 1600, 3200.0])
    y = st.power_law(n, 2.0, 0.5, 0.1)
    a, b, c = st.profile_fit(n, y[None, :])[0]
    assert (a, b, c) == pytest.approx((2.0, 0.5, 0.1), rel=1e-3, abs=1e-4)
    assert st.fit_power_law(n, y) == pytest.approx((2.0, 0.5, 0.1), rel=1e-4, abs=1e-6)


# ---------------------------------------------------------------------------- comparisons


def test_exact_paired_sign_flip_five_seeds_is_not_significant():
    a = [0.9 + x for x in NOISE[:5]]
    res = go(two_models(a, [0.5] * 5))
    (cmp,) = cell_of(res)["comparisons"]
    (v,) = res["verdicts"]
    assert v["accuracy_claim"] == "inconclusive" and "smallest attainable p" in v["text"]
    assert cmp["test"] == "paired sign-flip permutation"
    assert cmp["p_value"] == 2 / 32  # only all-plus and all-minus are as extreme: two-sided
    assert cmp["winner"] is None and cmp["reason"] == "no significant difference"
    assert cmp["diff"] == pytest.approx(np.mean(a) - 0.5)


def test_exact_paired_sign_flip_six_seeds_is_significant():
    res = go(two_models([0.9 + x for x in NOISE[:6]], [0.5] * 6))
    cell = cell_of(res)
    (cmp,) = cell["comparisons"]
    assert cmp["p_value"] == 2 / 64 and cmp["winner"] == "lstm" and cmp["ci"][0] > 0
    assert cell["winner"] == {"model": "lstm", "margin": pytest.approx(cmp["diff"]),
                              "significant": True}


def test_lower_is_better_orients_the_difference():
    runs = two_models([0.2 + x for x in NOISE[:6]], [0.6] * 6, metric="loss", higher=False)
    (cmp,) = cell_of(go(runs))["comparisons"]
    assert cmp["diff"] > 0 and cmp["winner"] == "lstm"  # lower loss: lstm is better


def test_identical_values_give_p_one_and_no_winner():
    res = go(two_models([0.7] * 6, [0.7] * 6))
    cell = cell_of(res)
    (cmp,) = cell["comparisons"]
    assert cmp["p_value"] == 1.0 and cmp["winner"] is None and cmp["diff"] == 0
    assert cell["winner"]["significant"] is False


def test_different_seeds_use_the_exact_two_sample_test():
    runs = two_models([0.9, 0.91, 0.92, 0.93], [0.5, 0.51, 0.52, 0.53], b_seeds=[10, 11, 12, 13])
    (cmp,) = cell_of(go(runs))["comparisons"]
    assert cmp["test"] == "two-sample permutation" and not cmp["paired"]
    assert cmp["p_value"] == pytest.approx(2 / 70)  # C(8, 4) = 70 relabellings, two extreme


def test_fewer_than_three_seeds_no_test():
    (cmp,) = cell_of(go(two_models([0.9, 0.91], [0.5, 0.51])))["comparisons"]
    assert cmp["p_value"] is None and cmp["winner"] is None and cmp["reason"] == "too few seeds"


def test_pairs_all_compares_every_pair():
    runs = two_models([0.9] * 3, [0.5] * 3) + [run("gru", s, 0.7) for s in range(3)]
    res = go(runs, pairs="all")
    got = {(c["a"], c["b"]) for c in cell_of(res)["comparisons"]}
    assert got == {("gru", "lstm"), ("gru", "transformer"), ("lstm", "transformer")}
    assert res["pairs"] == [["gru", "lstm"], ["gru", "transformer"], ["lstm", "transformer"]]


# ---------------------------------------------------------------------------- tuning selection


def test_selection_uses_validation_never_test():
    runs = []
    for s in range(5):
        runs.append(run("lstm", s, test=0.60, val=0.80, lr=0.01))  # best validation
        runs.append(run("lstm", s, test=0.95, val=0.70, lr=0.001))  # best test: must not win
        runs.append(run("transformer", s, test=0.50, val=0.50, lr=0.001))
    cell = cell_of(go(runs))
    lstm = model_of(cell, "lstm")
    assert lstm["selected_trial"] == {"lr": 0.01} and lstm["trials"] == 2
    assert lstm["mean"] == pytest.approx(0.60) and lstm["n_seeds"] == 5
    assert len(lstm["run_ids"]) == 5 and all("-0.01-" in r for r in lstm["run_ids"])
    assert cell["unequal_tuning"] is True and model_of(cell, "transformer")["trials"] == 1


def test_selection_lower_is_better():
    runs = [run("lstm", s, test=0.1, val=0.5, lr=0.01, metric="loss", higher=False)
            for s in range(3)]
    runs += [run("lstm", s, test=0.9, val=0.2, lr=0.001, metric="loss", higher=False)
             for s in range(3)]
    lstm = model_of(cell_of(go(runs)), "lstm")
    assert lstm["selected_trial"] == {"lr": 0.001} and lstm["mean"] == pytest.approx(0.9)


def test_status_counts_and_failed_runs_count_only():
    runs = two_models([0.9] * 3, [0.5] * 3)
    runs.append(run("lstm", 7, 0.0, status="failed"))
    runs.append(run("lstm", 8, 0.0, status="diverged"))
    runs.append(run("transformer", 9, 0.0, status="running"))
    res = go(runs)
    assert res["counts"] == {"done": 6, "failed": 1, "diverged": 1, "running": 0 + 1}
    lstm = model_of(cell_of(res), "lstm")
    assert lstm["n_seeds"] == 3 and lstm["n_failed"] == 1 and lstm["n_diverged"] == 1
    assert lstm["ttt"]["of"] == 4  # the diverged run is censored, not dropped


# ---------------------------------------------------------------------------- time to target


def curve(vals, every=100):
    return [{"step": every * (i + 1), "samples": 32 * every * (i + 1), "seconds": 1.5 * (i + 1),
             "train_loss": 1.0, "val_primary": v} for i, v in enumerate(vals)]


def test_time_to_target_exact_and_censored():
    # best validation in the cell: 1.0 -> target 0.95
    fast = curve([0.5, 0.96, 1.0])  # reaches at step 200
    slow = curve([0.5, 0.6, 0.94, 0.95])  # exactly the target at step 400
    never = curve([0.5, 0.6, 0.7, 0.8])
    runs = [run("lstm", 0, 0.9, val=1.0, curve=fast), run("lstm", 1, 0.9, val=0.95, curve=slow),
            run("lstm", 2, 0.9, val=0.8, curve=never),
            run("transformer", 0, 0.5, val=0.8, curve=never),
            run("transformer", 1, 0.5, val=0.8, curve=never),
            run("transformer", 2, 0.5, val=0.96, curve=curve([0.96]))]
    cell = cell_of(go(runs))
    assert cell["target"] == pytest.approx(0.95)
    t = model_of(cell, "lstm")["ttt"]
    assert t["reached"] == 2 and t["of"] == 3
    assert t["median_steps"] == 400 and t["median_seconds"] == 6.0 and t["median_samples"] == 12800
    assert t["censored_median"] is False
    tt = model_of(cell, "transformer")["ttt"]  # 2 of 3 censored: the median is infinite
    assert tt["reached"] == 1 and tt["median_steps"] is None and tt["censored_median"] is True
    assert tt["steps_ci_infinite"] is True and tt["steps_ci"][1] is None


def test_lower_is_better_target_and_auc():
    runs = [run("lstm", 0, 0.3, val=0.2, metric="loss", higher=False,
                curve=curve([0.4, 0.2]))]  # best 0.2 -> target 0.2/0.95
    cell = cell_of(go(runs))
    assert cell["target"] == pytest.approx(0.2 / 0.95)
    m = model_of(cell, "lstm")
    assert m["ttt"]["median_steps"] == 200
    assert m["auc"] == pytest.approx((0.5 + 1.0) / 2)  # normalised best/v: 0.5 then 1.0


def test_auc_and_own95():
    runs = [run("lstm", 0, 0.9, val=1.0, curve=curve([0.0, 1.0, 1.0]), steps95=200),
            run("lstm", 1, 0.9, val=1.0, curve=curve([1.0, 1.0, 1.0]), steps95=100)]
    m = model_of(cell_of(go(runs)), "lstm")
    # run 0: trapezoid (0+1)/2*100 + 1*100 over 200 steps = 0.75; run 1: 1.0
    assert m["auc"] == pytest.approx((0.75 + 1.0) / 2)
    assert m["own95_steps_median"] == 150


# ---------------------------------------------------------------------------- scaling, crossover

SIZES = [100, 200, 400, 800, 1600, 3200, 6400]


def err_a(n):
    return 0.3 * (n / 100) ** -0.3 + 0.10


def err_b(n):
    return 0.6 * (n / 100) ** -0.6 + 0.05


def scaling_runs(fa, fb, sizes=SIZES, seeds=6, noise=0.004):
    rng = np.random.default_rng(7)
    runs = []
    for n in sizes:
        for s in range(seeds):
            runs.append(run("lstm", s, 1 - fa(n) + rng.normal(0, noise), size=n))
            runs.append(run("transformer", s, 1 - fb(n) + rng.normal(0, noise), size=n))
    return runs


def test_crossover_found_near_truth_and_inside_ci():
    true_n = brentq(lambda n: err_a(n) - err_b(n), 100, 6400)
    res = go(scaling_runs(err_a, err_b))
    (sc,) = res["scaling"]
    assert sc["models"]["lstm"]["fit"]["method"] == "power-law"
    assert sc["models"]["lstm"]["n"] == SIZES and len(sc["models"]["lstm"]["mean"]) == 7
    (x,) = sc["crossovers"]
    assert x["direction"] == "a_to_b" and x["method"] == "power-law"
    assert abs(x["n"] - true_n) / true_n < 0.15
    assert x["ci"][0] <= true_n <= x["ci"][1]
    assert x["no_crossover_share"] < 0.05 and "overtakes" in x["text"]
    (v,) = res["verdicts"]
    assert v["accuracy_claim"] == "holds" and "overtakes lstm at n ≈" in v["text"]


def test_no_crossover_when_one_model_dominates():
    res = go(scaling_runs(err_a, lambda n: err_a(n) + 0.1))
    (x,) = res["scaling"][0]["crossovers"]
    assert x["n"] is None and x["ci"] is None and x["better_throughout"] == "lstm"
    assert x["text"].startswith("none in the measured range") and x["no_crossover_share"] > 0.95


def test_interpolation_with_few_sizes_exact_crossing():
    # two sizes: lstm better by 0.1 at n=100, worse by 0.1 at n=400 -> crossing at n=200 in log n
    runs = []
    for s in range(3):
        runs += [run("lstm", s, 0.8, size=100), run("transformer", s, 0.7, size=100),
                 run("lstm", s, 0.8, size=400), run("transformer", s, 0.9, size=400)]
    (sc,) = go(runs)["scaling"]
    assert sc["models"]["lstm"]["fit"]["method"] == "interpolation"
    assert "fewer than 4 sizes" in sc["models"]["lstm"]["fit"]["reason"]
    (x,) = sc["crossovers"]
    assert x["method"] == "interpolation" and x["n"] == pytest.approx(200, rel=0.01)


# ---------------------------------------------------------------------------- verdicts


def test_verdict_inconclusive_with_three_seeds():
    res = go(two_models([0.9, 0.91, 0.92], [0.5, 0.51, 0.52]))
    (v,) = res["verdicts"]
    assert v["accuracy_claim"] == "inconclusive" and v["speed_claim"] == "inconclusive"
    assert "inconclusive" in v["text"]


def test_verdict_fails_when_transformer_significantly_better():
    res = go(two_models([0.5] * 6, [0.9 + x for x in NOISE[:6]]))
    (v,) = res["verdicts"]
    assert v["accuracy_claim"] == "fails" and "fails" in v["text"]


def test_verdict_speed_holds_and_mentions_budget_and_tuning():
    fast, slow = curve([0.96, 1.0, 1.0]), curve([0.5, 0.7, 0.96])
    runs = [run("lstm", s, 0.9 + NOISE[s], val=1.0, curve=fast, params=1000) for s in range(6)]
    runs += [run("transformer", s, 0.5, val=0.96, curve=slow, params=2000, lr=lr)
             for s in range(6) for lr in (0.001, 0.0003)]
    (v,) = go(runs)["verdicts"]
    assert v["speed_claim"] == "holds" and v["accuracy_claim"] == "holds"
    assert "Parameter counts differ" in v["text"] and "Tuning budgets differ" in v["text"]


def test_verdict_inconclusive_when_seeds_diverged():
    # lstm wins on the 6 seeds that finished, but a 7th diverged: no claim rests on survivors.
    runs = two_models([0.9 + x for x in NOISE[:6]], [0.5] * 6)
    runs.append(run("lstm", 6, 0.0, status="diverged"))
    (v,) = go(runs)["verdicts"]
    assert v["accuracy_claim"] == "inconclusive"
    assert "Diverged seeds (lstm: 1)" in v["text"] and "seeds that diverged" in v["text"]


def test_verdict_when_a_model_is_missing():
    (v,) = go([run("lstm", s, 0.9) for s in range(5)])["verdicts"]
    assert v["accuracy_claim"] == "inconclusive" and "no verdict" in v["text"]


def test_empty_input_and_a_model_with_only_failed_runs():
    res = go([])
    assert res["cells"] == [] and res["verdicts"] == [] and res["counts"]["done"] == 0
    runs = [run("lstm", s, 0.9) for s in range(3)]
    runs += [run("transformer", s, 0.0, status="failed") for s in range(3)]
    cell = cell_of(go(runs))
    tr = model_of(cell, "transformer")
    assert tr["n_seeds"] == 0 and tr["n_failed"] == 3 and tr["mean"] is None
    (cmp,) = cell["comparisons"]
    assert cmp["diff"] is None and cmp["reason"] == "no finished runs of transformer"
    assert cell["winner"] == {"model": "lstm", "margin": None, "significant": False}


def test_variants_keys():
    runs = [run(m, s, 0.9 if m == "lstm" else 0.5, task="copy", task_params={"T": T, "x": 1})
            for T in (50, 100) for m in ("lstm", "transformer") for s in range(3)]
    runs += [run("lstm", s, 0.7, task="other", task_params={"y": 2}) for s in range(3)]
    res = go(runs)
    keys = [(c["task"], c["variant_key"]) for c in res["cells"]]
    assert keys == [("copy", "T=50"), ("copy", "T=100"), ("other", "default")]
    assert res["cells"][0]["variant"] == {"T": 50}
    assert [(v["task"], v["variant_key"]) for v in res["verdicts"]] == keys


# ---------------------------------------------------------------------------- output


def test_json_serialisable_and_deterministic():
    runs = scaling_runs(err_a, err_b, sizes=[100, 400, 1600, 6400])
    runs.append(run("lstm", 9, 0.0, size=100, status="diverged", curve=curve([0.1])))
    r1, r2, r3 = (go([dict(r) for r in runs], seed=s) for s in (0, 0, 1))
    text = json.dumps(r1, allow_nan=False)
    assert json.loads(text)["cells"][0]["models"][0]["ttt"]["of"] >= 1
    for r in (r1, r2, r3):
        r.pop("generated_at")
    assert r1 == r2 and r1 != r3
    assert set(r1) >= {"confidence", "target_fraction", "n_boot", "seed", "pairs", "counts",
                       "cells", "scaling", "verdicts"}
    md = render_markdown({**r1, "generated_at": "x"})
    assert "| size | model |" in md and "claim 'lstm beats transformer" in md


def test_parse_pairs():
    assert parse_pairs("all") == "all"
    assert parse_pairs("lstm:transformer, gru:transformer") == [("lstm", "transformer"),
                                                                ("gru", "transformer")]
    for bad in ("lstm", "lstm:lstm", "a:b:c", ","):
        with pytest.raises(ValueError):
            parse_pairs(bad)


# ---------------------------------------------------------------------------- the CLI


def store_record(r):
    rec = {k: v for k, v in r.items() if k not in ("primary_value", "_curve")}
    rec.update(matrix_id="m1", kind="classification", steps=300, samples=9600, train_seconds=3.0,
               curve=[dict(p, val={}) for p in r["_curve"]])
    return rec


def test_cli_against_a_real_database(tmp_path):
    from seqbench.store import Store

    db = tmp_path / "bench.sqlite"
    runs = two_models([0.9 + x for x in NOISE[:6]], [0.5] * 6, curve=curve([0.5, 0.96]))
    with Store(db) as store:
        for r in runs:
            store.save(store_record(r))
    cli = CliRunner()
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--json", "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    (v,) = data["verdicts"]
    assert data["counts"]["done"] == 12 and v["accuracy_claim"] == "holds"
    assert data["cells"][0]["comparisons"][0]["p_value"] == 2 / 64
    assert data["n_boot"] == 200 and data["seed"] == 0

    res = cli.invoke(analyze_cmd, ["--db", str(db), "--bootstrap", "200"])
    assert res.exit_code == 0 and "lstm beats transformer" in res.output

    out = tmp_path / "report.md"
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--markdown", "--out", str(out),
                                   "--bootstrap", "200", "--pairs", "all"])
    assert res.exit_code == 0 and out.read_text().startswith("# seqbench analysis")

    res = cli.invoke(analyze_cmd, ["--db", str(db), "--pairs", "lstm:gpt"])
    assert res.exit_code == 2 and "'gpt'" in res.output


def test_cli_errors_are_one_line_exit_2(tmp_path):
    from seqbench.store import Store

    cli = CliRunner()
    res = cli.invoke(analyze_cmd, ["--db", str(tmp_path / "missing.sqlite")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    res = cli.invoke(analyze_cmd, ["--db", str(bad)])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE x (a)").connection.commit()
    res = cli.invoke(analyze_cmd, ["--db", str(other)])
    assert res.exit_code == 2 and "not a seqbench" in res.output
    empty = tmp_path / "empty.sqlite"
    Store(empty).close()
    res = cli.invoke(analyze_cmd, ["--db", str(empty)])
    assert res.exit_code == 2 and "no runs" in res.output
    res = cli.invoke(analyze_cmd, ["--db", str(empty), "--json", "--markdown"])
    assert res.exit_code == 2
