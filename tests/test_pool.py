"""Pooling across data sets: the meta-analysis against published numbers, the wiring of each data
set's per-cell difference into it, and `bench analyze --pool` on a real SQLite file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from seqbench.analysis.pool import (
    Regime, dataset_names, meta_analysis, parse_regimes, pool, pairs_for,
)
from seqbench.cli.analyze import analyze as analyze_cmd
from test_analysis import go, make_db, run

# Kacker (2004), "Combining information from interlaboratory evaluations using a random effects
# model", Metrologia 41:132-136: nine laboratories' results and their variances. The DerSimonian-
# Laird fit as R's metafor gives it (rma(y, v, method="DL") and test="knha" for the Hartung-Knapp
# interval), the numbers statsmodels' own tests hold (statsmodels/stats/tests/results/
# results_meta.py, exk1_dl and exk1_dl_hksj).
KACKER_Y = [61.0, 61.4, 62.21, 62.3, 62.34, 62.6, 62.7, 62.84, 65.9]
KACKER_V = [0.2025, 1.21, 0.09, 0.2025, 0.3844, 0.5625, 0.0676, 0.0225, 1.8225]
KACKER_DL = dict(tau2=0.288049246973751, estimate=62.3901386044504, se=0.245749668040304,
                 ci=(61.9084781058787, 62.8717991030221), q=24.801897741835,
                 i2=0.67744403741711)
KACKER_HKSJ = dict(se=0.29477605699879, ci=(61.710383798052, 63.0698934108488))
# Kacker's data by Paule-Mandel (metafor: method="PM", tol=1e-9; results_meta.exk1_metafor)
KACKER_PM = dict(tau2=0.705395309224248, estimate=62.4076199113286, se=0.338030602684471)

# Fine (1993), 17 trials, log odds ratios: R's meta, metabin(..., method="Inverse",
# method.tau="DL", hakn=TRUE), version 4.11-0 (statsmodels' results_meta.results_or_dl_hk):
# the prediction interval mu +- t(k-2) sqrt(tau2 + SE^2) with the Hartung-Knapp SE.
FINE_TE = [2.70805020110221, 1.25672336971146, 0.374938517449009, 1.65822807660353,
           0.784954729813068, 0.361663949151077, 0.575364144903562, 0.250542525502324,
           0.650587566141149, 0.0918075492531229, 0.273865253802803, 0.485755524477543,
           0.182321556793955, 0.980829253011726, 1.31218638896617, -0.259511195485085,
           0.138402322859119]
FINE_SE = [1.1130538571376, 0.505568465186247, 0.390847133738078, 0.680511012471685,
           0.434831536798166, 0.26249802054503, 0.490562645746402, 0.376864733063505,
           0.529771411128472, 0.458411099840008, 0.193159187510219, 0.206827050443269,
           0.441477021807833, 0.713624032148063, 1.18251919576455, 0.604874380241894,
           0.329592099997789]
FINE = dict(tau2=0.0016783981912744, estimate=0.429520368698268, se=0.0915952752397692,
            ci=(0.235347059333852, 0.623693678062684),
            pi=(0.215650965184522, 0.643389772212014))

TOL = 1e-6


# ---------------------------------------------------------------------------- the meta-analysis


def test_dersimonian_laird_reproduces_kacker_2004_as_metafor_fits_it():
    m = meta_analysis(KACKER_Y, KACKER_V, method="dl", interval="z")
    assert m.k == 9 and m.method == "dl" and m.interval == "z"
    assert m.tau2 == pytest.approx(KACKER_DL["tau2"], abs=TOL)
    assert m.estimate == pytest.approx(KACKER_DL["estimate"], abs=TOL)
    assert m.se == pytest.approx(KACKER_DL["se"], abs=TOL)
    assert m.ci == pytest.approx(KACKER_DL["ci"], abs=TOL)
    assert m.q == pytest.approx(KACKER_DL["q"], abs=TOL)
    assert m.i2 == pytest.approx(KACKER_DL["i2"], abs=TOL)
    hk = meta_analysis(KACKER_Y, KACKER_V, method="dl", interval="hksj")
    assert hk.estimate == pytest.approx(KACKER_DL["estimate"], abs=TOL)
    assert hk.se == pytest.approx(KACKER_HKSJ["se"], abs=TOL)
    assert hk.ci == pytest.approx(KACKER_HKSJ["ci"], abs=TOL)


def test_paule_mandel_reproduces_kacker_2004_as_metafor_fits_it():
    m = meta_analysis(KACKER_Y, KACKER_V, method="pm", interval="z")
    assert m.tau2 == pytest.approx(KACKER_PM["tau2"], abs=TOL)
    assert m.estimate == pytest.approx(KACKER_PM["estimate"], abs=TOL)
    assert m.se == pytest.approx(KACKER_PM["se"], abs=TOL)


def test_prediction_interval_reproduces_r_meta_on_fine_1993():
    m = meta_analysis(FINE_TE, np.square(FINE_SE), method="dl", interval="hksj")
    assert m.tau2 == pytest.approx(FINE["tau2"], abs=TOL)
    assert m.estimate == pytest.approx(FINE["estimate"], abs=TOL)
    assert m.se == pytest.approx(FINE["se"], abs=TOL)
    assert m.ci == pytest.approx(FINE["ci"], abs=TOL)
    assert m.pi == pytest.approx(FINE["pi"], abs=TOL)


def test_prediction_interval_is_mu_plus_minus_t_k_minus_2_of_tau_and_se():
    """Higgins, Thompson & Spiegelhalter (2009): mu +- t_{k-2} sqrt(tau^2 + SE(mu)^2), wider than
    the interval of the mean by the spread between data sets; none with two data sets."""
    eff, var = [0.02, -0.03, 0.05, 0.00, 0.04], [1e-4, 2e-4, 1.5e-4, 1e-4, 3e-4]
    for interval in ("z", "hksj"):
        m = meta_analysis(eff, var, interval=interval)
        half = stats.t.ppf(0.975, 3) * math.sqrt(m.tau2 + m.se**2)
        assert m.pi == pytest.approx((m.estimate - half, m.estimate + half), abs=1e-12)
        assert m.tau2 > 0 and m.pi[0] < m.ci[0] and m.pi[1] > m.ci[1]
    m90 = meta_analysis(eff, var, confidence=0.90)
    assert m90.pi[1] - m90.pi[0] < m.pi[1] - m.pi[0]
    assert meta_analysis(eff[:2], var[:2]).pi is None


def test_homogeneous_effects_get_tau2_zero_not_a_negative_moment_estimate():
    """DerSimonian-Laird truncates tau^2 at 0 (statsmodels leaves Q - df < 0 negative); then the
    pooled estimate is the fixed-effect one, I^2 is 0, and HKSJ is never narrower than z."""
    eff, var = [0.10, 0.11, 0.10, 0.105], [0.01] * 4
    m = meta_analysis(eff, var, interval="hksj")
    z = meta_analysis(eff, var, interval="z")
    assert m.tau2 == 0.0 and m.i2 == 0.0 and m.q < 3
    assert m.estimate == pytest.approx(np.mean(eff))
    assert m.se == pytest.approx(math.sqrt(0.01 / 4))  # the scale is kept at >= 1
    assert m.ci[1] - m.ci[0] > z.ci[1] - z.ci[0]
    identical = meta_analysis([0.1, 0.1, 0.1], [0.01, 0.02, 0.01])
    assert identical.i2 == 0.0 and identical.tau2 == 0.0


def test_meta_analysis_refuses_too_little():
    with pytest.raises(ValueError, match="at least two"):
        meta_analysis([0.1], [0.01])
    with pytest.raises(ValueError, match="method"):
        meta_analysis([0.1, 0.2], [0.01, 0.01], method="reml")


# ---------------------------------------------------------------------------- regimes and names


def test_regimes_parse_and_hold_sizes():
    small, mid, full = parse_regimes("250-500, 1000-2000, full")
    assert (small.name, mid.name, full.name) == ("n ≈ 250–500", "n ≈ 1,000–2,000", "full")
    assert small.holds(250, 250) and small.holds(500, 500) and not small.holds(501, 501)
    assert full.holds(8530, None) and not full.holds(500, 500)
    assert parse_regimes("1000") == [Regime(1000.0, 1000.0)]
    for bad, msg in (("500-250", "LO <= HI"), ("big", "not N, LO-HI"), ("", "give N"),
                     ("full,full", "twice")):
        with pytest.raises(ValueError, match=msg):
            parse_regimes(bad)


def test_data_set_names_are_file_stems_or_folders():
    names = dataset_names([
        {"data": "../shared/data/sentences/rt-polarity.all.gz"},
        {"data": "../shared/data/sentences/stsa.binary.train.gz"},
        {"data": "../shared/data/sentences/stsa.fine.train.gz"},
        {"data": "../shared/data/trec/train_5500.label"},
        {"data": "digits"},
    ])
    assert sorted(names.values()) == ["digits", "rt-polarity", "stsa.binary", "stsa.fine", "trec"]
    same_file = dataset_names([{"data": "a/x.csv", "min_freq": 1}, {"data": "b/x.csv",
                                                                    "min_freq": 2}])
    assert len(set(same_file.values())) == 2


# ---------------------------------------------------------------------------- the wiring

# Per data set: the LSTM - Transformer difference at n = 250, 1,000 and the full split (paired
# seeds; each seed's noise differs between the models so each cell has a standard error).
DIFFS = {"mr": (0.04, 0.01, -0.01), "subj": (0.02, 0.00, -0.02), "sst2": (0.05, 0.03, 0.00),
         "trec": (-0.01, -0.02, -0.03)}
SIZES = ((250, 250), (1000, 1000), (None, 4000))
NOISE = (0.004, -0.006, 0.002, 0.007, -0.003, -0.004)


def atlas_runs(diffs=DIFFS, models=("lstm", "transformer"), seeds=6):
    runs = []
    for name, ds in diffs.items():
        params = {"data": f"data/{name}.all.gz"}
        for (size, n), d in zip(SIZES, ds):
            for s in range(seeds):
                base = 0.7 + 0.01 * s
                vals = {"lstm": base + d + NOISE[s] / 2, "transformer": base - NOISE[s] / 2,
                        "cnn": base + 0.05 + NOISE[(s + 1) % 6]}
                runs += [run(m, s, vals[m], task="classification", size=size, n=n,
                             task_params=params) for m in models]
    return runs


def test_each_data_set_contributes_the_analysis_paired_difference_and_its_se():
    analysis = go(atlas_runs())
    report = pool(analysis, regimes="250-500,1000-2000,full")
    (task,) = report.tasks
    assert task.task == "classification" and task.unit == "points" and task.scale == 100
    assert sorted(task.datasets.values()) == sorted(DIFFS)
    assert [p.regime for p in task.pair] == ["n ≈ 250–500", "n ≈ 1,000–2,000", "full"]
    for i, p in enumerate(task.pair):
        assert (p.a, p.b) == ("lstm", "transformer") and len(p.effects) == 4
        for e in p.effects:
            # the known difference: the seed noise averages to d + mean(NOISE) exactly
            assert e.diff == pytest.approx(DIFFS[e.dataset][i] + np.mean(NOISE), abs=1e-9)
            cell = next(c for c in analysis["cells"] if c["variant"]["data"].startswith(
                f"data/{e.dataset}.") and c["train_size"] == SIZES[i][0])
            cmp = cell["comparisons"][0]
            assert (e.diff, e.se, list(e.ci)) == (cmp["diff"], cmp["se"], cmp["ci"])
            assert e.paired and e.seeds == 6 and e.n == SIZES[i][1]
        direct = meta_analysis([e.diff for e in p.effects], [e.se**2 for e in p.effects])
        assert p.meta == direct and p.meta.pi is not None


def test_best_other_and_orientation():
    """Every model against the best other: the CNN is best everywhere, so each model is compared
    with it (a negative difference), and the CNN with the best of the rest."""
    analysis = go(atlas_runs(models=("lstm", "transformer", "cnn")))
    (task,) = pool(analysis, regimes="full").tasks
    rows = {p.a: p for p in task.versus_best}
    assert rows["lstm"].b == "cnn" and rows["transformer"].b == "cnn"
    assert rows["cnn"].b == "transformer"  # on the full sets it is ahead of the LSTM (DIFFS)
    assert rows["cnn"].meta.estimate > 0 > rows["lstm"].meta.estimate
    assert rows["transformer"].meta.estimate == pytest.approx(-rows["cnn"].meta.estimate)
    assert [p.a for p in task.versus_best][0] == "cnn"  # sorted by the pooled difference
    flipped = pool(analysis, pair=("transformer", "lstm"), regimes="full").tasks[0].pair[0]
    assert flipped.meta.estimate == pytest.approx(-task.pair[0].meta.estimate)
    assert pairs_for(["lstm", "gru", "cnn"], ("lstm", "cnn"))[0] == ("lstm", "cnn")
    assert len(pairs_for(["lstm", "gru", "cnn"], ("lstm", "cnn"))) == 3


def test_a_regime_picks_the_size_nearest_its_middle_and_says_what_is_missing():
    runs = atlas_runs()
    runs = [r for r in runs if not (r["model"] == "transformer" and "trec" in
                                    r["config"]["task_params"]["data"])]
    (task,) = pool(go(runs), regimes="200-1200").tasks
    (p,) = task.pair
    assert {e.n for e in p.effects} == {250}  # log-middle of 200-1200 is 490: 250 is nearer
    assert any("trec: no finished runs of transformer" in x for x in p.excluded)
    assert len(p.effects) == 3
    two = pool(go(atlas_runs({k: DIFFS[k] for k in ("mr", "subj")})), regimes="full")
    assert two.tasks[0].pair[0].meta.pi is None and "at least 3" in two.tasks[0].pair[0].note
    one = pool(go(atlas_runs({"mr": DIFFS["mr"]})))
    assert not one.tasks and "1 data set" in one.skipped[0]


# ---------------------------------------------------------------------------- the CLI


def test_cli_pool_on_a_real_database(tmp_path):
    db = make_db(tmp_path / "atlas.sqlite", atlas_runs(models=("lstm", "transformer", "cnn")))
    cli = CliRunner()
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--pool", "--json", "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    (task,) = data["tasks"]
    assert data["method"] == "dl" and data["interval"] == "hksj"
    assert [p["regime"] for p in task["pair"]] == ["n ≈ 250–500", "n ≈ 1,000–2,000", "full"]
    full = task["pair"][2]
    assert full["meta"]["k"] == 4 and len(full["meta"]["pi"]) == 2
    assert full["meta"]["estimate"] == pytest.approx(np.mean([d[2] for d in DIFFS.values()])
                                                     + np.mean(NOISE), abs=0.01)

    res = cli.invoke(analyze_cmd, ["--db", str(db), "--pool", "--bootstrap", "200",
                                   "--pairs", "cnn:lstm", "--regimes", "1000-2000,full"])
    assert res.exit_code == 0, res.output
    assert "cnn − lstm, pooled over data sets" in res.output
    assert "On a new classification data set of this kind on the full training set" in res.output

    out = tmp_path / "pool.md"
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--pool", "--markdown", "--out", str(out),
                                   "--pool-method", "pm", "--pool-interval", "z",
                                   "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert text.startswith("# seqbench pooled analysis") and "Paule–Mandel" in text
    assert "| regime | k | pooled difference [CI] |" in text
    again = cli.invoke(analyze_cmd, ["--db", str(db), "--pool", "--out", str(out),
                                     "--bootstrap", "200"])
    assert again.exit_code == 0  # an earlier pooled analysis may be replaced


def test_cli_pool_with_one_data_set_says_so_in_one_line(tmp_path):
    db = make_db(tmp_path / "one.sqlite", atlas_runs({"mr": DIFFS["mr"]}))
    res = CliRunner().invoke(analyze_cmd, ["--db", str(db), "--pool", "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == ("nothing to pool: classification (accuracy) has 1 data set: "
                                  "pooling needs at least 2 task variants")


@pytest.mark.parametrize("args, message", [
    (["--pool", "--regimes", "500-250"], "--regimes: '500-250': give 0 < LO <= HI"),
    (["--regimes", "full"], "--regimes applies to --pool only"),
    (["--pool", "--pool-method", "reml"], "Invalid value for '--pool-method'"),
])
def test_cli_pool_bad_input_is_one_line_exit_2(tmp_path, args, message):
    db = make_db(tmp_path / "a.sqlite", atlas_runs({"mr": DIFFS["mr"]}))
    res = CliRunner().invoke(analyze_cmd, ["--db", str(db), *args])
    assert res.exit_code == 2 and message in res.output


# ---------------------------------------------------------------------------- the forest plots


def test_dashboard_summary_carries_one_forest_per_regime(tmp_path):
    from seqbench.dashboard.data import build_snapshot, db_version

    db = make_db(tmp_path / "atlas.sqlite", atlas_runs())
    snap = build_snapshot(db, db_version(db), pairs="auto", confidence=0.95, n_boot=200)
    figs = snap.summary["forest"]
    assert snap.summary["forest_error"] is None
    assert [f["regime"] for f in figs] == ["n ≈ 250–500", "n ≈ 1,000–2,000", "full"]
    full = figs[2]
    assert (full["a"], full["b"], full["unit"]) == ("lstm", "transformer", "points")
    assert sorted(r["label"] for r in full["rows"]) == sorted(DIFFS)
    report = pool(go(atlas_runs()), regimes="full")
    meta = report.tasks[0].pair[0].meta
    assert full["pooled"]["estimate"] == pytest.approx(100 * meta.estimate)
    assert (full["pooled"]["pi_lo"], full["pooled"]["pi_hi"]) == pytest.approx(
        tuple(100 * x for x in meta.pi))
    assert full["prediction"].startswith("On a new classification data set of this kind on the "
                                         "full training set, the lstm − transformer difference")


def test_bench_figures_draws_a_forest_per_regime(cli, tmp_path):
    pytest.importorskip("matplotlib", reason="the figures extra: pip install 'seqbench[figures]'")
    db = make_db(tmp_path / "atlas.sqlite", atlas_runs())
    out = tmp_path / "figs"
    res = cli("figures", "--db", db, "--out", out, "--n-boot", 200)
    assert res.rc == 0, res.stderr
    forests = sorted(p.name for p in out.glob("forest-*"))
    assert forests == ["forest-classification-full.png", "forest-classification-n-1000-2000.png",
                       "forest-classification-n-250-500.png"]
    for name in forests:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    from types import SimpleNamespace

    from seqbench.dashboard.data import build_snapshot, db_version
    from seqbench.dashboard.figures import draw

    forest = build_snapshot(db, db_version(db), pairs="auto", confidence=0.95,
                            n_boot=200).summary["forest"]
    only = SimpleNamespace(summary={"variants": [], "forest": forest})
    assert draw(only, tmp_path, ["lstm"]) == []  # a forest of a pair needs both its models
    assert len(draw(only, tmp_path, ["lstm", "transformer"])) == 3


# ---------------------------------------------------------------------------- the atlas file

KIM_FILES = {"mr": "sentences/rt-polarity.all.gz", "subj": "sentences/subj.all.gz",
             "sst2": "sentences/stsa.binary.train.gz", "trec": "trec/train_5500.label"}
CONTROL = {"mr": 0.761 + 0.005, "subj": 0.896 - 0.015, "sst2": 0.827 - 0.03, "trec": 0.912 - 0.01}


def atlas_db(path):
    """The pair at a 300k budget on Kim's four data sets, the CNN control at its own size."""
    runs = atlas_runs(models=("lstm", "transformer"))
    for r in runs:
        name = r["config"]["task_params"]["data"].split("/")[1].split(".")[0]
        r["config"]["task_params"] = {"data": KIM_FILES[name]}
        r["config"]["training"]["param_budget"] = 300_000
    for name, acc in CONTROL.items():
        runs += [run("cnn", s, acc + NOISE[s] / 10, task="classification", size=None, n=8000,
                     task_params={"data": KIM_FILES[name]}, params=1_800_000) for s in range(6)]
    return make_db(path, runs)


def test_atlas_file_has_pooled_and_per_data_set_tables_and_the_control(tmp_path):
    from seqbench.analysis.atlas import render_atlas

    db = atlas_db(tmp_path / "atlas.sqlite")
    text = render_atlas(db, n_boot=200)
    assert text == render_atlas(db, n_boot=200)  # nothing depends on when it was generated
    assert text.startswith("# The small-data atlas\n")
    pooled = text.split("## At the main parameter budget of each data set")[1].split(
        "## The CNN control")[0]
    assert "Budgets: MR 300,000 parameters; SST-2 300,000 parameters;" in pooled
    assert "classification (accuracy), 4 data sets: MR, SST-2, Subj, TREC" in pooled
    assert "**classification: lstm − transformer, pooled over data sets**" in pooled
    full = pool(go(atlas_runs()), regimes="full").tasks[0].pair[0].meta
    lo, hi = (100 * x for x in full.pi)
    assert f"[{lo:+.2f}, {hi:+.2f}] points with 95% probability" in pooled
    for name in ("MR", "Subj", "SST-2", "TREC"):
        assert f"**{name}: test accuracy (%, mean [95% t-CI] over seeds)**" in pooled
    control = text.split("## The CNN control")[1]
    assert "| MR | 76.1 | 10-fold CV | 76.6 [" in control and "| +0.5 | yes |" in control
    assert "| SST-2 | 82.7 |" in control and "| -3.0 | no |" in control
    assert ("**The control passes: within 2 points of CNN-rand (or above it) on 3 of 4 required "
            "data sets** (MR, Subj, TREC") in control
    assert "no parameter budget (each model at its own size)" in control


def test_atlas_check_fails_when_the_committed_file_differs(tmp_path, capsys):
    from seqbench.analysis.atlas import main

    db, out = atlas_db(tmp_path / "atlas.sqlite"), tmp_path / "atlas.md"
    assert main(["--db", str(db), "--out", str(out), "--check"]) == 1  # not written yet
    assert main(["--db", str(db), "--out", str(out)]) == 0
    assert main(["--db", str(db), "--out", str(out), "--check"]) == 0
    out.write_text(out.read_text() + "edited by hand\n")
    assert main(["--db", str(db), "--out", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert f"{out} differs from what {db} gives" in err
    assert main(["--db", str(tmp_path / "none.sqlite"), "--out", str(out)]) == 2


def test_a_pooling_failure_is_reported_not_raised():
    from seqbench.dashboard.forest import safe_payload

    broken = [{"task": "x", "variant_key": f"a={i}"} for i in (1, 2)]  # cells without models
    figs, error = safe_payload({"cells": broken})
    assert figs == [] and error.startswith("pooling failed (")


def test_cli_budget_keeps_one_parameter_budget_and_pool_warns_about_mixed_ones(tmp_path):
    db = atlas_db(tmp_path / "atlas.sqlite")  # the pair at 300k, the CNN at its own size
    cli = CliRunner()
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--pool", "--json", "--budget", "300,000",
                                   "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["tasks"][0]["datasets"]
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--json", "--budget", "none",
                                   "--bootstrap", "200"])
    assert res.exit_code == 0 and json.loads(res.output)["counts"]["done"] == 24  # the CNN's
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--budget", "5000"])
    assert res.exit_code == 2 and "no runs at that budget" in res.output
    assert "budgets: 300,000, none" in res.output
    res = cli.invoke(analyze_cmd, ["--db", str(db), "--budget", "big"])
    assert res.exit_code == 2 and "not a whole number" in res.output
    runs = atlas_runs(models=("lstm", "transformer"))
    for r in runs:  # the smallest size of every data set at another budget: mixed
        r["config"]["training"]["param_budget"] = 20_000 if r["train_size"] == 250 else 300_000
    mixed = make_db(tmp_path / "mixed.sqlite", runs)
    res = CliRunner().invoke(analyze_cmd, ["--db", str(mixed), "--pool", "--bootstrap", "200"])
    assert res.exit_code == 0 and "ran at several parameter budgets on one data set" in res.stderr
    apart = atlas_runs(models=("lstm", "transformer"))
    for r in apart:  # one budget per data set, not the same for all: nothing mixed
        r["config"]["training"]["param_budget"] = 500_000 if "trec" in str(r["config"]) else 1
    res = CliRunner().invoke(analyze_cmd, ["--db", str(make_db(tmp_path / "apart.sqlite", apart)),
                                           "--pool", "--bootstrap", "200"])
    assert res.exit_code == 0 and "several parameter budgets" not in res.stderr


def test_atlas_control_with_a_single_data_set_so_far(tmp_path):
    """Nothing varies among the control's runs yet: its data set still comes from its runs."""
    from seqbench.analysis.atlas import render_atlas

    runs = [run("cnn", 0, 0.905, task="classification", size=None, n=4907,
                task_params={"data": KIM_FILES["trec"]})]
    text = render_atlas(make_db(tmp_path / "one.sqlite", runs), n_boot=200)
    assert "| TREC | 91.2 | standard split | 90.5 | -0.7 | yes | 1 |" in text
    assert ("**The control does not pass: within 2 points of CNN-rand (or above it) on 1 of 1"
            in text)


def test_atlas_pools_across_data_sets_whose_budgets_differ_and_ranks_a_smaller_one(tmp_path):
    """TREC's main budget is larger than the others' (its vocabulary): it still pools with them;
    a smaller budget on two data sets is a section of its own (k = 2: no prediction interval)."""
    from seqbench.analysis.atlas import render_atlas

    runs = atlas_runs(models=("lstm", "transformer"))
    small = atlas_runs({k: DIFFS[k] for k in ("mr", "subj")}, models=("lstm", "transformer"))
    for r in runs + small:
        name = r["config"]["task_params"]["data"].split("/")[1].split(".")[0]
        r["config"]["task_params"] = {"data": KIM_FILES[name]}
        r["config"]["training"]["param_budget"] = 500_000 if name == "trec" else 300_000
    for r in small:
        r["config"]["training"]["param_budget"] = 50_000
        r["run_id"] += "-small"
    text = render_atlas(make_db(tmp_path / "atlas.sqlite", runs + small), n_boot=200)
    main, smaller = text.split("## At a smaller parameter budget of each data set")
    assert "classification (accuracy), 4 data sets: MR, SST-2, Subj, TREC" in main
    assert "TREC 500,000 parameters" in main
    assert "classification (accuracy), 2 data sets: MR, Subj" in smaller
    assert "MR 50,000 parameters; Subj 50,000 parameters" in smaller
    assert "a prediction interval needs at least 3 data sets" in smaller


def test_atlas_while_a_cell_holds_tuning_runs_only(tmp_path):
    """Mid-study a cell may hold tuning runs and no evaluation run yet: the file still renders."""
    from seqbench.analysis.atlas import render_atlas

    control = [run("cnn", 0, 0.905, task="classification", size=None, n=4907,
                   task_params={"data": KIM_FILES["trec"]})]
    tuning = [run(model, 10_000 + s, 0.6, task="classification", size=250, lr=lr, stage="tune",
                  task_params={"data": KIM_FILES["trec"], "min_freq": 2})
              for s in range(2) for lr in (1e-3, 3e-3) for model in ("lstm", "transformer")]
    for r in tuning:
        r["config"]["training"]["param_budget"] = 500_000
    text = render_atlas(make_db(tmp_path / "mid.sqlite", control + tuning), n_boot=200)
    assert "| TREC | 91.2 | standard split | 90.5 | -0.7 | yes | 1 |" in text
    assert "0 parameters" not in text.replace("500,000 parameters", "")
    assert "**TREC: test accuracy" in text  # the cell is named by its data set, not "-"
