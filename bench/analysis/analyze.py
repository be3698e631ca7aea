"""The benchmark's statistics: stored run records in, one JSON-serialisable analysis dict out.

Methods (see ``analysis_stats`` for the primitives):

* **Cells** group runs by task, task variant (the task parameters that vary among that task's
  runs, e.g. ``T=50``; ``default`` if none vary) and training size (``n`` = ``train_examples``).
  Only ``done`` runs give metrics; ``diverged`` runs count as censored in time-to-target;
  ``failed`` runs are counted only.
* **Fair tuning selection** (:func:`seqbench.experiment.tuning.chosen_trials`, the launcher's own rule): per
  model and cell, the trial (a configuration apart from seed and size: what a sweep varied, e.g.
  lr) with the best mean *validation* score over the seeds every trial ran (a diverged run scores
  worst) is kept — once across all sizes if it was tuned per task; only its seeds count. The test
  metric never takes part in the selection.
  ``unequal_tuning`` flags a cell whose models had different numbers of trials.
* **Comparisons** A vs B: ``diff`` is oriented so that positive means A is better (A - B for
  higher-is-better metrics, B - A otherwise). Paired sign-flip permutation test when both models
  have the same seeds, two-sample permutation test otherwise (two-sided, exact up to 100,000
  relabellings); percentile bootstrap CI of the difference (paired resampling when paired).
  A winner needs p < 1 - confidence and a CI that excludes 0; fewer than 3 seeds a side: no test.
* **Time-to-target**: target = ``target_fraction`` x the best validation score any model's selected
  runs reached in the cell (lower-is-better: best / fraction). A run's time is its first curve
  point at or past the target; a run that never gets there, or diverged, is censored (+inf) and
  kept. Medians are infinite when the middle of the sorted times is censored; JSON writes an
  infinite value as null with a flag (``censored_median``, ``*_ci_infinite``: a null bound then
  means +inf).
* **AUC**: the mean of the run's validation curve over its own step range (trapezoid rule,
  divided by the step range), each point first normalised by the cell's best validation score
  (value / best; lower-is-better: best / value), so 1.0 means "at the cell's best from the first
  evaluation on". Averaged over the model's selected finished runs; higher = converged faster.
* **Scaling**: the error is 1 - metric for higher-is-better metrics in [0, 1], 1 - metric/100 for
  higher-is-better metrics in [0, 100] (BLEU), the metric itself for non-negative lower-is-better
  metrics (c then bounded by max(1, largest value)); error = a*n^-b + c fitted per model with
  scipy's curve_fit (a >= 0, 0 <= b <= 3, 0 <= c <= 1) when it has >= 4 sizes, else (or when the
  fit fails, or the metric fits none of those scales) linear interpolation of the mean in log n.
  The crossover is where B's error curve first drops below A's over the sizes both measured;
  its CI resamples seeds within every size (``n_boot`` times), refits (profile least squares over
  a grid of b), and takes the percentile interval over the replicates that found a crossover.
* Every bootstrap draws from a generator seeded by ``seed`` and the quantity's own key, so the
  result is reproducible and does not depend on which cells or pairs were asked for.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import combinations
from typing import Any, Iterable

import numpy as np

from . import stats as st
from .cells import clean, variant_keys
from ..experiment.tuning import chosen_trials
from ..experiment.tuning import trial_key as _trial_key

DEFAULT_PAIRS = (("lstm", "transformer"),)
MIN_TEST_SEEDS = 3  # fewer a side: no significance test
MIN_VERDICT_SEEDS = 5  # fewer a side: a claim is "inconclusive" whatever the test says
BUDGET_TOLERANCE = 0.10  # parameter counts differing by more than this are called out
PERCENT_METRICS = {"bleu", "chrf", "ter"}  # metrics on a 0-100 scale


# ---------------------------------------------------------------------------- records -> cells


def _sort_value(v: Any) -> tuple:
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


@dataclass
class _Model:
    """One model in one cell, after tuning selection."""

    name: str
    trials: int
    selected_trial: dict
    done: list[dict]  # selected trial, status done, with a test value
    diverged: list[dict]  # selected trial, status diverged
    n_failed: int
    values: np.ndarray = field(init=False)
    seeds: list = field(init=False)

    def __post_init__(self):
        self.values = np.array([float(r["primary_value"]) for r in self.done], dtype=float)
        self.seeds = [r["seed"] for r in self.done]

    @property
    def mean(self) -> float | None:
        return float(self.values.mean()) if len(self.values) else None


def _select(name: str, runs: list[dict], chosen: str | None) -> _Model:
    """Keep the runs of the trial the launcher's rule chose (see :func:`chosen_trials`)."""
    trials = {_trial_key(r) for r in runs}
    sel = [r for r in runs if _trial_key(r) == chosen]
    return _Model(
        name=name,
        trials=len(trials),
        selected_trial=dict(sel[0].get("trial") or {}) if sel else {},
        done=[r for r in sel if r["status"] == "done" and r.get("primary_value") is not None],
        diverged=[r for r in sel if r["status"] == "diverged"],
        n_failed=sum(r["status"] == "failed" for r in runs),
    )


# ---------------------------------------------------------------------------- comparisons


def _compare(a: _Model, b: _Model, higher: bool, confidence: float, n_boot: int, seed: int,
             key: tuple) -> dict:
    out = {"a": a.name, "b": b.name, "diff": None, "ci": None, "p_value": None, "test": "none",
           "winner": None, "reason": "", "n_a": len(a.values), "n_b": len(b.values),
           "paired": False, "exact": None, "positive_means": f"{a.name} better"}
    if not len(a.values) or not len(b.values):
        missing = a.name if not len(a.values) else b.name
        out["reason"] = f"no finished runs of {missing}"
        return out
    sign = 1.0 if higher else -1.0
    paired = (len(set(a.seeds)) == len(a.seeds) == len(b.seeds) == len(set(b.seeds))
              and set(a.seeds) == set(b.seeds))
    va = sign * a.values
    vb = sign * b.values
    if paired:
        order_b = {s: i for i, s in enumerate(b.seeds)}
        vb = vb[[order_b[s] for s in a.seeds]]
    out["paired"] = paired
    out["diff"] = float(va.mean() - vb.mean())
    rng = st.rng_for(seed, "compare", *key, a.name, b.name)
    out["ci"] = st.bootstrap_diff_ci(va, vb, paired, confidence, n_boot, rng)
    if min(len(va), len(vb)) < MIN_TEST_SEEDS:
        out["reason"] = "too few seeds"
        return out
    if paired:
        p, exact = st.sign_flip_test(va - vb, rng)
        out["test"] = "paired sign-flip permutation"
    else:
        p, exact = st.two_sample_test(va, vb, rng)
        out["test"] = "two-sample permutation"
    out["p_value"], out["exact"] = p, exact
    lo, hi = out["ci"]
    alpha = round(1.0 - confidence, 12)
    if p < alpha and (lo > 0 or hi < 0):
        out["winner"] = a.name if out["diff"] > 0 else b.name
        out["reason"] = "significant"
    else:
        out["reason"] = "no significant difference"
    return out


def _resolve_pairs(pairs, names: Iterable[str]) -> list[tuple[str, str]]:
    names = sorted(set(names))
    if pairs == "all":
        return list(combinations(names, 2))
    return [tuple(p) for p in pairs if p[0] in names and p[1] in names]


# ---------------------------------------------------------------------------- time to target


def _val_best(runs: list[dict], curves: dict, higher: bool) -> float | None:
    vals = []
    for r in runs:
        if r.get("best_val") is not None:
            vals.append(float(r["best_val"]))
        else:
            vals += [p["val_primary"] for p in curves.get(r["run_id"], [])
                     if p.get("val_primary") is not None]
    if not vals:
        return None
    return max(vals) if higher else min(vals)


def _reaches(v, target: float, higher: bool) -> bool:
    tol = 1e-12 * max(1.0, abs(target))
    return v is not None and (v >= target - tol if higher else v <= target + tol)


def _time_to_target(run: dict, curve: list[dict], target: float | None, higher: bool):
    if target is None or run["status"] != "done":
        return st.INF, st.INF, st.INF
    for p in sorted(curve, key=lambda p: p["step"]):
        if _reaches(p.get("val_primary"), target, higher):
            return float(p["step"]), float(p["samples"]), float(p["seconds"])
    return st.INF, st.INF, st.INF


def _auc(curve: list[dict], best: float | None, higher: bool) -> float | None:
    pts = sorted((p["step"], p["val_primary"]) for p in curve if p.get("val_primary") is not None)
    if not pts or not best:
        return None
    x = np.array([s for s, _ in pts], dtype=float)
    v = np.array([val for _, val in pts], dtype=float)
    with np.errstate(divide="ignore"):
        y = v / best if higher else np.where(v > 0, best / v, 1.0)
    if len(x) == 1 or x[-1] == x[0]:
        return float(y.mean())
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def _ttt(m: _Model, curves: dict, target, higher, confidence, n_boot, seed, key) -> dict:
    runs = m.done + m.diverged
    times = np.array(
        [_time_to_target(r, curves.get(r["run_id"], []), target, higher) for r in runs],
        dtype=float).reshape(-1, 3)
    out: dict[str, Any] = {"reached": int(np.isfinite(times[:, 0]).sum()), "of": len(runs)}
    for j, name in enumerate(("steps", "samples", "seconds")):
        col = times[:, j]
        med = st.median(col) if len(col) else None
        rng = st.rng_for(seed, "ttt", *key, m.name, name)
        ci = st.bootstrap_median_ci(col, confidence, n_boot, rng)
        out[f"_{name}"] = (med, ci)  # raw, with +inf, for the verdict
        out[f"median_{name}"] = None if med is None or math.isinf(med) else med
        out[f"{name}_ci"] = None if ci is None else [None if math.isinf(x) else x for x in ci]
        out[f"{name}_ci_infinite"] = bool(ci is not None and any(math.isinf(x) for x in ci))
    out["censored_median"] = bool(out["_steps"][0] is not None and math.isinf(out["_steps"][0]))
    return out


# ---------------------------------------------------------------------------- one cell


def _cell(task, variant, vkey, train_size, runs, chosen, curves, pairs, target_fraction,
          confidence, n_boot, seed) -> dict:
    done = [r for r in runs if r["status"] == "done"]
    ref = next((r for r in done if r.get("primary_metric")), None) or next(
        (r for r in runs if r.get("primary_metric")), {})
    metric, higher = ref.get("primary_metric"), bool(ref.get("higher_is_better", True))
    sizes = Counter(r["train_examples"] for r in runs if r.get("train_examples") is not None)
    n = sizes.most_common(1)[0][0] if sizes else train_size
    key = (task, vkey, train_size)

    by_model: dict[str, list[dict]] = {}
    for r in runs:
        by_model.setdefault(r["model"], []).append(r)
    models = {name: _select(name, rs, chosen[name]) for name, rs in sorted(by_model.items())}

    best = _val_best([r for m in models.values() for r in m.done], curves, higher)
    if best is None:
        target = None
    else:
        target = best * target_fraction if higher else best / target_fraction

    model_rows = []
    for name, m in models.items():
        rng = st.rng_for(seed, "mean", *key, name)
        ci = st.bootstrap_mean_ci(m.values, confidence, n_boot, rng)
        params = [r["param_count"] for r in m.done if r.get("param_count") is not None]
        own = [r["steps_to_95"] for r in m.done if r.get("steps_to_95") is not None]
        aucs = [a for a in (_auc(curves.get(r["run_id"], []), best, higher) for r in m.done)
                if a is not None]
        model_rows.append({
            "model": name, "n_seeds": len(m.values), "n_diverged": len(m.diverged),
            "n_failed": m.n_failed, "trials": m.trials, "selected_trial": m.selected_trial,
            "mean": m.mean, "ci": list(ci) if ci else None, "values": m.values.tolist(),
            "seeds": m.seeds,
            "param_count": int(round(float(np.mean(params)))) if params else None,
            "ttt": _ttt(m, curves, target, higher, confidence, n_boot, seed, key),
            "own95_steps_median": float(np.median(own)) if own else None,
            "auc": float(np.mean(aucs)) if aucs else None,
            "run_ids": [r["run_id"] for r in m.done + m.diverged],
        })

    comparisons = [
        _compare(models[a], models[b], higher, confidence, n_boot, seed, key)
        for a, b in _resolve_pairs(pairs, models)
    ]
    ranked = sorted((m for m in models.values() if m.mean is not None),
                    key=lambda m: (-m.mean if higher else m.mean, m.name))
    winner = {"model": None, "margin": None, "significant": False}
    if ranked:
        winner["model"] = ranked[0].name
    if len(ranked) > 1:
        first, second = ranked[0], ranked[1]
        winner["margin"] = abs(first.mean - second.mean)
        c = next((c for c in comparisons if {c["a"], c["b"]} == {first.name, second.name}), None)
        c = c or _compare(first, second, higher, confidence, n_boot, seed, key)
        winner["significant"] = c["winner"] == first.name

    return {
        "task": task, "variant": variant, "variant_key": vkey, "train_size": train_size, "n": n,
        "primary_metric": metric, "higher_is_better": higher,
        "target": target, "best_val": best,
        "unequal_tuning": len({m.trials for m in models.values()}) > 1,
        "models": model_rows, "comparisons": comparisons, "winner": winner,
        "_models": models,
    }


# ---------------------------------------------------------------------------- scaling


def _error_scale(metric: str, higher: bool, values: np.ndarray):
    """(description, metric -> error, c_max) or None when no bounded error scale fits."""
    if not len(values):
        return None
    lo, hi = float(values.min()), float(values.max())
    if higher and metric.lower() in PERCENT_METRICS and lo >= 0 and hi <= 100:
        # Judged by name, not by the values: a BLEU of 0.8 at a tiny n is 0.8 out of 100.
        return f"1 - {metric}/100", (lambda m: 1.0 - m / 100.0), 1.0
    if higher and lo >= 0 and hi <= 1:
        return f"1 - {metric}", (lambda m: 1.0 - m), 1.0
    if higher and lo >= 0 and hi <= 100:
        return f"1 - {metric}/100", (lambda m: 1.0 - m / 100.0), 1.0
    if not higher and lo >= 0:
        return metric, (lambda m: m), max(1.0, hi)
    return None


def _model_curve(points: list[tuple[float, np.ndarray]], scale) -> dict:
    """points: (n, seed values) per size, sorted by n."""
    n = np.array([p[0] for p in points], dtype=float)
    fit: dict[str, Any] = {"method": "interpolation", "a": None, "b": None, "c": None,
                           "error": scale[0] if scale else None, "reason": None}
    if scale is None:
        fit["reason"] = "the metric has no bounded error scale"
    elif len(n) < 4:
        fit["reason"] = f"fewer than 4 sizes ({len(n)})"
    else:
        err = scale[1](np.array([p[1].mean() for p in points]))
        params = st.fit_power_law(n, err, scale[2])
        if params is None:
            fit["reason"] = "power-law fit failed"
        else:
            fit.update(method="power-law", a=params[0], b=params[1], c=params[2])
    return fit


@dataclass
class _Curve:
    """One model's error against n in one task variant, and its seed-bootstrap replicates."""

    n: np.ndarray  # sizes
    err: np.ndarray  # mean error per size
    fit: dict
    boot_err: np.ndarray  # (n_boot, sizes): means of seeds resampled within every size
    boot_params: np.ndarray | None  # (n_boot, 3) power-law refits of boot_err

    def on(self, grid: np.ndarray, boot: bool = False) -> np.ndarray:
        """Error curves on a log-n grid: one row (the fit) or one row per bootstrap replicate."""
        if self.fit["method"] == "power-law":
            p = (self.boot_params if boot
                 else np.array([[self.fit["a"], self.fit["b"], self.fit["c"]]]))
            return p[:, :1] * np.exp(-p[:, 1:2] * grid[None, :]) + p[:, 2:3]
        rows = self.boot_err if boot else self.err[None, :]
        logn = np.log(self.n)
        return np.stack([np.interp(grid, logn, row) for row in rows])


def _curve(points: list[tuple[float, np.ndarray]], scale, higher, n_boot, rng) -> _Curve:
    to_err = scale[1] if scale else (lambda m: -m if higher else m)
    fit = _model_curve(points, scale)
    cols = [v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1) for _, v in points]
    boot_err = to_err(np.stack(cols, axis=1))
    n = np.array([p[0] for p in points], dtype=float)
    boot_params = (st.profile_fit(n, boot_err, scale[2]) if fit["method"] == "power-law" else None)
    return _Curve(n, to_err(np.array([p[1].mean() for p in points])), fit, boot_err, boot_params)


def _crossover(a: str, b: str, ca: _Curve, cb: _Curve, confidence) -> dict:
    fa, fb = ca.fit, cb.fit
    method = fa["method"] if fa["method"] == fb["method"] else f"{fa['method']}/{fb['method']}"
    out = {"a": a, "b": b, "n": None, "ci": None, "no_crossover_share": None, "method": method,
           "direction": None, "better_throughout": None, "range": None, "text": ""}
    lo, hi = max(ca.n.min(), cb.n.min()), min(ca.n.max(), cb.n.max())
    if not lo < hi:
        out["text"] = "no crossover can be placed: fewer than two training sizes measured for both"
        return out
    out["range"] = [lo, hi]
    grid = np.linspace(math.log(lo), math.log(hi), st.CROSS_GRID)
    D = cb.on(grid) - ca.on(grid)  # positive: A has the lower error
    x_ab = st.first_crossing(grid, D, "a_to_b")[0]
    x_ba = st.first_crossing(grid, D, "b_to_a")[0]
    reps = st.first_crossing(grid, cb.on(grid, boot=True) - ca.on(grid, boot=True), "a_to_b")
    found = np.isfinite(reps)
    out["no_crossover_share"] = float(1.0 - found.mean())
    span = f"n = {lo:,.0f}–{hi:,.0f}"
    if np.isfinite(x_ab):
        out["n"] = float(math.exp(x_ab))
        out["direction"] = "a_to_b"
        ci = st.percentile_ci(np.exp(reps[found]), confidence)
        out["ci"] = [float(ci[0]), float(ci[1])]
        out["text"] = (
            f"{b} overtakes {a} at n ≈ {out['n']:,.0f} ({confidence:.0%} CI "
            f"{ci[0]:,.0f}–{ci[1]:,.0f}; {out['no_crossover_share']:.0%} of bootstrap replicates "
            f"found no crossover; {method})"
        )
        return out
    tol = 1e-12
    if np.isfinite(x_ba):
        out["direction"] = "b_to_a"
        out["reverse_n"] = float(math.exp(x_ba))
        out["text"] = (f"none in the measured range ({span}) in that direction: {b} is better at "
                       f"the small sizes and {a} overtakes it at n ≈ {out['reverse_n']:,.0f} "
                       f"({method})")
    elif np.all(D >= -tol) and np.any(D > tol):
        out["better_throughout"] = a
        out["text"] = f"none in the measured range ({span}): {a} is better throughout ({method})"
    elif np.all(D <= tol) and np.any(D < -tol):
        out["better_throughout"] = b
        out["text"] = f"none in the measured range ({span}): {b} is better throughout ({method})"
    else:
        out["text"] = f"none in the measured range ({span}): the curves coincide ({method})"
    return out


def _scaling(task, vkey, cells, pairs, confidence, n_boot, seed) -> dict:
    metric, higher = cells[0]["primary_metric"], cells[0]["higher_is_better"]
    per_model: dict[str, list[tuple[float, np.ndarray, dict]]] = {}
    for c in sorted(cells, key=lambda c: c["n"] if c["n"] is not None else math.inf):
        if c["n"] is None:
            continue
        for row in c["models"]:
            if row["n_seeds"]:
                per_model.setdefault(row["model"], []).append(
                    (float(c["n"]), c["_models"][row["model"]].values, row))
    everything = np.concatenate([v for pts in per_model.values() for _, v, _ in pts]) if per_model \
        else np.array([])
    scale = _error_scale(metric, higher, everything)
    models, curves = {}, {}
    for name, pts in per_model.items():
        rng = st.rng_for(seed, "scaling", task, vkey, name)
        curves[name] = _curve([(n, v) for n, v, _ in pts], scale, higher, n_boot, rng)
        models[name] = {
            "n": [int(n) if float(n).is_integer() else n for n, _, _ in pts],
            "mean": [row["mean"] for _, _, row in pts],
            "ci_lo": [row["ci"][0] if row["ci"] else None for _, _, row in pts],
            "ci_hi": [row["ci"][1] if row["ci"] else None for _, _, row in pts],
            "n_seeds": [row["n_seeds"] for _, _, row in pts],
            "fit": curves[name].fit,
        }
    crossovers = [_crossover(a, b, curves[a], curves[b], confidence)
                  for a, b in _resolve_pairs(pairs, per_model)]
    return {"task": task, "variant_key": vkey, "primary_metric": metric, "higher_is_better": higher,
            "error": scale[0] if scale else None, "models": models, "crossovers": crossovers}


# ---------------------------------------------------------------------------- verdicts


def _verdict(task, vkey, cells, scaling, a, b, confidence, target_fraction, n_boot, seed) -> dict:
    from .verdict import verdict_text

    both = [c for c in cells
            if {a, b} <= {row["model"] for row in c["models"] if row["n_seeds"]}]
    facts: dict[str, Any] = {"task": task, "variant_key": vkey, "a": a, "b": b,
                             "confidence": confidence, "target_fraction": target_fraction,
                             "min_seeds": MIN_VERDICT_SEEDS}
    if not both:
        facts["missing"] = True
        return {"task": task, "variant_key": vkey, "a": a, "b": b, "train_size": None, "n": None,
                "accuracy_claim": "inconclusive", "speed_claim": "inconclusive",
                "text": verdict_text(facts)}
    both.sort(key=lambda c: c["n"] if c["n"] is not None else math.inf)
    small = both[0]
    ma, mb = small["_models"][a], small["_models"][b]
    key = (task, vkey, small["train_size"])
    cmp = next((c for c in small["comparisons"] if (c["a"], c["b"]) == (a, b)), None) or _compare(
        ma, mb, small["higher_is_better"], confidence, n_boot, seed, key)
    rows = {row["model"]: row for row in small["models"]}
    enough = min(len(ma.values), len(mb.values)) >= MIN_VERDICT_SEEDS
    # Seeds that diverged have no test score: comparing the survivors would favour an unstable
    # model, so a claim resting on them stays inconclusive (and the text names them).
    diverged = {a: len(ma.diverged), b: len(mb.diverged)}
    enough = enough and not any(diverged.values())
    accuracy = "inconclusive"
    if enough and cmp["winner"] == a:
        accuracy = "holds"
    elif enough and cmp["winner"] == b:
        accuracy = "fails"

    ta, tb = rows[a]["ttt"], rows[b]["ttt"]
    enough_runs = min(ta["of"], tb["of"]) >= MIN_VERDICT_SEEDS

    def faster(x, y, unit):  # x's CI entirely below y's
        cx, cy = x[f"_{unit}"][1], y[f"_{unit}"][1]
        return cx is not None and cy is not None and cx[1] < cy[0]

    speed = "inconclusive"
    if small["target"] is not None and enough_runs:
        if faster(ta, tb, "steps") and faster(ta, tb, "seconds"):
            speed = "holds"
        elif faster(tb, ta, "steps") and faster(tb, ta, "seconds"):
            speed = "fails"

    cross = next((c for c in (scaling or {}).get("crossovers", []) if (c["a"], c["b"]) == (a, b)),
                 None)
    others = []
    for c in both[1:]:
        oc = next((x for x in c["comparisons"] if (x["a"], x["b"]) == (a, b)), None)
        if oc is not None:
            others.append({"n": c["n"], "train_size": c["train_size"], "winner": oc["winner"],
                           "reason": oc["reason"], "p_value": oc["p_value"], "diff": oc["diff"]})
    params = {m: rows[m]["param_count"] for m in (a, b)}
    facts.update(
        cell=small, cmp=cmp, rows=rows, accuracy=accuracy, speed=speed, crossover=cross,
        others=others, params=params, budget_tolerance=BUDGET_TOLERANCE,
        unequal_sizes=[c["n"] for c in both
                       if _trials_of(c, a) != _trials_of(c, b)],
        trials={m: rows[m]["trials"] for m in (a, b)},
        seeds={a: len(ma.values), b: len(mb.values)},
        diverged=diverged,
    )
    return {"task": task, "variant_key": vkey, "a": a, "b": b, "train_size": small["train_size"],
            "n": small["n"], "accuracy_claim": accuracy, "speed_claim": speed,
            "text": verdict_text(facts)}


def _trials_of(cell: dict, model: str) -> int | None:
    return next((r["trials"] for r in cell["models"] if r["model"] == model), None)


# ---------------------------------------------------------------------------- entry point


def analyze(runs: list[dict], curves: dict, *, pairs=DEFAULT_PAIRS, target_fraction: float = 0.95,
            confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> dict:
    """Cells, comparisons, time-to-target, data scaling and verdicts; see the module docstring.

    ``pairs``: "all" or a sequence of (A, B) model names; ``curves``: run_id -> curve points.
    """
    if pairs != "all":
        pairs = [tuple(p) for p in pairs]
    counts = {s: sum(r["status"] == s for r in runs)
              for s in ("done", "failed", "diverged", "running")}
    counted = [r for r in runs if r["status"] in ("done", "failed", "diverged")]
    variants = variant_keys(counted)
    groups: dict[tuple, list[dict]] = {}
    for r in counted:
        vkey = variants[r["run_id"]][1]
        groups.setdefault((r["task"], vkey, r.get("train_size")), []).append(r)

    per_model: dict[tuple, list[dict]] = {}  # (task, variant, model) -> runs of every size
    for r in counted:
        per_model.setdefault((r["task"], variants[r["run_id"]][1], r["model"]), []).append(r)
    chosen = {key: chosen_trials(rs) for key, rs in per_model.items()}

    cells = []
    for (task, vkey, size), rs in groups.items():
        variant = variants[rs[0]["run_id"]][0]
        picks = {m: chosen[(task, vkey, m)][size] for m in {r["model"] for r in rs}}
        cells.append(_cell(task, variant, vkey, size, rs, picks, curves, pairs, target_fraction,
                           confidence, n_boot, seed))
    cells.sort(key=lambda c: (c["task"], tuple(_sort_value(v) for v in c["variant"].values()),
                              c["variant_key"], c["n"] if c["n"] is not None else math.inf,
                              c["train_size"] if c["train_size"] is not None else math.inf))

    by_variant: dict[tuple, list[dict]] = {}
    for c in cells:
        by_variant.setdefault((c["task"], c["variant_key"]), []).append(c)
    scaling = [_scaling(t, v, cs, pairs, confidence, n_boot, seed)
               for (t, v), cs in by_variant.items()]
    verdict_pair = DEFAULT_PAIRS[0] if pairs == "all" or not pairs else pairs[0]
    verdicts = [
        _verdict(t, v, cs, s, *verdict_pair, confidence, target_fraction, n_boot, seed)
        for ((t, v), cs), s in zip(by_variant.items(), scaling)
    ]
    used = sorted({(c["a"], c["b"]) for cell in cells for c in cell["comparisons"]})
    return clean({
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "confidence": confidence, "target_fraction": target_fraction, "n_boot": n_boot,
        "seed": seed,
        "pairs": [list(p) for p in (used if pairs == "all" else pairs)],
        "verdict_pair": list(verdict_pair),
        "counts": counts, "cells": cells, "scaling": scaling, "verdicts": verdicts,
    }, drop_private=True)  # the cells' "_models" and the time-to-target's "_steps" stay inside
