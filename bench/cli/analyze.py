"""``bench analyze``: the statistics over a results database.

Imports stay lazy: numpy, scipy and rich load only when the command runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..limits import MAX_BOOTSTRAP
from ..store import DEFAULT_DB
from .common import SEED, FiniteFloatRange, check_out, console, fail, parse_pairs, write_out

if TYPE_CHECKING:
    from ..experiment.labels import StoredLabels
    from ..records import RunRecord


def parse_margins(text: str | None) -> dict | None:
    """'0.02' -> {"*": 0.02}; 'accuracy=0.02,bleu=0.5' -> {...}; ValueError with a message."""
    if text is None:
        return None
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        metric, _, value = item.rpartition("=")
        try:
            delta = float(value)
        except ValueError:
            raise ValueError(f"--margin: {item!r} is not DELTA or METRIC=DELTA "
                             "(e.g. 0.02 or accuracy=0.02)") from None
        if not delta > 0 or delta == float("inf"):
            raise ValueError(f"--margin: {item!r}: the margin must be a positive number")
        out[metric.strip() or "*"] = delta
    if not out:
        raise ValueError("--margin: give DELTA or METRIC=DELTA pairs separated by commas")
    return out


@click.command("analyze")
@click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON.")
@click.option("--markdown", is_flag=True, help="Print GitHub markdown tables and the verdicts.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Write the markdown/JSON to this file instead of stdout "
                   "(without --json/--markdown: JSON for *.json, markdown otherwise).")
@click.option("--pairs", default=None,
              help="Model pairs to compare, 'A:B,C:D', or 'all'. The first pair gets the verdict. "
                   "Default: every pair of the models in the database, lstm:transformer first "
                   "when both are there.")
@click.option("--models", "only", default=None, metavar="A,B,...",
              help="Analyse only these models' runs (time-to-target targets and pairs then "
                   "come from them alone), e.g. 'lstm,transformer'. Default: every model.")
@click.option("--tasks", "only_tasks", default=None, metavar="A,B,...",
              help="Analyse only these tasks' runs, e.g. 'translation'. Default: every task.")
@click.option("--task-param", "task_param", default=None, metavar="KEY=VALUE",
              help="Analyse only the runs with this task parameter, e.g. 'data=digits'.")
@click.option("--brief", is_flag=True,
              help="Print one line per size and pair: who is ahead, the difference and its "
                   "interval.")
@click.option("--full", is_flag=True,
              help="Print every table (models, comparisons, speed, scaling, verdicts) instead "
                   "of the summary, a line per cell.")
@click.option("--margin", "margin_text", default=None, metavar="[METRIC=]DELTA,...",
              help="Practical margin for equivalence (TOST) and the floor/ceiling guard, in the "
                   "metric's units: '0.02' for every metric, or 'accuracy=0.02,bleu=0.5'. "
                   "Default: 1 point of the metric's scale (0.01 in [0, 1], 1.0 for BLEU).")
@click.option("--holm", type=click.Choice(["sizes", "pairs"]), default="sizes", show_default=True,
              help="Holm's family: each pair over the sizes of a task ('sizes'), or every "
                   "compared pair and size of a task together ('pairs').")
@click.option("--confidence", type=FiniteFloatRange(0.5, 1, min_open=True, max_open=True),
              default=0.95, show_default=True,
              help="Confidence level of CIs and tests (equivalence uses 1 - 2 x (1 - this)).")
@click.option("--bootstrap", "n_boot", type=click.IntRange(100, MAX_BOOTSTRAP), default=2000,
              show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of the bootstrap and permutation draws (same seed, same numbers).")
@click.option("--force", is_flag=True,
              help="Let --out replace an existing file that is not an earlier analysis.")
@click.option("--budget", "budget_text", default=None, metavar="N|none",
              help="Analyse only the runs trained at this parameter budget (training.param_budget; "
                   "'none': runs without one), e.g. when a model ran at two sizes in one database.")
@click.option("--pool", is_flag=True,
              help="Pool across data sets: for a task with several variants, a random-effects "
                   "meta-analysis of the first --pairs pair (default lstm:transformer) per size "
                   "regime, with its prediction interval for a new data set, and every model "
                   "against the best other.")
@click.option("--regimes", default=None, metavar="LO-HI,...,full",
              help="With --pool: the size regimes, ranges of training examples or 'full' "
                   "[default: 250-500,1000-2000,full].")
@click.option("--pool-method", type=click.Choice(["dl", "pm"]), default="dl", show_default=True,
              help="With --pool: tau² by DerSimonian-Laird or Paule-Mandel.")
@click.option("--pool-interval", type=click.Choice(["hksj", "z"]), default="hksj",
              show_default=True,
              help="With --pool: the pooled interval, Hartung-Knapp-Sidik-Jonkman (t, k-1 df; "
                   "holds its coverage with few data sets) or normal.")
def analyze(db, as_json, markdown, out, pairs, only, only_tasks, task_param, brief, full,
            margin_text,
            holm, confidence, n_boot, seed, force, budget_text, pool, regimes, pool_method,
            pool_interval):
    """Compare models over seeds: t-intervals, Holm-corrected tests with equivalence, a floor guard,
    time-to-target with log-rank tests, data scaling and plain-language verdicts.

    Exit 2 with a one-line error when the database is missing, unreadable or holds no runs.
    """
    if sum(map(bool, (as_json, markdown, brief, full))) > 1:
        fail("give one of --json, --markdown, --brief and --full")
    try:
        wanted = "auto" if pairs is None else parse_pairs(pairs)
        settings = Settings(confidence, n_boot, seed, parse_margins(margin_text), holm)
        pool_options = _pool_options(pool, regimes, pool_method, pool_interval)
    except ValueError as exc:
        fail(str(exc))
    if out:  # before any work: never the database, never someone else's file
        check_out(out, db, force, _previous_analysis, "analysis")
    runs, curves, labels = _read(db)
    runs = _selected(runs, db, only_tasks, only, task_param, budget_text, pool_options)
    if wanted not in ("all", "auto"):
        _check_pairs(wanted, runs, db)
    fmt = "json" if as_json else "markdown" if markdown else "brief" if brief else None
    if out and fmt is None:
        fmt = "json" if out.lower().endswith(".json") else "markdown"
    if pool_options is not None:
        text = _pooled(runs, curves, labels, wanted, fmt, settings, pool_options)
    else:
        text = _render(_analysis(runs, curves, labels, wanted, settings),
                       fmt or (None if full else "summary"))
    if text is not None:
        _emit(text, fmt, out)


@dataclass(frozen=True)
class Settings:
    """How the statistics are computed: the same for the tables and the pooled verdict."""

    confidence: float
    n_boot: int
    seed: int
    margins: dict | None
    holm: str


def _read(db: str) -> tuple[list[RunRecord], dict, StoredLabels]:
    """The database's runs, curves and task labels; exit 2 when it cannot be read or is empty."""
    from ..experiment.labels import stored
    from ..store import Store, StoreError
    from ..util import one_line

    try:
        with Store(db, readonly=True) as store:
            runs, curves, labels = store.runs(), store.curves(), stored(store)
    except StoreError as exc:
        fail(str(exc))
    except Exception as exc:  # a damaged file can fail on the first query, not on open
        fail(f"{db} could not be read ({one_line(exc)})")
    if not runs:
        fail(f"{db} holds no runs yet; start a matrix with `bench run`")
    return runs, curves, labels


def _selected(runs: list[RunRecord], db: str, only_tasks: str | None, only: str | None,
              task_param: str | None, budget_text: str | None,
              pool_options) -> list[RunRecord]:
    """The runs --tasks, --models, --task-param and --budget ask for (exit 2 when none match)."""
    where = str(db)
    for field, option, text in (("task", "--tasks", only_tasks), ("model", "--models", only)):
        if text is not None:
            runs = _narrow(runs, field, option, text, where)
            where = f"the {text} runs of {db}"
    if task_param is not None:
        runs = _with_param(runs, task_param, where)
    if budget_text is not None:
        runs = _at_budget(runs, budget_text, where)
    elif pool_options is not None and (mixed := _mixed_budgets(runs)):
        click.echo(f"warning: {mixed}; the analysis keeps the trial with the best validation "
                   "score, whatever its budget: --budget N analyses one budget", err=True)
    return runs


def _check_pairs(wanted: list, runs: list[RunRecord], db: str) -> None:
    known = {r.model for r in runs}
    unknown = sorted({m for p in wanted for m in p} - known)
    if unknown:
        fail(f"--pairs names {', '.join(map(repr, unknown))}, which has no runs in {db}; "
             f"models: {', '.join(sorted(known))}")


def _analysis(runs: list[RunRecord], curves: dict, labels: StoredLabels, pairs, settings: Settings) -> dict:
    """The analysis of ``runs``, its cells carrying the labels the matrices gave."""
    from ..analysis.analyze import analyze as run_analysis
    from ..analysis.task_labels import label_cells

    result = run_analysis(runs, curves, pairs=pairs, confidence=settings.confidence,
                          n_boot=settings.n_boot, seed=settings.seed, margins=settings.margins,
                          holm=settings.holm)
    label_cells(result, runs, labels)
    return result


def _emit(text: str, fmt: str | None, out: str | None) -> None:
    if fmt != "json":  # stored names as text, never terminal commands (JSON escapes its own)
        from ..analysis.display import plain

        text = plain(text)
    if out:
        path = Path(out)
        write_out(path, text + "\n")
        click.echo(f"wrote {path}", err=True)
    else:
        click.echo(text)


def _render(result: dict, fmt: str | None) -> str | None:
    """The analysis as JSON or markdown text; printed with rich (and None) without a format."""
    if fmt is None:
        from ..analysis.verdict import render_rich

        render_rich(result, console())
        return None
    if fmt == "json":
        return json.dumps(result, indent=2, allow_nan=False)
    if fmt == "summary":  # a line per cell, 100 columns
        from ..analysis.glance import render_summary

        return render_summary(result)
    if fmt == "brief":
        from ..analysis.verdict import render_brief

        return render_brief(result)
    from ..analysis.verdict import render_markdown

    return render_markdown(result)


def _pool_options(pool: bool, regimes: str | None, method: str, interval: str) -> dict | None:
    """The pooling options (None without --pool); ValueError for a bad --regimes."""
    if not pool:
        if regimes is not None:
            raise ValueError("--regimes applies to --pool only")
        return None
    from ..analysis.pool import DEFAULT_REGIMES, parse_regimes

    return {"regimes": parse_regimes(regimes or DEFAULT_REGIMES), "method": method,
            "interval": interval}


def _pooled(runs: list[RunRecord], curves: dict, labels: StoredLabels, wanted, fmt: str | None,
            settings: Settings, options: dict) -> str | None:
    """The pooled verdict as JSON or markdown text; printed with rich (and None) without one."""
    from ..analysis.pool import pairs_for, pool
    from ..analysis.pool_tables import render_markdown, render_rich

    pair = None if wanted in ("all", "auto") else wanted[0]
    # --holm shapes the printed tables only: the pooled verdict reads cells at the default family
    result = _analysis(runs, curves, labels, pairs_for({r.model for r in runs}, pair),
                       replace(settings, holm="sizes"))
    report = pool(result, pair=pair, confidence=settings.confidence, **options)
    if fmt is None:
        render_rich(report, console())
        return None
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, allow_nan=False)
    return render_markdown(report).rstrip("\n")


def _budget_of(run: RunRecord):
    return run.training.get("param_budget")


def _budget_label(budget) -> str:
    return "none" if budget is None else f"{budget:,}"


def _at_budget(runs: list[RunRecord], text: str, where: str) -> list[RunRecord]:
    """The runs trained at the parameter budget ``text`` ('none': without one)."""
    known = sorted({_budget_of(r) for r in runs}, key=lambda b: (b is None, b or 0))
    try:
        budget = None if text.strip().lower() == "none" else int(text.replace(",", "").strip())
    except ValueError:
        fail(f"--budget {text!r} is not a whole number of parameters or 'none'")
    chosen = [r for r in runs if _budget_of(r) == budget]
    if not chosen:
        fail(f"--budget {text}: no runs at that budget in {where}; budgets: "
             f"{', '.join(map(_budget_label, known))}")
    return chosen


def _mixed_budgets(runs: list[RunRecord]) -> str | None:
    """Which models ran at several parameter budgets on one data set (None if none did)."""
    from ..analysis.cells import variant_keys

    keys = variant_keys(runs)
    seen: dict[tuple, set] = {}
    for r in runs:
        seen.setdefault((r.task, keys[r.run_id][1], r.model), set()).add(_budget_of(r))
    mixed = sorted({f"{m} ({', '.join(sorted(map(_budget_label, b)))})"
                    for (_, _, m), b in seen.items() if len(b) > 1})
    return f"{', '.join(mixed)} ran at several parameter budgets on one data set" if mixed else None


def _narrow(runs: list[RunRecord], field: str, option: str, text: str,
            where: str) -> list[RunRecord]:
    """The runs whose ``field`` (model or task) is one of the names in ``text``."""
    from ..experiment.matrixfile import parse_list

    chosen = parse_list(text)
    name_of = {r.run_id: r.model if field == "model" else r.task for r in runs}
    known = set(name_of.values())
    missing = [name for name in chosen if name not in known]
    if not chosen or missing:
        fail(f"{option} {text!r}: no runs of {', '.join(map(repr, missing)) or f'any {field}'} "
             f"in {where}; {field}s: {', '.join(sorted(known))}")
    return [r for r in runs if name_of[r.run_id] in chosen]


def _with_param(runs: list[RunRecord], text: str, where: str) -> list[RunRecord]:
    """The runs whose task parameter KEY has VALUE (as a variant key writes it)."""
    from ..analysis.cells import fmt_value, task_params

    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        fail(f"--task-param {text!r}: give KEY=VALUE, e.g. data=digits")
    key, value = key.strip(), value.strip()
    chosen = [r for r in runs if key in task_params(r) and fmt_value(task_params(r)[key]) == value]
    if not chosen:
        seen = sorted({fmt_value(task_params(r)[key]) for r in runs if key in task_params(r)})
        fail(f"--task-param {text!r}: no runs with {key}={value} in {where}; "
             + (f"{key}: {', '.join(seen)}" if seen else f"no run has the parameter {key!r}"))
    return chosen


def _previous_analysis(path: Path) -> bool:
    """An earlier ``bench analyze --out``: its markdown heading, or its JSON's top-level keys."""
    try:
        if path.stat().st_size > 64 * 2**20:
            return False
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if text.startswith(("# seqbench analysis\n", "# seqbench pooled analysis\n")):
        return True
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and ({"counts", "cells", "verdicts"} <= data.keys()
                                       or {"regimes", "tasks", "skipped"} <= data.keys())
