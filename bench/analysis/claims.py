"""What the analysis concludes of the claim under test for one task variant: its accuracy and
speed claims at the smallest size both models ran, and the facts the verdict's prose words."""

from __future__ import annotations

import math
from typing import Any

from .cell_summary import CellSummary
from .outcomes import Claim, Outcome
from .scaling import Scaling
from .verdict import Facts, verdict_text

CLAIM = {Outcome.A_BETTER: Claim.HOLDS, Outcome.B_BETTER: Claim.FAILS,
         Outcome.EQUIVALENT: Claim.EQUIVALENT, Outcome.NOT_MEASURABLE: Claim.NOT_MEASURABLE,
         Outcome.INCONCLUSIVE: Claim.INCONCLUSIVE}
SPEED_CLAIM = {Outcome.A_FASTER: Claim.HOLDS, Outcome.B_FASTER: Claim.FAILS,
               Outcome.NOT_MEASURABLE: Claim.NOT_MEASURABLE,
               Outcome.INCONCLUSIVE: Claim.INCONCLUSIVE}


def claim(outcome: str, budget_limited: bool, table: dict[Outcome, Claim]) -> Claim:
    """A budget-limited cell measured who is ahead, so it neither holds nor fails."""
    if budget_limited and outcome != Outcome.NOT_MEASURABLE:
        return Claim.BUDGET_LIMITED
    return table[Outcome(outcome)]


def _trials_of(c: CellSummary, model: str) -> int | None:
    return next((r.trials for r in c.models if r.model == model), None)


def verdict(task: str, vkey: str, cells: list[CellSummary], scaling: Scaling,
            a: str, b: str, confidence: float) -> dict[str, Any]:
    """The verdict on "A beats B" for one task variant, with its prose."""
    both = [c for c in cells
            if {a, b} <= {row.model for row in c.models if row.n_seeds}]
    if not both:
        facts = Facts(task, vkey, a, b, confidence, missing=True)
        return {"task": task, "variant_key": vkey, "a": a, "b": b, "train_size": None, "n": None,
                "accuracy_claim": Claim.INCONCLUSIVE, "speed_claim": Claim.INCONCLUSIVE,
                "budget_steps": None, "ahead": None, "text": verdict_text(facts)}
    both.sort(key=lambda c: c.row["n"] if c.row["n"] is not None else math.inf)
    small = both[0]
    cmp = small.comparison(a, b)
    assert cmp is not None and cmp.speed is not None  # a cell with both compared the pair
    rows = {row.model: row for row in small.models}
    cross = scaling.crossover(a, b)
    others = [{"n": c.row["n"], "train_size": c.row["train_size"], "cmp": oc.to_dict()}
              for c in both[1:] if (oc := c.comparison(a, b)) is not None]
    model = small.cell.models
    facts = Facts(
        task, vkey, a, b, confidence, cell=small.row, cmp=cmp.to_dict(),
        rows={m: row.to_dict() for m, row in rows.items()},
        crossover=cross, others=others, sizes=len(both), budget=small.row["budget"],
        params={m: rows[m].param_count for m in (a, b)},
        unequal_sizes=[c.row["n"] for c in both if _trials_of(c, a) != _trials_of(c, b)],
        trials={m: rows[m].trials for m in (a, b)},
        seeds={a: len(model[a].values), b: len(model[b].values)},
    )
    return {"task": task, "variant_key": vkey, "a": a, "b": b,
            "train_size": small.row["train_size"], "n": small.row["n"],
            "accuracy_claim": claim(cmp.outcome, cmp.budget_limited, CLAIM),
            "speed_claim": claim(cmp.speed.outcome, cmp.budget_limited, SPEED_CLAIM),
            "budget_steps": cmp.budget_steps if cmp.budget_limited else None,
            "ahead": cmp.winner, "text": verdict_text(facts)}

