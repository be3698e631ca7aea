"""The analysis on hand-made records whose answers are known: no training anywhere."""

import io
import json
import math
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats as sps
from scipy.optimize import brentq

from seqbench.records import RunRecord
from seqbench.analysis import stats as st
from seqbench.analysis.analyze import analyze, default_pairs
from seqbench.analysis.verdict import MODEL_COLUMNS, render_markdown, sections
from seqbench.cli.analyze import analyze as analyze_cmd
from seqbench.cli.analyze import parse_margins
from seqbench.cli.common import parse_pairs

NB = 300  # bootstrap resamples in tests: enough for the checks, fast


def run(model, seed, test, val=None, *, task="toy", size=100, n=None, lr=0.001, status="done",
        metric="accuracy", higher=True, curve=None, task_params=None, params=1000, steps95=None,
        extras=None, stage=None):
    trial = {"lr": lr} if stage is None else {"lr": lr, "stage": stage}
    rid = f"{task}-{json.dumps(task_params, sort_keys=True)}-{model}-{size}-{lr}-{seed}-{stage}"
    return {
        "run_id": rid, "model": model, "task": task, "train_size": size, "seed": seed,
        "status": status, "config": {"task_params": task_params or {}, "training": {"lr": lr}},
        "trial": trial, "primary_metric": metric, "higher_is_better": higher,
        "best_val": (test if val is None else val) if status == "done" else None,
        "test": {metric: test} if status == "done" else None,
        "primary_value": test if status == "done" else None,
        "train_examples": n if n is not None else size, "param_count": params,
        "steps_to_95": steps95, "extras": extras or {}, "_curve": curve or [],
    }


def split(runs):
    """The runs as the store reads them (RunRecord) and their curves."""
    curves = {r["run_id"]: r.pop("_curve") for r in runs}
    return [RunRecord.from_dict({"kind": "classification", **r}) for r in runs], curves


def go(runs, **kw):
    kw.setdefault("n_boot", NB)
    return analyze(*split(runs), **kw)


def cell_of(res, size=None):
    cells = res["cells"] if size is None else [c for c in res["cells"] if c["train_size"] == size]
    return cells[0]


def model_of(cell, name):
    return next(m for m in cell["models"] if m["model"] == name)


def two_models(a_vals, b_vals, a_seeds=None, b_seeds=None, a="lstm", b="transformer", **kw):
    a_seeds = a_seeds or range(len(a_vals))
    b_seeds = b_seeds or range(len(b_vals))
    return ([run(a, s, v, **kw) for s, v in zip(a_seeds, a_vals)]
            + [run(b, s, v, **kw) for s, v in zip(b_seeds, b_vals)])


NOISE = [0.001, -0.002, 0.003, 0.0, -0.001, 0.002, -0.003, 0.0015]


# ---------------------------------------------------------------------------- honest coverage

SIMS, N = 2000, 6


def covered(lo, hi, truth=0.0) -> float:
    return float(np.mean((lo <= truth) & (truth <= hi)))


def test_t_intervals_cover_95_percent_with_six_seeds():
    """Normal data, n = 6, 2,000 simulations: the mean, the paired difference and Welch's
    difference (unequal spreads) all cover about 95%."""
    rng = np.random.default_rng(20240607)
    x = rng.normal(0.0, 1.0, (SIMS, N))
    lo, hi = st.mean_ci(x, 0.95)
    assert 0.93 <= covered(lo, hi) <= 0.97
    # paired: a shared seed effect (the same training subset) plus each model's own noise
    seed_effect = rng.normal(0, 2.0, (SIMS, N))
    a = 0.3 + seed_effect + rng.normal(0, 0.5, (SIMS, N))
    b = seed_effect + rng.normal(0, 0.5, (SIMS, N))
    lo, hi = st.mean_ci(a - b, 0.95)
    assert 0.93 <= covered(lo, hi, 0.3) <= 0.97
    a, b = rng.normal(0.3, 1.0, (SIMS, N)), rng.normal(0.0, 3.0, (SIMS, N))
    lo, hi = st.welch_ci(a, b, 0.95)
    assert 0.93 <= covered(lo, hi, 0.3) <= 0.97
    # the scalar path the analysis takes is the same interval
    stacked = st.mean_ci(x[:2], 0.95)
    assert st.mean_ci(x[0], 0.95) == pytest.approx((stacked[0][0], stacked[1][0]))


def test_the_old_percentile_bootstrap_under_covers_with_six_seeds():
    """Why the percentile bootstrap was replaced: over 6 values its spread is the plug-in sd
    (low by sqrt(5/6)) and its quantiles are normal (1.96) where t_5 needs 2.571, so it covers
    P(|t_5| < 1.96 sqrt(5/6)) = 86.6% for a nominal 95% (finding 6 measured about 86%)."""
    rng = np.random.default_rng(20240607)
    x = rng.normal(0.0, 1.0, (SIMS, N))
    idx = rng.integers(0, N, size=(1000, N))
    boot = x[:, idx].mean(-1)  # (sims, resamples)
    lo, hi = np.quantile(boot, 0.025, axis=1), np.quantile(boot, 0.975, axis=1)
    assert covered(lo, hi) < 0.90
    theory = 2 * sps.t.cdf(1.96 * math.sqrt((N - 1) / N), N - 1) - 1
    assert theory == pytest.approx(0.866, abs=0.001)
    assert abs(covered(lo, hi) - theory) < 0.03
    tl, th = st.mean_ci(x, 0.95)
    assert covered(tl, th) - covered(lo, hi) > 0.05


# ---------------------------------------------------------------------------- primitives


def test_mean_ci_is_the_student_t_interval():
    v = np.array([0.71, 0.74, 0.69, 0.77, 0.72])
    half = sps.t.ppf(0.975, 4) * v.std(ddof=1) / math.sqrt(5)
    assert st.mean_ci(v, 0.95) == pytest.approx((v.mean() - half, v.mean() + half))
    assert st.mean_ci([0.5], 0.95) is None


def test_t_diff_matches_scipy_paired_and_welch():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.7, 0.03, 6), rng.normal(0.68, 0.05, 6)
    paired = st.t_diff(a, b, paired=True)
    assert paired.p_value() == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert paired.df == 5
    welch = st.t_diff(a, b[:4], paired=False)
    ref = sps.ttest_ind(a, b[:4], equal_var=False)
    assert welch.p_value() == pytest.approx(ref.pvalue)
    assert welch.df == pytest.approx(ref.df)
    # the vectorised interval the coverage simulation uses is the analysis' own
    assert st.welch_ci(a, b[:4], 0.9) == pytest.approx(welch.ci(0.9))
    assert st.mean_ci(a - b, 0.9) == pytest.approx(paired.ci(0.9))
    assert st.t_diff([1.0], [2.0], paired=False) is None


def test_tost_p_agrees_with_the_one_minus_two_alpha_interval():
    for d, se, margin in [(0.002, 0.002, 0.01), (0.006, 0.002, 0.01), (0.0, 0.006, 0.01),
                          (-0.004, 0.001, 0.01), (0.02, 0.001, 0.01)]:
        td = st.TDiff(d, se, 5, True)
        lo, hi = td.ci(0.90)
        inside = -margin < lo and hi < margin
        assert (td.tost_p(margin) < 0.05) == inside, (d, se)
    assert st.TDiff(0.0, 0.0, 5, True).tost_p(0.01) == 0.0  # identical seeds: equivalent


def test_holm_step_down():
    assert st.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert st.holm([0.001, None, 0.2]) == [pytest.approx(0.002), None, pytest.approx(0.2)]
    assert st.holm([0.6, 0.5]) == pytest.approx([1.0, 1.0])  # capped at 1, monotone


@pytest.mark.skipif(not hasattr(sps, "logrank"), reason="scipy < 1.11 has no logrank")
def test_logrank_matches_scipy():
    rng = np.random.default_rng(5)
    for _ in range(5):
        ta, tb = rng.integers(1, 20, 7).astype(float), rng.integers(3, 25, 6).astype(float)
        ea, eb = rng.random(7) < 0.7, rng.random(6) < 0.6
        z, p = st.logrank(ta, ea, tb, eb)
        ref = sps.logrank(sps.CensoredData(uncensored=ta[ea], right=ta[~ea]),
                          sps.CensoredData(uncensored=tb[eb], right=tb[~eb]))
        assert (z, p) == pytest.approx((ref.statistic, ref.pvalue))
    z, p = st.logrank([100] * 6, [True] * 6, [3000] * 6, [False] * 6)
    assert z > 0 and p < 0.01  # A reached early, B never: A is faster
    assert st.logrank([5, 6], [False, False], [5, 6], [False, False]) is None


def test_median_and_quantile_keep_infinity():
    inf = math.inf
    assert st.median([1, 2, inf]) == 2
    assert st.median([1, inf, inf]) == inf
    assert st.median([1, 2, inf, inf]) == inf  # even count: the middle pair averages to inf
    assert st.quantile([1.0, inf], 0.5) == inf and st.quantile([1.0, 3.0], 0.5) == 2.0
    assert st.quantile([-inf, 1.0], 0.5) == -inf


def test_sampled_sign_flip_beyond_exact_limit():
    d = np.full(17, 0.1) + np.linspace(0, 0.01, 17)  # 2^17 > 100,000 -> sampled
    p, exact = st.sign_flip_test(d, st.rng_for(0))
    assert not exact and p == pytest.approx(3 / (1 + st.N_PERM), abs=2 / st.N_PERM)


def test_profile_fit_recovers_a_power_law_and_bounds_are_flagged():
    n = np.array([100, 200, 400, 800, 1600, 3200.0])
    y = st.power_law(n, 2.0, 0.5, 0.1)
    a, b, c = st.profile_fit(n, y[None, :])[0]
    assert (a, b, c) == pytest.approx((2.0, 0.5, 0.1), rel=1e-3, abs=1e-4)
    assert st.fit_power_law(n, y) == pytest.approx((2.0, 0.5, 0.1), rel=1e-4, abs=1e-6)
    assert st.at_bounds((2.0, 0.5, 0.1), 1.0) == []
    assert st.at_bounds((2.0, 3.0, 0.1), 1.0) == ["b = 3"]
    assert st.at_bounds((0.0, 0.5, 0.0), 1.0) == ["a = 0"]  # c = 0: a real asymptote


# ---------------------------------------------------------------------------- comparisons


def test_paired_t_decides_and_the_sign_flip_p_is_supporting():
    a = [0.9 + x for x in NOISE[:6]]
    res = go(two_models(a, [0.5] * 6))
    cell = cell_of(res)
    (cmp,) = cell["comparisons"]
    d = np.array(a) - 0.5
    assert cmp["test"] == "paired t" and cmp["paired"]
    assert cmp["diff"] == pytest.approx(d.mean())
    assert cmp["ci"] == pytest.approx(list(st.mean_ci(d, 0.95)))
    assert cmp["p_value"] == pytest.approx(sps.ttest_1samp(d, 0).pvalue)
    assert cmp["p_permutation"] == 2 / 64 and cmp["permutation_exact"]
    assert cmp["outcome"] == "a_better" and cmp["winner"] == "lstm"
    assert cmp["result"] == "lstm better" and cmp["holm_family"] == 1
    assert cell["winner"]["significant"] and cell["winner"]["outcome"] == "lstm better"
    lstm = model_of(cell, "lstm")
    assert lstm["ci"] == pytest.approx(list(st.mean_ci(a, 0.95)))


def test_five_paired_seeds_can_decide_now():
    """The sign-flip test's floor (2/32 = 0.0625) no longer blocks a clear difference."""
    res = go(two_models([0.9 + x for x in NOISE[:5]], [0.5] * 5))
    (cmp,) = cell_of(res)["comparisons"]
    assert cmp["p_permutation"] == 2 / 32 and cmp["p_value"] < 1e-6
    assert cmp["outcome"] == "a_better"
    assert res["verdicts"][0]["accuracy_claim"] == "holds"


def test_lower_is_better_orients_the_difference():
    runs = two_models([0.2 + x for x in NOISE[:6]], [0.6] * 6, metric="loss", higher=False)
    (cmp,) = cell_of(go(runs))["comparisons"]
    assert cmp["diff"] > 0 and cmp["winner"] == "lstm"  # lower loss: lstm is better


def test_different_seeds_use_welch():
    a, b = [0.9, 0.91, 0.92, 0.93], [0.5, 0.53, 0.49, 0.55]
    runs = two_models(a, b, b_seeds=[10, 11, 12, 13])
    (cmp,) = cell_of(go(runs))["comparisons"]
    assert cmp["test"] == "Welch t" and not cmp["paired"]
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert cmp["p_value"] == pytest.approx(ref.pvalue) and cmp["df"] == pytest.approx(ref.df)
    assert cmp["p_permutation"] == pytest.approx(2 / 70)


def test_fewer_than_three_seeds_no_test():
    (cmp,) = cell_of(go(two_models([0.9, 0.91], [0.5, 0.52])))["comparisons"]
    assert cmp["p_value"] is None and cmp["winner"] is None and cmp["reason"] == "too few seeds"
    assert cmp["outcome"] == "inconclusive" and cmp["ci"] is not None  # the interval is shown


def test_holm_over_the_sizes_of_a_task():
    """Raw p < 0.05 at one size but not after Holm over three sizes: inconclusive, and said so."""
    rng = np.random.default_rng(11)
    runs = []
    shifts = {100: 0.2, 200: 0.0, 400: 0.0}
    base = rng.normal(0, 0.02, (3, 6))
    for j, (size, shift) in enumerate(shifts.items()):
        for s in range(6):
            runs.append(run("lstm", s, 0.6 + base[j, s] + shift, size=size))
            runs.append(run("transformer", s, 0.6 + rng.normal(0, 0.02), size=size))
    res = go(runs)
    cmps = [c["comparisons"][0] for c in res["cells"]]
    raw = [c["p_value"] for c in cmps]
    assert [c["p_holm"] for c in cmps] == pytest.approx(st.holm(raw))
    assert all(c["holm_family"] == 3 for c in cmps)
    assert cmps[0]["outcome"] == "a_better"
    # a made-up family: p = 0.02 at two sizes and 0.9 at a third
    from seqbench.analysis.accuracy import Comparison, decide

    fam = [Comparison("lstm", "transformer", p_value=p, diff=0.1, size=n)
           for n, p in zip((100, 200, 400), (0.001, 0.04, 0.9))]
    decide(fam, 0.95)
    assert [c.p_holm for c in fam] == pytest.approx([0.003, 0.08, 0.9])
    assert fam[0].outcome == "a_better"
    assert fam[1].outcome == "inconclusive"
    assert "not significant after Holm correction over 3 sizes" in fam[1].reason


def test_equivalence_within_the_margin():
    a = [0.700, 0.702, 0.698, 0.701, 0.699, 0.700]
    b = [0.701, 0.700, 0.699, 0.702, 0.698, 0.701]
    res = go(two_models(a, b))
    cell = cell_of(res)
    (cmp,) = cell["comparisons"]
    assert cell["margin"] == 0.01 and cmp["margin"] == 0.01
    lo, hi = cmp["equivalence_ci"]
    assert -0.01 < lo and hi < 0.01 and cmp["tost_p_holm"] < 0.05
    assert cmp["outcome"] == "equivalent" and cmp["winner"] is None
    (v,) = res["verdicts"]
    assert v["accuracy_claim"] == "equivalent" and "equivalent" in v["text"]
    assert "±0.01" in v["text"]


def test_no_difference_is_not_equivalence():
    """Noisy seeds: no significant difference, but the interval is wider than the margin."""
    a = [0.70, 0.75, 0.66, 0.72, 0.68, 0.74]
    b = [0.71, 0.69, 0.74, 0.66, 0.73, 0.70]
    (cmp,) = cell_of(go(two_models(a, b)))["comparisons"]
    assert cmp["p_value"] > 0.05 and cmp["tost_p"] > 0.05
    assert cmp["outcome"] == "inconclusive" and "not shown to be within ±0.01" in cmp["reason"]
    # a larger declared margin makes the same data equivalent
    (cmp,) = cell_of(go(two_models(a, b), margins={"accuracy": 0.08}))["comparisons"]
    assert cmp["outcome"] == "equivalent" and cmp["margin"] == 0.08


def test_significant_but_smaller_than_the_margin_is_equivalent():
    a = [0.705 + x / 10 for x in NOISE[:6]]
    (cmp,) = cell_of(go(two_models(a, [0.700] * 6)))["comparisons"]
    assert cmp["p_holm"] < 0.05 and cmp["outcome"] == "equivalent"
    assert "smaller than the margin" in cmp["reason"]


def test_default_margins_per_metric_scale():
    bleu = go(two_models([20.0, 21, 22], [20.5, 21, 21.5], metric="bleu"))
    assert cell_of(bleu)["margin"] == 1.0 and bleu["margins"]["toy"]["margin"] == 1.0
    acc = go(two_models([0.2, 0.21, 0.22], [0.2, 0.2, 0.2]))
    assert cell_of(acc)["margin"] == 0.01
    loss = go(two_models([2.0, 2.5, 3.0], [2.2, 2.1, 2.0], metric="loss", higher=False))
    assert cell_of(loss)["margin"] is None  # no scale: no equivalence test, no guard
    (cmp,) = cell_of(loss)["comparisons"]
    assert cmp["tost_p"] is None and cmp["guard"] == "unavailable"
    everything = go(two_models([0.2, 0.21, 0.22], [0.2, 0.2, 0.2]), margins={"*": 0.03})
    assert cell_of(everything)["margin"] == 0.03


# ---------------------------------------------------------------------------- floor guard


SCAN = {"chance": 0.0, "perfect": 1.0, "val_size": 1000}


def test_floor_effect_is_not_a_finding():
    """Finding 9: a few lucky seeds above 0% exact match vs a Transformer at 0% were reported as
    'holds'; neither model's scores can be told from chance."""
    runs = two_models([0.0, 0.01, 0.0, 0.02, 0.0, 0.0], [0.0] * 6, metric="exact_match",
                      extras=SCAN)
    res = go(runs)
    cell = cell_of(res)
    (cmp,) = cell["comparisons"]
    assert cmp["guard"] == "floor" and cmp["outcome"] == "not_measurable"
    assert cmp["winner"] is None and cmp["result"] == "not measurable at this budget"
    assert cell["guard"]["floor_rule"] and cell["guard"]["chance"] == 0.0
    assert cell["winner"]["significant"] is False
    (v,) = res["verdicts"]
    assert v["accuracy_claim"] == "not measurable" and "holds" not in v["text"]
    assert "not measurable at this budget" in v["text"]
    assert v["speed_claim"] == "not measurable"


def test_one_model_told_from_chance_is_measured_and_the_other_named():
    """1-2% exact match on every seed vs 0%: the LSTM is above chance, the difference is
    measured; the verdict says the Transformer has not learnt the task."""
    runs = two_models([0.01, 0.02, 0.015, 0.012, 0.018, 0.02], [0.0] * 6,
                      metric="exact_match", extras=SCAN)
    res = go(runs)
    (cmp,) = cell_of(res)["comparisons"]
    assert cmp["guard"] is None and cmp["at_floor"] == ["transformer"]
    assert cmp["outcome"] == "a_better"
    assert "transformer's scores cannot be told from chance" in res["verdicts"][0]["text"]


def test_one_model_above_the_floor_is_measurable():
    runs = two_models([0.30 + x for x in NOISE[:6]], [0.0] * 6, metric="exact_match", extras=SCAN)
    (cmp,) = cell_of(go(runs))["comparisons"]
    assert cmp["guard"] is None and cmp["outcome"] == "a_better"


def test_ceiling_effect_is_not_measurable():
    runs = two_models([0.999, 0.998, 1.0, 0.999, 1.0, 0.999], [0.995, 0.994, 0.996, 0.995,
                                                                 0.995, 0.996], extras=SCAN)
    (cmp,) = cell_of(go(runs))["comparisons"]
    assert cmp["guard"] == "ceiling" and cmp["outcome"] == "not_measurable"


def test_no_chance_level_declared_says_the_guard_was_not_applied():
    runs = two_models([0.01, 0.02, 0.015, 0.012, 0.018, 0.02], [0.0] * 6, metric="exact_match")
    res = go(runs)
    (cmp,) = cell_of(res)["comparisons"]
    assert cmp["guard"] == "unavailable" and cmp["outcome"] == "a_better"
    assert "could not be applied" in cell_of(res)["guard"]["note"]
    assert "floor guard could not be applied" in res["verdicts"][0]["text"]


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


def test_tuning_seeds_select_but_never_count():
    """Finding 4: the seed that chose a trial is not an evaluation seed (winner's curse)."""
    runs = [run("lstm", 0, test=0.99, val=0.80, lr=0.01, stage="tune"),  # lucky tuning seed
            run("lstm", 0, test=0.50, val=0.70, lr=0.001, stage="tune")]
    runs += [run("lstm", s, test=0.60, val=0.75, lr=0.01, stage="eval") for s in range(1, 6)]
    # evaluation runs of the other trial score better on validation: the choice was made on the
    # tuning seeds and stays
    runs += [run("lstm", s, test=0.70, val=0.95, lr=0.001, stage="eval") for s in range(1, 6)]
    runs += [run("transformer", s, test=0.55, lr=0.001) for s in range(1, 6)]  # legacy: no stage
    res = go(runs)
    cell = cell_of(res)
    lstm = model_of(cell, "lstm")
    assert lstm["selected_trial"] == {"lr": 0.01}  # the stage is not part of the trial
    assert lstm["n_seeds"] == 5 and lstm["seeds"] == [1, 2, 3, 4, 5]
    assert lstm["mean"] == pytest.approx(0.60) and lstm["n_tune"] == 2
    assert model_of(cell, "transformer")["n_seeds"] == 5
    (cmp,) = cell["comparisons"]
    assert cmp["paired"] and cmp["n_a"] == 5


@pytest.mark.parametrize("with_config", [True, False])
def test_tuning_bookkeeping_does_not_split_a_trial(with_config):
    """The launcher's trial dicts differ between stages (round, trial count, lr range, lr_edge):
    still one trial, whose evaluation runs count, with the bookkeeping reported."""
    runs = []
    for lr, val in ((0.01, 0.8), (0.001, 0.7)):
        for s in (10000, 10001):
            r = run("lstm", s, 0.9, val=val, lr=lr, stage="tune")
            r["trial"].update(round=0, lr_range=[1e-4, 1e-2])
            runs.append(r)
    for s in range(3):
        r = run("lstm", s, 0.6, val=0.75, lr=0.01, stage="eval")
        r["trial"].update(trials=2, lr_range=[1e-4, 1e-2], lr_edge="high")
        runs.append(r)
    runs += [run("transformer", s, 0.5) for s in range(3)]
    if not with_config:
        for r in runs:
            del r["config"]
    res = go(runs)
    lstm = model_of(cell_of(res), "lstm")
    assert lstm["selected_trial"] == {"lr": 0.01} and lstm["trials"] == 2
    assert lstm["n_seeds"] == 3 and lstm["n_tune"] == 4 and lstm["mean"] == pytest.approx(0.6)
    assert lstm["tuning"] == {"trials": 2, "lr_range": [1e-4, 1e-2], "lr_edge": "high"}
    assert ("lstm's selected learning rate sits at the high edge of its searched range "
            "(0.0001 .. 0.01)") in res["verdicts"][0]["text"]


def test_status_counts_and_failed_runs_count_only():
    runs = two_models([0.9] * 3, [0.5] * 3)
    runs.append(run("lstm", 7, 0.0, status="failed"))
    runs.append(run("lstm", 8, 0.0, status="diverged"))
    runs.append(run("transformer", 9, 0.0, status="running"))
    res = go(runs)
    assert res["counts"] == {"done": 6, "failed": 1, "diverged": 1, "running": 0 + 1,
                             "early_stopped": 0}  # no step cap or patience declared
    lstm = model_of(cell_of(res), "lstm")
    assert lstm["n_seeds"] == 3 and lstm["n_failed"] == 1 and lstm["n_diverged"] == 1
    assert lstm["ttt"]["of"] == 4  # the diverged run is censored, not dropped


def test_summary_table_uses_the_same_cells(tmp_path):
    """bench run's summary counts the analysis' seeds: tuning runs are listed, not averaged."""
    from rich.console import Console

    from seqbench.analysis.tables import print_summary

    runs = [run("lstm", 0, test=0.99, val=0.9, lr=0.01, stage="tune")]
    runs += [run("lstm", s, test=0.6, val=0.8, lr=0.01, stage="eval") for s in (1, 2)]
    buf = io.StringIO()
    print_summary(split(runs)[0], Console(file=buf, width=200))
    out = buf.getvalue()
    assert "0.600" in out and "0.99" not in out and "(+1 tuning)" in out


# ---------------------------------------------------------------------------- pairs


def test_default_pairs_are_the_models_present():
    assert default_pairs(["lstm", "gru"]) == [("gru", "lstm")]
    assert default_pairs(["transformer", "gru", "lstm"]) == [
        ("lstm", "transformer"), ("gru", "lstm"), ("gru", "transformer")]
    assert default_pairs(["lstm"]) == []
    runs = two_models([0.9] * 3, [0.5] * 3, a="gru", b="lstm")
    res = go(runs)
    assert res["pairs"] == [["gru", "lstm"]] and res["verdict_pair"] == ["gru", "lstm"]
    assert res["verdicts"][0]["a"] == "gru"


def test_pairs_all_compares_every_pair():
    runs = two_models([0.9] * 3, [0.5] * 3) + [run("gru", s, 0.7) for s in range(3)]
    res = go(runs, pairs="all")
    got = {(c["a"], c["b"]) for c in cell_of(res)["comparisons"]}
    assert got == {("gru", "lstm"), ("gru", "transformer"), ("lstm", "transformer")}
    assert res["pairs"] == [["lstm", "transformer"], ["gru", "lstm"], ["gru", "transformer"]]
    assert res["verdict_pair"] == ["lstm", "transformer"]


def test_winner_is_tested_even_when_its_pair_was_not_asked():
    runs = two_models([0.9 + x for x in NOISE[:6]], [0.5] * 6, a="gru", b="elman")
    runs += [run("lstm", s, 0.4) for s in range(6)]
    cell = cell_of(go(runs, pairs=[("lstm", "elman")]))
    assert [(c["a"], c["b"]) for c in cell["comparisons"]] == [("lstm", "elman")]
    assert cell["winner"]["model"] == "gru" and cell["winner"]["against"] == "elman"
    assert cell["winner"]["significant"] is True


# ---------------------------------------------------------------------------- time to target


def curve(vals, every=100):
    return [{"step": every * (i + 1), "samples": 32 * every * (i + 1), "seconds": 1.5 * (i + 1),
             "train_loss": 1.0, "val_primary": v} for i, v in enumerate(vals)]


def test_target_is_the_median_of_the_models_median_best():
    """Not the max of many noisy runs: one lucky run barely moves it."""
    lucky = [run("lstm", 0, 0.9, curve=curve([0.5, 0.99]))]
    lstm = lucky + [run("lstm", s, 0.9, curve=curve([0.5, 0.80])) for s in (1, 2)]
    tr = [run("transformer", s, 0.5, curve=curve([0.3, 0.60])) for s in range(3)]
    cell = cell_of(go(lstm + tr))
    assert cell["target"] == pytest.approx((0.80 + 0.60) / 2)
    t = model_of(cell, "lstm")["ttt"]
    assert t["reached"] == 3 and t["median_steps"] == 200 and t["median_seconds"] == 3.0
    tt = model_of(cell, "transformer")["ttt"]
    assert tt["reached"] == 0 and tt["median_steps"] is None and tt["censored_median"] is True
    assert tt["steps_ci_infinite"] is True and tt["steps_ci"][1] is None


def test_flops_to_target_weigh_each_step_by_its_cost():
    """Fewer steps of a costlier step: in FLOPs the LSTM (twice the steps) is the faster one."""
    lstm = [dict(run("lstm", s, 0.9, curve=curve([0.6, 0.7, 0.8, 0.9])), step_flops=10**6)
            for s in range(3)]
    tr = [dict(run("transformer", s, 0.9, curve=curve([0.85, 0.9])), step_flops=10**7)
          for s in range(3)]
    result = go(lstm + tr)
    cell = cell_of(result)
    t, tt = (model_of(cell, m)["ttt"] for m in ("lstm", "transformer"))
    assert (t["median_steps"], tt["median_steps"]) == (400, 200)
    assert (t["median_flops"], tt["median_flops"]) == (4e8, 2e9)
    assert model_of(cell, "transformer")["step_flops"] == 10**7
    text = render_markdown(result)
    assert "400 MFLOPs" in text and "2 GFLOPs" in text  # in the verdict's words too
    rows = {r[1]: r for sec in sections(result) for r in sec["models"]}
    column = MODEL_COLUMNS.index("FLOPs to target [CI]")
    assert rows["lstm"][column].startswith("400 M") and rows["transformer"][column].startswith("2 G")
    # runs stored before FLOPs were counted: no FLOPs to report, the rest unchanged
    old = cell_of(go([run("lstm", s, 0.9, curve=curve([0.9])) for s in range(3)]))
    assert "median_flops" not in model_of(old, "lstm")["ttt"]


def test_runs_that_early_stopping_ended_are_counted():
    """Converged or budget-limited: a run counts as stopped early only if it had a patience and
    ended before its step cap."""
    def trained(seed, steps, patience, status="done"):
        r = run("lstm", seed, 0.5, status=status)
        r["config"]["training"].update(max_steps=1000, patience=patience)
        r["steps"] = steps
        return r

    runs = [trained(0, 400, 5), trained(1, 1000, 5), trained(2, 400, 0), trained(3, 300, 5),
            trained(4, 200, 5, status="diverged")]
    result = go(runs)
    assert result["counts"]["early_stopped"] == 2
    assert "5 done" not in render_markdown(result)  # 4 done (2 of them stopped early)
    assert "4 done (2 of them stopped early, before their step cap)" in render_markdown(result)


def test_third_party_error_rate_where_one_model_solves_the_task():
    """Finding 8: a lower-is-better error rate, one model at 0 in every seed. The old target
    (95% of the best: 0.000) was reached by no one; now the best model reaches the cell's
    target in every run and the speed claim is decided."""
    extras = {"chance": 0.9, "perfect": 0.0, "val_size": 500}
    kw = dict(metric="token_error_rate", higher=False, extras=extras)
    solver = [run("solver", s, 0.0, curve=curve([0.6, 0.2, 0.0, 0.0]), **kw) for s in range(6)]
    other = [run("baseline", s, 0.3 + NOISE[s], curve=curve([0.8, 0.5, 0.35, 0.3 + NOISE[s],
                                                                0.3 + NOISE[s]]), **kw)
             for s in range(6)]
    res = go(solver + other, pairs=[("solver", "baseline")])
    cell = cell_of(res)
    baseline = np.median([0.3 + x for x in NOISE[:6]])
    assert cell["target"] == pytest.approx(np.median([0.0, baseline]))
    assert cell["target"] > 0.1  # reachable, unlike 0.000
    best = model_of(cell, "solver")["ttt"]
    assert best["reached"] == best["of"] == 6  # at least half its runs
    assert model_of(cell, "baseline")["ttt"]["reached"] == 0
    (cmp,) = cell["comparisons"]
    sp = cmp["speed"]
    assert sp["logrank_steps"]["z"] > 0 and sp["p_holm"] < 0.05
    assert sp["outcome"] == "a_faster" and sp["faster"] == "solver"
    assert sp["auc_diff"] > 0  # lower error throughout: oriented so positive favours A
    (v,) = res["verdicts"]
    assert v["speed_claim"] == "holds" and "converges faster" in v["text"]
    assert cmp["outcome"] == "a_better"
    ladder = model_of(cell, "baseline")["ladder"]
    assert [x["level"] for x in ladder] == [0.5, 0.75, 1.0]
    assert ladder[0]["target"] == pytest.approx(0.9 + 0.5 * (cell["target"] - 0.9))
    assert ladder[0]["reached"] == 6 and ladder[-1]["reached"] == 0


def test_equal_speed_is_inconclusive():
    c = curve([0.5, 0.8, 0.9])
    runs = [run(m, s, 0.9, curve=c) for m in ("lstm", "transformer") for s in range(6)]
    (cmp,) = cell_of(go(runs))["comparisons"]
    assert cmp["speed"]["outcome"] == "inconclusive" and cmp["speed"]["p_value"] == 1.0
    assert "no significant difference in time to target" in cmp["speed"]["reason"]


def test_speed_needs_steps_and_seconds_to_agree():
    """Faster per step but slower per second (say, a costlier step): not 'faster'."""
    fast_steps = [{**p, "seconds": p["seconds"] * 10} for p in curve([0.9, 0.9, 0.9])]
    slow_steps = curve([0.5, 0.6, 0.9])
    runs = [run("lstm", s, 0.9, curve=fast_steps) for s in range(6)]
    runs += [run("transformer", s, 0.9, curve=slow_steps) for s in range(6)]
    (cmp,) = cell_of(go(runs))["comparisons"]
    sp = cmp["speed"]
    assert sp["logrank_steps"]["z"] > 0 and sp["logrank_seconds"]["z"] < 0
    assert sp["outcome"] == "inconclusive" and "point different ways" in sp["reason"]


def test_speed_needs_the_auc_to_agree():
    """A reaches the target first, but B sat near it all along: its validation AUC is higher, so
    'A converges faster' is not claimed."""
    runs = [run("lstm", s, 0.9, curve=curve([0.1, 0.1, 1.0])) for s in range(6)]
    runs += [run("transformer", s, 0.9, curve=curve([0.9] * 6)) for s in range(6)]
    (cmp,) = cell_of(go(runs))["comparisons"]
    sp = cmp["speed"]
    assert sp["target"] == pytest.approx(0.95) and sp["p_holm"] < 0.05
    assert sp["auc_diff"] == pytest.approx(0.73 - 0.9)
    assert sp["outcome"] == "inconclusive" and "AUC is worse" in sp["reason"]


def test_auc_over_the_cells_common_range():
    runs = [run("lstm", 0, 0.9, curve=curve([0.0, 1.0, 1.0]), steps95=200),
            run("lstm", 1, 0.9, curve=curve([1.0]), steps95=100)]  # stopped early at step 100
    m = model_of(cell_of(go(runs)), "lstm")
    # range 100..300: run 0 = (0.5*100 + 1*100) / 200 = 0.75; run 1 held at 1.0 after it stopped
    assert m["auc"] == pytest.approx((0.75 + 1.0) / 2)
    assert m["own95_steps_median"] == 150


def test_validation_size_and_its_standard_error():
    extras = {"chance": 0.1, "perfect": 1.0, "val_size": 400}
    runs = two_models([0.8] * 3, [0.6] * 3, extras=extras)
    cell = cell_of(go(runs))
    assert cell["validation"]["size"] == 400
    assert cell["validation"]["se_max"] == pytest.approx(0.5 / 20)
    assert model_of(cell, "lstm")["val_se"] == pytest.approx(math.sqrt(0.8 * 0.2 / 400))
    bleu = cell_of(go(two_models([20.0] * 3, [30.0] * 3, metric="bleu",
                                 extras={"val_size": 400})))
    assert bleu["validation"]["se_max"] is None and model_of(bleu, "lstm")["val_se"] is None


# ---------------------------------------------------------------------------- scaling, crossover

SIZES = [100, 200, 400, 800, 1600, 3200, 6400]


def err_a(n):
    return 0.3 * (n / 100) ** -0.3 + 0.10


def err_b(n):
    return 0.6 * (n / 100) ** -0.6 + 0.05


def scaling_runs(fa, fb, sizes=SIZES, seeds=6, noise=0.004, seed_effect=0.0):
    rng = np.random.default_rng(7)
    shared = rng.normal(0, 1, seeds) * seed_effect  # one training subset per seed, both models
    runs = []
    for n in sizes:
        for s in range(seeds):
            runs.append(run("lstm", s, 1 - fa(n) + shared[s] + rng.normal(0, noise), size=n))
            runs.append(run("transformer", s, 1 - fb(n) + shared[s] + rng.normal(0, noise),
                            size=n))
    return runs


def test_crossover_found_near_truth_and_inside_ci():
    true_n = brentq(lambda n: err_a(n) - err_b(n), 100, 6400)
    res = go(scaling_runs(err_a, err_b))
    (sc,) = res["scaling"]
    assert sc["models"]["lstm"]["fit"]["method"] == "power-law"
    assert sc["models"]["lstm"]["fit"]["at_bound"] is None
    assert sc["models"]["lstm"]["n"] == SIZES and len(sc["models"]["lstm"]["mean"]) == 7
    (x,) = sc["crossovers"]
    assert x["direction"] == "a_to_b" and x["method"] == "power-law"
    assert abs(x["n"] - true_n) / true_n < 0.15
    assert x["ci"][0] <= true_n <= x["ci"][1] and x["ci_open"] == [False, False]
    assert x["crossover_share"] > 0.95 and "overtakes" in x["text"]
    (v,) = res["verdicts"]
    assert v["accuracy_claim"] == "holds" and "overtakes lstm at n ≈" in v["text"]


def test_crossover_resamples_whole_seeds():
    """A seed's effect (its training subset) is shared by every size and both models, so it
    cancels in the difference: resampling whole seeds keeps the crossover tight, where
    resampling each size on its own would mix seeds and smear it."""
    true_n = brentq(lambda n: err_a(n) - err_b(n), 100, 6400)
    res = go(scaling_runs(err_a, err_b, noise=0.0005, seed_effect=0.05))
    (x,) = res["scaling"][0]["crossovers"]
    assert x["crossover_share"] == 1.0
    assert x["ci"][0] <= true_n <= x["ci"][1]
    boot = x["bootstrap_ci"]  # descriptive: the seed-level percentile interval of the fit's n
    assert boot[0] <= true_n <= boot[1] and (boot[1] - boot[0]) / true_n < 0.15


def test_replicate_means_weigh_drawn_seeds():
    from seqbench.analysis.cells import ModelRuns
    from seqbench.analysis.scaling import replicate_means

    done, _ = split([run("lstm", s, v) for s, v in ((0, 0.1), (1, 0.5), (2, 0.9))])
    m = ModelRuns("lstm", 1, {}, done, [], 0, 0)
    partial = ModelRuns("lstm", 1, {}, split([run("lstm", 2, 0.7)])[0], [], 0, 0)  # seed 2 only
    W = np.array([[3, 0, 0], [0, 1, 2], [1, 1, 1], [2, 1, 0]], dtype=float)
    got = replicate_means([(100, m), (200, partial)], [0, 1, 2], W)
    assert got[:, 0] == pytest.approx([0.1, (0.5 + 1.8) / 3, 0.5, (0.2 + 0.5) / 3])
    assert got[:, 1] == pytest.approx([0.7, 0.7, 0.7, 0.7])  # no drawn seed there: plain mean


def test_crossover_near_the_edge_has_an_open_interval():
    """No measured size shows B ahead: the range is open above the last size where A is
    (finding 7: never leave the 'beyond the range' cases out)."""
    def late_b(n):
        return 0.6 * (n / 100) ** -0.6 + 0.133  # crosses err_a late in the range, shallowly

    res = go(scaling_runs(err_a, late_b, noise=0.01))
    (x,) = res["scaling"][0]["crossovers"]
    assert 0.3 < x["crossover_share"] < 0.8 and x["n"] is not None
    assert x["ci_open"] == [False, True] and "place it above n = 800" in x["text"]
    assert x["ci"][1] == pytest.approx(6400) and x["ci"][0] < x["n"]


def test_fit_on_a_bound_falls_back_to_interpolation():
    def step(n):  # learnt entirely between the first two sizes: b runs into its bound of 3
        return 0.5 if n == 100 else 0.1

    res = go(scaling_runs(step, err_b, noise=0.002))
    fit = res["scaling"][0]["models"]["lstm"]["fit"]
    assert fit["method"] == "interpolation" and fit["at_bound"]
    assert fit["at_bound"] == ["b = 3"] and fit["power_law"]["b"] == pytest.approx(3)
    assert "parameter bound" in fit["reason"]
    (x,) = res["scaling"][0]["crossovers"]
    assert "parameter bound" in x["text"]


def test_no_crossover_when_one_model_dominates():
    res = go(scaling_runs(err_a, lambda n: err_a(n) + 0.1))
    (x,) = res["scaling"][0]["crossovers"]
    assert x["n"] is None and x["ci"] is None and x["better_throughout"] == "lstm"
    assert x["text"].startswith("none in the measured range") and x["crossover_share"] < 0.05


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


def test_verdict_fails_when_transformer_significantly_better():
    res = go(two_models([0.5] * 6, [0.9 + x for x in NOISE[:6]]))
    (v,) = res["verdicts"]
    assert v["accuracy_claim"] == "fails" and "fails" in v["text"]
    assert "t-intervals" in v["text"] and "paired t" in v["text"]


def test_verdict_speed_holds_and_mentions_budget_and_tuning():
    fast, slow = curve([0.96, 1.0, 1.0]), curve([0.5, 0.7, 0.96])
    runs = [run("lstm", s, 0.9 + NOISE[s], curve=fast, params=1000) for s in range(6)]
    runs += [run("transformer", s, 0.5, curve=slow, params=2000, lr=lr)
             for s in range(6) for lr in (0.001, 0.0003)]
    (v,) = go(runs)["verdicts"]
    assert v["speed_claim"] == "holds" and v["accuracy_claim"] == "holds"
    assert "log-rank" in v["text"] and "converges faster" in v["text"]
    assert "Parameter counts differ" in v["text"] and "Tuning budgets differ" in v["text"]


def test_verdict_inconclusive_when_seeds_diverged():
    # lstm wins on the 6 seeds that finished, but a 7th diverged: no claim rests on survivors.
    runs = two_models([0.9 + x for x in NOISE[:6]], [0.5] * 6)
    runs.append(run("lstm", 6, 0.0, status="diverged"))
    res = go(runs)
    (cmp,) = cell_of(res)["comparisons"]
    assert cmp["outcome"] == "inconclusive" and "diverged" in cmp["reason"]
    (v,) = res["verdicts"]
    assert v["accuracy_claim"] == "inconclusive" and "(lstm: 1)" in v["text"]


def test_verdict_mentions_holm_at_larger_sizes():
    runs = []
    for size in (100, 400):
        runs += two_models([0.9 + x for x in NOISE[:6]], [0.5] * 6, size=size)
    (v,) = go(runs)["verdicts"]
    assert "Holm-adjusted over 2 sizes" in v["text"]
    assert "At the larger sizes: n = 400: lstm better (Holm p =" in v["text"]


def test_verdict_when_a_model_is_missing():
    runs = [run("lstm", s, 0.9) for s in range(5)] + [run("transformer", 0, 0.5, size=200)]
    (v,) = go(runs)["verdicts"]
    assert v["accuracy_claim"] == "inconclusive" and "no verdict" in v["text"]
    assert go([run("lstm", s, 0.9) for s in range(5)])["verdicts"] == []  # one model: no pair


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
    assert cell["winner"]["model"] == "lstm" and cell["winner"]["significant"] is False


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
    assert "_cell" not in text and "_censored" not in text and "_z" not in text
    for r in (r1, r2, r3):
        r.pop("generated_at")
    assert r1 == r2 and r1 != r3
    assert set(r1) >= {"confidence", "n_boot", "seed", "pairs", "verdict_pair", "margins",
                       "floor_rule", "target_rule", "ladder", "counts", "cells", "scaling",
                       "verdicts"}
    md = render_markdown({**r1, "generated_at": "x"})
    assert "| size | model |" in md and "claim 'lstm beats transformer" in md
    assert "Holm" in md and "TOST" in md


def test_parse_pairs_and_margins():
    assert parse_pairs("all") == "all"
    assert parse_pairs("lstm:transformer, gru:transformer") == [("lstm", "transformer"),
                                                                ("gru", "transformer")]
    for bad in ("lstm", "lstm:lstm", "a:b:c", ","):
        with pytest.raises(ValueError):
            parse_pairs(bad)
    assert parse_margins(None) is None
    assert parse_margins("0.02") == {"*": 0.02}
    assert parse_margins("accuracy=0.02, bleu=0.5") == {"accuracy": 0.02, "bleu": 0.5}
    for bad in ("x", "accuracy=", "-1", "0", "nan", "inf", ","):
        with pytest.raises(ValueError):
            parse_margins(bad)


# ---------------------------------------------------------------------------- the CLI


def store_record(r):
    rec = {k: v for k, v in r.items() if k not in ("primary_value", "_curve")}
    rec.update(matrix_id="m1", kind="classification", steps=300, samples=9600, train_seconds=3.0,
               curve=[dict(p, val={}) for p in r["_curve"]])
    return rec


def make_db(path, runs):
    from seqbench.store import Store

    with Store(path) as store:
        for r in runs:
            store.save(store_record(r))
    return path


def test_cli_against_a_real_database(tmp_path):
    db = make_db(tmp_path / "bench.sqlite",
                 two_models([0.9 + x for x in NOISE[:6]], [0.5] * 6, curve=curve([0.5, 0.96])))
    cli = CliRunner()
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--json", "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    (v,) = data["verdicts"]
    assert data["counts"]["done"] == 12 and v["accuracy_claim"] == "holds"
    assert data["cells"][0]["comparisons"][0]["p_permutation"] == 2 / 64
    assert data["n_boot"] == 200 and data["seed"] == 0
    assert data["pairs"] == [["lstm", "transformer"]]

    res = cli.invoke(analyze_cmd, ["--db", str(db), "--bootstrap", "200", "--full"])
    assert res.exit_code == 0 and "lstm beats transformer" in res.output

    out = tmp_path / "report.md"
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--markdown", "--out", str(out),
                                   "--bootstrap", "200", "--pairs", "all"])
    assert res.exit_code == 0 and out.read_text().startswith("# seqbench analysis")

    res = cli.invoke(analyze_cmd, ["--db", str(db), "--pairs", "lstm:gpt"])
    assert res.exit_code == 2 and "'gpt'" in res.output

    res = cli.invoke(analyze_cmd, ["--db", str(db), "--json", "--margin", "accuracy=0.5",
                                   "--bootstrap", "200"])
    data = json.loads(res.output)
    assert data["cells"][0]["margin"] == 0.5 and data["margins"]["toy"]["source"] == "given"


def test_cli_models_narrows_the_analysis_and_its_targets(tmp_path):
    """--models: a third model's runs leave the cell and the pairs come from the chosen ones
    alone; the pair's target (its own two models') is the same either way."""
    runs = two_models([0.9] * 6, [0.5] * 6, curve=curve([0.5, 0.9]))
    for r in runs:
        if r["model"] == "transformer":
            r["_curve"] = curve([0.3, 0.6])
    runs += [run("gru", s, 0.2, curve=curve([0.1, 0.2])) for s in range(6)]
    db = make_db(tmp_path / "three.sqlite", runs)
    cli = CliRunner()
    every = json.loads(cli.invoke(analyze_cmd, ["--db", str(db), "--json", "--bootstrap",
                                                "200"]).output)
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--json", "--bootstrap", "200", "--models",
                                   "lstm,transformer"])
    assert res.exit_code == 0, res.output
    two = json.loads(res.output)
    assert {m["model"] for m in two["cells"][0]["models"]} == {"lstm", "transformer"}
    assert two["pairs"] == [["lstm", "transformer"]] and two["counts"]["done"] == 12
    assert (every["cells"][0]["target"], two["cells"][0]["target"]) == (0.75, 0.75)
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--models", "lstm,gpt"])
    assert res.exit_code == 2 and "no runs of 'gpt'" in res.output


def test_cli_tasks_narrows_the_analysis_to_those_tasks(tmp_path):
    runs = (two_models([0.9] * 6, [0.5] * 6)
            + two_models([0.4] * 6, [0.8] * 6, task="copy", a="lstm", b="gru"))
    db = make_db(tmp_path / "two-tasks.sqlite", runs)
    cli = CliRunner()
    every = json.loads(cli.invoke(analyze_cmd, ["--db", str(db), "--json", "--bootstrap",
                                                "200"]).output)
    assert {c["task"] for c in every["cells"]} == {"toy", "copy"}
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--json", "--bootstrap", "200", "--tasks",
                                   "copy"])
    assert res.exit_code == 0, res.output
    copy = json.loads(res.output)
    assert {c["task"] for c in copy["cells"]} == {"copy"} and copy["counts"]["done"] == 12
    assert copy["pairs"] == [["gru", "lstm"]] or copy["pairs"] == [["lstm", "gru"]]
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--tasks", "copy", "--models",
                                   "lstm,transformer"])  # no Transformer on copy
    assert res.exit_code == 2 and "no runs of 'transformer'" in res.output
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--tasks", "translation"])
    assert res.exit_code == 2 and "--tasks 'translation': no runs of 'translation'" in res.output
    assert "tasks: copy, toy" in res.output


def test_cli_without_a_transformer_compares_the_models_present(tmp_path):
    """Finding 10: `bench analyze` on a database without a Transformer is not an error."""
    db = make_db(tmp_path / "bench.sqlite",
                 two_models([0.9 + x for x in NOISE[:6]], [0.5] * 6, a="gru", b="lstm"))
    res = CliRunner().invoke(analyze_cmd, ["--db", str(db), "--json", "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["pairs"] == [["gru", "lstm"]] and data["verdicts"][0]["accuracy_claim"] == "holds"
    one = make_db(tmp_path / "one.sqlite", [run("lstm", s, 0.9) for s in range(3)])
    res = CliRunner().invoke(analyze_cmd, ["--db", str(one), "--bootstrap", "200", "--full"])
    assert res.exit_code == 0 and "nothing to compare" in res.output


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
    res = cli.invoke(analyze_cmd, ["--db", str(empty), "--margin", "accuracy=-1"])
    assert res.exit_code == 2 and res.output.startswith("error: --margin")
    assert len(res.output.strip().splitlines()) == 1
