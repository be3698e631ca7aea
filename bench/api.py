"""The contract between seqbench's core and its plugins.

A model plugin hands the core a :class:`ModelPlugin`; a task plugin hands it a :class:`TaskPlugin`.
Everything here is plain Python (torch is imported lazily by the builders), so listing plugins
stays cheap: ``bench plugins`` must never pay for importing Lightning or building a data set.

Three task kinds fix the tensors a model sees (``B`` batch, ``S`` source length, ``T`` target
length, ``V`` target vocabulary, ``C`` classes). Padding id is always :data:`PAD` and every model
must ignore padded positions:

``classification``
    ``forward(src (B, S), src_len (B,)) -> logits (B, C)``
``seq2seq``
    ``forward(src (B, S), src_len (B,), tgt_in (B, T)) -> logits (B, T, V)`` (teacher forcing,
    ``tgt_in`` starts with :data:`BOS`), and
    ``generate(src (B, S), src_len (B,), max_len: int) -> ids (B, <=max_len)`` greedy decoding
    that stops once every row has produced :data:`EOS`; a row keeps its EOS and is PAD after it.
``aligned``
    ``forward(src (B, S), src_len (B,)) -> logits (B, S, V)``, causal: output ``t`` may only
    depend on inputs ``<= t`` (the classic copy-task setting).

The core calls models positionally; a model may accept extra keyword arguments of its own (the
attention model's ``return_attention``).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

KINDS = ("classification", "seq2seq", "aligned")

# Special token ids shared by every vocabulary, so models and the training loop never need to ask.
PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")


class PluginError(ValueError):
    """A plugin, or a user's request of one, is not valid. The message is one line for the user."""


def now() -> str:
    """The current UTC time as stored with runs and reports (ISO 8601, whole seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def one_line(exc: BaseException, *, typed: bool = True) -> str:
    """``"TypeName: first line of the message"``, or the type name alone for an empty message.

    ``typed=False`` leaves the type name out when there is a message (for errors whose message
    already says what went wrong, e.g. a data set hub's).
    """
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    return f"{type(exc).__name__}: {lines[0]}" if typed else lines[0]


# --------------------------------------------------------------------------------------------
# Limits: every size-like request is checked against these before anything is allocated, so a
# typo (a seed range of a billion, a width of 10**9) is a one-line error, not an exhausted machine.

MAX_SEED = 2**32 - 1  # numpy's (and so Lightning's seed_everything's) largest seed
MAX_SEEDS = 1_000  # seeds in one matrix
MAX_TRAIN_SIZE = 100_000_000  # examples in one training set
MAX_RUNS = 50_000  # runs one matrix may plan
MAX_PARAMS = 100_000_000  # parameters of one model (weights, gradients and AdamW state: ~1.6 GB)


def shown(value: Any, width: int = 60) -> str:
    """``repr(value)`` cut to ``width`` characters, for error messages about user input."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print (Python's 4300-digit limit)
        return "a number too long to print"
    return text if len(text) <= width else text[: width - 3] + "..."


# --------------------------------------------------------------------------------------------
# Parameters (task parameters and model hyperparameters share one small declaration)


@dataclass(frozen=True)
class Param:
    """One user-settable parameter: its default, a help line, and optional allowed choices."""

    default: Any
    help: str = ""
    choices: tuple | None = None
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

    def __post_init__(self):
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

    values: tuple

    def __post_init__(self):
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


def did_you_mean(name: str, choices: Sequence[str] | Mapping[str, Any]) -> str:
    names = sorted(choices)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f" (available: {', '.join(names) or 'none'}){hint}"


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

    kind: str
    src_vocab_size: int
    tgt_vocab_size: int = 0  # seq2seq / aligned
    num_classes: int = 0  # classification
    max_src_len: int = 0
    max_tgt_len: int = 0  # seq2seq: longest target, EOS excluded


# A scorer turns predictions on a split into named metrics. ``predictions`` is a list with one
# entry per example: a class index (classification), a list of generated ids with EOS stripped
# (seq2seq) or a list of per-position argmax ids (aligned). ``loss`` is the mean per-token
# cross-entropy the training path measured on that split.
Scorer = Callable[[Split, list, float], dict]


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

    kind: str
    train: Split
    val: Split
    test: Split
    src_vocab: Vocab
    score: Scorer
    primary_metric: str
    higher_is_better: bool = True
    tgt_vocab: Vocab | None = None  # seq2seq / aligned
    labels: list[str] | None = None  # classification: class names by index
    extras: dict = field(default_factory=dict)  # stored with the run (e.g. the copy baseline)
    chance: float | None = None  # the primary metric of a trivial predictor, on the test split
    perfect: float | None = None  # the primary metric's best attainable value

    def shape(self) -> TaskShape:
        every = [*self.train.sources, *self.val.sources, *self.test.sources]
        shape = dict(
            kind=self.kind,
            src_vocab_size=len(self.src_vocab),
            max_src_len=max(map(len, every)),
        )
        if self.kind == "classification":
            shape["num_classes"] = len(self.labels or [])
        else:
            targets = [*self.train.targets, *self.val.targets, *self.test.targets]
            shape["tgt_vocab_size"] = len(self.tgt_vocab or [])
            shape["max_tgt_len"] = max(map(len, targets))
        return TaskShape(**shape)

    def example_text(self, split: Split, i: int) -> dict:
        """One example as text, for ``bench data``."""
        source = " ".join(self.src_vocab.decode(split.sources[i]))
        if self.kind == "classification":
            return {"source": source, "label": (self.labels or [])[split.targets[i]]}
        target = self.tgt_vocab.decode(split.targets[i], strip_specials=False)
        return {"source": source, "target": " ".join(target)}


# --------------------------------------------------------------------------------------------
# What plugins register


@dataclass(frozen=True)
class ModelPlugin:
    """A model family. ``build(kind, shape, hparams)`` returns a plain ``torch.nn.Module``.

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
    kinds: tuple[str, ...]
    defaults: Mapping[str, Param]
    build: Callable[[str, TaskShape, dict], Any]
    width_param: str = "hidden_size"
    width_multiple_of: str | None = None
    source: str = "unknown"  # filled in by the core: "built-in" or "dist-name version"
    search_space: Mapping[str, Range | Choice] | None = None

    def __post_init__(self):
        _check_common(self.name, self.description)
        bad = [k for k in self.kinds if k not in KINDS]
        if not self.kinds or bad:
            raise PluginError(f"model {self.name!r}: kinds must be among {', '.join(KINDS)}")
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


def check_space(model: str, space: Mapping, defaults: Mapping[str, Param]) -> None:
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
    """A task. ``load(params, train_size, seed)`` returns :class:`TaskData`.

    ``train_size=None`` means the full training split. The validation and test splits must not
    depend on ``train_size`` or ``seed``; the training subset for one size and seed must be
    deterministic. A task offering several kinds declares a ``framing`` parameter choosing one.
    """

    name: str
    description: str
    kinds: tuple[str, ...]
    params: Mapping[str, Param]
    load: Callable[[dict, int | None, int], TaskData]
    metrics: tuple[str, ...]
    primary_metric: str
    higher_is_better: bool = True
    source: str = "unknown"
    # Parameters added after runs were stored, each with the value that reproduces the earlier
    # behaviour: at that value it stays out of a run's stored parameters, so stored runs keep
    # their identity (a resumed study trains nothing twice).
    identity_if_not: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        _check_common(self.name, self.description)
        bad = [k for k in self.kinds if k not in KINDS]
        if not self.kinds or bad:
            raise PluginError(f"task {self.name!r}: kinds must be among {', '.join(KINDS)}")
        if len(self.kinds) > 1 and "framing" not in self.params:
            raise PluginError(f"task {self.name!r}: several kinds need a 'framing' parameter")

    def kind_for(self, params: Mapping[str, Any]) -> str:
        return params.get("framing", self.kinds[0]) if len(self.kinds) > 1 else self.kinds[0]

    def stored_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` as a run stores them: without the added ones at their earlier value."""
        skip = self.identity_if_not
        return {k: v for k, v in params.items() if not (k in skip and v == skip[k])}


def _check_common(name: str, description: str) -> None:
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise PluginError(f"plugin name {name!r}: use letters, digits, '-' and '_' only")
    if not description:
        raise PluginError(f"plugin {name!r}: a one-line description is required")
