"""Words and tables for the analysis: the plain-language verdict, rich tables, GitHub markdown.

``verdict_text`` is pure (used by ``analyze``): it words the four outcomes of a comparison (A
better, B better, equivalent within the practical margin, inconclusive), the floor/ceiling guard
("not measurable at this budget"), the budget guard ("after N steps, A is ahead of B", never
"the claim holds"), the Holm-adjusted p-values and the log-rank/AUC speed result.
The renderers take the analysis dict as returned by ``seqbench.analysis.analyze.analyze`` (JSON
form: an infinite value is null with a flag).
"""

from __future__ import annotations

import math
from typing import Any, Iterator

from .outcomes import MIN_TEST_SEEDS

INF_MARK = "∞"


# ---------------------------------------------------------------------------- number formatting


def num(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "-"
    if math.isinf(v):
        return INF_MARK
    return f"{v:.{digits}f}" if abs(v) < 10 else f"{v:,.1f}"


def count(v: float | None) -> str:
    if v is None:
        return "-"
    return INF_MARK if math.isinf(v) else f"{v:,.0f}"


def secs(v: float | None) -> str:
    if v is None:
        return "-"
    return INF_MARK if math.isinf(v) else f"{v:,.1f}"


def flops(v: float | None) -> str:
    """FLOPs with an SI prefix: 3.1 G, 2.4 T."""
    if v is None:
        return "-"
    if math.isinf(v):
        return INF_MARK
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {prefix}"
    return f"{v:.3g}"


def ci(bounds, fmt=num, infinite: bool = False) -> str:
    if not bounds:
        return ""
    lo, hi = (INF_MARK if (b is None and infinite) else fmt(b) for b in bounds)
    return f"[{lo}, {hi}]"


def pval(p: float | None) -> str:
    return "-" if p is None else (f"{p:.4f}" if p >= 0.0001 else f"{p:.1e}")


def _size(n, train_size) -> str:
    label = "full" if train_size is None else None
    return f"n = {count(n)}" + (f" ({label})" if label else "")


# ---------------------------------------------------------------------------- the verdict


def _mean_ci(row: dict) -> str:
    return f"{num(row['mean'])} {ci(row['ci'])}".strip()


def signed(x: float | None) -> str:
    return "-" if x is None else f"{x:+.3g}"


def _diff(cmp: dict, which: str = "ci") -> str:
    return f"{signed(cmp['diff'])} {ci(cmp[which], signed)}".strip()


def _p_phrase(cmp: dict) -> str:
    out = f"{cmp['test']}, p = {pval(cmp['p_value'])}"
    if cmp.get("holm_family") and cmp["holm_family"] > 1:
        out += f", Holm-adjusted over {cmp['holm_scope']} {pval(cmp['p_holm'])}"
    if cmp.get("p_permutation") is not None:
        kind = "sign-flip" if cmp["paired"] else "permutation"
        exact = "exact " if cmp.get("permutation_exact") else ""
        out += f"; {exact}{kind} p = {pval(cmp['p_permutation'])}"
    return out


def _guard_sentence(cell: dict, cmp: dict) -> str:
    g = cell["guard"]
    if cmp["guard"] == "floor":
        return (f"Both models' scores cannot be told from chance ({num(g['chance'])}, what a "
                f"trivial predictor scores: their t-intervals reach it): the comparison is not "
                f"measurable at this budget, whatever the difference ({_diff(cmp)}).")
    return (f"Both models sit within {num(g['ceiling_margin'])} of the best attainable score "
            f"({num(g['perfect'])}): the task does not separate them at this budget, so the "
            f"comparison is not measurable ({_diff(cmp)}).")


def _accuracy_sentences(f: dict) -> list[str]:
    a, b, cell, cmp, rows = f["a"], f["b"], f["cell"], f["cmp"], f["rows"]
    ka, kb = f["seeds"][a], f["seeds"][b]
    where = _size(cell["n"], cell["train_size"])
    where = (f"At the smallest training size with both models ({where})" if f["sizes"] > 1
             else f"At {where}")
    out = [
        f"{where}, {a} scores {cell['primary_metric']} {_mean_ci(rows[a])} over {ka} "
        f"seed{'s' * (ka != 1)} "
        f"and {b} {_mean_ci(rows[b])} over {kb} ({f['confidence']:.0%} t-intervals)."
    ]
    outcome = cmp["outcome"]
    if outcome == "not_measurable":
        out.append(_guard_sentence(cell, cmp))
        return out
    if cmp["p_value"] is None:
        out.append(f"With fewer than {MIN_TEST_SEEDS} seeds a side no test was run, so the claim "
                   f"that {a} beats {b} on small data is inconclusive.")
        return out
    test = _p_phrase(cmp)
    if cmp.get("budget_limited"):
        out.append(_budget_sentence(f))
    elif outcome == "a_better":
        out.append(f"The difference, {_diff(cmp)} in {a}'s favour, is significant ({test}): {a} "
                   f"beats {b} at this size, so the claim holds here.")
    elif outcome == "b_better":
        out.append(f"{b} is significantly better, by {_diff(cmp)} in {a}'s terms ({test}): the "
                   f"claim that {a} beats {b} on small data fails here.")
    elif outcome == "equivalent":
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


def _budget_sentence(f: dict) -> str:
    """The accuracy outcome of a cell whose runs mostly ran out of steps: who is ahead after N
    steps (what it measured), never whether the claim holds."""
    a, b, cmp = f["a"], f["b"], f["cmp"]
    steps = count(cmp["budget_steps"])
    limited = " and ".join(f["budget"]["limited"])
    why = (f"most runs of {limited} ended at the step cap, not on a validation plateau, so this "
           f"is who is ahead after {steps} steps, not who is better at convergence: "
           "budget-limited")
    test = _p_phrase(cmp)
    if cmp["outcome"] in ("a_better", "b_better"):
        ahead, behind = (a, b) if cmp["outcome"] == "a_better" else (b, a)
        return (f"After {steps} steps, {ahead} is ahead of {behind} ({_diff(cmp)} in {a}'s "
                f"terms; {test}); {why}.")
    if cmp["outcome"] == "equivalent":
        return (f"After {steps} steps the two are within ±{cmp['margin']:g} of each other "
                f"(Holm-adjusted {cmp['equivalence_level']:.1%} interval "
                f"{ci(cmp['equivalence_ci'], signed)}); {why}.")
    return (f"After {steps} steps neither is shown ahead ({_diff(cmp)}; {test}: "
            f"{cmp['reason']}); {why}.")


def _others_sentence(f: dict) -> str | None:
    if not f["others"]:
        return None
    parts = []
    for o in f["others"]:
        c = o["cmp"]
        what = c["result"]
        if c["p_holm"] is not None and c["outcome"] != "not_measurable":
            what += f" (Holm p = {pval(c['p_holm'])})"
        parts.append(f"{_size(o['n'], o['train_size'])}: {what}")
    return "At the larger sizes: " + "; ".join(parts) + "."


def _ttt_phrase(name: str, t: dict) -> str:
    (ms, cs), (mt, ct) = t["_steps"], t["_seconds"]
    cost = ""
    if "_flops" in t:
        value = flops(t["_flops"][0])
        unit = "FLOPs" if value[-1:].isalpha() else " FLOPs"  # "65.7 GFLOPs", "∞ FLOPs"
        cost = f" / {value}{unit} {ci(t['_flops'][1], flops)}".rstrip()
    return (f"{name} {count(ms)} steps {ci(cs, count)} / {secs(mt)} s {ci(ct, secs)}{cost} "
            f"({t['reached']}/{t['of']} runs reached it)")


def _speed_sentences(f: dict) -> list[str]:
    a, b, cell, s = f["a"], f["b"], f["cell"], f["cmp"]["speed"]
    if s["target"] is None:
        return ["No validation target could be set (no finished runs with a validation score), so "
                "the claim that it converges faster is inconclusive."]
    ta, tb = s["ttt"][a], s["ttt"][b]
    out = [
        f"Time to the target ({cell['primary_metric']} {num(s['target'])}, the median of the two "
        f"models' median best validation scores; "
        f"medians with {f['confidence']:.0%} bootstrap CIs, never-reached runs counted as "
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
    if f["cmp"].get("budget_limited") and s["outcome"] != "not_measurable":
        steps = count(f["cmp"]["budget_steps"])
        who = (f"{s['faster']} reaches it sooner" if s["faster"] else
               f"neither reaches it measurably sooner ({s['reason']})")
        out.append(f"Within {steps} steps {who}" + (f" ({lr_text}{auc})" if lr_text else "")
                   + ": budget-limited, not a convergence speed.")
    elif s["outcome"] == "a_faster":
        out.append(f"{a} reaches it sooner ({lr_text}{auc}): {a} converges faster, so the claim "
                   f"holds here.")
    elif s["outcome"] == "b_faster":
        out.append(f"{b} reaches it sooner ({lr_text}{auc}): the claim that {a} converges faster "
                   f"fails here.")
    elif s["outcome"] == "not_measurable":
        out.append("Both models sit at the floor, so the target is a chance-level score: speed is "
                   "not measurable at this budget.")
    else:
        detail = f" ({lr_text}{auc})" if lr_text else ""
        out.append(f"The speed claim is inconclusive: {s['reason']}{detail}.")
    return out


def _context_sentences(f: dict) -> list[str]:
    a, b = f["a"], f["b"]
    out = []
    cross = f["crossover"]
    if cross is None:
        out.append("Data scaling: no crossover could be computed.")
    else:
        out.append(f"Data scaling: {cross['text']}.")
    ta, tb = f["trials"][a], f["trials"][b]
    if f["unequal_sizes"]:
        sizes = ", ".join(count(n) for n in f["unequal_sizes"])
        out.append(f"Tuning budgets differ ({a} {ta} trial(s), {b} {tb} at the smallest size; "
                   f"unequal at n = {sizes}): the model searched more is favoured.")
    elif ta > 1:
        out.append(f"Each model had {ta} tuning trials per size, selected on validation only.")
    else:
        out.append("Each model ran a single configuration (no tuning sweep); untuned defaults can "
                   "decide small-data comparisons.")
    for m in (a, b):
        tuning = f["rows"][m].get("tuning") or {}
        if tuning.get("lr_edge"):
            span = tuning.get("lr_range")
            where = f" ({span[0]:g} .. {span[1]:g})" if span else ""
            out.append(f"{m}'s selected learning rate sits at the {tuning['lr_edge']} edge of its "
                       f"searched range{where}: its optimum may lie beyond.")
    pa, pb = f["params"][a], f["params"][b]
    if pa and pb and abs(pa - pb) / min(pa, pb) > f["budget_tolerance"]:
        out.append(f"Parameter counts differ by more than {f['budget_tolerance']:.0%} ({a} "
                   f"{pa:,} vs {b} {pb:,}).")
    g = f["cell"]["guard"]
    if g.get("note"):
        out.append(g["note"][0].upper() + g["note"][1:] + ".")
    v = f["cell"].get("validation")
    if v:
        se = f", a binomial standard error of at most {num(v['se_max'])}" if v["se_max"] else ""
        out.append(f"Validation: {count(v['size'])} examples{se}.")
    return out


def verdict_text(f: dict) -> str:
    """One paragraph per task variant from the facts ``analyze._verdict`` gathered."""
    head = f["task"] + ("" if f["variant_key"] == "default" else f" ({f['variant_key']})")
    if f.get("missing"):
        return (f"{head}: no training size has finished runs of both {f['a']} and {f['b']}; "
                f"no verdict.")
    parts = _accuracy_sentences(f)
    other = _others_sentence(f)
    if other:
        parts.append(other)
    parts += _context_sentences(f)
    parts += _speed_sentences(f)
    return f"{head}: " + " ".join(parts)


# ---------------------------------------------------------------------------- tables


def _ttt_cells(t: dict) -> tuple[str, str, str, str]:
    """Steps, seconds and FLOPs to the target (median [CI]) and how many runs reached it."""
    fmt = {"steps": count, "seconds": secs, "flops": flops}

    def cell(unit):
        if f"median_{unit}" not in t:
            return "-"  # runs stored before FLOPs were counted
        m = t[f"median_{unit}"]
        if m is None:
            median = INF_MARK if t["censored_median"] and t["of"] else "-"
        else:
            median = fmt[unit](m)
        return f"{median} {ci(t[f'{unit}_ci'], fmt[unit], t[f'{unit}_ci_infinite'])}".strip()

    return cell("steps"), cell("seconds"), cell("flops"), f"{t['reached']}/{t['of']}"


MODEL_COLUMNS = ("size", "model", "seeds", "mean [t-CI]", "trials", "params",
                 "steps to target [CI]", "seconds to target [CI]", "FLOPs to target [CI]",
                 "reached", "AUC", "val SE")
COMPARE_COLUMNS = ("size", "A vs B", "diff [CI] (+: A better)", "test", "p (Holm)",
                   "equivalence: TOST p (Holm) [interval]", "result", "speed")


def _p_holm(p, adj) -> str:
    if p is None:
        return "-"
    return pval(p) + (f" ({pval(adj)})" if adj is not None and adj != p else "")


def _speed_cell(s: dict | None) -> str:
    if not s:
        return "-"
    if s["p_value"] is None or s["outcome"] == "not_measurable":
        return s["result"]
    return f"{s['result']} (log-rank p {_p_holm(s['p_value'], s['p_holm'])})"


def _declared(c: dict) -> str:
    """What a cell declares: the practical margin, the floor/ceiling guard, validation noise."""
    g = c.get("guard") or {}
    bits = []
    if c.get("margin") is not None:
        bits.append(f"margin ±{c['margin']:g} ({c['margin_source']})")
    if g.get("floor_rule"):
        bits.append(f"floor guard: a t-interval that reaches chance {num(g['chance'])}")
    if g.get("ceiling_margin") is not None:
        bits.append(f"ceiling guard: within {num(g['ceiling_margin'])} of {num(g['perfect'])}")
    if g.get("note"):
        bits.append(g["note"])
    v = c.get("validation")
    if v:
        se = f", binomial SE ≤ {num(v['se_max'])}" if v.get("se_max") else ""
        bits.append(f"validation {count(v['size'])} examples{se}")
    return "; ".join(bits)


def _notes(cells: list[dict], sizes: list[str]) -> list[str]:
    """The declarations once when every size shares them (else per size), and the targets."""
    declared = [_declared(c) for c in cells]
    if len(set(declared)) == 1:
        out = [declared[0]] if declared[0] else []
    else:
        out = [f"n = {z}: {d}" for z, d in zip(sizes, declared) if d]
    targets = [f"n = {z}: {num(c['target'])}" for z, c in zip(sizes, cells)
               if c.get("target") is not None]
    if targets:
        out.append("time-to-target targets: " + "; ".join(targets))
    return out


def sections(result: dict) -> Iterator[dict[str, Any]]:
    """Per task variant: a title, model rows, comparison rows, notes, scaling lines, verdict."""
    scaling = {(s["task"], s["variant_key"]): s for s in result.get("scaling", [])}
    verdicts = {(v["task"], v["variant_key"]): v for v in result.get("verdicts", [])}
    for key, cells in _by_variant(result).items():
        first = cells[0]
        title = first["task"] + ("" if key[1] == "default" else f" ({key[1]})")
        direction = "higher" if first["higher_is_better"] else "lower"
        models, compares, sizes = [], [], []
        for c in cells:
            size = count(c["n"]) + (" (full)" if c["train_size"] is None else "")
            sizes.append(size)
            for m in c["models"]:
                trial = ", ".join(f"{k}={v}" for k, v in m["selected_trial"].items())
                steps, seconds, cost, reached = _ttt_cells(m["ttt"])
                seeds = (str(m["n_seeds"])
                         + (f" (+{m['n_diverged']} div.)" if m["n_diverged"] else "")
                         + (f" (+{m['n_failed']} failed)" if m["n_failed"] else "")
                         + (f" (+{m['n_tune']} tuning)" if m.get("n_tune") else ""))
                models.append([
                    size, m["model"], seeds, f"{num(m['mean'])} {ci(m['ci'])}".strip(),
                    f"{m['trials']}" + (f" ({trial})" if trial else "")
                    + (" ≠" if c["unequal_tuning"] else ""),
                    count(m["param_count"]), steps, seconds, cost, reached, num(m["auc"]),
                    num(m.get("val_se")),
                ])
            for cmp in c["comparisons"]:
                diff = "-" if cmp["diff"] is None else _diff(cmp)
                equiv = ("-" if cmp["tost_p"] is None else
                         f"±{cmp['margin']:g}: {_p_holm(cmp['tost_p'], cmp['tost_p_holm'])} "
                         f"{ci(cmp['equivalence_ci'], signed)} "
                         f"({cmp['equivalence_level']:.1%})")
                result_text = cmp["result"]
                if cmp["outcome"] == "inconclusive" and cmp["reason"]:
                    result_text += f" ({cmp['reason']})"
                compares.append([size, f"{cmp['a']} vs {cmp['b']}", diff, cmp["test"],
                                 _p_holm(cmp["p_value"], cmp["p_holm"]), equiv, result_text,
                                 _speed_cell(cmp.get("speed"))])
        s = scaling.get(key, {})
        lines = []
        for name, m in s.get("models", {}).items():
            fit = m["fit"]
            if fit["method"] == "power-law":
                lines.append(f"{name}: {fit['error']} ≈ {fit['a']:.3g}·n^-{fit['b']:.3g} + "
                             f"{fit['c']:.3g} over {len(m['n'])} sizes")
            else:
                lines.append(f"{name}: interpolation in log n ({fit['reason']})")
        for x in s.get("crossovers", []):
            lines.append(f"crossover {x['a']} → {x['b']}: {x['text']}")
        v = verdicts.get(key)
        yield {
            "title": f"{title}: {first['primary_metric']} ({direction} is better)",
            "models": models, "comparisons": compares, "notes": _notes(cells, sizes),
            "scaling": lines,
            "verdict": v,
        }


def _counts_line(result: dict) -> str:
    c = result.get("counts", {})
    conf = result["confidence"]
    early = (f" ({c['early_stopped']} of them stopped early, before their step cap)"
             if c.get("early_stopped") else "")
    return (f"{c.get('done', 0)} done{early}, {c.get('diverged', 0)} diverged, "
            f"{c.get('failed', 0)} failed, {c.get('running', 0)} running. {conf:.0%} Student-t "
            "intervals over seeds; "
            "A vs B: paired t (Welch's when the seeds differ), Holm-adjusted over "
            f"{HOLM_OVER.get(str(result.get('holm')), 'the sizes of each pair and task')}, "
            "equivalence by TOST within the practical margin; a model is at the floor "
            "when its scores cannot be told from chance. Time to target: "
            f"{result.get('target_rule', '-')}, compared by log-rank. Medians of times and "
            f"crossovers: {result['n_boot']} bootstrap resamples (seed {result['seed']}).")


HOLM_OVER = {"sizes": "the sizes of each pair and task",
             "pairs": "every compared pair and size of each task"}
_NO_PAIR = ("Only one model has runs (or --pairs named none present): nothing to compare, "
            "no verdict.")


def _claim_line(v: dict) -> str:
    accuracy = v["accuracy_claim"]
    if accuracy == "budget-limited":
        accuracy += (f" (after {count(v['budget_steps'])} steps: "
                     f"{v['ahead'] + ' ahead' if v.get('ahead') else 'neither ahead'})")
    return (f"claim '{v['a']} beats {v['b']} on small data': {accuracy}; "
            f"'{v['a']} converges faster': {v['speed_claim']}")


def render_rich(result: dict, console) -> None:
    from rich.table import Table
    from rich.text import Text  # plain text: "[t-CI]" or a model's name is never rich markup

    console.print(_counts_line(result), markup=False)
    if not result.get("cells"):
        console.print("no finished, failed or diverged runs to analyse", markup=False)
    elif not result.get("pairs"):
        console.print(_NO_PAIR, markup=False)
    for sec in sections(result):
        for title, columns, rows in ((sec["title"], MODEL_COLUMNS, sec["models"]),
                                     ("comparisons", COMPARE_COLUMNS, sec["comparisons"])):
            if not rows:
                continue
            table = Table(title=Text(title), title_justify="left")
            for col in columns:
                table.add_column(Text(col), overflow="fold")
            for row in rows:
                table.add_row(*(Text(str(x)) for x in row))
            console.print(table)
        for line in sec["notes"] + sec["scaling"]:
            console.print(f"  {line}", highlight=False, markup=False)
        if sec["verdict"]:
            console.print(Text(_claim_line(sec["verdict"]), style="bold"), highlight=False)
            console.print(sec["verdict"]["text"], highlight=False, markup=False)
        console.print()


def _md_table(columns, rows) -> list[str]:
    def esc(x):
        return str(x).replace("|", "\\|")

    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(esc(x) for x in r) + " |" for r in rows]
    return out


def render_markdown(result: dict) -> str:
    lines = ["# seqbench analysis", "", _counts_line(result), ""]
    if not result.get("cells"):
        lines += ["No finished, failed or diverged runs to analyse.", ""]
    elif not result.get("pairs"):
        lines += [_NO_PAIR, ""]
    for sec in sections(result):
        lines += [f"## {sec['title']}", ""]
        lines += _md_table(MODEL_COLUMNS, sec["models"]) + [""]
        if sec["comparisons"]:
            lines += _md_table(COMPARE_COLUMNS, sec["comparisons"]) + [""]
        if sec["notes"] or sec["scaling"]:
            lines += [f"- {x}" for x in sec["notes"] + sec["scaling"]] + [""]
        if sec["verdict"]:
            lines += [f"**{_claim_line(sec['verdict'])}**", "", sec["verdict"]["text"], ""]
    return "\n".join(lines)


def _brief_line(c: dict, cmp: dict) -> str:
    """One comparison in one line: who is ahead, the difference and its interval, the test."""
    size = _size(c["n"], c["train_size"])
    diff = f"{cmp['a']} − {cmp['b']} {_diff(cmp)}" if cmp["diff"] is not None else ""
    test = (f"{cmp['test']}, Holm p = {pval(cmp['p_holm'])}" if cmp["p_holm"] is not None
            else cmp["reason"])
    if cmp["outcome"] in ("a_better", "b_better") and not cmp.get("budget_limited"):
        what = f"{cmp['winner']} ahead"
    elif cmp["outcome"] == "inconclusive" and not cmp.get("budget_limited"):
        what = "neither shown ahead"
    else:
        what = cmp["result"]
    return f"{size}: {what}" + (f", {diff} ({test})" if diff else "")


def render_brief(result: dict) -> str:
    """Per task variant and size, who is ahead with the interval of the difference: the short
    answer, one line a comparison."""
    lines = []
    conf = result["confidence"]
    for sec_key, cells in _by_variant(result).items():
        task, vkey = sec_key
        first = cells[0]
        lines.append(f"{task}{'' if vkey == 'default' else f' ({vkey})'}: "
                     f"{first['primary_metric']}, difference {conf:.0%} t-interval "
                     f"(+: the first model better)")
        for c in cells:
            lines += [f"  {_brief_line(c, cmp)}" for cmp in c["comparisons"]]
    return "\n".join(lines)


def _by_variant(result: dict) -> dict[tuple, list[dict]]:
    order: dict[tuple, list[dict]] = {}
    for c in result.get("cells", []):
        order.setdefault((c["task"], c["variant_key"]), []).append(c)
    return order
