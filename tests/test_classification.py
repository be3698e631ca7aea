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
    from seqbench.api import resolve_params
    from seqbench.experiment.lit import Batches, SeqModule
    from seqbench.experiment.plan import TRAINING
    from seqbench_plugins._recurrent import build_recurrent

    d = load()
    zeros = [i for i, y in enumerate(d.train.targets) if y == 0][:8]
    model = build_recurrent("lstm", "classification", d.shape(), {"hidden_size": 8})
    module = SeqModule(model, d, resolve_params("training", TRAINING, {"lr": 1e-3}))
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


# --------------------------------------------------------------------------------------------
# Kim (2014)'s sentence suite: gzipped "LABEL sentence" lines, held-out or separate splits


def write_sentences(path, rows, encoding="utf-8"):
    """``rows`` of (label, sentence) as gzipped ``LABEL sentence`` lines, as MR/Subj/SST ship."""
    import gzip

    with gzip.open(path, "wt", encoding=encoding, newline="") as fh:
        fh.write("".join(f"{label} {text} \n" for label, text in rows))
    return str(path)


def polarity_rows(n_pos=60, n_neg=40):
    """A made-up MR: unbalanced classes, so stratification shows; every sentence is unique
    (by its number of "very"s) and made of words every split shares."""
    pos = [(1, "a warm , funny film " + "very " * i + ".") for i in range(n_pos)]
    neg = [(0, "it 's a dull , tedious mess " + "very " * i + ".") for i in range(n_neg)]
    return [row for pair in zip(pos, neg) for row in pair] + pos[n_neg:]


def text_of(d, split):
    return [" ".join(d.src_vocab.decode(s, strip_specials=False)) for s in split.sources]


def test_gzipped_label_lines_are_read_by_suffix(tmp_path):
    path = write_sentences(tmp_path / "mr.all.gz", polarity_rows())
    d = load({"data": path, "test_size": 0.1, "val_size": 0.1})
    assert d.labels == ["0", "1"]
    assert (len(d.train), len(d.val), len(d.test)) == (80, 10, 10)
    i = d.train.targets.index(0)
    assert d.src_vocab.decode(d.train.sources[i])[:6] == ["it", "'", "s", "a", "dull", ","]
    bad = tmp_path / "broken.gz"
    bad.write_bytes(b"0 not gzipped at all\n")
    with pytest.raises(PluginError, match="not a complete gzip file"):
        load({"data": str(bad)})


def test_held_out_splits_are_stratified_disjoint_and_fixed(tmp_path):
    path = write_sentences(tmp_path / "mr.all.gz", polarity_rows())
    params = {"data": path, "test_size": 0.1, "val_size": 0.1}
    full = load(params)
    # 60:40 classes: 6 + 4 in each held-out set of 10.
    assert Counter(full.test.targets) == Counter(full.val.targets) == Counter({1: 6, 0: 4})
    train, val, test = (set(text_of(full, s)) for s in (full.train, full.val, full.test))
    assert not (train & val or train & test or val & test)
    assert len(train | val | test) == 100
    for size, seed in ((20, 0), (20, 3), (50, 1), (None, 2)):
        d = load(params, train_size=size, seed=seed)
        assert text_of(d, d.test) == text_of(full, full.test)
        assert text_of(d, d.val) == text_of(full, full.val)
        assert set(text_of(d, d.train)) <= train
    # Another file of the same examples in another order holds out the same counts per class.
    shuffled = write_sentences(tmp_path / "shuffled.all.gz", polarity_rows()[::-1])
    assert Counter(load({**params, "data": shuffled}).test.targets) == Counter(full.test.targets)


def test_separate_validation_and_test_files(tmp_path):
    rows = [(i % 5, f"sentence {i} with label {i % 5}") for i in range(50)]
    train = write_sentences(tmp_path / "fine.train.gz", rows)
    dev = write_sentences(tmp_path / "fine.dev.gz", rows[:7])
    test = write_sentences(tmp_path / "fine.test.gz", rows[7:19] + [(10, "a tenth class")])
    d = load({"data": train, "val_data": dev, "test_data": test})
    assert (len(d.train), len(d.val), len(d.test)) == (50, 7, 13)  # nothing carved
    assert d.labels == ["0", "1", "2", "3", "4", "10"]  # integer labels sort as numbers
    assert d.val.targets == [i % 5 for i in range(7)] and d.test.targets[-1] == 5
    only_val = load({"data": train, "val_data": dev, "test_size": 10})
    assert (len(only_val.train), len(only_val.val), len(only_val.test)) == (40, 7, 10)
    with pytest.raises(PluginError, match="val_data file not found"):
        load({"data": train, "val_data": str(tmp_path / "nope.gz")})
    with pytest.raises(PluginError, match="val_data cannot be combined with data=digits"):
        load({"val_data": dev})


def test_bench_data_shows_a_sentence_suite(cli, tmp_path):
    rows = [(i % 2, f"it 's sentence number {i} , isn't it ?") for i in range(20)]
    files = {s: write_sentences(tmp_path / f"stsa.binary.{s}.gz", rows) for s in
             ("train", "dev", "test")}
    rc, out, err = cli("data", "classification", "-t", f"data={files['train']}",
                       "-t", f"val_data={files['dev']}", "-t", f"test_data={files['test']}",
                       "-t", "tokenizer=clean_str", "--split", "val", "--limit", "2", "--json")
    assert rc == 0, err
    assert json.loads(out) == [
        {"source": "it 's sentence number 0 , is n't it ?", "label": "0"},
        {"source": "it 's sentence number 1 , is n't it ?", "label": "1"},
    ]
    rc, out, err = cli("data", "classification", "-t", f"val_data={files['dev']}")
    assert rc == 2 and err == "error: val_data cannot be combined with data=digits\n"


def test_kims_clean_str():
    clean_str = classification.clean_str
    assert clean_str("It's a (very) GOOD film, isn't it? Yes!") == [
        "it", "'s", "a", "(", "very", ")", "good", "film", ",", "is", "n't", "it", "?", "yes", "!"
    ]
    assert clean_str("we've they're he'd you'll") == ["we", "'ve", "they", "'re", "he", "'d",
                                                       "you", "'ll"]
    assert clean_str("re-imagining ... crème `quoted'") == ["re", "imagining", "cr", "me",
                                                            "`quoted'"]


def test_tokenizer_option(tmp_path):
    path = write_sentences(tmp_path / "t.all.gz", [(0, "It's sad."), (1, "so-so , fun")] * 10)
    params = {"data": path, "test_size": 2, "val_size": 2}
    tokens = {
        name: set(load({**params, "tokenizer": name}).src_vocab.itos[4:])
        for name in ("words", "clean_str", "whitespace")
    }
    assert tokens["words"] == {"it", "'", "s", "sad", ".", "so", "-", ",", "fun"}
    assert tokens["clean_str"] == {"it", "'s", "sad", "so", ",", "fun"}
    assert tokens["whitespace"] == {"It's", "sad.", "so-so", ",", "fun"}
    with pytest.raises(PluginError, match="tokenizer"):
        load({**params, "tokenizer": "spacy"})


def test_latin1_nel_byte_does_not_split_a_line(tmp_path):
    # MR and Subj hold cp1252 bytes: 0x85 ("...") is Latin-1's NEL, a line break to splitlines().
    path = tmp_path / "mr.all.gz"
    write_sentences(path, [(0, "dull\x85 and slow"), (1, "fine")] * 10, encoding="latin-1")
    d = load({"data": str(path), "encoding": "latin-1", "tokenizer": "clean_str",
              "test_size": 2, "val_size": 2})
    assert d.labels == ["0", "1"] and len(d.train) + len(d.val) + len(d.test) == 20
    assert {"dull", "and", "slow", "fine"} <= set(d.src_vocab.itos)


def test_added_parameters_keep_stored_runs_identity():
    from seqbench.experiment.plan import Matrix, plan
    from seqbench.registry import registry

    def task_params(**given):
        matrix = Matrix(models=["lstm"], tasks=["classification"], train_sizes=[64], seeds=[0],
                        task_params={"classification": given})
        return plan(matrix, registry()).runs[0].task_params

    default = task_params()
    assert "tokenizer" not in default and "val_data" not in default and "data" in default
    assert task_params(tokenizer="words") == default
    assert task_params(tokenizer="clean_str")["tokenizer"] == "clean_str"


SENTENCES = Path("/work/shared/data/sentences")


@pytest.mark.skipif(not (SENTENCES / "stsa.binary.train.gz").exists(),
                    reason="sentence data not present")
def test_sentence_suite_real_data():
    mr = load({"data": str(SENTENCES / "rt-polarity.all.gz"), "encoding": "latin-1",
               "tokenizer": "clean_str", "test_size": 0.1, "val_size": 0.1})
    assert (len(mr.train), len(mr.val), len(mr.test)) == (8530, 1066, 1066)
    assert Counter(mr.test.targets) == Counter({0: 533, 1: 533})
    sst = {s: str(SENTENCES / f"stsa.binary.{s}.gz") for s in ("train", "dev", "test")}
    d = load({"data": sst["train"], "val_data": sst["dev"], "test_data": sst["test"]})
    assert (len(d.train), len(d.val), len(d.test)) == (6920, 872, 1821)
