"""The pooled verdict in words and tables: rich for the terminal, GitHub markdown for files.

Both renderers take a :class:`seqbench.analysis.pool.PoolReport` and build the same sections
(:func:`sections`): per task, the pooled A - B per size regime, the data sets behind each row,
every model against the best other, and the prediction interval said as a prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

from .pool import INTERVALS, METHODS, Pooled, PoolReport, TaskPool

if TYPE_CHECKING:
    from rich.console import Console

POOLED_COLUMNS = ("regime", "k", "pooled difference [CI]", "τ²", "τ", "I²", "Q",
                  "prediction interval (new data set)", "data sets")
DATASET_COLUMNS = ("regime", "data set", "n", "difference [CI]", "seeds", "outcome (per cell)")
BEST_COLUMNS = ("regime", "model", "best other", "k", "pooled difference [CI]", "I²",
                "prediction interval (new data set)")


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]


@dataclass(frozen=True)
class Section:
    title: str
    lines: list[str]  # what the numbers mean, before the tables
    tables: list[Table]
    predictions: list[str]  # the prediction intervals, said as predictions
    notes: list[str]  # data sets left out and why


def signed(x: float, scale: float) -> str:
    v = x * scale
    return f"{v:+.2f}" if abs(v) < 100 else f"{v:+,.0f}"


def interval(bounds: Sequence[float], scale: float) -> str:
    return f"[{signed(bounds[0], scale)}, {signed(bounds[1], scale)}]"


def _n(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _pooled_cells(p: Pooled, t: TaskPool) -> tuple[str, str]:
    """(pooled difference [CI], prediction interval) of one pooled row."""
    if p.meta is None:
        return "-", "-"
    m = p.meta
    return (f"{signed(m.estimate, t.scale)} {interval(m.ci, t.scale)}",
            interval(m.pi, t.scale) if m.pi else "- (k < 3)")


def prediction(p: Pooled, t: TaskPool, confidence: float) -> str | None:
    """The prediction interval as a statement a user can act on."""
    if p.meta is None or p.meta.pi is None:
        return None
    lo, hi = (v * t.scale for v in p.meta.pi)
    where = "on the full training set" if p.regime == "full" else f"at {p.regime}"
    verdict = (f"{p.a} ahead" if lo > 0 else f"{p.b} ahead" if hi < 0
               else "either model may come out ahead")
    return (f"On a new {t.task} data set of this kind {where}, the {p.a} − {p.b} difference in "
            f"{t.metric} lies in [{lo:+.2f}, {hi:+.2f}] {t.unit} with {confidence:.0%} "
            f"probability ({verdict}; k = {p.meta.k} data sets).")


def task_section(t: TaskPool, report: PoolReport) -> Section:
    conf = f"{report.confidence:.0%}"
    a, b = (t.pair[0].a, t.pair[0].b) if t.pair else ("A", "B")
    sq = "points²" if t.unit == "points" else f"({t.unit})²"
    lines = [
        f"Differences in {t.unit} of {t.metric}, positive: the first model better. Each data set "
        "contributes the analysis' own paired difference over seeds and its standard error at the "
        "size of each regime; random-effects pooling by "
        f"{METHODS[report.method]}, {conf} interval {INTERVALS[report.interval]}, {conf} "
        "prediction interval for a new data set μ ± t(k − 2)·√(τ² + SE²). τ² in "
        f"{sq}; I²: the share of the spread between data sets beyond sampling error.",
    ]
    pooled, datasets, best, preds, notes = [], [], [], [], []
    for p in t.pair:
        est, pi = _pooled_cells(p, t)
        m = p.meta
        pooled.append((p.regime, str(len(p.effects)), est,
                       f"{m.tau2 * t.scale**2:.3g}" if m else "-",
                       f"{m.tau2**0.5 * t.scale:.2f}" if m else "-",
                       f"{m.i2:.0%}" if m else "-", f"{m.q:.2f}" if m else "-", pi,
                       ", ".join(e.dataset for e in p.effects) or "-"))
        for e in p.effects:
            datasets.append((p.regime, e.dataset, "full " + _n(e.n) if e.train_size is None
                             else _n(e.n), f"{signed(e.diff, t.scale)} {interval(e.ci, t.scale)}",
                             str(e.seeds), e.result))
        if (s := prediction(p, t, report.confidence)):
            preds.append(s)
        notes += [f"{p.regime}: {x}" for x in p.excluded]
        if p.note:
            notes.append(f"{p.regime}: {p.note}")
    for p in t.versus_best:
        est, pi = _pooled_cells(p, t)
        best.append((p.regime, p.a, p.b, str(len(p.effects)), est,
                     f"{p.meta.i2:.0%}" if p.meta else "-", pi))
    tables = [
        Table(f"{t.task}: {a} − {b}, pooled over data sets", POOLED_COLUMNS, pooled),
        Table(f"{t.task}: {a} − {b} per data set (the rows behind the pooled ones)",
              DATASET_COLUMNS, datasets),
        Table(f"{t.task}: every model against the best other model of the regime "
              "(best mean score over the regime's data sets)", BEST_COLUMNS, best),
    ]
    names = ", ".join(sorted(set(t.datasets.values())))
    return Section(f"{t.task} ({t.metric}), {len(t.datasets)} data sets: {names}", lines,
                   [x for x in tables if x.rows], preds, notes)


def sections(report: PoolReport) -> Iterator[Section]:
    for t in report.tasks:
        yield task_section(t, report)


def nothing_to_pool(report: PoolReport) -> str | None:
    """One line when no task has two data sets, else None."""
    if report.tasks:
        return None
    why = "; ".join(report.skipped) or "no finished runs"
    return f"nothing to pool: {why}"


def md_table(table: Table) -> list[str]:
    def esc(x: object) -> str:
        return str(x).replace("|", "\\|")

    out = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return out + ["| " + " | ".join(esc(x) for x in r) + " |" for r in table.rows]


def render_markdown(report: PoolReport, heading: str = "# seqbench pooled analysis",
                    level: int = 2) -> str:
    lines = [heading, ""] if heading else []
    if (line := nothing_to_pool(report)):
        return "\n".join(lines + [line[0].upper() + line[1:] + "."])
    hashes = "#" * level
    for sec in sections(report):
        lines += [f"{hashes} {sec.title}", ""] + sec.lines + [""]
        for table in sec.tables:
            lines += [f"**{table.title}**", ""] + md_table(table) + [""]
        lines += [f"- {x}" for x in sec.predictions + sec.notes]
        lines += [""] if sec.predictions or sec.notes else []
    for s in report.skipped:
        lines += [f"- not pooled: {s}"]
    return "\n".join(lines).rstrip() + "\n"


def render_rich(report: PoolReport, console: Console) -> None:
    from rich.table import Table as RichTable
    from rich.text import Text  # plain text: a model's name is never rich markup

    if (line := nothing_to_pool(report)):
        console.print(line, markup=False, highlight=False)
        return
    for sec in sections(report):
        console.print(Text(sec.title, style="bold"))
        for line in sec.lines:
            console.print(line, markup=False, highlight=False)
        for table in sec.tables:
            rt = RichTable(title=Text(table.title), title_justify="left")
            for col in table.columns:
                rt.add_column(Text(col), overflow="fold")
            for row in table.rows:
                rt.add_row(*(Text(x) for x in row))
            console.print(rt)
        for x in sec.predictions:
            console.print(Text(x, style="bold"), highlight=False)
        for x in sec.notes:
            console.print(f"  {x}", markup=False, highlight=False)
        console.print()
    for s in report.skipped:
        console.print(f"not pooled: {s}", markup=False, highlight=False)
