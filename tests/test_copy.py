"""The built-in copy memory task: layout, baseline, recall-only scoring, determinism, params."""

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import math  # noqa: E402
from collections import Counter  # noqa: E402

import pytest  # noqa: E402

from seqbench.api import PluginError, TaskPlugin, resolve_params  # noqa: E402
from seqbench_tasks import copy as copytask  # noqa: E402

SMALL = {"pool_size": 300, "val_size": 50, "test_size": 80}


def load(params=None, train_size=None, seed=0):
    return copytask.load({**SMALL, **(params or {})}, train_size, seed)


def plugin():
    got = []
    copytask.register_tasks(got.append)
    (p,) = got
    return p


def test_registration():
    p = plugin()
    assert isinstance(p, TaskPlugin)
    assert p.name == "copy" and p.kinds == ("aligned", "seq2seq")
    assert p.params["framing"].default == "aligned"
    assert p.primary_metric == "recall_accuracy"
    assert set(p.metrics) == {"recall_accuracy", "cross_entropy", "baseline_ce"}
    assert p.kind_for({"framing": "seq2seq"}) == "seq2seq"
    defaults = {k: v.default for k, v in p.params.items()}
    assert defaults == {"T": 50, "n_symbols": 10, "alphabet": 8, "framing": "aligned",
                        "pool_size": 10_000, "val_size": 1_000, "test_size": 1_000}


def test_aligned_layout_exact():
    T, n = 100, 10
    d = load({"T": T})
    v = d.src_vocab
    assert d.kind == "aligned" and d.tgt_vocab.itos == v.itos
    assert v.itos[4:] == [f"a{i}" for i in range(10)]  # a0 blank, a1..a8 symbols, a9 delimiter
    blank, delim = v.stoi["a0"], v.stoi["a9"]
    symbols = {v.stoi[f"a{i}"] for i in range(1, 9)}
    for split in (d.train, d.val, d.test):
        for src, tgt in zip(split.sources, split.targets):
            assert len(src) == len(tgt) == T + 2 * n == 120
            assert set(src[:n]) <= symbols
            assert src[n : n + T - 1] == [blank] * (T - 1)
            assert src[n + T - 1] == delim and src.count(delim) == 1
            assert src[n + T :] == [blank] * n
            assert tgt[: T + n] == [blank] * (T + n)
            assert tgt[T + n :] == src[:n]
    shape = d.shape()
    assert (shape.max_src_len, shape.max_tgt_len, shape.tgt_vocab_size) == (120, 120, 14)
    # The blank is a real target token, not padding.
    assert blank != 0 and d.tgt_vocab.decode([blank]) == ["a0"]
    text = d.example_text(d.train, 0)
    assert text["source"].split()[n + T - 1] == "a9"


def test_seq2seq_layout_exact():
    T, n = 30, 10
    d = load({"T": T, "framing": "seq2seq"})
    aligned = load({"T": T})
    v = d.src_vocab
    assert d.kind == "seq2seq"
    for src, tgt, asrc in zip(d.train.sources, d.train.targets, aligned.train.sources):
        assert len(src) == T + n and len(tgt) == n
        assert src == asrc[: T + n]  # the same symbols as the aligned framing
        assert src[:n] == tgt
        assert src[n : n + T - 1] == [v.stoi["a0"]] * (T - 1) and src[-1] == v.stoi["a9"]
    assert (d.shape().max_src_len, d.shape().max_tgt_len) == (40, 10)


def test_symbols_uniform_over_alphabet():
    d = load({"alphabet": 4, "n_symbols": 5, "T": 3, "pool_size": 2000})
    counts = Counter(t for src in d.train.sources for t in src[:5])
    assert set(counts) == {d.src_vocab.stoi[f"a{i}"] for i in range(1, 5)}
    assert max(counts.values()) / min(counts.values()) < 1.15
    assert d.src_vocab.itos[-1] == "a5"  # the delimiter follows the alphabet


@pytest.mark.parametrize("T, expected", [(100, 0.1733), (200, 0.0945)])
def test_baseline_values(T, expected):
    assert round(copytask.baseline_ce(T, 10, 8), 4) == expected
    d = load({"T": T, "pool_size": 10, "val_size": 5, "test_size": 5})
    assert round(d.extras["baseline_ce"], 4) == expected
    scores = d.score(d.val, d.val.targets, 0.5)
    assert scores["baseline_ce"] == d.extras["baseline_ce"]
    assert scores["cross_entropy"] == scores["loss"] == 0.5


@pytest.mark.parametrize("framing", ["aligned", "seq2seq"])
def test_chance_is_a_memoryless_recall(framing):
    """chance = 1/K: a predictor that remembers nothing recalls each symbol with probability
    1/K whatever it outputs; the best constant symbol scores about that on the test split."""
    d = load({"framing": framing, "T": 20, "alphabet": 4})
    assert (d.chance, d.perfect) == (0.25, 1.0)
    start = d.extras["recall_positions"][0]
    v = d.src_vocab
    best = max(
        d.score(d.test, [[v.stoi[f"a{k}"]] * len(t) if framing == "seq2seq"
                         else t[:start] + [v.stoi[f"a{k}"]] * 10 for t in d.test.targets],
                0.0)["recall_accuracy"]
        for k in range(1, 5)
    )
    assert abs(best - d.chance) < 0.02


def test_seq2seq_baseline_is_per_target_token():
    d = load({"framing": "seq2seq", "T": 100})
    assert d.extras["baseline_ce"] == pytest.approx(10 * math.log(8) / 11)


def test_scorer_counts_only_recalled_symbols():
    T, n = 20, 10
    d = load({"T": T})
    v = d.src_vocab
    split = d.test
    perfect = d.score(split, [list(t) for t in split.targets], 0.1)
    assert perfect["recall_accuracy"] == 1.0
    # Every blank right, every symbol wrong (shifted to another symbol): 0, not ~(T+n)/(T+2n).
    def shift(i):
        k = int(v.itos[i][1:])
        return v.stoi[f"a{k % 8 + 1}"]

    blanks_only = [t[: T + n] + [shift(i) for i in t[T + n :]] for t in split.targets]
    assert d.score(split, blanks_only, 0.1)["recall_accuracy"] == 0.0
    # Half the symbols right, blanks all wrong: 0.5.
    half = [[v.stoi["a9"]] * (T + n) + t[T + n : T + n + 5] + [shift(i) for i in t[-5:]]
            for t in split.targets]
    assert d.score(split, half, 0.1)["recall_accuracy"] == 0.5
    # Tensor-like ids are accepted too.
    import torch

    assert d.score(split, [torch.tensor(t) for t in split.targets], 0.1)["recall_accuracy"] == 1


def test_seq2seq_scorer_handles_short_and_long_outputs():
    d = load({"T": 5, "framing": "seq2seq"})
    split = d.val
    assert d.score(split, split.targets, 1.0)["recall_accuracy"] == 1.0
    truncated = [t[:5] for t in split.targets]
    assert d.score(split, truncated, 1.0)["recall_accuracy"] == 0.5
    longer = [t + t for t in split.targets]
    assert d.score(split, longer, 1.0)["recall_accuracy"] == 1.0
    assert d.score(split, [[] for _ in split.targets], 1.0)["recall_accuracy"] == 0.0


def test_deterministic_and_held_out_sets_independent_of_size_seed_and_pool():
    a = load(train_size=100, seed=1)
    b = load(train_size=100, seed=1)
    assert a.train.sources == b.train.sources and a.train.targets == b.train.targets
    assert load(train_size=100, seed=2).train.sources != a.train.sources
    for other in (load(), load(train_size=10, seed=9), load({"pool_size": 1000})):
        assert other.val.sources == a.val.sources and other.test.sources == a.test.sources
        assert other.val.targets == a.val.targets and other.test.targets == a.test.targets
    # Bigger sets extend smaller ones (one generator stream per set).
    assert load({"val_size": 100}).val.sources[:50] == a.val.sources
    # Validation, test and pool are different streams: no shared symbol strings.
    def keys(split):
        return {tuple(s[:10]) for s in split.sources}

    pool, val, test = keys(load().train), keys(a.val), keys(a.test)
    assert not pool & val and not pool & test and not val & test
    # Fresh objects: mutating one result leaves the cache intact.
    a.val.sources.clear()
    assert len(load().val) == 50


def test_nested_training_subsets():
    small, big = load(train_size=32, seed=4), load(train_size=128, seed=4)
    assert {tuple(s) for s in small.train.sources} <= {tuple(s) for s in big.train.sources}
    with pytest.raises(PluginError, match="larger than"):
        load(train_size=301)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"T": 0}, r"'T': 0 is below the minimum 1"),
        ({"alphabet": 1000}, r"'alphabet': 1000 is above the maximum 256"),
        ({"alphabet": 1}, r"'alphabet': 1 is below the minimum 2"),
        ({"framing": "foo"}, r"'framing': 'foo' is not one of aligned, seq2seq"),
        ({"n_symbols": 0}, r"'n_symbols'"),
        ({"pool_size": 0}, r"'pool_size'"),
        ({"T": "ten"}, r"'T': 'ten' is not a valid int"),
    ],
)
def test_bad_params_raise_one_line_plugin_error(params, message):
    with pytest.raises(PluginError, match=message) as err:
        copytask.load(params, None, 0)
    assert "\n" not in str(err.value)


def test_core_style_params_resolve():
    p = plugin()
    resolved = resolve_params("copy", p.params, {"T": "120", "framing": "seq2seq"})
    assert resolved["T"] == 120 and p.kind_for(resolved) == "seq2seq"
    with pytest.raises(PluginError, match="not one of"):
        resolve_params("copy", p.params, {"framing": "foo"})


def test_a_run_records_chance_perfect_and_val_size():
    """The runner copies the task's anchors into the run's extras, with the number of
    validation examples it scored (a seeded sample of val_limit)."""
    pytest.importorskip("torch")
    from seqbench.experiment.plan import TRAINING, RunSpec
    from seqbench.experiment.runner import execute

    training = resolve_params(
        "training", TRAINING, {"max_steps": 4, "val_every": 2, "val_limit": 100, "batch_size": 8}
    )
    spec = RunSpec(
        model="lstm", task="copy", kind="aligned", train_size=16, seed=0,
        model_params={"hidden_size": 8, "embed_size": 4}, task_params={"T": 5},
        training=training,
    )  # fmt: skip
    record = execute(spec)
    assert record["status"] == "done", record.get("error")
    extras = record["extras"]
    assert (extras["chance"], extras["perfect"], extras["val_size"]) == (0.125, 1.0, 100)
    assert extras["baseline_ce"] == pytest.approx(10 * math.log(8) / 25)  # the task's own
