"""``--executor ray``: runs on warm Ray actors, on a local Ray instance or on a cluster.

Each actor is one long-lived Ray worker process that imports torch and Lightning and warms up
once (:func:`.runner.warm_up`), then trains one run per call: Ray does not reuse worker
processes between GPU tasks, so plain tasks would pay those imports on every run. An actor
declares ``cpus_per_run`` CPUs and ``gpus_per_run`` of a GPU (0.125: eight runs share a GPU;
Ray picks the GPU and sets the actor's ``CUDA_VISIBLE_DEVICES``).

Runs travel as plain specs and come back as plain records; only the driver (the ``bench run``
process) writes the database. Workers resolve plugins from their own installed entry points, so
every node needs the same packages installed; a run whose model or task is missing on its node
fails at once with a message naming the node. An actor that dies (its node lost, killed, out of
memory) costs only its run, which is retried on a fresh actor up to ``max_retries`` times and
then recorded as failed with the cause.

Importing this module does not import ray: the executor is listed without the extra installed
and says what to install when chosen. It registers through its own entry point (pyproject.toml).
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import socket
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from ..api import OnRecord, OnStart, PluginError
from ..hookspecs import RegisterExecutor, hookimpl

MAX_START_FAILURES = 3  # actors in a row dead in their warm-up: actors cannot start here


def require_extra(module: str, extra: str) -> None:
    """A missing optional dependency is a one-line error naming the pip command."""
    if importlib.util.find_spec(module) is None:
        raise PluginError(
            f"--executor {extra} needs the {module} package: pip install 'seqbench[{extra}]'"
        )


def check_positive(name: str, value, whole: bool = False) -> None:
    if value is not None and (value <= 0 or (whole and value != int(value))):
        kind = "a whole number" if whole else "a number"
        raise PluginError(f"--{name.replace('_', '-')} {value:g}: give {kind} above 0")


class _Worker:
    """One warm Ray actor: imports and warm-up are paid once, then one run per call."""

    def __init__(self, threads: int, logger_factory):
        import torch

        torch.set_num_threads(threads)
        from .runner import warm_up

        warm_up()
        self.logger_factory = logger_factory

    def node(self) -> str:
        """Answers once the warm-up is over."""
        return socket.gethostname()

    def run(self, spec: dict) -> dict:
        from ..registry import registry
        from .runner import execute, failed_record

        reg = registry()
        missing = [
            f"{what} {name!r}"
            for what, name, known in (("model", spec["model"], reg.models),
                                      ("task", spec["task"], reg.tasks))
            if name not in known
        ]
        if missing:
            broken = "; ".join(f"{b.plugin} ({b.source}): {b.error}" for b in reg.broken)
            return failed_record(
                spec,
                f"{' and '.join(missing)} not installed on Ray node {socket.gethostname()} "
                "(install the same plugin packages on every node of the cluster)"
                + (f"; plugins that failed to load there: {broken}" if broken else ""),
            )
        return execute(spec, self.logger_factory)


def _reachable(address: str) -> None:
    """Ray retries an address nobody answers at for minutes: fail in seconds instead."""
    host, sep, port = address.rpartition(":")
    if address == "auto" or "://" in address or not sep or not port.isdigit():
        return  # "auto", ray://...: Ray finds or refuses them quickly itself
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise PluginError(
            f"cannot reach the Ray cluster at {address} ({reason}); is `ray start --head` "
            "running there, and is that its GCS port?"
        ) from None


def _cause(exc: BaseException) -> str:
    """Ray's errors run to many lines; keep the one that says why the actor died."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    because = [line for line in lines if "because" in line or "died" in line.lower()]
    text = (because[-1] if because else (lines[0] if lines else "")) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


class RayExecutor:
    """Warm actors on a Ray cluster (``ray_address``: ``auto`` or ``HOST:PORT``) or, without an
    address, on a fresh local Ray instance that lives as long as this process."""

    def __init__(self, workers: int = 0, logger_factory=None, ray_address: str | None = None,
                 cpus_per_run: float | None = None, gpus_per_run: float | None = None,
                 max_retries: int = 2):
        require_extra("ray", "ray")
        check_positive("cpus_per_run", cpus_per_run)
        check_positive("gpus_per_run", gpus_per_run)
        self.workers = workers
        self.logger_factory = logger_factory
        self.address = ray_address
        self.cpus = cpus_per_run or 1.0
        self.gpus = gpus_per_run or 0.0
        self.max_retries = max_retries
        self.actors: list = []  # live actors, kept between run() calls (tuning stages)
        self.warm: set = set()  # actors whose warm-up finished: they start fine
        self.started_ray = False  # whether this executor connected (and so disconnects)
        self._connect()

    # ---- the cluster

    def _connect(self) -> None:
        import ray

        self.ray = ray
        if not ray.is_initialized():
            quiet = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                         configure_logging=True)
            if self.address:
                _reachable(self.address)
            try:
                if self.address:
                    ray.init(address=self.address, **quiet)
                else:
                    # "local" starts a new instance even when another one runs on this machine.
                    ray.init(address="local", num_cpus=os.cpu_count() or 1, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
                raise PluginError(f"cannot start or join {where}: {_cause(exc)}") from None
            self.started_ray = True
        atexit.register(self.close)
        try:
            self._check_resources(ray)
        except PluginError:
            self.close()  # a local instance started for nothing stops now
            raise

    def _check_resources(self, ray) -> None:
        """Actors asking for more than any node has would wait forever: say so now instead."""
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        fits = [r for r in nodes if r.get("CPU", 0) >= self.cpus and r.get("GPU", 0) >= self.gpus]
        if not fits:
            biggest = max(nodes, key=lambda r: (r.get("GPU", 0), r.get("CPU", 0)), default={})
            raise PluginError(
                f"no node of the Ray cluster has {self.cpus:g} CPUs"
                + (f" and {self.gpus:g} GPU" if self.gpus else "")
                + f" for one run (the largest has {biggest.get('CPU', 0):g} CPUs and "
                f"{biggest.get('GPU', 0):g} GPUs); lower --cpus-per-run / --gpus-per-run"
            )

    def _capacity(self) -> int:
        """How many runs the cluster holds at once, at this executor's size per run."""
        total = self.ray.cluster_resources()
        slots = int(total.get("CPU", 0) / self.cpus + 1e-9)
        if self.gpus:
            slots = min(slots, int(total.get("GPU", 0) / self.gpus + 1e-9))
        return max(1, slots)

    def _new_actor(self, starting: dict) -> None:
        """Start an actor; it takes runs once its warm-up is over (its ``node()`` answered), so
        a run never waits on an actor the cluster has no room for."""
        cls = self.ray.remote(
            num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0, max_task_retries=0
        )(_Worker)
        actor = cls.remote(max(1, round(self.cpus)), self.logger_factory)
        self.actors.append(actor)
        starting[actor.node.remote()] = actor

    def _replace(self, queue, want: int, starting: dict) -> None:
        """A fresh actor for a dead one, only where the cluster has room: a lost node took its
        share with it, and an actor waiting for room would wait forever."""
        if queue and len(self.actors) < min(want, self._capacity()):
            self._new_actor(starting)

    def _drop(self, actor) -> None:
        if actor in self.actors:
            self.actors.remove(actor)
        self.warm.discard(actor)
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:  # already gone with its node
            pass

    def close(self) -> None:
        """Stop this executor's actors (they hold their CPUs and GPUs while they live), and
        disconnect if this executor connected (a local instance it started stops with it)."""
        if not self.ray.is_initialized():  # the driver left, its actors with it; ray.kill
            self.actors, self.warm = [], set()  # would start a fresh local Ray to find them
        for actor in list(self.actors):
            self._drop(actor)
        if self.started_ray and self.ray.is_initialized():
            self.ray.shutdown()
        self.started_ray = False

    # ---- the runs

    def run(self, specs: list[dict[str, Any]], on_start: OnStart, on_record: OnRecord) -> None:
        if not specs:
            return
        f = _Flight(deque(specs), want=min(self.workers or self._capacity(), len(specs)))
        # Actors from an earlier call (a tuning stage before this one) are kept warm.
        f.idle = [a for a in self.actors if a in self.warm]
        f.starting = {a.node.remote(): a for a in self.actors if a not in self.warm}
        while len(self.actors) < f.want:
            self._new_actor(f.starting)
        try:
            while f.queue or f.pending:
                self._hand_out(f, on_start)
                if f.queue and not (f.idle or f.pending or f.starting):
                    if f.start_failures >= MAX_START_FAILURES and not self.warm:
                        self._fail_the_rest(f, on_start, on_record)
                        break
                    self._new_actor(f.starting)
                # A timeout keeps Ctrl-C responsive while every actor trains.
                done, _ = self.ray.wait([*f.pending, *f.starting], num_returns=1, timeout=1.0)
                for ref in done:
                    if ref in f.starting:
                        self._started(f, ref)
                    else:
                        self._finished(f, ref, on_record)
        except BaseException:
            # Ctrl-C or a failing callback: runs in flight are the caller's to forget; their
            # actors stop now instead of training on for nobody.
            for actor, _ in f.pending.values():
                self._drop(actor)
            raise

    def _hand_out(self, f: _Flight, on_start: OnStart) -> None:
        while f.idle and f.queue:
            actor, spec = f.idle.pop(), f.queue.popleft()
            if not f.attempts[_run_id(spec)] and on_start(spec) is False:
                f.idle.append(actor)  # another launch trains it
                continue
            f.pending[actor.run.remote(spec)] = (actor, spec)

    def _fail_the_rest(self, f: _Flight, on_start: OnStart, on_record: OnRecord) -> None:
        """Actors cannot even start (seqbench missing on the nodes, a broken install): fail
        what is left rather than retry forever."""
        from .runner import failed_record

        while f.queue:
            spec = f.queue.popleft()
            if f.attempts[_run_id(spec)] or on_start(spec) is not False:
                on_record(failed_record(spec, f"no Ray actor could start: {f.cause}"))

    def _started(self, f: _Flight, ref: Any) -> None:
        from ray.exceptions import RayError

        actor = f.starting.pop(ref)
        try:
            self.ray.get(ref)
        except RayError as exc:
            self._drop(actor)
            f.start_failures += 1
            f.cause = _cause(exc)
            if f.start_failures < MAX_START_FAILURES or self.warm:
                self._replace(f.queue, f.want, f.starting)
        else:
            self.warm.add(actor)
            f.idle.append(actor)

    def _finished(self, f: _Flight, ref: Any, on_record: OnRecord) -> None:
        from ray.exceptions import RayError

        from .runner import failed_record

        actor, spec = f.pending.pop(ref)
        try:
            record = self.ray.get(ref)
        except RayError as exc:
            # The actor died under its run (node lost, killed, out of memory): the run is
            # retried on a fresh actor, a bounded number of times.
            self._drop(actor)
            f.cause = _cause(exc)
            run_id = _run_id(spec)
            f.attempts[run_id] += 1
            if f.attempts[run_id] <= self.max_retries:
                f.queue.appendleft(spec)
            else:
                on_record(failed_record(
                    spec, f"its Ray actor died {f.attempts[run_id]} times; last: {f.cause}"))
            self._replace(f.queue, f.want, f.starting)
            return
        f.idle.append(actor)
        on_record(record)


@dataclass
class _Flight:
    """One :meth:`RayExecutor.run` call: runs waiting, actors idle or starting, runs in flight."""

    queue: deque[dict[str, Any]]
    want: int  # actors to keep
    idle: list[Any] = field(default_factory=list)
    starting: dict[Any, Any] = field(default_factory=dict)  # ref of node() -> actor
    pending: dict[Any, tuple[Any, dict[str, Any]]] = field(default_factory=dict)  # ref of run()
    attempts: Counter[str] = field(default_factory=Counter)  # run_id -> actors died under it
    start_failures: int = 0
    cause: str = ""  # why the last actor died


def _run_id(spec: dict[str, Any]) -> str:
    from .plan import RunSpec

    return RunSpec.from_dict(spec).run_id


@hookimpl
def register_executors(register: RegisterExecutor) -> None:
    register("ray", RayExecutor,
             "warm Ray actors on a local Ray instance or a cluster (pip install 'seqbench[ray]')")
