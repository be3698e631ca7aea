"""How the analysis writes numbers: intervals, p-values, counts, FLOPs; +inf as "∞"."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

INF_MARK = "∞"


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


def ci(bounds: Sequence[float | None] | None, fmt: Callable[[Any], str] = num,
       infinite: bool = False) -> str:
    if not bounds:
        return ""
    lo, hi = (INF_MARK if (b is None and infinite) else fmt(b) for b in bounds)
    return f"[{lo}, {hi}]"


def pval(p: float | None) -> str:
    return "-" if p is None else (f"{p:.4f}" if p >= 0.0001 else f"{p:.1e}")


def size_label(n: float | None, train_size: Any) -> str:
    label = "full" if train_size is None else None
    return f"n = {count(n)}" + (f" ({label})" if label else "")


def signed(x: float | None) -> str:
    return "-" if x is None else f"{x:+.3g}"


def diff_text(cmp: dict[str, Any], which: str = "ci") -> str:
    """A comparison's difference and its interval, signed."""
    return f"{signed(cmp['diff'])} {ci(cmp[which], signed)}".strip()


def timed(summary: dict[str, Any], unit: str) -> tuple[float | None, list[float] | None]:
    """A time-to-target summary's median and CI in ``unit``, +inf where the JSON writes None: a
    run that never reached the target is +inf in every unit, so the steps' censoring says it."""
    med = summary[f"median_{unit}"]
    if med is None and summary["censored_median"]:
        med = math.inf
    bounds = summary[f"{unit}_ci"]
    return med, None if bounds is None else [math.inf if x is None else x for x in bounds]
