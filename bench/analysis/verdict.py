"""The verdict in plain language, from the facts ``claims.verdict`` gathered: the four outcomes of
a comparison (A better, B better, equivalent within the practical margin, inconclusive), the
floor/ceiling guard ("not measurable at this budget"), the budget guard ("after N steps, A is
ahead of B", never "the claim holds"), the Holm-adjusted p-values and the log-rank/AUC speed
result. Pure: strings in, strings out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .formatting import INF_MARK, ci, count, flops, num, pval, secs, signed, timed
from .formatting import diff_text as _diff
from .formatting import size_label as _size
from .outcomes import BUDGET_TOLERANCE, MIN_TEST_SEEDS, Outcome

# the renderers, for the importers that know them from here
from .render import (  # noqa: F401
    COMPARE_COLUMNS, MODEL_COLUMNS, render_brief, render_markdown, render_rich, sections,
)


@dataclass
class Facts:
    """What the verdict on "A beats B" in one task variant words: the smallest size with both
    models (its cell row, comparison and model rows), the larger sizes and the crossover."""

    task: str
    variant_key: str
    a: str
    b: str
    confidence: float
    missing: bool = False  # no size has finished runs of both
    cell: dict[str, Any] = field(default_factory=dict)
    cmp: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # per model
    crossover: dict[str, Any] | None = None
    others: list[dict[str, Any]] = field(default_factory=list)  # the larger sizes' comparisons
    sizes: int = 0  # sizes with both models
    budget: dict[str, Any] = field(default_factory=dict)
    params: dict[str, int | None] = field(default_factory=dict)
    unequal_sizes: list[Any] = field(default_factory=list)  # where the trial counts differ
    trials: dict[str, int] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)


def _mean_ci(row: dict[str, Any]) -> str:
    return f"{num(row['mean'])} {ci(row['ci'])}".strip()




def _p_phrase(cmp: dict[str, Any]) -> str:
    out = f"{cmp['test']}, p = {pval(cmp['p_value'])}"
    if cmp.get("holm_family") and cmp["holm_family"] > 1:
        out += f", Holm-adjusted over {cmp['holm_scope']} {pval(cmp['p_holm'])}"
    if cmp.get("p_permutation") is not None:
        kind = "sign-flip" if cmp["paired"] else "permutation"
        exact = "exact " if cmp.get("permutation_exact") else ""
        out += f"; {exact}{kind} p = {pval(cmp['p_permutation'])}"
    return out


def _guard_sentence(cell: dict[str, Any], cmp: dict[str, Any]) -> str:
    g = cell["guard"]
    if cmp["guard"] == "floor":
        return (f"Both models' scores cannot be told from chance ({num(g['chance'])}, what a "
                f"trivial predictor scores: their t-intervals reach it): the comparison is not "
                f"measurable at this budget, whatever the difference ({_diff(cmp)}).")
    return (f"Both models sit within {num(g['ceiling_margin'])} of the best attainable score "
            f"({num(g['perfect'])}): the task does not separate them at this budget, so the "
            f"comparison is not measurable ({_diff(cmp)}).")


def _accuracy_sentences(f: Facts) -> list[str]:
    a, b, cell, cmp, rows = f.a, f.b, f.cell, f.cmp, f.rows
    ka, kb = f.seeds[a], f.seeds[b]
    where = _size(cell["n"], cell["train_size"])
    where = (f"At the smallest training size with both models ({where})" if f.sizes > 1
             else f"At {where}")
    out = [
        f"{where}, {a} scores {cell['primary_metric']} {_mean_ci(rows[a])} over {ka} "
        f"seed{'s' * (ka != 1)} "
        f"and {b} {_mean_ci(rows[b])} over {kb} ({f.confidence:.0%} t-intervals)."
    ]
    outcome = cmp["outcome"]
    if outcome == Outcome.NOT_MEASURABLE:
        out.append(_guard_sentence(cell, cmp))
        return out
    if cmp["p_value"] is None:
        out.append(f"With fewer than {MIN_TEST_SEEDS} seeds a side no test was run, so the claim "
                   f"that {a} beats {b} on small data is inconclusive.")
        return out
    test = _p_phrase(cmp)
    if cmp.get("budget_limited"):
        out.append(_budget_sentence(f))
    elif outcome == Outcome.A_BETTER:
        out.append(f"The difference, {_diff(cmp)} in {a}'s favour, is significant ({test}): {a} "
                   f"beats {b} at this size, so the claim holds here.")
    elif outcome == Outcome.B_BETTER:
        out.append(f"{b} is significantly better, by {_diff(cmp)} in {a}'s terms ({test}): the "
                   f"claim that {a} beats {b} on small data fails here.")
    elif outcome == Outcome.EQUIVALENT:
        level = cmp["equivalence_level"]
        out.append(f"The Holm-adjusted {level:.1%} interval of the difference, "
                   f"{ci(cmp['equivalence_ci'], signed)}, lies inside the practical margin "
                   f"±{cmp['margin']:g} (TOST p = {pval(cmp['tost_p'])}, Holm-adjusted "
                   f"{pval(cmp['tost_p_holm'])}): the two "
                   f"are equivalent at this size, so {a} does not beat {b} by a margin that "
                   f"matters.")
    elif "diverged" in cmp["reason"]:
        out.append(f"The difference is {_diff(cmp)} ({test}), but {cmp['reason']}: inconclusive.")
    else:
        out.append(f"The difference, {_diff(cmp)} (positive favours {a}; {test}), is "
                   f"inconclusive: {cmp['reason']}.")
    for m in cmp.get("at_floor") or []:
        out.append(f"{m}'s scores cannot be told from chance ({num(cell['guard']['chance'])}): "
                   f"it has not learnt the task at this budget.")
    return out


def _budget_sentence(f: Facts) -> str:
    """The accuracy outcome of a cell whose runs mostly ran out of steps: who is ahead after N
    steps (what it measured), never whether the claim holds."""
    a, b, cmp = f.a, f.b, f.cmp
    steps = count(cmp["budget_steps"])
    limited = " and ".join(f.budget["limited"])
    why = (f"most runs of {limited} ended at the step cap, not on a validation plateau, so this "
           f"is who is ahead after {steps} steps, not who is better at convergence: "
           "budget-limited")
    test = _p_phrase(cmp)
    if cmp["outcome"] in (Outcome.A_BETTER, Outcome.B_BETTER):
        ahead, behind = (a, b) if cmp["outcome"] == Outcome.A_BETTER else (b, a)
        return (f"After {steps} steps, {ahead} is ahead of {behind} ({_diff(cmp)} in {a}'s "
                f"terms; {test}); {why}.")
    if cmp["outcome"] == Outcome.EQUIVALENT:
        return (f"After {steps} steps the two are within ±{cmp['margin']:g} of each other "
                f"(Holm-adjusted {cmp['equivalence_level']:.1%} interval "
                f"{ci(cmp['equivalence_ci'], signed)}); {why}.")
    return (f"After {steps} steps neither is shown ahead ({_diff(cmp)}; {test}: "
            f"{cmp['reason']}); {why}.")


def _others_sentence(f: Facts) -> str | None:
    if not f.others:
        return None
    parts = []
    for o in f.others:
        c = o["cmp"]
        what = c["result"]
        if c["p_holm"] is not None and c["outcome"] != Outcome.NOT_MEASURABLE:
            what += f" (Holm p = {pval(c['p_holm'])})"
        parts.append(f"{_size(o['n'], o['train_size'])}: {what}")
    return "At the larger sizes: " + "; ".join(parts) + "."


def _ttt_phrase(name: str, t: dict[str, Any]) -> str:
    (ms, cs), (mt, ct) = timed(t, "steps"), timed(t, "seconds")
    cost = ""
    if "median_flops" in t:
        mf, cf = timed(t, "flops")
        value = flops(mf)
        unit = "FLOPs" if value[-1:].isalpha() else " FLOPs"  # "65.7 GFLOPs", "∞ FLOPs"
        cost = f" / {value}{unit} {ci(cf, flops)}".rstrip()
    return (f"{name} {count(ms)} steps {ci(cs, count)} / {secs(mt)} s {ci(ct, secs)}{cost} "
            f"({t['reached']}/{t['of']} runs reached it)")


def _speed_sentences(f: Facts) -> list[str]:
    a, b, cell, s = f.a, f.b, f.cell, f.cmp["speed"]
    if s["target"] is None:
        return ["No validation target could be set (no finished runs with a validation score), so "
                "the claim that it converges faster is inconclusive."]
    ta, tb = s["ttt"][a], s["ttt"][b]
    out = [
        f"Time to the target ({cell['primary_metric']} {num(s['target'])}, the median of the two "
        f"models' median best validation scores; "
        f"medians with {f.confidence:.0%} bootstrap CIs, never-reached runs counted as "
        f"{INF_MARK}): {_ttt_phrase(a, ta)}; {_ttt_phrase(b, tb)}."
    ]
    tests = []
    for unit in ("steps", "seconds"):
        lr = s.get(f"logrank_{unit}")
        if lr:
            tests.append(f"{unit} p = {pval(lr['p'])}")
    lr_text = f"log-rank in {' and '.join(tests)}" if tests else ""
    if s.get("p_holm") is not None and s["p_holm"] != s["p_value"]:
        lr_text += f", Holm-adjusted {pval(s['p_holm'])}"
    auc = (f"; AUC difference {signed(s['auc_diff'])} {ci(s['auc_ci'], signed)}".rstrip()
           if s.get("auc_diff") is not None else "")
    if f.cmp.get("budget_limited") and s["outcome"] != Outcome.NOT_MEASURABLE:
        steps = count(f.cmp["budget_steps"])
        who = (f"{s['faster']} reaches it sooner" if s["faster"] else
               f"neither reaches it measurably sooner ({s['reason']})")
        out.append(f"Within {steps} steps {who}" + (f" ({lr_text}{auc})" if lr_text else "")
                   + ": budget-limited, not a convergence speed.")
    elif s["outcome"] == Outcome.A_FASTER:
        out.append(f"{a} reaches it sooner ({lr_text}{auc}): {a} converges faster, so the claim "
                   f"holds here.")
    elif s["outcome"] == Outcome.B_FASTER:
        out.append(f"{b} reaches it sooner ({lr_text}{auc}): the claim that {a} converges faster "
                   f"fails here.")
    elif s["outcome"] == Outcome.NOT_MEASURABLE:
        out.append("Both models sit at the floor, so the target is a chance-level score: speed is "
                   "not measurable at this budget.")
    else:
        detail = f" ({lr_text}{auc})" if lr_text else ""
        out.append(f"The speed claim is inconclusive: {s['reason']}{detail}.")
    return out


def _context_sentences(f: Facts) -> list[str]:
    a, b = f.a, f.b
    out = []
    cross = f.crossover
    if cross is None:
        out.append("Data scaling: no crossover could be computed.")
    else:
        out.append(f"Data scaling: {cross['text']}.")
    ta, tb = f.trials[a], f.trials[b]
    if f.unequal_sizes:
        sizes = ", ".join(count(n) for n in f.unequal_sizes)
        out.append(f"Tuning budgets differ ({a} {ta} trial(s), {b} {tb} at the smallest size; "
                   f"unequal at n = {sizes}): the model searched more is favoured.")
    elif ta > 1:
        out.append(f"Each model had {ta} tuning trials per size, selected on validation only.")
    else:
        out.append("Each model ran a single configuration (no tuning sweep); untuned defaults can "
                   "decide small-data comparisons.")
    for m in (a, b):
        tuning = f.rows[m].get("tuning") or {}
        if tuning.get("lr_edge"):
            span = tuning.get("lr_range")
            where = f" ({span[0]:g} .. {span[1]:g})" if span else ""
            out.append(f"{m}'s selected learning rate sits at the {tuning['lr_edge']} edge of its "
                       f"searched range{where}: its optimum may lie beyond.")
    pa, pb = f.params[a], f.params[b]
    if pa and pb and abs(pa - pb) / min(pa, pb) > BUDGET_TOLERANCE:
        out.append(f"Parameter counts differ by more than {BUDGET_TOLERANCE:.0%} ({a} "
                   f"{pa:,} vs {b} {pb:,}).")
    g = f.cell["guard"]
    if g.get("note"):
        out.append(g["note"][0].upper() + g["note"][1:] + ".")
    v = f.cell.get("validation")
    if v:
        se = f", a binomial standard error of at most {num(v['se_max'])}" if v["se_max"] else ""
        out.append(f"Validation: {count(v['size'])} examples{se}.")
    return out


def verdict_text(f: Facts) -> str:
    """One paragraph per task variant from the facts ``analyze._verdict`` gathered."""
    head = f.task + ("" if f.variant_key == "default" else f" ({f.variant_key})")
    if f.missing:
        return (f"{head}: no training size has finished runs of both {f.a} and {f.b}; "
                f"no verdict.")
    parts = _accuracy_sentences(f)
    other = _others_sentence(f)
    if other:
        parts.append(other)
    parts += _context_sentences(f)
    parts += _speed_sentences(f)
    return f"{head}: " + " ".join(parts)
