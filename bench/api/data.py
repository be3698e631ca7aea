"""The data a task hands the training path: kinds, vocabularies, splits and shapes.

The three :class:`Kind` values fix the tensors a model sees. Padding id is always :data:`PAD` and
every model must ignore padded positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Sequence, Union

from ..util import shown
from .errors import PluginError


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
