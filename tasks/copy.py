"""The built-in ``copy`` task: the copy memory problem of Arjovsky, Shah & Bengio (ICML 2016).

Layouts, baseline and metrics: see docs/methods.md#copy.
"""

from __future__ import annotations

import functools
import math
import random

from seqbench import hookimpl
from seqbench.api import Param, PluginError, Split, TaskData, TaskPlugin, Vocab, resolve_params

FRAMINGS = ("aligned", "seq2seq")
MAX_ALPHABET = 256
MAX_SYMBOLS = 1000
MAX_T = 10_000
MAX_SEQUENCES = 1_000_000  # per split
# Token positions generated in all (pool + validation + test, times the sequence length), checked
# before any is: a list of ints per sequence costs about 16 bytes a position with its targets.
MAX_TOKENS = 20_000_000
# Fixed generator seeds: the pool, validation and test sets are independent streams.
SEEDS = {"train": "seqbench-copy-train", "val": "seqbench-copy-val", "test": "seqbench-copy-test"}

PARAMS = {
    "T": Param(
        50,
        "delay: blanks between the symbols and their recall (published: 100-500)",
        minimum=1,
        maximum=MAX_T,
    ),
    "n_symbols": Param(10, "symbols to remember per sequence", minimum=1, maximum=MAX_SYMBOLS),
    "alphabet": Param(
        8, f"symbol alphabet size (2-{MAX_ALPHABET})", minimum=2, maximum=MAX_ALPHABET
    ),
    "framing": Param("aligned", "aligned (published, per-step targets) or seq2seq", FRAMINGS),
    "pool_size": Param(
        10_000, "sequences in the full training set (training sizes subset it)", minimum=1,
        maximum=MAX_SEQUENCES,
    ),
    # 1,000: a validation accuracy's standard error is then at most 1.6 points (0.5 / sqrt(n)).
    "val_size": Param(1_000, "validation sequences", minimum=1, maximum=MAX_SEQUENCES),
    "test_size": Param(1_000, "test sequences", minimum=1, maximum=MAX_SEQUENCES),
}


def baseline_ce(T: int, n_symbols: int, alphabet: int, framing: str = "aligned") -> float:
    """Mean per-step cross-entropy of the best memoryless predictor (knows the layout only)."""
    steps = T + 2 * n_symbols if framing == "aligned" else n_symbols + 1
    return n_symbols * math.log(alphabet) / steps


def load(params: dict, train_size: int | None, seed: int) -> TaskData:
    from seqbench.datautil import copy_split, train_subset

    p = resolve_params("task 'copy'", PARAMS, params)
    T, n, K, framing = p["T"], p["n_symbols"], p["alphabet"], p["framing"]
    length = T + 2 * n if framing == "aligned" else T + n
    tokens = (p["pool_size"] + p["val_size"] + p["test_size"]) * length
    if tokens > MAX_TOKENS:
        raise PluginError(
            f"copy: {p['pool_size'] + p['val_size'] + p['test_size']:,} sequences of {length:,} "
            f"steps are {tokens:,} tokens, more than the limit of {MAX_TOKENS:,}; lower "
            "pool_size, val_size or test_size (or T)"
        )
    vocab = _vocab(K)
    train = _generate("train", T, n, K, framing, p["pool_size"])
    val = _generate("val", T, n, K, framing, p["val_size"])
    test = _generate("test", T, n, K, framing, p["test_size"])
    baseline = baseline_ce(T, n, K, framing)
    start = T + n if framing == "aligned" else 0  # where the recalled symbols are

    def score(split: Split, predictions: list, loss: float) -> dict:
        if len(predictions) != len(split):
            raise ValueError(f"{len(predictions)} predictions for {len(split)} examples")
        right = 0
        for pred, target in zip(predictions, split.targets):
            pred = list(pred)[start : start + n]
            right += sum(int(a) == b for a, b in zip(pred, target[start : start + n]))
        return {
            "loss": float(loss),
            "recall_accuracy": right / max(n * len(split), 1),
            "cross_entropy": float(loss),
            "baseline_ce": baseline,
        }

    return TaskData(
        kind=framing,
        train=copy_split(train_subset(train, train_size, seed)),
        val=copy_split(val),
        test=copy_split(test),
        src_vocab=vocab,
        tgt_vocab=vocab,
        score=score,
        primary_metric="recall_accuracy",
        higher_is_better=True,
        extras={
            "baseline_ce": baseline,
            "baseline_ce_per_symbol": math.log(K),
            "sequence_length": T + 2 * n if framing == "aligned" else T + n,
            "recall_positions": [start, start + n],
        },
        # A memoryless predictor recalls a uniform symbol with probability 1/K, whatever it
        # outputs (it reaches the baseline cross-entropy above, and no better recall).
        chance=1 / K,
        perfect=1.0,
    )


@hookimpl
def register_tasks(register):
    register(
        TaskPlugin(
            name="copy",
            description="Copy memory task (Arjovsky et al. 2016): recall n symbols after a "
            "delay of T blanks; scored on the recalled symbols only",
            kinds=FRAMINGS,
            params=PARAMS,
            load=load,
            metrics=("recall_accuracy", "cross_entropy", "baseline_ce"),
            primary_metric="recall_accuracy",
        )
    )


# --------------------------------------------------------------------------------------------


def _vocab(alphabet: int) -> Vocab:
    """a0 (blank), a1..aK (symbols), a{K+1} (delimiter), in that order."""
    return Vocab([f"a{i}" for i in range(alphabet + 2)])


@functools.lru_cache(maxsize=8)
def _generate(which: str, T: int, n: int, K: int, framing: str, size: int) -> Split:
    """``size`` sequences from the fixed generator of ``which`` (a prefix of a longer set)."""
    vocab = _vocab(K)
    blank, delim = vocab.stoi["a0"], vocab.stoi[f"a{K + 1}"]
    symbol_ids = [vocab.stoi[f"a{i}"] for i in range(1, K + 1)]
    rng = random.Random(f"{SEEDS[which]}/n={n}/K={K}")
    sources, targets = [], []
    for _ in range(size):
        symbols = [rng.choice(symbol_ids) for _ in range(n)]
        if framing == "aligned":
            sources.append(symbols + [blank] * (T - 1) + [delim] + [blank] * n)
            targets.append([blank] * (T + n) + symbols)
        else:
            sources.append(symbols + [blank] * (T - 1) + [delim])
            targets.append(list(symbols))
    return Split(sources, targets)
