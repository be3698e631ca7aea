"""A third-party plugin package for real: ``examples/seqbench-example`` installed with pip.

The package is pip-installed into a temporary folder (``--target``: no virtual environment to
build) that goes on the ``PYTHONPATH`` of the real ``bench`` command (for training, on this
process's path, which its local worker starts with), so seqbench discovers it through its
installed ``*.dist-info`` entry points exactly as after ``pip install seqbench-example``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "seqbench-example"
SOURCE = "seqbench-example 0.1.0"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("third-party")
    src = tmp / "src"  # pip builds in place: build from a copy, never litter the repository
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-compile", "--disable-pip-version-check", "--no-index", "--target", str(target),
         str(src)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (target / "seqbench_example.py").exists()
    return target


@pytest.fixture
def example(monkeypatch):
    """The example module, imported in this process (its functions are plain Python)."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    import seqbench_example

    return seqbench_example


def test_installed_plugin_is_discovered(cli, installed):
    rc, out, err = cli("plugins", "--json", pythonpath=[installed])
    assert rc == 0, err
    data = json.loads(out)
    assert data["broken"] == []
    models = {m["name"]: m for m in data["models"]}
    tasks = {t["name"]: t for t in data["tasks"]}
    assert models["bag-of-embeddings"]["source"] == SOURCE
    assert models["bag-of-embeddings"]["kinds"] == ["classification", "aligned"]
    assert tasks["parity"]["source"] == SOURCE
    assert tasks["parity"]["kind"] == "classification"
    assert models["lstm"]["source"] == "built-in"  # the built-ins are all still there
    builtin = {"rnn", "lstm", "gru", "seq2seq-attention", "transformer", "cnn", "bag"}
    assert set(models) == builtin | {"bag-of-embeddings"} and len(tasks) == 4


def test_installed_plugin_trains_with_builtins(installed, on_path, tmp_path):
    """The example model and task run next to built-ins: parity x {bag, lstm} and the example
    model on the built-in classification task, planned in this process and trained by a local
    worker, each finding the plugin on its path."""
    from conftest import bench_here

    on_path(installed)  # the worker, forked from the fork server, is handed this sys.path too
    db = tmp_path / "third.sqlite"
    rc, out, err = bench_here(
        "run", "--models", "bag-of-embeddings,lstm", "--tasks", "parity,classification",
        "--train-sizes", "32", "--seeds", "0", "--max-steps", "10", "--val-every", "5",
        "--workers", "1", "--db", db,
    )
    assert rc == 0, err[-3000:]
    assert "4 done, 0 diverged, 0 failed" in out
    rc, out, err = bench_here("results", "--db", db, "--json")
    assert rc == 0, err
    runs = {(r["model"], r["task"]): r for r in json.loads(out)}
    assert set(runs) == {
        ("bag-of-embeddings", "parity"), ("lstm", "parity"),
        ("bag-of-embeddings", "classification"), ("lstm", "classification"),
    }
    for r in runs.values():
        assert r["status"] == "done"
        assert r["primary_metric"] == "accuracy" and 0 <= r["test"]["accuracy"] <= 1
    bag = runs[("bag-of-embeddings", "parity")]
    assert bag["param_count"] == 6 * 32 + 32 * 2 + 2  # embeddings (4 specials, 0, 1), linear
    assert bag["params"]["task"] == {"length": 16, "pool_size": 2000, "val_size": 200,
                                     "test_size": 500}


def test_example_data_through_the_cli(cli, installed):
    rc, out, err = cli("data", "parity", "--limit", "5", "--json", "-t", "length=12",
                       pythonpath=[installed])
    assert rc == 0, err
    for row in json.loads(out):
        bits = row["source"].split()
        assert len(bits) == 12 and set(bits) <= {"0", "1"}
        assert row["label"] == ("odd" if bits.count("1") % 2 else "even")


def test_too_large_training_size_is_refused(cli, installed, tmp_path):
    db = tmp_path / "x.sqlite"
    rc, out, err = cli("run", "--models", "lstm", "--tasks", "parity", "--train-sizes", "5000",
                       "--db", db, pythonpath=[installed])
    assert rc == 2
    assert "training size 5000 is larger than task 'parity''s 2000 training examples" in err
    assert not db.exists()


# --------------------------------------------------------------------------------------------
# The example's own logic, in process


def test_parity_splits(example):
    params = {"length": 10, "pool_size": 300, "val_size": 50, "test_size": 80}
    a = example.load_parity(params, 64, seed=0)
    b = example.load_parity(params, 128, seed=1)
    full = example.load_parity(params, None, seed=0)
    assert (len(a.train), len(a.val), len(a.test), len(full.train)) == (64, 50, 80, 300)
    # validation and test depend on neither the seed nor the training size
    assert a.val.sources == b.val.sources and a.test.sources == b.test.sources
    # no string is in two splits; labels are the parity of the 1s
    as_text = lambda split: {tuple(s) for s in split.sources}  # noqa: E731
    assert not as_text(full.train) & as_text(full.test)
    assert not as_text(full.train) & as_text(full.val)
    one = a.src_vocab.stoi["1"]
    for src, label in zip(full.train.sources, full.train.targets):
        assert label == src.count(one) % 2
    # the same seed gives the same subset, and a bigger one contains it
    again = example.load_parity(params, 64, seed=0)
    bigger = example.load_parity(params, 128, seed=0)
    assert again.train.sources == a.train.sources
    assert as_text(a.train) <= as_text(bigger.train)
    assert a.score(a.test, list(a.test.targets), 0.5) == {"accuracy": 1.0, "loss": 0.5}


def test_parity_refuses_impossible_sizes(example):
    from seqbench.api import PluginError

    with pytest.raises(PluginError, match="only 16 bit strings of length 4"):
        example.load_parity({"length": 4, "pool_size": 10, "val_size": 5, "test_size": 5}, None, 0)
    with pytest.raises(PluginError, match="parameter 'length'"):
        example.load_parity({"length": "many"}, None, 0)


def test_bag_of_embeddings_shapes_and_causality(example):
    import torch

    from seqbench.api import TaskShape

    model = example.build_bag_of_embeddings(
        "classification", TaskShape("classification", src_vocab_size=6, num_classes=3),
        {"embed_size": 4},
    )
    src = torch.tensor([[4, 5, 4], [5, 0, 0]])  # the second row is padded
    out = model(src, torch.tensor([3, 1]))
    assert out.shape == (2, 3)
    # padding is ignored: the padded row equals the unpadded one-token row
    assert torch.allclose(out[1], model(torch.tensor([[5]]), torch.tensor([1]))[0])

    aligned = example.build_bag_of_embeddings(
        "aligned", TaskShape("aligned", src_vocab_size=6, tgt_vocab_size=7), {"embed_size": 4}
    )
    x = torch.tensor([[4, 5, 4, 5]])
    y = aligned(x, torch.tensor([4]))
    assert y.shape == (1, 4, 7)
    changed = aligned(torch.tensor([[4, 5, 5, 4]]), torch.tensor([4]))
    assert torch.allclose(y[0, :2], changed[0, :2])  # outputs before the change are unchanged
    assert not torch.allclose(y[0, 2], changed[0, 2])
