"""The hooks a seqbench plugin may implement, typed as pytest types its hookspecs.

Each hook receives a ``register`` callback rather than returning objects, so the core keeps
control of naming, validation and collision errors (the pattern of Simon Willison's ``llm``).
A plugin module marks its implementations with :data:`seqbench.hookimpl`.
"""

from __future__ import annotations

from typing import Callable

import pluggy

from .api import ExecutorFactory, LoggerFactory, ModelPlugin, TaskPlugin

hookspec = pluggy.HookspecMarker("seqbench")
hookimpl = pluggy.HookimplMarker("seqbench")

RegisterModel = Callable[[ModelPlugin], None]
RegisterTask = Callable[[TaskPlugin], None]
RegisterExecutor = Callable[[str, ExecutorFactory, str], None]  # (name, factory, description)
RegisterLogger = Callable[[str, LoggerFactory, str], None]  # (name, factory, description)


@hookspec
def register_models(register: RegisterModel) -> None:
    """Register model families.

    :param register: call ``register(ModelPlugin(...))`` once per model; its ``build`` returns a
        :class:`~seqbench.api.SequenceModel` (or names one lazily, ``"package.module:attr"``).
    """


@hookspec
def register_tasks(register: RegisterTask) -> None:
    """Register tasks.

    :param register: call ``register(TaskPlugin(...))`` once per task.
    """


@hookspec
def register_executors(register: RegisterExecutor) -> None:
    """Register executors.

    :param register: call ``register(name, factory, description)`` once per executor.
        ``factory(workers, logger_factory=None, **options)`` returns an
        :class:`~seqbench.api.Executor`; ``options`` are the ``bench run`` executor options the
        user gave (``gpus_per_run``, ``cpus_per_run``, ``ray_address``, ``slurm_partition``,
        ``slurm_time``, ``runs_per_task``, ``slurm_folder``). Declare those the executor takes
        as keyword parameters: ``bench run`` refuses the others in one line.
    """


@hookspec
def register_loggers(register: RegisterLogger) -> None:
    """Register experiment trackers (``bench run --logger NAME``).

    :param register: call ``register(name, factory, description)`` once per logger.
        ``factory(run)`` returns a Lightning logger for one run, in the worker that trains it;
        ``run`` is a :class:`seqbench.experiment.loggers.LoggerRun`. An error there is one
        warning and the run trains without the logger.
    """
