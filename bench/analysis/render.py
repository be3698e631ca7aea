"""The analysis as tables: rich for the terminal, GitHub markdown, and one line per comparison.

The renderers take the analysis dict as ``seqbench.analysis.analyze.analyze`` returns it (JSON
form: an infinite value is null with a flag).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .formatting import INF_MARK, ci, count, flops, num, pval, secs, signed
from .formatting import diff_text as _diff
from .formatting import size_label as _size
from .outcomes import Claim, Outcome

if TYPE_CHECKING:
    from rich.console import Console


def _ttt_cells(t: dict[str, Any]) -> tuple[str, str, str, str]:
    """Steps, seconds and FLOPs to the target (median [CI]) and how many runs reached it."""
    fmt = {"steps": count, "seconds": secs, "flops": flops}

    def cell(unit: str) -> str:
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


def _p_holm(p: float | None, adj: float | None) -> str:
    if p is None:
        return "-"
    return pval(p) + (f" ({pval(adj)})" if adj is not None and adj != p else "")


def _speed_cell(s: dict[str, Any] | None) -> str:
    if not s:
        return "-"
    if s["p_value"] is None or s["outcome"] == Outcome.NOT_MEASURABLE:
        result: str = s["result"]
        return result
    return f"{s['result']} (log-rank p {_p_holm(s['p_value'], s['p_holm'])})"


def _declared(c: dict[str, Any]) -> str:
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


def _notes(cells: list[dict[str, Any]], sizes: list[str]) -> list[str]:
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


def sections(result: dict[str, Any]) -> Iterator[dict[str, Any]]:
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
                if cmp["outcome"] == Outcome.INCONCLUSIVE and cmp["reason"]:
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


def _counts_line(result: dict[str, Any]) -> str:
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


def _claim_line(v: dict[str, Any]) -> str:
    accuracy = v["accuracy_claim"]
    if accuracy == Claim.BUDGET_LIMITED:
        accuracy += (f" (after {count(v['budget_steps'])} steps: "
                     f"{v['ahead'] + ' ahead' if v.get('ahead') else 'neither ahead'})")
    return (f"claim '{v['a']} beats {v['b']} on small data': {accuracy}; "
            f"'{v['a']} converges faster': {v['speed_claim']}")


def render_rich(result: dict[str, Any], console: Console) -> None:
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


def _md_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    def esc(x: Any) -> str:
        return str(x).replace("|", "\\|")

    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(esc(x) for x in r) + " |" for r in rows]
    return out


def render_markdown(result: dict[str, Any]) -> str:
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


def _brief_line(c: dict[str, Any], cmp: dict[str, Any]) -> str:
    """One comparison in one line: who is ahead, the difference and its interval, the test."""
    size = _size(c["n"], c["train_size"])
    diff = f"{cmp['a']} − {cmp['b']} {_diff(cmp)}" if cmp["diff"] is not None else ""
    test = (f"{cmp['test']}, Holm p = {pval(cmp['p_holm'])}" if cmp["p_holm"] is not None
            else cmp["reason"])
    if cmp["outcome"] in (Outcome.A_BETTER, Outcome.B_BETTER) and not cmp.get("budget_limited"):
        what = f"{cmp['winner']} ahead"
    elif cmp["outcome"] == Outcome.INCONCLUSIVE and not cmp.get("budget_limited"):
        what = "neither shown ahead"
    else:
        what = cmp["result"]
    return f"{size}: {what}" + (f", {diff} ({test})" if diff else "")


def render_brief(result: dict[str, Any]) -> str:
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


def _by_variant(result: dict[str, Any]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    order: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for c in result.get("cells", []):
        order.setdefault((c["task"], c["variant_key"]), []).append(c)
    return order
