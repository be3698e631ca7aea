"""Helpers every task uses: deterministic training subsets and local/hub data loading."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

from .api import PluginError, Split, one_line


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
    """Load a data set through ``datasets.load_dataset``.

    ``source`` is a local file (csv / json / jsonl / parquet / txt), a comma-separated list of
    such files, or a Hugging Face hub id. Local files never touch the network; a hub id needs it
    (set ``HF_DATASETS_OFFLINE=1`` to fail at once when offline).
    """
    import datasets  # heavy: imported only when a task actually loads data

    files = [f for f in source.split(",") if f]
    if all(Path(f).exists() for f in files):
        suffix = Path(files[0]).suffix.lstrip(".").lower()
        builder = {"jsonl": "json", "tsv": "csv", "txt": "text"}.get(suffix, suffix)
        if builder not in ("csv", "json", "parquet", "text"):
            raise PluginError(f"{files[0]}: unsupported file type; use csv, json, jsonl or parquet")
        if suffix == "tsv":
            kwargs.setdefault("delimiter", "\t")
        return datasets.load_dataset(builder, data_files=files, split="train", **kwargs)
    if any(Path(f).suffix for f in files) and not any(Path(f).exists() for f in files):
        raise PluginError(f"data file not found: {source}")
    try:
        return datasets.load_dataset(source, split=split, **kwargs)
    except Exception as exc:  # the hub's errors are long; the user needs one line
        raise PluginError(
            f"could not load data set {source!r}: {one_line(exc, typed=False)}"
        ) from None


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
