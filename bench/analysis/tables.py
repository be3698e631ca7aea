"""Stored runs as a terminal table, JSON or CSV, and the per-cell summary printed after a matrix."""

from __future__ import annotations

import csv
import io
import json
import statistics

from .cells import clean, variant_keys

CONVERGENCE = ("steps", "samples", "train_seconds", "steps_to_95", "samples_to_95", "seconds_to_95")
EXPORT = (
    "run_id", "matrix_id", "model", "task", "kind", "train_size", "seed", "status", "error",
    "params", "trial", "primary_metric", "primary_value", "best_val", "test", "param_count",
    "train_examples", *CONVERGENCE, "extras", "environment", "started_at", "finished_at",
)


def export_record(row: dict) -> dict:
    """The run's exported fields, JSON-safe (a diverged run's NaN losses become None)."""
    return {k: clean(row.get(k)) for k in EXPORT}


def runs_json(rows: list[dict]) -> str:
    return json.dumps([export_record(r) for r in rows], indent=2, default=str)


def runs_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT)
    writer.writeheader()
    for r in rows:
        flat = export_record(r)
        for k, v in flat.items():
            if isinstance(v, (dict, list)):
                flat[k] = json.dumps(v, sort_keys=True)
        writer.writerow(flat)
    return buf.getvalue()


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def print_runs(rows: list[dict], console) -> None:
    from rich.table import Table

    if not rows:
        console.print("no runs match; start a matrix with `bench run`")
        return
    table = Table(title=f"{len(rows)} runs", title_justify="left")
    for col in ("run_id", "model", "task", "size", "seed", "status", "primary", "test", "params",
                "steps", "steps to 95%", "train s"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["run_id"], r["model"], r["task"], _fmt(r["train_size"] or "full"), str(r["seed"]),
            r["status"], r["primary_metric"] or "-", _fmt(r["primary_value"]),
            _fmt(r["param_count"]), _fmt(r["steps"]), _fmt(r["steps_to_95"]),
            _fmt(r["train_seconds"], 1),
        )
    console.print(table)


def print_summary(rows: list[dict], console, run_ids: set[str] | None = None) -> None:
    """Mean and standard deviation over seeds per task variant, size and model.

    Only the selected trial of a tuned model counts (the same rule as the analysis); `bench
    analyze` adds confidence intervals, significance tests and the verdict.
    """
    from rich.table import Table

    from ..experiment.tuning import chosen_trials, trial_key

    rows = [r for r in rows if run_ids is None or r["run_id"] in run_ids]
    variants = variant_keys(rows)
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        vkey = variants[r["run_id"]][1]
        cells.setdefault((r["task"], vkey, r["train_size"] or 0, r["model"]), []).append(r)
    if not cells:
        return
    table = Table(title="Summary over seeds (test metric of the best checkpoint)",
                  title_justify="left")
    for col in ("task", "train size", "model", "trial", "runs", "metric", "mean", "sd",
                "steps to 95%", "params"):
        table.add_column(col)
    across: dict[tuple, list[dict]] = {}  # (task, variant, model) -> runs of every size
    for (task, variant, size, model), runs in cells.items():
        across.setdefault((task, variant, model), []).extend(runs)
    chosen = {key: chosen_trials(runs) for key, runs in across.items()}
    for (task, variant, size, model), runs in sorted(cells.items()):
        pick = chosen[(task, variant, model)][runs[0]["train_size"]]
        runs = [r for r in runs if trial_key(r) == pick] if pick else runs
        done = [r for r in runs if r["status"] == "done" and r["primary_value"] is not None]
        values = [r["primary_value"] for r in done]
        steps = [r["steps_to_95"] for r in done if r["steps_to_95"] is not None]
        others = len(runs) - len(done)
        label = task if variant == "default" else f"{task} {variant}"
        table.add_row(
            label, str(size or "full"), model,
            ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in (runs[0].get("trial") or {}).items()) or "-",
            f"{len(done)}" + (f" (+{others} not done)" if others else ""),
            (done[0]["primary_metric"] if done else "-"),
            _fmt(statistics.fmean(values)) if values else "-",
            _fmt(statistics.stdev(values)) if len(values) > 1 else "-",
            _fmt(statistics.median(steps)) if steps else "-",
            _fmt(done[0]["param_count"]) if done else "-",
        )
    console.print(table)
