"""``bench decide``: which model for *my* data, answered within a wall-clock budget."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..api import PluginError
from .common import fail
from .preflight import check_plan_fits, make_executor

if TYPE_CHECKING:
    from ..decision.request import Request

DECIDE_DB = "results/decide.sqlite"


@click.command()
@click.option("--task", help="A registered task (see `bench plugins`).")
@click.option("--data", "data_path", type=click.Path(),
              help="Your data file or folder: picks the task from its format and columns.")
@click.option("--models", default="lstm,transformer", show_default=True,
              help="Two or more comma-separated model names.")
@click.option("--budget", default="20m", show_default=True,
              help="Wall-clock budget: 20m, 1h, 1h30m, 90s.")
@click.option("--margin", type=float,
              help="Differences smaller than this do not matter: 'equivalent' (default: one "
                   "point of the metric, 0.01 for accuracy, 1.0 for BLEU).")
@click.option("--task-param", "-t", multiple=True, metavar="[TASK.]NAME=VALUE",
              help="A task parameter, e.g. -t text_column=question (repeatable).")
@click.option("--model-param", "-m", multiple=True, metavar="[MODEL.]NAME=VALUE",
              help="A model hyperparameter the tuning must not change (repeatable).")
@click.option("--train-size", type=click.IntRange(min=1),
              help="Train on a subset of this many examples (default: all of them).")
@click.option("--param-budget", metavar="N|auto",
              help="Fit every model to about this many parameters (default: the largest "
                   "model's default size; 0: each model at its own default size; auto: the "
                   "largest size whose runs leave the budget room for tuning and 3 paired "
                   "seeds, measured on this machine before tuning).")
@click.option("--max-steps", type=click.IntRange(1, 10**7), default=3000, show_default=True,
              help="Step cap per run (early stopping usually ends runs sooner).")
@click.option("--val-every", type=click.IntRange(1, 10**6), default=50, show_default=True)
@click.option("--patience", type=click.IntRange(0, 10**4), default=5, show_default=True,
              help="Early stopping: validations without improvement.")
@click.option("--batch-size", type=click.IntRange(1, 1 << 16), default=32, show_default=True)
@click.option("--trials", type=click.IntRange(2, 64), default=8, show_default=True,
              help="Tuning trials planned per model (fewer if the tuning share runs out; "
                   "always the same number for every model).")
@click.option("--tune-share", type=click.FloatRange(0.05, 0.9), default=0.4, show_default=True,
              help="Share of the budget for tuning.")
@click.option("--max-seeds", type=click.IntRange(4, 100), default=20, show_default=True,
              help="The planned maximum of evaluation seeds per model.")
@click.option("--alpha", type=click.FloatRange(0.001, 0.2), default=0.05, show_default=True,
              help="Error rate of the verdict, valid at any stopping time.")
@click.option("--outlook", is_flag=True,
              help="Also train the same seeds on 1/4 and 1/2 of the data: does the gap grow?")
@click.option("--db", default=DECIDE_DB, show_default=True, type=click.Path(dir_okay=False),
              help="Where every run is kept: the same command again continues from it.")
@click.option("--executor", default="local", show_default=True)
@click.option("--workers", type=click.IntRange(0, 1024), default=0,
              help="Worker processes (0 = one per core).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Write the HTML report here (default: beside the database).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plan/--no-plan", "budget_plan", default=True, show_default=True,
              help="Time short runs of each model first and say whether the budget holds the "
                   "tuning and 3 paired seeds (the timing comes out of the budget).")
def decide(task, data_path, models, budget, margin, task_param, model_param, train_size,
           param_budget, max_steps, val_every, patience, batch_size, trials, tune_share,
           max_seeds, alpha, outlook, db, executor, workers, report_path, as_json,
           budget_plan):
    """Decide which model to use for your data, spending at most --budget.

    Sanity check against the trivial baseline, an equal tuning budget per model, then rounds of
    one paired seed per model until a sequential test (valid however often it looks) says one
    is better or they are equivalent within --margin. The same command again continues.
    """
    from ..decision.request import Request
    from .common import check_out, console, load_registry, previous_report

    if report_path:  # never the database, never someone else's file: refused before any run
        check_out(report_path, db, False, previous_report, "report", option="--report",
                  can_force=False)
    reg = load_registry()
    asked = _asked(reg, task=task, data_path=data_path, models=models, budget=budget,
                   margin=margin, task_param=task_param, model_param=model_param,
                   param_budget=param_budget, db=db, budget_plan=budget_plan)
    request = Request(task=asked.task, models=asked.models, budget_s=asked.budget_s,
                      task_params=asked.task_params, model_params=asked.model_params,
                      training={"max_steps": max_steps, "val_every": val_every,
                                "patience": patience, "batch_size": batch_size},
                      train_size=train_size, margin=margin, alpha=alpha, max_seeds=max_seeds,
                      trials=trials, tune_share=tune_share, outlook=outlook)
    the_plan, sized = _sized_plan(request, reg, asked.param_budget)
    store = _open_store(db, request)
    executor_obj = _executor(reg, executor, workers)
    began = time.monotonic()
    chosen = _planned_budget(request, the_plan, sized, asked.auto_budget, budget_plan, db,
                             executor_obj, console(stderr=as_json).print)
    spent = time.monotonic() - began
    if chosen != sized:
        _fit(request, chosen, reg, store)
    out = console(stderr=as_json)  # with --json, stdout carries the JSON object alone
    if asked.why:
        out.print(f"data: {asked.why}")
    out.print(f"deciding between {', '.join(asked.models)} on {asked.task} within {budget} "
              f"(runs kept in {db}; the same command again continues)")
    result, curves = _procedure(request, reg, store, executor_obj, out, spent)
    _print_result(result, curves, db, report_path, as_json, out)
    if result.interrupted:
        sys.exit(130)


@dataclass(frozen=True)
class Asked:
    """What the command line asks for, checked: the task, the models and their settings."""

    task: str
    models: list[str]
    budget_s: float
    task_params: dict
    model_params: dict
    auto_budget: bool  # --param-budget auto: the budget plan chooses it
    param_budget: int | None  # None: the largest model's default size
    why: str | None  # with --data: why this task reads it


def _asked(reg, *, task, data_path, models, budget, margin, task_param, model_param,
           param_budget, db, budget_plan) -> Asked:
    """The request's parts, checked in the order the user reads the flags; exit 2 on the first
    that is wrong."""
    from ..decision.request import parse_budget
    from ..experiment.matrixfile import parse_assignments

    names = [m.strip() for m in models.split(",") if m.strip()]
    try:
        budget_s = parse_budget(budget)
        if len(set(names)) < 2 or len(set(names)) != len(names):
            raise PluginError(f"--models {models!r}: give two or more different models")
        for m in names:
            reg.model(m)
        if margin is not None and not (math.isfinite(margin) and margin >= 0):
            raise PluginError(f"--margin {margin}: give a finite number >= 0")
        auto_budget = param_budget == "auto"
        if auto_budget and not budget_plan and not Path(db).is_file():  # before it is created
            raise PluginError("--param-budget auto needs the budget plan; drop --no-plan")
        size = None if param_budget is None or auto_budget else _count(param_budget)
        task, task_params, why = _task(reg, task, data_path,
                                       parse_assignments(task_param, "--task-param"))
        model_params = parse_assignments(model_param, "--model-param")
        plugin = reg.task(task)
        for m in names:
            if not any(k in plugin.kinds for k in reg.model(m).kinds):
                raise PluginError(f"model {m!r} supports {', '.join(reg.model(m).kinds)}; task "
                                  f"{task!r} is {', '.join(plugin.kinds)}")
    except PluginError as exc:
        fail(str(exc))
    return Asked(task, names, budget_s, task_params, model_params, auto_budget, size, why)


def _task(reg, task: str | None, data_path: str | None,
          given: dict[str, dict]) -> tuple[str, dict, str | None]:
    """The task (given, or read off --data), its parameters and, with --data, why that task."""
    from ..decision.request import task_for_data

    shared = given.pop("*", {})
    if data_path and task:
        raise PluginError("give --task or --data, not both (use -t data=PATH with --task)")
    if not data_path and not task:
        raise PluginError("give --task NAME or --data FILE (see `bench plugins` for tasks)")
    why = None
    if data_path:
        task, why = task_for_data(data_path, {k: str(v) for k, v in shared.items()}, reg.tasks)
        shared["data"] = str(Path(data_path).resolve())
    reg.task(task)
    unknown_scope = [k for k in given if k != task]
    if unknown_scope:
        raise PluginError(f"--task-param for {unknown_scope[0]!r}, but the task is {task!r}")
    return task, {**shared, **given.get(task, {})}, why


def _sized_plan(request: Request, reg, param_budget: int | None):
    """The plan, and the parameter budget every model is fitted to (0: none), checked to fit."""
    from ..experiment.plan import plan as make_plan

    try:
        the_plan = make_plan(request.matrix(), reg)
    except PluginError as exc:
        fail(str(exc))
    shapes = check_plan_fits(the_plan, reg)
    if param_budget is None:
        param_budget = _default_budget(the_plan, reg, shapes)
    if param_budget:
        _fit(request, param_budget, reg)
    return the_plan, param_budget


def _open_store(db: str, request: Request):
    """The database; one that cannot be used, or holds another design, is refused before any
    worker starts."""
    from ..decision import design as frozen_design
    from ..store import Store, StoreError

    try:
        if Path(db).is_file():
            with Store(db, readonly=True) as existing:
                existing.check()
                frozen_design.check(existing, request)  # a changed design: refused, untouched
        return Store(db)
    except (StoreError, PluginError) as exc:
        fail(str(exc))


def _executor(reg, name: str, workers: int):
    try:
        executor_plugin = reg.executor(name)
    except PluginError as exc:
        fail(str(exc))
    return make_executor(executor_plugin, workers, None, {})


def _planned_budget(request: Request, the_plan, param_budget: int, auto: bool, budget_plan: bool,
                    db: str, executor_obj, say) -> int:
    """The parameter budget to run at: an earlier call's automatic choice, else the budget plan's
    (short timed runs of each model, nothing stored), else the one given."""
    from ..decision.planning import plan_budget, previous_param_budget

    earlier = previous_param_budget(db, request) if auto else None
    if auto and not budget_plan and earlier is None:
        fail("--param-budget auto needs the budget plan; drop --no-plan")
    if earlier is not None:
        say(f"--param-budget auto: {earlier:,}, as the earlier call on {db} chose")
        return earlier
    if not budget_plan:
        return param_budget
    try:
        return plan_budget(the_plan.runs, request, param_budget=param_budget, auto=auto,
                           workers=getattr(executor_obj, "workers", 1) or 1, say=say)
    except RuntimeError as exc:
        say(f"[yellow]budget plan: not measured ({exc})")
        return param_budget


def _fit(request: Request, param_budget: int, reg, store=None) -> None:
    """Fit every model to ``param_budget``, the plan checked again (and, given the database,
    against the design it holds)."""
    from ..decision import design as frozen_design
    from ..experiment.plan import plan as make_plan

    request.training["param_budget"] = param_budget
    try:
        check_plan_fits(make_plan(request.matrix(), reg), reg)
        if store is not None:
            frozen_design.check(store, request)
    except PluginError as exc:
        fail(str(exc))


def _procedure(request: Request, reg, store, executor_obj, out, spent: float):
    """The decision's runs, round by round, and their curves."""
    from ..decision.procedure import Procedure
    from ..store import StoreError

    try:
        with store:
            result = Procedure(request, reg, store, executor_obj, out, spent=spent).run()
            curves = store.curves({r.run_id for rs in result.runs.values() for r in rs})
    except (StoreError, PluginError) as exc:
        fail(str(exc))
    return result, curves


def _print_result(result, curves: dict, db: str, report_path: str | None, as_json: bool,
                  out) -> None:
    from ..decision.summary import as_json as to_json
    from ..decision.summary import first_line, print_table, speed
    from .common import console

    spd = speed(result, curves)
    report = None if result.interrupted else _write_report(db, report_path, result.matrix_id, out)
    if as_json:
        click.echo(json.dumps(to_json(result, spd, report), indent=2, allow_nan=False))
        return
    console().print(first_line(result, spd), highlight=False)
    print_table(result, spd, console())
    if report:
        console().print(f"report: {report}")


def _count(text: str) -> int:
    """--param-budget N: a whole number >= 0; PluginError naming what is accepted."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise PluginError(f"--param-budget {text!r}: give a number of parameters (0 or more) "
                          "or 'auto'")
    return value


def _default_budget(the_plan, reg, shapes) -> int:
    """The largest model's size at its declared defaults on this data (not at a tuning trial's
    depth): every model is fitted to it."""
    from ..experiment.budget import planned_size

    sizes, seen = [], set()
    for spec in the_plan.runs:
        key = spec.task + json.dumps(spec.task_params, sort_keys=True)
        if spec.model in seen or shapes.get(key) is None:
            continue
        seen.add(spec.model)
        plugin = reg.model(spec.model)
        defaults = {k: p.default for k, p in plugin.defaults.items()}
        try:
            size = planned_size(plugin, spec.kind, shapes[key], defaults, 0)
        except PluginError:
            continue
        if size:
            sizes.append(size)
    return max(sizes) if sizes else 0


def _write_report(db: str, path: str | None, matrix_id: str, out) -> str | None:
    from ..dashboard.report import write_report

    target = Path(path) if path else Path(db).with_name(f"decide-{matrix_id}.html")
    try:
        write_report(db, target)
    except Exception as exc:  # the decision stands without its report
        out.print(f"[yellow]the HTML report could not be written ({type(exc).__name__}: {exc})")
        return None
    return str(target)
