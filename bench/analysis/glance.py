"""The analysis at a glance: short task labels, one sentence per verdict, one line per cell.

Shared by the dashboard's overview and ``bench analyze``'s default summary.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Iterable

from ..experiment.tuning import META
from .cells import variant_key

DATA_KEYS = ("data", "test_data", "val_data", "encoding", "min_freq", "format", "config")


def _data_name(data: Any) -> str | None:
    """'../shared/data/trec/train_5500.label' -> 'trec/train_5500'; 'digits' -> 'digits'."""
    if not isinstance(data, str) or not data:
        return None
    path = PurePath(data.rstrip("/"))
    stem = path.name.split(".")[0] if path.suffix else path.name
    parent = path.parent.name
    return f"{parent}/{stem}" if path.suffix and parent not in ("", ".", "..") else stem


def short_labels(variants: Iterable[tuple[str, dict[str, Any]]]) -> dict[tuple[str, str], str]:
    """(task, variant key) -> a short label: the variant's ``label`` parameter when it has one,
    else the task and its data set's name, with the other varying parameters only where two
    variants would otherwise read the same."""
    seen = {}
    for task, variant in variants:
        seen[(task, variant_key(variant))] = (task, variant)
    out: dict[tuple[str, str], str] = {}
    for key, (task, variant) in seen.items():
        if variant.get("label"):
            out[key] = str(variant["label"])
            continue
        name = _data_name(variant.get("data"))
        rest = {k: v for k, v in variant.items() if k not in DATA_KEYS}
        if name is None:
            out[key] = task if not variant else f"{task} [{variant_key(variant)}]"
        else:
            out[key] = f"{task} · {name}" + (f" [{variant_key(rest)}]" if rest else "")
    labels = list(out.values())
    for key, label in list(out.items()):  # two variants alike but for the data parameters
        if labels.count(label) > 1:
            out[key] = f"{key[0]} [{key[1]}]"
    return out


def stage(trial: dict[str, Any] | None) -> str:
    return "tuning" if (trial or {}).get("stage") == "tune" else "evaluation"


def tuned(trial: dict[str, Any] | None) -> str:
    """The hyperparameters a tuning sweep chose for this run, e.g. 'lr=0.003, dropout=0.25'."""
    hyper = {k: v for k, v in (trial or {}).items() if k not in META}
    return ", ".join(f"{k}={_num(v)}" for k, v in hyper.items())


def _num(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _sizes(ns: list[Any]) -> str:
    return ", ".join(f"{n:,}" if isinstance(n, int) else str(n) for n in ns)


def pair_outcomes(cells: list[dict[str, Any]], a: str, b: str) -> dict[str, list[Any]]:
    """Outcome -> the sizes (n) where the pair's comparison has it, oriented as a vs b."""
    out: dict[str, list[Any]] = {}
    for cell in sorted(cells, key=lambda c: c.get("n") or 0):
        for c in cell.get("comparisons", []):
            if {c["a"], c["b"]} != {a, b}:
                continue
            outcome = c.get("outcome") or "inconclusive"
            if c["a"] != a and outcome in ("a_better", "b_better"):
                outcome = "b_better" if outcome == "a_better" else "a_better"
            if c.get("budget_limited") and outcome in ("a_better", "b_better"):
                outcome = outcome.replace("better", "ahead")  # ran out of steps: ahead, no more
            out.setdefault(outcome, []).append(cell.get("n"))
    return out


def verdict_sentence(verdict: dict[str, Any], cells: list[dict[str, Any]]) -> str:
    """One sentence: where the verdict's pair differs in accuracy, size by size."""
    a, b = verdict["a"], verdict["b"]
    mine = [c for c in cells if c["task"] == verdict["task"]
            and c.get("variant_key") == verdict.get("variant_key")]
    outcomes = pair_outcomes(mine, a, b)
    if not outcomes:
        return f"no training size has finished runs of both {a} and {b}."
    words = {"a_better": f"{a} more accurate", "b_better": f"{b} more accurate",
             "a_ahead": f"{a} ahead when the steps ran out",
             "b_ahead": f"{b} ahead when the steps ran out",
             "equivalent": "equivalent", "not_measurable": "not measurable (floor or ceiling)",
             "inconclusive": "undecided"}
    parts = [f"{words.get(k, k)} at n = {_sizes(ns)}" for k, ns in outcomes.items()]
    speed = {"holds": f"; {a} reaches the target sooner",
             "fails": f"; {b} reaches the target sooner"}.get(str(verdict.get("speed_claim")), "")
    return f"{a} vs {b}: " + "; ".join(parts) + speed + "."


def headline(verdicts: list[dict[str, Any]]) -> str | None:
    """The study's answer in one sentence: how often the verdict pair's claim held."""
    if not verdicts:
        return None
    a, b = verdicts[0]["a"], verdicts[0]["b"]
    tally: dict[str, int] = {}
    for v in verdicts:  # no claim: the task has no size where both models finished
        claim = str(v.get("accuracy_claim") or "not compared")
        tally[claim] = tally.get(claim, 0) + 1
    order = ("holds", "fails", "equivalent", "not measurable", "budget-limited", "inconclusive",
             "not compared")
    counted = sorted(tally.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 9))
    parts = ", ".join(f"{k} in {n}" for k, n in counted)
    return (f"'{a} is more accurate than {b}' at each task's smallest size: {parts} of "
            f"{len(verdicts)} task{'s' if len(verdicts) > 1 else ''}.")


def cell_line(cell: dict[str, Any], label: str) -> str:
    """One line per cell: the two best models' means, the outcome between them."""
    ranked = sorted((m for m in cell.get("models", []) if m.get("mean") is not None),
                    key=lambda m: -m["mean"] if cell.get("higher_is_better", True) else m["mean"])
    head = label
    if not ranked:
        return f"{head}: no finished runs"
    best = ranked[0]
    text = f"{head}: {best['model']} {best['mean']:.3g}"
    if len(ranked) == 1:
        return text + f" ({best.get('n_seeds')} seeds, single model)"
    second = ranked[1]
    cmp = next((c for c in cell.get("comparisons", [])
                if {c["a"], c["b"]} == {best["model"], second["model"]}), None)
    result = (cmp or {}).get("result") or "not compared"
    holm = (cmp or {}).get("p_holm")
    p = holm if holm is not None else (cmp or {}).get("p_value")
    p_text = (f", {'Holm ' if holm is not None else ''}p={p:.2g}"
              if isinstance(p, float) and result != "equivalent" else "")
    return (f"{text} vs {second['model']} {second['mean']:.3g} "
            f"({best.get('n_seeds')}/{second.get('n_seeds')} seeds): {result}{p_text}")


def render_summary(result: dict[str, Any], width: int = 100) -> str:
    """``bench analyze``'s default: the headline, a line per cell, a sentence per verdict."""
    import textwrap

    def wrap(text: str, indent: str = "") -> list[str]:
        return textwrap.wrap(text, width, initial_indent=indent,
                             subsequent_indent=indent + "    ", break_on_hyphens=False) or [""]

    counts = result.get("counts", {})
    lines = wrap(f"{sum(counts.get(s, 0) for s in ('done', 'failed', 'diverged', 'running'))} "
                 f"runs: " + ", ".join(f"{counts.get(s, 0)} {s}"
                                      for s in ("done", "failed", "diverged", "running")))
    cells = result.get("cells", [])
    labels = short_labels((c["task"], c.get("variant") or {}) for c in cells)
    if result.get("verdicts"):
        lines += wrap(headline(result["verdicts"]) or "")
    variants: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for c in cells:
        variants.setdefault((c["task"], c["variant_key"]), []).append(c)
    for key, group in variants.items():
        label = labels.get(key, key[0])
        lines += [""] + wrap(f"{label} ({group[0].get('primary_metric')}, best two models per "
                             f"size)")
        for c in group:
            lines += wrap(cell_line(c, f"n={c['n']:,}" if isinstance(c.get("n"), int)
                                    else "n=?"), "  ")
    if result.get("verdicts"):
        lines += ["", "Verdicts:"]
        for v in result["verdicts"]:
            label = labels.get((v["task"], v.get("variant_key")), v["task"])
            lines += wrap(f"{label}: {verdict_sentence(v, cells)}", "  ")
    lines += ["", "bench analyze --full prints the tables; --markdown and --json everything."]
    return "\n".join(lines)
