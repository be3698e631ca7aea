"""Quasi-random trials in a model's search space (scrambled Sobol points, Owen 1998), the
learning rate always in the first column (common random numbers). See docs/methods.md#tuning.
"""

from __future__ import annotations

import functools
import math

from ..api import Choice, Range

COLUMNS = 16  # columns of the shared sequence: room for any built-in space and then some
SEED = 20240607  # scrambling seed: fixed, so plans and run ids are reproducible


@functools.lru_cache(maxsize=8)
def _sobol(dims: int, log2_count: int):
    from scipy.stats import qmc

    points = qmc.Sobol(d=dims, scramble=True, seed=SEED).random_base2(log2_count)
    points.setflags(write=False)
    return points


def unit_points(start: int, count: int, dims: int):
    """Rows ``start`` .. ``start + count - 1`` of the shared scrambled Sobol sequence, as an
    array of shape (count, max(dims, COLUMNS)) in [0, 1)."""
    if count < 1:
        raise ValueError("count must be positive")
    width = max(dims, COLUMNS)
    # Drawn in powers of two (Sobol's balance holds for those); any prefix is still a
    # low-discrepancy sequence, so slicing the rows we need keeps that property.
    log2_count = max(0, math.ceil(math.log2(start + count)))
    return _sobol(width, log2_count)[start : start + count]


def columns(space: dict) -> list[str]:
    """The order in which a space's keys take the sequence's columns: lr first, then by name."""
    return sorted(space, key=lambda k: (k != "lr", k))


def draw(space: dict[str, Range | Choice], start: int, count: int) -> list[dict]:
    """``count`` trials (name -> value), the points ``start`` .. of the sequence mapped into
    ``space`` (each key by its own Range or Choice)."""
    keys = columns(space)
    rows = unit_points(start, count, len(keys))
    return [{k: space[k].at(float(row[i])) for i, k in enumerate(keys)} for row in rows]


def divisors_only(dist: Range | Choice, width: int) -> Range | Choice | None:
    """``dist`` restricted to values that divide ``width`` (attention heads must divide the
    model width when no parameter budget fits the width to them); None when none is left."""
    if isinstance(dist, Range):
        if not dist.integer:
            return dist
        values = tuple(range(int(dist.low), int(dist.high) + 1))
    else:
        values = dist.values
    kept = tuple(v for v in values if isinstance(v, int) and v > 0 and width % v == 0)
    if not kept:
        return None
    if isinstance(dist, Range) and kept == values:
        return dist
    return Choice(kept)
