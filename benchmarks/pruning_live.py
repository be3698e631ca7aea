"""Pruned vs unpruned tuning, trained: cost per trial and the selected trials' evaluation scores.

Compares a database tuned with ``[tuning] prune = "halving"`` with one tuned without (by default
the claim study's, results/claim.sqlite), cell by cell (data set x training size x model) for
the cells the pruned one holds. Both evaluate their selected trial on the same evaluation seeds
(the same data subset and order per seed), so the scores pair by seed.

* **cost per trial**: the tuning runs' optimizer steps over the number of trials, every tuning
  seed and rung included, after / before; and their run-seconds (start to finish of each run:
  setup, validation and test included), as trained and at the unpruned database's rates (its
  training seconds per step and its other seconds per run, so that a machine busier or idler
  during one of the two does not decide the ratio);
* **pruned - unpruned**: the mean paired difference of the test score over the evaluation seeds
  with its 95% t-interval.

    python benchmarks/pruning_live.py --pruned PRUNED.sqlite [--unpruned results/claim.sqlite]

Reproduce the pruned database (digits n = 80 and 320, LSTM and Transformer, one core):

    sed 's/^train_sizes = .*/train_sizes = [80, 320]/' results/claim-study/1-digits.toml \\
      | sed '/^\\[tuning\\]/,$d' > pruned.toml
    printf '[tuning]\\ntrials = 12\\nseeds = 2\\nprune = "halving"\\neta = 3\\nrungs = 2\\n'\\
'min_steps = 100\\n' >> pruned.toml
    bench run --matrix pruned.toml --db pruned.sqlite --workers 1
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from scipy import stats

from seqbench.experiment.tuning import is_tune, trial_key
from seqbench.records import RunRecord
from seqbench.store import Store


@dataclass
class Cell:
    trials: set = field(default_factory=set)  # the tuning trials' keys
    runs: int = 0  # tuning runs
    steps: int = 0
    train: float = 0.0  # training seconds of the tuning runs
    wall: float = 0.0  # their seconds from start to finish
    selected: set = field(default_factory=set)  # the evaluated trial's key
    test: dict = field(default_factory=dict)  # evaluation seed -> test score

    def per_trial(self, value: float) -> float:
        return value / len(self.trials)

    def at_rates_of(self, other: "Cell") -> float:
        """Run-seconds per trial at ``other``'s training seconds per step and other seconds
        per run."""
        rate, overhead = other.train / other.steps, (other.wall - other.train) / other.runs
        return self.per_trial(self.steps * rate + self.runs * overhead)


def _cell(r: RunRecord) -> tuple:
    data = r.task_params.get("data", "")
    return (Path(data).parent.name or data, r.train_size or 0, r.model)


def _wall(r: RunRecord) -> float:
    start, end = (datetime.fromisoformat(t) for t in (r.started_at, r.finished_at))
    return (end - start).total_seconds()


def load(db: Path) -> dict[tuple, Cell]:
    with Store(db, readonly=True) as store:
        runs = [r for r in store.runs() if r.status in ("done", "diverged")]
    out: dict[tuple, Cell] = {}
    for r in runs:
        cell = out.setdefault(_cell(r), Cell())
        if is_tune(r):
            cell.trials.add(trial_key(r))
            cell.runs += 1
            cell.steps += r.steps or 0
            cell.train += r.train_seconds or 0.0
            cell.wall += _wall(r)
        elif r.status == "done":
            cell.selected.add(trial_key(r))
            cell.test[r.seed] = (r.test or {}).get(r.primary_metric)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pruned", required=True, type=Path)
    parser.add_argument("--unpruned", default="results/claim.sqlite", type=Path)
    args = parser.parse_args()
    after, before = load(args.pruned), load(args.unpruned)
    print(f"{'cell':>24} {'trials':>8} {'steps per trial':>20} {'run-s per trial':>19} "
          f"{'at unpruned rates':>18} {'unpruned':>8} {'pruned':>6} "
          f"{'pruned - unpruned [95% CI]':>28}")
    pairs = []
    for key in sorted(after):
        a, b = after[key], before.get(key)
        if b is None or not a.trials or not b.trials:
            continue
        assert len(a.selected) <= 1 and len(b.selected) <= 1, key  # one selection each
        pairs.append((a, b))
        steps = (b.per_trial(b.steps), a.per_trial(a.steps))
        wall = (b.per_trial(b.wall), a.per_trial(a.wall))
        fair = a.at_rates_of(b)
        label = f"{key[0]} n={key[1] or 'full'} {key[2]}"
        print(f"{label:>24} {len(b.trials):>2} -> {len(a.trials):<2} "
              f"{steps[0]:5.0f} -> {steps[1]:4.0f} {steps[1] / steps[0]:5.0%} "
              f"{wall[0]:5.1f} -> {wall[1]:4.1f} {wall[1] / wall[0]:5.0%} "
              f"{fair:9.1f} {fair / wall[0]:6.0%} ", end="")
        seeds = sorted(set(a.test) & set(b.test))
        if len(seeds) < 2:
            print(f"{'(fewer than 2 paired evaluation seeds yet)':>44}")
            continue
        diffs = [a.test[s] - b.test[s] for s in seeds]
        mean = statistics.mean(diffs)
        half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5
        print(f"{statistics.mean(b.test[s] for s in seeds):8.3f} "
              f"{statistics.mean(a.test[s] for s in seeds):6.3f} "
              f"{100 * mean:+8.1f} pt [{100 * (mean - half):+5.1f}, {100 * (mean + half):+5.1f}]"
              f" (n={len(diffs)})")
    if pairs:
        n_a, n_b = (sum(len(c.trials) for c in side) for side in zip(*pairs))
        steps = [sum(c.steps for c in side) for side in zip(*pairs)]
        wall_b = sum(b.wall for _, b in pairs)
        fair = sum(a.at_rates_of(b) * len(a.trials) for a, b in pairs)
        print(f"all cells: per trial {steps[1] / n_b:.0f} steps and {wall_b / n_b:.1f} run-s "
              f"before ({n_b} trials), {steps[0] / n_a:.0f} steps and {fair / n_a:.1f} run-s at "
              f"the same rates after ({n_a} trials, every tuning seed and rung): "
              f"{steps[0] / n_a / (steps[1] / n_b):.0%} of the steps, "
              f"{fair / n_a / (wall_b / n_b):.0%} of the run-seconds")


if __name__ == "__main__":
    main()
