"""Learning curves as bands: the seeds' mean and t-interval on a common x grid."""

from __future__ import annotations

import math
from typing import Any

GRID_POINTS = 200  # at most this many x values per band


def rounded(x: Any, digits: int = 6) -> float | None:
    """Round to ``digits`` significant digits (the page needs no more; payloads stay small)."""
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def band(series: list[tuple[list[float], list[float]]], confidence: float) -> dict | None:
    """Mean and t-interval over seeds on a common x grid (``analysis.stats.mean_ci``).

    The grid starts where every seed has its first point and ends at the longest seed; a seed
    that stopped earlier keeps its last value from there on, so the mean never jumps where a
    seed drops out. The CI needs at least two seeds."""
    import numpy as np

    from ..analysis.stats import mean_ci

    arrays = [(np.asarray(x, float), np.asarray(y, float)) for x, y in series if len(x)]
    if not arrays:
        return None
    start = max(float(x.min()) for x, _ in arrays)
    xs = np.unique(np.concatenate([x for x, _ in arrays]))
    xs = xs[xs >= start]
    if len(xs) > GRID_POINTS:
        xs = np.linspace(xs[0], xs[-1], GRID_POINTS)
    Y = np.empty((len(arrays), len(xs)))  # (seeds, grid)
    for i, (x, y) in enumerate(arrays):
        order = np.argsort(x, kind="stable")
        Y[i] = np.interp(xs, x[order], y[order])
    mean = Y.mean(axis=0)
    ci = mean_ci(Y.T, confidence)  # the analysis' own t-interval, at every x
    lo, hi = (([rounded(v) for v in ci[0]], [rounded(v) for v in ci[1]]) if ci is not None
              else (None, None))
    return {"x": [rounded(v) for v in xs], "mean": [rounded(v) for v in mean], "lo": lo, "hi": hi,
            "k": len(arrays)}
