"""``bench run``: plan a matrix, train what is missing, store it, print the summary."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from ..api import PluginError
from ..store import DEFAULT_DB
from .common import console, fail, load_registry, warn_broken


@click.command()
@click.option("--models", help="Comma-separated model names (default: all).")
@click.option("--tasks", help="Comma-separated task names (default: all).")
@click.option("--train-sizes", help="Comma-separated training-set sizes, or 'full'.")
@click.option("--seeds", help="Seeds: '0,1,2' or a range '0-4'.")
@click.option("--matrix", "matrix_file", type=click.Path(dir_okay=False), help="A TOML matrix file.")
@click.option("--preset", help="A shipped matrix preset: quick or claim (bench/experiment/presets/).")
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
    from ..experiment import matrixfile
    from ..experiment.plan import plan as make_plan

    reg = load_registry()
    warn_broken(reg)
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

    from ..experiment.launch import launch
    from ..store import Store, StoreError

    logger_factory = None
    if use_wandb:
        from ..experiment.wandb_logging import WandbLoggerFactory, logged_in

        os.environ.setdefault("WANDB_MODE", "online" if logged_in() else "offline")
        logger_factory = WandbLoggerFactory(wandb_project, str(Path(db).parent / "wandb"))
    try:
        store = Store(db)
    except StoreError as exc:
        fail(str(exc))
    out = console()
    executor_obj = executor_plugin.factory(workers, logger_factory=logger_factory)
    with store:
        outcome = launch(the_plan, matrix, store, executor_obj, out, retry_failed=retry_failed)
        from ..analysis.tables import print_summary

        print_summary(store.runs(), out, run_ids=outcome.planned)
    if outcome.failed:
        out.print(
            f"[red]{outcome.failed} runs failed[/red]: see `bench results --db {db} "
            "--status failed --json` for their errors"
        )
    if use_wandb and os.environ["WANDB_MODE"] == "offline":
        runs = Path(db).parent / "wandb" / "wandb" / "offline-run-*"
        out.print(f"W&B runs saved offline; upload them with: wandb sync {runs}")
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

    out = console()
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
    out.print(table)
    if the_plan.tuning:
        rest = len(the_plan.seeds) - the_plan.tuning.seeds
        out.print(
            f"then, per {the_plan.tuning.per} and model, the trial with the best validation score "
            f"runs on {rest} more seeds"
        )
    seen = set()
    for s in the_plan.skipped:
        if (s.model, s.task) not in seen:
            seen.add((s.model, s.task))
            out.print(f"skipped {s.model} x {s.task}: {s.reason}")
