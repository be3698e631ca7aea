"""What plugins register: a model family (:class:`ModelPlugin`) or a task (:class:`TaskPlugin`),
each naming its builder or loader directly or as a lazy ``"package.module:attr"`` target."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..util import one_line, shown
from .data import Kind, Loader, kinds_of
from .errors import PluginError
from .models import Builder
from .params import DEFAULT_SEARCH_SPACE, Choice, Param, Range, check_space


class LazyTarget:
    """A ``"package.module:attr"`` plugin target, imported on its first call (so listing plugins
    never imports what the target needs, torch included)."""

    def __init__(self, owner: str, field_name: str, target: str):
        module, sep, attr = target.partition(":")
        if not sep or not _dotted(module) or not _dotted(attr):
            raise PluginError(
                f"{owner}: {field_name} {shown(target)} is not a target; give a callable or "
                "'package.module:attr'")
        self.owner, self.field_name, self.target = owner, field_name, target
        self._resolved: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        if self._resolved is None:
            module, _, attr = self.target.partition(":")
            try:
                obj: Any = importlib.import_module(module)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as exc:
                raise PluginError(
                    f"{self.owner}: {self.field_name} target {self.target!r} cannot be imported "
                    f"({one_line(exc)}); give 'package.module:attr' naming a callable"
                ) from None
            if not callable(obj):
                raise PluginError(
                    f"{self.owner}: {self.field_name} target {self.target!r} is a "
                    f"{type(obj).__name__}, not a callable")
            self._resolved = obj
        return self._resolved

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:  # pickled as the target text, resolved again there
        return LazyTarget, (self.owner, self.field_name, self.target)

    def __repr__(self) -> str:
        return f"LazyTarget({self.target!r})"


def _dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def _callable_or_target(owner: str, field_name: str, value: Any) -> Callable[..., Any]:
    if isinstance(value, str):
        return LazyTarget(owner, field_name, value)
    if not callable(value):
        raise PluginError(
            f"{owner}: {field_name} must be a callable or 'package.module:attr', not "
            f"{type(value).__name__}")
    return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ModelPlugin:
    """A model family. ``build(kind, shape, hparams)`` returns a :class:`SequenceModel` (a
    :class:`Seq2SeqModel` for seq2seq); ``build`` may be ``"package.module:attr"``, imported on
    the first build, so listing plugins never imports torch.

    ``width_param`` names the hyperparameter that the parameter-budget search scales (it must be
    a multiple of the hyperparameter named by ``width_multiple_of``, e.g. attention heads).

    ``search_space`` is what ``bench run`` tuning may vary for this model: names of its own
    hyperparameters (``defaults``) or of the tunable training-recipe keys (:data:`TUNABLE_RECIPE`:
    ``lr``, ``warmup``, ``weight_decay``), each mapped to a :class:`Range` or a :class:`Choice`.
    Every model gets the same number of trials, drawn quasi-randomly in its own space, so a model
    is best served by declaring what its performance is sensitive to, with ranges wide enough to
    hold the optimum. ``None`` (the default) tunes the learning rate alone
    (:data:`DEFAULT_SEARCH_SPACE`). A user who sets one of these keys in a matrix pins it.
    """

    name: str
    description: str
    kinds: tuple[Kind, ...]
    defaults: Mapping[str, Param]
    build: Builder | str  # a str becomes a LazyTarget
    width_param: str = "hidden_size"
    width_multiple_of: str | None = None
    source: str = "unknown"  # filled in by the core: "built-in" or "dist-name version"
    search_space: Mapping[str, Range | Choice] | None = None

    def __post_init__(self) -> None:
        _check_common(self.name, self.description)
        owner = f"model {self.name!r}"
        object.__setattr__(self, "kinds", kinds_of(owner, self.kinds))
        object.__setattr__(self, "build", _callable_or_target(owner, "build", self.build))
        for attr in ("width_param", "width_multiple_of"):
            value = getattr(self, attr)
            if value is not None and value not in self.defaults:
                raise PluginError(f"model {self.name!r}: {attr} {value!r} is not a declared default")
        if self.search_space is not None:
            check_space(self.name, self.search_space, self.defaults)

    @property
    def space(self) -> Mapping[str, Range | Choice]:
        """The declared search space, or the learning rate alone."""
        return self.search_space if self.search_space is not None else DEFAULT_SEARCH_SPACE


@dataclass(frozen=True)
class TaskPlugin:
    """A task. ``load(params, train_size, seed)`` returns :class:`TaskData`; ``load`` may be
    ``"package.module:attr"``, imported on the first load.

    ``train_size=None`` means the full training split. The validation and test splits must not
    depend on ``train_size`` or ``seed``; the training subset for one size and seed must be
    deterministic. A task offering several kinds declares a ``framing`` parameter choosing one.
    """

    name: str
    description: str
    kinds: tuple[Kind, ...]
    params: Mapping[str, Param]
    load: Loader | str  # a str becomes a LazyTarget
    metrics: tuple[str, ...]
    primary_metric: str
    higher_is_better: bool = True
    source: str = "unknown"
    # Parameters added after runs were stored, each with the value that reproduces the earlier
    # behaviour: at that value it stays out of a run's stored parameters, so stored runs keep
    # their identity (a resumed study trains nothing twice).
    identity_if_not: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_common(self.name, self.description)
        owner = f"task {self.name!r}"
        object.__setattr__(self, "kinds", kinds_of(owner, self.kinds))
        object.__setattr__(self, "load", _callable_or_target(owner, "load", self.load))
        if len(self.kinds) > 1 and "framing" not in self.params:
            raise PluginError(f"task {self.name!r}: several kinds need a 'framing' parameter")

    def kind_for(self, params: Mapping[str, Any]) -> Kind:
        if len(self.kinds) == 1:
            return self.kinds[0]
        return Kind.of(params.get("framing", self.kinds[0]), f"task {self.name!r} framing")

    def stored_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` as a run stores them: without the added ones at their earlier value."""
        skip = self.identity_if_not
        return {k: v for k, v in params.items() if not (k in skip and v == skip[k])}


def _check_common(name: str, description: str) -> None:
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise PluginError(f"plugin name {name!r}: use letters, digits, '-' and '_' only")
    if not description:
        raise PluginError(f"plugin {name!r}: a one-line description is required")
