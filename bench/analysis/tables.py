"""Stored runs as a terminal table, JSON or CSV, and the per-cell summary printed after a matrix."""

from __future__ import annotations

import csv
import io
import json
import statistics
from typing import TYPE_CHECKING, Any

from ..records import RunRecord
from .cells import clean, group
from .display import csv_value, literal

if TYPE_CHECKING:  # rich is imported when a table is printed
    from rich.console import Console

CONVERGENCE = ("steps", "samples", "train_seconds", "steps_to_95", "samples_to_95", "seconds_to_95")
EXPORT = (
    "run_id", "matrix_id", "model", "task", "kind", "train_size", "seed", "status", "error",
    "params", "trial", "primary_metric", "primary_value", "best_val", "test", "param_count",
    "step_flops", "train_examples", *CONVERGENCE, "extras", "environment", "started_at",
    "finished_at",
)


def export_record(run: RunRecord) -> dict[str, Any]:
    """The run's exported fields, JSON-safe (a diverged run's NaN losses become None)."""
    return {k: clean(getattr(run, k)) for k in EXPORT}


def runs_json(rows: list[RunRecord],
              gradients: dict[str, dict[str, Any]] | None = None) -> str:
    """The records as JSON; with ``gradients`` (``Store.gradients``), each record also carries
    ``"gradients"``: its probes, or None for a run trained without them."""
    records = [export_record(r) for r in rows]
    if gradients is not None:
        for rec in records:
            rec["gradients"] = clean(gradients.get(rec["run_id"]))
    return json.dumps(records, indent=2, default=str)


def runs_csv(rows: list[RunRecord]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT)
    writer.writeheader()
    for r in rows:
        flat = export_record(r)
        for k, v in flat.items():
            if isinstance(v, (dict, list)):
                v = json.dumps(v, sort_keys=True)
            flat[k] = csv_value(v)
        writer.writerow(flat)
    return buf.getvalue()


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def print_runs(rows: list[RunRecord], console: Console) -> None:
    from rich.table import Table

    if not rows:
        console.print("no runs match; start a matrix with `bench run`")
        return
    table = Table(title=f"{len(rows)} runs", title_justify="left")
    for col in ("run_id", "model", "task", "size", "seed", "status", "primary", "test", "params",
                "steps", "steps to 95%", "train s"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*map(literal, (
            r.run_id, r.model, r.task, _fmt(r.train_size or "full"), str(r.seed),
            r.status, r.primary_metric or "-", _fmt(r.primary_value),
            _fmt(r.param_count), _fmt(r.steps), _fmt(r.steps_to_95),
            _fmt(r.train_seconds, 1),
        )))
    console.print(table)


def print_summary(rows: list[RunRecord], console: Console,
                  run_ids: set[str] | None = None) -> None:
    """Mean and standard deviation over seeds per task variant, size and model.

    The cells and the selected trial come from :func:`seqbench.analysis.cells.group`, the pass
    ``bench analyze`` and the dashboard use, so the seeds counted here are theirs (tuning seeds
    excluded); ``bench analyze`` adds intervals, tests and the verdict.
    """
    from rich.table import Table

    rows = [r for r in rows if run_ids is None or r.run_id in run_ids]
    cells = group(rows)
    if not cells:
        return
    table = Table(title="Summary over evaluation seeds (test metric of the best checkpoint)",
                  title_justify="left")
    for col in ("task", "train size", "model", "trial", "runs", "metric", "mean", "sd",
                "steps to 95%", "params"):
        table.add_column(col)
    for cell in cells:
        label = cell.task if cell.variant_key == "default" else f"{cell.task} {cell.variant_key}"
        for model in cell.models.values():
            done = model.done
            values = model.values
            steps = [r.steps_to_95 for r in done if r.steps_to_95 is not None]
            others = model.n_failed + len(model.diverged)
            notes = (f" (+{others} not done)" if others else "") + (
                f" (+{model.n_tune} tuning)" if model.n_tune else "")
            table.add_row(*map(literal, (
                label, str(cell.train_size or "full"), model.name,
                ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in model.selected_trial.items()) or "-",
                f"{len(done)}{notes}", cell.primary_metric or "-",
                _fmt(statistics.fmean(values)) if values else "-",
                _fmt(statistics.stdev(values)) if len(values) > 1 else "-",
                _fmt(statistics.median(steps)) if steps else "-",
                _fmt(done[0].param_count) if done else "-",
            )))
    console.print(table)
