"""A decision's budget, planned before it is spent: does it hold the tuning and 3 paired seeds?

Before tuning, each model trains two short runs on this machine (nothing is stored) of
:data:`PROBE_STEPS` steps, one validating once and one after every step, so that a run's cost
splits into a fixed part (loading, building, testing), a cost per training step (timed by the
runs themselves) and a cost per validation, spread over ``val_every`` steps. A run of
``max_steps`` steps is the most a run can cost (early stopping only shortens it), so the plan is
an upper bound. The waves and rounds are counted as
:mod:`seqbench.decision.procedure` spends them: a wave of one tuning trial per model starts while
the tuning share of what the timing left allows it, a round of one seed per model while the
budget does, ``workers`` runs at a time.

When the budget does not hold the planned trials and :data:`SEEDS` paired seeds, the models
are timed again at a smaller size (one run each), the costs are interpolated linearly in the
parameter count between the two sizes (and never taken below the smaller size's), and the
largest parameter budget whose plan holds is named; ``--param-budget auto`` uses it. Where none
holds the planned trials, the largest that holds :data:`SEEDS` seeds after the fewer trials the
tuning share allows (as the procedure would run them); where none holds even that, ``auto``
takes the smallest size timed, an eighth of the one before if that was not yet the smallest.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from .procedure import MIN_TRIALS
from .request import fmt_duration

SEEDS = 3  # paired evaluation seeds a plan must hold: the sequential rule's first look
PROBE_STEPS = 10  # steps of a timing run: the training cost per step is timed, not inferred
TIMING_SHARE = 0.25  # no smaller size is timed once the timing has spent this share of the budget
SMALL = (1 / 8, 1 / 4, 1 / 2)  # the second probe's size, a share of the first: the first that builds
SHRINK = 0.85  # candidate parameter budgets: each this share of the one before
MIN_PARAMS = 500


@dataclass(frozen=True)
class RunCost:
    """One run of a model at one size on this machine: fixed seconds plus seconds per step."""

    params: int
    fixed_s: float
    step_s: float

    def seconds(self, steps: int) -> float:
        return self.fixed_s + self.step_s * steps


@dataclass(frozen=True)
class Probe:
    """One timed run: its steps and validations, wall seconds, and training seconds (the
    run's own, validation excluded)."""

    steps: int
    validations: int
    wall_s: float
    train_s: float

    @property
    def overhead_s(self) -> float:
        """Everything but training: loading, building, validations, testing."""
        return max(self.wall_s - self.train_s, 0.0)


def from_probes(params: int, few: Probe, many: Probe, val_every: int | None = None) -> RunCost:
    """A model's cost from two runs that validate a different number of times: the training
    seconds per step as the runs timed them (a difference of wall times is noise on a loaded
    machine), plus each validation's cost spread over ``val_every`` steps (default: the steps
    between the two runs' validations)."""
    step = (few.train_s + many.train_s) / max(few.steps + many.steps, 1)
    extra = max(many.validations - few.validations, 1)
    val = max(many.overhead_s - few.overhead_s, 0.0) / extra  # seconds per validation
    every = val_every or max((many.steps - few.steps) // extra, 1)
    return RunCost(params, max(few.overhead_s - few.validations * val, 0.0), step + val / every)


def at_size(costs: Sequence[RunCost], params: int) -> RunCost:
    """A model's cost at ``params``, linear between the two measured sizes either side; never
    below the smallest measured size's cost, never extrapolated above the largest."""
    ordered = sorted(costs, key=lambda c: c.params)
    if params <= ordered[0].params:
        return replace(ordered[0], params=params)
    if params >= ordered[-1].params:
        return replace(ordered[-1], params=params)
    hi = next(c for c in ordered if c.params >= params)  # the sizes either side of params
    lo = max((c for c in ordered if c.params < params), key=lambda c: c.params)
    w = (params - lo.params) / (hi.params - lo.params)
    return RunCost(params, lo.fixed_s + w * (hi.fixed_s - lo.fixed_s),
                   lo.step_s + w * (hi.step_s - lo.step_s))


@dataclass(frozen=True)
class BudgetPlan:
    budget_s: float
    param_budget: int
    run_s: dict            # model -> seconds one run takes at most (max_steps steps)
    wave_s: float          # one run per model, `workers` at a time
    trials: int            # tuning waves (trials per model) the tuning share holds
    planned_trials: int
    seeds: int             # paired evaluation rounds the rest of the budget holds

    @property
    def fits(self) -> bool:
        return self.trials >= self.planned_trials and self.seeds >= SEEDS

    @property
    def holds_seeds(self) -> bool:
        """The seeds, after fewer tuning trials than planned (as many as the share allows)."""
        return self.seeds >= SEEDS

    def describe(self) -> str:
        runs = " / ".join(f"{fmt_duration(s)} ({m})" for m, s in self.run_s.items())
        size = f"{self.param_budget:,} parameters" if self.param_budget else "default sizes"
        holds = (f"holds {self.trials} tuning trials per model and {self.seeds} paired seeds"
                 if self.fits else
                 f"does NOT hold {self.planned_trials} tuning trials per model and {SEEDS} "
                 f"paired seeds if every run trains to its step cap (then only {self.trials} "
                 f"trials and {self.seeds} seeds; runs that stop early leave room for more)")
        return (f"a run takes at most {runs} at {size}; {fmt_duration(self.budget_s)} {holds}")


def plan(costs: dict[str, RunCost], *, budget_s: float, param_budget: int, max_steps: int,
         trials: int, tune_share: float, workers: int) -> BudgetPlan:
    """What ``budget_s`` holds when every run costs what ``costs`` says (see the module doc)."""
    run_s = {m: c.seconds(max_steps) for m, c in costs.items()}
    times = sorted(run_s.values(), reverse=True)
    wave = max(times[0], sum(times) / max(workers, 1)) if times else 0.0
    if wave <= 0:
        return BudgetPlan(budget_s, param_budget, run_s, wave, trials, trials, 10**6)
    waves = min(trials, max(MIN_TRIALS, math.floor(tune_share * budget_s / wave)))
    waves = max(0, min(waves, math.floor(budget_s / wave)))
    seeds = max(0, math.floor((budget_s - waves * wave) / wave))
    return BudgetPlan(budget_s, param_budget, run_s, wave, waves, trials, seeds)


def largest_fitting(cost_of: Callable[[int], dict[str, RunCost] | None], start: int,
                    smallest: int = MIN_PARAMS, enough: Callable[[BudgetPlan], bool] =
                    lambda p: p.fits, **options) -> BudgetPlan | None:
    """The plan of the largest parameter budget from ``start`` down to ``smallest`` (in steps
    of :data:`SHRINK`) that is ``enough`` (it holds, by default); ``cost_of(params)`` is None
    where a model cannot be built."""
    params = start
    while params >= smallest:
        costs = cost_of(params)
        if costs is not None:
            candidate = plan(costs, param_budget=params, **options)
            if enough(candidate):
                return candidate
        params = int(params * SHRINK)
    return None


def probe(spec, steps: int, val_every: int, param_budget: int, threads: int) -> Probe:
    """One unstored run of ``spec`` for ``steps`` steps at ``param_budget``, timed."""
    from ..experiment.executors import set_torch_threads
    from ..experiment.runner import execute, warm_up

    training = {**spec.training, "max_steps": steps, "val_every": val_every, "patience": 0,
                "param_budget": param_budget}
    set_torch_threads(threads)
    warm_up()  # the process's one-off costs (importing Lightning) are no model's
    began = time.perf_counter()
    record = execute(replace(spec, training=training))
    wall = time.perf_counter() - began
    if record["status"] != "done":
        raise RuntimeError(f"the timing run of {spec.model} {record['status']}: "
                           f"{(record.get('error') or '').splitlines()[0] if record.get('error') else ''}")
    return Probe(steps, steps // val_every, wall, float(record["train_seconds"]))


def measure(specs: dict, param_budget: int, val_every: int, threads: int) -> dict[str, RunCost]:
    """Each model's cost at ``param_budget``: short runs validating once and at every step."""
    out = {}
    for model, spec in specs.items():
        once = probe(spec, PROBE_STEPS, PROBE_STEPS, param_budget, threads)
        every = probe(spec, PROBE_STEPS, 1, param_budget, threads)
        out[model] = from_probes(param_budget, once, every, val_every)
    return out


def measure_again(specs: dict, first: dict[str, RunCost], param_budget: int, val_every: int,
                  threads: int) -> dict[str, RunCost]:
    """Each model's cost at a second size from one run validating at every step, its fixed
    part taken from the first size (loading and testing barely depend on the size; a larger
    model's are, if anything, longer)."""
    out = {}
    for model, spec in specs.items():
        run = probe(spec, PROBE_STEPS, 1, param_budget, threads)
        fixed = min(first[model].fixed_s, run.overhead_s)
        val = (run.overhead_s - fixed) / max(run.validations, 1)
        out[model] = RunCost(param_budget, fixed, run.train_s / run.steps + val / val_every)
    return out


def _deepest(specs) -> dict:
    """One spec per model, the trial with the most layers (the slowest to train)."""
    out: dict = {}
    for spec in specs:
        depth = sum(v for k, v in spec.model_params.items()
                    if "layers" in k and isinstance(v, int))
        if spec.model not in out or depth > out[spec.model][0]:
            out[spec.model] = (depth, spec)
    return {m: spec for m, (_, spec) in out.items()}


@dataclass
class _Search:
    """The smaller sizes timed so far and the search among them for the largest that fits."""

    specs: dict[str, Any]                  # model -> the spec it is timed with
    first: dict[str, RunCost]              # model -> its cost at the size asked for
    timed: dict[int, dict[str, RunCost]]   # size -> each model's cost there
    began: float                           # perf_counter() when the timing began
    budget_s: float
    val_every: int
    threads: int
    options: dict[str, Any]                # plan()'s keywords but the budget and the size
    say: Callable[[str], None]

    def left(self) -> float:
        """The budget the timing has not yet spent."""
        return self.budget_s - (time.perf_counter() - self.began)

    def smaller(self, top: int, shares: Sequence[float]) -> int | None:
        """The first share of ``top`` at which every model builds, each timed there."""
        for share in shares:  # a model too small to build at a share is timed at the next one
            size = max(MIN_PARAMS, int(top * share))
            try:
                self.timed[size] = measure_again(self.specs, self.first, size, self.val_every,
                                                 self.threads)
                return size
            except RuntimeError:
                continue
        return None

    def search(self, top: int, floor: int) -> BudgetPlan | None:
        """The largest size from ``top`` down to ``floor`` that fits, else that holds the seeds."""
        left = self.left()

        def cost_of(size: int) -> dict[str, RunCost]:
            return {m: at_size([c[m] for c in self.timed.values()], size) for m in self.first}

        for enough in (lambda p: p.fits, lambda p: p.holds_seeds):
            best = largest_fitting(cost_of, top, smallest=floor, enough=enough, budget_s=left,
                                   **self.options)
            if best is not None:
                return best
        return None

    def largest(self, top: int) -> tuple[BudgetPlan | None, int | None]:
        """The best plan below ``top`` and the smallest size timed; an eighth again while the
        timing is cheap, since the budget may hold a tiny model."""
        floor = self.smaller(top, SMALL)
        best = None if floor is None else self.search(top, floor)
        cheap_so_far = time.perf_counter() - self.began < TIMING_SHARE * self.budget_s
        if best is None and floor is not None and floor >= 2 * MIN_PARAMS and cheap_so_far:
            deeper = self.smaller(floor, SMALL[:1])
            best = None if deeper is None else self.search(floor, deeper)
            floor = deeper or floor
        return best, floor

    def no_fit(self, floor: int | None, param_budget: int, auto: bool) -> int:
        """Say that no size fits; ``auto`` takes the smallest timed."""
        hint = "give a larger --budget, fewer --trials or a smaller --max-steps"
        if auto and floor is not None:
            least = plan(self.timed[floor], budget_s=self.left(), param_budget=floor,
                         **self.options)
            self.say(f"no parameter budget down to {floor:,} fits; --param-budget auto: "
                     f"{floor:,}, the smallest timed ({least.describe()}); for 3 paired seeds "
                     f"{hint}.")
            return floor
        self.say(f"no parameter budget down to {floor or param_budget:,} fits: {hint}.")
        return param_budget

    def found(self, best: BudgetPlan, param_budget: int, auto: bool) -> int:
        """Name the largest size that fits (or holds the seeds); ``auto`` takes it."""
        fits = ("fits" if best.fits else
                f"holds {SEEDS} paired seeds after {best.trials} tuning trials per model, not "
                f"the {best.planned_trials} planned")
        if auto:
            self.say(f"--param-budget auto: {best.param_budget:,}, the largest that {fits} "
                     f"({best.describe()}).")
            return best.param_budget
        self.say(f"the largest parameter budget that {fits}: {best.param_budget:,} "
                 f"({best.describe()}; --param-budget {best.param_budget}, or --param-budget "
                 f"auto to use it).")
        return param_budget


def plan_budget(runs, request, *, param_budget: int, auto: bool, workers: int,
                say: Callable[[str], None]) -> int:
    """Measure, plan and say whether the budget holds; the parameter budget to use."""
    from ..experiment.executors import run_threads

    specs = _deepest(runs)
    training = request.training
    val_every = min(training["val_every"], training["max_steps"])
    threads = run_threads(min(workers, len(specs)))
    began = time.perf_counter()
    costs = measure(specs, param_budget, val_every, threads)
    options = dict(max_steps=training["max_steps"], trials=request.trials,
                   tune_share=request.tune_share, workers=workers)
    first = plan(costs, budget_s=request.budget_s - (time.perf_counter() - began),
                 param_budget=param_budget, **options)
    say(f"budget plan: {first.describe()} (measured in {time.perf_counter() - began:.0f} s, "
        "counted in the budget).")
    if first.fits or param_budget < 2 * MIN_PARAMS:
        return param_budget
    search = _Search(specs, first=costs, timed={param_budget: costs}, began=began,
                     budget_s=request.budget_s, val_every=val_every, threads=threads,
                     options=options, say=say)
    best, floor = search.largest(param_budget)
    if best is None:
        return search.no_fit(floor, param_budget, auto)
    return search.found(best, param_budget, auto)


def previous_param_budget(db, request) -> int | None:
    """The parameter budget an earlier call on ``db`` chose for this same decision (so that
    ``auto`` continues it rather than planning new runs), or None."""
    import json
    from pathlib import Path

    from ..store import Store, StoreError

    if not Path(db).is_file():
        return None
    try:
        with Store(db, readonly=True) as store:
            rows = store.conn.execute(
                "SELECT request FROM matrices ORDER BY created_at DESC").fetchall()
    except (StoreError, Exception):  # an unreadable file is refused later, in one line
        return None
    for (text,) in rows:
        m = json.loads(text)
        if (m.get("tasks") == [request.task] and m.get("models") == list(request.models)
                and m.get("task_params") == {request.task: dict(request.task_params)}
                and m.get("train_sizes") == [request.train_size]
                and (m.get("training") or {}).get("max_steps") == request.training["max_steps"]):
            return (m.get("training") or {}).get("param_budget")
    return None
