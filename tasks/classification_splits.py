"""The classification task's fixed splits: test and validation sets given as data or carved,
stratified by label, with seeds that never move with the run's seed or training size."""

from __future__ import annotations

import random

from seqbench.api import PluginError

# Fixed seeds for carving the test and validation sets: independent of every run's seed.
TEST_SPLIT_SEED = 20_240_101
VAL_SPLIT_SEED = 20_240_102

Examples = tuple[list, list[int]]  # (token lists, class indices)


def split_examples(
    p: dict, texts: list, labels: list[int], val_size: float,
    given_test: Examples | None, given_val: Examples | None,
) -> tuple[Examples, Examples, Examples]:
    """(train, validation, test): the given held-out sets, else sets carved from ``texts``."""
    n = len(texts)
    keep = list(range(n))
    if given_test is not None:
        test = _given(given_test, "test_data", p)
    else:
        test_size = check_size("test_size", p["test_size"])
        keep, test = _carve(texts, labels, keep, _count(test_size, n), TEST_SPLIT_SEED)
    if given_val is not None:
        val = _given(given_val, "val_data", p)
    else:
        keep, val = _carve(texts, labels, keep, _count(val_size, n), VAL_SPLIT_SEED)
    return ([texts[i] for i in keep], [labels[i] for i in keep]), val, test


def _given(examples: Examples, what: str, p: dict) -> Examples:
    if not examples[0]:
        raise PluginError(f"{what} {p[what]!r} has no examples")
    return examples


def _carve(
    texts: list, labels: list[int], pool: list[int], k: int, seed: int
) -> tuple[list[int], Examples]:
    keep, held = _stratified_holdout(labels, pool, k, seed)
    return keep, ([texts[i] for i in held], [labels[i] for i in held])


def check_size(name: str, value) -> float:
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
