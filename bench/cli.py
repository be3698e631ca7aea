"""The ``bench`` command line: plugins, run, results, data.

Imports stay lazy: ``bench --help`` and ``bench plugins`` never import torch or Lightning.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .api import PluginError
from .store import DEFAULT_DB


class UserError(click.ClickException):
    """One line on stderr, exit 2, nothing written."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def fail(message: str) -> None:
    raise UserError(message)


def _registry():
    from .registry import registry

    try:
        return registry()
    except PluginError as exc:
        fail(str(exc))


def _console():
    from rich.console import Console

    # Piped to a file or a CI log, rich would assume 80 columns and cut the tables' cells.
    return Console() if sys.stdout.isatty() else Console(width=160)


def _warn_broken(reg) -> None:
    for b in reg.broken:
        click.echo(f"warning: plugin {b.plugin!r} ({b.source}) was not loaded: {b.error}", err=True)


class BenchGroup(click.Group):
    """Every usage error (a bad option value too) is one line, exit 2."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            hint = " (see --help)" if isinstance(exc, click.UsageError) else ""
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seqbench")
def main():
    """seqbench: on my small data set, should I use an LSTM or a Transformer?

    Register plugins, launch a benchmark matrix, browse the results.
    """


# --------------------------------------------------------------------------------------------
# bench plugins


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool):
    """List every model, task and executor, with where it comes from."""
    reg = _registry()
    out = {
        "models": [
            {
                "name": m.name,
                "kinds": list(m.kinds),
                "source": m.source,
                "description": m.description,
                "defaults": {k: p.default for k, p in m.defaults.items()},
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
        "broken": [vars(b) for b in reg.broken],
    }
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    from rich.table import Table

    console = _console()
    for title, rows, kinds_key in (("Models", out["models"], "kinds"), ("Tasks", out["tasks"], "kinds")):
        table = Table(title=title, title_justify="left")
        for col in ("name", "supports" if title == "Models" else "kind", "source", "description"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["name"], ", ".join(r[kinds_key]), r["source"], r["description"])
        console.print(table)
    _warn_broken(reg)


# --------------------------------------------------------------------------------------------
# bench run


@main.command()
@click.option("--models", help="Comma-separated model names (default: all).")
@click.option("--tasks", help="Comma-separated task names (default: all).")
@click.option("--train-sizes", help="Comma-separated training-set sizes, or 'full'.")
@click.option("--seeds", help="Seeds: '0,1,2' or a range '0-4'.")
@click.option("--matrix", "matrix_file", type=click.Path(dir_okay=False), help="A TOML matrix file.")
@click.option("--preset", help="A shipped matrix preset: quick or claim (bench/presets/).")
@click.option("--model-param", "-m", multiple=True, metavar="[MODEL.]NAME=VALUE",
              help="Set a model hyperparameter (repeatable).")
@click.option("--task-param", "-t", multiple=True, metavar="[TASK.]NAME=VALUE",
              help="Set a task parameter (repeatable).")
@click.option("--max-steps", type=int, help="Training budget: optimizer steps at most.")
@click.option("--batch-size", type=int)
@click.option("--lr", type=float, help="Learning rate.")
@click.option("--val-every", type=int, help="Validate every N steps.")
@click.option("--patience", type=int, help="Early-stopping patience in validations (0 = off).")
@click.option("--grad-clip", type=float, help="Gradient-norm clipping (0 = off).")
@click.option("--param-budget", type=int, help="Size every model to about this many parameters.")
@click.option("--tune-lr", help="Learning-rate trials for every model, e.g. 3e-4,1e-3,3e-3.")
@click.option("--tune-seeds", type=int, help="Seeds each trial runs on before selection.")
@click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False))
@click.option("--executor", default="local", show_default=True,
              help="How runs are carried out (see `bench plugins`).")
@click.option("--workers", type=click.IntRange(min=0), default=0,
              help="Worker processes for the local executor (0 = one per core).")
@click.option("--retry-failed", is_flag=True, help="Also rerun stored failed and diverged runs.")
@click.option("--wandb", "use_wandb", is_flag=True,
              help="Log every run to Weights & Biases (offline unless you are logged in).")
@click.option("--wandb-project", default="seqbench", show_default=True)
@click.option("--dry-run", is_flag=True, help="Print the planned runs and exit.")
def run(models, tasks, train_sizes, seeds, matrix_file, preset, model_param, task_param,
        max_steps, batch_size, lr, val_every, patience, grad_clip, param_budget, tune_lr,
        tune_seeds, db, executor, workers, retry_failed, use_wandb, wandb_project, dry_run):
    """Train every compatible model x task pairing over training sizes and seeds.

    Runs already done in the database are skipped, so the same command continues an
    interrupted matrix.
    """
    from . import matrixfile
    from .plan import plan as make_plan

    reg = _registry()
    _warn_broken(reg)
    training = {
        k: v
        for k, v in dict(
            max_steps=max_steps, batch_size=batch_size, lr=lr, val_every=val_every,
            patience=patience, grad_clip=grad_clip, param_budget=param_budget,
        ).items()
        if v is not None
    }
    tuning = {}
    if tune_lr:
        tuning["lr"] = matrixfile.parse_list(tune_lr)
    if tune_seeds is not None:
        tuning["seeds"] = tune_seeds
    try:
        if matrix_file and preset:
            fail("give --matrix or --preset, not both")
        file_data = {}
        if preset:
            file_data = matrixfile.read(matrixfile.preset_path(preset))
        elif matrix_file:
            file_data = matrixfile.read(matrix_file)
        matrix = matrixfile.build_matrix(
            file_data, models, tasks, train_sizes, seeds, model_param, task_param, training,
            tuning, list(reg.models), list(reg.tasks),
        )
        the_plan = make_plan(matrix, reg)
        executor_plugin = reg.executor(executor)
    except PluginError as exc:
        fail(str(exc))

    if dry_run:
        _print_plan(the_plan, reg)
        return
    if not the_plan.runs:
        fail("no model in this matrix supports any of its tasks: " + "; ".join(
            s.reason for s in the_plan.skipped[:3]))
    _check_sizes_fit(the_plan, reg)

    from .launch import launch
    from .store import Store, StoreError

    logger_factory = None
    if use_wandb:
        from .wandb_logging import WandbLoggerFactory, logged_in

        os.environ.setdefault("WANDB_MODE", "online" if logged_in() else "offline")
        logger_factory = WandbLoggerFactory(wandb_project, str(Path(db).parent / "wandb"))
    try:
        store = Store(db)
    except StoreError as exc:
        fail(str(exc))
    console = _console()
    executor_obj = executor_plugin.factory(workers, logger_factory=logger_factory)
    with store:
        outcome = launch(the_plan, matrix, store, executor_obj, console, retry_failed=retry_failed)
    if use_wandb and os.environ["WANDB_MODE"] == "offline":
        runs = Path(db).parent / "wandb" / "wandb" / "offline-run-*"
        console.print(f"W&B runs saved offline; upload them with: wandb sync {runs}")
    if outcome.interrupted:
        sys.exit(130)
    if outcome.failed:
        sys.exit(1)


def _check_sizes_fit(the_plan, reg) -> None:
    """A training size larger than a task's data is an error before anything runs."""
    seen: dict[str, int] = {}
    for spec in the_plan.runs:
        key = spec.task + json.dumps(spec.task_params, sort_keys=True)
        if key not in seen:
            try:
                data = reg.task(spec.task).load(dict(spec.task_params), None, 0)
            except PluginError as exc:
                fail(f"task {spec.task!r}: {exc}")
            except Exception as exc:  # a plugin's own bug: still one line, not a traceback
                fail(f"task {spec.task!r} could not load its data: {type(exc).__name__}: {exc}")
            seen[key] = len(data.train)
        if spec.train_size is not None and spec.train_size > seen[key]:
            fail(
                f"training size {spec.train_size} is larger than task {spec.task!r}'s "
                f"{seen[key]} training examples; use sizes up to {seen[key]} or 'full'"
            )


def _print_plan(the_plan, reg) -> None:
    from rich.table import Table

    console = _console()
    table = Table(title=f"{len(the_plan.runs)} planned runs (matrix {the_plan.matrix_id})",
                  title_justify="left")
    for col in ("run_id", "model", "task", "kind", "train size", "seed", "lr", "changed params"):
        table.add_column(col)
    for r in the_plan.runs:
        changed = {
            **{k: v for k, v in r.task_params.items() if v != reg.task(r.task).params[k].default},
            **{k: v for k, v in r.model_params.items() if v != reg.model(r.model).defaults[k].default},
        }
        table.add_row(
            r.run_id, r.model, r.task, r.kind, str(r.train_size or "full"), str(r.seed),
            f"{r.training['lr']:g}", ", ".join(f"{k}={v}" for k, v in changed.items()),
        )
    console.print(table)
    if the_plan.tuning:
        rest = len(the_plan.seeds) - the_plan.tuning.seeds
        console.print(
            f"then, per {the_plan.tuning.per} and model, the trial with the best validation score "
            f"runs on {rest} more seeds"
        )
    seen = set()
    for s in the_plan.skipped:
        if (s.model, s.task) not in seen:
            seen.add((s.model, s.task))
            console.print(f"skipped {s.model} x {s.task}: {s.reason}")


# --------------------------------------------------------------------------------------------
# bench results


@main.command()
@click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False))
@click.option("--model")
@click.option("--task")
@click.option("--status", type=click.Choice(["running", "done", "failed", "diverged"]))
@click.option("--train-size", type=int)
@click.option("--seed", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the records as a JSON list.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the records as CSV.")
def results(db, model, task, status, train_size, seed, as_json, as_csv):
    """Show stored runs."""
    from .store import Store, StoreError

    try:
        with Store(db, readonly=True) as store:
            rows = store.runs(model=model, task=task, status=status, train_size=train_size, seed=seed)
    except StoreError as exc:
        fail(str(exc))
    from .report_table import print_runs, runs_csv, runs_json

    if as_json:
        click.echo(runs_json(rows))
    elif as_csv:
        click.echo(runs_csv(rows), nl=False)
    else:
        print_runs(rows, _console())


# --------------------------------------------------------------------------------------------
# bench data


@main.command()
@click.argument("task")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="train", show_default=True)
@click.option("--limit", type=click.IntRange(min=0), default=10, show_default=True,
              help="Examples to show (0 = all).")
@click.option("--train-size", type=int, help="Show the training subset of this size.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--task-param", "-t", multiple=True, metavar="NAME=VALUE")
@click.option("--json", "as_json", is_flag=True)
def data(task, split, limit, train_size, seed, task_param, as_json):
    """Show a task's examples as text."""
    from .api import resolve_params
    from .matrixfile import parse_assignments

    reg = _registry()
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
    _console().print(table)


# Commands defined in their own modules (imported lazily inside their bodies).
from .analyze_cli import analyze  # noqa: E402
from .dashboard_cli import dashboard, report  # noqa: E402

main.add_command(analyze)
main.add_command(dashboard)
main.add_command(report)

if __name__ == "__main__":  # pragma: no cover
    main()
