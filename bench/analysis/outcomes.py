"""The analysis' vocabulary: what a comparison or a claim can come out as, the rules that say
when a test is run at all, and how a result dataclass becomes its JSON dict. Standard library
only: the renderers read it without numpy.

Every enum is a :class:`TextEnum`, so it is its string in JSON, f-strings and dict keys.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from .cells import TextEnum

VERDICT_FIRST = ("lstm", "transformer")  # the claim under test: first when both are present
MIN_TEST_SEEDS = 3  # fewer a side: no test (a t-test on 2 values rests on normality alone)
BUDGET_TOLERANCE = 0.10  # parameter counts differing by more than this are called out


PRIVATE: Any = {"private": True}  # field metadata: needed by later passes, never in the JSON


def public(obj: Any) -> dict[str, Any]:
    """A result dataclass as its JSON dict: its fields in order, the private ones left out."""
    return {f.name: getattr(obj, f.name) for f in fields(obj) if not f.metadata.get("private")}


class Outcome(TextEnum):
    """What one comparison of two models in one cell found (accuracy or speed)."""

    A_BETTER = "a_better"
    B_BETTER = "b_better"
    EQUIVALENT = "equivalent"  # the difference lies inside the practical margin
    A_FASTER = "a_faster"
    B_FASTER = "b_faster"
    NOT_MEASURABLE = "not_measurable"  # floor or ceiling: the task cannot separate them
    INCONCLUSIVE = "inconclusive"


# how an outcome reads in a result column when it names no model
OUTCOME_TEXT = {Outcome.EQUIVALENT: "equivalent", Outcome.INCONCLUSIVE: "inconclusive",
                Outcome.NOT_MEASURABLE: "not measurable at this budget"}


class Claim(TextEnum):
    """What a verdict says of the claim "A beats B" / "A converges faster" at its size."""

    HOLDS = "holds"
    FAILS = "fails"
    EQUIVALENT = "equivalent"
    NOT_MEASURABLE = "not measurable"
    BUDGET_LIMITED = "budget-limited"  # the runs ran out of steps: who is ahead, not who is better
    INCONCLUSIVE = "inconclusive"


class HolmFamily(TextEnum):
    """Which comparisons of a task variant one Holm adjustment spans."""

    SIZES = "sizes"  # one pair's comparisons at every size (a family per pair)
    PAIRS = "pairs"  # every asked pair's comparisons at every size
