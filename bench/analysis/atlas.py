"""The small-data atlas as one markdown file, generated from its database (``results/atlas.md``).

    python scripts/atlas_report.py --db results/atlas.sqlite --out results/atlas.md [--check]

Per parameter budget: the pooled verdict per size regime (docs/methods.md#pooling), the per-data-set
tables behind it, the CNN control against Kim (2014)'s CNN-rand, and each part's wall clock.
Nothing depends on when it was generated, so ``--check`` fails when the committed file differs.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..records import RunRecord
from .analyze import analyze
from .cells import task_params, variant_keys
from .pool import dataset_names, display_unit, pairs_for, pool
from .pool_tables import Table, md_table, render_markdown

CONTROL_MODEL = "cnn"
CONTROL_MARGIN = 2.0  # points below Kim's figure that still count as reproducing it
PASSES_NEEDED = 3  # of the four comparable data sets


@dataclass(frozen=True)
class KimFigure:
    """A published CNN-rand test accuracy (Kim 2014, Table 2) and how it was measured."""

    name: str
    accuracy: float  # percent
    protocol: str
    required: bool  # counts toward the control's pass (SST-1's figure used phrase labels)


# Matched against a data set's data file, first match wins.
KIM = (
    ("rt-polarity", KimFigure("MR", 76.1, "10-fold CV", True)),
    ("subj", KimFigure("Subj", 89.6, "10-fold CV", True)),
    ("stsa.binary", KimFigure("SST-2", 82.7, "standard split; phrases in training", True)),
    ("stsa.fine", KimFigure("SST-1", 45.0, "standard split; phrases in training", False)),
    ("trec", KimFigure("TREC", 91.2, "standard split", True)),
)


def kim_figure(variant: dict[str, Any]) -> KimFigure | None:
    data = str(variant.get("data", "")).lower()
    return next((fig for key, fig in KIM if key in data), None)


def dataset_name(variant: dict[str, Any]) -> str | None:
    """The data set's name in the literature (MR, Subj, ...) when it is one of Kim's."""
    fig = kim_figure(variant)
    return fig.name if fig else None


def _budget(run: RunRecord) -> int | None:
    # 0: no budget, the model at its own size (the CNN control)
    return run.training.get("param_budget") or None


def _budget_name(budget: int | None) -> str:
    return "no parameter budget (each model at its own size)" if budget is None \
        else f"{budget:,} parameters"


def _mean_ci(row: dict[str, Any], scale: float = 100.0) -> str:
    if row.get("mean") is None:
        return "-"
    ci = row.get("ci")
    return f"{scale * row['mean']:.1f}" + (f" [{scale * ci[0]:.1f}, {scale * ci[1]:.1f}]"
                                           if ci else "")


def _n(cell: dict[str, Any]) -> str:
    n = cell.get("n")
    text = "-" if n is None else f"{n:,}"
    return f"full ({text})" if cell.get("train_size") is None else text


# ---------------------------------------------------------------------------- sections


def _parts(runs: list[RunRecord], names: dict[str, str]) -> list[str]:
    """Each part (a matrix file's launch) with its runs and wall clock, first start to last
    finish."""
    parts: dict[str, list[RunRecord]] = {}
    for r in runs:
        parts.setdefault(r.matrix_id or "-", []).append(r)
    rows = []
    for mid, rs in sorted(parts.items(), key=lambda kv: min(r.started_at or "" for r in kv[1])):
        starts = [r.started_at for r in rs if r.started_at]
        ends = [r.finished_at for r in rs if r.finished_at]
        wall = "-"
        if starts and ends:
            secs = (datetime.fromisoformat(max(ends))
                    - datetime.fromisoformat(min(starts))).total_seconds()
            wall = f"{int(secs // 3600)} h {int(secs % 3600 // 60):02d} min"
        train = sum(r.train_seconds or 0.0 for r in rs)
        budgets = sorted({_budget_name(_budget(r)) for r in rs})
        rows.append((mid, ", ".join(sorted({r.model for r in rs})),
                     ", ".join(sorted({names[r.run_id] for r in rs})), "; ".join(budgets),
                     f"{len(rs):,}", min(starts)[:16].replace("T", " ") if starts else "-",
                     wall, f"{train / 3600:.1f} h"))
    table = Table("Parts", ("part (matrix id)", "models", "data sets", "budget", "runs",
                            "started (UTC)", "wall clock, first start to last finish",
                            "training time, summed over runs"), rows)
    return md_table(table)


def _per_dataset(analysis: dict[str, Any], label: Callable[[dict[str, Any]], str]) -> list[str]:
    """One table per data set: each model's mean test accuracy [95% t-CI] per size, and the
    verdict pair's difference."""
    out = []
    pair = analysis.get("verdict_pair") or []
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for c in analysis["cells"]:
        by_variant.setdefault(c["variant_key"], []).append(c)
    for vkey, cells in sorted(by_variant.items(), key=lambda kv: label(kv[1][0])):
        models = sorted({m["model"] for c in cells for m in c["models"]})
        scale = display_unit(cells)[0]
        unit = "%" if scale == 100 else cells[0].get("primary_metric")
        cols = ["n"] + models + ["best"]
        if len(pair) == 2:
            cols += [f"{pair[0]} − {pair[1]} [CI]" + (", points" if scale == 100 else ""),
                     "outcome"]
        rows = []
        for c in cells:
            by = {m["model"]: m for m in c["models"]}
            row = [_n(c)] + [_mean_ci(by.get(m, {}), scale) for m in models]
            row.append((c.get("winner") or {}).get("model") or "-")
            if len(pair) == 2:
                cmp = next((x for x in c["comparisons"] if [x["a"], x["b"]] == pair), None)
                if cmp and cmp.get("diff") is not None:
                    ci = cmp.get("ci")
                    row += [f"{scale * cmp['diff']:+.2f}" + (
                        f" [{scale * ci[0]:+.2f}, {scale * ci[1]:+.2f}]" if ci else ""),
                        cmp.get("result") or "-"]
                else:
                    row += ["-", "-"]
            rows.append(tuple(row))
        title = (f"{label(cells[0])}: test {cells[0].get('primary_metric')} ({unit}, mean "
                 "[95% t-CI] over seeds)")
        out += [f"**{title}**", ""] + md_table(Table(title, tuple(cols), rows)) + [""]
    return out


def _control(analyses: list[dict[str, Any]], params_of: Callable[[dict[str, Any]], dict[str, Any]],
             budget_of: dict[str, Any]) -> list[str]:
    """The CNN on each full training set, every budget it ran at, against Kim (2014);
    ``params_of(cell)``: the task parameters its runs were configured with; ``budget_of``:
    run id -> parameter budget."""
    rows, passed, required = [], set(), set()
    for analysis in analyses:
        for c in analysis["cells"]:
            fig = kim_figure(params_of(c))
            row = next((m for m in c["models"] if m["model"] == CONTROL_MODEL), None)
            if fig is None or row is None or c.get("train_size") is not None:
                continue
            if row.get("mean") is None:
                continue
            diff = 100 * row["mean"] - fig.accuracy
            ok = diff >= -CONTROL_MARGIN
            if fig.required:
                required.add(fig.name)
                if ok:
                    passed.add(fig.name)
            params = row.get("param_count")
            budget = budget_of[(row.get("run_ids") or [None])[0]]
            rows.append((fig.name, f"{fig.accuracy:.1f}", fig.protocol, _mean_ci(row),
                         f"{diff:+.1f}", ("yes" if ok else "no") if fig.required
                         else f"{'yes' if ok else 'no'} (not required)",
                         str(row.get("n_seeds")), _budget_name(budget),
                         "-" if params is None else f"{params:,}", f"{c.get('n'):,}"))
    if not rows:
        return ["No CNN runs on a full training set of Kim's data sets yet."]
    order = [fig.name for _, fig in KIM]
    rows.sort(key=lambda r: (order.index(r[0]), r[7]))
    table = Table("control", ("data set", "Kim 2014 CNN-rand (%)", "Kim's protocol",
                              "measured (%, mean [95% t-CI])", "difference (points)",
                              f"within {CONTROL_MARGIN:g} points", "seeds", "budget",
                              "parameters", "training examples"), rows)
    verdict = (f"**The control {'passes' if len(passed) >= PASSES_NEEDED else 'does not pass'}: "
               f"within {CONTROL_MARGIN:g} points of CNN-rand (or above it) on {len(passed)} of "
               f"{len(required)} required data sets** ({', '.join(sorted(passed)) or 'none'}; "
               f"needed: {PASSES_NEEDED} of MR, SST-2, Subj, TREC).")
    note = ("Measured on one held-out test set per data set (MR and Subj: a seeded, stratified "
            "10% split) where Kim reports 10-fold cross-validation for MR and Subj; his SST "
            "figures were trained on SST's labelled phrases too, which these files lack.")
    return md_table(table) + ["", verdict, "", note]


# ---------------------------------------------------------------------------- the file


def render_atlas(db_path: str | Path, *, n_boot: int = 2000, seed: int = 0) -> str:
    """The atlas markdown for the database at ``db_path`` (opened read-only)."""
    from ..store import Store

    db_path = Path(db_path)
    with Store(db_path, readonly=True) as store:
        runs = [r for r in store.runs() if r.status != "running"]
        curves = store.curves()
    task_params_of = {r.run_id: task_params(r) for r in runs}
    keys = variant_keys(runs)  # over the whole database: a budget's own may be "default"
    short = dataset_names(v for v, _ in keys.values())
    names = {rid: dataset_name(task_params_of[rid]) or f"{task} {short[vkey]}"
             for rid, task, (_, vkey) in ((r.run_id, r.task, keys[r.run_id]) for r in runs)}

    def first_run(cell: dict[str, Any]) -> str | None:  # None: tuning runs only, so far
        run_id: str | None = next(
            (rid for m in cell["models"] for rid in m.get("run_ids") or []), None)
        return run_id

    def label(cell: dict[str, Any]) -> str:
        run_id = first_run(cell)
        return names[run_id] if run_id else "-"

    def params_of(cell: dict[str, Any]) -> dict[str, Any]:
        run_id = first_run(cell)
        return task_params_of[run_id] if run_id else {}

    lines = _head(db_path, runs, names)
    groups = _budget_groups(runs, names)
    analyses = []
    for rank in sorted(groups, key=lambda g: (g is None, g or 0)):
        rs = groups[rank]
        models = {r.model for r in rs}
        analysis = analyze(rs, curves, pairs=pairs_for(models), n_boot=n_boot, seed=seed)
        analyses.append(analysis)
        if rank is None:
            continue  # a model alone at its budget: the control table reads it
        per = sorted({(names[r.run_id], _budget(r)) for r in rs})
        title = "the main parameter budget" if rank == 0 else (
            "a smaller parameter budget" if rank == 1 else f"parameter budget {rank + 1} (by size)")
        lines += [f"## At {title} of each data set", "",
                  "Budgets: " + "; ".join(f"{d} {_budget_name(b)}" for d, b in per) + ".", "",
                  "### The pooled verdict", ""]
        lines += [render_markdown(pool(analysis, names=dataset_name), heading="",
                                  level=4).rstrip(), ""]
        named = {vkey: names[rid] for rid, (_, vkey) in variant_keys(rs).items()}
        lines += ["### Per data set", ""] + _per_dataset(
            analysis, lambda c: named.get(c["variant_key"]) or label(c))  # tuning runs only: by data
    budget_of = {r.run_id: _budget(r) for r in runs}
    lines += ["## The CNN control (Kim 2014, CNN-rand)", ""]
    lines += _control(analyses, params_of, budget_of)
    return "\n".join(lines).rstrip() + "\n"


def _head(db_path: Path, runs: list[RunRecord], names: dict[str, str]) -> list[str]:
    """The title, how the file was generated, the run counts and the parts' wall clock."""
    counts = {s: sum(r.status == s for r in runs) for s in ("done", "failed", "diverged")}
    lines = [
        "# The small-data atlas", "",
        f"Generated from `{db_path.as_posix()}` by `python scripts/atlas_report.py --db "
        f"{db_path.as_posix()} --out results/atlas.md` (`--check` fails when this file differs "
        "from what the database gives); do not edit by hand. "
        f"{len(runs):,} runs: {counts['done']:,} done, {counts['failed']:,} failed, "
        f"{counts['diverged']:,} diverged; models {', '.join(sorted({r.model for r in runs}))}"
        f"; data sets {', '.join(sorted(set(names.values())))}.", "",
        "## Parts and wall clock", "",
    ]
    return lines + (_parts(runs, names) if runs else ["No finished runs yet."]) + [""]


def _budget_groups(runs: list[RunRecord],
                   names: dict[str, str]) -> dict[int | None, list[RunRecord]]:
    """The runs by the rank of their budget within their data set, largest first, among the
    budgets at which at least two models ran (budgets may differ between data sets: each data
    set's comparison is at one budget); None: a model alone at its budget (the control)."""
    models: dict[tuple[Any, ...], set[Any]] = {}
    for r in runs:
        models.setdefault((names[r.run_id], _budget(r)), set()).add(r.model)
    rank: dict[tuple[Any, ...], int] = {}
    for name in {d for d, _ in models}:
        shared = sorted((b for (d, b), ms in models.items() if d == name and len(ms) > 1),
                        key=lambda b: -(b or 0))
        rank.update({(name, b): i for i, b in enumerate(shared)})
    groups: dict[int | None, list[RunRecord]] = {}
    for r in runs:
        groups.setdefault(rank.get((names[r.run_id], _budget(r))), []).append(r)
    return groups


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write results/atlas.md from the atlas database.")
    ap.add_argument("--db", default="results/atlas.sqlite")
    ap.add_argument("--out", default="results/atlas.md")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 when --out differs from what --db gives")
    args = ap.parse_args(argv)
    from ..store import StoreError

    if not Path(args.db).exists():
        print(f"error: no atlas database at {args.db}", file=sys.stderr)
        return 2
    try:
        text = render_atlas(args.db)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.check:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            print(f"error: {out} differs from what {args.db} gives; regenerate it with "
                  f"python scripts/atlas_report.py --db {args.db} --out {out}", file=sys.stderr)
            return 1
        print(f"{out} is up to date with {args.db}")
        return 0
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out}")
    return 0
