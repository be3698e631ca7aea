"""Would a pruned protocol have discarded the configuration the unpruned protocol selected?

Replays pruning rules on the stored tuning trials of results databases, every trial trained in
full with its validation curve stored: by default the claim study's (results/claim.sqlite:
cosine schedule, one tuning seed, 6-8 trials per cell) and the atlas's (results/atlas.sqlite:
warmup-stable-decay, two tuning seeds, 12 trials per cell; a cell with a run still training is
left out). Both are opened read-only. Per cell (database x data set x training size) and
model, the trials race as ``[tuning] prune = "halving"`` races them: rung k judges each trial
still in the race at step ``min_steps x eta^k`` by a **rule** applied to its stored curve up to
that step (mean over its tuning seeds), then a **keep** policy decides who goes on; the best at
the last rung is the pruned pick; with a setting ``ETA,RUNGS,MIN_STEPS,full`` the last rung
trains the survivors in full (unpruned trials) and picks the best of those. Rules:

* ``last``: the validation score at the rung's step (the last point at or before it);
* ``best``: the best validation score up to it (a rung run's best checkpoint);
* ``loss``: the lowest validation loss up to it (ranked lowest first);
* ``fit``: the plateau of a saturating fit ``a - b exp(-t / tau)`` to the scores so far
  (``best`` while fewer than 4 points), capped at the best score plus the gain so far.

Keep policies: ``top``, the best ``ceil(trials / eta^(k+1))`` (successive halving); ``band``,
those and every trial within ``z`` standard errors of the rung's best, the noise of a mean over
the tuning seeds from the seeds' disagreement at that rung (one seed: from the curves' jitter
between successive validations). Printed per setting, rule and model:

* **discarded**: cells where the unpruned protocol's selection (best mean validation after full
  runs, the launcher's rule) was pruned before the last rung;
* **regret**: how much worse (points of the validation metric) the pruned pick scored than the
  unpruned selection when both trained in full, mean and worst over the cells;
* **> sd**: cells where that regret exceeds the seed sd, the standard deviation of the selected
  trial's validation score over its evaluation seeds (a regret within it is seed noise);
* **cost**: training seconds of the rung runs (each trained from scratch to its step, as
  halving.py trains them) over those of the full runs, per trial and tuning seed.

Curves stored at a constant or slowly decaying rate stand in for rung runs, which anneal at
their end: a rung's score here is un-annealed.

    python benchmarks/pruning_replay.py [--db results/claim.sqlite --db results/atlas.sqlite]
        [--models lstm,transformer] [--setting ETA,RUNGS,MIN_STEPS ...] [--rule RULE ...]
        [--z 2] [--budget 0.35] [--cells]

After each database's table: per model, the cheapest setting whose pick stays within seed noise
in every cell and the least regret within ``--budget``; how well the best score at each step
ranks the trials as their full runs do (Kendall tau, mean over cells); the mean steps of a full
tuning run per model and cell (what a rung's steps are a share of); for wsd runs, whether the
cooldown reorders them. The last line shows why the rungs are not Optuna's
``SuccessiveHalvingPruner`` (an asynchronous pruner: the same scores reported in another order
promote other trials).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from seqbench.experiment.halving import promote
from seqbench.store import Store

DEFAULT_DBS = ("results/claim.sqlite", "results/atlas.sqlite")
DEFAULT_SETTINGS = ("3,2,100", "3,2,200", "2,3,100", "2,3,200", "2,2,400", "3,2,100,full",
                    "4,2,100,full", "4,2,200,full", "2,3,100,full")
RULES = ("last", "best", "loss", "fit", "best+band")
MIN_FIT_POINTS = 4


@dataclass
class Point:
    step: int
    seconds: float
    val: float
    loss: float | None
    lr: float | None  # the rate in effect (stored since the wsd schedule)


@dataclass
class SeedRun:
    """One tuning seed of a trial: its full run's score and seconds, and its curve."""

    best_val: float  # -inf: diverged or failed
    seconds: float
    curve: list[Point]
    steps: int = 0  # of the full run

    def upto(self, step: int) -> list[Point]:
        return [p for p in self.curve if p.step <= step]

    def seconds_at(self, step: int) -> float:
        """Training seconds of a run of ``step`` steps: the curve's, or the full run's if it
        stopped before."""
        points = self.upto(step)
        if self.curve and step >= self.curve[-1].step:
            return self.seconds
        return points[-1].seconds if points else 0.0


@dataclass
class Trial:
    key: str
    runs: list[SeedRun]

    @property
    def full(self) -> float:
        return statistics.mean(r.best_val for r in self.runs)


def _last(run: SeedRun, step: int) -> float:
    points = run.upto(step)
    return points[-1].val if points else float("-inf")


def _best(run: SeedRun, step: int) -> float:
    return max((p.val for p in run.upto(step)), default=float("-inf"))


def _loss(run: SeedRun, step: int) -> float:
    losses = [p.loss for p in run.upto(step) if p.loss is not None and math.isfinite(p.loss)]
    return -min(losses) if losses else float("-inf")


def _fit(run: SeedRun, step: int) -> float:
    """The plateau of ``a - b exp(-t / tau)`` fitted to the scores so far, at most the best so
    far plus the gain so far (an extrapolation never more than doubles the progress)."""
    from scipy.optimize import curve_fit

    points = run.upto(step)
    best = _best(run, step)
    if len(points) < MIN_FIT_POINTS:
        return best
    t = np.array([float(p.step) for p in points])
    y = [p.val for p in points]
    gain = max(y) - min(y)
    cap = best + gain
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (a, _, _), _ = curve_fit(lambda x, a, b, tau: a - b * np.exp(-x / tau), t, y,
                                     p0=(best, gain or 0.1, step / 3),
                                     bounds=([min(y), 0.0, t[0] / 4], [cap, 10.0, 20.0 * step]),
                                     maxfev=2000)
    except (RuntimeError, ValueError):
        return best
    return float(a)


SCORE: dict[str, Callable[[SeedRun, int], float]] = {
    "last": _last, "best": _best, "loss": _loss, "fit": _fit}


@dataclass(frozen=True)
class Rule:
    name: str  # e.g. "best" or "best+band"

    @property
    def score(self) -> Callable[[SeedRun, int], float]:
        return SCORE[self.name.split("+")[0]]

    @property
    def band(self) -> bool:
        return self.name.endswith("+band")


def _noise(trials: list[Trial], alive: list[int], step: int, score) -> float:
    """Standard error of one trial's mean rung score: the tuning seeds' disagreement pooled
    over the trials alive, or (one seed) the jitter between successive validations."""
    m = len(trials[alive[0]].runs)
    if m > 1:
        var = [statistics.variance([score(r, step) for r in trials[i].runs]) for i in alive]
        var = [v for v in var if math.isfinite(v)]
        return math.sqrt(statistics.mean(var) / m) if var else 0.0
    diffs = []
    for i in alive:
        vals = [p.val for p in trials[i].runs[0].upto(step)][-5:]
        diffs += [b - a for a, b in zip(vals, vals[1:])]
    return math.sqrt(statistics.mean(d * d for d in diffs) / 2) if diffs else 0.0


@dataclass
class Outcome:
    discarded: bool
    regret: float
    cost: float  # rung seconds / full-run seconds, per trial and tuning seed


def race(trials: list[Trial], eta: int, rungs: int, min_steps: int, rule: Rule,
         z: float = 2.0, full_last: bool = False) -> Outcome | None:
    n = len(trials)
    if -(-n // eta ** (rungs - 1)) < 2:
        return None  # too few trials for these rungs
    winner = max(range(n), key=lambda i: (trials[i].full, trials[i].key))  # select_trial's tie
    alive, cost = list(range(n)), 0.0
    for k in range(rungs):
        steps = min_steps * eta**k
        if k == rungs - 1 and full_last:  # the survivors train in full, as unpruned trials
            cost += sum(r.seconds for i in alive for r in trials[i].runs)
            pick = promote({i: trials[i].full for i in alive}, 1)[0]
            break
        scores = {i: statistics.mean(rule.score(r, steps) for r in trials[i].runs)
                  for i in alive}
        cost += sum(r.seconds_at(steps) for i in alive for r in trials[i].runs)
        if k == rungs - 1:
            pick = promote(scores, 1)[0]
            break
        kept = promote(scores, -(-n // eta ** (k + 1)))
        if rule.band:
            top = max(scores.values())
            # a difference of two means: sqrt(2) standard errors
            margin = z * math.sqrt(2) * _noise(trials, alive, steps, rule.score)
            kept = sorted(set(kept) | {i for i in alive if scores[i] >= top - margin})
        alive = kept
    full = sum(r.seconds for t in trials for r in t.runs)
    return Outcome(discarded=winner not in alive,
                   regret=trials[winner].full - trials[pick].full, cost=cost / full)


Cell = tuple[str, str, int, str]  # database, data set, training size, model


@dataclass
class Study:
    trials: dict[Cell, list[Trial]] = field(default_factory=dict)
    seed_sd: dict[Cell, float] = field(default_factory=dict)


def _cell(db: Path, config: dict, size: int | None, model: str) -> Cell:
    data = config.get("task_params", {}).get("data", "")
    return (db.stem, Path(data).parent.name or data, size or 0, model)


def _read(db: Path, models: list[str]) -> tuple[list, dict[str, list[Point]]]:
    """The classification runs of ``models`` in ``db`` and the curves of their tuning runs
    (read-only through the store, which leaves no -wal/-shm beside a file at rest)."""
    with Store(db, readonly=True) as store:
        rows = [tuple(r) for r in store.conn.execute(
            "SELECT run_id, model, train_size, status, best_val, train_seconds, steps, config, "
            "trial, higher_is_better FROM runs WHERE task = 'classification'") if r[1] in models]
        curves: dict[str, list[Point]] = {}
        for run_id, step, sec, val, metrics in store.conn.execute(
                "SELECT run_id, step, seconds, val_primary, val FROM curves "
                "WHERE val_primary IS NOT NULL ORDER BY run_id, step"):
            extra = json.loads(metrics or "{}")
            curves.setdefault(run_id, []).append(
                Point(step, sec, val, extra.get("loss"), extra.get("lr")))
    return rows, curves


def load(dbs: list[Path], models: list[str]) -> Study:
    """Every cell's tuning trials (full runs on every tuning seed) and the seed sd of its
    selected trial's validation score on the evaluation seeds."""
    study = Study()
    for db in dbs:
        rows, curves = _read(db, models)
        runs: dict[Cell, dict[str, list[SeedRun]]] = {}
        evals: dict[Cell, list[float]] = {}
        busy: set[Cell] = set()
        for run_id, model, size, status, best, seconds, steps, config, trial, higher in rows:
            config, trial = json.loads(config), json.loads(trial or "{}")
            cell = _cell(db, config, size, model)
            assert higher in (1, None), "the replay ranks higher-is-better metrics"
            if status == "running":
                busy.add(cell)
            if trial.get("stage") != "tune":
                if status == "done" and trial.get("stage") == "eval":
                    evals.setdefault(cell, []).append(float(best))
                continue
            if trial.get("prune") or "rung" in trial:
                continue  # a pruned study's rungs are not full runs
            key = json.dumps({k: v for k, v in config.items() if k not in ("seed", "train_size")},
                             sort_keys=True)
            ok = status == "done" and best is not None
            runs.setdefault(cell, {}).setdefault(key, []).append(
                SeedRun(float(best) if ok else float("-inf"), float(seconds or 0.0),
                        curves.get(run_id, []), int(steps or 0)))
        for cell, trials in runs.items():
            if cell in busy or len({len(r) for r in trials.values()}) != 1:
                continue  # still training, or trials on unequal seeds
            study.trials[cell] = [Trial(k, r) for k, r in sorted(trials.items())]
            if len(evals.get(cell, [])) > 1:
                study.seed_sd[cell] = statistics.stdev(evals[cell])
    return study


@dataclass
class Row:
    setting: str
    rule: Rule
    model: str
    outcomes: list[tuple[Cell, Outcome]]

    def beyond_noise(self, study: Study) -> int:
        """Cells whose regret exceeds their seed sd (cells without evaluation runs: unknown)."""
        return sum(o.regret > study.seed_sd[c] for c, o in self.outcomes if c in study.seed_sd)

    @property
    def regret(self) -> float:
        return statistics.mean(o.regret for _, o in self.outcomes)

    @property
    def cost(self) -> float:
        return statistics.mean(o.cost for _, o in self.outcomes)


def replay(study: Study, settings: list[str], rules: list[Rule], models: list[str],
           z: float) -> list[Row]:
    rows = []
    for setting in settings:
        eta, rungs, min_steps = (int(x) for x in setting.split(",")[:3])
        full_last = setting.endswith(",full")
        for rule in rules:
            for model in models:
                raced = [(cell, race(trials, eta, rungs, min_steps, rule, z, full_last))
                         for cell, trials in sorted(study.trials.items()) if cell[3] == model]
                outs = [(c, o) for c, o in raced if o is not None]
                if outs:
                    rows.append(Row(setting, rule, model, outs))
    return rows


def print_rows(rows: list[Row], study: Study, per_cell: bool) -> None:
    print(f"{'eta,rungs,min':>13} {'rung steps':>12} {'rule':>9} {'model':>11} {'cells':>5} "
          f"{'discarded':>10} {'regret mean/max':>16} {'> sd':>4} {'seed sd':>7} {'cost':>5}")
    for row in rows:
        eta, rungs, min_steps = (int(x) for x in row.setting.split(",")[:3])
        steps = [str(min_steps * eta**k) for k in range(rungs)]
        if row.setting.endswith(",full"):
            steps[-1] = "full"
        steps = ",".join(steps)
        k = len(row.outcomes)
        disc = sum(o.discarded for _, o in row.outcomes)
        regret = [100 * o.regret for _, o in row.outcomes]
        noise = [100 * study.seed_sd[c] for c, _ in row.outcomes if c in study.seed_sd]
        print(f"{row.setting:>13} {steps:>12} {row.rule.name:>9} {row.model:>11} {k:>5} "
              f"{disc:>3} ({disc / k:4.0%}) {statistics.mean(regret):6.1f} / {max(regret):4.1f} pt "
              f"{row.beyond_noise(study):>4} {statistics.mean(noise):4.1f} pt {row.cost:5.0%}")
        if per_cell:
            for cell, o in row.outcomes:
                print(f"{'':>15}{'/'.join(map(str, cell[:3])):>30} regret {100 * o.regret:5.1f} "
                      f"pt (sd {100 * study.seed_sd.get(cell, float('nan')):.1f}) "
                      f"cost {o.cost:4.0%}{'  discarded' if o.discarded else ''}")


def trade_offs(rows: list[Row], study: Study, models: list[str], budget: float) -> list[str]:
    """Per model (over the settings that race every cell): the cheapest setting and rule whose
    pick is within seed noise in every cell, and the lowest mean regret within ``budget``."""
    out = []
    for model in models:
        mine = [r for r in rows if r.model == model]
        full = [r for r in mine if len(r.outcomes) == max(len(m.outcomes) for m in mine)]
        ok = [r for r in full if not r.beyond_noise(study)]
        known = sum(c in study.seed_sd for c, _ in full[0].outcomes) if full else 0
        line = f"{model}: "
        if ok:
            best = min(ok, key=lambda r: r.cost)
            line += (f"within seed noise in all {known} cells with evaluation seeds from "
                     f"{best.setting} {best.rule.name} at {best.cost:.0%}")
        else:
            line += "no setting keeps every cell within seed noise"
        cheap = [r for r in full if r.cost <= budget]
        if cheap:
            best = min(cheap, key=lambda r: (r.regret, r.cost))
            line += (f"; at <= {budget:.0%}, least regret {100 * best.regret:.1f} pt "
                     f"({best.setting} {best.rule.name}, {best.cost:.0%}, "
                     f"{best.beyond_noise(study)} cells beyond seed noise)")
        out.append(line)
    return out


AGREEMENT_STEPS = (100, 200, 300, 400, 600, 800)


def agreement(study: Study, models: list[str]) -> list[str]:
    """Per model and step: how well the best score so far at that step ranks the trials as
    their full runs do (Kendall tau, mean over cells), how often the unpruned selection is in
    the top third there, and what training to that step costs."""
    from scipy.stats import kendalltau

    out = [f"{'model':>11} {'step':>5} {'tau':>5} {'selection in top third':>23} {'cost':>5}"]
    for model in models:
        cells = [t for c, t in sorted(study.trials.items()) if c[3] == model]
        for step in AGREEMENT_STEPS:
            taus, top, cost = [], 0, []
            for trials in cells:
                at = [statistics.mean(_best(r, step) for r in t.runs) for t in trials]
                full = [t.full for t in trials]
                tau = kendalltau(at, full)[0]
                if math.isfinite(tau):
                    taus.append(tau)
                winner = max(range(len(trials)), key=lambda i: (full[i], trials[i].key))
                top += winner in promote(dict(enumerate(at)), -(-len(trials) // 3))
                cost.append(sum(r.seconds_at(step) for t in trials for r in t.runs)
                            / sum(r.seconds for t in trials for r in t.runs))
            if cells:
                out.append(f"{model:>11} {step:>5} {statistics.mean(taus):5.2f} "
                           f"{top:>10} of {len(cells):<2} cells {statistics.mean(cost):9.0%}")
    return out


def full_steps(study: Study, models: list[str]) -> str:
    """Mean steps of a full tuning run (every trial and tuning seed), per model and cell."""
    parts = []
    for model in models:
        cells = [(c, t) for c, t in sorted(study.trials.items()) if c[3] == model]
        if cells:
            parts.append(f"{model} " + ", ".join(
                f"{c[1]}/{c[2]} {statistics.mean(r.steps for t in trials for r in t.runs):.0f}"
                for c, trials in cells))
    return "Steps per full tuning run, mean over trials and tuning seeds: " + "; ".join(parts)


def annealing(study: Study) -> list[str]:
    """wsd runs: does the cooldown reorder the trials? Kendall tau per cell between the last
    score at the peak rate (before the cooldown) and the run's score after it."""
    from scipy.stats import kendalltau

    out = []
    for cell, trials in sorted(study.trials.items()):
        pairs = []
        for run in (r for t in trials for r in t.runs):
            rates = [p.lr for p in run.curve if p.lr is not None]
            before = [p.val for p in run.curve if rates and p.lr is not None
                      and p.lr >= 0.999 * max(rates)]
            if before and math.isfinite(run.best_val):
                pairs.append((before[-1], run.best_val))
        if len(pairs) >= 6:
            tau = kendalltau(*zip(*pairs))[0]
            gain = statistics.mean(after - before for before, after in pairs)
            out.append(f"{'/'.join(map(str, cell[1:]))}: {len(pairs)} runs, tau {tau:.2f}, "
                       f"cooldown {100 * gain:+.1f} pt on average")
    return out


def optuna_order_check() -> str:
    """Optuna's SuccessiveHalvingPruner on the same nine first-rung scores, reported in two
    orders: how many trials it promotes each time."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    counts = []
    for order in (range(9), reversed(range(9))):
        study = optuna.create_study(direction="maximize", pruner=optuna.pruners.
                                    SuccessiveHalvingPruner(min_resource=100, reduction_factor=3))
        trials = [study.ask() for _ in range(9)]
        promoted = 0
        for i in order:
            trials[i].report(i / 10, step=100)
            promoted += not trials[i].should_prune()
        counts.append(promoted)
    return (f"Optuna SuccessiveHalvingPruner (eta 3), the same 9 scores reported best-last vs "
            f"best-first: {counts[0]} vs {counts[1]} trials promoted")


def _setting(text: str) -> str:
    """``ETA,RUNGS,MIN_STEPS[,full]``, checked."""
    parts = text.split(",")
    try:
        eta, rungs, min_steps = (int(x) for x in parts[:3])
    except ValueError:
        eta = 0
    if len(parts) not in (3, 4) or parts[3:] not in ([], ["full"]) or eta < 2 or rungs < 2 \
            or min_steps < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give ETA,RUNGS,MIN_STEPS[,full], e.g. 3,2,100 or 3,2,100,full "
            "(eta >= 2, rungs >= 2, min_steps >= 1)")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", action="append", type=Path,
                        help=f"a results database (repeatable; default {' '.join(DEFAULT_DBS)})")
    parser.add_argument("--models", default="lstm,transformer")
    parser.add_argument("--setting", action="append", metavar="ETA,RUNGS,MIN_STEPS[,full]",
                        type=_setting, help="rungs to replay (repeatable; default "
                        f"{' '.join(DEFAULT_SETTINGS)}); ',full': the survivors train in full")
    parser.add_argument("--rule", action="append", choices=RULES,
                        help=f"rung rules to replay (repeatable; default all: {', '.join(RULES)})")
    parser.add_argument("--z", type=float, default=2.0, help="band: standard errors kept")
    parser.add_argument("--budget", type=float, default=0.35,
                        help="cost per trial and tuning seed for the trade-off line")
    parser.add_argument("--cells", action="store_true", help="also print every cell's outcome")
    args = parser.parse_args()
    models = args.models.split(",")
    dbs = args.db or [Path(p) for p in DEFAULT_DBS]
    for db in dbs:
        if not db.is_file():
            parser.error(f"no results database at {db}")
    for db in dbs:  # one table per database: their schedules and tuning seeds differ
        study = load([db], models)
        seeds = {len(t.runs) for trials in study.trials.values() for t in trials}
        print(f"\n{db}: {len(study.trials)} cells (data set x size x model), "
              f"{sum(map(len, study.trials.values()))} tuning trials trained in full on "
              f"{'/'.join(map(str, sorted(seeds)))} tuning seed(s)")
        rows = replay(study, args.setting or list(DEFAULT_SETTINGS),
                      [Rule(r) for r in args.rule or RULES], models, args.z)
        print_rows(rows, study, args.cells)
        for line in trade_offs(rows, study, models, args.budget):
            print(line)
        print("\nRank agreement of the best score so far with the full runs:")
        print("\n".join(agreement(study, models)))
        print(full_steps(study, models))
        annealed = annealing(study)
        if annealed:
            print("Annealed vs un-annealed (wsd runs: the last score at the peak rate vs the "
                  "score after the cooldown):")
            print("\n".join(annealed))
    print(optuna_order_check())


if __name__ == "__main__":
    main()
