"""Parameters (task parameters and model hyperparameters share one small declaration) and the
search spaces the tuning protocol draws a model's trials from."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from ..util import did_you_mean, shown
from .errors import PluginError


@dataclass(frozen=True)
class Param:
    """One user-settable parameter: its default, a help line, and optional allowed choices."""

    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    # An open end excludes the bound itself (a learning rate above 0, a dropout below 1).
    min_open: bool = False
    max_open: bool = False

    @property
    def type(self) -> type:
        return type(self.default) if self.default is not None else str

    def coerce(self, name: str, value: Any) -> Any:
        """Turn a command-line string (or TOML value) into this parameter's type, or raise."""
        want = self.type
        try:
            if isinstance(value, (dict, list, tuple, set, frozenset)):
                raise TypeError(value)  # a TOML table or nested list is never one value
            if want is bool and isinstance(value, str):
                low = value.strip().lower()
                if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                out = low in ("1", "true", "yes", "on")
            elif want is bool:
                if not isinstance(value, bool):
                    raise ValueError(value)
                out = value
            elif want is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            elif want in (int, float) and isinstance(value, bool):  # TOML true is not 1
                raise ValueError(value)
            else:
                out = want(value)
        except (TypeError, ValueError, OverflowError):  # float(10**400) overflows
            raise PluginError(
                f"parameter {name!r}: {shown(value)} is not a valid {want.__name__}"
            ) from None
        if want is float and not math.isfinite(out):  # nan slips past every minimum check
            raise PluginError(f"parameter {name!r}: {shown(value)} is not a finite number")
        if self.choices is not None and out not in self.choices:
            raise PluginError(
                f"parameter {name!r}: {out!r} is not one of {', '.join(map(str, self.choices))}"
            )
        lo, hi = self.minimum, self.maximum
        if lo is not None and (out <= lo if self.min_open else out < lo):
            rule = f"must be above {lo}" if self.min_open else f"is below the minimum {lo}"
            raise PluginError(f"parameter {name!r}: {shown(out)} {rule}")
        if hi is not None and (out >= hi if self.max_open else out > hi):
            rule = f"must be below {hi}" if self.max_open else f"is above the maximum {hi}"
            raise PluginError(f"parameter {name!r}: {shown(out)} {rule}")
        return out


def resolve_params(
    owner: str, declared: Mapping[str, Param], given: Mapping[str, Any]
) -> dict[str, Any]:
    """Defaults overlaid with ``given``, each value coerced; unknown names are an error."""
    out = {name: p.default for name, p in declared.items()}
    for name, value in given.items():
        if name not in declared:
            raise PluginError(f"{owner} has no parameter {name!r}{did_you_mean(name, declared)}")
        out[name] = declared[name].coerce(name, value)
    return out


# --------------------------------------------------------------------------------------------
# Search spaces: what the tuning protocol may vary for a model (see ModelPlugin.search_space)

# The training-recipe keys a search space may name besides the model's own hyperparameters. The
# recipe is otherwise the same for every model of a task; these are the knobs whose best value
# depends on the architecture (a Transformer wants warm-up, an LSTM usually does not).
TUNABLE_RECIPE = ("lr", "warmup", "weight_decay")


@dataclass(frozen=True)
class Range:
    """A numeric interval to draw from: uniform, or uniform in log space (``log=True``, for
    scale parameters like the learning rate); ``integer=True`` draws whole numbers in
    ``[low, high]``, each equally likely."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        for v in (self.low, self.high):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise PluginError(f"Range bounds must be finite numbers, not {v!r}")
        if not self.low < self.high:
            raise PluginError(f"Range({self.low!r}, {self.high!r}): low must be below high")
        if self.log and self.low <= 0:
            raise PluginError(f"Range({self.low!r}, {self.high!r}, log=True): low must be positive")
        if self.integer and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise PluginError(
                f"Range({self.low!r}, {self.high!r}, integer=True): bounds must be whole"
            )

    def at(self, u: float) -> float | int:
        """The value at quantile ``u`` in [0, 1) of this range's (log-)uniform distribution.

        Floats keep three significant digits: a trial reads ``lr=0.00316``, and draws closer
        than that would not train differently anyway.
        """
        if self.integer:
            n = int(self.high) - int(self.low) + 1
            return int(self.low) + min(int(u * n), n - 1)
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        return float(f"{value:.3g}")

    def describe(self) -> str:
        scale = "log-uniform" if self.log else ("integers" if self.integer else "uniform")
        return f"{self.low:g} .. {self.high:g} ({scale})"


@dataclass(frozen=True)
class Choice:
    """A finite set of values, each equally likely."""

    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.values, (tuple, list)) or not self.values:
            raise PluginError(f"Choice needs a non-empty tuple of values, not {self.values!r}")
        object.__setattr__(self, "values", tuple(self.values))

    def at(self, u: float) -> Any:
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.values))


# A third-party model that declares no search space is tuned on the learning rate alone, over a
# range wide enough to bracket the optimum of AdamW on small sequence models.
DEFAULT_SEARCH_SPACE: Mapping[str, Range | Choice] = {"lr": Range(1e-4, 3e-2, log=True)}


def check_space(model: str, space: Mapping[str, Any], defaults: Mapping[str, Param]) -> None:
    """Every key names something the trial can set, and every value it can draw is valid."""
    if not isinstance(space, Mapping) or not space:
        raise PluginError(f"model {model!r}: search_space must be a non-empty dict (or None)")
    for key, dist in space.items():
        where = f"model {model!r}: search_space[{key!r}]"
        if key not in defaults and key not in TUNABLE_RECIPE:
            raise PluginError(
                f"{where} is neither a declared default nor a tunable recipe key"
                f"{did_you_mean(key, [*defaults, *TUNABLE_RECIPE])}"
            )
        if key in defaults and key in TUNABLE_RECIPE:
            raise PluginError(f"{where}: {key!r} is a training-recipe key; do not redeclare it")
        if not isinstance(dist, (Range, Choice)):
            raise PluginError(f"{where} must be a Range or a Choice, not {type(dist).__name__}")
        if key in TUNABLE_RECIPE:
            if isinstance(dist, Range) and dist.low < 0:
                raise PluginError(f"{where}: {key} cannot be negative")
            continue
        param = defaults[key]
        if isinstance(dist, Range) and param.type is int and not dist.integer:
            raise PluginError(f"{where}: {key!r} is an int; use Range(..., integer=True)")
        probe = (dist.low, dist.high) if isinstance(dist, Range) else dist.values
        try:
            for value in probe:
                param.coerce(key, value)
        except PluginError as exc:
            raise PluginError(f"{where}: {exc}") from None
