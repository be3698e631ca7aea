"""Why a run stopped, and the budget guard it feeds: a cell whose runs mostly ran out of steps
answers "who is ahead after N steps", not "who is better at convergence".

Standard library only (the summary table and the dashboard's fallback may use it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..records import RunRecord
from .cells import TextEnum


class StopReason(TextEnum):
    PLATEAU = "plateau"  # early stopping ended it: its validation score had stopped improving
    STEP_CAP = "step cap"  # it trained until its step budget ran out
    DIVERGED = "diverged"
    UNKNOWN = "unknown"  # no step cap or step count recorded, or still running / failed


# what a trainer may record, in either spelling
RECORDED = {"plateau": StopReason.PLATEAU, "early stop": StopReason.PLATEAU,
            "early stopping": StopReason.PLATEAU, "step cap": StopReason.STEP_CAP,
            "max steps": StopReason.STEP_CAP, "budget": StopReason.STEP_CAP}


def stop_reason(run: RunRecord) -> StopReason:
    """A run's stop reason: the one the trainer recorded in its extras when there is one, else
    read from its step count against its step cap."""
    if run.status == "diverged":
        return StopReason.DIVERGED
    if run.status != "done":
        return StopReason.UNKNOWN
    recorded = (run.extras or {}).get("stop_reason")
    if isinstance(recorded, str) and recorded.lower().replace("_", " ") in RECORDED:
        return RECORDED[recorded.lower().replace("_", " ")]
    training = run.training
    cap, steps = training.get("max_steps"), run.steps
    if cap is None or steps is None:
        return StopReason.UNKNOWN
    if steps >= cap:
        return StopReason.STEP_CAP
    return StopReason.PLATEAU if training.get("patience") else StopReason.UNKNOWN


@dataclass
class ModelStops:
    """How one model's evaluation runs in a cell ended."""

    step_cap: int = 0
    plateau: int = 0
    other: int = 0  # diverged or unknown

    @property
    def runs(self) -> int:
        return self.step_cap + self.plateau + self.other

    @property
    def limited(self) -> bool:
        """Most of its finished runs ran out of steps rather than converging."""
        finished = self.step_cap + self.plateau
        return finished > 0 and 2 * self.step_cap > finished


@dataclass
class Budget:
    """The budget guard of one cell: per model, how its runs stopped; the step cap most had."""

    steps: int | None
    models: dict[str, ModelStops] = field(default_factory=dict)

    def limited(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` whose runs mostly hit the step cap."""
        return [n for n in names if n in self.models and self.models[n].limited]

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "limited": self.limited(self.models),
                "models": {n: {"step_cap": m.step_cap, "plateau": m.plateau, "other": m.other}
                           for n, m in self.models.items()}}


def budget_of(runs_by_model: dict[str, list[RunRecord]]) -> Budget:
    """The guard over each model's evaluation runs (finished and diverged)."""
    caps: Counter[Any] = Counter()
    models = {}
    for name, runs in runs_by_model.items():
        stops = ModelStops()
        for r in runs:
            why = stop_reason(r)
            if why is StopReason.STEP_CAP:
                stops.step_cap += 1
            elif why is StopReason.PLATEAU:
                stops.plateau += 1
            else:
                stops.other += 1
            cap = r.training.get("max_steps")
            if cap is not None:
                caps[cap] += 1
        models[name] = stops
    return Budget(caps.most_common(1)[0][0] if caps else None, models)
