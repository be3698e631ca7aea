"""The benchmark's statistics: stored run records in, one JSON-serialisable analysis dict out.

One module per question: ``cell_summary`` (what each model scored in a cell), ``accuracy`` (which
scores better), ``speed`` (which converges faster), ``scaling`` (how the error falls with n, and
the crossover), ``claims`` (the verdict on the claim under test). The methods, with their
references, are in docs/methods.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import Any

from ..records import REPORTED, Curves, RunRecord
from ..util import now
from .accuracy import FLOOR_RULE, Comparison, decide
from .cell_summary import CellSummary, Pair, Settings, present, ranked, summarize, winner
from .cells import Cell, clean, group
from .claims import verdict
from .margins import practical_margin
from .outcomes import MIN_TEST_SEEDS, VERDICT_FIRST, Claim, HolmFamily
from .scaling import scaling
from .speed import LADDER, TARGET_RULE
from .stopping import StopReason, stop_reason

__all__ = ["VERDICT_FIRST", "MIN_TEST_SEEDS", "Claim", "HolmFamily", "analyze", "default_pairs",
           "resolve_pairs"]


def default_pairs(models: Iterable[str]) -> list[Pair]:
    """Every pair of the models present, LSTM vs Transformer first when both are there."""
    names = sorted(set(models))
    pairs = list(combinations(names, 2))
    if set(VERDICT_FIRST) <= set(names):
        pairs.remove((min(VERDICT_FIRST), max(VERDICT_FIRST)))
        pairs.insert(0, VERDICT_FIRST)
    return pairs


def resolve_pairs(pairs: str | Sequence[Sequence[str]] | None,
                  models: Iterable[str]) -> list[Pair]:
    """"auto" and "all" (every pair of the models present, LSTM vs Transformer first: the
    verdict's pair) or explicit (A, B) pairs, in the order given."""
    if pairs is None or isinstance(pairs, str):
        return default_pairs(models)
    return [(p[0], p[1]) for p in pairs]


def _stopped_early(run: RunRecord) -> bool:
    """A finished run that early stopping ended before its step cap: it had converged (its
    validation score stopped improving) rather than run out of budget."""
    return stop_reason(run) is StopReason.PLATEAU


def _extra_pairs(cells: list[Cell], wanted: list[Pair]) -> list[Pair]:
    """The top two models of each cell, compared for the overview even when not asked."""
    extra = set()
    for c in cells:
        top = ranked(c)
        if len(top) > 1:
            pair = (min(top[0].name, top[1].name), max(top[0].name, top[1].name))
            if not {pair, pair[::-1]} & set(wanted):
                extra.add(pair)
    return sorted(extra)


def _holm(rows: list[CellSummary], holm: HolmFamily, confidence: float) -> None:
    """Holm over each family: per pair over the sizes, or every asked pair together; the
    winners' extra comparisons always form a family per pair."""
    families: dict[Any, list[Comparison]] = {}
    for row in rows:
        tagged = ([(x, holm is HolmFamily.PAIRS) for x in row.comparisons]
                  + [(x, False) for x in row.extra.values()])
        for x, shared in tagged:
            x.size = row.row["n"]
            key = "asked" if shared else frozenset((x.a, x.b))
            families.setdefault(key, []).append(x)
    for fam in families.values():
        decide(fam, confidence)


def _variant(cs: list[Cell], wanted: list[Pair], margins: dict[str, float] | None,
             holm: HolmFamily, s: Settings) -> tuple[list[CellSummary], dict[str, Any]]:
    """One task variant's cells, decided, and the practical margin it used."""
    values = [v for c in cs for m in c.models.values() for v in m.values]
    extras = next((c.extras for c in cs if c.extras), {})
    margin_info = practical_margin(cs[0].primary_metric, cs[0].higher_is_better, values,
                                   extras, margins)
    margin = {"metric": cs[0].primary_metric, "margin": margin_info[0], "source": margin_info[1]}
    extra = _extra_pairs(cs, wanted)
    rows = [summarize(c, wanted, extra, margin_info, s) for c in cs]
    _holm(rows, holm, s.confidence)
    for row in rows:
        row.row["winner"] = winner(row)
    return rows, margin


def analyze(runs: Sequence[RunRecord], curves: Curves, *,
            pairs: str | Sequence[Sequence[str]] | None = "auto", confidence: float = 0.95,
            n_boot: int = 2000, seed: int = 0, margins: dict[str, float] | None = None,
            holm: str = "sizes") -> dict[str, Any]:
    """Cells, comparisons, time-to-target, data scaling and verdicts (docs/methods.md).

    ``pairs``: "auto" or "all" (every pair of the models present, LSTM vs Transformer first) or
    a sequence of (A, B) model names; the first pair present gets the verdict. ``curves``:
    run_id -> curve points. ``margins``: metric name (or "*") -> practical margin delta.
    ``holm``: :class:`HolmFamily` ("sizes" or "pairs").
    """
    family = HolmFamily(holm)
    counts: dict[str, int] = {s: sum(r.status == s for r in runs) for s in REPORTED}
    counts["early_stopped"] = sum(_stopped_early(r) for r in runs)
    grouped = group(runs)
    names = sorted({name for c in grouped for name in c.models})
    wanted = resolve_pairs(pairs, names)
    by_variant: dict[tuple[str, str], list[Cell]] = {}
    for c in grouped:
        by_variant.setdefault((c.task, c.variant_key), []).append(c)
    settings = Settings(curves, confidence, n_boot, seed)
    used = present(wanted, names)
    cells: list[dict[str, Any]] = []
    margins_used, scalings, verdicts = {}, [], []
    for (task, vkey), cs in by_variant.items():
        rows, margins_used[task if vkey == "default" else f"{task} ({vkey})"] = _variant(
            cs, wanted, margins, family, settings)
        fits = scaling(task, vkey, rows, wanted, confidence, n_boot, seed)
        if used:
            verdicts.append(verdict(task, vkey, rows, fits, *used[0], confidence))
        scalings.append(fits.to_dict())
        cells += [r.finish() for r in rows]
    result: dict[str, Any] = clean({
        "generated_at": now(), "confidence": confidence, "n_boot": n_boot, "seed": seed,
        "pairs": [list(p) for p in used], "verdict_pair": list(used[0] if used else []),
        "margins": margins_used, "holm": family.value, "floor_rule": FLOOR_RULE,
        "target_rule": TARGET_RULE, "ladder": list(LADDER), "min_test_seeds": MIN_TEST_SEEDS,
        "counts": counts, "cells": cells, "scaling": scalings, "verdicts": verdicts,
    })
    return result
