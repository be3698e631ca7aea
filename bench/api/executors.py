"""What an executor plugin's factory returns: run specs go out, records come back."""

from __future__ import annotations

from typing import Any, Callable, Protocol, Union, runtime_checkable

OnStart = Callable[[dict[str, Any]], Union[bool, None]]
OnRecord = Callable[[dict[str, Any]], None]


@runtime_checkable
class Executor(Protocol):
    """Carries run specifications to where they train and brings their records back. The parent
    process alone writes the database, so an executor needs nothing but :meth:`run`."""

    def run(self, specs: list[dict[str, Any]], on_start: OnStart, on_record: OnRecord) -> None:
        """Train every spec (``RunSpec.to_dict()``). Call ``on_start(spec)`` as each is handed
        out and skip it when that returns False (another launch sharing the database has it);
        call ``on_record(record)`` with each record (``runner.execute``'s, or a failed one)."""
        ...


# ``factory(workers, logger_factory=None, **options) -> Executor``; options (``gpus_per_run``,
# ``ray_address``, ...) are keyword parameters: ``bench run`` refuses those a factory lacks.
ExecutorFactory = Callable[..., Executor]
# ``factory(run: seqbench.experiment.loggers.LoggerRun) -> a Lightning Logger``, in the worker.
LoggerFactory = Callable[[Any], Any]
