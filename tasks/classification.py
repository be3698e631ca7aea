"""The built-in ``classification`` task: label a token sequence.

Sequential 8x8 digits by default, or labelled text (tables, TREC-style lines, a hub data set).
Data sources, splits, tokenisers and metrics: see docs/methods.md#classification.
"""

from __future__ import annotations

import functools
import os

from seqbench import hookimpl
from seqbench.api import UNK, Param, PluginError, Split, TaskData, TaskPlugin, Vocab, resolve_params

from .classification_files import clean_str, label_index, local_files, read, read_held_out
from .classification_splits import check_size, split_examples

__all__ = ["PARAMS", "clean_str", "load", "majority_accuracy", "register_tasks"]

DIGITS = "digits"
FORMATS = ("auto", "table", "label-line")
TOKENIZERS = ("words", "clean_str", "whitespace")

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


def _files_stamp(p: dict) -> tuple:
    """Size and mtime of local data files, so an edited file is not served from the cache."""
    stamp = []
    for source in (p["data"], p["test_data"], p["val_data"]):
        for f in local_files(source):
            st = os.stat(f)
            stamp.append((f, st.st_size, st.st_mtime_ns))
    return tuple(stamp)


@functools.lru_cache(maxsize=8)
def _prepare(key: tuple):
    """Encoded (train, validation, test) splits, the vocabulary and the class names."""
    p = dict(key[: len(DATA_PARAMS)])
    val_size = check_size("val_size", p["val_size"])
    texts, labels, names, given_test, given_val = _examples(p)
    if not texts:
        raise PluginError(f"data {p['data']!r} has no examples")
    splits = split_examples(p, texts, labels, val_size, given_test, given_val)
    if p["max_len"]:
        splits = tuple(([t[: p["max_len"]] for t in ts], ys) for ts, ys in splits)
    (train_texts, _), _, _ = splits
    if p["data"] == DIGITS:
        vocab = Vocab([str(v) for v in range(17)])
    else:
        vocab = Vocab.build(train_texts, min_freq=p["min_freq"])

    def encode(ts):
        return [vocab.encode(t) if t else [UNK] for t in ts]

    train, val, test = (Split(encode(ts), ys) for ts, ys in splits)
    return train, val, test, vocab, tuple(names)


def _examples(p: dict):
    """(texts, class indices, class names, given test set, given validation set) of the data."""
    if p["data"] == DIGITS:
        for held in ("test_data", "val_data"):
            if p[held]:
                raise PluginError(f"{held} cannot be combined with data=digits")
        return (*_digits(), None, None)
    texts, raw, class_names = read(p, p["data"], "data")
    test = read_held_out(p, "test_data", "test") if p["test_data"] else None
    val = read_held_out(p, "val_data", "validation") if p["val_data"] else None
    held = [x for x in (test, val) if x]
    # One label index for every file, sorted so that it does not depend on example order.
    every = list(raw) + [y for x in held for y in x[1]]
    names, to_index = label_index(
        every, class_names or next((x[2] for x in held if x[2]), None)
    )

    def indexed(x):
        return None if x is None else (x[0], [to_index(y) for y in x[1]])

    return texts, [to_index(y) for y in raw], names, indexed(test), indexed(val)


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    texts = [[str(int(v)) for v in row] for row in d.data]
    return texts, [int(y) for y in d.target], [str(c) for c in range(10)]
