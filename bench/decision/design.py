"""A decision's design: the stopping rule's parameters, frozen once evaluation begins.

Its error rate holds for the design it was planned with (docs/methods.md#sequential-decisions).
Run ids do not depend on these values, so the design is stored beside the runs, keyed by
everything else the decision is, and a later call that changes it is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

from ..analysis.sequential import N_MIN
from ..api import PluginError
from .request import Request

PREFIX = "decide-design:"  # the matrices-table id of a stored design


@dataclass(frozen=True)
class Design:
    """What the stopping rule is: its error rate, planned maximum, margin (None: the metric's
    default, itself fixed by the frozen tuning) and earliest look."""

    alpha: float
    max_seeds: int
    margin: float | None
    n_min: int = N_MIN

    @classmethod
    def of(cls, request: Request) -> "Design":
        return cls(alpha=request.alpha, max_seeds=request.max_seeds, margin=request.margin)


# Each design field as the command line spells it (n_min has no option: a code change).
OPTION = {"alpha": "--alpha", "max_seeds": "--max-seeds", "margin": "--margin", "n_min": None}


def decision_key(request: Request) -> str:
    """The decision's identity without its design: the matrix with its seed list left out (the
    seeds are range(max_seeds))."""
    matrix = asdict(request.matrix())
    matrix.pop("seeds")
    return hashlib.sha256(json.dumps(matrix, sort_keys=True, default=str).encode()).hexdigest()[:12]


def stored(store, request: Request) -> Design | None:
    row = store.matrix(PREFIX + decision_key(request))
    if row is None:
        return None
    known = {f.name for f in fields(Design)}
    return Design(**{k: v for k, v in row["design"].items() if k in known})


def freeze(store, request: Request, created_at: str) -> None:
    """Store the design (the first one stored stays: add_matrix never replaces)."""
    store.add_matrix(PREFIX + decision_key(request),
                     {"design": asdict(Design.of(request)), "task": request.task,
                      "models": list(request.models)}, created_at)


def check(store, request: Request) -> None:
    """PluginError (one line, naming the stored value) when the request changes a frozen design."""
    before = stored(store, request)
    if before is None:
        return
    now = Design.of(request)
    for f in fields(Design):
        old, new = getattr(before, f.name), getattr(now, f.name)
        if old == new:
            continue
        option = OPTION[f.name]
        if option is None:
            raise PluginError(
                f"this decision began evaluating with a stopping rule that looked first at "
                f"{old} seeds (this version looks at {new}); its error rate holds only for that "
                "design: start a new decision in another --db")
        was = f"{option} {old:g}" if old is not None else f"no {option} (the metric's default)"
        given = f"{option} {new:g}" if new is not None else f"no {option}"
        resume = f"{option} {old:g}" if old is not None else f"without {option}"
        raise PluginError(
            f"this decision's stopping rule was frozen with {was} when its evaluation began; "
            f"{given} would break its error rate: resume {resume}, or start a new decision in "
            "another --db")
