"""The built-in executors: every run in this process, or a pool of warm local workers.

Each is a :class:`seqbench.api.Executor` (``run(specs, on_start, on_record)``), registered
through the same ``register_executors`` hook a third party uses.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
from multiprocessing.connection import wait
from typing import Any

from ..api import LoggerFactory, OnRecord, OnStart
from ..hookspecs import RegisterExecutor, hookimpl
from ..util import one_line


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's share),
    not every core of the machine."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def run_threads(parallel_runs: int = 1) -> int:
    """Torch threads for each of ``parallel_runs`` runs on this machine: their share of the
    usable cores, less the cores other work keeps busy right now (the 1-minute load average),
    at least 1. Decided once per launch, before its own runs add to the load.

    Threads beyond the cores a run really gets do not just idle: OpenMP threads spin waiting
    for each other, and a small model slows many times over.
    """
    cores = usable_cores()
    share = max(1, cores // max(1, parallel_runs))
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return share
    return max(1, min(share, int(cores - busy + 0.5)))


def set_torch_threads(threads: int) -> None:
    """Torch's intra-op threads for this process. Torch's own default counts every core of the
    machine; more threads than cores a run really has make each one spin waiting for the others."""
    import torch

    torch.set_num_threads(max(1, threads))


class SequentialExecutor:
    """Every run in this process, one after another (simplest; easiest to debug)."""

    def __init__(self, workers: int = 1, logger_factory: LoggerFactory | None = None):
        self.logger_factory = logger_factory

    def run(self, specs: list[dict[str, Any]], on_start: OnStart, on_record: OnRecord) -> None:
        from .runner import execute

        set_torch_threads(run_threads(1))  # one run at a time: every core not busy elsewhere
        for spec in specs:
            if on_start(spec) is False:
                continue  # another launch trains it
            on_record(execute(spec, self.logger_factory))


def _worker(conn, threads: int, logger_factory, gpu: str | None = None,
            scratch: str | None = None, environ: dict[str, str] | None = None) -> None:
    """A long-lived worker: imports and the first optimizer step's costs are paid once.

    It ends with its launcher: when the launcher is gone (``kill -9``, a closed terminal) the
    worker exits at once, quietly, and removes its temporary files, instead of training on for
    nobody and then printing a BrokenPipeError when it reports.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if environ is not None:  # forked from the fork server: the launcher's environment, as spawned
        os.environ.clear()
        os.environ.update(environ)
    # Every temporary file of this worker's runs (Lightning's checkpoints) lives in one folder
    # that goes with the worker, however it ends: the worker removes it when it exits (its
    # launcher gone included), the launcher when the worker is killed.
    scratch = scratch or tempfile.mkdtemp(prefix="seqbench-worker-")
    tempfile.tempdir = scratch
    threading.Thread(target=_exit_with_parent, args=(scratch,), name="seqbench-orphan-watch",
                     daemon=True).start()
    try:
        if gpu is not None:  # before torch initialises CUDA: this worker sees only its GPU
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
        set_torch_threads(threads)
        from .runner import execute, warm_up

        warm_up()
        if not _report(conn, ("ready", None)):
            return
        while True:
            try:
                spec = conn.recv()
            except (EOFError, OSError):  # the launcher closed the pipe or is gone
                return
            if spec is None or not _report(conn, ("record", execute(spec, logger_factory))):
                return
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _report(conn, message) -> bool:
    """Send to the launcher; False (nobody to report to) when it has gone."""
    try:
        conn.send(message)
        return True
    except OSError:  # BrokenPipeError, ConnectionResetError
        return False


def _exit_with_parent(scratch: str) -> None:
    """Exit this process, silently, as soon as the process that started it is gone."""
    parent = mp.parent_process()
    if parent is None:  # pragma: no cover - always set in a spawned worker
        return
    wait([parent.sentinel])  # readable once the parent has exited, however it died
    shutil.rmtree(scratch, ignore_errors=True)
    os._exit(0)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed; out of memory?)" if -code == signal.SIGKILL else ""
        return f"worker process died from {name}{hint}"
    return f"worker process exited with code {code}"


def _context(pinned_to_gpus: bool):
    """On Linux, workers fork from one server process that imported torch and Lightning once,
    so each starts in a fraction of a second instead of paying those imports. Elsewhere (macOS:
    its system frameworks are unsafe to fork after torch's imports) and for a worker pinned to a
    GPU (to start CUDA from its own CUDA_VISIBLE_DEVICES), each worker is spawned fresh. Never
    plain fork: the launcher's own threads would deadlock a forked torch."""
    if pinned_to_gpus or not sys.platform.startswith("linux"):
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([f"{__package__}.worker_preload"])
    return ctx


class LocalExecutor:
    """A pool of warm worker processes on this machine, one run per worker at a time.

    Torch threads are split among workers so they don't fight over cores. A worker is started
    only for a run this launch has claimed, and is handed it at once (it starts training as soon
    as it is warm). A worker that dies (killed, out of memory) fails only its own run; a fresh
    worker takes its place. ``gpus_per_run`` packs runs onto GPUs: 0.25 puts four workers on each
    visible GPU (the default number of workers then fills every GPU), each worker seeing only its
    own GPU.
    """

    def __init__(self, workers: int = 0, logger_factory: LoggerFactory | None = None,
                 gpus_per_run: float | None = None):
        cores = usable_cores()
        self.gpus = _visible_gpus(gpus_per_run) if gpus_per_run else []
        per_gpu = int(1 / gpus_per_run + 1e-9) if gpus_per_run else 0
        self.workers = workers or (len(self.gpus) * per_gpu) or cores
        # Each worker holds torch and a model in memory: more than a few per core only adds
        # memory and contention (a typo such as --workers 1000 would exhaust the machine).
        limit = max(4 * cores, len(self.gpus) * per_gpu)
        if self.workers > limit:
            from ..api import PluginError

            raise PluginError(
                f"--workers {self.workers}: at most {limit} local workers on this machine "
                f"({cores} usable cores, 4 per core)"
            )
        self.threads = run_threads(self.workers)
        _check_sendable(logger_factory)
        self.logger_factory = logger_factory
        self.ctx = _context(bool(self.gpus))
        self.procs: dict = {}  # conn -> process
        self.gpu_of: dict = {}  # conn -> the GPU its worker sees (None: no packing)
        self.scratch_of: dict = {}  # conn -> its worker's temporary folder
        self.ready: set = set()  # workers that finished starting
        self.orphans: set = set()  # workers whose fork server died: their sentinel tells nothing
        self.start_failures = 0  # workers that died before they were ready, in a row

    def _start(self):
        """A new worker (on the GPU with the fewest workers, when packing)."""
        gpu = min(self.gpus, key=list(self.gpu_of.values()).count) if self.gpus else None
        parent, child = self.ctx.Pipe()
        scratch = tempfile.mkdtemp(prefix="seqbench-worker-")
        forked = self.ctx.get_start_method() == "forkserver"
        proc = self.ctx.Process(
            target=_worker, daemon=True,
            args=(child, self.threads, self.logger_factory, gpu, scratch,
                  dict(os.environ) if forked else None),
        )
        try:
            proc.start()
        except BaseException as error:  # Ctrl-C included: a worker not started leaves nothing
            parent.close()
            child.close()
            shutil.rmtree(scratch, ignore_errors=True)
            if not (forked and isinstance(error, (EOFError, OSError))):
                raise
            # The fork server died importing torch or Lightning: spawned workers say why.
            self.ctx = mp.get_context("spawn")
            return self._start()
        child.close()
        self.scratch_of[parent] = scratch
        self.procs[parent] = proc
        self.gpu_of[parent] = gpu
        return parent

    def run(self, specs: list[dict[str, Any]], on_start: OnStart, on_record: OnRecord) -> None:
        queue = list(reversed(specs))  # not yet offered to on_start
        claimed: list = []  # claimed, but never reached a live worker: for the next worker
        busy: dict = {}  # conn -> spec in flight
        idle: list = []
        self.start_failures = 0
        try:
            while queue or claimed or busy:
                while (claimed or queue) and (idle or len(self.procs) < self.workers):
                    if claimed:
                        spec = claimed.pop()
                    else:
                        spec = queue.pop()
                        if on_start(spec) is False:  # another launch trains it
                            continue
                    conn = idle.pop() if idle else self._start()
                    busy[conn] = spec
                    try:
                        conn.send(spec)  # a starting worker reads it once warm
                    except OSError:  # died between runs; its sentinel has not fired yet
                        claimed.append(busy.pop(conn))  # the run never reached it: not its failure
                        self._forget_dead(conn, busy, on_record, idle, claimed, queue, on_start)
                if not busy:
                    break  # the last runs were skipped (another launch has them)
                sentinels = {p.sentinel: c for c, p in self.procs.items()
                             if c not in self.orphans}
                for ready in wait([*self.procs, *sentinels]):
                    conn = sentinels.get(ready, ready)
                    if conn not in self.procs:
                        continue
                    if ready is not conn and not conn.poll():
                        # A dead worker's pipe reads as closed before its sentinel fires; this
                        # one's fired alone: its fork server died (killed, out of memory), not
                        # it. Its pipe still says when it finishes or dies.
                        self.orphans.add(conn)
                        continue
                    try:
                        kind, payload = conn.recv()
                    except (EOFError, OSError):
                        self._forget_dead(conn, busy, on_record, idle, claimed, queue, on_start)
                        continue
                    if kind == "ready":
                        self.ready.add(conn)
                        self.start_failures = 0
                    if kind == "record":
                        busy.pop(conn, None)
                        on_record(payload)
                    if conn not in busy:
                        idle.append(conn)
        except BaseException:
            self.shutdown(at_once=True)  # Ctrl-C: runs in flight train for nobody
            raise
        self.shutdown()

    def _forget_dead(self, conn, busy, on_record, idle, claimed: list, queue: list,
                      on_start: OnStart) -> None:
        """Forget a dead worker (the run loop starts another for the work left). Its run fails,
        unless it died before it was ready: the run then waits for the next worker."""
        from .runner import failed_record

        proc = self.procs.pop(conn)
        self.gpu_of.pop(conn, None)
        self.orphans.discard(conn)
        proc.join(timeout=5)
        if proc.is_alive():  # its pipe broke but it lingers: never leave a worker untracked
            proc.kill()
            proc.join()
        shutil.rmtree(self.scratch_of.pop(conn, ""), ignore_errors=True)  # killed: left it
        if conn in idle:
            idle.remove(conn)
        reason = _exit_reason(proc.exitcode)
        spec = busy.pop(conn, None)
        if conn in self.ready:
            self.ready.discard(conn)
            if spec is not None:
                on_record(failed_record(spec, reason))
            return
        self.start_failures += 1
        if spec is not None:
            claimed.append(spec)
        if self.start_failures >= 3 and not self.ready:
            # Workers cannot even start (broken install, no GPU driver, ...): respawning forever
            # would hang the matrix, so every run left fails with the reason.
            while claimed:
                on_record(failed_record(claimed.pop(), f"no worker could start: {reason}"))
            while queue:
                spec = queue.pop()
                if on_start(spec) is not False:
                    on_record(failed_record(spec, f"no worker could start: {reason}"))

    def shutdown(self, at_once: bool = False) -> None:
        """Stop every worker: idle ones when told to, those still training (``at_once``) now."""
        for conn in self.procs:
            try:
                conn.send(None)
            except OSError:  # BrokenPipeError included
                pass
        for conn, proc in self.procs.items():
            proc.join(timeout=0 if at_once else 2)
            if proc.is_alive():
                proc.kill()
                proc.join()
            elif at_once and conn in self.orphans:  # is_alive() cannot tell: by its pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
            conn.close()
            shutil.rmtree(self.scratch_of.pop(conn, ""), ignore_errors=True)
        self.procs.clear()
        self.gpu_of.clear()
        self.ready.clear()
        self.orphans.clear()


def _check_sendable(logger_factory: LoggerFactory | None) -> None:
    """Workers receive the logger factory pickled: one that cannot be (a lambda, a local
    function) is an error before any run is claimed, not a failure inside the first start."""
    try:
        pickle.dumps(logger_factory)
    except Exception as error:  # PicklingError, or whatever the object's __reduce__ raises
        from ..api import PluginError

        raise PluginError(
            f"the logger factory {logger_factory!r} cannot be sent to worker processes "
            f"({one_line(error)}): give a function or class defined at a module's top level, "
            "or use the sequential executor"
        ) from None


def _visible_gpus(gpus_per_run: float) -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them for a child."""
    from ..api import PluginError

    if not 0 < gpus_per_run <= 1:
        raise PluginError(
            f"--gpus-per-run {gpus_per_run:g}: a local run uses one GPU at most; give a share "
            "of one GPU, e.g. 0.25 for four runs per GPU"
        )
    import torch

    count = torch.cuda.device_count()
    if not count:
        raise PluginError("--gpus-per-run: no GPU is visible here (torch sees no CUDA device)")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = [v.strip() for v in visible.split(",")] if visible else [str(i) for i in range(count)]
    return names[:count]


@hookimpl
def register_executors(register: RegisterExecutor) -> None:
    # ray and slurm register from their own modules (executor_ray.py, executor_slurm.py).
    register("sequential", SequentialExecutor, "every run in this process, one after another")
    register("local", LocalExecutor, "a pool of warm worker processes, one per core by default")
