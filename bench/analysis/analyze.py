"""The benchmark's statistics: stored run records in, one JSON-serialisable analysis dict out.

Methods (primitives in ``seqbench.analysis.stats``; alpha = 1 - confidence):

* **Cells** (:func:`seqbench.analysis.cells.group`, the one pass the summary table and the
  dashboard share): task x task variant (the task parameters that vary among its runs, e.g.
  ``T=50``; ``default`` if none vary) x training size (``n`` = ``train_examples``). Per model the
  trial the launcher's rule selects on *validation* scores is kept (once across all sizes if it
  was tuned per task). Runs on tuning seeds (``trial["stage"] == "tune"``) take part in that
  selection only and are never evaluated; only ``done`` evaluation runs give test metrics,
  ``diverged`` ones are censored in time-to-target, ``failed`` ones are counted.
* **A model's mean** over seeds gets a Student-t interval (mean +- t_{n-1} s/sqrt(n)).
* **Comparisons** A vs B: ``diff`` is oriented so that positive means A is better (A - B for
  higher-is-better metrics, B - A otherwise); paired t over the seeds when both models ran the
  same seeds (one seed fixes the same training subset for both), Welch's t otherwise; its
  (1 - alpha) t-interval. Holm's adjustment runs over the training sizes of a task variant, per
  pair. Four outcomes: *A better* / *B better* when the Holm-adjusted p < alpha (so the interval
  excludes 0 on that side); *equivalent* when the Holm-adjusted TOST p < alpha, i.e. the
  interval shown, at level 1 - 2 alpha p/p_adj, lies inside +-delta, delta being the practical
  margin of the metric (:mod:`seqbench.analysis.margins`, shared with ``bench decide``: 0.01 for
  metrics in [0, 1], 1 point for BLEU-like metrics in [0, 100], else 1% of a declared
  chance-to-perfect range, else none and no equivalence test; ``margins`` overrides), which also
  wins over a significant difference smaller than delta; *inconclusive* otherwise, and also with
  fewer than 3 seeds a side or when seeds diverged (comparing the survivors would favour the
  unstable model). The sign-flip / two-sample permutation p-value (exact up to 100,000
  relabellings, sampled beyond) is reported beside it as a supporting figure; it decides nothing.
  Pairs: by default every pair of the models present, LSTM vs Transformer first (the verdict's
  pair); each cell's two best models are also compared, for its winner, if no pair asked for them.
  ``holm="pairs"`` makes one Holm family of every asked pair's comparisons in a task variant.
* **Floor/ceiling guard**: a model is at the floor when its scores cannot be told from the
  task's declared chance level (``extras["chance"]``: a trivial predictor's score): its
  t-interval reaches chance or lies past it. When both models are at the floor, or both means
  lie within delta of the declared best value (``extras["perfect"]``), the comparison is *not
  measurable at this budget*, whatever the test says (at the floor the speed comparison is not
  measurable either: its target is a chance-level score). A difference measured between a model
  above chance and one at it is reported, and the verdict says which one is at chance. A task
  that declares no chance level gets no floor guard, and the output says so.
* **Budget guard** (:mod:`seqbench.analysis.stopping`): a cell where most finished runs of
  either model of a pair ended at their step cap, not on a validation plateau (the stop reason
  the trainer recorded, else steps against the step cap), is *budget-limited*: its outcome
  stands as measured, but its result and the verdict's claims read "budget-limited: A ahead
  after N steps", never "holds" or "fails" (it measured who is ahead after N steps, not who is
  better at convergence). The floor and ceiling guards come first.
* **Convergence speed** (AlgoPerf): each pair A vs B has its own target, the *reference*: the
  median of the two models' median best validation scores (lower-is-better metrics: the same
  median, never a fraction of 0), so a pair's answer does not depend on which other models are
  in the cell or listed. The better of the two reaches it in at least half its runs. The cell's
  rows and plots show its first compared pair's target. With a declared chance level, a ladder
  of easier targets (``LADDER``: that share of the way from chance to the reference) is
  reported too. A run's time is its first validation at or past the target; a run that never
  gets there (it stopped below it, ran out of steps or diverged) has an infinite time, and the
  log-rank test counts it as still waiting beyond every event (censoring it where it gave up
  would favour the model that quits early). Medians (+inf when the middle is never reached)
  carry percentile-bootstrap CIs. "A converges faster" is decided by log-rank tests in steps
  *and* in seconds (both must reject; p = the larger, Holm-adjusted), with the AUC of the
  validation curve (the mean validation score over the pair's common step range, each run held
  at its last value after it stopped) pointing the same way and A's median time no longer.
* **Validation noise**: ``extras["val_size"]`` and the binomial standard error it implies,
  sqrt(p(1-p)/n) at each model's median best validation score, for metrics in [0, 1].
* **Scaling**: the error is 1 - metric for higher-is-better metrics in [0, 1], 1 - metric/100 for
  [0, 100] ones (BLEU), the metric itself for non-negative lower-is-better ones (c then bounded by
  max(1, largest value)); error = a*n^-b + c fitted per model with scipy's curve_fit (a >= 0,
  0 <= b <= 3, 0 <= c <= c_max) when it has >= 4 sizes. A fit that ends on a parameter bound is
  flagged (``at_bound``: a = 0, b = 0 or 3, c = c_max; c = 0 is a real asymptote) and replaced by
  linear interpolation of the mean in log n, as are too few sizes and failed fits. The crossover
  is where B's error curve first drops below A's over the sizes both measured. Its interval is a
  range between measured sizes: from the last size where A is ahead to the first where B is,
  by Bonferroni-simultaneous t-intervals of the difference at every size (an open bound where
  no size shows it); if the difference changes sign once it holds the crossover with at least
  the stated confidence (the fit's seed-level percentile bootstrap under-covers; it stays only
  as ``bootstrap_ci``). The bootstrap resamples *whole seeds*: one draw of seeds per
  replicate, shared by every size and every model (a seed fixes the nested training subsets at
  all sizes), refitting each replicate (a replicate on a bound is interpolated, like the fit);
  ``crossover_share`` is the share of replicates with a crossover in the measured range.
* Every bootstrap draws from a generator seeded by ``seed`` and the quantity's own key, so the
  result is reproducible and does not depend on which cells or pairs were asked for.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from itertools import combinations
from typing import Any, Iterable

import numpy as np

from . import stats as st
from .cells import Cell, ModelRuns, TextEnum, clean, group
from .margins import practical_margin, scale_of
from .stopping import StopReason, budget_of, stop_reason

VERDICT_FIRST = ("lstm", "transformer")  # the claim under test: first when both are present
MIN_TEST_SEEDS = 3  # fewer a side: no test (a t-test on 2 values rests on normality alone)
BUDGET_TOLERANCE = 0.10  # parameter counts differing by more than this are called out
FLOOR_RULE = ("a model is at the floor when its scores cannot be told from chance: its "
              "t-interval reaches the declared chance level")
LADDER = (0.5, 0.75, 1.0)  # easier targets: this share of the way from chance to the reference
TARGET_RULE = ("per pair: the median of the two models' median best validation scores (the "
               "cell's rows and plots show its first pair's)")
OUTCOME_TEXT = {"equivalent": "equivalent", "inconclusive": "inconclusive",
                "not_measurable": "not measurable at this budget"}


# ---------------------------------------------------------------------------- pairs


def default_pairs(models: Iterable[str]) -> list[tuple[str, str]]:
    """Every pair of the models present, LSTM vs Transformer first when both are there."""
    names = sorted(set(models))
    pairs = list(combinations(names, 2))
    if set(VERDICT_FIRST) <= set(names):
        pairs.remove(tuple(sorted(VERDICT_FIRST)))
        pairs.insert(0, VERDICT_FIRST)
    return pairs


def resolve_pairs(pairs, models: Iterable[str]) -> list[tuple[str, str]]:
    """"auto" and "all" (every pair of the models present, LSTM vs Transformer first: the
    verdict's pair) or explicit (A, B) pairs, in the order given."""
    if pairs in (None, "auto", "all"):
        return default_pairs(models)
    return [tuple(p) for p in pairs]


def _present(pairs, names) -> list[tuple[str, str]]:
    return [p for p in pairs if p[0] in names and p[1] in names]


# ---------------------------------------------------------------------------- margins, guard


def _guard(cell: Cell, margin: float | None) -> dict:
    chance, perfect = cell.extras.get("chance"), cell.extras.get("perfect")
    out = {"chance": chance, "perfect": perfect,
           "floor_rule": FLOOR_RULE if chance is not None else None,
           "ceiling_margin": margin if perfect is not None else None, "note": None}
    if chance is None:
        out["note"] = ("the task declares no chance level, so the floor guard could not be "
                       "applied")
    elif perfect is not None and margin is None:
        out["note"] = "no practical margin for this metric, so no ceiling guard"
    return out


def _at_floor(m: ModelRuns, chance: float, higher: bool, confidence: float) -> bool:
    """Its scores cannot be told from chance: its t-interval reaches chance (or lies past it;
    one seed: its score is no better than chance)."""
    sign = 1.0 if higher else -1.0
    ci = st.mean_ci(m.values, confidence)
    worst = min(sign * ci[0], sign * ci[1]) if ci else sign * m.values[0]
    return worst <= sign * chance


def _where(m: ModelRuns, guard: dict, higher: bool, confidence: float) -> str | None:
    """"floor" when the model's scores cannot be told from chance, "ceiling" when its mean sits
    within the practical margin of the best attainable value."""
    if not m.values:
        return None
    if guard["floor_rule"] and _at_floor(m, guard["chance"], higher, confidence):
        return "floor"
    ceiling = guard["ceiling_margin"]
    if ceiling is not None and (1 if higher else -1) * (guard["perfect"] - m.mean) <= ceiling:
        return "ceiling"
    return None


# ---------------------------------------------------------------------------- validation curves


def _stopped_early(run: dict) -> bool:
    """A finished run that early stopping ended before its step cap: it had converged (its
    validation score stopped improving) rather than run out of budget."""
    return stop_reason(run) is StopReason.PLATEAU


def _points(curves: dict, run: dict) -> list[tuple[float, float, float]]:
    """(step, seconds, value) of a run's validations, in step order."""
    pts = [(float(p["step"]), float(p.get("seconds") or 0.0), float(p["val_primary"]))
           for p in curves.get(run["run_id"], [])
           if p.get("val_primary") is not None and math.isfinite(p["val_primary"])]
    return sorted(pts)


def _best(run: dict, curves: dict, higher: bool) -> float | None:
    """A run's best validation score: its curve's best (what time-to-target reads), else the
    stored ``best_val``."""
    vals = [v for _, _, v in _points(curves, run)]
    if vals:
        return max(vals) if higher else min(vals)
    return None if run.get("best_val") is None else float(run["best_val"])


def _reaches(v: float, target: float, higher: bool) -> bool:
    tol = 1e-12 * max(1.0, abs(target))
    return v >= target - tol if higher else v <= target + tol


def _time_to(run: dict, curves: dict, target: float | None, higher: bool):
    """(steps, samples, seconds, reached, censored at step, censored at second)."""
    pts = sorted(curves.get(run["run_id"], []), key=lambda p: p["step"])
    last_step = float(pts[-1]["step"]) if pts else float(run.get("steps") or 0.0)
    last_sec = (float(pts[-1].get("seconds") or 0.0) if pts
                else float(run.get("train_seconds") or 0.0))
    if target is not None and run["status"] == "done":
        for p in pts:
            v = p.get("val_primary")
            if v is not None and math.isfinite(v) and _reaches(v, target, higher):
                return (float(p["step"]), float(p["samples"]), float(p["seconds"]), True,
                        float(p["step"]), float(p["seconds"]))
    return st.INF, st.INF, st.INF, False, last_step, last_sec


def _auc(pts: list[tuple[float, float, float]], lo: float, hi: float) -> float | None:
    """Mean validation score over steps [lo, hi]: linear between validations, the first value
    before the first one, the last value after the run stopped (it had plateaued or diverged)."""
    if not pts:
        return None
    x = np.array([p[0] for p in pts])
    y = np.array([p[2] for p in pts])
    if hi <= lo:
        return float(y[-1])
    grid = np.unique(np.concatenate([[lo, hi], x[(x > lo) & (x < hi)]]))
    v = np.interp(grid, x, y)
    return float(np.sum((v[1:] + v[:-1]) / 2 * np.diff(grid)) / (hi - lo))


# ---------------------------------------------------------------------------- one model


def _ttt_summary(times: np.ndarray, reached: int, of: int, rng_key, confidence, n_boot, seed):
    """Median time-to-target with a bootstrap CI in each currency: the columns of ``times`` are
    steps, samples, seconds and (when every run counted its step's cost) FLOPs."""
    out: dict[str, Any] = {"reached": reached, "of": of}
    for j, name in enumerate(("steps", "samples", "seconds", "flops")[:times.shape[1]]):
        col = times[:, j]
        med = st.median(col) if len(col) else None
        ci = st.bootstrap_median_ci(col, confidence, n_boot, st.rng_for(seed, *rng_key, name))
        out[f"_{name}"] = (med, ci)  # raw, with +inf, for the verdict
        out[f"median_{name}"] = None if med is None or math.isinf(med) else med
        out[f"{name}_ci"] = None if ci is None else [None if math.isinf(x) else x for x in ci]
        out[f"{name}_ci_infinite"] = bool(ci is not None and any(math.isinf(x) for x in ci))
    out["censored_median"] = bool(out["_steps"][0] is not None and math.isinf(out["_steps"][0]))
    return out


def _speed_side(m: ModelRuns, cell: Cell, curves, target, horizon, confidence, n_boot,
                seed) -> dict:
    """One model's time to ``target`` and its runs' validation AUC over ``horizon``.

    A run that never got there (it stopped below it, ran out of steps or diverged) has an
    infinite time: the log-rank test counts it as still waiting beyond every event, whichever
    way it stopped."""
    higher = cell.higher_is_better
    runs = m.done + m.diverged
    raw = [_time_to(r, curves, target, higher) for r in runs]
    times = np.array([t[:3] for t in raw], dtype=float).reshape(-1, 3)
    step_flops = [r.get("step_flops") for r in runs]
    if runs and all(step_flops):
        # FLOPs to target = steps to target x the run's FLOPs per step (inf stays inf): a model
        # that needs fewer steps of a costlier step does not look faster than it is.
        times = np.column_stack([times, times[:, 0] * np.array(step_flops, dtype=float)])
    aucs = {r["run_id"]: _auc(_points(curves, r), *horizon) for r in m.done} if horizon else {}
    key = ("ttt", cell.task, cell.variant_key, cell.train_size, m.name)
    return {
        "ttt": _ttt_summary(times, int(sum(t[3] for t in raw)), len(runs), key, confidence,
                            n_boot, seed),
        "censored": [(t[0], t[2], t[3]) for t in raw],  # (steps, seconds, reached)
        "auc": [aucs.get(r["run_id"]) for r in m.done],
    }


def _model_row(m: ModelRuns, cell: Cell, curves, side, ladder, bests, val_size,
               unit_scale, confidence) -> dict:
    higher = cell.higher_is_better
    values = np.array(m.values, dtype=float)
    ci = st.mean_ci(values, confidence)
    runs = m.done + m.diverged
    params = [r["param_count"] for r in m.done if r.get("param_count") is not None]
    own = [r["steps_to_95"] for r in m.done if r.get("steps_to_95") is not None]
    good = [a for a in side["auc"] if a is not None]
    med_best = float(np.median(bests)) if bests else None
    val_se = None
    if val_size and unit_scale and med_best is not None and 0 <= med_best <= 1:
        val_se = math.sqrt(med_best * (1 - med_best) / val_size)
    ladder_rows = None
    if ladder:
        ladder_rows = []
        for level, value in ladder:
            lt = [_time_to(r, curves, value, higher) for r in runs]
            steps = [t[0] for t in lt]
            med = st.median(steps) if steps else None
            ladder_rows.append({
                "level": level, "target": value, "reached": sum(t[3] for t in lt), "of": len(lt),
                "median_steps": None if med is None or math.isinf(med) else med,
            })
    return {
        "model": m.name, "n_seeds": len(values), "n_diverged": len(m.diverged),
        "n_failed": m.n_failed, "n_tune": m.n_tune, "trials": m.trials,
        "selected_trial": m.selected_trial, "tuning": m.tuning, "mean": m.mean,
        "sd": float(values.std(ddof=1)) if len(values) > 1 else None,
        "ci": list(ci) if ci else None, "values": values.tolist(), "seeds": m.seeds,
        "param_count": int(round(float(np.mean(params)))) if params else None,
        "step_flops": (int(np.median([r["step_flops"] for r in m.done if r.get("step_flops")]))
                       if any(r.get("step_flops") for r in m.done) else None),
        "best_val_median": med_best, "val_se": val_se,
        "ttt": side["ttt"],
        "ladder": ladder_rows,
        "own95_steps_median": float(np.median(own)) if own else None,
        "auc": float(np.mean(good)) if good else None,
        "run_ids": [r["run_id"] for r in runs],
    }


# ---------------------------------------------------------------------------- comparisons


def _aligned(ma: ModelRuns, mb: ModelRuns, va: np.ndarray, vb: np.ndarray):
    """(va, vb reordered to va's seeds, paired): paired when both ran exactly the same seeds."""
    paired = (len(set(ma.seeds)) == len(ma.seeds) == len(mb.seeds) == len(set(mb.seeds))
              and set(ma.seeds) == set(mb.seeds))
    if paired:
        order = {s: i for i, s in enumerate(mb.seeds)}
        vb = vb[[order[s] for s in ma.seeds]]
    return va, vb, paired


def _raw_compare(sa: dict, sb: dict, ma: ModelRuns, mb: ModelRuns, cell: Cell, margin, guard,
                 target, confidence, seed) -> dict:
    """Everything about A vs B in one cell that needs no other cell; :func:`_decide` adds the
    Holm-adjusted p-values and the outcome."""
    higher = cell.higher_is_better
    a, b = ma.name, mb.name
    out = {"a": a, "b": b, "n_a": len(ma.values), "n_b": len(mb.values), "paired": False,
           "positive_means": f"{a} better", "diff": None, "se": None, "df": None, "ci": None,
           "test": "none", "p_value": None, "p_holm": None, "holm_family": None,
           "margin": margin, "equivalence_ci": None, "equivalence_level": None,
           "equivalence_ci_unadjusted": None, "tost_p": None, "tost_p_holm": None,
           "p_permutation": None, "permutation_exact": None, "guard": None, "at_floor": [],
           "budget_limited": False, "budget_steps": None,
           "_chance": guard["chance"], "_perfect": guard["perfect"],
           "outcome": "inconclusive", "winner": None, "result": "inconclusive", "reason": "",
           "speed": None}
    if not ma.values or not mb.values:
        out["reason"] = f"no finished runs of {a if not ma.values else b}"
        out["speed"] = _raw_speed(sa, sb, ma, mb, target, False, False,
                                  1.0 if higher else -1.0, confidence)
        return out
    sign = 1.0 if higher else -1.0
    va, vb, paired = _aligned(ma, mb, sign * np.array(ma.values), sign * np.array(mb.values))
    out["paired"] = paired
    out["diff"] = float(va.mean() - vb.mean())
    places = {m.name: _where(m, guard, higher, confidence) for m in (ma, mb)}
    out["at_floor"] = [name for name, w in places.items() if w == "floor"]
    where = set(places.values())
    if len(where) == 1 and None not in where:
        out["guard"] = where.pop()
    elif guard["floor_rule"] is None:
        out["guard"] = "unavailable"
    out["speed"] = _raw_speed(sa, sb, ma, mb, target, out["guard"] == "floor", paired, sign,
                              confidence)
    td = st.t_diff(va, vb, paired)
    if td is None:
        out["reason"] = "too few seeds"
        return out
    out.update(se=td.se, df=td.df, ci=list(td.ci(confidence)),
               test="paired t" if paired else "Welch t")
    if min(len(va), len(vb)) < MIN_TEST_SEEDS:
        out["reason"] = "too few seeds"
        return out
    out["p_value"] = td.p_value()
    if margin is not None:
        out["equivalence_ci_unadjusted"] = list(td.ci(1 - 2 * (1 - confidence)))
        out["tost_p"] = td.tost_p(margin)
        out["_td"] = td
    rng = st.rng_for(seed, "compare", cell.task, cell.variant_key, cell.train_size, a, b)
    p, exact = st.sign_flip_test(va - vb, rng) if paired else st.two_sample_test(va, vb, rng)
    out["p_permutation"], out["permutation_exact"] = p, exact
    return out


def _raw_speed(sa, sb, ma: ModelRuns, mb: ModelRuns, target, guard_floor, paired, sign,
               confidence) -> dict:
    """A vs B in time to the pair's own target; ``sa``/``sb``: :func:`_speed_side`."""
    out = {"target": target, "ttt": {ma.name: sa["ttt"], mb.name: sb["ttt"]},
           "logrank_steps": None, "logrank_seconds": None, "p_value": None,
           "p_holm": None, "faster": None, "auc_diff": None, "auc_ci": None,
           "outcome": "inconclusive", "result": "inconclusive", "reason": ""}
    if guard_floor:
        out["_floor"] = True
    if target is None:
        out["reason"] = "no validation target (no finished run has a validation score)"
        return out
    ca, cb = sa["censored"], sb["censored"]
    if min(len(ca), len(cb)) < MIN_TEST_SEEDS:
        out["reason"] = f"fewer than {MIN_TEST_SEEDS} runs a side"
        return out
    tests = []
    for j, unit in ((0, "steps"), (1, "seconds")):
        res = st.logrank([c[j] for c in ca], [c[2] for c in ca], [c[j] for c in cb],
                         [c[2] for c in cb])
        out[f"logrank_{unit}"] = None if res is None else {"z": res[0], "p": res[1]}
        tests.append(res)
    if any(t is None for t in tests):
        out["reason"] = "neither model reached the target"
        return out
    (za, pa), (zb, pb) = tests
    # Intersection-union: "faster" must hold in steps and in seconds, so both tests must reject
    # (p = the larger) and agree on the direction.
    out["p_value"] = max(pa, pb)
    if za * zb < 0:
        out["p_value"] = 1.0
        out["reason"] = "the log-rank tests in steps and in seconds point different ways"
    out["_z"] = za
    # AUC: a supporting figure, oriented like the accuracy difference (positive: A better)
    xa = np.array([v for v in sa["auc"] if v is not None]) * sign
    xb = np.array([v for v in sb["auc"] if v is not None]) * sign
    if len(xa) and len(xb):
        out["auc_diff"] = float(xa.mean() - xb.mean())
        if paired and len(xa) == len(ma.done) and len(xb) == len(mb.done):
            xa, xb, _ = _aligned(ma, mb, xa, xb)
        td = st.t_diff(xa, xb, paired and len(xa) == len(xb))
        if td is not None:
            out["auc_ci"] = list(td.ci(confidence))
    return out


def _decide(cmps: list[dict], confidence: float) -> None:
    """Holm over one family of comparisons (one pair's at the sizes of a task variant, or every
    pair's there), then each outcome."""
    alpha = 1.0 - confidence
    for field, adj in (("p_value", "p_holm"), ("tost_p", "tost_p_holm")):
        for c, p in zip(cmps, st.holm([c[field] for c in cmps])):
            c[adj] = p
    tested = [c for c in cmps if c["p_value"] is not None]
    family = len(tested)
    n_pairs = len({(c["a"], c["b"]) for c in tested})
    n_sizes = len({c.get("_size") for c in tested})
    scope = (f"{family} comparisons ({n_pairs} pairs × {n_sizes} sizes)" if n_pairs > 1
             else f"{family} size{'s' * (family != 1)}")
    for c in cmps:
        td = c.pop("_td", None)
        if td is None:
            continue
        # The interval whose lying inside +-margin is the Holm-adjusted TOST's rejection: level
        # 1 - 2 alpha p/p_adj (Bonferroni's 1 - 2 alpha/m when p_adj = m p).
        p, adj = c["tost_p"], c["tost_p_holm"]
        share = p / adj if p > 0 and adj > 0 else 1.0 / family
        c["equivalence_level"] = 1 - 2 * alpha * share
        c["equivalence_ci"] = list(td.ci(c["equivalence_level"]))
    speed_adj = st.holm([(c["speed"] or {}).get("p_value") for c in cmps])
    for c, sp in zip(cmps, speed_adj):
        c["holm_family"] = family if c["p_value"] is not None else None
        c["holm_scope"] = scope if c["p_value"] is not None else None
        _outcome(c, alpha)
        if c["speed"] is not None:
            c["speed"]["p_holm"] = sp
            _speed_outcome(c, alpha)
        if c["budget_limited"]:
            _budget_words(c)


def _budget_words(c: dict) -> None:
    """A cell whose runs ran out of steps measured who is ahead after N steps: its results say
    so, in the place where "not measurable" would stand."""
    steps = f"{c['budget_steps']:,}"
    if c["outcome"] in ("a_better", "b_better"):
        c["result"] = f"budget-limited: {c['winner']} ahead after {steps} steps"
    elif c["outcome"] == "equivalent":
        c["result"] = f"budget-limited: within ±{c['margin']:g} after {steps} steps"
    elif c["outcome"] == "inconclusive":
        c["result"] = f"budget-limited: neither ahead after {steps} steps"
    s = c["speed"]
    if s is None or s["outcome"] == "not_measurable":
        return
    s["result"] = (f"budget-limited: {s['faster']} reached the target sooner within {steps} steps"
                   if s["faster"] else f"budget-limited: inconclusive within {steps} steps")


def _outcome(c: dict, alpha: float) -> None:
    a, b = c["a"], c["b"]
    if c["diff"] is None:
        return  # no finished runs of one side: the reason says so
    if c["guard"] in ("floor", "ceiling"):
        c["outcome"], c["result"] = "not_measurable", OUTCOME_TEXT["not_measurable"]
        if c["guard"] == "floor":
            c["reason"] = (f"both models' scores cannot be told from chance ({c['_chance']:g}): "
                           "their t-intervals reach it (floor)")
        else:
            c["reason"] = (f"both models are within the practical margin ±{c['margin']:g} of "
                           f"the best attainable score ({c['_perfect']:g}) (ceiling)")
        return
    if c["p_value"] is None:
        return  # too few seeds
    if c.get("_diverged"):
        c["reason"] = ("seeds that diverged have no test score (" + c["_diverged"] + "): "
                       "comparing the survivors would favour the unstable model")
        return
    if c["tost_p_holm"] is not None and c["tost_p_holm"] < alpha:
        c["outcome"], c["result"] = "equivalent", "equivalent"
        c["reason"] = (f"the Holm-adjusted {c['equivalence_level']:.1%} interval lies inside "
                       f"±{c['margin']:g}"
                       + (" (significant, but smaller than the margin)"
                          if c["p_holm"] < alpha else ""))
        return
    if c["p_holm"] < alpha:
        c["winner"] = a if c["diff"] > 0 else b
        c["outcome"] = "a_better" if c["diff"] > 0 else "b_better"
        c["result"] = f"{c['winner']} better"
        c["reason"] = "significant after Holm correction"
        return
    if c["p_value"] < alpha:
        c["reason"] = (f"not significant after Holm correction over {c['holm_scope']} "
                       f"(p = {c['p_value']:.3g}, adjusted {c['p_holm']:.3g})")
    else:
        c["reason"] = "no significant difference"
        if c["margin"] is not None:
            c["reason"] += f", and not shown to be within ±{c['margin']:g}"


def _speed_outcome(c: dict, alpha: float) -> None:
    s = c["speed"]
    if s.pop("_floor", False):
        s["outcome"], s["result"] = "not_measurable", OUTCOME_TEXT["not_measurable"]
        s["reason"] = "both models are at the floor: the target is a chance-level score"
        s.pop("_z", None)
        return
    z = s.pop("_z", None)
    if s["p_holm"] is None or z is None:
        return
    if s["p_holm"] >= alpha:
        s["reason"] = s["reason"] or ("no significant difference in time to target (log-rank "
                                      "in steps and in seconds, Holm-adjusted)")
        return
    faster = c["a"] if z > 0 else c["b"]
    slower = c["b"] if faster == c["a"] else c["a"]
    if s["auc_diff"] and (s["auc_diff"] < 0) == (faster == c["a"]):
        s["reason"] = f"the log-rank tests favour {faster}, but its AUC is worse"
        return
    if s["ttt"][faster]["_steps"][0] > s["ttt"][slower]["_steps"][0]:
        s["reason"] = (f"the log-rank tests favour {faster}, but its median time to the target "
                       "is longer")
        return
    s["faster"] = faster
    s["outcome"] = "a_faster" if faster == c["a"] else "b_faster"
    s["result"] = f"{faster} faster"
    s["reason"] = "log-rank in steps and seconds, Holm-adjusted; the AUC agrees"


# ---------------------------------------------------------------------------- one cell


def _cell(cell: Cell, curves, pairs, extra_pairs, margin_info, confidence, n_boot, seed) -> dict:
    higher = cell.higher_is_better
    margin, margin_source = margin_info
    guard = _guard(cell, margin)
    bests = {name: [b for b in (_best(r, curves, higher) for r in m.done) if b is not None]
             for name, m in cell.models.items()}

    def reference(names) -> tuple[float | None, tuple | None]:
        """The pair's target (median of its models' median best validation scores) and the
        step range its runs share, for the AUC."""
        medians = [float(np.median(bests[n])) for n in names if bests[n]]
        steps = [p[0] for n in names for r in cell.models[n].done for p in _points(curves, r)]
        return (float(np.median(medians)) if medians else None,
                (min(steps), max(steps)) if steps else None)

    budget = budget_of({name: m.done + m.diverged for name, m in cell.models.items()})
    asked = _present(pairs, cell.models) + _present(extra_pairs, cell.models)
    # the rows (and the plots) show the first compared pair's target; one model: its own
    target, horizon = reference(asked[0] if asked else list(cell.models))
    chance = cell.extras.get("chance")
    ladder = None
    if target is not None and chance is not None:
        ladder = [(lv, chance + lv * (target - chance)) for lv in LADDER]
    all_values = [v for m in cell.models.values() for v in m.values]
    unit = scale_of(cell.primary_metric, all_values, higher) == "unit"
    val_size = cell.extras.get("val_size")
    sides: dict[tuple, dict] = {}

    def side(name, t, span) -> dict:  # the first pair's are the rows' too: computed once
        if (name, t, span) not in sides:
            sides[name, t, span] = _speed_side(cell.models[name], cell, curves, t, span,
                                               confidence, n_boot, seed)
        return sides[name, t, span]

    rows = {name: _model_row(m, cell, curves, side(name, target, horizon), ladder, bests[name],
                             val_size, unit, confidence)
            for name, m in cell.models.items()}

    def compare(a, b):
        t, span = reference((a, b))
        sa, sb = side(a, t, span), side(b, t, span)
        c = _raw_compare(sa, sb, cell.models[a], cell.models[b], cell, margin, guard, t,
                         confidence, seed)
        c["budget_limited"] = bool(budget.limited((a, b)))
        c["budget_steps"] = budget.steps
        lost = [f"{m.name}: {len(m.diverged)}" for m in (cell.models[a], cell.models[b])
                if m.diverged]
        if lost:
            c["_diverged"] = ", ".join(lost)
        return c

    comparisons = [compare(a, b) for a, b in _present(pairs, cell.models)]
    extra = {p: compare(*p) for p in _present(extra_pairs, cell.models)}
    validation = None
    if val_size:
        validation = {"size": val_size, "se_max": 0.5 / math.sqrt(val_size) if unit else None,
                      "se": "binomial, sqrt(p(1-p)/n) at each model's median best validation "
                            "score" if unit else "not a proportion: no closed form"}
    return {
        "task": cell.task, "variant": cell.variant, "variant_key": cell.variant_key,
        "train_size": cell.train_size, "n": cell.n, "primary_metric": cell.primary_metric,
        "higher_is_better": higher, "target": target,
        "target_pair": list(asked[0]) if asked else None, "ladder": (
            [{"level": lv, "target": v} for lv, v in ladder] if ladder else None),
        "margin": margin, "margin_source": margin_source, "guard": guard,
        "budget": budget.as_dict(),
        "validation": validation,
        "unequal_tuning": len({m.trials for m in cell.models.values()}) > 1,
        "models": list(rows.values()), "comparisons": comparisons, "winner": None,
        "_cell": cell, "_extra": extra,
    }


def _winner(c: dict) -> dict:
    cell: Cell = c["_cell"]
    higher = cell.higher_is_better
    ranked = sorted((m for m in cell.models.values() if m.mean is not None),
                    key=lambda m: (-m.mean if higher else m.mean, m.name))
    out = {"model": ranked[0].name if ranked else None, "margin": None, "significant": False,
           "against": None, "outcome": None, "p_holm": None, "budget_limited": False}
    if len(ranked) > 1:
        first, second = ranked[0], ranked[1]
        out["margin"] = abs(first.mean - second.mean)
        out["against"] = second.name
        cmp = next((x for x in c["comparisons"] + list(c["_extra"].values())
                    if {x["a"], x["b"]} == {first.name, second.name}), None)
        if cmp is not None:
            out["significant"] = cmp["winner"] == first.name
            out["outcome"] = cmp["result"]
            out["p_holm"] = cmp["p_holm"]
            out["budget_limited"] = cmp["budget_limited"]
    return out


# ---------------------------------------------------------------------------- scaling


def _error_scale(metric: str, higher: bool, values: np.ndarray):
    """(description, metric -> error, c_max) or None when no bounded error scale fits."""
    if not len(values):
        return None
    lo, hi = float(values.min()), float(values.max())
    scale = scale_of(metric, [lo, hi], higher)
    if higher and scale == "percent":
        return f"1 - {metric}/100", (lambda m: 1.0 - m / 100.0), 1.0
    if higher and scale == "unit":
        return f"1 - {metric}", (lambda m: 1.0 - m), 1.0
    if not higher and lo >= 0:
        return metric, (lambda m: m), max(1.0, hi)
    return None


def _model_fit(n: np.ndarray, err: np.ndarray, scale) -> dict:
    fit: dict[str, Any] = {"method": "interpolation", "a": None, "b": None, "c": None,
                           "error": scale[0] if scale else None, "reason": None,
                           "at_bound": None, "power_law": None}
    if scale is None:
        fit["reason"] = "the metric has no bounded error scale"
    elif len(n) < 4:
        fit["reason"] = f"fewer than 4 sizes ({len(n)})"
    else:
        params = st.fit_power_law(n, err, scale[2])
        if params is None:
            fit["reason"] = "power-law fit failed"
        elif bounds := st.at_bounds(params, scale[2]):
            fit["at_bound"] = bounds
            fit["power_law"] = {"a": params[0], "b": params[1], "c": params[2]}
            fit["reason"] = (f"the power-law fit sits on a parameter bound ({', '.join(bounds)}), "
                             "so interpolation in log n is used instead")
        else:
            fit.update(method="power-law", a=params[0], b=params[1], c=params[2])
    return fit


class _Curve:
    """One model's error against n in one task variant, and its whole-seed bootstrap replicates."""

    def __init__(self, n, err, fit, boot_err, c_max):
        self.n, self.err, self.fit, self.boot_err = n, err, fit, boot_err
        self.boot_params = (st.profile_fit(n, boot_err, c_max)
                            if fit["method"] == "power-law" else None)
        # a replicate whose refit sits on a bound falls back to interpolation, as the fit does
        self.boot_on_bound = (np.any(list(st.bound_mask(self.boot_params, c_max).values()), 0)
                              if self.boot_params is not None else None)

    def on(self, grid: np.ndarray, boot: bool = False) -> np.ndarray:
        """Error curves on a log-n grid: one row (the fit) or one row per bootstrap replicate."""
        rows = self.boot_err if boot else self.err[None, :]
        logn = np.log(self.n)
        interp = np.stack([np.interp(grid, logn, row) for row in rows])
        if self.fit["method"] != "power-law":
            return interp
        p = self.boot_params if boot else np.array([[self.fit["a"], self.fit["b"], self.fit["c"]]])
        law = p[:, :1] * np.exp(-p[:, 1:2] * grid[None, :]) + p[:, 2:3]
        return np.where(self.boot_on_bound[:, None], interp, law) if boot else law


def _seed_draws(seeds: list, n_boot: int, rng) -> np.ndarray:
    """(n_boot, len(seeds)) counts: each replicate draws len(seeds) seeds with replacement."""
    k = len(seeds)
    return rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot).astype(float)


def _replicate_means(points: list[tuple[float, ModelRuns]], universe: list, W: np.ndarray):
    """Per size, the mean of each replicate's drawn seeds (a seed drawn twice counts twice).
    A replicate that drew none of the seeds a size has (a seed missing there) keeps the plain
    mean at that size."""
    index = {s: i for i, s in enumerate(universe)}
    cols = []
    for _, m in points:
        idx = np.array([index[s] for s in m.seeds])
        v = np.array(m.values, dtype=float)
        w = W[:, idx]
        tot = w.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            cols.append(np.where(tot > 0, (w @ v) / np.where(tot > 0, tot, 1), v.mean()))
    return np.stack(cols, axis=1)


def _bracket(a: str, b: str, cells: list[dict], confidence) -> dict | None:
    """Where B overtakes A, placed between measured sizes by Bonferroni-simultaneous
    t-intervals of A - B at every size both measured with a test (see st.crossover_range)."""
    pts = []
    for c in cells:
        for x in c["comparisons"] + list(c["_extra"].values()):
            if {x["a"], x["b"]} == {a, b} and x["se"] is not None and c["n"] is not None:
                sign = 1.0 if x["a"] == a else -1.0
                pts.append((float(c["n"]), sign * x["diff"], x["se"], x["df"]))
    if not pts:
        return None
    pts.sort()
    n, diff, se, df = (np.array(v, dtype=float) for v in zip(*pts))
    lo, hi = st.simultaneous_t(diff, se, df, confidence)
    lower, upper = st.crossover_range(n, lo, hi)
    return {"lower": float(lower[0]), "upper": float(upper[0]), "sizes": len(n)}


def _range_text(a: str, b: str, br: dict, confidence) -> str:
    lower, upper = br["lower"], br["upper"]
    how = (f"simultaneous {confidence:.0%} t-intervals of the difference at {br['sizes']} "
           f"sizes")
    if math.isfinite(lower) and math.isfinite(upper):
        where = f"between n = {lower:,.0f} and {upper:,.0f}"
    elif math.isfinite(upper):
        where = f"at or below n = {upper:,.0f}, where {b} is first shown ahead"
    elif math.isfinite(lower):
        where = f"above n = {lower:,.0f}, the last size where {a} is shown ahead"
    else:
        return f"no measured size shows either ahead ({how})"
    return f"the measured sizes place it {where} ({how})"


def _crossover(a: str, b: str, ca: _Curve, cb: _Curve, bracket: dict | None, confidence) -> dict:
    fa, fb = ca.fit, cb.fit
    method = fa["method"] if fa["method"] == fb["method"] else f"{fa['method']}/{fb['method']}"
    out = {"a": a, "b": b, "n": None, "ci": None, "ci_open": None, "ci_method": None,
           "bootstrap_ci": None, "crossover_share": None,
           "no_crossover_share": None, "method": method, "direction": None,
           "better_throughout": None, "range": None, "text": ""}
    fallback = [f"{m}: {f['reason']}" for m, f in ((a, fa), (b, fb)) if f.get("at_bound")]
    note = f"; {'; '.join(fallback)}" if fallback else ""
    lo, hi = max(ca.n.min(), cb.n.min()), min(ca.n.max(), cb.n.max())
    if not lo < hi:
        out["text"] = "no crossover can be placed: fewer than two training sizes measured for both"
        return out
    out["range"] = [lo, hi]
    grid = np.linspace(math.log(lo), math.log(hi), st.CROSS_GRID)
    D = cb.on(grid) - ca.on(grid)  # positive: A has the lower error
    x_ab = st.first_crossing(grid, D, "a_to_b")[0]
    x_ba = st.first_crossing(grid, D, "b_to_a")[0]
    Db = cb.on(grid, boot=True) - ca.on(grid, boot=True)
    reps = st.first_crossing(grid, Db, "a_to_b")
    found = np.isfinite(reps)
    out["crossover_share"] = float(found.mean())
    out["no_crossover_share"] = 1.0 - out["crossover_share"]
    span = f"n = {lo:,.0f}–{hi:,.0f}"
    if np.isfinite(x_ab):
        out["n"] = float(math.exp(x_ab))
        out["direction"] = "a_to_b"
        # A replicate without a crossover in range has it beyond one end: below the range when B
        # is already better at the first size where the curves differ, above it otherwise.
        rest = Db[~found]
        nonzero = np.abs(rest) > 1e-12
        first = np.where(nonzero.any(1), rest[np.arange(len(rest)), np.argmax(nonzero, 1)], 1.0)
        vals = reps.copy()
        vals[~found] = np.where(first < 0, -np.inf, np.inf)
        boot = st.percentile_ci(vals, confidence)
        out["bootstrap_ci"] = [float(math.exp(min(max(x, grid[0]), grid[-1]))) for x in boot]
        br = bracket or {"lower": -math.inf, "upper": math.inf, "sizes": 0}
        out["ci_open"] = [not math.isfinite(br["lower"]), not math.isfinite(br["upper"])]
        out["ci"] = [br["lower"] if math.isfinite(br["lower"]) else float(lo),
                     br["upper"] if math.isfinite(br["upper"]) else float(hi)]
        out["ci_method"] = ("between measured sizes: the last where A and the first where B is "
                            "ahead, by Bonferroni-simultaneous t-intervals")
        out["text"] = (
            f"{b} overtakes {a} at n ≈ {out['n']:,.0f} (fit; {method}{note}); "
            f"{_range_text(a, b, br, confidence)}; {out['crossover_share']:.0%} of bootstrap "
            f"replicates (whole seeds) have a crossover in {span}"
        )
        return out
    tol = 1e-12
    if np.isfinite(x_ba):
        out["direction"] = "b_to_a"
        out["reverse_n"] = float(math.exp(x_ba))
        out["text"] = (f"none in the measured range ({span}) in that direction: {b} is better at "
                       f"the small sizes and {a} overtakes it at n ≈ {out['reverse_n']:,.0f} "
                       f"({method}{note})")
    elif np.all(D >= -tol) and np.any(D > tol):
        out["better_throughout"] = a
        out["text"] = (f"none in the measured range ({span}): {a} is better throughout "
                       f"({out['crossover_share']:.0%} of bootstrap replicates have one; "
                       f"{method}{note})")
    elif np.all(D <= tol) and np.any(D < -tol):
        out["better_throughout"] = b
        out["text"] = (f"none in the measured range ({span}): {b} is better throughout "
                       f"({method}{note})")
    else:
        out["text"] = f"none in the measured range ({span}): the curves coincide ({method}{note})"
    return out


def _scaling(task, vkey, cells, pairs, confidence, n_boot, seed) -> dict:
    metric, higher = cells[0]["primary_metric"], cells[0]["higher_is_better"]
    per_model: dict[str, list[tuple[float, ModelRuns, dict]]] = {}
    for c in sorted(cells, key=lambda c: c["n"] if c["n"] is not None else math.inf):
        if c["n"] is None:
            continue
        for row in c["models"]:
            if row["n_seeds"]:
                per_model.setdefault(row["model"], []).append(
                    (float(c["n"]), c["_cell"].models[row["model"]], row))
    everything = np.array([v for pts in per_model.values() for _, m, _ in pts for v in m.values])
    scale = _error_scale(metric, higher, everything)
    to_err = scale[1] if scale else (lambda m: -m if higher else m)
    universe = sorted({s for pts in per_model.values() for _, m, _ in pts for s in m.seeds},
                      key=lambda s: (str(type(s)), s))
    W = (_seed_draws(universe, n_boot, st.rng_for(seed, "scaling", task, vkey))
         if universe else None)
    models, curves = {}, {}
    for name, pts in per_model.items():
        n = np.array([p[0] for p in pts], dtype=float)
        err = to_err(np.array([p[2]["mean"] for p in pts]))
        fit = _model_fit(n, err, scale)
        boot = to_err(_replicate_means([(p[0], p[1]) for p in pts], universe, W))
        curves[name] = _Curve(n, err, fit, boot, scale[2] if scale else 1.0)
        models[name] = {
            "n": [int(x) if float(x).is_integer() else x for x, _, _ in pts],
            "mean": [row["mean"] for _, _, row in pts],
            "ci_lo": [row["ci"][0] if row["ci"] else None for _, _, row in pts],
            "ci_hi": [row["ci"][1] if row["ci"] else None for _, _, row in pts],
            "n_seeds": [row["n_seeds"] for _, _, row in pts],
            "fit": fit,
        }
    crossovers = [_crossover(a, b, curves[a], curves[b], _bracket(a, b, cells, confidence),
                             confidence)
                  for a, b in _present(pairs, per_model)]
    return {"task": task, "variant_key": vkey, "primary_metric": metric, "higher_is_better": higher,
            "error": scale[0] if scale else None, "models": models, "crossovers": crossovers,
            "resampling": "whole seeds (shared by every size and model)"}


# ---------------------------------------------------------------------------- verdicts

class Claim(TextEnum):
    """What a verdict says of the claim "A beats B" / "A converges faster" at its size."""

    HOLDS = "holds"
    FAILS = "fails"
    EQUIVALENT = "equivalent"
    NOT_MEASURABLE = "not measurable"
    BUDGET_LIMITED = "budget-limited"  # the runs ran out of steps: who is ahead, not who is better
    INCONCLUSIVE = "inconclusive"


CLAIM = {"a_better": Claim.HOLDS, "b_better": Claim.FAILS, "equivalent": Claim.EQUIVALENT,
         "not_measurable": Claim.NOT_MEASURABLE, "inconclusive": Claim.INCONCLUSIVE}
SPEED_CLAIM = {"a_faster": Claim.HOLDS, "b_faster": Claim.FAILS,
               "not_measurable": Claim.NOT_MEASURABLE, "inconclusive": Claim.INCONCLUSIVE}


def _claim(outcome: str, budget_limited: bool, table: dict) -> Claim:
    if budget_limited and outcome != "not_measurable":
        return Claim.BUDGET_LIMITED
    return table[outcome]


def _verdict(task, vkey, cells, scaling, a, b, confidence) -> dict:
    from .verdict import verdict_text

    both = [c for c in cells
            if {a, b} <= {row["model"] for row in c["models"] if row["n_seeds"]}]
    facts: dict[str, Any] = {"task": task, "variant_key": vkey, "a": a, "b": b,
                             "confidence": confidence, "target_rule": TARGET_RULE}
    if not both:
        facts["missing"] = True
        return {"task": task, "variant_key": vkey, "a": a, "b": b, "train_size": None, "n": None,
                "accuracy_claim": Claim.INCONCLUSIVE, "speed_claim": Claim.INCONCLUSIVE,
                "budget_steps": None, "ahead": None,
                "text": verdict_text(facts)}
    both.sort(key=lambda c: c["n"] if c["n"] is not None else math.inf)
    small = both[0]
    cmp = next(c for c in small["comparisons"] if (c["a"], c["b"]) == (a, b))
    rows = {row["model"]: row for row in small["models"]}
    cross = next((c for c in (scaling or {}).get("crossovers", []) if (c["a"], c["b"]) == (a, b)),
                 None)
    others = []
    for c in both[1:]:
        oc = next((x for x in c["comparisons"] if (x["a"], x["b"]) == (a, b)), None)
        if oc is not None:
            others.append({"n": c["n"], "train_size": c["train_size"], "cmp": oc})
    model = small["_cell"].models
    facts.update(
        cell=small, cmp=cmp, rows=rows,
        accuracy=_claim(cmp["outcome"], cmp["budget_limited"], CLAIM),
        speed=_claim(cmp["speed"]["outcome"], cmp["budget_limited"], SPEED_CLAIM),
        crossover=cross, others=others, sizes=len(both), budget=small["budget"],
        params={m: rows[m]["param_count"] for m in (a, b)}, budget_tolerance=BUDGET_TOLERANCE,
        unequal_sizes=[c["n"] for c in both if _trials_of(c, a) != _trials_of(c, b)],
        trials={m: rows[m]["trials"] for m in (a, b)},
        seeds={a: len(model[a].values), b: len(model[b].values)},
        diverged={a: len(model[a].diverged), b: len(model[b].diverged)},
    )
    return {"task": task, "variant_key": vkey, "a": a, "b": b, "train_size": small["train_size"],
            "n": small["n"], "accuracy_claim": facts["accuracy"], "speed_claim": facts["speed"],
            "budget_steps": cmp["budget_steps"] if cmp["budget_limited"] else None,
            "ahead": cmp["winner"],
            "text": verdict_text(facts)}


def _trials_of(cell: dict, model: str) -> int | None:
    return next((r["trials"] for r in cell["models"] if r["model"] == model), None)


# ---------------------------------------------------------------------------- entry point


class HolmFamily(TextEnum):
    """Which comparisons of a task variant one Holm adjustment spans."""

    SIZES = "sizes"  # one pair's comparisons at every size (a family per pair)
    PAIRS = "pairs"  # every asked pair's comparisons at every size


def analyze(runs: list[dict], curves: dict, *, pairs="auto", confidence: float = 0.95,
            n_boot: int = 2000, seed: int = 0, margins: dict | None = None,
            holm: str = "sizes") -> dict:
    """Cells, comparisons, time-to-target, data scaling and verdicts; see the module docstring.

    ``pairs``: "auto" or "all" (every pair of the models present, LSTM vs Transformer first) or
    a sequence of (A, B) model names; the first pair present gets the verdict. ``curves``:
    run_id -> curve points. ``margins``: metric name (or "*") -> practical margin delta.
    ``holm``: :class:`HolmFamily` ("sizes" or "pairs"); the winners' extra comparisons always
    form a family per pair.
    """
    holm = HolmFamily(holm)
    counts = {s: sum(r["status"] == s for r in runs)
              for s in ("done", "failed", "diverged", "running")}
    counts["early_stopped"] = sum(_stopped_early(r) for r in runs)
    grouped = group(runs)
    names = sorted({name for c in grouped for name in c.models})
    wanted = resolve_pairs(pairs, names)
    by_variant: dict[tuple, list[Cell]] = {}
    for c in grouped:
        by_variant.setdefault((c.task, c.variant_key), []).append(c)

    cells, margins_used = [], {}
    for (task, vkey), cs in by_variant.items():
        values = [v for c in cs for m in c.models.values() for v in m.values]
        extras = next((c.extras for c in cs if c.extras), {})
        margin_info = practical_margin(cs[0].primary_metric, cs[0].higher_is_better, values,
                                       extras, margins)
        margins_used[f"{task} ({vkey})" if vkey != "default" else task] = {
            "metric": cs[0].primary_metric, "margin": margin_info[0], "source": margin_info[1]}
        # the top two models of each cell are compared for the overview even when not asked
        extra = set()
        for c in cs:
            ranked = sorted((m for m in c.models.values() if m.mean is not None),
                            key=lambda m: (-m.mean if c.higher_is_better else m.mean, m.name))
            if len(ranked) > 1:
                pair = tuple(sorted((ranked[0].name, ranked[1].name)))
                if not {pair, pair[::-1]} & set(wanted):
                    extra.add(pair)
        rows = [_cell(c, curves, wanted, sorted(extra), margin_info, confidence, n_boot, seed)
                for c in cs]
        families: dict[Any, list[dict]] = {}
        for row in rows:
            tagged = ([(x, holm is HolmFamily.PAIRS) for x in row["comparisons"]]
                      + [(x, False) for x in row["_extra"].values()])
            for x, shared in tagged:
                x["_size"] = row["n"]
                families.setdefault("asked" if shared else frozenset((x["a"], x["b"])),
                                    []).append(x)
        for fam in families.values():
            _decide(fam, confidence)
        for row in rows:
            row["winner"] = _winner(row)
        cells += rows

    scaling, verdicts = [], []
    verdict_pair = next((p for p in wanted if p[0] in names and p[1] in names), None)
    for (task, vkey) in by_variant:
        cs = [c for c in cells if (c["task"], c["variant_key"]) == (task, vkey)]
        s = _scaling(task, vkey, cs, wanted, confidence, n_boot, seed)
        scaling.append(s)
        if verdict_pair:
            verdicts.append(_verdict(task, vkey, cs, s, *verdict_pair, confidence))
    used = [p for p in wanted if p[0] in names and p[1] in names]
    return clean({
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "confidence": confidence, "n_boot": n_boot, "seed": seed,
        "pairs": [list(p) for p in used], "verdict_pair": list(verdict_pair or []),
        "margins": margins_used, "holm": holm.value, "floor_rule": FLOOR_RULE,
        "target_rule": TARGET_RULE,
        "ladder": list(LADDER), "min_test_seeds": MIN_TEST_SEEDS,
        "counts": counts, "cells": cells, "scaling": scaling, "verdicts": verdicts,
    }, drop_private=True)  # "_cell", "_extra", "_censored", "_steps"... stay inside
