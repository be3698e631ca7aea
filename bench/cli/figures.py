"""``bench figures``: the data-scaling and learning-curve pictures of a results database, as PNG.

Imports stay lazy: matplotlib, numpy and the analysis load only when the command runs.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import click

from ..limits import MAX_BOOTSTRAP
from ..store import DEFAULT_DB
from .common import fail as _fail

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@click.command("figures")
@click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False),
              help="The results database (opened read-only).")
@click.option("--out", default="figures", show_default=True, type=click.Path(file_okay=False),
              help="The folder to write the PNG files into (created if missing).")
@click.option("--models", default=None, help="Only these models, e.g. 'lstm,transformer'.")
@click.option("--n-boot", type=click.IntRange(100, MAX_BOOTSTRAP), default=2000,
              show_default=True, help="Bootstrap resamples (as `bench analyze --bootstrap`).")
@click.option("--force", is_flag=True,
              help="Let a figure replace an existing file of its name that is not a PNG.")
def figures(db, out, models, n_boot, force):
    """Draw score vs training-set size and the learning curves, per task, as PNG files, and a
    forest plot of the pooled verdict per size regime for a task with several data sets.

    The numbers are those of `bench analyze` and the dashboard (means with 95% t-intervals over
    seeds), so committed pictures can be regenerated from the committed database. Needs the
    figures extra: pip install 'seqbench[figures]'.
    """
    from ..dashboard.data import build_snapshot, check_database, db_version
    from ..dashboard.figures import draw, need_matplotlib
    from ..experiment.matrixfile import parse_list
    from ..store import StoreError

    db = Path(db)
    if not db.exists():
        _fail(f"no results database at {db}; run `bench run` first "
              "(e.g. `bench run --preset quick`)")
    try:
        need_matplotlib()
    except RuntimeError as exc:
        _fail(str(exc))
    wanted = parse_list(models) if models else None
    target = Path(out)
    try:
        check_database(db)
    except StoreError as exc:
        _fail(str(exc))
    snapshot = build_snapshot(db, db_version(db), pairs="auto", confidence=0.95, n_boot=n_boot)
    if snapshot.summary["status"] != "ok":
        _fail(snapshot.summary["message"])
    if wanted:
        present = {r["model"] for r in snapshot.runs}
        unknown = [m for m in wanted if m not in present]
        if unknown:
            _fail(f"--models: no runs of {', '.join(unknown)} in {db} "
                  f"(it holds {', '.join(sorted(present))})")
    # Draw everything into a scratch folder first: a failure leaves nothing half-written.
    with tempfile.TemporaryDirectory(prefix="seqbench-figures-") as tmp:
        drawn = draw(snapshot, Path(tmp), wanted)
        if not drawn:
            _fail(f"{db} has no finished runs to draw")
        clashes = [p.name for p in drawn if (target / p.name).exists()
                   and _head(target / p.name) != PNG_MAGIC]
        if clashes and not force:
            _fail(f"--out {out} already holds {clashes[0]}, which is not a PNG; refusing to "
                  "overwrite it (--force replaces it)")
        try:
            target.mkdir(parents=True, exist_ok=True)
            for p in drawn:
                shutil.copyfile(p, target / p.name)
        except OSError as exc:
            _fail(f"--out {out}: {exc.strerror or exc}")
    for p in drawn:
        click.echo(f"wrote {target / p.name}")


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(len(PNG_MAGIC))
    except OSError:
        return b""
