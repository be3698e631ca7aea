"""Executors carry run specifications to where they train and bring records back.

An executor is any object with ``run(specs, on_start, on_record)``: ``specs`` are plain dicts
(:meth:`RunSpec.to_dict`), ``on_start(spec)`` is called when a run is handed out and
``on_record(record)`` when its record comes back. The parent process alone writes the database,
so an executor for a cluster engine needs nothing but this interface. Executors are plugins: the
built-ins below are registered through the same ``register_executors`` hook a third party uses.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from multiprocessing.connection import wait
from typing import Callable

from ..hookspecs import hookimpl

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


def _worker(conn, threads: int, logger_factory) -> None:
    """A long-lived worker: imports and the first optimizer step's costs are paid once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    import torch

    torch.set_num_threads(threads)
    from .runner import execute, warm_up

    warm_up()
    conn.send(("ready", None))
    while True:
        try:
            spec = conn.recv()
        except EOFError:
            return
        if spec is None:
            return
        conn.send(("record", execute(spec, logger_factory)))


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed; out of memory?)" if -code == signal.SIGKILL else ""
        return f"worker process died from {name}{hint}"
    return f"worker process exited with code {code}"


class LocalExecutor:
    """A pool of warm worker processes on this machine, one run per worker at a time.

    Torch threads are split among workers so they don't fight over cores. A worker that dies
    (killed, out of memory) fails only its own run; a fresh worker takes its place.
    """

    def __init__(self, workers: int = 0, logger_factory=None):
        cores = os.cpu_count() or 1
        self.workers = workers or cores
        self.threads = max(1, cores // self.workers)
        self.logger_factory = logger_factory
        self.ctx = mp.get_context("spawn")  # fork + torch threads deadlock; spawn is safe
        self.procs: dict = {}  # conn -> process
        self.ready: set = set()  # workers that finished starting
        self.start_failures = 0  # workers that died before they were ready, in a row

    def _start(self):
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(
            target=_worker, args=(child, self.threads, self.logger_factory), daemon=True
        )
        proc.start()
        child.close()
        self.procs[parent] = proc
        return parent

    def run(self, specs: list[dict], on_start: OnStart, on_record: OnRecord) -> None:
        queue = list(reversed(specs))
        busy: dict = {}  # conn -> spec in flight
        idle: list = []
        try:
            for _ in range(min(self.workers, len(specs))):
                self._start()
            while queue or busy:
                while idle and queue:
                    conn = idle.pop()
                    spec = queue.pop()
                    on_start(spec)
                    busy[conn] = spec
                    try:
                        conn.send(spec)
                    except OSError:  # died between runs; its sentinel has not fired yet
                        self._replace_dead(conn, busy, on_record, idle, queue)
                sentinels = {p.sentinel: c for c, p in self.procs.items()}
                for ready in wait([*self.procs, *sentinels]):
                    conn = sentinels.get(ready, ready)
                    if conn not in self.procs:
                        continue
                    try:
                        kind, payload = conn.recv()
                    except (EOFError, OSError):
                        self._replace_dead(conn, busy, on_record, idle, queue)
                        continue
                    if kind == "ready":
                        self.ready.add(conn)
                        self.start_failures = 0
                    if kind == "record":
                        busy.pop(conn, None)
                        on_record(payload)
                    idle.append(conn)
        finally:
            self.shutdown()

    def _replace_dead(self, conn, busy, on_record, idle, queue: list) -> None:
        from .runner import failed_record

        proc = self.procs.pop(conn)
        proc.join(timeout=5)
        if conn in idle:
            idle.remove(conn)
        reason = _exit_reason(proc.exitcode)
        spec = busy.pop(conn, None)
        if spec is not None:
            on_record(failed_record(spec, reason))
        if conn not in self.ready:
            self.start_failures += 1
        self.ready.discard(conn)
        if self.start_failures >= 3 and not self.ready:
            # Workers cannot even start (broken install, no GPU driver, ...): respawning forever
            # would hang the matrix, so every run left fails with the reason.
            while queue:
                on_record(failed_record(queue.pop(), f"no worker could start: {reason}"))
            return
        if queue:
            self._start()

    def shutdown(self) -> None:
        for conn in self.procs:
            try:
                conn.send(None)
            except OSError:  # BrokenPipeError included
                pass
        for conn, proc in self.procs.items():
            proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()
        self.procs.clear()


@hookimpl
def register_executors(register):
    register("sequential", SequentialExecutor, "every run in this process, one after another")
    register("local", LocalExecutor, "a pool of warm worker processes, one per core by default")
