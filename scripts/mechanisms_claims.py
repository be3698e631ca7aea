"""The mechanisms study's numbers behind the claims ledger's rows C4, C5, C6 and C8.

    python scripts/mechanisms_claims.py --db results/mechanisms.sqlite

For every configuration (a model with the settings the study varies: init, nonlinearity, forget
bias, clipping, truncated BPTT, RTRL) and copy delay T: the recall accuracy on the test split
(mean and 95% t-interval over seeds), the test cross-entropy against the memoryless baseline,
and the gradient that reaches the first input position from the last: the ratio
‖∂L/∂x_0‖ / ‖∂L/∂x_last‖ at step 0 and at the last probe (median over seeds; 0 = float32
underflow), plus the share of steps whose gradient norm was clipped and the seconds per step.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

from seqbench.analysis import stats
from seqbench.analysis.gradients import config_labels, profile_at, ratio
from seqbench.store import Store


def mean_ci(values: list[float]) -> str:
    if not values:
        return "—"
    ci = stats.mean_ci(values, 0.95)  # the analysis' own t-interval
    if ci is None:
        return f"{values[0]:.3f}"
    return f"{(ci[0] + ci[1]) / 2:.3f} ± {(ci[1] - ci[0]) / 2:.3f}"


def med(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    return "—" if not values else f"{statistics.median(values):.2g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="results/mechanisms.sqlite")
    args = ap.parse_args()
    with Store(args.db, readonly=True) as store:
        runs = [r for r in store.runs() if r["status"] in ("done", "diverged")]
        grads = store.gradients([r["run_id"] for r in runs])
    labels = config_labels(runs)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        task = r["task"] + (f" T={r['config']['task_params'].get('T')}" if r["task"] == "copy" else "")
        groups[(task, labels.get(r["run_id"], r["model"]))].append(r)
    print("| task | configuration | seeds | recall / accuracy (test) | CE − baseline | "
          "ratio x0/xlast, step 0 | at last probe | clipped | ms / step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (task, label), rs in sorted(groups.items()):
        acc = [r["primary_value"] for r in rs if r.get("primary_value") is not None]
        excess = [r["test"]["cross_entropy"] - r["test"]["baseline_ce"] for r in rs
                  if "baseline_ce" in (r.get("test") or {})]
        first, last, clipped = [], [], []
        for r in rs:
            g = grads.get(r["run_id"]) or {}
            probes = g.get("probes") or []
            if probes:
                first.append(ratio(profile_at(g, 0)))
                last.append(ratio(probes[-1]["input_grad_norm"]))
            if g.get("clip_fraction") is not None:
                clipped.append(g["clip_fraction"])
        per_step = [1000 * r["train_seconds"] / r["steps"] for r in rs if r.get("steps")]
        diverged = sum(r["status"] == "diverged" for r in rs)
        print(f"| {task} | {label} | {len(rs)}{f' ({diverged} diverged)' if diverged else ''} | "
              f"{mean_ci(acc)} | {mean_ci(excess)} | {med(first)} | {med(last)} | "
              f"{med(clipped)} | {med(per_step)} |")


if __name__ == "__main__":
    main()
