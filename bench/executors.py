"""Executors carry run specifications to where they train and bring records back.

An executor is any object with ``run(specs, on_start, on_record)``: ``specs`` are plain dicts
(:meth:`RunSpec.to_dict`), ``on_start(spec)`` is called when a run is handed out and
``on_record(record)`` when its record comes back. The parent process alone writes the database,
so an executor for a cluster engine needs nothing but this interface. Executors are plugins: the
built-ins below are registered through the same ``register_executors`` hook a third party uses.
"""

from __future__ import annotations

from typing import Callable

from .hookspecs import hookimpl

OnStart = Callable[[dict], None]
OnRecord = Callable[[dict], None]


class SequentialExecutor:
    """Every run in this process, one after another (simplest; easiest to debug)."""

    def __init__(self, workers: int = 1, logger_factory=None):
        self.logger_factory = logger_factory

    def run(self, specs: list[dict], on_start: OnStart, on_record: OnRecord) -> None:
        from .runner import execute

        for spec in specs:
            on_start(spec)
            on_record(execute(spec, self.logger_factory))


@hookimpl
def register_executors(register):
    register("sequential", SequentialExecutor, "every run in this process, one after another")
