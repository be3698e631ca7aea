"""The learning-rate schedule of a run, as a factor of the peak rate per optimizer step.

``wsd`` (warmup-stable-decay) by default; ``cosine`` and ``constant`` so stored runs reproduce.
See docs/methods.md#learning-rate-schedule. Standard library only: the plan checks a recipe with
it, the trainer steps it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Mapping


class Kind(str, Enum):
    WSD = "wsd"
    COSINE = "cosine"
    CONSTANT = "constant"


# The recipe keys only some schedules read: for the others they decide nothing (nor a run's id).
READS = {Kind.WSD: ("warmup_steps", "cooldown"), Kind.COSINE: ("warmup",),
         Kind.CONSTANT: ("warmup",)}
ALL_READ = frozenset(k for keys in READS.values() for k in keys)
MIN_COOLDOWN_VALIDATIONS = 2  # a cooldown spans at least this many validations


def unread_keys(recipe: Mapping) -> frozenset[str]:
    """The schedule keys of ``recipe`` that its schedule does not read (none if it names no
    schedule: a partial recipe)."""
    if "schedule" not in recipe:
        return frozenset()
    return ALL_READ - set(READS[Kind(recipe["schedule"])])


@dataclass
class Schedule:
    kind: Kind
    max_steps: int
    warmup: int  # steps of linear warm-up
    val_every: int = 1
    cooldown_share: float = 0.0  # wsd: the cooldown's length as a share of the steps before it
    cooldown_start: int | None = None  # wsd: the step its cooldown started (None: not yet)
    cooldown_steps: int = 0
    cause: str | None = None  # wsd: what started the cooldown, "plateau" or "step cap"

    @classmethod
    def from_recipe(cls, cfg: Mapping) -> "Schedule":
        kind = Kind(cfg["schedule"])
        total = cfg["max_steps"]
        if kind is not Kind.WSD:
            return cls(kind, total, int(cfg["warmup"] * total))
        val_every = min(cfg["val_every"], total)
        out = cls(kind, total, 0, val_every, cfg["cooldown"])
        # Warm-up ends at the latest where the cap's cooldown begins.
        out.warmup = min(cfg["warmup_steps"], out.cap_start)
        return out

    def _length(self, start: float) -> int:
        """Cooldown steps for one starting at ``start``: its share of them, at least two
        validations, in whole validations (so its last step is validated)."""
        v = self.val_every
        want = max(self.cooldown_share * start, MIN_COOLDOWN_VALIDATIONS * v)
        return min(v * math.ceil(want / v - 1e-9), self.max_steps)

    @property
    def cap_start(self) -> int:
        """wsd: the step where the cooldown starts if no plateau started it before: its share of
        the steps before it ends exactly at ``max_steps``."""
        return self.max_steps - self._length(self.max_steps / (1 + self.cooldown_share))

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_start is not None

    def start_cooldown(self, step: int, cause: str = "plateau") -> None:
        """Start the cooldown after ``step`` optimizer steps (no-op if it has started)."""
        if self.cooldown_start is None:
            self.cooldown_start, self.cause = step, cause
            self.cooldown_steps = min(self._length(step), self.max_steps - step)

    @property
    def end(self) -> int | None:
        """wsd: the step the run ends (after its cooldown), None while it has not started."""
        return None if self.cooldown_start is None else self.cooldown_start + self.cooldown_steps

    def factor(self, step: int) -> float:
        """The rate of optimizer step ``step`` (0-based) as a share of the peak."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.kind is Kind.CONSTANT:
            return 1.0
        if self.kind is Kind.COSINE:
            done = min(1.0, (step - self.warmup) / max(1, self.max_steps - self.warmup))
            return 0.5 * (1 + math.cos(math.pi * done))
        if self.cooldown_start is None and step >= self.cap_start:
            self.start_cooldown(self.cap_start, "step cap")
        if self.cooldown_start is None or step < self.cooldown_start:
            return 1.0
        done = (step - self.cooldown_start) / max(1, self.cooldown_steps)
        return max(0.0, 1.0 - math.sqrt(min(1.0, done)))
