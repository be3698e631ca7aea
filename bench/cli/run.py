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
from .preflight import check_plan_fits, make_executor


@click.command()
@click.option("--models", help="Comma-separated model names (default: all).")
@click.option("--tasks", help="Comma-separated task names (default: all).")
@click.option("--train-sizes", help="Comma-separated training-set sizes, or 'full'.")
@click.option("--seeds", help="Seeds: '0,1,2' or a range '0-4'.")
@click.option("--matrix", "matrix_file", type=click.Path(),
              help="A TOML matrix file, or a folder of them (a study in parts, run in turn).")
@click.option("--preset", help="A shipped matrix preset: quick, claim, mechanisms "
              "(bench/experiment/presets/).")
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
@click.option("--schedule", type=click.Choice(["wsd", "cosine", "constant"]),
              help="Learning-rate schedule (default wsd: warm-up, constant, cooldown at the "
                   "plateau or before the step cap; cosine/constant: the earlier protocol).")
@click.option("--warmup-steps", type=int, help="wsd: warm-up steps, equal for every model.")
@click.option("--cooldown", type=float,
              help="wsd: cooldown as a share of the steps before it (default 0.2).")
@click.option("--param-budget", type=int, help="Size every model to about this many parameters.")
@click.option("--probe-gradients", is_flag=True,
              help="Record gradient probes: per-position input-gradient norms at step 0 and every "
                   "validation, the pre-clip gradient norm every step.")
@click.option("--tbptt", type=float, metavar="K",
              help="Truncated BPTT in windows of K steps (or a share of the sequence, below 1; "
                   "0 = full BPTT): recurrent models, aligned tasks.")
@click.option("--rtrl", type=click.Choice(["off", "online", "accumulated"]),
              help="Real-time recurrent learning (one-layer rnn, aligned tasks).")
@click.option("--tune-trials", type=int,
              help="Tune: this many trials per model and cell, in each model's own search space.")
@click.option("--tune-extend", type=int,
              help="Extension rounds at most when a selected lr sits on an edge (default 2).")
@click.option("--tune-lr", help="Tune on a fixed learning-rate grid instead, e.g. 3e-4,1e-3,3e-3.")
@click.option("--tune-seeds", type=int,
              help="Tuning seeds (10000 up), never evaluation seeds (default 1).")
@click.option("--tune-prune", metavar="off|halving",
              help="Successive halving within each model's trials (default off: every trial "
                   "trains in full).")
@click.option("--tune-eta", type=int, help="Halving: keep the best 1/eta per rung (default 3).")
@click.option("--tune-rungs", type=int, help="Halving: rungs (default 2).")
@click.option("--tune-min-steps", type=int,
              help="Halving: steps of the first rung; rung k trains min x eta^k (default 100).")
@click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False))
@click.option("--executor", default="local", show_default=True,
              help="How runs are carried out (see `bench plugins`).")
@click.option("--workers", type=click.IntRange(0, 100_000), default=0,
              help="Worker processes for the local executor (0 = one per core); Ray actors "
                   "(0 = fill the cluster); SLURM array tasks at once (0 = no limit).")
# Executor options: each goes to the executors that take it (a one-line error for the others).
@click.option("--gpus-per-run", type=float, help="local, ray, slurm: share of a GPU per run "
              "(0.125: eight runs share a GPU).")
@click.option("--cpus-per-run", type=float, help="ray, slurm: CPUs per run (default 1).")
@click.option("--ray-address", metavar="auto|HOST:PORT",
              help="ray: join this cluster (default: start a local Ray instance).")
@click.option("--slurm-partition", help="slurm: the partition to submit to.")
@click.option("--slurm-time", type=float, metavar="MINUTES",
              help="slurm: time limit per array task (default 60); a task that reaches it is "
                   "requeued and does its unfinished runs.")
@click.option("--runs-per-task", type=int, help="slurm: runs per array task (default 10).")
@click.option("--slurm-folder", type=click.Path(file_okay=False),
              help="slurm: logs and records, on a file system the nodes share "
                   "(default results/slurm).")
@click.option("--retry-failed", is_flag=True, help="Also rerun stored failed and diverged runs.")
@click.option("--logger", "logger_names", metavar="NAME,...",
              help="Log every run to these trackers: wandb, mlflow, tensorboard, csv (any "
                   "combination) or a plugin's; offline, under the database's folder.")
@click.option("--wandb", "use_wandb", is_flag=True, help="The same as --logger wandb.")
@click.option("--wandb-project", default="seqbench", show_default=True,
              help="The project (W&B), experiment (MLflow) or folder name (TensorBoard, CSV).")
@click.option("--dry-run", is_flag=True, help="Print the planned runs and exit.")
def run(models, tasks, train_sizes, seeds, matrix_file, preset, model_param, task_param,
        max_steps, batch_size, lr, val_every, patience, grad_clip, schedule, warmup_steps, cooldown,
        param_budget, probe_gradients,
        tbptt, rtrl, tune_trials,
        tune_extend, tune_lr, tune_seeds, tune_prune, tune_eta, tune_rungs, tune_min_steps,
        db, executor, workers, retry_failed, logger_names, use_wandb, wandb_project, dry_run,
        **executor_options):
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
            patience=patience, grad_clip=grad_clip, schedule=schedule,
            warmup_steps=warmup_steps, cooldown=cooldown, param_budget=param_budget,
            probe_gradients=probe_gradients or None, tbptt=tbptt, rtrl=rtrl,
        ).items()
        if v is not None
    }
    tuning = {}
    if tune_trials is not None:
        tuning["trials"] = tune_trials
    if tune_extend is not None:
        tuning["extend"] = tune_extend
    if tune_lr:
        tuning["lr"] = matrixfile.parse_list(tune_lr)
    if tune_seeds is not None:
        tuning["seeds"] = tune_seeds
    for key, value in (("prune", tune_prune), ("eta", tune_eta), ("rungs", tune_rungs),
                       ("min_steps", tune_min_steps)):
        if value is not None:
            tuning[key] = value
    try:
        if matrix_file and preset:
            fail("give --matrix or --preset, not both")
        # A preset or --matrix folder is a study in parts: one matrix per file, run in turn.
        source = matrixfile.preset_path(preset) if preset else matrix_file
        files = matrixfile.matrix_files(source) if source else []
        parts = [(f.stem, matrixfile.read(f)) for f in files] or [("", {})]
        matrices = [
            matrixfile.build_matrix(
                file_data, models, tasks, train_sizes, seeds, model_param, task_param, training,
                tuning, list(reg.models), list(reg.tasks),
            )
            for _, file_data in parts
        ]
        plans = [make_plan(matrix, reg) for matrix in matrices]
        executor_plugin = reg.executor(executor)
    except PluginError as exc:
        fail(str(exc))

    if dry_run:
        for (name, _), the_plan in zip(parts, plans):
            if len(plans) > 1:
                console().print(f"[bold]part {name}[/bold]")
            _print_plan(the_plan, reg)
        if len(plans) > 1:
            console().print(f"{sum(len(p.runs) for p in plans)} planned runs in {len(plans)} parts")
        return
    if not any(p.runs for p in plans):
        fail("no model in this matrix supports any of its tasks: " + "; ".join(
            s.reason for p in plans for s in p.skipped[:3]))
    for the_plan in plans:
        check_plan_fits(the_plan, reg)

    from ..experiment.launch import launch
    from ..store import NotResultsDatabase, Store, StoreError

    logger_factory = _logger_set(reg, logger_names, use_wandb, wandb_project, db)
    use_wandb = bool(logger_factory and "wandb" in logger_factory.names)
    # The executor first: a cluster that cannot be reached is an error before anything is written.
    executor_obj = make_executor(executor_plugin, workers, logger_factory, executor_options)
    try:
        if Path(db).is_file():  # damaged pages: refuse before writing a byte (read-only check)
            try:
                with Store(db, readonly=True) as existing:
                    existing.check()
            except NotResultsDatabase:
                pass  # no tables yet: maybe another launch is creating them; Store(db) decides
        store = Store(db)
    except StoreError as exc:
        fail(str(exc))
    out = console()
    try:
        with store:
            outcomes = []
            for (name, _), matrix, the_plan in zip(parts, matrices, plans):
                if len(plans) > 1:
                    out.print(f"part {name}: {len(the_plan.runs)} planned runs")
                outcomes.append(launch(the_plan, matrix, store, executor_obj, out,
                                       retry_failed=retry_failed))
                if outcomes[-1].interrupted:
                    break
            from ..analysis.tables import print_summary

            print_summary(store.runs(), out, run_ids=set().union(*(o.planned for o in outcomes)))
    except StoreError as exc:  # the file went bad while the matrix ran (disk full, damaged)
        fail(str(exc))
    failed = sum(o.failed for o in outcomes)
    if failed:
        out.print(
            f"[red]{failed} runs failed[/red]: see `bench results --db {db} "
            "--status failed --json` for their errors"
        )
    if use_wandb and os.environ["WANDB_MODE"] == "offline":
        runs = Path(db).parent / "wandb" / "wandb" / "offline-run-*"
        out.print(f"W&B runs saved offline; upload them with: wandb sync {runs}")
    if logger_factory:
        from ..experiment.loggers import where_logged

        for line in where_logged(logger_factory):
            out.print(line)
    if any(o.interrupted for o in outcomes):
        sys.exit(130)
    if failed:
        sys.exit(1)


def _logger_set(reg, names: str | None, use_wandb: bool, project: str, db: str):
    """The runs' loggers (None without --logger/--wandb); a bad name is a one-line error."""
    if names is None and not use_wandb:
        return None
    from ..experiment.loggers import LoggerSet, parse_loggers

    try:
        chosen = parse_loggers(names, reg.loggers) if names is not None else ()
    except ValueError as exc:
        fail(str(exc))
    if use_wandb and "wandb" not in chosen:
        chosen += ("wandb",)
    if "wandb" in chosen:
        from ..experiment.wandb_logging import offline_unless_logged_in

        offline_unless_logged_in()
    return LoggerSet(chosen, str(Path(db).parent), project)


def _print_plan(the_plan, reg) -> None:
    from rich.table import Table

    out = console()
    table = Table(title=f"{len(the_plan.runs)} planned runs (matrix {the_plan.matrix_id})",
                  title_justify="left")
    for col in ("run_id", "model", "task", "kind", "train size", "seed", "lr", "changed params",
                "trial"):
        table.add_column(col)
    for r in the_plan.runs:
        changed = {
            **{k: v for k, v in r.task_params.items() if v != reg.task(r.task).params[k].default},
            **{k: v for k, v in r.model_params.items() if v != reg.model(r.model).defaults[k].default},
        }
        table.add_row(
            r.run_id, r.model, r.task, r.kind, str(r.train_size or "full"), str(r.seed),
            f"{r.training['lr']:g}", ", ".join(f"{k}={v}" for k, v in changed.items()),
            ", ".join(f"{k}={v}" for k, v in r.trial.items() if k not in ("stage", "per")),
        )
    out.print(table)
    if the_plan.tuning:
        from ..experiment.tuning import describe

        for line in describe(the_plan.searches, the_plan.tuning, the_plan.seeds):
            out.print(line, soft_wrap=True)
    seen = set()
    for s in the_plan.skipped:
        if (s.model, s.task) not in seen:
            seen.add((s.model, s.task))
            out.print(f"skipped {s.model} x {s.task}: {s.reason}")
