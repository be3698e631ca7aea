"""The built-in ``translation`` task: sequence-to-sequence on SCAN (default) or parallel text.

Data sources (the ``data`` parameter):

``scan`` (default)
    SCAN generated from its grammar (:mod:`seqbench_tasks.scan`); ``split`` picks the published
    ``simple`` (random 80/20) or ``length`` split. Tokens are whitespace-separated words and
    actions; the primary metric is exact match.
a SCAN-format directory
    holding ``tasks_train_<split>.txt`` (lines ``IN: <command> OUT: <actions>``) and
    ``tasks_test_<split>.txt``, or ``tasks.txt`` (the test set is then every command not in
    training, as for the paper's ``simple_p<N>`` files). Lets any published split (e.g.
    ``addprim_jump``) run as is.
a directory of line-aligned parallel text
    ``train.<lang>``, optional ``val|valid|validation|dev.<lang>`` and ``test*.<lang>``, each
    optionally gzipped (Multi30k's layout), for ``source_lang`` and ``target_lang``.
a table file, or a directory of ``train``/``val``/``test`` table files
    csv / tsv / json / jsonl / parquet, read with ``datasets``; pairs come from ``source_column``
    and ``target_column``, or from a ``translation`` column of ``{lang: text}`` dicts.
a Hugging Face hub id
    the same columns; ``config`` names the hub configuration (e.g. ``de-en``).

Natural-language text is tokenised by :func:`seqbench.datautil.tokenize` (lowercase, punctuation
split off); pairs with an empty side are dropped; the primary metric is BLEU, computed against the
normalised reference text (the tokens joined by spaces), so target words missing from the
vocabulary count as errors instead of matching ``<unk>``.

Validation and test sets never depend on the run's training size or seed: when the data has no
validation (or test) split, ``val_size`` (``test_size``) examples, at most 10% of the training
data, are held out with a fixed seed. Vocabularies come from the whole training split (not the
run's subset), so every size and seed sees the same model shapes and encodings. Loaded data is
cached per process, so a benchmark matrix reads or generates each data set once.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

from seqbench import hookimpl
from seqbench.api import Param, PluginError, Split, TaskData, TaskPlugin, Vocab, one_line

VAL_SEED = 20180613  # fixed: held-out sets must not move with the run's seed
TEST_SEED = 20160807
HOLDOUT_CAP = 0.1  # a carved validation/test set takes at most this share of the data
VAL_NAMES = ("val", "valid", "validation", "dev")
TABLE_EXTS = ("csv", "tsv", "json", "jsonl", "parquet")

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
    """The primary metric of the trivial predictor on the test split: it outputs the full
    training split's most frequent target sentence, whatever the source (the seq2seq analogue
    of the majority class). Near 0 for SCAN's exact match, a few BLEU at most for text."""
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
    _raw.cache_clear()
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

    scan_like, train, val, test, info = _raw(source)
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


@functools.lru_cache(maxsize=8)
def _raw(source: tuple):
    """``(scan_like, train, val, test, info)`` as tuples of (source, target) strings."""
    data, split, val_size, test_size, src_lang, tgt_lang, src_col, tgt_col, test_name, config, _ = (
        source
    )
    scan_like = False
    if data == "scan":
        from . import scan

        if split not in scan.SPLITS:
            raise PluginError(
                f"unknown SCAN split {split!r} (available: {', '.join(scan.SPLITS)})"
            )
        train, test = scan.split(split)
        val = None
        scan_like = True
        info = {"data": "scan", "split": split}
    else:
        path = Path(data).expanduser()
        is_table_name = path.suffix.lower().lstrip(".") in TABLE_EXTS
        if not path.exists() and (data.startswith(("/", ".", "~")) or is_table_name):
            raise PluginError(f"data path not found: {data}")
        if path.is_dir() and list(path.glob("tasks_train_*.txt")):
            train, val, test = _scan_dir(path, split)
            scan_like = True
            info = {"data": str(path), "split": split}
        elif path.is_dir() and _find(path, "train", (src_lang,)):
            train, val, test = _parallel_dir(path, src_lang, tgt_lang, test_name)
            info = {"data": str(path), "source_lang": src_lang, "target_lang": tgt_lang}
        elif path.is_dir():
            train, val, test = _table_dir(path, src_lang, tgt_lang, src_col, tgt_col, test_name)
            info = {"data": str(path)}
        elif path.is_file():
            table = _load_table(str(path), config)
            train, val, test = _pairs(table, src_lang, tgt_lang, src_col, tgt_col), None, None
            info = {"data": str(path)}
        else:
            train, val, test = _hub(data, config, src_lang, tgt_lang, src_col, tgt_col, test_name)
            info = {"data": data}
    train = list(train)
    for name, pairs in (("training", train), ("validation", val), ("test", test)):
        if pairs is not None and not pairs:
            raise PluginError(f"data {data!r}: the {name} split has no usable pairs")
    total = len(train)  # the 10% caps refer to the training data as given
    if test is None:
        train, test = _carve(train, min(test_size, int(total * HOLDOUT_CAP)), TEST_SEED, "test")
        info["test_carved_from_train"] = True
    if val is None:
        train, val = _carve(train, min(val_size, int(total * HOLDOUT_CAP)), VAL_SEED, "validation")
        info["val_carved_from_train"] = True
    return scan_like, tuple(train), tuple(val), tuple(test), tuple(info.items())


def _carve(pairs: list, k: int, seed: int, what: str) -> tuple[list, list]:
    from seqbench.datautil import split_off

    if k < 1:
        raise PluginError(
            f"only {len(pairs)} training pairs: too few to hold out a {what} set; "
            f"provide a {what} split"
        )
    kept, held = split_off(len(pairs), k, seed)
    return [pairs[i] for i in kept], [pairs[i] for i in held]


# --------------------------------------------------------------------------------------------
# SCAN-format directories


def _read_scan_file(path: Path) -> list[tuple[str, str]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if not line.startswith("IN: ") or " OUT: " not in line:
            raise PluginError(f"{path}:{n}: expected 'IN: <command> OUT: <actions>'")
        command, actions = line[4:].split(" OUT: ", 1)
        out.append((command.strip(), actions.strip()))
    return out


def _scan_dir(path: Path, split: str):
    train_file = path / f"tasks_train_{split}.txt"
    if not train_file.exists():
        names = sorted(f.name[len("tasks_train_") : -4] for f in path.glob("tasks_train_*.txt"))
        raise PluginError(f"unknown SCAN split {split!r} in {path} (available: {', '.join(names)})")
    train = _read_scan_file(train_file)
    test_file = path / f"tasks_test_{split}.txt"
    if test_file.exists():
        test = _read_scan_file(test_file)
    elif (path / "tasks.txt").exists():
        seen = {c for c, _ in train}
        test = [p for p in _read_scan_file(path / "tasks.txt") if p[0] not in seen]
    else:
        raise PluginError(f"{path}: no tasks_test_{split}.txt (nor tasks.txt to derive it)")
    return train, None, test


# --------------------------------------------------------------------------------------------
# Parallel text directories


def _find(path: Path, stem: str, langs: tuple[str, ...]) -> Path | None:
    for lang in langs:
        for name in (f"{stem}.{lang}", f"{stem}.{lang}.gz"):
            if (path / name).is_file():
                return path / name
    return None


def _read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise PluginError(f"{path}: cannot read: {exc}") from None
    lines = text.split("\n")  # not splitlines(): it also splits on \x85 and \u2028
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _aligned(path: Path, stem: str, src: str, tgt: str) -> list[tuple[str, str]]:
    s_file, t_file = _find(path, stem, (src,)), _find(path, stem, (tgt,))
    if s_file is None or t_file is None:
        missing = src if s_file is None else tgt
        raise PluginError(f"{path}: no {stem}.{missing} (or {stem}.{missing}.gz) file")
    s_lines, t_lines = _read_lines(s_file), _read_lines(t_file)
    if len(s_lines) != len(t_lines):
        raise PluginError(
            f"{s_file.name} has {len(s_lines)} lines but {t_file.name} has {len(t_lines)}"
        )
    return _clean(zip(s_lines, t_lines))


def _text_stems(path: Path, lang: str) -> set[str]:
    """Parallel text stems in ``path``: ``test_2016_flickr.de.gz`` -> ``test_2016_flickr``."""
    out = set()
    for f in path.iterdir():
        name = f.name[:-3] if f.name.endswith(".gz") else f.name
        if name.endswith(f".{lang}"):
            out.add(name[: -len(lang) - 1])
    return out


def _table_files(path: Path) -> dict[str, Path]:
    """Table files in ``path`` by stem: ``test.jsonl`` -> ``{"test": path/test.jsonl}``."""
    found = sorted(f for f in path.iterdir() if f.suffix.lstrip(".").lower() in TABLE_EXTS)
    out: dict[str, Path] = {}
    for f in found:
        out.setdefault(f.stem, f)
    return out


def _pick_test(stems: set[str], test_name: str, where: str) -> str | None:
    tests = sorted(s for s in stems if s.startswith("test"))
    if test_name:
        if test_name not in stems:
            raise PluginError(
                f"test split {test_name!r} not found in {where} (available: "
                f"{', '.join(tests) or 'none'})"
            )
        return test_name
    if not tests:
        return None
    return "test" if "test" in tests else tests[0]


def _parallel_dir(path: Path, src: str, tgt: str, test_name: str):
    stems = _text_stems(path, src)
    train = _aligned(path, "train", src, tgt)
    val_stem = next((v for v in VAL_NAMES if v in stems), None)
    val = _aligned(path, val_stem, src, tgt) if val_stem else None
    test_stem = _pick_test(stems, test_name, str(path))
    test = _aligned(path, test_stem, src, tgt) if test_stem else None
    return train, val, test


# --------------------------------------------------------------------------------------------
# Tables (local files and the hub)


def _load_table(source: str, config: str):
    from seqbench.datautil import load_table

    kwargs = {"name": config} if config else {}
    try:
        return load_table(source, **kwargs)
    except PluginError:
        raise
    except Exception as exc:  # a malformed file: datasets' errors are long
        raise PluginError(f"could not read {source}: {one_line(exc, typed=False)}") from None


def _table_dir(path: Path, src_lang, tgt_lang, src_col, tgt_col, test_name):
    files = _table_files(path)
    stems = set(files)
    if "train" not in stems:
        raise PluginError(
            f"{path}: no train.<lang> parallel text for source_lang {src_lang!r}, no "
            f"tasks_train_*.txt and no train.{{{','.join(TABLE_EXTS)}}} table"
        )

    def table(stem):
        return _pairs(_load_table(str(files[stem]), ""), src_lang, tgt_lang, src_col, tgt_col)

    val_stem = next((v for v in VAL_NAMES if v in stems), None)
    test_stem = _pick_test(stems, test_name, str(path))
    return (
        table("train"),
        table(val_stem) if val_stem else None,
        table(test_stem) if test_stem else None,
    )


def _hub(data, config, src_lang, tgt_lang, src_col, tgt_col, test_name):
    tables = _load_table(data, config)
    if not hasattr(tables, "keys"):  # a single split came back
        tables = {"train": tables}
    names = sorted(tables.keys())
    if "train" not in tables:
        raise PluginError(f"data set {data!r} has no 'train' split (splits: {', '.join(names)})")
    val_name = next((v for v in VAL_NAMES if v in tables), None)
    test_name = _pick_test(set(names), test_name, f"data set {data!r}")

    def pairs(name):
        return _pairs(tables[name], src_lang, tgt_lang, src_col, tgt_col) if name else None

    return pairs("train"), pairs(val_name), pairs(test_name)


def _pairs(table, src_lang, tgt_lang, src_col, tgt_col) -> list[tuple[str, str]]:
    from seqbench.datautil import column

    cols = table.column_names
    if src_col not in cols and tgt_col not in cols and "translation" in cols:
        rows = table["translation"]
        first = rows[0] if len(rows) else {}
        for lang in (src_lang, tgt_lang):
            if not isinstance(first, dict) or lang not in first:
                keys = ", ".join(sorted(first)) if isinstance(first, dict) else "none"
                raise PluginError(
                    f"'translation' column has no language {lang!r} (languages: {keys})"
                )
        return _clean((r.get(src_lang), r.get(tgt_lang)) for r in rows)
    sources = column(table, src_col, "source")
    targets = column(table, tgt_col, "target")
    return _clean(zip(sources, targets))


def _clean(pairs) -> list[tuple[str, str]]:
    """Pairs as stripped strings, dropping those with an empty (or missing) side."""
    out = []
    for s, t in pairs:
        s = "" if s is None else str(s).strip()
        t = "" if t is None else str(t).strip()
        if s and t:
            out.append((s, t))
    return out


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

