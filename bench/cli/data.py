"""``bench data``: a task's examples as text."""

from __future__ import annotations

import json

import click

from ..api import PluginError
from .common import SEED, TRAIN_SIZE, console, fail, load_registry


@click.command()
@click.argument("task")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="train", show_default=True)
@click.option("--limit", type=click.IntRange(min=0), default=10, show_default=True,
              help="Examples to show (0 = all).")
@click.option("--train-size", type=TRAIN_SIZE, help="Show the training subset of this size.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--task-param", "-t", multiple=True, metavar="NAME=VALUE")
@click.option("--json", "as_json", is_flag=True)
def data(task, split, limit, train_size, seed, task_param, as_json):
    """Show a task's examples as text."""
    from ..api import resolve_params
    from ..experiment.matrixfile import parse_assignments

    reg = load_registry()
    try:
        plugin = reg.task(task)
        given = parse_assignments(task_param, "--task-param")
        scoped = {**given.pop("*"), **given.pop(task, {})}
        if given:
            fail(f"--task-param for {next(iter(given))!r}, but the task is {task!r}")
        params = resolve_params(f"task {task!r}", plugin.params, scoped)
        loaded = plugin.load(params, train_size, seed)
    except PluginError as exc:
        fail(str(exc))
    except click.ClickException:
        raise
    except Exception as exc:  # a plugin's own bug, or a file it could not read: one line
        from ..util import one_line

        fail(f"task {task!r} could not load its data: {one_line(exc)}")
    part = getattr(loaded, split)
    n = len(part) if not limit else min(limit, len(part))
    rows = [loaded.example_text(part, i) for i in range(n)]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    table = Table(title=f"{task} / {split}: {n} of {len(part)} examples", title_justify="left")
    for col in rows[0] if rows else ("source",):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    console().print(table)
