"""``bench analyze``: the statistics over a results database .

Imports stay lazy: numpy, scipy and rich load only when the command runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..store import DEFAULT_DB
from .common import console, fail, parse_pairs


@click.command("analyze")
@click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON.")
@click.option("--markdown", is_flag=True, help="Print GitHub markdown tables and the verdicts.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Write the markdown/JSON to this file instead of stdout "
                   "(without --json/--markdown: JSON for *.json, markdown otherwise).")
@click.option("--pairs", default="lstm:transformer", show_default=True,
              help="Model pairs to compare, 'A:B,C:D', or 'all'. The first pair gets the verdict.")
@click.option("--target-fraction", type=click.FloatRange(0, 1, min_open=True), default=0.95,
              show_default=True,
              help="Time-to-target: this fraction of the cell's best validation score.")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.95, show_default=True, help="Confidence level of CIs and tests.")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=100), default=2000,
              show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the bootstrap and permutation draws (same seed, same numbers).")
def analyze(db, as_json, markdown, out, pairs, target_fraction, confidence, n_boot, seed):
    """Compare models over seeds: CIs, permutation tests, time-to-target, scaling, verdicts.

    Exit 2 with a one-line error when the database is missing, unreadable or holds no runs.
    """
    from ..api import one_line
    from ..store import Store, StoreError

    if as_json and markdown:
        fail("give --json or --markdown, not both")
    try:
        wanted = parse_pairs(pairs)
    except ValueError as exc:
        fail(str(exc))
    try:
        with Store(db, readonly=True) as store:
            runs = store.runs()
            curves = store.curves()
    except StoreError as exc:
        fail(str(exc))
    except Exception as exc:  # a damaged file can fail on the first query, not on open
        fail(f"{db} could not be read ({one_line(exc)})")
    if not runs:
        fail(f"{db} holds no runs yet; start a matrix with `bench run`")
    if wanted != "all":
        known = {r["model"] for r in runs}
        unknown = sorted({m for p in wanted for m in p} - known)
        if unknown:
            fail(f"--pairs names {', '.join(map(repr, unknown))}, which has no runs in {db}; "
                 f"models: {', '.join(sorted(known))}")

    from ..analysis.analyze import analyze as run_analysis

    result = run_analysis(runs, curves, pairs=wanted, target_fraction=target_fraction,
                          confidence=confidence, n_boot=n_boot, seed=seed)
    fmt = "json" if as_json else "markdown" if markdown else None
    if out and fmt is None:
        fmt = "json" if out.lower().endswith(".json") else "markdown"
    if fmt is None:
        from ..analysis.verdict import render_rich

        render_rich(result, console())
        return
    if fmt == "json":
        text = json.dumps(result, indent=2, allow_nan=False)
    else:
        from ..analysis.verdict import render_markdown

        text = render_markdown(result)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {path}", err=True)
    else:
        click.echo(text)
