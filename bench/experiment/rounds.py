"""The rounds the launcher runs: each model's first trials, edge extensions, then the selected
trial on every evaluation seed.

An extension round is due when a model's selected learning rate sits at an edge of its range (the
lowest or highest tried, in the outer :data:`EDGE_SHARE` of the log-range): that model draws
``extend_trials`` more trials a decade beyond the edge, and every other model of the cell draws as
many in its own range, so budgets stay equal. Grids are never extended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ..api import Choice, Param, Range
from .sampling import draw
from ..records import RunRecord
from .tuning import LR, META, Tuning, higher_is_better_of, select_trial, spec_key

EDGE_SHARE = 0.2  # > 1/8: Sobol's top trial of 8 may sit anywhere in the outer eighth
EXTENSION = 10.0  # an extension round searches one decade beyond the edge


@dataclass
class Search:
    """One model's trials in one cell (for one combination of swept settings, if any)."""

    model: str
    cell: tuple  # (task, task-params JSON, training size or "*"): the models compared together
    label: str  # the cell in words, for the console
    bases: list  # RunSpecs to apply each trial to: one per training size in the cell
    space: dict[str, Range | Choice]
    params: dict[str, Param]  # how each drawn value is checked and typed
    recipe: frozenset[str]  # the space's keys that belong to the training recipe
    pinned: tuple[str, ...] = ()  # keys of the plugin's space that the matrix fixed

    def specs(self, values: list[dict], seeds: tuple[int, ...], meta: dict) -> list:
        """The runs of these trials: every base (size) x every tuning seed."""
        out = []
        for v in values:
            typed = {k: self.params[k].coerce(k, x) for k, x in v.items()}
            model_params = {k: x for k, x in typed.items() if k not in self.recipe}
            recipe = {k: x for k, x in typed.items() if k in self.recipe}
            for base in self.bases:
                trial = {**base.trial, **typed, "stage": "tune", **meta}
                for seed in seeds:
                    out.append(replace(
                        base, seed=seed, trial=trial,
                        model_params={**base.model_params, **model_params},
                        training={**base.training, **recipe},
                    ))
        return out


def describe(searches: list[Search], tuning: Tuning, eval_seeds: list[int]) -> list[str]:
    """The protocol and each model's search space in words (``bench run --dry-run``)."""
    lines = [tuning.describe()]
    seen = set()
    for s in searches:
        parts = [f"{k} {d.describe()}" + (" (recipe)" if k in s.recipe else "")
                 for k, d in s.space.items()]
        line = f"  {s.model}: " + "; ".join(parts)
        if s.pinned:
            line += f" (pinned by the matrix: {', '.join(s.pinned)})"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    lines.append(f"then the selected trial of each model and {tuning.per} runs on every "
                 f"evaluation seed: {', '.join(map(str, eval_seeds))}")
    return lines


def lr_bounds(space: dict) -> tuple[float, float] | None:
    dist = space.get("lr")
    if isinstance(dist, Range):
        return (dist.low, dist.high)
    if isinstance(dist, Choice):
        return (min(dist.values), max(dist.values))
    return None


def first_round(searches: list[Search], tuning: Tuning) -> list:
    """Every search's first ``trials`` points, on the tuning seeds."""
    runs = []
    for s in searches:
        if tuning.grid:
            values = [{"lr": lr} for lr in tuning.grid]
        else:
            values = draw(s.space, 0, tuning.trials)
        runs += s.specs(values, tuning.seeds, {"round": 0} | per_meta(tuning))
    return runs


def per_meta(tuning: Tuning) -> dict:
    # The analysis selects as the launcher did: once per task variant when told so.
    return {"per": "task"} if tuning.per == "task" else {}


def lr_edge(selected: float, tried: list[float], low: float, high: float) -> str | None:
    """"low" or "high" when the selected learning rate may not bracket the optimum: it is the
    lowest (highest) tried and lies in the outer :data:`EDGE_SHARE` of the log-range
    ``[low, high]``; None when trials on both sides of it scored worse or it is well inside."""
    span = math.log(high / low)
    if selected <= min(tried) and math.log(selected / low) <= EDGE_SHARE * span:
        return "low"
    if selected >= max(tried) and math.log(high / selected) <= EDGE_SHARE * span:
        return "high"
    return None


def _beyond(edge: str, low: float, high: float) -> tuple[float, float] | None:
    """The decade beyond ``edge`` of ``[low, high]``, within the learning rates the recipe
    accepts; None when there is nothing beyond."""
    if edge == "low":
        return (low / EXTENSION, low)
    top = min(high * EXTENSION, LR.maximum) if LR.maximum is not None else high * EXTENSION
    return (high, top) if top > high else None


@dataclass
class Round:
    runs: list = field(default_factory=list)
    label: str = ""  # the stage's name on the console (default: "extension round N")
    notes: list[str] = field(default_factory=list)  # for the console: what was decided, and why
    undecided: list[str] = field(default_factory=list)


@dataclass
class _Group:
    """One model in one cell: its searches (one per swept combination), its learning-rate
    range so far, and every trial run it has had."""

    searches: list[Search]
    lr: tuple[float, float] | None
    drawn: int  # points of the sequence used so far (the same for every search)
    specs: list = field(default_factory=list)
    extended: list[str] = field(default_factory=list)


class Tuner:
    """Carries a plan's tuning through its rounds: first trials, extensions, evaluation.

    Every decision is a function of the stored records, so a relaunch after an interruption
    makes the same decisions and skips what is done.
    """

    def __init__(self, searches: list[Search], tuning: Tuning, eval_seeds: list[int]):
        self.tuning = tuning
        self.eval_seeds = list(eval_seeds)
        self.round = 0
        self.groups: dict[tuple, _Group] = {}
        for s in searches:
            g = self.groups.setdefault(
                (s.cell, s.model), _Group([], lr_bounds(s.space), tuning.trials))
            g.searches.append(s)
        for g in self.groups.values():
            g.specs = first_round(g.searches, tuning)

    @property
    def first(self) -> list:
        return [spec for g in self.groups.values() for spec in g.specs]

    def _edge(self, g: _Group, records: dict[str, RunRecord]) -> tuple[list, str | None]:
        """The selected trial's runs, one per training size (empty if no trial finished), and
        the edge its learning rate sits at, if any."""
        runs = [records[s.run_id] for s in g.specs if s.run_id in records]
        key = select_trial(runs, higher_is_better_of(runs))
        if key is None:
            return [], None
        winners = list({s.train_size: s for s in g.specs if spec_key(s) == key}.values())
        lr = winners[0].training["lr"]
        if g.lr is None or "lr" not in winners[0].trial:
            return winners, None  # the learning rate was not tuned here
        tried = [s.training["lr"] for s in g.specs if s.run_id in records
                 and records[s.run_id].status in ("done", "diverged")]
        return winners, lr_edge(lr, tried, *g.lr)

    def extension(self, records: dict[str, RunRecord], curve=None) -> Round:
        """The next extension round (empty when none is due): every model of a cell where a
        selected learning rate sits at an edge draws ``extend_trials`` more trials. (``curve``:
        :meth:`.halving.HalvingTuner.extension`'s, unread here.)"""
        out = Round()
        if self.tuning.grid or self.round >= self.tuning.extend:
            return out
        edges = {}
        for key, g in self.groups.items():
            winners, edge = self._edge(g, records)
            region = _beyond(edge, *g.lr) if edge else None
            if region:  # (an edge at the largest learning rate accepted is only recorded)
                edges[key] = (edge, winners[0].training["lr"], region)
        hit = {cell for cell, _ in edges}
        if not hit:
            return out
        self.round += 1
        n = self.tuning.extend_trials
        for (cell, model), g in self.groups.items():
            if cell not in hit:
                continue
            region = None
            if (cell, model) in edges:
                lo, hi = g.lr
                edge, lr, region = edges[(cell, model)]
                g.lr = (min(lo, region[0]), max(hi, region[1]))
                g.extended.append(edge)
                out.notes.append(
                    f"{model} on {g.searches[0].label}: selected lr {lr:g} at the {edge} edge of "
                    f"{lo:g} .. {hi:g}; round {self.round} of at most {self.tuning.extend} "
                    f"searches {region[0]:g} .. {region[1]:g} ({n} more trials for every model "
                    "of this cell)"
                )
            for s in g.searches:
                # a model not at an edge continues its own sequence in its own range
                space = dict(s.space)
                if isinstance(space.get("lr"), Range):
                    space["lr"] = Range(*(region or g.lr), log=True)
                values = draw(space, g.drawn, n)
                meta = {"round": self.round, "lr_range": [space["lr"].low, space["lr"].high]} \
                    if "lr" in space else {"round": self.round}
                new = s.specs(values, self.tuning.seeds, meta | per_meta(self.tuning))
                g.specs += new
                out.runs += new
            g.drawn += n
        out.runs = list({r.run_id: r for r in out.runs}.values())
        return out

    def evaluation(self, records: dict[str, RunRecord]) -> Round:
        """The selected trial of every model and cell, on every evaluation seed."""
        out = Round()
        for (cell, model), g in self.groups.items():
            winners, edge = self._edge(g, records)
            if not winners:
                out.undecided.append(f"{model} on {g.searches[0].label}")
                continue
            values = {k: v for k, v in winners[0].trial.items() if k not in META}
            meta = {"stage": "eval", "trials": g.drawn * len(g.searches)} \
                | per_meta(self.tuning)
            if g.lr:
                meta["lr_range"] = list(g.lr)
            if g.extended:
                meta["extended"] = list(g.extended)
            if edge:
                meta["lr_edge"] = edge
                out.notes.append(
                    f"{model} on {g.searches[0].label}: selected lr {values['lr']:g} still at the "
                    f"{edge} edge of {g.lr[0]:g} .. {g.lr[1]:g}"
                    + (" (a grid is not extended)" if self.tuning.grid else
                       f" after {len(g.extended)} extension round(s)")
                    + "; recorded as lr_edge"
                )
            for spec in winners:
                for seed in self.eval_seeds:
                    out.runs.append(replace(spec, seed=seed, trial={**values, **meta}))
        return out
