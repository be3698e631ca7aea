"""Would successive halving have discarded the configuration the unpruned protocol selected?

Replays successive halving on the stored tuning trials of a results database (by default the
claim study's, results/claim.sqlite: every trial trained in full, its validation curve stored).
Per cell (task data set x training size) and model, the trials race as ``[tuning] prune =
"halving"`` races them: rung k judges each trial still in the race by its validation score at
step ``min_steps x eta^k`` (read off its stored curve; a run that stopped earlier keeps its
last score; ``--best-so-far``: its best score up to that step), the best
``ceil(trials / eta^(k+1))`` go on, and the best at the last rung is the pruned pick. Printed
per model:

* **discarded**: cells where the unpruned protocol's selection (best validation after a full
  run, the launcher's rule) was pruned before the last rung;
* **other pick**: cells where the pruned pick is another trial;
* **val. regret**: how much worse (points of the validation metric) the pruned pick scored than
  the unpruned selection when both trained in full, mean and worst over the cells;
* **seed sd**: for scale, the standard deviation of the selected trial's validation score over
  its evaluation seeds (mean over the cells): a regret within it is seed noise;
* **cost per trial**: training seconds of the rungs (from the curves) over those of the full
  runs, per trial and tuning seed.

The stored runs follow the old schedule (not annealed at the rung's end), so a rung here sees an
un-annealed model: the replay is the cheap, offline estimate of the risk; the live comparison
trains the rungs.

    python benchmarks/pruning_replay.py [--db results/claim.sqlite] [--models lstm,transformer]
        [--setting ETA,RUNGS,MIN_STEPS ...]

It also shows why the rungs are not Optuna's ``SuccessiveHalvingPruner``: that pruner is
asynchronous, so the same scores reported in another order promote other trials.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from seqbench.experiment.halving import promote
from seqbench.experiment.tuning import is_tune, select_trial, trial_key
from seqbench.records import RunRecord
from seqbench.store import Store

DEFAULT_SETTINGS = ("3,2,100", "3,2,200", "2,3,100", "2,3,200")


@dataclass
class Trial:
    key: str
    best_val: float  # after the full run
    curve: list[dict]  # step, seconds, val_primary
    seconds: float  # the full run's training seconds

    def at(self, step: int, best_so_far: bool = False) -> tuple[float, float]:
        """Validation score and training seconds at ``step`` (the last point at or before it;
        with ``best_so_far`` the best score up to it, as a rung run's best checkpoint)."""
        points = [p for p in self.curve if p["step"] <= step and p["val_primary"] is not None]
        if not points:
            return float("-inf"), 0.0
        value = max(p["val_primary"] for p in points) if best_so_far else points[-1]["val_primary"]
        return value, points[-1]["seconds"]


@dataclass
class Outcome:
    discarded: bool
    other_pick: bool
    regret: float
    cost: float  # rung seconds / full-run seconds, per trial


def race(trials: list[Trial], eta: int, rungs: int, min_steps: int,
         best_so_far: bool = False) -> Outcome | None:
    n = len(trials)
    if -(-n // eta ** (rungs - 1)) < 2:
        return None  # too few trials for these rungs
    winner = max(range(n), key=lambda i: trials[i].best_val)  # ties never occur in this data
    alive, cost = list(range(n)), 0.0
    for k in range(rungs):
        steps = min_steps * eta**k
        scores = {}
        for i in alive:
            scores[i], seconds = trials[i].at(steps, best_so_far)
            cost += seconds
        if k == rungs - 1:
            pick = promote(scores, 1)[0]
            break
        alive_before = alive
        alive = promote(scores, -(-n // eta ** (k + 1)))
        assert set(alive) <= set(alive_before)
    return Outcome(
        discarded=winner not in alive,
        other_pick=pick != winner,
        regret=trials[winner].best_val - trials[pick].best_val,
        cost=cost / sum(t.seconds for t in trials),
    )


def _cell(r: RunRecord) -> tuple:
    data = r.task_params.get("data", "")
    return (Path(data).parent.name or data, r.train_size or 0, r.model)


def cells(db: Path, models: list[str]) -> tuple[dict[tuple, list[Trial]], dict[tuple, float]]:
    """(data set, training size, model) -> the tuning trials of that cell, and the seed sd of
    the selected trial's validation score on the evaluation seeds."""
    with Store(db, readonly=True) as store:
        every = [r for r in store.runs() if r.model in models and r.status == "done"
                 and r.task == "classification"]
        runs = [r for r in every if is_tune(r)]
        curves = store.curves(r.run_id for r in runs)
    out: dict[tuple, list[Trial]] = {}
    for r in runs:
        out.setdefault(_cell(r), []).append(
            Trial(trial_key(r), float(r.best_val), curves.get(r.run_id, []),
                  float(r.train_seconds)))
    evals: dict[tuple, list[float]] = {}
    for r in every:
        if not is_tune(r) and _cell(r) in out:
            evals.setdefault(_cell(r), []).append(float(r.best_val))
    sd = {cell: statistics.stdev(v) for cell, v in evals.items() if len(v) > 1}
    for key, trials in out.items():
        # The unpruned protocol's own rule picks the same trial the replay calls the winner.
        assert max(trials, key=lambda t: t.best_val).key == select_trial(
            [{"status": "done", "best_val": t.best_val, "seed": 0, "train_size": 0,
              "config": json.loads(t.key)} for t in trials], True), key
    return out, sd


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="results/claim.sqlite", type=Path)
    parser.add_argument("--models", default="lstm,transformer")
    parser.add_argument("--setting", action="append", metavar="ETA,RUNGS,MIN_STEPS",
                        help=f"rungs to replay (repeatable; default {' '.join(DEFAULT_SETTINGS)})")
    parser.add_argument("--best-so-far", action="store_true",
                        help="judge a rung by the best validation up to its step, not the last")
    args = parser.parse_args()
    models = args.models.split(",")
    by_cell, sd = cells(args.db, models)
    print(f"{args.db}: {len(by_cell)} cells (data set x size x model), "
          f"{sum(map(len, by_cell.values()))} tuning trials trained in full")
    header = (f"{'eta,rungs,min':>13} {'rung steps':>14} {'model':>12} {'cells':>5} "
              f"{'discarded':>11} {'other pick':>11} {'val. regret mean/max':>21} {'seed sd':>7} "
              f"{'cost per trial':>14}")
    print(header)
    for setting in args.setting or DEFAULT_SETTINGS:
        eta, rungs, min_steps = (int(x) for x in setting.split(","))
        steps = ",".join(str(min_steps * eta**k) for k in range(rungs))
        for model in models:
            raced = [(cell, race(trials, eta, rungs, min_steps, args.best_so_far))
                     for cell, trials in sorted(by_cell.items()) if cell[2] == model]
            outs = [o for _, o in raced if o is not None]
            noise = [100 * sd[cell] for cell, o in raced if o is not None and cell in sd]
            if not outs:
                continue
            k = len(outs)
            disc, other = sum(o.discarded for o in outs), sum(o.other_pick for o in outs)
            regret = [100 * o.regret for o in outs]
            print(f"{setting:>13} {steps:>14} {model:>12} {k:>5} "
                  f"{disc:>3} ({disc / k:4.0%}) {other:>3} ({other / k:4.0%}) "
                  f"{statistics.mean(regret):9.1f} / {max(regret):4.1f} pt "
                  f"{statistics.mean(noise):4.1f} pt"
                  f"{statistics.mean(o.cost for o in outs):13.0%}")
    print(optuna_order_check())


if __name__ == "__main__":
    main()
