"""Pruned vs unpruned tuning, trained: cost per trial and the selected trials' evaluation scores.

Compares a database tuned with ``[tuning] prune = "halving"`` with one tuned without (by default
the claim study's, results/claim.sqlite), cell by cell (data set x training size x model) for
the cells the pruned one holds. Both evaluate their selected trial on the same evaluation seeds
(the same data subset and order per seed), so the scores pair by seed.

* **cost per trial**: the tuning runs' optimizer steps, and their seconds (start to finish of
  each run, validation and test included), over the number of trials, every tuning seed and rung
  included; the ratio after / before (seconds depend on the machine's load at the time, steps
  do not);
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
from datetime import datetime
from pathlib import Path

from scipy import stats

from seqbench.experiment.tuning import is_tune, trial_key
from seqbench.store import Store


def _cell(r: dict) -> tuple:
    data = r["config"]["task_params"].get("data", "")
    return (Path(data).parent.name or data, r["train_size"] or 0, r["model"])


def _wall(r: dict) -> float:
    start, end = (datetime.fromisoformat(r[k]) for k in ("started_at", "finished_at"))
    return (end - start).total_seconds()


def load(db: Path) -> dict[tuple, dict]:
    """cell -> the tuning trials' keys, run-seconds and steps, and the evaluation runs' keys and
    test scores by seed."""
    with Store(db, readonly=True) as store:
        runs = [r for r in store.runs() if r["status"] in ("done", "diverged")]
    out: dict[tuple, dict] = {}
    for r in runs:
        cell = out.setdefault(_cell(r), {"keys": set(), "wall": 0.0, "steps": 0, "test": {},
                                         "eval_keys": set()})
        if is_tune(r):
            cell["keys"].add(trial_key(r))
            cell["wall"] += _wall(r)
            cell["steps"] += r["steps"] or 0
        elif r["status"] == "done":
            cell["eval_keys"].add(trial_key(r))
            cell["test"][r["seed"]] = (r["test"] or {}).get(r["primary_metric"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pruned", required=True, type=Path)
    parser.add_argument("--unpruned", default="results/claim.sqlite", type=Path)
    args = parser.parse_args()
    after, before = load(args.pruned), load(args.unpruned)
    print(f"{'cell':>24} {'trials':>9} {'run-s per trial':>17} {'ratio':>6} "
          f"{'steps per trial':>17} {'ratio':>6} {'unpruned':>9} {'pruned':>7} "
          f"{'pruned - unpruned [95% CI]':>28}")
    totals = {"before": [0.0, 0, 0], "after": [0.0, 0, 0]}
    for cell in sorted(after):
        a, b = after[cell], before.get(cell)
        if b is None or not a["keys"] or not b["keys"]:
            continue
        assert len(a["eval_keys"]) == len(b["eval_keys"]) == 1, cell  # one selected trial each
        na, nb = len(a["keys"]), len(b["keys"])
        for side, c, n in (("after", a, na), ("before", b, nb)):
            totals[side][0] += c["wall"]
            totals[side][1] += c["steps"]
            totals[side][2] += n
        seeds = sorted(set(a["test"]) & set(b["test"]))
        diffs = [a["test"][s] - b["test"][s] for s in seeds]
        mean = statistics.mean(diffs)
        half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5
        label = f"{cell[0]} n={cell[1] or 'full'} {cell[2]}"
        print(f"{label:>24} {nb:>3} -> {na:<3} {b['wall'] / nb:7.1f} -> {a['wall'] / na:5.1f} "
              f"{a['wall'] / na / (b['wall'] / nb):6.0%} "
              f"{b['steps'] / nb:7.0f} -> {a['steps'] / na:6.0f} "
              f"{a['steps'] / na / (b['steps'] / nb):6.0%} "
              f"{statistics.mean(b['test'][s] for s in seeds):9.3f} "
              f"{statistics.mean(a['test'][s] for s in seeds):7.3f} "
              f"{100 * mean:+8.1f} pt [{100 * (mean - half):+5.1f}, {100 * (mean + half):+5.1f}]"
              f" (n={len(diffs)})")
    (wb, sb, nb), (wa, sa, na) = totals["before"], totals["after"]
    if nb and na:
        print(f"all cells: per trial {wb / nb:.1f} run-s and {sb / nb:.0f} steps before ({nb} "
              f"trials), {wa / na:.1f} run-s and {sa / na:.0f} steps after ({na} trials, every "
              f"tuning seed and rung): {wa / na / (wb / nb):.0%} of the run-seconds, "
              f"{sa / na / (sb / nb):.0%} of the steps")


if __name__ == "__main__":
    main()
