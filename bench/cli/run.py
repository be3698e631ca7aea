"""``bench run``: plan a matrix, train what is missing, store it, print the summary."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..api import PluginError
from ..store import DEFAULT_DB
from .common import console, fail, load_registry, warn_broken
from .preflight import check_plan_fits, make_executor

if TYPE_CHECKING:
    from ..experiment.plan import Matrix, Plan


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
@click.option("--tune-last-rung", metavar="steps|full",
              help="Halving: the last rung trains min x eta^k steps (default) or the survivors "
                   "in full (earlier rungs: the first steps of that run).")
@click.option("--tune-rank", metavar="score|loss",
              help="Halving: rank at the earlier rungs by best validation score (default) or "
                   "lowest validation loss.")
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
def run(**flags):
    """Train every compatible model x task pairing over training sizes and seeds.

    Runs already done in the database are skipped, so the same command continues an
    interrupted matrix.
    """
    opts = RunOptions.of(flags)
    reg = load_registry()
    warn_broken(reg)
    try:
        parts = _planned_parts(opts, reg)
        executor_plugin = reg.executor(opts.executor)
    except PluginError as exc:
        fail(str(exc))
    if opts.dry_run:
        _print_parts(parts, reg, opts.db)
        return
    if not any(p.plan.runs for p in parts):
        fail("no model in this matrix supports any of its tasks: " + "; ".join(
            s.reason for p in parts for s in p.plan.skipped[:3]))
    for part in parts:
        check_plan_fits(part.plan, reg)
    logger_factory = _logger_set(reg, opts.logger_names, opts.use_wandb, opts.wandb_project,
                                 opts.db)
    # The executor first: a cluster that cannot be reached is an error before anything is written.
    executor_obj = make_executor(executor_plugin, opts.workers, logger_factory,
                                 opts.executor_options)
    outcomes = _launch_parts(parts, _open_store(opts.db), executor_obj, opts.retry_failed)
    _report(outcomes, opts.db, logger_factory)


@dataclass(frozen=True)
class TrainingFlags:
    """The recipe flags, in [training]'s names; None: not given (the file's or the default)."""

    max_steps: int | None
    batch_size: int | None
    lr: float | None
    val_every: int | None
    patience: int | None
    grad_clip: float | None
    schedule: str | None
    warmup_steps: int | None
    cooldown: float | None
    param_budget: int | None
    probe_gradients: bool | None
    tbptt: float | None
    rtrl: str | None

    def recipe(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class TuningFlags:
    """The --tune-* flags, in [tuning]'s names; None: not given."""

    trials: int | None
    extend: int | None
    lr: str | None  # a comma-separated grid
    seeds: int | None
    prune: str | None
    eta: int | None
    rungs: int | None
    min_steps: int | None
    last_rung: str | None
    rank: str | None

    def table(self) -> dict:
        from ..experiment.matrixfile import parse_list

        out = {k: v for k, v in asdict(self).items() if v is not None and k != "lr"}
        return {**out, "lr": parse_list(self.lr)} if self.lr else out


@dataclass(frozen=True)
class RunOptions:
    """``bench run``'s flags, typed: the matrix they ask for and how it is carried out."""

    models: str | None
    tasks: str | None
    train_sizes: str | None
    seeds: str | None
    matrix_file: str | None
    preset: str | None
    model_param: tuple[str, ...]
    task_param: tuple[str, ...]
    training: TrainingFlags
    tuning: TuningFlags
    db: str
    executor: str
    workers: int
    retry_failed: bool
    logger_names: str | None
    use_wandb: bool
    wandb_project: str
    dry_run: bool
    executor_options: dict  # each goes to the executors that take it

    @classmethod
    def of(cls, flags: dict) -> "RunOptions":
        """From Click's parameters: the --tune-* flags to TuningFlags, the recipe flags to
        TrainingFlags, the rest by name; what is left are the executor options."""
        flags = dict(flags)
        flags["probe_gradients"] = flags["probe_gradients"] or None  # off: not given
        tuning = TuningFlags(**{f.name: flags.pop(f"tune_{f.name}") for f in fields(TuningFlags)})
        training = TrainingFlags(**{f.name: flags.pop(f.name) for f in fields(TrainingFlags)})
        named = {f.name: flags.pop(f.name) for f in fields(cls)
                 if f.name not in ("training", "tuning", "executor_options")}
        return cls(**named, training=training, tuning=tuning, executor_options=flags)


@dataclass(frozen=True)
class Part:
    """One matrix file of a study (or the whole matrix): its name, request and plan."""

    name: str
    matrix: Matrix
    plan: Plan


def _planned_parts(opts: RunOptions, reg) -> list[Part]:
    """A preset or --matrix folder is a study in parts: one matrix per file, run in turn."""
    from ..experiment import matrixfile
    from ..experiment.plan import plan as make_plan

    if opts.matrix_file and opts.preset:
        fail("give --matrix or --preset, not both")
    source = matrixfile.preset_path(opts.preset) if opts.preset else opts.matrix_file
    files = matrixfile.matrix_files(source) if source else []
    read = [(f.stem, matrixfile.read(f)) for f in files] or [("", {})]
    matrices = [
        matrixfile.build_matrix(
            file_data, opts.models, opts.tasks, opts.train_sizes, opts.seeds, opts.model_param,
            opts.task_param, opts.training.recipe(), opts.tuning.table(), list(reg.models),
            list(reg.tasks),
        )
        for _, file_data in read
    ]
    return [Part(name, matrix, make_plan(matrix, reg))
            for (name, _), matrix in zip(read, matrices)]


def _print_parts(parts: list[Part], reg, db: str) -> None:
    for part in parts:
        if len(parts) > 1:
            console().print(f"[bold]part {part.name}[/bold]")
        _print_plan(part.plan, reg)
    if len(parts) > 1:
        console().print(f"{sum(len(p.plan.runs) for p in parts)} planned runs in {len(parts)} parts")
    _print_done(parts, db)


def _print_done(parts: list[Part], db: str) -> None:
    """How many of the planned runs the database already holds done (read without writing)."""
    from ..store import Store, StoreError

    if not Path(db).is_file():
        return
    ids = [r.run_id for p in parts for r in p.plan.runs]
    try:
        with Store(db, readonly=True) as store:
            status = store.status_of(ids)
    except StoreError:
        return  # a database that cannot be read: the launch itself will say why
    done = sum(status.get(i) == "done" for i in ids)
    console().print(f"{done} of {len(ids)} planned runs already done in {db}", markup=False)


def _open_store(db: str):
    """The database, checked read-only first: damaged pages are refused before a byte is written."""
    from ..store import NotResultsDatabase, Store, StoreError

    try:
        if Path(db).is_file():
            try:
                with Store(db, readonly=True) as existing:
                    existing.check()
            except NotResultsDatabase:
                pass  # no tables yet: maybe another launch is creating them; Store(db) decides
        return Store(db)
    except StoreError as exc:
        fail(str(exc))


def _launch_parts(parts: list[Part], store, executor_obj, retry_failed: bool) -> list:
    """Each part in turn (a Ctrl-C stops at the part it interrupted), then the summary."""
    from ..analysis.tables import print_summary
    from ..experiment.launch import launch
    from ..store import StoreError

    out = console()
    outcomes = []
    try:
        with store:
            for part in parts:
                if len(parts) > 1:
                    out.print(f"part {part.name}: {len(part.plan.runs)} planned runs")
                outcomes.append(launch(part.plan, part.matrix, store, executor_obj, out,
                                       retry_failed=retry_failed))
                if outcomes[-1].interrupted:
                    break
            print_summary(store.runs(), out, run_ids=set().union(*(o.planned for o in outcomes)))
    except StoreError as exc:  # the file went bad while the matrix ran (disk full, damaged)
        fail(str(exc))
    return outcomes


def _report(outcomes: list, db: str, logger_factory) -> None:
    """Failures, where the loggers wrote, and the exit status (130 interrupted, 1 failures)."""
    out = console()
    failed = sum(o.failed for o in outcomes)
    if failed:
        out.print(
            f"[red]{failed} runs failed[/red]: see `bench results --db {db} "
            "--status failed --json` for their errors"
        )
    use_wandb = bool(logger_factory and "wandb" in logger_factory.names)
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
    for lbl in the_plan.labels:  # markup off: a label is the user's text
        out.print(f"{lbl.task} is labelled {lbl.label!r} in the tables (not part of any run's "
                  "identity)", markup=False, highlight=False)
    if the_plan.tuning:
        from ..experiment.rounds import describe

        for line in describe(the_plan.searches, the_plan.tuning, the_plan.seeds):
            out.print(line, soft_wrap=True)
    seen = set()
    for s in the_plan.skipped:
        if (s.model, s.task) not in seen:
            seen.add((s.model, s.task))
            out.print(f"skipped {s.model} x {s.task}: {s.reason}")
