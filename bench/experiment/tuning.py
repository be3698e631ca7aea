"""The equal tuning budget: every model gets the same learning-rate trials, chosen on validation.

Stage one runs each trial on the first ``seeds`` seeds; the trial with the best mean validation
score is selected per model and cell (task variant x training size, or per task variant with
``per = "task"``); stage two runs the selected trial on the remaining seeds. Test scores never
take part in the choice. The analysis and the summary table apply the same rule
(:func:`chosen_trials`) to the stored runs, so they count exactly the seeds of the trial the
launcher chose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from ..api import Param, PluginError, resolve_params

TUNING: dict[str, Param] = {
    "seeds": Param(1, "seeds each trial runs on before selection", minimum=1),
    "per": Param("size", "select per training size or once per task variant", ("size", "task")),
}


@dataclass(frozen=True)
class Tuning:
    lr: tuple[float, ...]
    seeds: int = 1
    per: str = "size"

    @classmethod
    def parse(cls, table: dict) -> "Tuning":
        table = dict(table)
        lrs = table.pop("lr", None)
        if not isinstance(lrs, list) or len(lrs) < 2:
            raise PluginError("[tuning] needs lr = [a list of at least two learning rates]")
        try:
            values = tuple(float(v) for v in lrs)
        except (TypeError, ValueError):
            raise PluginError(f"[tuning] lr: {lrs!r} is not a list of numbers") from None
        if any(v <= 0 for v in values):
            raise PluginError("[tuning] lr: learning rates must be positive")
        opts = resolve_params("[tuning]", TUNING, table)
        return cls(values, opts["seeds"], opts["per"])


def trial_key(run: dict) -> str:
    """A run's configuration apart from its seed and training size: runs sharing it are seeds
    (and sizes) of one trial. Different learning rates, hyperparameters or recipes (say, two
    matrices in one database) are different trials and are never pooled as extra seeds."""
    config = run.get("config")
    if config:
        rest = {k: v for k, v in config.items() if k not in ("seed", "train_size")}
        return json.dumps(rest, sort_keys=True, default=str)
    return json.dumps(run.get("trial") or {}, sort_keys=True, default=str)


def chosen_trials(runs: list[dict]) -> dict:
    """For the runs of one model in one task variant: training size -> the selected trial key.

    Honours the launcher's scope: a trial tuned ``per = "task"`` (its ``trial`` says so) is
    chosen once across every size, as the launcher chose it.
    """
    higher = next((r["higher_is_better"] for r in runs if r.get("higher_is_better") is not None), True)
    by_size: dict = {}
    for r in runs:
        by_size.setdefault(r.get("train_size"), []).append(r)
    if any((r.get("trial") or {}).get("per") == "task" for r in runs):
        key = select_trial(runs, higher)
        return {size: key for size in by_size}
    return {size: select_trial(rs, higher) for size, rs in by_size.items()}


def select_trial(runs: list[dict], higher_is_better: bool) -> str | None:
    """The trial key with the best mean validation score over the seeds every trial ran.

    Comparing on shared seeds keeps the choice the launcher made (on the tuning seeds) even
    after the selected trial has been run on more seeds. A diverged run scores worst.
    """
    by_trial: dict[str, dict[tuple, dict]] = {}  # trial -> (size, seed) -> run
    for r in runs:
        if r["status"] in ("done", "diverged"):
            by_trial.setdefault(trial_key(r), {})[(r.get("train_size"), r["seed"])] = r
    if not by_trial:
        return None
    shared = set.intersection(*(set(seeds) for seeds in by_trial.values()))
    worst = float("-inf") if higher_is_better else float("inf")

    def score(key: str) -> float:
        chosen = [s for s in by_trial[key] if s in shared] or list(by_trial[key])
        values = []
        for s in chosen:
            r = by_trial[key][s]
            ok = r["status"] == "done" and r.get("best_val") is not None
            values.append(float(r["best_val"]) if ok else worst)
        return sum(values) / len(values)

    ranked = sorted(by_trial, key=lambda k: (score(k), k), reverse=higher_is_better)
    return ranked[0]


@dataclass
class Stage:
    """Stage two's runs, and the cells still waiting for their trials (if stage one failed)."""

    runs: list = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)


def second_stage(first: list, all_seeds: list[int], records: dict[str, dict], tuning: Tuning) -> Stage:
    """For every cell of stage one's runs, the selected trial on the seeds not yet run."""
    cells: dict[tuple, list] = {}
    for spec in first:
        size_key = spec.train_size if tuning.per == "size" else "*"
        key = (spec.model, spec.task, json.dumps(spec.task_params, sort_keys=True), size_key)
        # Trials within a cell differ in what was tuned (lr) or swept (model parameters).
        cells.setdefault(key, []).append(spec)
    stage = Stage()
    rest = [s for s in all_seeds if s not in all_seeds[: tuning.seeds]]
    for key, specs in cells.items():
        runs = [records[s.run_id] for s in specs if s.run_id in records]
        higher = next((r["higher_is_better"] for r in runs if r.get("higher_is_better") is not None), True)
        chosen = select_trial(runs, higher)
        if chosen is None:
            stage.undecided.append(f"{key[0]} x {key[1]}")
            continue
        # One spec per training size (several when selecting per task variant; the tuning
        # seeds give several specs per size, any one of which is the template).
        winners = {s.train_size: s for s in specs if trial_key({"config": s.config()}) == chosen}
        for spec in winners.values():
            for seed in rest:
                stage.runs.append(replace(spec, seed=seed))
    return stage
