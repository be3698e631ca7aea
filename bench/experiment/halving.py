"""Successive halving within each model's own trials (Jamieson & Talwalkar 2016), synchronous
rungs decided from the stored records alone. See docs/methods.md#tuning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

from ..api import PluginError, Range
from .schedule import Kind, Schedule
from .rounds import Round, Search, lr_bounds, lr_edge, per_meta
from .sampling import draw
from ..records import CurvePoint, RunRecord
from .tuning import META, Tuning, higher_is_better_of, select_trial, spec_key


def promote(scores: dict[int, float], keep: int) -> list[int]:
    """The ``keep`` trials (by index) with the highest scores, in index order; a tie goes to the
    earlier point."""
    return sorted(sorted(scores, key=lambda i: (-scores[i], i))[:keep])


def _check_first_rung(search: Search, steps: int, prefix: bool) -> None:
    """A rung that ends inside its warm-up judges nothing: under wsd the first rung must reach
    the end of its warm-up (a prefix rung: by its last step; an annealed one: before the
    cooldown at its step cap begins)."""
    recipe = {**search.bases[0].training, "max_steps": steps}
    if prefix:
        w = recipe.get("warmup_steps") if recipe.get("schedule") == Kind.WSD.value else 0
        if w and steps < w:
            raise PluginError(
                f"[tuning] min_steps = {steps}: the first rung ends inside its warm-up "
                f"(warmup_steps = {w}) for {search.model} on {search.label}, so it would judge "
                f"nothing; give min_steps = {w} or more")
        return
    if recipe.get("schedule") != Kind.WSD.value or not recipe["warmup_steps"]:
        return
    sched = Schedule.from_recipe(recipe)
    if sched.cap_start >= recipe["warmup_steps"]:
        return
    w, v, share = recipe["warmup_steps"], sched.val_every, recipe["cooldown"]
    need = max(int((w + v) * (1 + share)) + 1, w + 3 * v)  # warm-up, then a cooldown to fit
    raise PluginError(
        f"[tuning] min_steps = {steps}: the first rung ends inside its warm-up (warmup_steps "
        f"= {w}, then a cooldown of at least 2 validations of {v} steps) for {search.model} on "
        f"{search.label}, so it would judge nothing; give min_steps = {need} or more")


@dataclass
class _Race:
    """One search's trials: their points and which are still in the race."""

    search: Search
    points: list[dict]
    alive: list[int] = field(default_factory=list)  # trial indices at the current rung


class HalvingTuner:
    """The rungs of a plan's tuning, then the selected trials on the evaluation seeds (the same
    interface as :class:`.rounds.Tuner`: ``first``, ``extension`` for each next rung,
    ``evaluation``)."""

    def __init__(self, searches: list[Search], tuning: Tuning, eval_seeds: list[int]):
        self.tuning = tuning
        self.eval_seeds = list(eval_seeds)
        self.round = 0  # the rung whose runs were handed out last
        # the longest rung with a budget of its own: the last, or the one before a full last
        short = tuning.rungs - 1 - tuning.full_last
        top = tuning.rung_steps(short)
        self.races = []
        for s in searches:
            full = s.bases[0].training["max_steps"]
            if top > full or (tuning.full_last and top == full):
                which = "rung before the last" if tuning.full_last else "last rung"
                raise PluginError(
                    f"[tuning] the {which} trains {top:,} steps (min_steps {tuning.min_steps} "
                    f"x eta {tuning.eta}^{short}), "
                    f"{'not fewer than' if tuning.full_last else 'more than'} max_steps = "
                    f"{full:,} ({s.model} on {s.label}): lower min_steps or rungs, or raise "
                    "max_steps")
            _check_first_rung(s, tuning.min_steps, tuning.full_last)
            # the unpruned protocol's points (rounds.py): both try the very same trials
            points = draw(s.space, 0, tuning.trials)
            self.races.append(_Race(s, points, list(range(tuning.trials))))

    def _specs(self, race: _Race, index: int, rung: int) -> list:
        """Trial ``index`` at rung ``rung``: a run per size and tuning seed, with the rung's step
        budget (``full_steps`` keeps the trial's identity across rungs, :func:`trial_key`): its
        own ``max_steps``, annealed at its end, or with ``last_rung = "full"`` the first
        ``stop_step`` steps of the full run (the last rung: that run)."""
        s, steps = race.search, self.tuning.rung_steps(rung)
        full = s.bases[0].training["max_steps"]
        meta = {"rung": rung, "full_steps": full} | per_meta(self.tuning)
        key = "stop_step" if self.tuning.full_last else "max_steps"
        specs = s.specs([race.points[index]], self.tuning.seeds, meta)
        if steps is None:
            return specs
        return [replace(r, training={**r.training, key: steps}) for r in specs]

    @property
    def first(self) -> list:
        return [spec for race in self.races for i in race.alive for spec in self._specs(race, i, 0)]

    def _score(self, specs: list, records: dict[str, RunRecord],
               curve: Callable[[str], list[CurvePoint]] | None) -> float:
        """Mean rung score of a trial's runs (higher is better here): the best validation score,
        or with ``rank = "loss"`` minus the lowest validation loss of its curve; a run that
        failed, diverged or is missing scores worst."""
        runs = [records.get(s.run_id) for s in specs]
        sign = 1.0 if higher_is_better_of(runs) else -1.0
        values = []
        for r in runs:
            if r is None or r.status != "done" or r.best_val is None:
                values.append(float("-inf"))
            elif self.tuning.rank == "loss":
                assert curve is not None, 'rank = "loss" reads the stored curves'
                losses = [p["val"]["loss"] for p in curve(r.run_id)
                          if math.isfinite(p.get("val", {}).get("loss", math.nan))]
                values.append(-min(losses) if losses else float("-inf"))
            else:
                values.append(sign * float(r.best_val))
        return sum(values) / len(values)

    def extension(self, records: dict[str, RunRecord],
                  curve: Callable[[str], list[CurvePoint]] | None = None) -> Round:
        """The next rung: in every race the best ``kept(rung)`` trials of the last one, on a
        budget eta times longer (or in full). Empty after the last rung. ``curve`` reads a
        stored run's validations (``rank = "loss"``)."""
        out = Round()
        rung = self.round + 1
        if rung >= self.tuning.rungs:
            return out
        keep, steps = self.tuning.kept(rung), self.tuning.rung_steps(rung)
        for race in self.races:
            scores = {i: self._score(self._specs(race, i, rung - 1), records, curve)
                      for i in race.alive}
            race.alive = promote(scores, keep)
            out.runs += [spec for i in race.alive for spec in self._specs(race, i, rung)]
        self.round = rung
        out.label = self.tuning.stage(rung)
        budget = "train in full" if steps is None else f"go on to {steps} steps"
        out.notes.append(f"successive halving: the best {keep} of {self.tuning.kept(rung - 1)} "
                         f"trials of every model {budget}")
        out.runs = list({r.run_id: r for r in out.runs}.values())
        return out

    def evaluation(self, records: dict[str, RunRecord]) -> Round:
        """Per model and cell, the trial with the best mean validation score at the last rung
        (:func:`.tuning.select_trial`, the analysis's rule too), on every evaluation seed with
        the recipe's own ``max_steps``."""
        out = Round()
        groups: dict[tuple, list[_Race]] = {}
        for race in self.races:
            groups.setdefault((race.search.cell, race.search.model), []).append(race)
        for (cell, model), races in groups.items():
            last = [spec for race in races for i in race.alive
                    for spec in self._specs(race, i, self.round)]
            runs = [records[s.run_id] for s in last if s.run_id in records]
            key = select_trial(runs, higher_is_better_of(runs))
            search = races[0].search
            if key is None:
                out.undecided.append(f"{model} on {search.label}")
                continue
            winners = list({s.train_size: s for s in last if spec_key(s) == key}.values())
            values = {k: v for k, v in winners[0].trial.items() if k not in META}
            meta = {"stage": "eval", "trials": self.tuning.trials * len(races),
                    "prune": "halving", "rungs": self.tuning.rungs,
                    "last_rung": self.tuning.last_rung, "rank": self.tuning.rank
                    } | per_meta(self.tuning)
            bounds = lr_bounds(search.space)
            if bounds and isinstance(search.space.get("lr"), Range) and "lr" in values:
                meta["lr_range"] = list(bounds)
                tried = [p["lr"] for race in races for p in race.points]
                edge = lr_edge(values["lr"], tried, *bounds)
                if edge:
                    meta["lr_edge"] = edge
                    out.notes.append(f"{model} on {search.label}: selected lr {values['lr']:g} "
                                     f"at the {edge} edge of {bounds[0]:g} .. {bounds[1]:g}; "
                                     "recorded as lr_edge")
            full = winners[0].trial["full_steps"]
            for spec in winners:
                training = {k: v for k, v in spec.training.items() if k != "stop_step"}
                for seed in self.eval_seeds:
                    out.runs.append(replace(spec, seed=seed, trial={**values, **meta},
                                            training={**training, "max_steps": full}))
        return out
