"""Reading the classification task's examples: local tables, label-prefixed lines (TREC, Kim
2014's suite) or a hub data set, tokenised, with labels mapped to class indices."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Callable

from seqbench.api import PluginError
from seqbench.util import one_line


def local_files(source: str) -> list[str]:
    files = [f.strip() for f in source.split(",") if f.strip()]
    return files if files and all(Path(f).exists() for f in files) else []


def read_held_out(p: dict, what: str, role: str):
    """A separate test or validation set (``what``): local files, or the named split of data's
    hub data set."""
    source = p[what]
    if local_files(source):
        return read(p, source, what)
    if not local_files(p["data"]) and not Path(source).suffix and "/" not in source:
        return read(p, p["data"], what, split=source)
    raise PluginError(
        f"{what} file not found: {source} (for a hub data set, give its {role} split's name)"
    )


def read(p: dict, source: str, what: str, split: str = "train"):
    """(token lists, raw labels, class names or None) from local files or a hub data set."""
    from seqbench.datautil import column

    tokenize = _tokenizer(p["tokenizer"])
    files = local_files(source)
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


def label_index(raw: list, class_names=None):
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
