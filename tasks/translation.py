"""The built-in ``translation`` task: sequence-to-sequence on SCAN (default) or parallel text.

Data sources, splits and metrics: see docs/methods.md#translation.
"""

from __future__ import annotations

import functools
from pathlib import Path

from seqbench import hookimpl
from seqbench.api import Param, PluginError, Split, TaskData, TaskPlugin, Vocab

from .translation_sources import raw_pairs

PARAMS = {
    "data": Param(
        "scan",
        "'scan' (generated), a SCAN-format directory, a directory of parallel text "
        "{train,val,test*}.<lang>[.gz], a csv/tsv/json/jsonl/parquet file or directory of "
        "train/val/test files, or a Hugging Face hub id",
    ),
    "split": Param(
        "simple",
        "SCAN split: 'simple' (published random 80/20) or 'length' (test: longer action "
        "sequences); for a SCAN-format directory, any <split> of its tasks_train_<split>.txt",
    ),
    "val_size": Param(
        1000,
        "validation examples held out (fixed seed) of the training data when the data has no "
        "validation split (at most 10% of it); SCAN always carves its validation set this way",
        minimum=1,
    ),
    "test_size": Param(
        1000,
        "test examples held out (fixed seed) when the data has no test split (at most 10%)",
        minimum=1,
    ),
    "min_freq": Param(
        0,
        "keep tokens seen this often in the full training split, rarer ones become <unk>; "
        "0 = automatic: 1 for SCAN, 2 for natural-language data",
        minimum=0,
    ),
    "max_len": Param(
        0,
        "drop training pairs whose source or target has more tokens than this (validation "
        "and test are kept whole); 0 = keep all",
        minimum=0,
    ),
    "source_lang": Param("de", "source language code: file suffix or 'translation' key"),
    "target_lang": Param("en", "target language code: file suffix or 'translation' key"),
    "source_column": Param("source", "source text column of table / hub data"),
    "target_column": Param("target", "target text column of table / hub data"),
    "test_split": Param(
        "",
        "which test split / file stem to use when there are several (e.g. test_2017_flickr); "
        "'' = 'test' if present, else the first test* in sorted order",
    ),
    "config": Param("", "Hugging Face hub configuration name (e.g. 'de-en'); '' = none"),
}


@hookimpl
def register_tasks(register):
    register(
        TaskPlugin(
            name="translation",
            description="Sequence-to-sequence: SCAN commands to actions (generated) or "
            "parallel text such as Multi30k",
            kinds=("seq2seq",),
            params=PARAMS,
            load=load,
            metrics=("exact_match", "bleu", "token_accuracy"),
            primary_metric="exact_match",
        )
    )


# --------------------------------------------------------------------------------------------
# Loading


def load(params: dict, train_size: int | None, seed: int) -> TaskData:
    from seqbench.datautil import train_subset

    p = {name: param.default for name, param in PARAMS.items()}
    p.update(params)
    source = _source_key(p)
    prepared = _prepared(source, int(p["min_freq"]), int(p["max_len"]))
    scan_like, train, val, test, src_itos, tgt_itos, extras = prepared
    src_vocab, tgt_vocab = Vocab(src_itos), Vocab(tgt_itos)
    train_split = _fresh(train)
    primary = "exact_match" if scan_like else "bleu"
    return TaskData(
        kind="seq2seq",
        train=train_subset(train_split, train_size, seed),
        val=_fresh(val),
        test=_fresh(test),
        src_vocab=src_vocab,
        tgt_vocab=tgt_vocab,
        score=Scorer(tgt_vocab),
        primary_metric=primary,
        higher_is_better=True,
        extras=dict(extras),
        chance=_chance(train, test, tgt_itos, primary),
        perfect=1.0 if primary == "exact_match" else 100.0,
    )


@functools.lru_cache(maxsize=8)
def _chance(train, test, tgt_itos: tuple, primary: str) -> float:
    """The test score of always answering the training split's most frequent target sentence
    (the seq2seq analogue of the majority class)."""
    from collections import Counter

    targets = train[1]
    if not targets:
        return 0.0
    constant = list(Counter(targets).most_common(1)[0][0])
    split = _fresh(test)
    return float(Scorer(Vocab(tgt_itos))(split, [constant] * len(split), 0.0)[primary])


def clear_cache() -> None:
    """Forget every data set loaded in this process (tests, or data files edited in place)."""
    _prepared.cache_clear()
    raw_pairs.cache_clear()
    from . import scan

    scan.pairs.cache_clear()
    scan.split.cache_clear()


def _fresh(encoded) -> Split:
    """A new Split (new lists) from the cached immutable encoding: callers may mutate it."""
    sources, targets, refs = encoded
    return Split([list(s) for s in sources], [list(t) for t in targets], list(refs))


def _source_key(p: dict) -> tuple:
    """The parameters that pick the raw data, plus a file stamp so edited files are reread."""
    data = str(p["data"]).strip()
    if not data:
        raise PluginError("parameter 'data' is empty; use 'scan', a path or a hub id")
    stamp = None
    path = Path(data).expanduser()
    if data != "scan" and path.exists():
        files = [path, *path.iterdir()] if path.is_dir() else [path]
        stamp = max(f.stat().st_mtime_ns for f in files)
    return (
        data, str(p["split"]), int(p["val_size"]), int(p["test_size"]),
        str(p["source_lang"]), str(p["target_lang"]),
        str(p["source_column"]), str(p["target_column"]),
        str(p["test_split"]), str(p["config"]), stamp,
    )  # fmt: skip


@functools.lru_cache(maxsize=8)
def _prepared(source: tuple, min_freq: int, max_len: int):
    """Tokenised, filtered and encoded splits plus vocabularies; all immutable (cached)."""
    from seqbench.datautil import tokenize

    scan_like, train, val, test, info = raw_pairs(source)
    tok = str.split if scan_like else tokenize
    norm = (lambda s: " ".join(s.split())) if scan_like else (lambda s: " ".join(tokenize(s)))

    def tokenised(pairs):
        return [(tok(s), tok(t), norm(t)) for s, t in pairs]

    train_t = tokenised(train)
    if max_len:
        train_t = [x for x in train_t if len(x[0]) <= max_len and len(x[1]) <= max_len]
        if not train_t:
            raise PluginError(f"max_len {max_len} drops every training pair")
    min_freq = min_freq or (1 if scan_like else 2)
    src_vocab = Vocab.build([s for s, _, _ in train_t], min_freq)
    tgt_vocab = Vocab.build([t for _, t, _ in train_t], min_freq)

    def encode(items):
        return (
            tuple(tuple(src_vocab.encode(s)) for s, _, _ in items),
            tuple(tuple(tgt_vocab.encode(t)) for _, t, _ in items),
            tuple(r for _, _, r in items),
        )

    extras = dict(info)
    extras.update(
        train_examples=len(train_t),
        val_examples=len(val),
        test_examples=len(test),
        src_vocab_size=len(src_vocab),
        tgt_vocab_size=len(tgt_vocab),
        min_freq=min_freq,
    )
    return (
        scan_like,
        encode(train_t),
        encode(tokenised(val)),
        encode(tokenised(test)),
        tuple(src_vocab.itos),
        tuple(tgt_vocab.itos),
        tuple(extras.items()),
    )


# --------------------------------------------------------------------------------------------
# Scoring


class Scorer:
    """Exact match and token accuracy on ids; BLEU on decoded text against the references.

    Nothing needs it to pickle: TaskData never leaves the process that loaded it (each worker
    loads its own task data).
    """

    def __init__(self, tgt_vocab: Vocab):
        self.tgt_vocab = tgt_vocab

    def __call__(self, split: Split, predictions: list, loss: float) -> dict:
        from seqbench.api import EOS
        from seqbench.metrics import bleu, sequence_metrics

        if len(predictions) != len(split):
            raise ValueError(f"{len(predictions)} predictions for {len(split)} examples")
        preds = []
        for p in predictions:
            ids = [int(i) for i in p]
            preds.append(ids[: ids.index(EOS)] if EOS in ids else ids)
        out = sequence_metrics(preds, split.targets)
        hyps = [" ".join(self.tgt_vocab.decode(p)) for p in preds]
        refs = split.references
        if refs is None:
            refs = [" ".join(self.tgt_vocab.decode(t)) for t in split.targets]
        out["bleu"] = bleu(hyps, refs) if preds else 0.0
        out["loss"] = float(loss)
        return out

