"""``bench plugins``: every model, task and executor, with where it comes from."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from .common import console, load_registry, warn_broken


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool):
    """List every model, task and executor, with where it comes from."""
    reg = load_registry()
    out = {
        "models": [
            {
                "name": m.name,
                "kinds": list(m.kinds),
                "source": m.source,
                "description": m.description,
                "defaults": {k: p.default for k, p in m.defaults.items()},
                # What `bench run --tune-trials N` draws from for this model.
                "search_space": {k: {"kind": type(d).__name__.lower(), **asdict(d)}
                                 for k, d in m.space.items()},
            }
            for m in reg.models.values()
        ],
        "tasks": [
            {
                "name": t.name,
                "kind": t.kinds[0],
                "kinds": list(t.kinds),
                "source": t.source,
                "description": t.description,
                "params": {k: p.default for k, p in t.params.items()},
                "metrics": list(t.metrics),
                "primary_metric": t.primary_metric,
            }
            for t in reg.tasks.values()
        ],
        "executors": [
            {"name": e.name, "source": e.source, "description": e.description}
            for e in reg.executors.values()
        ],
        "loggers": [
            {"name": lg.name, "source": lg.source, "description": lg.description}
            for lg in reg.loggers.values()
        ],
        "broken": [vars(b) for b in reg.broken],
    }
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    from rich.table import Table

    term = console()
    for title, rows, kinds_key in (("Models", out["models"], "kinds"), ("Tasks", out["tasks"], "kinds")):
        table = Table(title=title, title_justify="left")
        for col in ("name", "supports" if title == "Models" else "kind", "source", "description"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["name"], ", ".join(r[kinds_key]), r["source"], r["description"])
        term.print(table)
    warn_broken(reg)
