"""What each model scored in one cell, and the comparisons asked of it: the rows of the analysis.
See docs/methods.md#cells."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..records import Curves
from . import stats as st
from .accuracy import Comparison, compare, guard_of
from .cells import Cell, ModelRuns
from .margins import scale_of
from .outcomes import public
from .speed import (
    LADDER, Span, SpeedSide, best_validation, ladder_rows, points, speed_side,
)
from .stopping import Budget, budget_of

Pair = tuple[str, str]


def present(pairs: Iterable[Sequence[str]], names: Iterable[str]) -> list[Pair]:
    """The pairs both of whose models are among ``names``."""
    names = set(names)
    return [(p[0], p[1]) for p in pairs if p[0] in names and p[1] in names]


def ranked(cell: Cell) -> list[ModelRuns]:
    """The cell's models with a mean, best first (ties by name)."""
    sign = -1.0 if cell.higher_is_better else 1.0
    return sorted((m for m in cell.models.values() if m.mean is not None),
                  key=lambda m: (sign * m.mean if m.mean is not None else 0.0, m.name))


@dataclass
class Settings:
    """What every cell of one analysis shares."""

    curves: Curves
    confidence: float
    n_boot: int
    seed: int


@dataclass
class ModelRow:
    """One model in one cell: its scores over seeds, its cost and its time to the target."""

    model: str
    n_seeds: int
    n_diverged: int
    n_failed: int
    n_tune: int
    trials: int
    selected_trial: dict[str, Any]
    tuning: dict[str, Any]
    mean: float | None
    sd: float | None
    ci: list[float] | None  # t-interval of the mean
    values: list[float]
    seeds: list[Any]
    param_count: int | None
    step_flops: int | None
    best_val_median: float | None
    val_se: float | None  # see docs/methods.md#validation-noise
    ttt: dict[str, Any]  # time to the first pair's target: speed.ttt_summary
    ladder: list[dict[str, Any]] | None
    own95_steps_median: float | None
    auc: float | None
    run_ids: list[str]

    def to_dict(self) -> dict[str, Any]:
        return public(self)


@dataclass
class CellSummary:
    """One cell: its JSON row (models, guards, targets) and its comparisons, typed until
    :meth:`finish` writes them into the row."""

    row: dict[str, Any]
    cell: Cell
    models: list[ModelRow] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)  # the asked pairs
    extra: dict[Pair, Comparison] = field(default_factory=dict)  # the winners' pair if not asked

    def all_comparisons(self) -> list[Comparison]:
        return self.comparisons + list(self.extra.values())

    def comparison(self, a: str, b: str) -> Comparison | None:
        """The asked comparison of A vs B, in that order."""
        return next((x for x in self.comparisons if (x.a, x.b) == (a, b)), None)

    def finish(self) -> dict[str, Any]:
        self.row["models"] = [m.to_dict() for m in self.models]
        self.row["comparisons"] = [c.to_dict() for c in self.comparisons]
        return self.row


class _CellWork:
    """The per-cell state the rows and comparisons share: best validation scores, the budget
    guard and each (model, target) time-to-target, computed once."""

    def __init__(self, cell: Cell, margin: float | None, s: Settings):
        self.cell, self.margin, self.s = cell, margin, s
        self.guard = guard_of(cell, margin)
        self.bests = {name: [b for b in (best_validation(r, s.curves, cell.higher_is_better)
                                         for r in m.done) if b is not None]
                      for name, m in cell.models.items()}
        self.budget: Budget = budget_of({n: m.done + m.diverged for n, m in cell.models.items()})
        self._sides: dict[tuple[str, float | None, Span | None], SpeedSide] = {}

    def reference(self, names: Iterable[str]) -> tuple[float | None, Span | None]:
        """The pair's target (median of its models' median best validation scores) and the
        step range its runs share, for the AUC."""
        names = list(names)
        medians = [float(np.median(self.bests[n])) for n in names if self.bests[n]]
        steps = [p[0] for n in names for r in self.cell.models[n].done
                 for p in points(self.s.curves, r)]
        return (float(np.median(medians)) if medians else None,
                (min(steps), max(steps)) if steps else None)

    def side(self, name: str, target: float | None, span: Span | None) -> SpeedSide:
        if (name, target, span) not in self._sides:
            s = self.s
            self._sides[name, target, span] = speed_side(
                self.cell.models[name], self.cell, s.curves, target, span, s.confidence,
                s.n_boot, s.seed)
        return self._sides[name, target, span]

    def compare(self, a: str, b: str) -> Comparison:
        target, span = self.reference((a, b))
        ma, mb = self.cell.models[a], self.cell.models[b]
        c = compare(self.side(a, target, span), self.side(b, target, span), ma, mb, self.cell,
                    self.margin, self.guard, target, self.s.confidence, self.s.seed)
        c.budget_limited = bool(self.budget.limited((a, b)))
        c.budget_steps = self.budget.steps
        c.diverged = ", ".join(f"{m.name}: {len(m.diverged)}" for m in (ma, mb) if m.diverged)
        return c


def summarize(cell: Cell, pairs: list[Pair], extra_pairs: list[Pair],
              margin_info: tuple[float | None, str], s: Settings) -> CellSummary:
    """The cell's model rows and its comparisons, before Holm (see accuracy.decide)."""
    margin, margin_source = margin_info
    work = _CellWork(cell, margin, s)
    asked = present(pairs, cell.models) + present(extra_pairs, cell.models)
    # the rows (and the plots) show the first compared pair's target; one model: its own
    target, horizon = work.reference(asked[0] if asked else list(cell.models))
    chance = cell.extras.get("chance")
    ladder = None
    if target is not None and chance is not None:
        ladder = [(lv, chance + lv * (target - chance)) for lv in LADDER]
    unit = scale_of(cell.primary_metric, [v for m in cell.models.values() for v in m.values],
                    cell.higher_is_better) == "unit"
    val_size = cell.extras.get("val_size")
    rows = [_model_row(m, cell, s, work.side(name, target, horizon), ladder, work.bests[name],
                       val_size if unit else None)
            for name, m in cell.models.items()]
    comparisons = [work.compare(a, b) for a, b in present(pairs, cell.models)]
    extra = {p: work.compare(*p) for p in present(extra_pairs, cell.models)}
    row = {
        "task": cell.task, "variant": cell.variant, "variant_key": cell.variant_key,
        "train_size": cell.train_size, "n": cell.n, "primary_metric": cell.primary_metric,
        "higher_is_better": cell.higher_is_better, "target": target,
        "target_pair": list(asked[0]) if asked else None,
        "ladder": [{"level": lv, "target": v} for lv, v in ladder] if ladder else None,
        "margin": margin, "margin_source": margin_source, "guard": work.guard,
        "budget": work.budget.as_dict(), "validation": _validation(val_size, unit),
        "unequal_tuning": len({m.trials for m in cell.models.values()}) > 1,
        "models": [], "comparisons": [], "winner": None,  # see finish()
    }
    return CellSummary(row, cell, rows, comparisons, extra)


def _validation(val_size: int | None, unit: bool) -> dict[str, Any] | None:
    """Validation noise: see docs/methods.md#validation-noise."""
    if not val_size:
        return None
    return {"size": val_size, "se_max": 0.5 / math.sqrt(val_size) if unit else None,
            "se": "binomial, sqrt(p(1-p)/n) at each model's median best validation score"
                  if unit else "not a proportion: no closed form"}


def _model_row(m: ModelRuns, cell: Cell, s: Settings, side: SpeedSide,
               ladder: list[tuple[float, float]] | None, bests: list[float],
               unit_val_size: int | None) -> ModelRow:
    values = np.array(m.values, dtype=float)
    ci = st.mean_ci(values, s.confidence)
    params = [r.param_count for r in m.done if r.param_count is not None]
    own = [r.steps_to_95 for r in m.done if r.steps_to_95 is not None]
    flops = [r.step_flops for r in m.done if r.step_flops]
    good = [a for a in side.auc if a is not None]
    med_best = float(np.median(bests)) if bests else None
    val_se = None
    if unit_val_size and med_best is not None and 0 <= med_best <= 1:
        val_se = math.sqrt(med_best * (1 - med_best) / unit_val_size)
    return ModelRow(
        model=m.name, n_seeds=len(values), n_diverged=len(m.diverged), n_failed=m.n_failed,
        n_tune=m.n_tune, trials=m.trials, selected_trial=m.selected_trial, tuning=m.tuning,
        mean=m.mean, sd=float(values.std(ddof=1)) if len(values) > 1 else None,
        ci=list(ci) if ci else None, values=values.tolist(), seeds=m.seeds,
        param_count=int(round(float(np.mean(params)))) if params else None,
        step_flops=int(np.median(flops)) if flops else None,
        best_val_median=med_best, val_se=val_se, ttt=side.ttt,
        ladder=ladder_rows(m, s.curves, ladder, cell.higher_is_better) if ladder else None,
        own95_steps_median=float(np.median(own)) if own else None,
        auc=float(np.mean(good)) if good else None,
        run_ids=[r.run_id for r in m.done + m.diverged],
    )


def winner(summary: CellSummary) -> dict[str, Any]:
    """The cell's best model and whether its lead over the second is significant."""
    order = ranked(summary.cell)
    out: dict[str, Any] = {
        "model": order[0].name if order else None, "margin": None, "significant": False,
        "against": None, "outcome": None, "p_holm": None, "budget_limited": False}
    if len(order) < 2:
        return out
    first, second = order[0], order[1]
    assert first.mean is not None and second.mean is not None
    out["margin"] = abs(first.mean - second.mean)
    out["against"] = second.name
    cmp = next((x for x in summary.all_comparisons() if {x.a, x.b} == {first.name, second.name}),
               None)
    if cmp is not None:
        out["significant"] = cmp.winner == first.name
        out["outcome"] = cmp.result
        out["p_holm"] = cmp.p_holm
        out["budget_limited"] = cmp.budget_limited
    return out
