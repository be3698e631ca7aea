"""Analysis outcomes that once pointed the wrong way, each on hand-made records (no training)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_analysis import (NOISE, cell_of, curve, err_b, go, make_db, model_of, run,
                           scaling_runs, store_record, two_models)

from seqbench.analysis.verdict import COMPARE_COLUMNS, sections
from seqbench.records import RunRecord
from seqbench.analysis.verdict import ci as ci_text_of
from seqbench.analysis.verdict import signed
from seqbench.cli.analyze import analyze as analyze_cmd


def ci_text(cmp):
    return ci_text_of(cmp["equivalence_ci"], signed)


def cli_json(db, *args):
    res = CliRunner().invoke(analyze_cmd, ["--db", str(db), "--json", "--bootstrap", "200",
                                           *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def trained(r, cap, patience=5):
    """A record that says how training was bounded: its step cap and early stopping."""
    r["config"]["training"].update(max_steps=cap, patience=patience)
    return r


# ---------------------------------------------------------------------------- time to target


def early_quitters():
    """4 of 8 LSTM runs reach the target at steps 200-300, the other 4 plateau at 0.55 and
    early stopping ends them at step 400; every Transformer run reaches it at step 700."""
    runs = []
    for s in range(8):
        if s < 4:
            vals = [0.5] * (1 + s // 2) + [0.9] * (3 - s // 2)
        else:
            vals = [0.5, 0.55, 0.55, 0.55]
        runs.append(trained(run("lstm", s, 0.7, curve=curve(vals)), 3000))
        ramp = [0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.9, 0.9]
        runs.append(trained(run("transformer", s, 0.9, curve=curve(ramp)), 3000))
    return runs


def never_reached():
    """No LSTM run reaches the target (each stops at step 1,000 on a plateau at 0.55); every
    Transformer run reaches it by step 2,500."""
    runs = []
    for s in range(6):
        runs.append(trained(run("lstm", s, 0.55, curve=curve([0.3, 0.45] + [0.55] * 8)), 3000))
        ramp = list(np.linspace(0.5, 0.9, 20 + s)) + [0.9] * (5 - s)
        runs.append(trained(run("transformer", s, 0.9, curve=curve(ramp)), 3000))
    return runs


def test_a_run_that_stopped_below_the_target_never_reaches_it(tmp_path):
    """Censoring a stopped run where it gave up favoured the model that quits early; a run
    that never reaches the target has an infinite time to it, counted beyond every event."""
    data = cli_json(make_db(tmp_path / "quit.sqlite", early_quitters()))
    (cmp,) = data["cells"][0]["comparisons"]
    speed = cmp["speed"]
    lstm = model_of(data["cells"][0], "lstm")["ttt"]
    assert lstm["reached"] == 4 and lstm["censored_median"] is True
    assert speed["outcome"] != "a_faster"  # the old answer: "lstm faster", p = 0.025
    assert speed["logrank_steps"]["z"] <= 0
    assert data["verdicts"][0]["speed_claim"] != "holds"

    data = cli_json(make_db(tmp_path / "never.sqlite", never_reached()))
    (cmp,) = data["cells"][0]["comparisons"]
    speed = cmp["speed"]
    assert model_of(data["cells"][0], "lstm")["ttt"]["reached"] == 0
    assert model_of(data["cells"][0], "transformer")["ttt"]["reached"] == 6
    assert speed["logrank_steps"]["z"] < -3  # the old answer: z = 0, no difference
    assert speed["outcome"] == "b_faster" and speed["faster"] == "transformer"
    assert data["verdicts"][0]["speed_claim"] == "fails"


# ---------------------------------------------------------------------------- one target per pair


def three_models():
    """The GRU, far behind, used to drag the cell's target (the median over all models)."""
    runs = []
    for s in range(6):
        runs.append(run("lstm", s, 0.8, curve=curve([0.6, 0.7, 0.8, 0.8])))
        runs.append(run("transformer", s, 0.8, curve=curve([0.5, 0.6, 0.75, 0.9])))
        runs.append(run("gru", s, 0.3, curve=curve([0.2, 0.3, 0.3, 0.3])))
    return runs


def test_a_pairs_verdict_does_not_depend_on_the_other_models(tmp_path):
    db = make_db(tmp_path / "three.sqlite", three_models())
    every = cli_json(db)
    two = cli_json(db, "--models", "lstm,transformer")
    listed = cli_json(db, "--pairs", "gru:lstm,lstm:transformer")

    def pair(data):
        (c,) = [x for x in data["cells"][0]["comparisons"]
                if (x["a"], x["b"]) == ("lstm", "transformer")]
        return c["speed"]

    speeds = [pair(d) for d in (every, two, listed)]
    assert [s["target"] for s in speeds] == [pytest.approx((0.8 + 0.9) / 2)] * 3
    assert len({(s["outcome"], s["p_value"]) for s in speeds}) == 1
    assert [s["ttt"]["transformer"]["median_steps"] for s in speeds] == [400] * 3
    assert [s["ttt"]["lstm"]["reached"] for s in speeds] == [0] * 3  # 0.8 < 0.85
    # with the GRU's 0.3 in the median the target was 0.8, and the dashboard said "lstm faster"
    assert speeds[0]["outcome"] == "inconclusive" and "AUC" in speeds[0]["reason"]
    assert "per pair" in every["target_rule"]
    verdicts = [next(v for v in d["verdicts"] if (v["a"], v["b"]) == ("lstm", "transformer"))
                for d in (every, two)]
    assert verdicts[0]["speed_claim"] == verdicts[1]["speed_claim"]


# ---------------------------------------------------------------------------- floor guard

CHANCE = {"chance": 0.1, "perfect": 1.0}


def test_a_difference_told_apart_from_chance_is_measurable():
    """0.148 vs chance-level 0.100 over 6 seeds: the LSTM can be told from chance, so the
    comparison is measured (it used to be 'not measurable': within 5 margins of chance)."""
    runs = two_models([0.148 + x / 10 for x in NOISE[:6]], [0.100 + x / 10 for x in NOISE[:6]],
                      extras=CHANCE)
    (cmp,) = cell_of(go(runs))["comparisons"]
    assert cmp["guard"] is None and cmp["outcome"] == "a_better"
    assert cmp["ci"][0] > 0.04


def test_both_indistinguishable_from_chance_is_not_measurable():
    runs = two_models([0.1 + x for x in NOISE[:6]], [0.1 + x for x in NOISE[1:7]],
                      extras=CHANCE)
    res = go(runs)
    (cmp,) = cell_of(res)["comparisons"]
    assert cmp["guard"] == "floor" and cmp["outcome"] == "not_measurable"
    assert "cannot be told from chance (0.1)" in cmp["reason"]
    assert "declared margin" not in cmp["reason"]
    assert "cannot be told from chance" in res["verdicts"][0]["text"]
    assert "within" not in res["verdicts"][0]["text"].split("cannot be told")[0][-80:]


# ---------------------------------------------------------------------------- equivalence


def test_the_equivalence_interval_shown_is_the_one_the_outcome_uses():
    """TOST p = 0.031 and 0.040 at two sizes, Holm-adjusted 0.062: neither is equivalent, and
    neither shown interval may then lie inside ±0.01 (the unadjusted 90% ones both did)."""
    runs = []
    for size, scale in ((100, 4.3), (400, 4.6)):
        runs += two_models([0.7 + x * scale for x in NOISE[:6]], [0.7] * 6, size=size)
    res = go(runs)
    cmps = [c["comparisons"][0] for c in res["cells"]]
    assert [round(c["tost_p"], 3) for c in cmps] == [0.031, 0.04]
    for c in cmps:
        assert c["tost_p_holm"] == pytest.approx(0.0624, abs=1e-3)
        assert c["outcome"] == "inconclusive" and "not shown to be within ±0.01" in c["reason"]
        raw_lo, raw_hi = c["equivalence_ci_unadjusted"]
        assert -0.01 < raw_lo and raw_hi < 0.01  # what the table used to show
        lo, hi = c["equivalence_ci"]
        assert not (-0.01 < lo and hi < 0.01)
        assert c["equivalence_level"] > 0.9  # wider than the unadjusted 90%
    rows = [r for sec in sections(res) for r in sec["comparisons"]]
    column = COMPARE_COLUMNS.index("equivalence: TOST p (Holm) [interval]")
    assert all(ci_text(c) in r[column] for c, r in zip(cmps, rows))


def test_an_equivalent_pair_shows_an_interval_inside_the_margin():
    runs = []
    for size in (100, 400):
        runs += two_models([0.7 + x for x in NOISE[:6]], [0.7] * 6, size=size)
    for c in (c["comparisons"][0] for c in go(runs)["cells"]):
        lo, hi = c["equivalence_ci"]
        assert c["outcome"] == "equivalent" and -0.01 < lo and hi < 0.01
        # the level of the interval and the adjusted p agree: inside  <=>  Holm p < alpha
        assert c["equivalence_level"] == pytest.approx(1 - 2 * 0.05 * c["tost_p"]
                                                       / c["tost_p_holm"])


# ---------------------------------------------------------------------------- one margin rule


@pytest.mark.parametrize("metric, higher, values, extras", [
    ("accuracy", True, [0.5, 0.9], {}),
    ("bleu", True, [0.4, 0.8], {}),  # BLEU at a tiny n: still 0-100 points
    ("bleu", True, [12.0, 31.0], {}),
    ("token_error_rate", False, [0.05, 0.6, None], {}),
    ("reward", True, [3.0, 140.0], {"chance": 0.0, "perfect": 200.0}),
])
def test_decide_and_analyze_use_one_margin_rule(metric, higher, values, extras):
    from seqbench.analysis.margins import practical_margin
    from seqbench.decision.procedure import default_margin

    delta, _ = practical_margin(metric, higher, values, extras, None)
    assert default_margin(metric, higher, values, extras) == delta


# ---------------------------------------------------------------------------- Holm's family


def test_holm_across_pairs_on_request_and_the_output_says_which(tmp_path):
    runs = []
    for size in (100, 400):
        runs += two_models([0.9 + x for x in NOISE[:6]], [0.5] * 6, size=size)
        runs += [run("gru", s, 0.7 + NOISE[s], size=size) for s in range(6)]
    db = make_db(tmp_path / "holm.sqlite", runs)
    per_pair = cli_json(db, "--pairs", "all")
    every = cli_json(db, "--pairs", "all", "--holm", "pairs")
    assert per_pair["holm"] == "sizes" and every["holm"] == "pairs"
    fam = [c["holm_family"] for cell in every["cells"] for c in cell["comparisons"]]
    assert fam == [6] * 6  # 3 pairs x 2 sizes
    assert {c["holm_family"] for cell in per_pair["cells"] for c in cell["comparisons"]} == {2}
    p1 = per_pair["cells"][0]["comparisons"][0]
    p2 = every["cells"][0]["comparisons"][0]
    assert p2["p_holm"] >= p1["p_holm"] and p1["p_value"] == p2["p_value"]
    assert "Holm-adjusted over 6 comparisons (3 pairs × 2 sizes)" in every["verdicts"][0]["text"]
    assert "Holm-adjusted over 2 sizes" in per_pair["verdicts"][0]["text"]
    res = CliRunner().invoke(analyze_cmd, ["--db", str(db), "--holm", "everything"])
    assert res.exit_code == 2


def test_decides_speed_ratio_is_worded_as_descriptive():
    from seqbench.analysis.sequential import decide_best
    from seqbench.decision.procedure import Decided
    from seqbench.decision.request import Request
    from seqbench.decision.summary import first_line

    scores = {"lstm": [0.9 + x for x in NOISE[:6]], "transformer": [0.5 + x for x in NOISE[:6]]}
    out = Decided(Request(task="toy", models=["lstm", "transformer"], budget_s=60),
                  metric="accuracy", decision=decide_best(scores, 0.01, n_max=20),
                  scores={m: dict(enumerate(v)) for m, v in scores.items()})
    row = {"reached": 6, "runs": 6, "seconds_per_step": 0.01, "param_count": 1000}
    spd = {"target": 0.7, "models": {"lstm": dict(row, seconds_to_target=10.0),
                                     "transformer": dict(row, seconds_to_target=23.0)}}
    line = first_line(out, spd)
    assert line.startswith("Use the LSTM")
    assert "2.3× shorter (descriptive, not tested)" in line
    assert "sooner" not in line


# ---------------------------------------------------------------------------- budget guard


def capped_db(path, cells):
    """A database of LSTM-vs-Transformer cells: ``cells`` maps a training size to the steps
    every run took (400, the cap: out of budget; fewer: early stopping ended it)."""
    from seqbench.store import Store

    with Store(path) as store:
        for size, steps in cells.items():
            for r in two_models([0.9 + x for x in NOISE[:6]], [0.5 + x for x in NOISE[1:7]],
                                size=size, n=size or 100, curve=curve([0.5, 0.9, 0.9])):
                trained(r, 400, patience=4)
                rec = store_record(r)
                rec["steps"] = steps
                store.save(rec)
    return path


def test_a_cell_that_ran_out_of_steps_is_budget_limited(tmp_path):
    data = cli_json(capped_db(tmp_path / "both.sqlite", {100: 400, 400: 250}))
    capped, converged = data["cells"]
    assert capped["budget"]["limited"] == ["lstm", "transformer"]
    assert capped["budget"]["steps"] == 400
    assert capped["budget"]["models"]["lstm"] == {"step_cap": 6, "plateau": 0, "other": 0}
    assert converged["budget"]["limited"] == []
    (cmp,) = capped["comparisons"]
    assert cmp["budget_limited"] is True and cmp["outcome"] == "a_better"
    assert cmp["result"] == "budget-limited: lstm ahead after 400 steps"
    assert cmp["speed"]["result"].startswith("budget-limited")
    assert converged["comparisons"][0]["result"] == "lstm better"
    (v,) = data["verdicts"]
    assert v["accuracy_claim"] == "budget-limited" and v["speed_claim"] == "budget-limited"
    assert "After 400 steps, lstm is ahead of transformer" in v["text"]
    assert "holds" not in v["text"] and "fails" not in v["text"]

    res = CliRunner().invoke(analyze_cmd, ["--db", str(tmp_path / "both.sqlite"),
                                           "--bootstrap", "200", "--markdown"])
    claim = next(line for line in res.output.splitlines() if line.startswith("**claim "))
    assert "budget-limited (after 400 steps: lstm ahead)" in claim
    assert "holds" not in claim and "fails" not in claim
    res = CliRunner().invoke(analyze_cmd, ["--db", str(tmp_path / "both.sqlite"),
                                           "--bootstrap", "200"])  # what a user sees first
    assert "budget-limited: lstm ahead after 400 steps" in res.output
    assert "holds" not in res.output and "fails" not in res.output


def test_early_stopped_cells_keep_the_claim_and_one_size_is_named_plainly(tmp_path):
    data = cli_json(capped_db(tmp_path / "converged.sqlite", {None: 250}))
    (v,) = data["verdicts"]
    assert v["accuracy_claim"] == "holds"
    assert v["text"].startswith("toy: At n = 100 (full), lstm scores")
    assert "smallest training size" not in v["text"]
    capped = cli_json(capped_db(tmp_path / "capped.sqlite", {None: 400}))
    assert "smallest training size" not in capped["verdicts"][0]["text"]
    assert capped["verdicts"][0]["accuracy_claim"] == "budget-limited"


def test_brief_gives_who_is_ahead_per_size_and_task_param_narrows(tmp_path):
    runs = []
    for data in ("digits", "trec"):
        for size, (a, b) in {100: (0.9, 0.5), 400: (0.5, 0.9)}.items():
            for r in two_models([a + x for x in NOISE[:6]], [b + x for x in NOISE[1:7]],
                                size=size, task_params={"data": data}):
                runs.append(r)
    db = make_db(tmp_path / "brief.sqlite", runs)
    res = CliRunner().invoke(analyze_cmd, ["--db", str(db), "--task-param", "data=digits",
                                           "--brief", "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].startswith("toy: accuracy, difference 95% t-interval")
    assert lines[1].startswith("  n = 100: lstm ahead, lstm − transformer +0.40")
    assert lines[2].startswith("  n = 400: transformer ahead, lstm − transformer -0.399 [")
    assert "Holm p = " in lines[2] and len(lines) == 3  # the trec runs left out
    res = CliRunner().invoke(analyze_cmd, ["--db", str(db), "--task-param", "data=wiki"])
    assert res.exit_code == 2 and "data: digits, trec" in res.output
    res = CliRunner().invoke(analyze_cmd, ["--db", str(db), "--brief", "--json"])
    assert res.exit_code == 2


# ---------------------------------------------------------------------------- crossover


def crossover_coverage(err_a, err_b, sizes, true_n, sims=1000, seeds=6, noise=0.01,
                       seed_effect=0.02):
    """Share of simulated studies whose crossover range (between measured sizes, simultaneous
    95% paired t-intervals) holds the true crossover; open bounds cover their side."""
    from seqbench.analysis import stats as st

    rng = np.random.default_rng(17)
    n = np.array(sizes, dtype=float)
    shared = rng.normal(0, seed_effect, (sims, 1, seeds))  # a seed's subset, both models
    acc_a = 1 - err_a(n)[None, :, None] + shared + rng.normal(0, noise, (sims, len(n), seeds))
    acc_b = 1 - err_b(n)[None, :, None] + shared + rng.normal(0, noise, (sims, len(n), seeds))
    d = acc_a - acc_b  # (sims, sizes, seeds), positive: A better
    se = d.std(-1, ddof=1) / np.sqrt(seeds)
    lo, hi = st.simultaneous_t(d.mean(-1), se, np.full(se.shape, seeds - 1.0), 0.95)
    lower, upper = st.crossover_range(n, lo, hi)
    return float(np.mean((lower < true_n) & (true_n < upper))), float(np.mean(np.isfinite(
        lower) & np.isfinite(upper)))


DOUBLING = [80, 160, 320, 640, 1280, 2560, 5120]
NEAR = list(np.geomspace(100, 220, 12))  # many sizes where the difference is nearly 0


@pytest.mark.parametrize("noise", [0.004, 0.01, 0.03])
@pytest.mark.parametrize("sizes", [DOUBLING, NEAR], ids=["doubling", "near"])
def test_crossover_range_covers_the_true_crossover(noise, sizes):
    """The seed-level percentile bootstrap covered 82% (true crossover n = 140, 6 seeds); the
    range between measured sizes covers at least 90% whatever the noise and the sizes."""
    from scipy.optimize import brentq

    def err_a(n):
        return 0.25 * (n / 80) ** -0.1 + 0.05

    def err_b(n):
        return 0.45 * (n / 80) ** -1.0 + 0.04

    true_n = brentq(lambda n: err_a(n) - err_b(n), 80, 5120)
    assert 120 < true_n < 160
    cover, closed = crossover_coverage(err_a, err_b, sizes, true_n, noise=noise)
    assert cover >= 0.9
    if noise == 0.004:
        assert closed > 0.5  # informative, not merely open on both sides


def test_c_zero_is_a_real_asymptote_not_a_bound():
    """An error that falls towards 0 fits c = 0: a power law, not an artefact to replace by
    interpolation (which 9-27% of fits with a true c of 0.02-0.05 were)."""
    from seqbench.analysis import stats as st

    assert st.at_bounds((0.4, 0.5, 0.0), 1.0) == []
    res = go(scaling_runs(lambda n: 0.3 * (n / 100) ** -0.5, err_b, noise=0.0005))
    fit = res["scaling"][0]["models"]["lstm"]["fit"]
    assert fit["method"] == "power-law" and fit["c"] == pytest.approx(0, abs=2e-3)


def test_a_bootstrap_replicate_on_a_bound_falls_back_to_interpolation():
    from seqbench.analysis.scaling import Curve

    n = np.array([100.0, 200, 400, 800, 1600])
    smooth = 0.3 * (n / 100) ** -0.5 + 0.05
    worse = np.linspace(0.1, 0.18, 5)  # error growing with data: its refit runs into a = 0
    fit = {"method": "power-law", "a": 0.3 * 100 ** 0.5, "b": 0.5, "c": 0.05}
    curve = Curve(n, smooth, fit, np.stack([smooth, worse]), 1.0)
    assert curve.boot_on_bound.tolist() == [False, True]
    grid = np.log(n)
    rows = curve.on(grid, boot=True)
    assert rows[1] == pytest.approx(worse)  # the replicate's own means, interpolated
    assert rows[0] == pytest.approx(smooth, abs=2e-3)


def test_the_dashboard_reads_the_same_pair_answer(tmp_path):
    """The dashboard's data path (the GRU in the cell) gives the pair what `bench analyze
    --models lstm,transformer` gives it, and its curve payload names the pair's target."""
    from seqbench.dashboard.data import build_snapshot

    db = make_db(tmp_path / "three.sqlite", three_models())
    two = cli_json(db, "--models", "lstm,transformer")["cells"][0]["comparisons"][0]
    snap = build_snapshot(db, "v", pairs="auto", confidence=0.95, n_boot=200)
    (cell,) = snap.summary["cells"]
    (dash,) = [c for c in cell["comparisons"] if (c["a"], c["b"]) == ("lstm", "transformer")]
    assert dash["speed"]["target"] == two["speed"]["target"] == pytest.approx(0.85)
    assert (dash["speed"]["outcome"], dash["outcome"]) == (two["speed"]["outcome"],
                                                           two["outcome"])
    curves = snap.cell_curves(cell["id"])
    assert curves["target"] == pytest.approx(0.85)
    assert curves["target_pair"] == ["lstm", "transformer"]


@pytest.mark.parametrize("record, reason", [
    ({"steps": 400}, "step cap"),
    ({"steps": 250}, "plateau"),
    # warmup-stable-decay: a plateau starts the cooldown, which ends before the cap
    ({"steps": 700, "extras": {"stop_reason": "plateau"}}, "plateau"),
    ({"steps": 400, "extras": {"stop_reason": "max_steps"}}, "step cap"),
    ({"steps": 400, "status": "diverged"}, "diverged"),
    ({"steps": None}, "unknown"),
])
def test_stop_reason_prefers_what_the_trainer_recorded(record, reason):
    from seqbench.analysis.stopping import stop_reason

    r = trained(run("lstm", 0, 0.5), 400 if record.get("steps") != 700 else 1000, patience=4)
    r.update({"status": "done", **record})
    r.pop("_curve")
    assert stop_reason(RunRecord.from_dict({"kind": "classification", **r})) == reason


def test_the_demo_ends_with_the_converged_answers_from_the_committed_studies():
    """scripts/demo's analyze commands on the committed databases: per size, who is ahead, under
    the first protocol (results/claim.sqlite), then under the neutral one (the re-run)."""
    import shlex
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    script = (root / "scripts" / "demo").read_text().replace("\\\n", " ")
    commands = [shlex.split(line) for line in script.splitlines()
                if line.startswith(".venv/bin/bench analyze --db")]
    ahead = {"results/claim.sqlite": ["lstm", None, "transformer", "transformer", None],
             "results/claim-rerun.sqlite": [None, "transformer", "transformer", "transformer",
                                            None]}
    assert [c[3] for c in commands] == list(ahead)
    assert commands[-1] == shlex.split(script.strip().splitlines()[-1])  # the demo ends with it
    for command in commands:
        assert "--brief" in command
        args = [str(root / a) if a.startswith("results/") else a for a in command[2:]]
        res = CliRunner().invoke(analyze_cmd, args)
        assert res.exit_code == 0, res.output
        for line, model in zip(res.output.strip().splitlines()[-5:], ahead[command[3]]):
            assert (f": {model} ahead" if model else ": neither shown ahead") in line, line
        assert "holds" not in res.output and "fails" not in res.output
