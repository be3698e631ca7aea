"""Helpers every task uses: deterministic training subsets and local/hub data loading."""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

from .api import PluginError, Split
from .util import one_line


def train_subset(split: Split, train_size: int | None, seed: int) -> Split:
    """The first ``train_size`` examples of a seed-fixed permutation of ``split``.

    Taking a prefix of one permutation makes the subsets nested: for a given seed, the 64-example
    training set is contained in the 128-example one, so a learning curve measures the effect of
    more data rather than of different data.
    """
    if train_size is None:
        return split
    if train_size < 1:
        raise PluginError(f"training size {train_size} must be at least 1")
    if train_size > len(split):
        raise PluginError(
            f"training size {train_size} is larger than the {len(split)} training examples"
        )
    order = list(range(len(split)))
    random.Random(seed).shuffle(order)
    return split.subset(order[:train_size])


def copy_split(split: Split) -> Split:
    """A new :class:`Split` over the same examples, so a caller never changes a cached one."""
    return split.subset(range(len(split)))


def split_off(n: int, fraction_or_count: float, seed: int) -> tuple[list[int], list[int]]:
    """Split ``range(n)`` into (kept, held-out) with a fixed seed; used to carve validation sets."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    k = int(fraction_or_count) if fraction_or_count >= 1 else round(n * fraction_or_count)
    return sorted(order[k:]), sorted(order[:k])


def load_table(source: str, split: str | None = None, **kwargs):
    """A local file (csv / json / jsonl / parquet / txt), comma-separated files, or a hub id,
    through ``datasets.load_dataset``, quietly and with no cache outside seqbench's folders.

    Local files never touch the network (they go through a temporary cache, removed); hub data
    sets are cached under :func:`cache_dir` unless ``HF_DATASETS_CACHE`` says otherwise. An
    undecodable local file raises its ``UnicodeDecodeError`` (the task names the encoding
    parameter); anything else is a one-line :class:`PluginError`.
    """
    import tempfile

    import datasets  # heavy: imported only when a task actually loads data

    files = [f for f in source.split(",") if f]
    if all(Path(f).exists() for f in files):
        suffix = Path(files[0]).suffix.lstrip(".").lower()
        builder = {"jsonl": "json", "tsv": "csv", "txt": "text"}.get(suffix, suffix)
        if builder not in ("csv", "json", "parquet", "text"):
            raise PluginError(f"{files[0]}: unsupported file type; use csv, json, jsonl or parquet")
        for f in files:
            if Path(f).is_dir():
                raise PluginError(f"{f} is a folder, not a data file")
            if Path(f).stat().st_size == 0:
                raise PluginError(f"{f} is empty")
        if suffix == "tsv":
            kwargs.setdefault("delimiter", "\t")
        with _quiet_datasets(), tempfile.TemporaryDirectory(prefix="seqbench-data-") as cache:
            try:
                return datasets.load_dataset(builder, data_files=files, split="train",
                                             cache_dir=cache, keep_in_memory=True, **kwargs)
            except Exception as exc:
                chain = _chain(exc)
                for link in chain:
                    if isinstance(link, UnicodeDecodeError):
                        raise link from None
                cause = chain[-1]
                raise PluginError(
                    f"could not read {source}: {one_line(cause, typed=False)}"
                ) from None
    if any(Path(f).suffix for f in files) and not any(Path(f).exists() for f in files):
        raise PluginError(f"data file not found: {source}")
    if not os.environ.get("HF_DATASETS_CACHE"):
        kwargs.setdefault("cache_dir", str(cache_dir() / "datasets"))
    try:
        with _quiet_datasets():
            return datasets.load_dataset(source, split=split, **kwargs)
    except Exception as exc:  # the hub's errors are long; the user needs one line
        raise PluginError(
            f"could not load data set {source!r}: {one_line(exc, typed=False)}"
        ) from None


def cache_dir() -> Path:
    """seqbench's own cache folder: ``$SEQBENCH_CACHE``, else ``$XDG_CACHE_HOME/seqbench``
    (``~/.cache/seqbench``)."""
    if os.environ.get("SEQBENCH_CACHE"):
        return Path(os.environ["SEQBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seqbench"


@contextmanager
def _quiet_datasets():
    """No progress bars and no log lines from ``datasets`` while loading (restored after)."""
    import datasets
    from datasets.utils import logging as ds_logging

    bars = datasets.is_progress_bar_enabled()
    level = ds_logging.get_verbosity()
    datasets.disable_progress_bars()
    ds_logging.set_verbosity(ds_logging.CRITICAL)
    try:
        yield
    finally:
        ds_logging.set_verbosity(level)
        if bars:
            datasets.enable_progress_bars()


def _chain(exc: BaseException) -> list[BaseException]:
    """An exception and its causes, outermost first (datasets wraps a file's real error)."""
    out = [exc]
    while True:
        nxt = out[-1].__cause__ or out[-1].__context__
        if nxt is None or any(nxt is e for e in out):
            return out
        out.append(nxt)


def tokenize(text: str) -> list[str]:
    """Whitespace tokenisation with punctuation split off (enough for SCAN, TREC and Multi30k)."""
    import re

    return re.findall(r"\w+|[^\w\s]", text.lower())


def column(table, name: str, what: str) -> Sequence:
    if name not in table.column_names:
        raise PluginError(
            f"{what} column {name!r} not found; columns are: {', '.join(table.column_names)}"
        )
    return table[name]
