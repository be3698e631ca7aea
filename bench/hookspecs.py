"""The hooks a seqbench plugin may implement.

Each hook receives a ``register`` callback rather than returning objects, so the core keeps
control of naming, validation and collision errors (the pattern of Simon Willison's ``llm``).
A plugin module marks its implementations with :data:`seqbench.hookimpl`.
"""

import pluggy

hookspec = pluggy.HookspecMarker("seqbench")
hookimpl = pluggy.HookimplMarker("seqbench")


@hookspec
def register_models(register):
    """Register model families: call ``register(ModelPlugin(...))`` once per model."""


@hookspec
def register_tasks(register):
    """Register tasks: call ``register(TaskPlugin(...))`` once per task."""


@hookspec
def register_executors(register):
    """Register executors: call ``register(name, factory, description)`` once per executor.

    ``factory(workers: int, logger_factory=None, **options)`` returns an object with
    ``run(specs, on_start, on_record)``: ``specs`` are plain dicts, ``on_start(spec)`` is called
    as each run is about to be handed out (skip the run when it returns False: another launch
    sharing the database trains it) and ``on_record(record)`` with each run's record (from
    ``seqbench.experiment.runner.execute``, called wherever the run trains). ``options`` are the
    ``bench run`` executor options the user gave (``gpus_per_run``, ``cpus_per_run``,
    ``ray_address``, ``slurm_partition``, ``slurm_time``, ``runs_per_task``, ``slurm_folder``);
    declare those the executor takes as keyword parameters, and ``bench run`` refuses the others
    with a one-line error. See :mod:`seqbench.experiment.executors`.
    """


@hookspec
def register_loggers(register):
    """Register experiment trackers: call ``register(name, factory, description)`` once per logger.

    ``factory(run)`` returns a Lightning logger for one run (``bench run --logger NAME``);
    ``run`` is a :class:`seqbench.experiment.loggers.LoggerRun`: the run's spec, the folder to
    write under (``save_dir``), the project, a display name, tags and the configuration. It is
    called in the worker process that trains the run; an error there is one warning and the run
    trains without the logger. See :mod:`seqbench.experiment.loggers`.
    """
