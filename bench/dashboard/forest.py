"""Forest plots of the pooled verdict, from one payload for the dashboard, the report and
``bench figures``: per task and size regime, a row per data set, the pooled diamond and the
prediction interval beneath, in display units. See docs/methods.md#pooling.
"""

from __future__ import annotations

from typing import Any

from ..analysis.pool import PoolReport, pool
from ..analysis.pool_tables import prediction


def _figure(task, p, report: PoolReport) -> dict[str, Any] | None:
    if not p.effects:
        return None
    s = task.scale
    rows = [{"label": e.dataset, "n": e.n, "full": e.train_size is None, "diff": e.diff * s,
             "lo": e.ci[0] * s, "hi": e.ci[1] * s, "seeds": e.seeds, "result": e.result}
            for e in p.effects]
    pooled = None
    if p.meta is not None:
        m = p.meta
        pooled = {"estimate": m.estimate * s, "lo": m.ci[0] * s, "hi": m.ci[1] * s,
                  "pi_lo": m.pi[0] * s if m.pi else None, "pi_hi": m.pi[1] * s if m.pi else None,
                  "k": m.k, "tau2": m.tau2 * s * s, "i2": m.i2, "q": m.q}
    return {
        "id": f"{task.task}|{p.regime}", "label": f"{task.task} · {p.regime}", "task": task.task,
        "regime": p.regime, "a": p.a, "b": p.b, "metric": task.metric, "unit": task.unit,
        "xlabel": f"{p.a} − {p.b}, {task.unit} of {task.metric} (> 0: {p.a} better)",
        "rows": rows, "pooled": pooled, "confidence": report.confidence,
        "method": report.method, "interval": report.interval,
        "notes": p.excluded + ([p.note] if p.note else []),
        "prediction": prediction(p, task, report.confidence),
    }


def payload(analysis: dict) -> list[dict]:
    """One forest figure per task with several data sets and per size regime (empty if none)."""
    pair = tuple(analysis.get("verdict_pair") or ()) or None
    report = pool(analysis, pair=pair if pair and len(pair) == 2 else None,
                  confidence=analysis.get("confidence") or 0.95)
    return [f for t in report.tasks for p in t.pair if (f := _figure(t, p, report))]


def safe_payload(analysis: dict) -> tuple[list[dict], str | None]:
    """(the figures, None), or ([], why) if pooling failed: a bug there must not take the page
    down."""
    from ..util import one_line

    try:
        return payload(analysis), None
    except Exception as exc:
        return [], f"pooling failed ({one_line(exc)})"


# ---------------------------------------------------------------------------- matplotlib


def draw_forest(plt, fig_data: dict):
    """A matplotlib forest plot of one payload figure."""
    rows, pooled = fig_data["rows"], fig_data["pooled"]
    k = len(rows)
    fig, ax = plt.subplots(figsize=(6.4, 1.2 + 0.42 * (k + 2)))
    ys = list(range(k + 1, 1, -1))  # data sets top down, then the pooled diamond and the PI
    for y, r in zip(ys, rows):
        ax.plot([r["lo"], r["hi"]], [y, y], color="#333", lw=1.4)
        ax.plot([r["diff"]], [y], "s", color="#1f77b4", ms=6)
    labels = [f"{r['label']} (n = {r['n']:,}{', full' if r['full'] else ''})" for r in rows]
    ticks = list(ys)
    conf = f"{fig_data['confidence']:.0%}"
    if pooled:
        e, lo, hi = pooled["estimate"], pooled["lo"], pooled["hi"]
        ax.fill([lo, e, hi, e], [1, 1.28, 1, 0.72], color="#d62728", alpha=0.85, lw=0)
        ticks.append(1)
        labels.append(f"pooled (k = {pooled['k']}, I² = {pooled['i2']:.0%})")
        if pooled["pi_lo"] is not None:
            ax.plot([pooled["pi_lo"], pooled["pi_hi"]], [0, 0], color="#d62728", lw=2.2)
            ax.plot([pooled["pi_lo"], pooled["pi_hi"]], [0, 0], "|", color="#d62728", ms=10)
            ticks.append(0)
            labels.append(f"{conf} prediction interval")
    ax.axvline(0, color="grey", ls=":", lw=1)
    ax.set_yticks(ticks, labels)
    ax.set_ylim(-0.7 if pooled and pooled["pi_lo"] is not None else 0.3, k + 1.7)
    ax.set_xlabel(fig_data["xlabel"])
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{fig_data['task']}, {fig_data['regime']}: {fig_data['a']} − {fig_data['b']} "
                 f"per data set ({conf} t-CI over seeds), pooled", fontsize=10)
    return fig
