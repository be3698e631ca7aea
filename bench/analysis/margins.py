"""The practical margin of a metric: the one rule ``bench analyze`` (equivalence, the ceiling
guard) and ``bench decide`` (its sequential rule) both use, so they agree on "equivalent"."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

PERCENT_METRICS = {"bleu", "chrf", "ter"}  # metrics on a 0-100 scale


def scale_of(metric: str | None, values: list[float], higher: bool) -> str | None:
    """"unit" for a metric in [0, 1] (accuracy, an error rate), "percent" for BLEU-like metrics
    in [0, 100], else None (a loss of 2.3 is on no declared scale)."""
    if not values:
        return None
    lo, hi = min(values), max(values)
    if (metric or "").lower() in PERCENT_METRICS and lo >= 0 and hi <= 100:
        return "percent"  # judged by name: a BLEU of 0.8 at a tiny n is 0.8 out of 100
    if lo >= 0 and hi <= 1:
        return "unit"
    if higher and lo >= 0 and hi <= 100:
        return "percent"
    return None


def practical_margin(metric: str | None, higher: bool, values: Iterable[float | None],
                     extras: dict[str, Any],
                     margins: dict[str, Any] | None) -> tuple[float | None, str]:
    """(delta, where it comes from): ``margins[metric]`` or ``margins["*"]`` if given, else 1 point
    of the metric's scale (0.01 in [0, 1], 1.0 in [0, 100]), else 1% of the declared
    chance-to-perfect range; None when nothing declares a scale."""
    margins = margins or {}
    finite = [v for v in values if v is not None and math.isfinite(v)]
    for key in (metric, "*"):
        if key in margins:
            return float(margins[key]), "given"
    scale = scale_of(metric, finite, higher)
    if scale == "unit":
        return 0.01, "default: 1 point of [0, 1]"
    if scale == "percent":
        return 1.0, "default: 1 point of [0, 100]"
    chance, perfect = extras.get("chance"), extras.get("perfect")
    if chance is not None and perfect is not None and chance != perfect:
        return 0.01 * abs(perfect - chance), "default: 1% of chance-to-perfect"
    return None, "no scale declared"
