"""Plugin discovery: every model, task and executor comes through the ``seqbench`` entry points.

Built-ins are found exactly as a third party's plugins are (seqbench's own distribution declares
them in ``pyproject.toml``). Each entry point is loaded on its own, so one plugin that fails to
import, misspells a hook, raises in its hook, or calls ``sys.exit()`` in either is reported by
name while the others keep working. One thing stops every command instead: a model, task or
executor name registered twice (say a third party's ``lstm`` beside the built-in), since which
of the two a matrix would train could only be guessed.

Environment variables:

``SEQBENCH_STRICT_PLUGINS=1``
    fail fast on the first broken plugin instead of reporting it (tests use this).
``SEQBENCH_LOAD_PLUGINS=lstm,copy``
    load only these entry points (an allow-list; empty string loads none). The core's own
    executors (``seqbench.experiment.executors``) always load.
``SEQBENCH_TRACE_PLUGINS=1``
    print every hook call and its result to stderr.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any, TypeVar, Union

import pluggy

from . import hookspecs
from .api import ExecutorFactory, LoggerFactory, ModelPlugin, PluginError, TaskPlugin
from .util import did_you_mean, one_line

GROUP = "seqbench"
BUILTIN_DIST = "seqbench"


@dataclass(frozen=True)
class ExecutorPlugin:
    """A registered executor: ``factory(workers, logger_factory=None, **options)`` returns an
    :class:`~seqbench.api.Executor`."""

    name: str
    factory: ExecutorFactory
    description: str
    source: str = "unknown"


@dataclass(frozen=True)
class LoggerPlugin:
    """A registered experiment tracker: ``factory(LoggerRun)`` returns a Lightning logger."""

    name: str
    factory: LoggerFactory
    description: str
    source: str = "unknown"


@dataclass
class Broken:
    plugin: str
    source: str
    error: str


@dataclass
class Registry:
    models: dict[str, ModelPlugin] = field(default_factory=dict)
    tasks: dict[str, TaskPlugin] = field(default_factory=dict)
    executors: dict[str, ExecutorPlugin] = field(default_factory=dict)
    loggers: dict[str, LoggerPlugin] = field(default_factory=dict)
    broken: list[Broken] = field(default_factory=list)

    def model(self, name: str) -> ModelPlugin:
        return _named("model", self.models, name)

    def task(self, name: str) -> TaskPlugin:
        return _named("task", self.tasks, name)

    def executor(self, name: str) -> ExecutorPlugin:
        return _named("executor", self.executors, name)

    def logger(self, name: str) -> LoggerPlugin:
        return _named("logger", self.loggers, name)


P = TypeVar("P")


def _named(what: str, table: dict[str, P], name: str) -> P:
    if name not in table:
        raise PluginError(f"unknown {what} {name!r}{did_you_mean(name, table)}")
    return table[name]


def _strict() -> bool:
    return os.environ.get("SEQBENCH_STRICT_PLUGINS", "") not in ("", "0", "false")


def _tracing() -> bool:
    return os.environ.get("SEQBENCH_TRACE_PLUGINS", "") not in ("", "0", "false")


def _trace(message: str) -> None:
    """``SEQBENCH_TRACE_PLUGINS=1``: say what each plugin's hook registered (or raised)."""
    if _tracing():
        print(f"seqbench: {message}", file=sys.stderr)


_pm: pluggy.PluginManager | None = None
_sources: dict[str, str] = {}  # pluggy plugin name -> "built-in" or "dist version"
_load_failures: list[Broken] = []
_registry: Registry | None = None


def plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, with every allowed entry point loaded (once)."""
    global _pm
    if _pm is not None:
        return _pm
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    if _tracing():
        pm.trace.root.setwriter(lambda msg: print(msg, end="", file=sys.stderr))
        pm.enable_tracing()
    allow = os.environ.get("SEQBENCH_LOAD_PLUGINS")
    allowed = None if allow is None else {a.strip() for a in allow.split(",") if a.strip()}
    # By name; a built-in before a third party's entry point of the same name, so a plugin can
    # never shadow a built-in (the clash is reported below instead).
    def order(ep: metadata.EntryPoint) -> tuple[str, bool]:
        return ep.name, not (ep.dist is None or ep.dist.name == BUILTIN_DIST)

    for ep in sorted(metadata.entry_points(group=GROUP), key=order):
        dist = ep.dist
        source = (
            "built-in"
            if dist is None or dist.name == BUILTIN_DIST
            else f"{dist.name} {dist.version}"
        )
        # The core's own executors (module seqbench.*) are not plugins to choose: without them
        # `SEQBENCH_LOAD_PLUGINS=lstm,copy bench run` could not run anything.
        core = source == "built-in" and ep.module.partition(".")[0] == "seqbench"
        if allowed is not None and ep.name not in allowed and not core:
            continue
        if pm.has_plugin(ep.name):
            if _sources.get(ep.name) == source:  # the same distribution visible twice
                continue
            taken = PluginError(
                f"entry point name {ep.name!r} is already used by {_sources.get(ep.name)}; "
                "rename it in the plugin's pyproject.toml"
            )
            if _strict():
                raise taken
            _load_failures.append(Broken(ep.name, source, str(taken)))
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: a plugin must not end the command
            if _strict():
                _reraise(exc, ep.name, source)
            _load_failures.append(Broken(ep.name, source, _why(exc)))
            continue
        _sources[ep.name] = source
    _reject_unknown_hooks(pm)
    _pm = pm
    return pm


def _why(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    return one_line(exc)


def _reraise(exc: BaseException, plugin: str, source: str) -> None:
    """Strict mode: the plugin's own error, but never a silent exit of the whole command."""
    if isinstance(exc, SystemExit):
        raise PluginError(f"plugin {plugin!r} ({source}): {_why(exc)}") from exc
    raise exc


def _reject_unknown_hooks(pm: pluggy.PluginManager) -> None:
    """A hook implementation with no matching spec is a typo (``register_model``): unload it."""
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            if _strict():
                raise
            name = pm.get_name(exc.plugin) or "unknown"
            pm.unregister(exc.plugin)
            _load_failures.append(Broken(name, _sources.pop(name, "unknown"), one_line(exc)))


def register(plugin: object, name: str, source: str | None = None) -> None:
    """Register a plugin object at runtime (tests, notebooks). Undo with :func:`unregister`."""
    pm = plugin_manager()
    pm.register(plugin, name=name)
    _sources[name] = source or f"registered at runtime ({name})"
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        pm.unregister(plugin)
        _sources.pop(name, None)
        raise
    _invalidate()


def unregister(name: str) -> None:
    pm = plugin_manager()
    if pm.has_plugin(name):
        pm.unregister(name=name)
    _sources.pop(name, None)
    _invalidate()


def _invalidate() -> None:
    global _registry
    _registry = None


def reset() -> None:
    """Forget everything loaded (tests use this after changing the environment)."""
    global _pm, _registry
    _pm, _registry = None, None
    _sources.clear()
    _load_failures.clear()


def registry() -> Registry:
    """Every model, task and executor the loaded plugins register, with their origins."""
    global _registry
    if _registry is not None:
        return _registry
    pm = plugin_manager()
    reg = Registry(broken=list(_load_failures))
    _collect(pm, "register_models", reg.models, reg, ModelPlugin)
    _collect(pm, "register_tasks", reg.tasks, reg, TaskPlugin)
    _collect(pm, "register_executors", reg.executors, reg, ExecutorPlugin)
    _collect(pm, "register_loggers", reg.loggers, reg, LoggerPlugin)
    _registry = reg
    return reg


Plugin = Union[ModelPlugin, TaskPlugin, ExecutorPlugin, LoggerPlugin]


def _collect(pm: pluggy.PluginManager, hook_name: str, into: dict[str, Any], reg: Registry,
             cls: type[Plugin]) -> None:
    what = {ModelPlugin: "model", TaskPlugin: "task", ExecutorPlugin: "executor",
            LoggerPlugin: "logger"}[cls]
    # Call each implementation on its own (not pm.hook.X(...)) so one that raises is reported
    # with its plugin's name and the rest still register.
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        plugin_name = impl.plugin_name
        source = _sources.get(plugin_name, f"registered at runtime ({plugin_name})")
        staged: dict[str, Plugin] = {}

        def register(obj: Any, *args: Any, _staged: dict[str, Plugin] = staged,
                     _source: str = source) -> None:
            if cls in (ExecutorPlugin, LoggerPlugin) and not isinstance(obj, cls):
                obj = cls(obj, *args)  # register(name, factory, description)
            if not isinstance(obj, cls):
                raise PluginError(f"register() in a {hook_name} hook takes a {cls.__name__}")
            obj = replace(obj, source=_source)
            for seen in (into, _staged):
                if obj.name in seen:
                    raise PluginError(
                        f"{what} name {obj.name!r} is registered twice: "
                        f"by {seen[obj.name].source} and by {_source}"
                    )
            _staged[obj.name] = obj

        try:
            impl.function(register=register)
        except PluginError as exc:
            _trace(f"{hook_name} of {plugin_name!r} ({source}) raised {one_line(exc)}")
            if _strict() or "registered twice" in str(exc):
                raise
            reg.broken.append(Broken(plugin_name, source, str(exc)))
            continue
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too
            _trace(f"{hook_name} of {plugin_name!r} ({source}) raised {one_line(exc)}")
            if _strict():
                _reraise(exc, plugin_name, source)
            detail = traceback.extract_tb(exc.__traceback__)[-1]
            reg.broken.append(
                Broken(plugin_name, source, f"{_why(exc)} ({detail.filename}:{detail.lineno})")
            )
            continue
        _trace(f"{hook_name} of {plugin_name!r} ({source}): {', '.join(staged) or 'nothing'}")
        into.update(staged)
