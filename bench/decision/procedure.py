"""Spending a decision's budget: fair tuning, sanity, then paired evaluation rounds until decided.

Every step is a function of the stored runs, so the same command again (or with a larger budget)
continues where it stopped. See docs/methods.md#sequential-decisions.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field, replace

from ..analysis.margins import practical_margin
from ..analysis.sequential import N_MIN, decide_best
from ..experiment.launch import Outcome, run_stage
from ..experiment.plan import plan as make_plan
from ..experiment.tuning import META, is_tune
from ..records import RunRecord
from . import design
from .request import Request

OUTLOOK_FRACTIONS = (0.25, 0.5)
MIN_TRIALS = 2  # below this it is not tuning: two waves start even past the tuning share


def default_margin(metric: str, higher_is_better: bool, values: list, extras: dict) -> float:
    """The analysis' practical margin (one rule for both); 0 (no equivalence) without a scale."""
    return practical_margin(metric, higher_is_better, values, extras, None)[0] or 0.0


def first_decision(scores: dict[str, list[float]], margin: float, *, alpha: float,
                   n_max: int, higher_is_better: bool):
    """The sequential rule at every look in seed order (a look after each paired seed), and the
    first look that decided; the last look when none did.

    A verdict, once reached, stands: the repeated confidence intervals hold at every look at
    once, so a round that was already in flight when the rule decided (or a later call with a
    larger budget) cannot take it back. Replaying the looks from the stored scores makes the
    answer the same whichever call computes it."""
    n = min(len(v) for v in scores.values())
    decision = None
    for k in range(min(n, N_MIN), n + 1):  # looks before N_MIN cannot decide
        decision = decide_best({m: v[:k] for m, v in scores.items()}, margin, alpha=alpha,
                               n_max=n_max, higher_is_better=higher_is_better)
        if decision.verdict != "undecided":
            break
    return decision


@dataclass
class Decided:
    """What the rounds found, plus what it cost; ``summary`` turns it into words and JSON."""

    request: Request
    metric: str = ""
    higher_is_better: bool = True
    margin: float = 0.01
    chance: float | None = None
    train_examples: int | None = None
    tuned: dict = field(default_factory=dict)  # model -> selected hyperparameters
    trials: dict = field(default_factory=dict)  # model -> tuning trials finished
    insane: dict = field(default_factory=dict)  # model -> why it failed the sanity check
    scores: dict = field(default_factory=dict)  # model -> {seed: test score}, paired seeds
    diverged: dict = field(default_factory=dict)  # model -> evaluation seeds that diverged
    finished: dict = field(default_factory=dict)  # model -> evaluation seeds done or diverged
    # model -> its finished evaluation records
    runs: dict[str, list[RunRecord]] = field(default_factory=dict)
    decision: object = None  # sequential.BestDecision over the compared models
    stop: str = ""  # why the rounds stopped
    seconds: float = 0.0
    interrupted: bool = False
    outlook: dict = field(default_factory=dict)  # train size -> model -> mean test score
    matrix_id: str = ""


class Procedure:
    def __init__(self, request: Request, registry, store, executor, console,
                 clock=time.monotonic, spent: float = 0.0):
        self.request, self.store, self.executor, self.console = request, store, executor, console
        self.clock = clock
        now = clock()
        self.start = now - spent  # the budget plan's timing runs came out of the budget
        self.deadline = self.start + request.budget_s
        # the tuning share is of what the timing left, as the plan counts it: the evaluation
        # rounds keep their share however long the timing took
        self.tune_deadline = now + request.tune_share * max(request.budget_s - spent, 0.0)
        self.matrix = request.matrix()
        self.plan = make_plan(self.matrix, registry)
        self.tuner = self.plan.tuner()
        self.workers = max(1, getattr(executor, "workers", 1) or 1)
        self.started: dict[str, float] = {}  # run id -> clock at hand-out
        self.took: dict[str, list[float]] = {m: [] for m in request.models}
        self.out = Decided(request, matrix_id=self.plan.matrix_id)
        self.known = {spec.run_id for spec in self.tuner.first}
        self.outcome = Outcome()

    # ---- time

    def left(self) -> float:
        return self.deadline - self.clock()

    def estimate(self, model: str) -> float:
        """Seconds one run of ``model`` takes here: the median of those timed so far (stored
        training time, plus a margin for loading and testing, before any has been timed)."""
        if self.took[model]:
            return statistics.median(self.took[model])
        stored = [r.train_seconds for r in self.store.runs(model=model)
                  if r.train_seconds and r.matrix_id == self.plan.matrix_id]
        return 1.3 * statistics.median(stored) + 2 if stored else 0.0

    def wave_seconds(self, models) -> float:
        """A wave or round: one run per model, ``workers`` at a time."""
        times = sorted((self.estimate(m) for m in models), reverse=True)
        return max(times[0] if times else 0.0, sum(times) / self.workers)

    def _timed(self, record: RunRecord) -> None:
        began = self.started.pop(record.run_id, None)
        if began is not None and record.status in ("done", "diverged"):
            self.took[record.model].append(self.clock() - began)

    def _gated(self, allow):
        def gate(spec) -> bool:
            ok = allow(spec)
            if ok:
                self.started[spec.run_id] = self.clock()
            return ok

        return gate

    # ---- the steps

    def run(self) -> Decided:
        design.check(self.store, self.request)  # before anything is written
        self.store.add_matrix(self.plan.matrix_id, _asdict(self.matrix), _now())
        # Evaluation runs of an earlier call freeze the tuning: the selection must not move.
        evaluated = [r for r in self.store.runs(task=self.request.task)
                     if r.matrix_id == self.plan.matrix_id and not is_tune(r)]
        frozen = any(r.status == "done" for r in evaluated)
        if evaluated:
            design.freeze(self.store, self.request, _now())
        if not frozen:
            self._tune()
        if self.outcome.interrupted:
            return self._finish("interrupted during tuning")
        records = self._records()
        final = self.tuner.evaluation(records)
        self.known |= {spec.run_id for spec in final.runs}
        self._describe_tuning(records, final)
        if not frozen and min(self.out.trials.values()) < MIN_TRIALS:
            # Too few trials to call a model incompetent or to compare tuned models: the budget
            # went to tuning; the same command with more budget goes on with it.
            self.out.insane = {}
            return self._finish("budget (tuning not finished)")
        compared = [m for m in self.request.models if m not in self.out.insane]
        if len(compared) < 2:
            return self._finish("sanity check")
        by_seed: dict[int, list] = {}
        for spec in final.runs:
            if spec.model in compared:
                by_seed.setdefault(spec.seed, []).append(spec)
        self._rounds(by_seed, compared)
        if self.request.outlook and not self.outcome.interrupted:
            self._outlook(by_seed)
        return self._finish(self.out.stop)

    def _records(self) -> dict[str, RunRecord]:
        """This decision's stored runs (its tuning trials, evaluation and outlook runs)."""
        return {r.run_id: r for r in self.store.runs(task=self.request.task)
                if r.run_id in self.known}

    def _tune(self) -> None:
        per_model: dict[str, list] = {}
        for spec in self.tuner.first:
            per_model.setdefault(spec.model, []).append(spec)
        waves = max(len(v) for v in per_model.values())
        ordered, wave_of = [], {}
        for w in range(waves):
            for model in self.request.models:
                if w < len(per_model.get(model, [])):
                    spec = per_model[model][w]
                    ordered.append(spec)
                    wave_of[spec.run_id] = w
        allowed: set[int] = set()

        def allow(spec) -> bool:
            w = wave_of[spec.run_id]
            if w in allowed:
                return True
            need = self.wave_seconds(self.request.models)
            limit = self.deadline if w < MIN_TRIALS else self.tune_deadline
            if w == 0 or self.clock() + need <= limit:
                allowed.add(w)
                return True
            return False

        run_stage("tuning trials (waves of one trial per model)", ordered, self.store,
                  self.executor, self.console, False, self.outcome, gate=self._gated(allow),
                  saved=self._timed)

    def _describe_tuning(self, records: dict[str, RunRecord], final) -> None:
        tune = [r for r in records.values() if is_tune(r)]
        for model in self.request.models:
            mine = [r for r in tune if r.model == model and r.status in ("done", "diverged")]
            self.out.trials[model] = len(mine)
        any_run = next((r for r in records.values() if r.primary_metric), None)
        if any_run:
            self.out.metric = any_run.primary_metric
            self.out.higher_is_better = bool(any_run.higher_is_better)
            self.out.chance = (any_run.extras or {}).get("chance")
            self.out.train_examples = any_run.train_examples
        values = [r.best_val for r in tune]
        self.out.margin = (self.request.margin if self.request.margin is not None else
                           default_margin(self.out.metric, self.out.higher_is_better, values,
                                          any_run.extras or {} if any_run else {}))
        chosen = {s.model: s for s in final.runs}
        for model in self.request.models:
            spec = chosen.get(model)
            if spec is None:
                self.out.insane[model] = "no tuning trial finished"
                continue
            self.out.tuned[model] = {k: v for k, v in spec.trial.items() if k not in META}
            best = [r.best_val for r in tune if r.model == model
                    and r.status == "done" and r.best_val is not None]
            chance = self.out.chance
            if chance is None or not best:
                continue
            top = max(best) if self.out.higher_is_better else min(best)
            beats = (top > chance + self.out.margin if self.out.higher_is_better
                     else top < chance - self.out.margin)
            if not beats:
                self.out.insane[model] = (
                    f"its best validation {self.out.metric} {top:.4g} does not beat the trivial "
                    f"baseline {chance:.4g} by the margin {self.out.margin:g}")

    def _rounds(self, by_seed: dict[int, list], compared: list[str]) -> None:
        seeds = sorted(by_seed)
        round_of = {spec.run_id: i for i, s in enumerate(seeds) for spec in by_seed[s]}
        allowed: set[int] = set()
        state = {"decided": False}

        def update(_record=None) -> None:
            records = self._records()
            self._collect(records, compared)
            d = self.out.decision
            state["decided"] = d is not None and d.verdict != "undecided"

        update()

        def allow(spec) -> bool:
            r = round_of[spec.run_id]
            if r in allowed:
                return True
            if state["decided"]:
                self.out.stop = "decided"
                return False
            if self.clock() + self.wave_seconds(compared) > self.deadline:
                self.out.stop = "budget"
                return False
            if not allowed:  # evaluation begins: the stopping rule's design is frozen
                design.freeze(self.store, self.request, _now())
            allowed.add(r)
            return True

        def saved(record: RunRecord) -> None:
            self._timed(record)
            update(record)

        ordered = [spec for s in seeds for spec in by_seed[s]]
        if state["decided"]:
            self.out.stop = "decided"
            return
        run_stage("evaluation rounds (one seed per model each)", ordered, self.store,
                  self.executor, self.console, False, self.outcome, gate=self._gated(allow),
                  saved=saved)
        update()
        if self.outcome.interrupted:
            self.out.stop = "interrupted"
        elif state["decided"]:
            self.out.stop = "decided"
        elif not self.out.stop:
            self.out.stop = "max seeds"

    def _collect(self, records: dict[str, RunRecord], compared: list[str]) -> None:
        """Paired test scores per seed (seeds every compared model trained without diverging),
        and the rule. A diverged seed is its own outcome, counted per model: scoring it at
        chance would feed the rule an outlier that it is not built for."""
        scores: dict[str, dict[int, float]] = {m: {} for m in compared}
        runs: dict[str, list[RunRecord]] = {m: [] for m in compared}
        diverged: dict[str, list[int]] = {m: [] for m in compared}
        finished: dict[str, set[int]] = {m: set() for m in compared}
        for r in records.values():
            if is_tune(r) or r.model not in scores or r.train_size != self.request.train_size:
                continue
            value = r.primary_value
            if r.status == "done" and value is not None:
                scores[r.model][r.seed] = float(value)
                runs[r.model].append(r)
                finished[r.model].add(r.seed)
            elif r.status == "diverged":
                diverged[r.model].append(r.seed)
                finished[r.model].add(r.seed)
        shared = sorted(set.intersection(*(set(v) for v in scores.values())))
        self.out.scores = {m: {s: scores[m][s] for s in shared} for m in compared}
        self.out.diverged = {m: sorted(v) for m, v in diverged.items() if v}
        self.out.finished = {m: sorted(v) for m, v in finished.items()}
        self.out.runs = runs
        if not shared:
            self.out.decision = None
            return
        self.out.decision = first_decision(
            {m: [scores[m][s] for s in shared] for m in compared}, self.out.margin,
            alpha=self.request.alpha, n_max=self.request.max_seeds,
            higher_is_better=self.out.higher_is_better)

    def _outlook(self, by_seed: dict[int, list]) -> None:
        full = self.out.train_examples
        seeds = [s for s in sorted(by_seed) if all(
            s in self.out.scores.get(m, {}) for m in self.out.scores)]
        if not full or len(seeds) < 3:
            return
        sizes = sorted({max(2, int(full * f)) for f in OUTLOOK_FRACTIONS})
        specs = [replace(spec, train_size=n) for n in sizes for s in seeds for spec in by_seed[s]]
        self.known |= {spec.run_id for spec in specs}

        def allow(spec) -> bool:
            return self.clock() + self.estimate(spec.model) <= self.deadline

        run_stage("outlook: the same seeds on 1/4 and 1/2 of the data", specs, self.store,
                  self.executor, self.console, False, self.outcome, gate=self._gated(allow),
                  saved=self._timed)
        records = self._records()
        table: dict[int, dict[str, list[float]]] = {}
        for r in records.values():
            value = r.primary_value
            if not is_tune(r) and r.status == "done" and r.train_size in sizes:
                table.setdefault(r.train_size, {}).setdefault(r.model, []).append(float(value))
        table[full] = {m: list(v.values()) for m, v in self.out.scores.items()}
        self.out.outlook = {n: {m: v for m, v in row.items()} for n, row in sorted(table.items())}

    def _finish(self, stop: str) -> Decided:
        self.out.stop = stop
        self.out.seconds = self.clock() - self.start
        self.out.interrupted = self.outcome.interrupted
        return self.out


def _asdict(matrix) -> dict:
    from dataclasses import asdict

    return asdict(matrix)


def _now() -> str:
    from ..util import now

    return now()
