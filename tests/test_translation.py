"""The built-in translation task: SCAN generation and splits, other data sources, scoring."""

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gzip  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import seqbench_tasks  # noqa: E402
from seqbench.api import EOS, UNK, PluginError, TaskPlugin  # noqa: E402
from seqbench_tasks import scan, translation  # noqa: E402

REF = Path("/work/shared/data/scan")
needs_ref = pytest.mark.skipif(
    not (REF / "tasks.txt").exists(), reason="SCAN reference files not available"
)


def read_ref(name):
    out = set()
    for line in (REF / name).read_text().splitlines():
        command, actions = line.split(" OUT: ")
        out.add((command.removeprefix("IN: ").strip(), actions.strip()))
    return out


def load(params=None, size=None, seed=0):
    return translation.load(params or {}, size, seed)


# --------------------------------------------------------------------------------------------
# SCAN generation


def test_generates_all_20910_distinct_commands():
    pairs = scan.generate_pairs()
    assert len(pairs) == 20910
    assert len({c for c, _ in pairs}) == 20910
    assert scan.commands() == sorted(c for c, _ in pairs)


@needs_ref
def test_generated_pairs_equal_published_tasks_txt():
    assert set(scan.pairs()) == read_ref("tasks.txt")


@pytest.mark.parametrize(
    "command, actions",
    [
        ("jump", "I_JUMP"),
        ("turn left", "I_TURN_LEFT"),
        ("turn left twice", "I_TURN_LEFT I_TURN_LEFT"),
        ("walk right", "I_TURN_RIGHT I_WALK"),
        ("look opposite left", "I_TURN_LEFT I_TURN_LEFT I_LOOK"),
        ("turn opposite right", "I_TURN_RIGHT I_TURN_RIGHT"),
        ("run around left", " ".join(["I_TURN_LEFT I_RUN"] * 4)),
        ("turn around right", "I_TURN_RIGHT I_TURN_RIGHT I_TURN_RIGHT I_TURN_RIGHT"),
        ("jump thrice and walk", "I_JUMP I_JUMP I_JUMP I_WALK"),
        ("jump twice after look", "I_LOOK I_JUMP I_JUMP"),
        (
            "jump opposite left after walk around right",
            "I_TURN_RIGHT I_WALK I_TURN_RIGHT I_WALK I_TURN_RIGHT I_WALK I_TURN_RIGHT I_WALK "
            "I_TURN_LEFT I_TURN_LEFT I_JUMP",
        ),
    ],
)
def test_known_examples(command, actions):
    assert dict(scan.pairs())[command] == actions


def test_no_bare_turn_command():
    commands = set(scan.commands())
    assert "turn" not in commands and "turn twice" not in commands


# --------------------------------------------------------------------------------------------
# SCAN splits


def test_simple_split_sizes_from_shipped_mask():
    train, test = scan.split("simple")
    assert (len(train), len(test)) == (16728, 4182)
    assert not {c for c, _ in train} & {c for c, _ in test}


@needs_ref
def test_simple_split_equals_published_files():
    train, test = scan.split("simple")
    assert set(train) == read_ref("tasks_train_simple.txt")
    assert set(test) == read_ref("tasks_test_simple.txt")


@needs_ref
def test_mask_script_reproduces_shipped_mask(tmp_path):
    script = Path(seqbench_tasks.__file__).parent / "data" / "make_scan_split.py"
    spec = importlib.util.spec_from_file_location("make_scan_split", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "mask.bits"
    assert module.main(["make_scan_split", str(REF), str(out)]) == 0
    shipped = (Path(seqbench_tasks.__file__).parent / "data" / scan.SIMPLE_MASK).read_bytes()
    assert out.read_bytes() == shipped
    assert len(shipped) == (20910 + 7) // 8


def test_length_split_rule():
    train, test = scan.split("length")
    assert (len(train), len(test)) == (16990, 3920)
    assert max(len(a.split()) for _, a in train) == 22
    assert min(len(a.split()) for _, a in test) == 24


@needs_ref
def test_length_split_equals_published_files():
    train, test = scan.split("length")
    assert set(train) == read_ref("tasks_train_length.txt")
    assert set(test) == read_ref("tasks_test_length.txt")


# --------------------------------------------------------------------------------------------
# The task on SCAN


def test_plugin_registers_a_seq2seq_task():
    got = []
    translation.register_tasks(got.append)
    (task,) = got
    assert isinstance(task, TaskPlugin)
    assert task.name == "translation" and task.kinds == ("seq2seq",)
    assert task.primary_metric == "exact_match"
    assert set(task.metrics) == {"exact_match", "bleu", "token_accuracy"}
    assert task.params["data"].default == "scan"


def test_module_import_is_cheap():
    code = (
        "import sys, seqbench_tasks.translation; "
        "heavy = [m for m in ('torch', 'datasets', 'sacrebleu', 'torchmetrics') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_default_scan_data():
    data = load()
    assert data.kind == "seq2seq" and data.primary_metric == "exact_match"
    assert data.higher_is_better
    assert (len(data.train), len(data.val), len(data.test)) == (15728, 1000, 4182)
    # 13 command words, 6 actions, plus the 4 specials
    assert (len(data.src_vocab), len(data.tgt_vocab)) == (17, 10)
    assert all(UNK not in s for s in data.test.sources)
    assert all(UNK not in t for t in data.test.targets)
    shape = data.shape()
    assert (shape.max_src_len, shape.max_tgt_len) == (9, 48)
    # the references are the action strings; the ids decode back to them (no BOS/EOS inside)
    for i in range(0, 4182, 500):
        assert " ".join(data.tgt_vocab.decode(data.test.targets[i])) == data.test.references[i]
    # validation is carved out of the published training split, test is the published test
    train, test = scan.split("simple")
    train_cmds = {c for c, _ in train}
    val_cmds = {" ".join(data.src_vocab.decode(s)) for s in data.val.sources}
    tr_cmds = {" ".join(data.src_vocab.decode(s)) for s in data.train.sources}
    assert val_cmds <= train_cmds and tr_cmds <= train_cmds and not val_cmds & tr_cmds
    assert {" ".join(data.src_vocab.decode(s)) for s in data.test.sources} == {c for c, _ in test}


FAMILIES = ("jump", "look", "run", "turn", "walk")


@pytest.mark.parametrize("limit", [0, 300])
def test_scan_validation_sample_covers_every_command_family(limit):
    """The first study validated on the first 300 of a split sorted by command: only "jump ..."
    and "look ...". The runs' validation set is a random sample (never a prefix), from the
    training side, and every command family is in it in about its share of the commands."""
    from collections import Counter

    from seqbench.experiment.runner import validation_sample

    data = load()
    val = validation_sample(data.val, limit)
    assert len(val) == (limit or 1000)
    first = Counter(data.src_vocab.decode(s)[0] for s in val.sources)
    assert set(first) == set(FAMILIES)
    train_share = Counter(data.src_vocab.decode(s)[0] for s in data.train.sources)
    for family in FAMILIES:
        expected = train_share[family] / len(data.train)
        assert abs(first[family] / len(val) - expected) < 0.08, (family, first)
    # Seeded: every run scores the same examples.
    assert validation_sample(data.val, limit).sources == val.sources


def test_validation_sample_is_never_a_prefix():
    from seqbench.api import Split
    from seqbench.experiment.runner import validation_sample

    split = Split([[i] for i in range(5000)], list(range(5000)))
    sample = validation_sample(split, 300)
    assert len(set(sample.targets)) == 300 and max(sample.targets) > 4000
    assert validation_sample(split, 0) is split and validation_sample(split, 9999) is split


def test_chance_and_perfect():
    data = load()
    assert data.perfect == 1.0 and 0.0 <= data.chance < 0.01  # SCAN: a constant output
    # The trivial predictor is the most frequent training target, scored like any model.
    from collections import Counter

    constant = list(Counter(map(tuple, data.train.targets)).most_common(1)[0][0])
    assert data.chance == data.score(data.test, [constant] * len(data.test), 0.0)["exact_match"]


def test_length_split_task():
    data = load({"split": "length"})
    assert (len(data.train), len(data.val), len(data.test)) == (15990, 1000, 3920)
    assert min(map(len, data.test.targets)) == 24 and max(map(len, data.train.targets)) <= 22


def test_subsets_are_deterministic_and_seed_dependent():
    a, b, c = load(size=200, seed=1), load(size=200, seed=1), load(size=200, seed=2)
    assert len(a.train) == 200
    assert a.train.sources == b.train.sources and a.train.targets == b.train.targets
    assert a.train.sources != c.train.sources
    bigger = load(size=400, seed=1)  # nested: same seed, more data contains the smaller set
    assert a.train.sources == bigger.train.sources[:200]


def test_val_test_and_vocab_independent_of_size_and_seed():
    runs = [load(size=None, seed=0), load(size=50, seed=3), load(size=1000, seed=7)]
    for r in runs[1:]:
        for split in ("val", "test"):
            x, y = getattr(runs[0], split), getattr(r, split)
            assert (x.sources, x.targets, x.references) == (y.sources, y.targets, y.references)
        assert r.src_vocab.itos == runs[0].src_vocab.itos
        assert r.tgt_vocab.itos == runs[0].tgt_vocab.itos


def test_train_size_too_large():
    with pytest.raises(PluginError, match="larger than the 15728"):
        load(size=15729)


def test_bad_split_name():
    with pytest.raises(PluginError, match="unknown SCAN split 'nope'"):
        load({"split": "nope"})


def test_scan_is_generated_once_per_process(monkeypatch):
    translation.clear_cache()
    calls = []
    real = scan.generate_pairs

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(scan, "generate_pairs", counting)
    load(size=100, seed=0)
    load(size=300, seed=5)
    load({"split": "length"}, size=100, seed=0)
    assert len(calls) == 1
    translation.clear_cache()


def test_each_load_returns_fresh_objects():
    a = load(size=10)
    a.train.sources[0].append(99)
    a.val.targets.clear()
    a.test.references[0] = "changed"
    b = load(size=10)
    assert 99 not in b.train.sources[0]
    assert len(b.val.targets) == 1000 and b.test.references[0] != "changed"


# --------------------------------------------------------------------------------------------
# Scoring


def test_scorer_perfect_and_wrong():
    data = load()
    val = data.val
    perfect = data.score(val, [list(t) for t in val.targets], 0.25)
    assert perfect["exact_match"] == 1.0 and perfect["token_accuracy"] == 1.0
    assert perfect["bleu"] == pytest.approx(100.0)
    assert perfect["loss"] == 0.25
    # drop the last action of every other prediction, and append EOS + junk (must be ignored)
    preds = [list(t[:-1]) if i % 2 else list(t) + [EOS, 5] for i, t in enumerate(val.targets)]
    half = data.score(val, preds, 1.0)
    assert half["exact_match"] == pytest.approx(0.5, abs=0.01)
    assert 0.5 < half["token_accuracy"] < 1.0
    assert 0 < half["bleu"] < 100
    empty = data.score(val, [[] for _ in val.targets], 2.0)
    assert empty["exact_match"] == 0.0 and empty["token_accuracy"] == 0.0 and empty["bleu"] == 0


# --------------------------------------------------------------------------------------------
# Natural-language data


DE = [
    "Ein Mann läuft über die Straße.", "Eine Frau liest ein Buch.", "Ein Hund spielt im Park.",
    "Zwei Kinder essen Eis.", "Ein Mann liest eine Zeitung.", "Eine Frau läuft im Park.",
]  # fmt: skip
EN = [
    "A man walks across the street.", "A woman reads a book.", "A dog plays in the park.",
    "Two children eat ice cream.", "A man reads a newspaper.", "A woman runs in the park.",
]  # fmt: skip


def write_lines(path, lines, gz=True):
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def multi30k_like(tmp_path):
    for lang, lines in (("de", DE), ("en", EN)):
        write_lines(tmp_path / f"train.{lang}.gz", lines * 5)
        write_lines(tmp_path / f"val.{lang}.gz", lines[:2])
        write_lines(tmp_path / f"test_2016_flickr.{lang}.gz", lines[2:5])
        write_lines(tmp_path / f"test_2017_flickr.{lang}", lines[5:], gz=False)
    return tmp_path


def test_parallel_text_directory(multi30k_like):
    data = load({"data": str(multi30k_like)})
    assert data.primary_metric == "bleu"
    assert (len(data.train), len(data.val), len(data.test)) == (30, 2, 3)
    assert data.perfect == 100.0 and 0.0 <= data.chance < 100.0
    assert data.test.references[0] == "a dog plays in the park ."
    assert data.src_vocab.decode(data.val.sources[1]) == "eine frau liest ein buch .".split()
    perfect = data.score(data.test, data.test.targets, 0.0)
    assert perfect["exact_match"] == 1.0 and perfect["bleu"] == pytest.approx(100.0)
    other = load({"data": str(multi30k_like), "test_split": "test_2017_flickr"})
    assert other.test.references == ["a woman runs in the park ."]
    reverse = load({"data": str(multi30k_like), "source_lang": "en", "target_lang": "de"})
    assert reverse.test.references[0] == "ein hund spielt im park ."


def test_parallel_text_min_freq_and_max_len(multi30k_like):
    write_lines(multi30k_like / "train.de.gz", DE * 5 + ["Ein seltenes Wort."])
    write_lines(multi30k_like / "train.en.gz", EN * 5 + ["A rare word."])
    data = load({"data": str(multi30k_like)})  # auto min_freq 2: the single-use words are <unk>
    assert "rare" not in data.tgt_vocab.stoi and "woman" in data.tgt_vocab.stoi
    assert "rare" in load({"data": str(multi30k_like), "min_freq": 1}).tgt_vocab.stoi
    short = load({"data": str(multi30k_like), "max_len": 6})
    assert len(short.train) < 31 and max(map(len, short.train.sources)) <= 6
    assert len(short.test) == 3  # max_len never touches validation or test


def test_parallel_text_errors(multi30k_like, tmp_path):
    with pytest.raises(PluginError, match="test split 'test_x' not found"):
        load({"data": str(multi30k_like), "test_split": "test_x"})
    with pytest.raises(PluginError, match=r"no train\.fr"):
        load({"data": str(multi30k_like), "target_lang": "fr"})
    write_lines(multi30k_like / "val.en.gz", EN[:3])
    with pytest.raises(PluginError, match="has 2 lines but val.en.gz has 3"):
        load({"data": str(multi30k_like)})
    with pytest.raises(PluginError, match="data path not found"):
        load({"data": str(tmp_path / "missing")})


def test_csv_file_with_columns(tmp_path):
    path = tmp_path / "pairs.csv"
    rows = ["de,en"] + [f'"{d}","{e}"' for d, e in zip(DE * 10, EN * 10)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    data = load({"data": str(path), "source_column": "de", "target_column": "en"})
    # no validation/test split: 10% each (capped) is held out with a fixed seed
    assert (len(data.train), len(data.val), len(data.test)) == (48, 6, 6)
    again = load({"data": str(path), "source_column": "de", "target_column": "en"}, 20, 9)
    assert again.val.references == data.val.references
    assert again.test.references == data.test.references
    with pytest.raises(PluginError, match="source column 'source' not found; columns are: de, en"):
        load({"data": str(path)})


def test_jsonl_translation_column(tmp_path):
    path = tmp_path / "train.jsonl"
    with path.open("w") as f:
        for d, e in zip(DE * 4, EN * 4):
            f.write(json.dumps({"translation": {"de": d, "en": e}}) + "\n")
    (tmp_path / "test.jsonl").write_text(
        json.dumps({"translation": {"de": DE[0], "en": EN[0]}}) + "\n"
    )
    data = load({"data": str(tmp_path)})  # a directory of train/test table files
    assert (len(data.train), len(data.val), len(data.test)) == (22, 2, 1)
    assert data.test.references == ["a man walks across the street ."]
    with pytest.raises(PluginError, match="no language 'fr'"):
        load({"data": str(tmp_path), "target_lang": "fr"})


def test_scan_format_directory(tmp_path):
    train = [("jump", "I_JUMP"), ("walk twice", "I_WALK I_WALK")] * 10
    (tmp_path / "tasks_train_mine.txt").write_text(
        "".join(f"IN: {c} OUT: {a}\n" for c, a in train)
    )
    (tmp_path / "tasks_test_mine.txt").write_text("IN: jump twice OUT: I_JUMP I_JUMP\n")
    data = load({"data": str(tmp_path), "split": "mine"})
    assert data.primary_metric == "exact_match"
    assert (len(data.train), len(data.val), len(data.test)) == (18, 2, 1)
    assert data.test.references == ["I_JUMP I_JUMP"]
    with pytest.raises(PluginError, match=r"unknown SCAN split 'simple' .*available: mine"):
        load({"data": str(tmp_path)})


def test_unreachable_hub_id_is_one_line_error():
    with pytest.raises(PluginError) as err:
        load({"data": "no-such-user/no-such-dataset"})
    assert "\n" not in str(err.value) and "no-such-user/no-such-dataset" in str(err.value)


def test_empty_given_split_is_an_error(multi30k_like):
    write_lines(multi30k_like / "val.de.gz", ["", ""])
    write_lines(multi30k_like / "val.en.gz", ["", ""])
    with pytest.raises(PluginError, match="the validation split has no usable pairs"):
        load({"data": str(multi30k_like)})
