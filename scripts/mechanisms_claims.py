"""The mechanisms study's numbers behind the claims ledger's rows C4, C5, C6 and C8.

    python scripts/mechanisms_claims.py --db results/mechanisms.sqlite

Per configuration (a model with the settings the study varies) and copy delay T: test recall
(mean, 95% t-interval), test cross-entropy against the memoryless baseline, the gradient ratio
‖∂L/∂x_0‖ / ‖∂L/∂x_last‖ at step 0 and at the last probe (median over seeds; 0 = float32
underflow), the share of clipped steps and the seconds per step. ``scripts/ledger.py`` quotes
these rows through :func:`rows`.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from dataclasses import dataclass

from seqbench.analysis import stats
from seqbench.analysis.gradients import config_labels, profile_at, ratio
from seqbench.records import RunRecord
from seqbench.store import Store


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds with its 95% t-interval half-width (None with one seed)."""

    mean: float
    half: float | None

    def __str__(self) -> str:
        return f"{self.mean:.3f}" if self.half is None else f"{self.mean:.3f} ± {self.half:.3f}"

    @property
    def low(self) -> float:
        return self.mean - (self.half or 0.0)

    @property
    def high(self) -> float:
        return self.mean + (self.half or 0.0)


@dataclass(frozen=True)
class Row:
    """One configuration at one task: what the ledger quotes about it."""

    task: str  # "copy T=100", "classification"
    label: str  # "rnn ... init=identity nonlinearity=relu ..."
    seeds: int
    diverged: int
    recall: Estimate | None  # the task's primary metric on the test split
    excess_ce: Estimate | None  # test cross-entropy above the memoryless baseline
    ratio_first: float | None  # median over seeds, step 0
    ratio_last: float | None  # median over seeds, last probe
    clipped: float | None  # median share of steps clipped
    ms_per_step: float | None  # median

    def has(self, model: str, **settings) -> bool:
        words = self.label.split()
        return words[0] == model and all(f"{k}={v}" in words[1:] for k, v in settings.items())


def estimate(values: list[float]) -> Estimate | None:
    if not values:
        return None
    ci = stats.mean_ci(values, 0.95)  # the analysis' own t-interval
    if ci is None:
        return Estimate(values[0], None)
    return Estimate((ci[0] + ci[1]) / 2, (ci[1] - ci[0]) / 2)


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rows(db: str) -> list[Row]:
    with Store(db, readonly=True) as store:
        runs = [r for r in store.runs() if r.status in ("done", "diverged")]
        grads = store.gradients([r.run_id for r in runs])
    labels = config_labels(runs)
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    for r in runs:
        task = r.task + (f" T={r.task_params.get('T')}" if r.task == "copy" else "")
        groups[(task, labels.get(r.run_id, r.model))].append(r)
    out = []
    for (task, label), rs in sorted(groups.items()):
        first, last, clipped = [], [], []
        for r in rs:
            g = grads.get(r.run_id) or {}
            probes = g.get("probes") or []
            if probes:
                first.append(ratio(profile_at(g, 0)))
                last.append(ratio(probes[-1]["input_grad_norm"]))
            if g.get("clip_fraction") is not None:
                clipped.append(g["clip_fraction"])
        out.append(Row(
            task=task, label=label, seeds=len(rs),
            diverged=sum(r.status == "diverged" for r in rs),
            recall=estimate([v for r in rs if (v := r.primary_value) is not None]),
            excess_ce=estimate([r.test["cross_entropy"] - r.test["baseline_ce"] for r in rs
                                if r.test and "baseline_ce" in r.test]),
            ratio_first=_median(first), ratio_last=_median(last), clipped=_median(clipped),
            ms_per_step=_median(1000 * r.train_seconds / r.steps for r in rs if r.steps)))
    return out


def g2(v: float | None) -> str:
    return "—" if v is None else f"{v:.2g}"


def table(found: list[Row]) -> str:
    lines = ["| task | configuration | seeds | recall / accuracy (test) | CE − baseline | "
             "ratio x0/xlast, step 0 | at last probe | clipped | ms / step |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in found:
        seeds = f"{r.seeds}{f' ({r.diverged} diverged)' if r.diverged else ''}"
        lines.append(f"| {r.task} | {r.label} | {seeds} | {r.recall or '—'} | "
                     f"{r.excess_ce or '—'} | {g2(r.ratio_first)} | {g2(r.ratio_last)} | "
                     f"{g2(r.clipped)} | {g2(r.ms_per_step)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="results/mechanisms.sqlite")
    args = ap.parse_args()
    print(table(rows(args.db)))


if __name__ == "__main__":
    main()
