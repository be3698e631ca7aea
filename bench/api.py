"""The contract between seqbench's core and its plugins.

A model plugin hands the core a :class:`ModelPlugin`; a task plugin hands it a :class:`TaskPlugin`;
an executor plugin hands it a factory of :class:`Executor`. Everything here is plain Python (torch
is imported lazily by the builders), so listing plugins stays cheap: ``bench plugins`` must never
pay for importing Lightning or building a data set.

The three :class:`Kind` values fix the tensors a model sees; :class:`SequenceModel` and
:class:`Seq2SeqModel` say what a built model accepts and returns, with shapes. Padding id is always
:data:`PAD` and every model must ignore padded positions.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import (
    TYPE_CHECKING, Any, Callable, Iterator, Mapping, Protocol, Sequence, Union, runtime_checkable,
)

from .util import did_you_mean, one_line, shown

if TYPE_CHECKING:
    from torch import Tensor
    from torch.nn import Parameter


class PluginError(ValueError):
    """A plugin, or a user's request of one, is not valid. The message is one line for the user."""


class Kind(str, Enum):
    """A task kind. A ``str``: it compares, hashes and serialises as its value."""

    CLASSIFICATION = "classification"  # tokens -> one label
    SEQ2SEQ = "seq2seq"  # tokens -> tokens, teacher-forced forward and greedy generate
    ALIGNED = "aligned"  # one causal output per input step

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls, value: Any, owner: str = "kind") -> Kind:
        """``value`` as a Kind; anything else is a one-line :class:`PluginError`."""
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(k.value for k in cls)
            raise PluginError(f"{owner}: {shown(value)} is not a task kind ({known})") from None


# Special token ids shared by every vocabulary, so models and the training loop never need to ask.
PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")


def kinds_of(owner: str, kinds: Sequence[str]) -> tuple[Kind, ...]:
    """``kinds`` as :class:`Kind` values; a name that is not one is a :class:`PluginError`."""
    known = [k.value for k in Kind]
    if isinstance(kinds, str) or not kinds or any(k not in known for k in kinds):
        raise PluginError(f"{owner}: kinds must be among {', '.join(known)}")
    return tuple(Kind(k) for k in kinds)


# --------------------------------------------------------------------------------------------
# What a model plugin builds (B batch, S source length, T target length, C classes, V target
# vocabulary). The core calls a model positionally; it may take extra keywords of its own.


@runtime_checkable
class SequenceModel(Protocol):
    """A built model (a ``torch.nn.Module``), called by kind:

    classification: ``model(src (B, S), src_len (B,)) -> logits (B, C)``;
    aligned: ``model(src (B, S), src_len (B,)) -> logits (B, S, V)``, causal: output t depends
    on inputs <= t only;
    seq2seq: ``model(src (B, S), src_len (B,), tgt_in (B, T)) -> logits (B, T, V)``, teacher
    forcing (``tgt_in`` starts with :data:`BOS`), and :meth:`Seq2SeqModel.generate`.
    """

    def __call__(self, src: Tensor, src_len: Tensor, *tgt_in: Tensor, **extra: Any) -> Tensor: ...

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...


@runtime_checkable
class Seq2SeqModel(SequenceModel, Protocol):
    """A seq2seq model: a :class:`SequenceModel` that also decodes greedily."""

    def generate(self, src: Tensor, src_len: Tensor, max_len: int) -> Tensor:
        """ids (B, <=max_len), stopping once every row has produced :data:`EOS`; a row keeps
        its EOS and is :data:`PAD` after it."""
        ...


Builder = Callable[[Kind, "TaskShape", dict[str, Any]], SequenceModel]


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


# --------------------------------------------------------------------------------------------
# What an executor plugin's factory returns: run specs go out, records come back.

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


# --------------------------------------------------------------------------------------------
# Parameters (task parameters and model hyperparameters share one small declaration)


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


# --------------------------------------------------------------------------------------------
# Data handed from a task to the training path


class Vocab:
    """Token <-> id mapping whose first ids are always :data:`SPECIALS`."""

    def __init__(self, tokens: Sequence[str]):
        self.itos: list[str] = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, sequences: Sequence[Sequence[str]], min_freq: int = 1) -> "Vocab":
        """Vocabulary of every token seen ``min_freq`` times, in first-seen order (deterministic)."""
        counts: dict[str, int] = {}
        for seq in sequences:
            for tok in seq:
                counts[tok] = counts.get(tok, 0) + 1
        return cls([t for t, c in counts.items() if c >= min_freq])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.stoi.get(t, UNK) for t in tokens]

    def decode(self, ids: Sequence[int], strip_specials: bool = True) -> list[str]:
        out = []
        for i in ids:
            i = int(i)
            if strip_specials and i == EOS:
                break
            if strip_specials and i < len(SPECIALS):
                continue
            out.append(self.itos[i] if 0 <= i < len(self.itos) else SPECIALS[UNK])
        return out


@dataclass
class Split:
    """One split of a task, already tokenised to ids.

    ``sources[i]`` is a list of source ids (no BOS/EOS). ``targets[i]`` is a class index for
    classification, or a list of target ids (no BOS/EOS: the training path adds them for seq2seq;
    for ``aligned`` it has exactly ``len(sources[i])`` ids).
    """

    sources: list[list[int]]
    targets: list[Any]
    # Untokenised reference texts, when scoring needs them (BLEU against the original sentence,
    # not against a reference whose rare words became <unk>).
    references: list[str] | None = None

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, indices: Sequence[int]) -> "Split":
        refs = None if self.references is None else [self.references[i] for i in indices]
        return Split(
            [self.sources[i] for i in indices], [self.targets[i] for i in indices], refs
        )


@dataclass(frozen=True)
class TaskShape:
    """What a model builder needs to know about a task's data."""

    kind: Kind
    src_vocab_size: int
    tgt_vocab_size: int = 0  # seq2seq / aligned
    num_classes: int = 0  # classification
    max_src_len: int = 0
    max_tgt_len: int = 0  # seq2seq: longest target, EOS excluded

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Kind.of(self.kind, "TaskShape"))


# A scorer turns predictions on a split into named metrics. ``predictions`` is a list with one
# entry per example: a class index (classification), a list of generated ids with EOS stripped
# (seq2seq) or a list of per-position argmax ids (aligned). ``loss`` is the mean per-token
# cross-entropy the training path measured on that split.
Scorer = Callable[[Split, list[Any], float], dict[str, Any]]


@dataclass
class TaskData:
    """Everything one run needs from a task: three splits, vocabularies, and how to score.

    ``chance`` and ``perfect`` (optional, recommended) anchor the primary metric: ``chance`` is
    what a trivial predictor scores on the test split (the majority class's accuracy, the most
    frequent target's exact match, 1/alphabet for a memoryless recall), ``perfect`` the best
    attainable value (1.0 accuracy, 100 BLEU, 0.0 for an error rate). The analysis uses them to
    tell a result from a floor or ceiling effect ("not measurable at this budget"); they are
    stored with every run as ``extras["chance"]`` / ``extras["perfect"]``.
    """

    kind: Kind
    train: Split
    val: Split
    test: Split
    src_vocab: Vocab
    score: Scorer
    primary_metric: str
    higher_is_better: bool = True
    tgt_vocab: Vocab | None = None  # seq2seq / aligned
    labels: list[str] | None = None  # classification: class names by index
    extras: dict[str, Any] = field(default_factory=dict)  # stored with the run (copy baseline)
    chance: float | None = None  # the primary metric of a trivial predictor, on the test split
    perfect: float | None = None  # the primary metric's best attainable value

    def __post_init__(self) -> None:
        self.kind = Kind.of(self.kind, "TaskData")

    def shape(self) -> TaskShape:
        every = [*self.train.sources, *self.val.sources, *self.test.sources]
        max_src_len = max(map(len, every))
        if self.kind == Kind.CLASSIFICATION:
            return TaskShape(self.kind, len(self.src_vocab), num_classes=len(self.labels or []),
                             max_src_len=max_src_len)
        targets = [*self.train.targets, *self.val.targets, *self.test.targets]
        return TaskShape(self.kind, len(self.src_vocab), tgt_vocab_size=len(self.tgt_vocab or []),
                         max_src_len=max_src_len, max_tgt_len=max(map(len, targets)))

    def example_text(self, split: Split, i: int) -> dict[str, str]:
        """One example as text, for ``bench data``."""
        source = " ".join(self.src_vocab.decode(split.sources[i]))
        if self.kind == Kind.CLASSIFICATION:
            return {"source": source, "label": (self.labels or [])[split.targets[i]]}
        target = (self.tgt_vocab or Vocab([])).decode(split.targets[i], strip_specials=False)
        return {"source": source, "target": " ".join(target)}


# ``load(params, train_size, seed)``: ``train_size=None`` is the full training split.
Loader = Callable[[dict[str, Any], Union[int, None], int], TaskData]


# --------------------------------------------------------------------------------------------
# What plugins register


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
