"""Reproduce one stored run from its stored configuration and say whether its numbers match.

A run's ``config`` holds everything that decides its result (model and task parameters, the
training recipe, size and seed; its ``run_id`` is the hash of it), so training it again needs
nothing but the record. On the same CPU build (same torch, same platform, same device) seqbench's
training path is deterministic and the numbers must match exactly; elsewhere floating-point
order differs and training drifts, so the primary metric is compared within a stated tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..api import PluginError
from ..records import Environment, RunRecord
from .plan import RunSpec

# Across hardware or library builds a re-trained run is another sample of the same distribution.
DEFAULT_TOLERANCE = 0.02


def find_run(runs: list[RunRecord], wanted: str) -> RunRecord:
    """The stored run whose id is ``wanted`` or starts with it (like a git hash)."""
    exact = [r for r in runs if r.run_id == wanted]
    found = exact or [r for r in runs if r.run_id.startswith(wanted)]
    if not found:
        raise PluginError(f"no run {wanted!r} in this database; `bench results` lists the run ids")
    if len(found) > 1:
        raise PluginError(f"run id prefix {wanted!r} matches {len(found)} runs; give more of it")
    return found[0]


def spec_from_record(record: RunRecord) -> RunSpec:
    """The run specification a stored record was trained from (its run_id must come back)."""
    config = record.config or {}
    try:
        spec = RunSpec(
            model=config["model"], task=config["task"], kind=record.kind,
            train_size=config["train_size"], seed=config["seed"],
            model_params=config["model_params"], task_params=config["task_params"],
            training=config["training"], matrix_id=record.matrix_id or "",
            trial=record.trial or {},
        )
    except KeyError as exc:
        raise PluginError(f"run {record.run_id} has no stored {exc.args[0]!r} to rerun from") from None
    if spec.run_id != record.run_id:
        raise PluginError(
            f"run {record.run_id}'s stored configuration hashes to {spec.run_id}: it was "
            "written by a different seqbench version and cannot be reproduced exactly"
        )
    return spec


def same_build(a: Environment | None, b: Environment | None) -> bool:
    """Same torch, Python, platform, device and thread count: the conditions for bit-identical
    training."""
    a, b = a or {}, b or {}
    keys = ("python", "platform", "device", "torch_threads")
    return (
        all(a.get(k) == b.get(k) for k in keys)
        and (a.get("versions") or {}).get("torch") == (b.get("versions") or {}).get("torch")
    )


@dataclass
class Comparison:
    metrics: list[tuple[str, float | None, float | None]] = field(default_factory=list)
    same_build: bool = False
    tolerance: float = DEFAULT_TOLERANCE
    status: tuple[str | None, str | None] = (None, None)

    @property
    def identical(self) -> bool:
        return self.status[0] == self.status[1] and all(
            _equal(a, b) for _, a, b in self.metrics)

    @property
    def primary_gap(self) -> float | None:
        _, a, b = self.metrics[0]
        return None if a is None or b is None else abs(a - b)

    @property
    def verdict(self) -> str:
        """'identical', 'within tolerance' or 'differs' (exact is required on the same build)."""
        if self.identical:
            return "identical"
        if self.same_build or self.status[0] != self.status[1] or self.primary_gap is None:
            return "differs"
        return "within tolerance" if self.primary_gap <= self.tolerance else "differs"


def _equal(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def compare(stored: RunRecord, fresh: RunRecord,
            tolerance: float = DEFAULT_TOLERANCE) -> Comparison:
    """Primary test metric first, then the other test metrics, best validation score, steps."""
    primary = stored.primary_metric
    s_test, f_test = stored.test or {}, fresh.test or {}
    names = [primary] if primary else []
    names += sorted(k for k in set(s_test) | set(f_test) if k != primary)
    metrics = [(f"test {k}", _num(s_test.get(k)), _num(f_test.get(k))) for k in names]
    metrics += [("best_val", _num(stored.best_val), _num(fresh.best_val)),
                ("steps", _num(stored.steps), _num(fresh.steps))]
    return Comparison(
        metrics=metrics,
        same_build=same_build(stored.environment, fresh.environment),
        tolerance=tolerance,
        status=(stored.status, fresh.status),
    )


def _num(value) -> float | None:
    return None if value is None else float(value)
