"""A decision in words (the first line answers the question), as a table, and as JSON."""

from __future__ import annotations

import math
import statistics

from .procedure import Decided
from .request import fmt_duration

PRETTY = {"lstm": "LSTM", "gru": "GRU", "rnn": "Elman RNN", "transformer": "Transformer",
          "seq2seq-attention": "seq2seq with attention"}


def pretty(model: str) -> str:
    return PRETTY.get(model, model)


def _points(metric: str, value: float, margin: float) -> str:
    """A difference in the metric's own units: points for shares (accuracy), plain otherwise."""
    if margin <= 0.0101 and abs(value) <= 1:
        return f"{value * 100:+.1f} {metric.replace('_', ' ')} points"
    return f"{value:+.3g} {metric.replace('_', ' ')}"


def _ci(metric: str, low: float, high: float, margin: float) -> str:
    scale = 100 if margin <= 0.0101 else 1
    fmt = (lambda v: f"{v * scale:+.1f}") if scale == 100 else (lambda v: f"{v:+.3g}")
    lo = "-∞" if not math.isfinite(low) else fmt(low)
    hi = "+∞" if not math.isfinite(high) else fmt(high)
    return f"{lo} … {hi}"


def speed(out: Decided, curves: dict[str, list[dict]]) -> dict:
    """Time-to-target per model (AlgoPerf-style): the target is the median over the compared
    models of each model's median best validation score; a run that never reaches it is
    censored (infinite), and a model's time is the median over its runs."""
    runs = out.runs
    bests = {m: [r.best_val for r in rs if r.best_val is not None] for m, rs in runs.items()}
    medians = [statistics.median(v) for v in bests.values() if v]
    if len(medians) < 2:
        return {}
    target = statistics.median(medians)
    higher = out.higher_is_better
    result = {"target": target, "models": {}}
    for model, rs in runs.items():
        times, steps = [], []
        for r in rs:
            hit = next((p for p in curves.get(r.run_id, []) if p.get("val_primary") is not None
                        and (p["val_primary"] >= target if higher else p["val_primary"] <= target)),
                       None)
            times.append(hit["seconds"] if hit else math.inf)
            steps.append(hit["step"] if hit else math.inf)
        per_step = [r.train_seconds / r.steps for r in rs if r.steps]
        result["models"][model] = {
            "seconds_to_target": _median(times), "steps_to_target": _median(steps),
            "reached": sum(math.isfinite(t) for t in times), "runs": len(times),
            "seconds_per_step": statistics.median(per_step) if per_step else None,
            "param_count": rs[0].param_count if rs else None,
        }
    return result


def _median(values: list[float]) -> float:
    return statistics.median(sorted(values)) if values else math.inf


def as_json(out: Decided, spd: dict, report: str | None) -> dict:
    d = out.decision
    models = list(out.request.models)
    verdict = "undecided"
    diff = {"estimate": None, "low": None, "high": None, "margin": out.margin}
    compared = []
    if d is not None:
        verdict = d.verdict if d.verdict in ("equivalent", "undecided") else d.best
        other, comp = _headline(out)
        compared = [d.best, other]
        diff.update(estimate=_finite(comp.estimate), low=_finite(comp.low), high=_finite(comp.high))
    elif len([m for m in models if m not in out.insane]) == 1:
        verdict = next(m for m in models if m not in out.insane)
    return {
        "models": models,
        "task": out.request.task,
        "metric": out.metric,
        "higher_is_better": out.higher_is_better,
        "verdict": verdict,
        "compared": compared,
        "difference": diff,
        "valid_at_any_stop": bool(d.valid_at_any_stop) if d is not None else True,
        "seeds": {m: len(out.scores.get(m, {})) for m in models},
        "diverged": {m: {"seeds": out.diverged.get(m, []), "of": len(out.finished.get(m, ()))}
                     for m in models},
        "seeds_at_verdict": d.n if d is not None else None,  # the look the verdict comes from
        "seconds": round(out.seconds, 1),
        "budget_seconds": out.request.budget_s,
        "stopped_because": out.stop,
        "more_seeds_estimate": getattr(d, "more_seeds", None) if d is not None else None,
        "chance": out.chance,
        "not_compared": out.insane,
        "tuning": {m: {"trials": out.trials.get(m, 0), "selected": out.tuned.get(m)} for m in models},
        "scores": {m: {str(s): v for s, v in sorted(out.scores.get(m, {}).items())} for m in models},
        "speed": _json_speed(spd),
        "outlook": {str(n): {m: statistics.mean(v) for m, v in row.items() if v}
                    for n, row in out.outlook.items()},
        "matrix_id": out.matrix_id,
        "report": report,
    }


def _finite(v):
    return v if v is not None and math.isfinite(v) else None


def _json_speed(spd: dict) -> dict:
    if not spd:
        return {}
    models = {m: {k: (_finite(v) if isinstance(v, float) else v) for k, v in row.items()}
              for m, row in spd["models"].items()}
    return {"target": spd["target"], "models": models}


def _headline(out: Decided):
    """(runner-up, Decision best - runner-up): the comparison the first line reports. The
    difference is oriented so that positive means the best model is better."""
    comps = out.decision.comparisons
    other = min(comps, key=lambda m: abs(comps[m].estimate) if math.isfinite(
        comps[m].estimate) else math.inf)
    return other, comps[other]


def diverged_clause(out: Decided) -> str:
    """Divergence as its own outcome: per model, the evaluation seeds on which training blew up
    (with a 95% Clopper-Pearson interval of its rate), never averaged into the scores."""
    from scipy.stats import binomtest

    parts = []
    for m, seeds in out.diverged.items():
        n = len(out.finished.get(m, ())) or len(seeds)
        ci = binomtest(len(seeds), n).proportion_ci(0.95)
        parts.append(f"the {pretty(m)} diverged on {len(seeds)} of {n} evaluation seeds "
                     f"(95% CI {ci.low:.0%}–{ci.high:.0%} of its runs)")
    if not parts:
        return ""
    return ("Warning: " + "; ".join(parts) + ". The scores compared are those of the seeds "
            "every model trained without diverging.")


def first_line(out: Decided, spd: dict) -> str:
    line = _verdict_line(out, spd)
    warning = diverged_clause(out)
    return f"{line} {warning}" if warning else line


def _verdict_line(out: Decided, spd: dict) -> str:
    d = out.decision
    seeds = min((len(v) for v in out.scores.values()), default=0)
    spent = fmt_duration(out.seconds)
    metric = out.metric.replace("_", " ") if out.metric else "the metric"
    sane = [m for m in out.request.models if m not in out.insane]
    if len(sane) < 2:
        bad = "; ".join(f"{pretty(m)}: {why}" for m, why in out.insane.items())
        if len(sane) == 1:
            return (f"Use the {pretty(sane[0])}: the other model could not learn this task at "
                    f"all ({bad}).")
        return f"No model learned this task ({bad}): check the data and the budget."
    if d is None and out.diverged:
        return ("Not decided yet: no evaluation seed has a score from every model; run the "
                "same command again, with a larger --budget, to continue.")
    if d is None:
        return (f"Not decided yet: no evaluation round finished in {spent} (tuning took the "
                f"budget: {', '.join(f'{pretty(m)} {n}' for m, n in out.trials.items())} "
                "trials); run the same command again, with a larger --budget, to continue.")
    other, comp = _headline(out)
    best = d.best
    ci = _ci(metric, comp.low, comp.high, out.margin)
    valid = "valid at any stopping time" if d.valid_at_any_stop else "past the planned maximum"
    # the look that decided (a round in flight then still finishes and is shown in the table)
    after = (f"after {d.n} seeds per model" + (f" ({seeds} trained)" if seeds > d.n else "")
             + f", {spent}")
    if d.verdict == "equivalent":
        return (f"Either will do: {' and '.join(pretty(m) for m in d.tied)} are equivalent "
                f"within ±{_margin(out)} (95% CI of the difference {ci}, {valid}) {after}.")
    if d.verdict == "undecided":
        more = d.more_seeds
        hint = (f"; about {more} more seeds per model would likely decide it" if more
                else "; more seeds are unlikely to decide it within the planned maximum")
        why = {"budget": "the budget ran out", "max seeds": "the planned maximum of seeds was "
               "reached", "interrupted": "it was interrupted"}.get(out.stop, out.stop)
        return (f"Not decided yet ({why}): the {pretty(best)} leads the {pretty(other)} by "
                f"{_points(metric, comp.estimate, out.margin)} (95% CI {ci}, {valid}) {after}"
                f"{hint}; run the same command again, with a larger --budget, to continue.")
    line = (f"Use the {pretty(best)}: {_points(metric, comp.estimate, out.margin)} over the "
            f"{pretty(other)} (95% CI {ci}, {valid}) {after}")
    rows = (spd or {}).get("models", {})
    if best in rows and other in rows:
        a, b = rows[best]["seconds_to_target"], rows[other]["seconds_to_target"]
        if math.isfinite(a) and math.isfinite(b) and a > 0:
            ratio = b / a
            # a ratio of medians over a few runs: described, not tested
            line += (f"; its median time to the validation target was {ratio:.1f}× shorter"
                     if ratio >= 1 else f"; the {pretty(other)}'s median time to the validation "
                     f"target was {1 / ratio:.1f}× shorter") + " (descriptive, not tested)"
        elif math.isfinite(a) and not math.isfinite(b):
            line += ("; only it reached the validation target in most of its runs "
                     "(descriptive, not tested)")
    return line + "."


def _margin(out: Decided) -> str:
    return f"{out.margin * 100:g} points" if out.margin <= 0.0101 else f"{out.margin:g}"


def print_table(out: Decided, spd: dict, console) -> None:
    from rich.table import Table

    table = Table(title=f"{out.request.task}: {out.metric} on the test split", title_justify="left")
    for col in ("model", "tuned (trials)", "score ± 95% CI", "seeds", "time to target",
                "s / step", "params"):
        table.add_column(col)
    rows = (spd or {}).get("models", {})
    from ..analysis.stats import mean_ci

    for m in out.request.models:
        values = list(out.scores.get(m, {}).values())
        if len(values) >= 2:
            lo, hi = mean_ci(values, 0.95)  # the analysis' own t-interval
            score = f"{(lo + hi) / 2:.4f} ± {(hi - lo) / 2:.4f}"
        elif values:
            score = f"{values[0]:.4f}"
        else:
            score = out.insane.get(m, "—")
        tuned = ", ".join(f"{k}={_short(v)}" for k, v in (out.tuned.get(m) or {}).items())
        row = rows.get(m, {})
        t = row.get("seconds_to_target")
        ttt = "—" if t is None else ("never" if not math.isfinite(t) else
                                     f"{t:.0f} s ({row['reached']}/{row['runs']} runs)")
        sps = row.get("seconds_per_step")
        seeds = str(len(values)) + (f" (+{len(out.diverged[m])} diverged)"
                                    if out.diverged.get(m) else "")
        table.add_row(pretty(m), f"{tuned} ({out.trials.get(m, 0)})", score, seeds, ttt,
                      f"{sps * 1000:.1f} ms" if sps else "—", f"{row.get('param_count') or '—'}")
    console.print(table)


def _short(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
