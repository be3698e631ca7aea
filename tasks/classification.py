"""The built-in ``classification`` task: label a token sequence.

Default data: **sequential digits**, scikit-learn's bundled 8x8 handwritten digits (1,797 images,
shipped with scikit-learn, no network). Each image is read row by row as 64 tokens, one per pixel,
whose value 0..16 is the token ("0".."16"); the label is the digit ("0".."9").

Other data (``data=``):

* local ``csv`` / ``json`` / ``jsonl`` / ``parquet`` / ``tsv`` files, or a Hugging Face hub id,
  loaded through :func:`seqbench.datautil.load_table`; the text is in ``text_column`` (default
  ``text``) and the label in ``label_column`` (default ``label``). Labels may be strings or ints;
* plain-text **label-prefixed lines** (``format=label-line``, chosen automatically for ``.label``
  and gzipped ``.gz`` files), the TREC format ``COARSE:fine question text`` or the ``LABEL
  sentence`` lines of Kim (2014)'s sentence suite (MR, Subj, SST-1, SST-2): the label is the first
  whitespace token, cut at the first ``label_delimiter`` (default ``:``, so TREC gives its 6
  coarse classes; set ``label_delimiter=`` empty to keep the whole token, i.e. TREC's 50 fine
  classes); integer labels sort as numbers. Files are read with ``encoding`` (default utf-8; TREC
  needs ``encoding=latin-1``), gunzipped when their name ends in ``.gz``.

Splits (fixed, never dependent on the run's seed or training size): a separate test set comes
from ``test_data`` (files, or for a hub data set the name of its test split); without one, a test
set of ``test_size`` is carved from ``data``. A separate validation set likewise comes from
``val_data`` (SST's dev files); without one, a validation set of ``val_size`` is carved from what
is left. The rest is the full training split. MR and Subj, which have no standard split, take
``test_size=0.1 val_size=0.1``. Sizes below 1 are fractions of the examples in
``data``, sizes of 1 or more are counts. Carving is stratified by label (every class keeps its
share, largest-remainder rounding) with fixed seeds. With the defaults (``val_size=0.1``,
``test_size=0.2``) the digits split into 1,258 train / 180 validation / 359 test.

Text is tokenised by ``tokenizer``: ``words`` (default; :func:`seqbench.datautil.tokenize`,
lower-cased, punctuation split off), ``clean_str`` (Kim 2014's: only letters, digits and
``(),!?'` `` survive, clitics such as ``'s`` and ``n't`` are split off, lower-cased) or
``whitespace`` (already tokenised text, split on spaces only).
The vocabulary is built from the full training split only, keeping tokens seen at least
``min_freq`` times (default 1: every training token); other tokens become ``<unk>``. An empty
text becomes a single ``<unk>`` so no sequence has length 0. ``max_len`` (default 0: no limit)
truncates long texts. The digits' vocabulary is always the 17 pixel values "0".."16".

Metrics: accuracy (primary) and macro-F1 (torchmetrics), plus the loss.
"""

from __future__ import annotations

import functools
import gzip
import os
import random
import re
from pathlib import Path
from typing import Callable

from seqbench import hookimpl
from seqbench.api import (
    UNK, Param, PluginError, Split, TaskData, TaskPlugin, Vocab, one_line, resolve_params
)

DIGITS = "digits"
FORMATS = ("auto", "table", "label-line")
TOKENIZERS = ("words", "clean_str", "whitespace")
# Fixed seeds for carving the test and validation sets: independent of every run's seed.
TEST_SPLIT_SEED = 20_240_101
VAL_SPLIT_SEED = 20_240_102

PARAMS = {
    "data": Param(
        DIGITS,
        "'digits' (sequential 8x8 digits, bundled), local files (csv/json/jsonl/parquet/.label; "
        "comma-separated for several) or a Hugging Face hub id",
    ),
    "test_data": Param(
        "",
        "separate test set: local files, or for a hub data set its test split name; "
        "empty = carve test_size from data",
    ),
    "val_data": Param(
        "",
        "separate validation set: local files, or for a hub data set its validation split "
        "name; empty = carve val_size from data",
    ),
    "format": Param(
        "auto", "table (load_dataset), label-line (TREC-style or 'LABEL sentence' lines), or "
        "auto (label-line for .label and .gz files)", FORMATS
    ),
    "tokenizer": Param(
        "words", "words (punctuation split off), clean_str (Kim 2014) or whitespace", TOKENIZERS
    ),
    "text_column": Param("text", "table column holding the text"),
    "label_column": Param("label", "table column holding the label"),
    "config": Param("", "hub data sets only: the configuration name (load_dataset's name=)"),
    "label_delimiter": Param(
        ":", "label-line: the label is the first token up to this delimiter (empty = whole token)"
    ),
    "encoding": Param("utf-8", "text encoding of local files (TREC: latin-1)"),
    "val_size": Param(0.1, "validation set carved from data: fraction (<1) or count"),
    "test_size": Param(
        0.2, "test set carved from data when there is no test_data: fraction (<1) or count"
    ),
    "min_freq": Param(
        1, "keep tokens seen at least this often in the full training split", minimum=1
    ),
    "max_len": Param(0, "truncate texts to this many tokens (0 = no limit)", minimum=0),
}

DATA_PARAMS = tuple(PARAMS)  # every parameter shapes the data; none is a training knob
# Parameters added after runs were stored, at the value that reproduces the earlier behaviour.
ADDED_PARAMS = {"val_data": "", "tokenizer": "words"}


def load(params: dict, train_size: int | None, seed: int) -> TaskData:
    from seqbench.datautil import copy_split, train_subset

    p = resolve_params("task 'classification'", PARAMS, params)
    key = tuple((name, p[name]) for name in DATA_PARAMS) + (_files_stamp(p),)
    train, val, test, vocab, labels = _prepare(key)
    num_classes = len(labels)

    def score(split: Split, predictions: list, loss: float) -> dict:
        from seqbench.metrics import classification_metrics

        preds = [int(x) for x in predictions]
        if len(preds) != len(split):
            raise ValueError(f"{len(preds)} predictions for {len(split)} examples")
        out = {"loss": float(loss)}
        out.update(classification_metrics(preds, list(split.targets), num_classes))
        return out

    return TaskData(
        kind="classification",
        train=copy_split(train_subset(train, train_size, seed)),
        val=copy_split(val),
        test=copy_split(test),
        src_vocab=vocab,
        score=score,
        primary_metric="accuracy",
        higher_is_better=True,
        labels=list(labels),
        extras={
            "data": p["data"],
            "full_train_size": len(train),
            "val_size": len(val),
            "test_size": len(test),
        },
        chance=majority_accuracy(train.targets, test.targets),
        perfect=1.0,
    )


def majority_accuracy(train_labels: list[int], test_labels: list[int]) -> float:
    """Test accuracy of always predicting the full training split's most frequent class (the
    smallest index among ties): the floor a classifier must clear to have learnt anything."""
    counts: dict[int, int] = {}
    for y in train_labels:
        counts[y] = counts.get(y, 0) + 1
    if not counts or not test_labels:
        return 0.0
    majority = min(counts, key=lambda c: (-counts[c], c))
    return sum(y == majority for y in test_labels) / len(test_labels)


@hookimpl
def register_tasks(register):
    register(
        TaskPlugin(
            name="classification",
            description="Sequence classification: sequential 8x8 digits by default, or your "
            "labelled texts (csv/json/parquet, hub id, TREC-style .label lines)",
            kinds=("classification",),
            params=PARAMS,
            load=load,
            metrics=("accuracy", "macro_f1"),
            primary_metric="accuracy",
            identity_if_not=ADDED_PARAMS,
        )
    )


# --------------------------------------------------------------------------------------------
# Loading (cached per data parameters; callers get fresh Split objects)


def _local_files(source: str) -> list[str]:
    files = [f.strip() for f in source.split(",") if f.strip()]
    return files if files and all(Path(f).exists() for f in files) else []


def _files_stamp(p: dict) -> tuple:
    """Size and mtime of local data files, so an edited file is not served from the cache."""
    stamp = []
    for source in (p["data"], p["test_data"], p["val_data"]):
        for f in _local_files(source):
            st = os.stat(f)
            stamp.append((f, st.st_size, st.st_mtime_ns))
    return tuple(stamp)


@functools.lru_cache(maxsize=8)
def _prepare(key: tuple):
    p = dict(key[: len(DATA_PARAMS)])
    val_size = _check_size("val_size", p["val_size"])
    test_pair = val_pair = None
    if p["data"] == DIGITS:
        for held in ("test_data", "val_data"):
            if p[held]:
                raise PluginError(f"{held} cannot be combined with data=digits")
        texts, labels, names = _digits()
    else:
        texts, raw, class_names = _read(p, p["data"], "data")
        test_pair = _read_held_out(p, "test_data", "test") if p["test_data"] else None
        val_pair = _read_held_out(p, "val_data", "validation") if p["val_data"] else None
        held = [pair for pair in (test_pair, val_pair) if pair]
        # One label index for every file, sorted so that it does not depend on example order.
        every = list(raw) + [x for pair in held for x in pair[1]]
        names, to_index = _label_index(
            every, class_names or next((pair[2] for pair in held if pair[2]), None)
        )
        labels = [to_index(x) for x in raw]
    n = len(texts)
    if n == 0:
        raise PluginError(f"data {p['data']!r} has no examples")

    keep = list(range(n))
    if test_pair is not None:
        test_texts, test_labels = test_pair[0], [to_index(x) for x in test_pair[1]]
        if not test_texts:
            raise PluginError(f"test_data {p['test_data']!r} has no examples")
    else:
        test_size = _check_size("test_size", p["test_size"])
        keep, held = _stratified_holdout(labels, keep, _count(test_size, n), TEST_SPLIT_SEED)
        test_texts, test_labels = [texts[i] for i in held], [labels[i] for i in held]
    if val_pair is not None:
        val_texts, val_labels = val_pair[0], [to_index(x) for x in val_pair[1]]
        if not val_texts:
            raise PluginError(f"val_data {p['val_data']!r} has no examples")
    else:
        keep, held = _stratified_holdout(labels, keep, _count(val_size, n), VAL_SPLIT_SEED)
        val_texts, val_labels = [texts[i] for i in held], [labels[i] for i in held]
    train_texts, train_labels = [texts[i] for i in keep], [labels[i] for i in keep]

    max_len = p["max_len"]
    if max_len:
        train_texts, val_texts, test_texts = (
            [t[:max_len] for t in ts] for ts in (train_texts, val_texts, test_texts)
        )
    if p["data"] == DIGITS:
        vocab = Vocab([str(v) for v in range(17)])
    else:
        vocab = Vocab.build(train_texts, min_freq=p["min_freq"])

    def encode(ts):
        return [vocab.encode(t) if t else [UNK] for t in ts]

    return (
        Split(encode(train_texts), train_labels),
        Split(encode(val_texts), val_labels),
        Split(encode(test_texts), test_labels),
        vocab,
        tuple(names),
    )


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    texts = [[str(int(v)) for v in row] for row in d.data]
    return texts, [int(y) for y in d.target], [str(c) for c in range(10)]


def _check_size(name: str, value) -> float:
    value = float(value)
    if value <= 0:
        raise PluginError(f"{name} must be a fraction in (0, 1) or a count of at least 1")
    if value >= 1 and not value.is_integer():
        raise PluginError(f"{name} {value} must be a whole count when it is 1 or more")
    return value


def _count(size: float, n: int) -> int:
    return int(size) if size >= 1 else round(n * size)


def _stratified_holdout(
    labels: list[int], pool: list[int], k: int, seed: int
) -> tuple[list[int], list[int]]:
    """Hold ``k`` of ``pool``'s indices out, each class in proportion to its size (fixed seed).

    Quotas use largest-remainder rounding so exactly ``k`` are held out; within a class the
    held-out examples are a seeded shuffle's prefix. Returns sorted (kept, held) index lists.
    """
    if k < 1:
        raise PluginError(
            f"holding out {k} of {len(pool)} examples leaves no held-out set: "
            "raise val_size / test_size"
        )
    if k >= len(pool):
        raise PluginError(
            f"cannot hold out {k} examples from {len(pool)}: lower val_size / test_size"
        )
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for i in pool:
        by_class.setdefault(labels[i], []).append(i)
    classes = sorted(by_class)
    exact = {c: k * len(by_class[c]) / len(pool) for c in classes}
    quota = {c: int(exact[c]) for c in classes}
    left = k - sum(quota.values())
    for c in sorted(classes, key=lambda c: (-(exact[c] - quota[c]), c))[:left]:
        quota[c] += 1
    held = []
    for c in classes:
        members = by_class[c]
        rng.shuffle(members)
        held.extend(members[: quota[c]])
    held_set = set(held)
    return [i for i in pool if i not in held_set], sorted(held)


def _read_held_out(p: dict, what: str, role: str):
    """A separate test or validation set (``what``): local files, or the named split of data's
    hub data set."""
    source = p[what]
    if _local_files(source):
        return _read(p, source, what)
    if not _local_files(p["data"]) and not Path(source).suffix and "/" not in source:
        return _read(p, p["data"], what, split=source)
    raise PluginError(
        f"{what} file not found: {source} (for a hub data set, give its {role} split's name)"
    )


def _read(p: dict, source: str, what: str, split: str = "train"):
    """(token lists, raw labels, class names or None) from local files or a hub data set."""
    from seqbench.datautil import column

    tokenize = _tokenizer(p["tokenizer"])
    files = _local_files(source)
    fmt = p["format"]
    if fmt == "auto":
        by_suffix = files and all(f.lower().endswith((".label", ".gz")) for f in files)
        fmt = "label-line" if by_suffix else "table"
    if fmt == "label-line":
        if not files:
            raise PluginError(f"{what} file not found: {source}")
        texts, labels = [], []
        for f in files:
            for text, label in _label_lines(f, p["encoding"], p["label_delimiter"]):
                texts.append(tokenize(text))
                labels.append(label)
        return texts, labels, None

    table = _table(p, source, files, split)
    text_col = column(table, p["text_column"], "text")
    label_col = column(table, p["label_column"], "label")
    feature = table.features.get(p["label_column"])
    names = getattr(feature, "names", None)  # a datasets.ClassLabel keeps the class names
    raw = list(label_col)
    if names:
        if any(not isinstance(x, int) or not 0 <= x < len(names) for x in raw):
            raise PluginError(f"{what} {source!r} has unlabelled examples (label -1)")
        raw = [names[x] for x in raw]
    texts = [tokenize("" if t is None else str(t)) for t in text_col]
    return texts, raw, names


def _table(p: dict, source: str, files: list[str], split: str):
    from seqbench.datautil import load_table

    kwargs = {}
    if not files:  # a hub id
        if p["config"]:
            kwargs["name"] = p["config"]
        return load_table(source, split=split, **kwargs)
    suffix = Path(files[0]).suffix.lower()
    if suffix in (".csv", ".tsv", ".json", ".jsonl") and p["encoding"].lower().replace(
        "-", ""
    ) != "utf8":
        kwargs["encoding"] = p["encoding"]
    try:
        return load_table(",".join(files), **kwargs)
    except PluginError:
        raise
    except UnicodeDecodeError:
        raise PluginError(
            f"{source}: not {p['encoding']} text; set encoding= (e.g. latin-1)"
        ) from None
    except Exception as exc:  # datasets' builder errors are long; the user needs one line
        raise PluginError(f"could not read {source}: {one_line(exc, typed=False)}") from None


def _label_lines(path: str, encoding: str, delimiter: str):
    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding=encoding) as fh:
            # "\n" alone ends a line: splitlines() would also break at a Latin-1 NEL (0x85).
            lines = fh.read().split("\n")
    except UnicodeDecodeError:
        raise PluginError(f"{path}: not {encoding} text; set encoding= (TREC: latin-1)") from None
    except LookupError:
        raise PluginError(f"unknown encoding {encoding!r}") from None
    except (gzip.BadGzipFile, EOFError):
        raise PluginError(f"{path}: not a complete gzip file (the name ends in .gz)") from None
    for line in lines:
        parts = line.split(None, 1)
        if not parts:
            continue
        head = parts[0]
        if delimiter and delimiter in head:
            head = head.split(delimiter, 1)[0]
        label = int(head) if re.fullmatch(r"0|[1-9][0-9]*", head) else head  # "10" after "9"
        yield (parts[1].strip() if len(parts) > 1 else ""), label


def _tokenizer(name: str) -> Callable[[str], list[str]]:
    if name == "clean_str":
        return clean_str
    if name == "whitespace":
        return lambda text: text.split()
    from seqbench.datautil import tokenize

    return tokenize


# Kim (2014)'s clean_str, as in his CNN_sentence code, in order: anything but letters, digits and
# (),!?'` becomes a space; clitics are split off; , ! ( ) ? become tokens of their own.
CLEAN_STR_RULES = [
    (re.compile(r"[^A-Za-z0-9(),!?'`]"), " "),
    (re.compile(r"'s"), " 's"),
    (re.compile(r"'ve"), " 've"),
    (re.compile(r"n't"), " n't"),
    (re.compile(r"'re"), " 're"),
    (re.compile(r"'d"), " 'd"),
    (re.compile(r"'ll"), " 'll"),
    (re.compile(r"([,!()?])"), r" \1 "),
]


def clean_str(text: str) -> list[str]:
    """Kim (2014)'s tokenisation, lower-cased (his code kept TREC's case)."""
    for pattern, replacement in CLEAN_STR_RULES:
        text = pattern.sub(replacement, text)
    return text.lower().split()


def _label_key(x):
    if x is None:
        raise PluginError("an example has no label (empty label cell)")
    if isinstance(x, float) and x.is_integer():
        return int(x)
    if isinstance(x, int) and not isinstance(x, bool):
        return x
    return str(x)


def _label_index(raw: list, class_names=None):
    """Class names and a raw label -> index function.

    A hub ClassLabel keeps its own order; int labels sort numerically; anything else sorts as
    text (so mixed 1 / "1" labels are one class). Independent of the examples' order.
    """
    keys = {_label_key(x) for x in raw}
    if class_names and keys <= set(class_names):
        ordered = list(class_names)
    elif all(isinstance(k, int) for k in keys):
        ordered = sorted(keys)
    else:
        ordered = sorted({str(k) for k in keys})
    index = {str(k): i for i, k in enumerate(ordered)}

    def to_index(x) -> int:
        return index[str(_label_key(x))]

    return [str(k) for k in ordered], to_index
