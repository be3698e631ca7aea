"""Gradient probes (``seqbench.experiment.probes``) summarised: step-0 profiles per
configuration, gradient-flow maps (position x training step), the ratio first/last.

A *configuration* is a model with the settings that tell its runs apart (``rnn
nonlinearity=relu init=identity``, ``grad_clip=5``). Norms are on a log10 scale, averaged over
seeds in log space; an exact 0 (underflow) is drawn at :data:`FLOOR` and counted in ``zeros``
(see docs/methods.md#gradient-flow). Standard library only.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable

from ..records import RunRecord

FLOOR = 1.4e-45  # the smallest positive float32 (denormal): where an exact 0 is drawn
TRAINING_KEYS = ("grad_clip", "tbptt", "rtrl", "lr")  # recipe keys that tell configurations apart


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v if isinstance(v, str) else json.dumps(v)


def _settings(run: RunRecord) -> dict[str, Any]:
    training: dict[str, Any] = dict(run.training)
    out = dict(run.config.get("model_params") or {})
    for key in TRAINING_KEYS:
        # absent: the run predates the key, or holds its default (plan.IDENTITY_IF_NOT)
        out[key] = training.get(key, {"tbptt": 0, "rtrl": "off"}.get(key))
    return out


def config_labels(runs: Iterable[RunRecord]) -> dict[str, str]:
    """run_id -> ``model k=v ...`` with the settings that vary among ``runs`` of that model."""
    by_model: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_model.setdefault(r.model, []).append(r)
    labels = {}
    for model, rs in by_model.items():
        settings = [_settings(r) for r in rs]
        keys = sorted({k for s in settings for k in s})
        varying = [k for k in keys
                   if len({json.dumps(s.get(k), sort_keys=True) for s in settings}) > 1]
        for r, s in zip(rs, settings):
            labels[r.run_id] = " ".join([model, *(f"{k}={_fmt(s.get(k))}" for k in varying)])
    return labels


def log10(v: float | None) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return math.log10(max(v, FLOOR))


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def profile_at(g: dict[str, Any], step: int = 0) -> list[float | None] | None:
    for p in g.get("probes") or []:
        if p["step"] == step:
            norms: list[float | None] | None = p["input_grad_norm"]
            return norms
    return None


def ratio(norms: list[float | None] | None) -> float | None:
    """``input_grad_norm[0] / input_grad_norm[-1]``: what reaches the first position, relative
    to the last (None without both)."""
    if not norms or norms[0] is None or not norms[-1]:
        return None
    return norms[0] / norms[-1]


def _mean_logs(rows: list[list[float | None]]) -> tuple[list[Any], list[Any], list[Any]]:
    """Per position over rows: mean, min and max of log10 (None where no row has a value)."""
    width = max((len(r) for r in rows), default=0)
    mean, lo, hi = [], [], []
    for t in range(width):
        vals = [v for r in rows if t < len(r) if (v := log10(r[t])) is not None]
        mean.append(round(sum(vals) / len(vals), 4) if vals else None)
        lo.append(round(min(vals), 4) if vals else None)
        hi.append(round(max(vals), 4) if vals else None)
    return mean, lo, hi


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def flow(g: dict[str, Any]) -> dict[str, Any]:
    """One run's map: probe steps x positions of log10 ‖∂L/∂x_t‖."""
    probes = g.get("probes") or []
    return {
        "steps": [p["step"] for p in probes],
        "log10": [[_round(log10(v)) for v in p["input_grad_norm"]] for p in probes],
    }


def mean_flow(gs: list[dict[str, Any]]) -> dict[str, Any]:
    """Seeds' maps averaged in log space, step by step (a step some seeds never reached, e.g.
    after early stopping, averages the seeds that did)."""
    steps = sorted({p["step"] for g in gs for p in g.get("probes") or []})
    rows = []
    for step in steps:
        profiles = [p for g in gs if (p := profile_at(g, step)) is not None]
        rows.append(_mean_logs(profiles)[0])
    return {"steps": steps, "log10": rows}


def configurations(runs: list[RunRecord],
                   gradients: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The probed runs grouped by configuration: each with its seeds' step-0 profile (mean, min
    and max of log10 over seeds), the ratio first/last per seed and its median, and the
    seeds' mean gradient-flow map."""
    probed = [r for r in runs if (gradients.get(r.run_id) or {}).get("probes")]
    labels = config_labels(probed)
    groups: dict[str, list[RunRecord]] = {}
    for r in probed:
        groups.setdefault(labels[r.run_id], []).append(r)
    out = []
    for label, rs in sorted(groups.items()):
        gs = [gradients[r.run_id] for r in rs]
        step0 = [p for g in gs if (p := profile_at(g, 0)) is not None]
        mean, lo, hi = _mean_logs(step0)
        ratios = [x for p in step0 if (x := ratio(p)) is not None]
        out.append({
            "label": label, "model": rs[0].model, "run_ids": [r.run_id for r in rs],
            "seeds": [r.seed for r in rs], "n": len(rs),
            "step0": {"log10_mean": mean, "log10_min": lo, "log10_max": hi,
                      "zeros": sum(1 for p in step0 for v in p if v == 0)},
            "ratio": {"median": _median(ratios), "min": min(ratios, default=None),
                      "max": max(ratios, default=None), "per_seed": ratios},
            "flow": mean_flow(gs),
        })
    return out
