"""Words and tables for the analysis: the plain-language verdict, rich tables, GitHub markdown.

``verdict_text`` is pure (used by ``analysis``); the renderers take the analysis dict as returned
by ``seqbench.analysis.analyze`` (JSON form: an infinite value is null with a flag).
"""

from __future__ import annotations

import math
from typing import Any, Iterator

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


def _accuracy_sentences(f: dict) -> list[str]:
    a, b, cell, cmp, rows = f["a"], f["b"], f["cell"], f["cmp"], f["rows"]
    ka, kb = f["seeds"][a], f["seeds"][b]
    out = [
        f"At the smallest training size with both models ({_size(cell['n'], cell['train_size'])}), "
        f"{a} scores {cell['primary_metric']} {_mean_ci(rows[a])} over {ka} seed{'s' * (ka != 1)} "
        f"and {b} {_mean_ci(rows[b])} over {kb} ({f['confidence']:.0%} bootstrap CIs)."
    ]
    d = f"{cmp['diff']:+.3g} {ci(cmp['ci'], lambda x: f'{x:+.3g}')}".strip()
    if cmp["reason"] == "too few seeds":
        out.append(f"With fewer than 3 seeds a side no test was run, so the claim that {a} beats "
                   f"{b} on small data is inconclusive.")
        return out
    test = f"{cmp['test']}, p = {pval(cmp['p_value'])}"
    # Why a significant test still leaves the claim open: too few seeds, or diverged seeds.
    if min(ka, kb) < f["min_seeds"]:
        few = f"only {min(ka, kb)} seeds (at least {f['min_seeds']} are needed for a verdict)"
    else:
        few = "seeds that diverged and have no test score"
    if cmp["winner"] == a:
        if f["accuracy"] == "holds":
            out.append(f"The difference, {d} in {a}'s favour, is significant ({test}): {a} beats "
                       f"{b} at this size, so the claim holds here.")
        else:
            out.append(f"{a} is ahead by {d} ({test}), but with {few} the claim stays "
                       f"inconclusive.")
    elif cmp["winner"] == b:
        if f["accuracy"] == "fails":
            out.append(f"{b} is significantly better, by {d} in {a}'s terms ({test}): the claim "
                       f"that {a} beats {b} on small data fails here.")
        else:
            out.append(f"{b} is ahead ({d} in {a}'s terms; {test}), but with {few} the claim is "
                       f"inconclusive.")
    else:
        out.append(f"The difference, {d} (positive favours {a}), is not significant ({test}): "
                   f"inconclusive.")
    floor = 2 / 2 ** min(ka, kb)
    if cmp.get("paired") and floor >= 1 - f["confidence"]:
        out.append(f"With {min(ka, kb)} paired seeds the smallest attainable p is {pval(floor)}, "
                   f"so no difference can be significant: run at least "
                   f"{_seeds_needed(1 - f['confidence'])} seeds.")
    return out


def _seeds_needed(alpha: float) -> int:
    k = 1
    while 2 / 2**k >= alpha:
        k += 1
    return k


def _others_sentence(f: dict) -> str | None:
    if not f["others"]:
        return None
    parts = []
    for o in f["others"]:
        what = (f"{o['winner']} significantly better (p = {pval(o['p_value'])})" if o["winner"]
                else (o["reason"] + (f" (p = {pval(o['p_value'])})" if o["p_value"] is not None
                                     else "")))
        parts.append(f"{_size(o['n'], o['train_size'])}: {what}")
    return "At the larger sizes: " + "; ".join(parts) + "."


def _ttt_phrase(name: str, t: dict) -> str:
    (ms, cs), (mt, ct) = t["_steps"], t["_seconds"]
    return (f"{name} {count(ms)} steps {ci(cs, count)} / {secs(mt)} s {ci(ct, secs)} "
            f"({t['reached']}/{t['of']} runs reached it)")


def _speed_sentences(f: dict) -> list[str]:
    a, b, cell, rows = f["a"], f["b"], f["cell"], f["rows"]
    if cell["target"] is None:
        return ["No validation target could be set (no finished runs with a validation score), so "
                "the claim that it converges faster is inconclusive."]
    ta, tb = rows[a]["ttt"], rows[b]["ttt"]
    out = [
        f"Time to the target ({cell['primary_metric']} {num(cell['target'])}, "
        f"{f['target_fraction']:.0%} of the best validation score at this size; medians with "
        f"{f['confidence']:.0%} CIs, never-reached runs counted as {INF_MARK}): "
        f"{_ttt_phrase(a, ta)}; {_ttt_phrase(b, tb)}."
    ]
    if f["speed"] == "holds":
        out.append(f"{a} converges faster in both steps and seconds (the CIs do not overlap): the "
                   f"claim holds here.")
    elif f["speed"] == "fails":
        out.append(f"{b} converges faster in both steps and seconds (the CIs do not overlap): the "
                   f"claim that {a} converges faster fails here.")
    elif math.isinf(ta["_steps"][0]) and math.isinf(tb["_steps"][0]):
        out.append("Neither model reached the target in at least half of its runs, so the speed "
                   "claim is inconclusive.")
    elif min(ta["of"], tb["of"]) < f["min_seeds"]:
        out.append(f"With fewer than {f['min_seeds']} runs a side the speed claim is inconclusive.")
    else:
        out.append("The CIs overlap in steps or in seconds (or the two disagree), so the speed "
                   "claim is inconclusive.")
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
    pa, pb = f["params"][a], f["params"][b]
    if pa and pb and abs(pa - pb) / min(pa, pb) > f["budget_tolerance"]:
        out.append(f"Parameter counts differ by more than {f['budget_tolerance']:.0%} ({a} "
                   f"{pa:,} vs {b} {pb:,}).")
    return out


def verdict_text(f: dict) -> str:
    """One paragraph per task variant from the facts ``analysis._verdict`` gathered."""
    head = f["task"] + ("" if f["variant_key"] == "default" else f" ({f['variant_key']})")
    if f.get("missing"):
        return (f"{head}: no training size has finished runs of both {f['a']} and {f['b']}; "
                f"no verdict.")
    parts = _accuracy_sentences(f)
    lost = {m: n for m, n in (f.get("diverged") or {}).items() if n}
    if lost:
        parts.append(
            "Diverged seeds (" + ", ".join(f"{m}: {n}" for m, n in lost.items())
            + ") have no test score, so the accuracy claim is left inconclusive here."
        )
    other = _others_sentence(f)
    if other:
        parts.append(other)
    parts += _context_sentences(f)
    parts += _speed_sentences(f)
    return f"{head}: " + " ".join(parts)


# ---------------------------------------------------------------------------- tables


def _ttt_cells(t: dict) -> tuple[str, str, str]:
    def median(unit):
        m = t[f"median_{unit}"]
        if m is None:
            return INF_MARK if t["censored_median"] and t["of"] else "-"
        return count(m) if unit == "steps" else secs(m)

    fmt = {"steps": count, "seconds": secs}
    steps, seconds = (
        f"{median(u)} {ci(t[f'{u}_ci'], fmt[u], t[f'{u}_ci_infinite'])}".strip()
        for u in ("steps", "seconds")
    )
    return steps, seconds, f"{t['reached']}/{t['of']}"


MODEL_COLUMNS = ("size", "model", "seeds", "mean [CI]", "trials", "params", "steps to target [CI]",
                 "seconds to target [CI]", "reached", "AUC")
COMPARE_COLUMNS = ("size", "A vs B", "diff [CI] (+: A better)", "p", "test", "result")


def sections(result: dict) -> Iterator[dict[str, Any]]:
    """Per task variant: a title, model rows, comparison rows, scaling lines and the verdict."""
    scaling = {(s["task"], s["variant_key"]): s for s in result.get("scaling", [])}
    verdicts = {(v["task"], v["variant_key"]): v for v in result.get("verdicts", [])}
    order: dict[tuple, list[dict]] = {}
    for c in result.get("cells", []):
        order.setdefault((c["task"], c["variant_key"]), []).append(c)
    for key, cells in order.items():
        first = cells[0]
        title = first["task"] + ("" if key[1] == "default" else f" ({key[1]})")
        direction = "higher" if first["higher_is_better"] else "lower"
        models, compares = [], []
        for c in cells:
            size = count(c["n"]) + (" (full)" if c["train_size"] is None else "")
            for m in c["models"]:
                trial = ", ".join(f"{k}={v}" for k, v in m["selected_trial"].items())
                steps, seconds, reached = _ttt_cells(m["ttt"])
                seeds = (str(m["n_seeds"])
                         + (f" (+{m['n_diverged']} div.)" if m["n_diverged"] else "")
                         + (f" (+{m['n_failed']} failed)" if m["n_failed"] else ""))
                models.append([
                    size, m["model"], seeds, f"{num(m['mean'])} {ci(m['ci'])}".strip(),
                    f"{m['trials']}" + (f" ({trial})" if trial else "")
                    + (" ≠" if c["unequal_tuning"] else ""),
                    count(m["param_count"]), steps, seconds, reached, num(m["auc"]),
                ])
            for cmp in c["comparisons"]:
                diff = "-" if cmp["diff"] is None else f"{cmp['diff']:+.3g} " + ci(
                    cmp["ci"], lambda x: f"{x:+.3g}")
                result_text = f"{cmp['winner']} better" if cmp["winner"] else cmp["reason"]
                compares.append([size, f"{cmp['a']} vs {cmp['b']}", diff.strip(),
                                 pval(cmp["p_value"]), cmp["test"], result_text])
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
            "models": models, "comparisons": compares, "scaling": lines,
            "verdict": v,
        }


def _counts_line(result: dict) -> str:
    c = result.get("counts", {})
    return (f"{c.get('done', 0)} done, {c.get('diverged', 0)} diverged, {c.get('failed', 0)} "
            f"failed, {c.get('running', 0)} running; {result['confidence']:.0%} CIs from "
            f"{result['n_boot']} bootstrap resamples (seed {result['seed']}); target = "
            f"{result['target_fraction']:.0%} of the best validation score per cell.")


def _claim_line(v: dict) -> str:
    return (f"claim '{v['a']} beats {v['b']} on small data': {v['accuracy_claim']}; "
            f"'{v['a']} converges faster': {v['speed_claim']}")


def render_rich(result: dict, console) -> None:
    from rich.table import Table

    console.print(_counts_line(result))
    if not result.get("cells"):
        console.print("no finished, failed or diverged runs to analyse")
    for sec in sections(result):
        table = Table(title=sec["title"], title_justify="left")
        for col in MODEL_COLUMNS:
            table.add_column(col, overflow="fold")
        for row in sec["models"]:
            table.add_row(*row)
        console.print(table)
        if sec["comparisons"]:
            table = Table(title="comparisons", title_justify="left")
            for col in COMPARE_COLUMNS:
                table.add_column(col, overflow="fold")
            for row in sec["comparisons"]:
                table.add_row(*row)
            console.print(table)
        for line in sec["scaling"]:
            console.print(f"  {line}", highlight=False)
        if sec["verdict"]:
            console.print(f"[bold]{_claim_line(sec['verdict'])}[/bold]", highlight=False)
            console.print(sec["verdict"]["text"], highlight=False)
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
    for sec in sections(result):
        lines += [f"## {sec['title']}", ""]
        lines += _md_table(MODEL_COLUMNS, sec["models"]) + [""]
        if sec["comparisons"]:
            lines += _md_table(COMPARE_COLUMNS, sec["comparisons"]) + [""]
        if sec["scaling"]:
            lines += [f"- {x}" for x in sec["scaling"]] + [""]
        if sec["verdict"]:
            lines += [f"**{_claim_line(sec['verdict'])}**", "", sec["verdict"]["text"], ""]
    return "\n".join(lines)
