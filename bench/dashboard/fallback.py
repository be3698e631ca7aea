"""The analysis the page shows: ``seqbench.analysis.analyze``, or, when that fails, the shared
cells with their means only (and why)."""

from __future__ import annotations

from typing import Any

from ..records import REPORTED, Curves, RunRecord
from ..util import now, one_line

# what a model's row says about time to target when nothing was tested
NO_TTT = {"median_steps": None, "steps_ci": None, "median_seconds": None, "seconds_ci": None,
          "median_samples": None, "samples_ci": None, "reached": None, "of": None,
          "censored_median": False}


def run_analysis(runs: list[RunRecord], curves: Curves, pairs: Any, confidence: float,
                 n_boot: int) -> tuple[dict, str | None]:
    """``seqbench.analysis.analyze`` (the numbers ``bench analyze`` prints), or, if it fails, the
    shared cells with their means only (and why)."""
    try:
        from ..analysis.analyze import analyze
    except ImportError as exc:
        return fallback_analysis(runs, confidence), f"analysis unavailable ({exc})"
    try:
        result = analyze(runs, curves, pairs=pairs, confidence=confidence, n_boot=n_boot, seed=0)
        return result, None
    except Exception as exc:  # a bug there must not take the page down
        return fallback_analysis(runs, confidence), (
            f"analysis failed ({one_line(exc)}); "
            "showing plain means without intervals or tests"
        )


def _model_means(cell: Any) -> list[dict[str, Any]]:
    models = []
    for m in cell.models.values():
        params = [r.param_count for r in m.done if r.param_count is not None]
        models.append({
            "model": m.name, "n_seeds": len(m.values), "mean": m.mean, "ci": None,
            "values": m.values, "param_count": params[0] if params else None,
            "ttt": {**NO_TTT, "of": len(m.done) + len(m.diverged)},
            "own95_steps_median": None, "auc": None,
            "run_ids": [r.run_id for r in m.done + m.diverged],
        })
    return models


def _plain_cell(cell: Any) -> dict[str, Any]:
    """A cell with its means and best mean: no intervals, no tests (never 'significant')."""
    models = _model_means(cell)
    higher = cell.higher_is_better
    ranked = sorted((m for m in models if m["mean"] is not None),
                    key=lambda m: (-m["mean"] if higher else m["mean"], m["model"]))
    winner = {"model": ranked[0]["model"] if ranked else None, "significant": False,
              "margin": abs(ranked[0]["mean"] - ranked[1]["mean"]) if len(ranked) > 1 else None}
    return {
        "task": cell.task, "variant_key": cell.variant_key, "train_size": cell.train_size,
        "n": cell.n, "primary_metric": cell.primary_metric, "higher_is_better": higher,
        "target": None, "models": models, "comparisons": [], "winner": winner,
    }


def _plain_scaling(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each model's mean against n per task variant: no fits, no crossovers."""
    scaling: dict[tuple, dict] = {}
    for c in cells:
        if c["n"] is None:
            continue
        s = scaling.setdefault((c["task"], c["variant_key"]), {
            "task": c["task"], "variant_key": c["variant_key"],
            "primary_metric": c["primary_metric"], "higher_is_better": c["higher_is_better"],
            "models": {}, "crossovers": [],
        })
        for m in c["models"]:
            if m["mean"] is None:
                continue
            row = s["models"].setdefault(m["model"], {"n": [], "mean": [], "ci_lo": [], "ci_hi": [],
                                                      "fit": None})
            row["n"].append(c["n"])
            row["mean"].append(m["mean"])
            row["ci_lo"].append(None)
            row["ci_hi"].append(None)
    return list(scaling.values())


def fallback_analysis(runs: list[RunRecord], confidence: float) -> dict:
    """The analysis' shape from the shared cell pass (``analysis.cells.group``: the same cells,
    selected trials and seeds) with nothing that needs statistics: means, the best mean, no
    intervals, no tests, no time-to-target, no crossovers, no verdicts."""
    from ..analysis.cells import group

    cells = [_plain_cell(cell) for cell in group(runs)]
    return {
        "generated_at": now(), "confidence": confidence, "target_rule": None,
        "counts": {s: sum(r.status == s for r in runs) for s in REPORTED},
        "cells": cells, "scaling": _plain_scaling(cells), "verdicts": [],
    }
