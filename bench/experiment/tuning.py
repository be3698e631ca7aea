"""The tuning protocol's settings (``[tuning]``) and its selection rule, which the analysis shares.

Every model gets the same number of trials per cell, drawn in its own search space and trained on
tuning seeds kept apart from the evaluation seeds; the trial with the best mean validation score
on those seeds then runs on every evaluation seed. Test scores never take part in the choice.
How the launcher carries this out, round by round, is :mod:`.rounds`; pruned tuning
(``prune = "halving"``) is :mod:`.halving`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ..api import Choice, Param, PluginError, Range, resolve_params
from ..limits import MAX_SEED, MAX_SEEDS
from ..records import Planned, RunRecord
from ..util import did_you_mean, shown

TUNING_SEED_BASE = 10_000  # "[tuning] seeds = n" means seeds 10000 .. 10000 + n - 1

# Keys of a trial dict that describe the protocol rather than a hyperparameter value.
META = ("stage", "round", "per", "trials", "lr_range", "extended", "lr_edge",
        "rung", "full_steps", "prune", "rungs", "last_rung", "rank")

# above 0 (0 trains nothing), at most 10 (larger AdamW steps overflow float32 at once)
LR = Param(1e-3, "AdamW learning rate", minimum=0.0, maximum=10.0, min_open=True)
MAX_TRIALS = 1_000  # trials per model and cell (and per extension round)

TUNING: dict[str, Param] = {
    "trials": Param(8, "trials per model and cell, drawn in each model's own search space",
                    minimum=2, maximum=MAX_TRIALS),
    "per": Param("size", "select per training size or once per task variant", ("size", "task")),
    "extend": Param(2, "extension rounds at most when a selected learning rate sits on an edge",
                    minimum=0, maximum=100),
    "extend_trials": Param(0, "trials per model in an extension round (0: half of trials, "
                              "at least 2)", minimum=0, maximum=MAX_TRIALS),
    "prune": Param("off", "successive halving within each model's trials, or every trial "
                          "trained in full", ("off", "halving")),
    "eta": Param(3, "successive halving: each rung keeps the best 1/eta of the trials and "
                    "trains them eta times longer", minimum=2, maximum=100),
    "rungs": Param(2, "successive halving: budgets per trial (the last one selects)",
                   minimum=2, maximum=10),
    "min_steps": Param(100, "successive halving: optimizer steps of the first rung",
                       minimum=1, maximum=10_000_000),
    "last_rung": Param("steps", "successive halving: the last rung trains min_steps x "
                       "eta^(rungs - 1) steps, or the survivors in full (then every earlier "
                       "rung is the first steps of that full run, not annealed)",
                       ("steps", "full")),
    "rank": Param("score", "successive halving: a rung before the last ranks trials by their "
                  "best validation score or their lowest validation loss", ("score", "loss")),
}
# the keys that go with prune = "halving"
HALVING = ("eta", "rungs", "min_steps", "last_rung", "rank")


@dataclass(frozen=True)
class Tuning:
    trials: int  # per model and cell in the first round (a grid's length for a grid)
    seeds: tuple[int, ...]  # the tuning seeds, disjoint from the evaluation seeds
    per: str = "size"
    grid: tuple[float, ...] | None = None  # legacy "lr = [...]": a fixed list, never extended
    extend: int = 2
    extend_trials: int = 4
    space: dict = field(default_factory=dict)  # [tuning.space.MODEL]: model -> key -> Range|Choice
    prune: str = "off"  # "halving": successive halving over rungs (bench/experiment/halving.py)
    eta: int = 3
    rungs: int = 2
    min_steps: int = 100
    last_rung: str = "steps"  # "full": the survivors of the earlier rungs train in full
    rank: str = "score"  # "loss": the earlier rungs rank by lowest validation loss

    @property
    def full_last(self) -> bool:
        return self.last_rung == "full"

    def rung_steps(self, rung: int) -> int | None:
        """The step budget of rung ``rung`` (0 = the first): min_steps x eta^rung; None for a
        last rung that trains in full."""
        if self.full_last and rung == self.rungs - 1:
            return None
        return self.min_steps * self.eta ** rung

    def kept(self, rung: int) -> int:
        """Trials per model that train at rung ``rung``: the best ceil(trials / eta^rung)."""
        return -(-self.trials // self.eta ** rung)

    def stage(self, rung: int) -> str:
        """The console's name for the first round of trials, or for a rung."""
        if self.prune != "halving":
            return "tuning trials"
        steps = self.rung_steps(rung)
        budget = "in full" if steps is None else f"x {steps} steps"
        return f"rung {rung + 1} of {self.rungs} ({self.kept(rung)} trials {budget})"

    @classmethod
    def parse(cls, table: dict, eval_seeds: list[int]) -> "Tuning":
        table = dict(table)
        for key in table:
            if key not in (*TUNING, "lr", "seeds", "space"):
                raise PluginError(f"[tuning] has no parameter {key!r}"
                                  f"{did_you_mean(key, [*TUNING, 'lr', 'seeds', 'space'])}")
        lrs = table.pop("lr", None)
        space = _space_overrides(table.pop("space", {}))
        seeds = _tuning_seeds(table.pop("seeds", 1), eval_seeds)
        if lrs is not None:
            for key in ("trials", "extend", "extend_trials", "space", "prune", *HALVING):
                if key in table or (key == "space" and space):
                    raise PluginError(
                        f"[tuning] {key} goes with each model's own search space; a fixed "
                        "lr = [...] grid is not drawn from or extended: give one or the other"
                    )
            grid = _grid(lrs)
            opts = resolve_params("[tuning]", TUNING, table)
            return cls(len(grid), seeds, opts["per"], grid, extend=0, extend_trials=0)
        if "trials" not in table:
            raise PluginError(
                "[tuning] needs trials = N (trials per model in its own search space), or a "
                "fixed grid lr = [...]"
            )
        opts = resolve_params("[tuning]", TUNING, table)
        if opts["prune"] == "halving":
            return cls._halving(opts, table, seeds, space)
        for key in HALVING:
            if key in table:
                raise PluginError(f'[tuning] {key} goes with prune = "halving" (successive '
                                  "halving); without it every trial trains in full")
        extra = opts["extend_trials"] or max(2, opts["trials"] // 2)
        return cls(opts["trials"], seeds, opts["per"], None, opts["extend"], extra, space)

    @classmethod
    def _halving(cls, opts: dict, table: dict, seeds: tuple, space: dict) -> "Tuning":
        for key in ("extend", "extend_trials"):
            if key in table:
                raise PluginError(
                    f'[tuning] {key} goes with the unpruned protocol: prune = "halving" selects '
                    "among its own trials (widen a range in [tuning.space.MODEL] instead)")
        out = cls(opts["trials"], seeds, opts["per"], None, 0, 0, space, "halving",
                  opts["eta"], opts["rungs"], opts["min_steps"], opts["last_rung"], opts["rank"])
        last = out.rungs - 1
        if out.kept(last) < 2:
            raise PluginError(
                f"[tuning] trials = {out.trials} with eta = {out.eta} leaves "
                f"{out.kept(last)} trial at rung {out.rungs} of {out.rungs}, so the last rung "
                f"selects nothing: give more than eta^(rungs - 1) = {out.eta ** last} trials, "
                "or fewer rungs")
        return out

    def describe(self) -> str:
        seeds = ", ".join(map(str, self.seeds))
        if self.grid:
            what = f"the learning rates {', '.join(f'{v:g}' for v in self.grid)} (a fixed grid)"
        else:
            what = f"{self.trials} quasi-random trials in its own search space"
        text = f"tuning: every model gets {what} per {self.per}, on tuning seed(s) {seeds}"
        if self.prune == "halving":
            kept = " -> ".join(str(self.kept(k)) for k in range(self.rungs))
            rank = "loss" if self.rank == "loss" else "score"
            if self.full_last:
                steps = ", ".join(str(self.rung_steps(k)) for k in range(self.rungs - 1))
                rungs = (f"rungs of the first {steps} steps of each trial's run (not annealed), "
                         "then the survivors in full")
            else:
                steps = ", ".join(str(self.rung_steps(k)) for k in range(self.rungs))
                rungs = f"rungs of {steps} steps (a run each, annealed at its end)"
            return (text + f"; successive halving: {rungs}, {kept} trials, the best 1/"
                    f"{self.eta} on mean validation {rank} go on, and the best validation "
                    "score at the last rung is selected")
        if self.extend:
            text += (f"; a learning rate selected at an edge of its range extends the range by "
                     f"a decade, {self.extend_trials} more trials for every model of that cell, "
                     f"at most {self.extend} rounds")
        return text


def _space_overrides(table: Any) -> dict:
    """``[tuning.space.MODEL]``: ``key = [values]`` (a Choice) or ``key = {low = .., high = ..,
    log = true, integer = false}`` (a Range), replacing or adding to the plugin's own space.
    Checked against the model when the plan is made."""
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise PluginError("[tuning.space] must hold one table per model, e.g. "
                          "[tuning.space.transformer]")
    out: dict = {}
    for model, keys in table.items():
        out[model] = {}
        for key, value in keys.items():
            where = f"[tuning.space.{model}] {key}"
            if isinstance(value, list):
                out[model][key] = Choice(tuple(value))
            elif isinstance(value, dict):
                extra = set(value) - {"low", "high", "log", "integer"}
                if extra or not {"low", "high"} <= set(value):
                    raise PluginError(f"{where}: a range is {{low = .., high = .., "
                                      "log = true|false, integer = true|false}")
                try:
                    out[model][key] = Range(**value)
                except PluginError as exc:
                    raise PluginError(f"{where}: {exc}") from None
            else:
                raise PluginError(f"{where}: give a list of values or a table {{low, high, log}}")
    return out


def _tuning_seeds(value: Any, eval_seeds: list[int]) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise PluginError(f"[tuning] seeds = {value}: at least one tuning seed is needed")
        if value > MAX_SEEDS:
            raise PluginError(f"[tuning] seeds = {value}: at most {MAX_SEEDS} tuning seeds")
        seeds = tuple(TUNING_SEED_BASE + i for i in range(value))
    elif isinstance(value, list) and value:
        if not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED
                   for s in value):
            raise PluginError(f"[tuning] seeds: {shown(value)} is not a list of integers from 0 "
                              f"to {MAX_SEED} (numpy's seed range)")
        if len(value) > MAX_SEEDS:
            raise PluginError(f"[tuning] seeds: {len(value)} seeds; at most {MAX_SEEDS}")
        if len(set(value)) != len(value):
            raise PluginError("[tuning] seeds repeat: each seed once")
        seeds = tuple(value)
    else:
        raise PluginError(
            f"[tuning] seeds: {value!r} is neither a number of tuning seeds nor a list of them"
        )
    shared = sorted(set(seeds) & set(eval_seeds))
    if shared:
        raise PluginError(
            f"[tuning] seed {shared[0]} is also an evaluation seed: a trial selected on a seed "
            "must not be scored on it (use seeds = N for N seeds from 10000 up, or other seeds)"
        )
    return seeds


def _grid(lrs: Any) -> tuple[float, ...]:
    if not isinstance(lrs, list) or len(lrs) < 2:
        raise PluginError("[tuning] lr must be a list of at least two learning rates")
    if len(lrs) > MAX_TRIALS:
        raise PluginError(f"[tuning] lr: {len(lrs)} learning rates; at most {MAX_TRIALS}")
    try:
        return tuple(LR.coerce("lr", v) for v in lrs)
    except PluginError as exc:
        raise PluginError(f"[tuning] {exc}") from None


# Selection: the launcher, the analysis and the summary table apply this one rule.


def is_tune(run: RunRecord) -> bool:
    """A run on a tuning seed: it decides the trial, and is never evaluated."""
    return (run.trial or {}).get("stage") == "tune"


def evaluated(runs: list[RunRecord]) -> list[RunRecord]:
    """The runs a comparison may count: evaluation runs, and legacy runs (no stage)."""
    return [r for r in runs if not is_tune(r)]


def trial_key(run: RunRecord) -> str:
    """A run's configuration apart from its seed and training size: runs sharing it are seeds
    (and sizes) of one trial. Different learning rates, hyperparameters or recipes (say, two
    matrices in one database) are different trials and are never pooled as extra seeds."""
    return _key(run.config, run.trial)


def spec_key(spec: Planned) -> str:
    """:func:`trial_key` of the run ``spec`` plans."""
    return _key(spec.config(), spec.trial)


def _key(config: Mapping[str, Any], trial: Mapping[str, Any] | None) -> str:
    if config:
        rest = {k: v for k, v in config.items() if k not in ("seed", "train_size")}
        full = (trial or {}).get("full_steps")
        if full is not None:  # a rung of successive halving: the trial at a shorter budget
            training = {k: v for k, v in rest["training"].items() if k != "stop_step"}
            rest["training"] = {**training, "max_steps": full}
        return json.dumps(rest, sort_keys=True, default=str)
    return json.dumps(trial or {}, sort_keys=True, default=str)


def higher_is_better_of(runs: Iterable[RunRecord | None]) -> bool:
    """The direction the runs' primary metric is better in (higher when none says)."""
    return next((r.higher_is_better for r in runs
                 if r is not None and r.higher_is_better is not None), True)


def chosen_trials(runs: Sequence[RunRecord]) -> dict[int | None, str | None]:
    """For the runs of one model in one task variant: training size -> the selected trial key.

    Honours the launcher's scope: a trial tuned ``per = "task"`` (its ``trial`` says so) is
    chosen once across every size, as the launcher chose it. Keep only :func:`evaluated` runs
    of the chosen key when scoring it.
    """
    higher = higher_is_better_of(runs)
    by_size: dict[int | None, list[RunRecord]] = {}
    for r in runs:
        by_size.setdefault(r.train_size, []).append(r)
    if any((r.trial or {}).get("per") == "task" for r in runs):
        key = select_trial(runs, higher)
        return {size: key for size in by_size}
    return {size: select_trial(rs, higher) for size, rs in by_size.items()}


def select_trial(runs: Sequence[RunRecord], higher_is_better: bool) -> str | None:
    """The trial key with the best mean validation score, on the tuning runs when there are any
    (evaluation runs never vote), else over the seeds every trial ran (legacy records).

    Comparing on shared seeds keeps the choice the launcher made even after the selected trial
    has been run on more seeds. A diverged run scores worst.
    """
    tune = [r for r in runs if is_tune(r)]
    rungs = [(r.trial or {}).get("rung") for r in tune]
    if any(k is not None for k in rungs):  # successive halving: the last rung selects
        top = max(k for k in rungs if k is not None)
        tune = [r for r, k in zip(tune, rungs) if k == top]
    # trial -> (size, seed) -> run
    by_trial: dict[str, dict[tuple[int | None, int], RunRecord]] = {}
    for r in tune or runs:
        if r.status in ("done", "diverged"):
            by_trial.setdefault(trial_key(r), {})[(r.train_size, r.seed)] = r
    if not by_trial:
        return None
    shared = set.intersection(*(set(seeds) for seeds in by_trial.values()))
    worst = float("-inf") if higher_is_better else float("inf")

    def score(key: str) -> float:
        chosen = [s for s in by_trial[key] if s in shared] or list(by_trial[key])
        values = []
        for s in chosen:
            r = by_trial[key][s]
            values.append(float(r.best_val) if r.status == "done" and r.best_val is not None
                          else worst)
        return sum(values) / len(values)

    ranked = sorted(by_trial, key=lambda k: (score(k), k), reverse=higher_is_better)
    return ranked[0]
