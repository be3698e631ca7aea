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
# Parameters (task parameters and model hyperparameters share one small declaration)


@dataclass(frozen=True)
class Param:
    """One user-settable parameter: its default, a help line, and optional allowed choices."""

    default: Any
    help: str = ""
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def type(self) -> type:
        return type(self.default) if self.default is not None else str

    def coerce(self, name: str, value: Any) -> Any:
        """Turn a command-line string (or TOML value) into this parameter's type, or raise."""
        want = self.type
        try:
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
        except (TypeError, ValueError):
            raise PluginError(
                f"parameter {name!r}: {value!r} is not a valid {want.__name__}"
            ) from None
        if want is float and not math.isfinite(out):  # nan slips past every minimum check
            raise PluginError(f"parameter {name!r}: {value!r} is not a finite number")
        if self.choices is not None and out not in self.choices:
            raise PluginError(
                f"parameter {name!r}: {out!r} is not one of {', '.join(map(str, self.choices))}"
            )
        if self.minimum is not None and out < self.minimum:
            raise PluginError(f"parameter {name!r}: {out!r} is below the minimum {self.minimum}")
        if self.maximum is not None and out > self.maximum:
            raise PluginError(f"parameter {name!r}: {out!r} is above the maximum {self.maximum}")
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
    """Everything one run needs from a task: three splits, vocabularies, and how to score."""

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
    """

    name: str
    description: str
    kinds: tuple[str, ...]
    defaults: Mapping[str, Param]
    build: Callable[[str, TaskShape, dict], Any]
    width_param: str = "hidden_size"
    width_multiple_of: str | None = None
    source: str = "unknown"  # filled in by the core: "built-in" or "dist-name version"

    def __post_init__(self):
        _check_common(self.name, self.description)
        bad = [k for k in self.kinds if k not in KINDS]
        if not self.kinds or bad:
            raise PluginError(f"model {self.name!r}: kinds must be among {', '.join(KINDS)}")
        for attr in ("width_param", "width_multiple_of"):
            value = getattr(self, attr)
            if value is not None and value not in self.defaults:
                raise PluginError(f"model {self.name!r}: {attr} {value!r} is not a declared default")


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

    def __post_init__(self):
        _check_common(self.name, self.description)
        bad = [k for k in self.kinds if k not in KINDS]
        if not self.kinds or bad:
            raise PluginError(f"task {self.name!r}: kinds must be among {', '.join(KINDS)}")
        if len(self.kinds) > 1 and "framing" not in self.params:
            raise PluginError(f"task {self.name!r}: several kinds need a 'framing' parameter")

    def kind_for(self, params: Mapping[str, Any]) -> str:
        return params.get("framing", self.kinds[0]) if len(self.kinds) > 1 else self.kinds[0]


def _check_common(name: str, description: str) -> None:
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise PluginError(f"plugin name {name!r}: use letters, digits, '-' and '_' only")
    if not description:
        raise PluginError(f"plugin {name!r}: a one-line description is required")
