"""The built-in classification task: sequential digits, local tables, label-line files, scoring."""

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from seqbench.api import UNK, PluginError, TaskPlugin  # noqa: E402
from seqbench_tasks import classification  # noqa: E402

TREC = Path("/work/shared/data/trec")


def load(params=None, train_size=None, seed=0):
    return classification.load(params or {}, train_size, seed)


def examples(split):
    return Counter((tuple(s), t) for s, t in zip(split.sources, split.targets))


def test_registers_one_classification_task():
    got = []
    classification.register_tasks(got.append)
    (plugin,) = got
    assert isinstance(plugin, TaskPlugin)
    assert plugin.name == "classification" and plugin.kinds == ("classification",)
    assert plugin.primary_metric == "accuracy"
    assert set(plugin.metrics) == {"accuracy", "macro_f1"}
    assert plugin.params["data"].default == "digits"


def test_module_import_is_cheap():
    code = (
        "import sys, seqbench_tasks.classification, seqbench_tasks.copy;"
        "heavy = [m for m in ('torch', 'sklearn', 'datasets', 'pytorch_lightning') "
        "if m in sys.modules]; print(heavy); assert not heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_digits_default_shape_and_splits():
    d = load()
    assert d.kind == "classification"
    assert (len(d.train), len(d.val), len(d.test)) == (1258, 180, 359)
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    every = d.train.sources + d.val.sources + d.test.sources
    assert {len(s) for s in every} == {64}
    assert d.src_vocab.itos[4:] == [str(v) for v in range(17)]
    assert {d.src_vocab.itos[i] for s in every for i in s} == {str(v) for v in range(17)}
    assert d.labels == [str(c) for c in range(10)]
    shape = d.shape()
    assert (shape.num_classes, shape.max_src_len, shape.src_vocab_size) == (10, 64, 21)
    # Stratified: every class in every split, in proportion.
    for split in (d.train, d.val, d.test):
        assert set(split.targets) == set(range(10))
    assert max(Counter(d.val.targets).values()) - min(Counter(d.val.targets).values()) <= 2
    # No example index appears in two splits (images may repeat, so compare counts).
    assert sum((examples(d.train) + examples(d.val) + examples(d.test)).values()) == 1797


def test_digits_deterministic_and_held_out_sets_fixed():
    a, b = load(train_size=200, seed=1), load(train_size=200, seed=1)
    assert a.train.sources == b.train.sources and a.train.targets == b.train.targets
    other = load(train_size=50, seed=7)
    full = load()
    for d in (b, other, full):
        assert d.val.sources == a.val.sources and d.val.targets == a.val.targets
        assert d.test.sources == a.test.sources and d.test.targets == a.test.targets
        assert d.src_vocab.itos == a.src_vocab.itos and d.labels == a.labels
    assert load(seed=3).train.sources == full.train.sources  # full size ignores the seed
    assert load(train_size=200, seed=2).train.sources != a.train.sources
    # Fresh objects each call: mutating one result does not leak into the next.
    a.train.sources.clear()
    a.val.sources.clear()
    assert len(load(train_size=200, seed=1).train) == 200 and len(load().val) == 180


def test_nested_training_subsets():
    small, big, full = (load(train_size=n, seed=5) for n in (64, 256, None))
    assert len(small.train) == 64 and len(big.train) == 256
    assert not examples(small.train) - examples(big.train)
    assert not examples(big.train) - examples(full.train)
    with pytest.raises(PluginError, match="larger than"):
        load(train_size=5000)


def test_scorer_perfect_and_wrong():
    d = load()
    perfect = d.score(d.test, list(d.test.targets), 0.25)
    assert perfect["loss"] == 0.25
    assert perfect["accuracy"] == pytest.approx(1.0) and perfect["macro_f1"] == pytest.approx(1.0)
    wrong = d.score(d.test, [(t + 1) % 10 for t in d.test.targets], 2.0)
    assert wrong["accuracy"] == 0.0 and wrong["macro_f1"] == 0.0


def test_chance_is_the_majority_class_on_test():
    d = load()
    assert d.perfect == 1.0
    majority = Counter(d.train.targets).most_common(1)[0][0]
    assert d.chance == pytest.approx(Counter(d.test.targets)[majority] / len(d.test))
    assert 0.09 < d.chance < 0.11  # ten balanced digits
    assert classification.majority_accuracy([2, 1, 1, 2, 0], [1, 2, 2, 0]) == 0.25  # tie: 1


def test_class_zero_counts_in_the_loss():
    """Class 0 (the digit 0) is a real class, not padding: the loss must learn from it. The
    first study's training path skipped it (ignore_index=PAD, and PAD is 0)."""
    torch = pytest.importorskip("torch")
    from seqbench.experiment.lit import Batches, SeqModule
    from seqbench_plugins._recurrent import build_recurrent

    d = load()
    zeros = [i for i, y in enumerate(d.train.targets) if y == 0][:8]
    model = build_recurrent("lstm", "classification", d.shape(), {"hidden_size": 8})
    module = SeqModule(model, d, {"lr": 1e-3})
    data = Batches(d.train, "classification")
    loss = module.training_step(data.collate(zeros), 0)
    assert float(loss) > 0.5  # about ln 10 untrained; 0 (or nan) if class 0 were skipped
    loss.backward()
    assert model.head.weight.grad[0].abs().sum() > 0


def write_csv(path, rows, header=("text", "label")):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def toy_rows(n=40):
    words = {"spam": "buy cheap pills now", "ham": "see you at lunch", "eggs": "breakfast is ready"}
    return [(f"{words[lab]} {i}", lab) for i, lab in zip(range(n), ["spam", "ham", "eggs"] * n)]


def test_local_csv_with_string_labels(tmp_path):
    path = write_csv(tmp_path / "toy.csv", toy_rows(60))
    d = load({"data": path, "val_size": 6, "test_size": 9})
    assert d.labels == ["eggs", "ham", "spam"]  # sorted, names kept
    assert (len(d.train), len(d.val), len(d.test)) == (45, 6, 9)
    for split in (d.val, d.test):
        assert Counter(split.targets) == Counter({0: len(split) // 3, 1: len(split) // 3,
                                                  2: len(split) // 3})
    i = d.train.targets.index(2)
    assert d.src_vocab.decode(d.train.sources[i])[:4] == ["buy", "cheap", "pills", "now"]
    assert d.shape().num_classes == 3
    assert load({"data": path, "val_size": 6, "test_size": 9}).test.sources == d.test.sources


def test_local_jsonl_custom_columns_and_test_file(tmp_path):
    def write(name, rows):
        p = tmp_path / name
        p.write_text("".join(json.dumps({"sentence": t, "y": lab}) + "\n" for t, lab in rows))
        return str(p)

    train = write("train.jsonl", toy_rows(30))
    test = write("test.jsonl", [("zebra crossing", "zoo"), ("buy now", "spam")])
    params = {"data": train, "test_data": test, "text_column": "sentence", "label_column": "y"}
    d = load(params)
    assert d.labels == ["eggs", "ham", "spam", "zoo"]  # test-only labels are classes too
    assert len(d.test) == 2 and d.test.targets == [3, 2]
    assert (len(d.train), len(d.val)) == (27, 3)  # val_size 0.1 of the 30 training rows
    assert d.test.sources[0] == [UNK, UNK]  # unseen words


def test_int_labels_sort_numerically(tmp_path):
    rows = [(f"w{i % 3} x", [10, 2, 33][i % 3]) for i in range(30)]
    d = load({"data": write_csv(tmp_path / "ints.csv", rows), "val_size": 3, "test_size": 3})
    assert d.labels == ["2", "10", "33"]


def test_missing_column_names_available_columns(tmp_path):
    path = write_csv(tmp_path / "cols.csv", [("a b", "x"), ("c d", "y")], header=("body", "tag"))
    with pytest.raises(PluginError, match=r"text column 'text' not found.*body, tag"):
        load({"data": path})
    with pytest.raises(PluginError, match=r"label column 'label' not found.*body, tag"):
        load({"data": path, "text_column": "body"})


def test_missing_file_and_bad_sizes(tmp_path):
    with pytest.raises(PluginError, match="not found"):
        load({"data": str(tmp_path / "nope.csv")})
    with pytest.raises(PluginError, match="not found"):
        load({"data": str(tmp_path / "nope.label")})
    with pytest.raises(PluginError, match="val_size"):
        load({"val_size": 0})
    with pytest.raises(PluginError, match="val_size / test_size"):
        load({"test_size": 1797})
    with pytest.raises(PluginError, match="format"):
        load({"format": "xml"})


LATIN1_LINES = [
    "DESC:manner How did serfdom develop in Russia ?",
    "HUM:ind Who was Pelé ?",
    "LOC:city What city has the Café de Flore ?",
    "NUM:date When did it happen ?",
    "HUM:gr Who built it ?",
    "",
    "LOC:country Which country is Zürich in ?",
] * 4


def test_label_line_latin1(tmp_path):
    path = tmp_path / "tiny.label"
    path.write_bytes("\n".join(LATIN1_LINES).encode("latin-1"))
    with pytest.raises(PluginError, match="latin-1"):
        load({"data": str(path)})  # utf-8 by default: a clear hint, not a traceback
    d = load({"data": str(path), "encoding": "latin-1", "val_size": 4, "test_size": 4})
    assert d.labels == ["DESC", "HUM", "LOC", "NUM"]  # coarse: cut at ':'
    assert len(d.train) + len(d.val) + len(d.test) == 24
    assert "pelé" in d.src_vocab.stoi and "zürich" in d.src_vocab.stoi
    fine = load({"data": str(path), "encoding": "latin-1", "label_delimiter": "",
                 "val_size": 2, "test_size": 2})
    assert fine.labels == sorted({ln.split()[0] for ln in LATIN1_LINES if ln})
    # The same file under another suffix needs format=label-line.
    other = tmp_path / "tiny.txt"
    other.write_bytes(path.read_bytes())
    d2 = load({"data": str(other), "format": "label-line", "encoding": "latin-1",
               "val_size": 4, "test_size": 4})
    assert d2.labels == d.labels and d2.test.sources == d.test.sources


def test_min_freq_and_max_len(tmp_path):
    rows = [("common common rare%d" % i, "ab"[i % 2]) for i in range(20)]
    path = write_csv(tmp_path / "freq.csv", rows)
    d = load({"data": path, "min_freq": 2, "val_size": 2, "test_size": 2})
    assert "common" in d.src_vocab.stoi
    assert not any(t.startswith("rare") for t in d.src_vocab.itos)
    assert all(s[-1] == UNK for s in d.train.sources)
    short = load({"data": path, "max_len": 2, "val_size": 2, "test_size": 2})
    assert {len(s) for s in short.train.sources} == {2}


def test_edited_file_is_reloaded(tmp_path):
    path = tmp_path / "edit.csv"
    write_csv(path, toy_rows(30))
    first = load({"data": str(path), "val_size": 3, "test_size": 3})
    write_csv(path, toy_rows(60))
    os.utime(path, ns=(1, 1))
    assert len(load({"data": str(path), "val_size": 3, "test_size": 3}).train) != len(first.train)


@pytest.mark.skipif(not (TREC / "train_5500.label").exists(), reason="TREC data not present")
def test_trec_real_data():
    params = {
        "data": str(TREC / "train_5500.label"),
        "test_data": str(TREC / "TREC_10.label"),
        "encoding": "latin-1",
    }
    d = load(params, train_size=500, seed=0)
    assert len(d.train) == 500 and len(d.test) == 500
    full = load(params)
    assert len(full.train) + len(full.val) == 5452
    assert d.labels == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert set(d.test.targets) == set(range(6))
    assert d.val.sources == full.val.sources
