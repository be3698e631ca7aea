"""From a request to runs: compatibility, run ids, parameter scoping, matrix files, bad input.

Bad input is checked through the real command: exit code 2, one ``error:`` line on stderr, and
no database file created.
"""

from __future__ import annotations

import json
import re

import pytest

from seqbench.experiment import matrixfile
from seqbench.api import PluginError
from seqbench.experiment.plan import RunSpec, plan

FAST = ["--max-steps", "1"]


@pytest.fixture
def reg(fresh_registry):
    return fresh_registry.registry()


def make(reg, models, tasks, sizes="16", seeds="0", m=(), t=(), training=None, file_data=None):
    """The matrix exactly as ``bench run`` builds it from its flags."""
    matrix = matrixfile.build_matrix(
        file_data=file_data or {}, models=models, tasks=tasks, train_sizes=sizes, seeds=seeds,
        model_params=tuple(m), task_params=tuple(t), training=training or {}, tuning={},
        all_models=list(reg.models), all_tasks=list(reg.tasks),
    )
    return plan(matrix, reg)


# --------------------------------------------------------------------------------------------
# Compatibility


def test_compatible_pairings_and_skips(reg):
    p = make(reg, "lstm,transformer,seq2seq-attention", "copy,classification",
             t=["copy.framing=seq2seq"])
    pairs = {(r.model, r.task, r.kind) for r in p.runs}
    assert pairs == {
        ("lstm", "copy", "seq2seq"),
        ("transformer", "copy", "seq2seq"),
        ("seq2seq-attention", "copy", "seq2seq"),
        ("lstm", "classification", "classification"),
        ("transformer", "classification", "classification"),
    }
    (skip,) = p.skipped
    assert (skip.model, skip.task) == ("seq2seq-attention", "classification")
    assert skip.reason == (
        "task 'classification' is classification; model 'seq2seq-attention' supports seq2seq"
    )


def test_default_copy_framing_is_aligned(reg):
    p = make(reg, "lstm,seq2seq-attention", "copy")
    assert [(r.model, r.kind) for r in p.runs] == [("lstm", "aligned")]
    assert [(s.model, s.task) for s in p.skipped] == [("seq2seq-attention", "copy")]


def test_matrix_expands_sizes_and_seeds(reg):
    p = make(reg, "lstm,transformer", "copy,classification", sizes="16,32,full", seeds="0-2")
    assert len(p.runs) == 2 * 2 * 3 * 3
    assert {r.train_size for r in p.runs} == {16, 32, None}
    assert {r.seed for r in p.runs} == {0, 1, 2}
    assert len({r.run_id for r in p.runs}) == len(p.runs)
    assert {r.matrix_id for r in p.runs} == {p.matrix_id}


def test_repeated_names_and_equal_sweeps_plan_once(reg):
    p = make(reg, "lstm,lstm", "copy", sizes="16,16")
    assert len(p.runs) == 1


# --------------------------------------------------------------------------------------------
# Run ids


def spec(**over) -> RunSpec:
    base = dict(
        model="lstm", task="copy", kind="aligned", train_size=16, seed=0,
        model_params={"hidden_size": 8, "dropout": 0.1},
        task_params={"T": 5, "framing": "aligned"},
        training={"lr": 0.001, "max_steps": 10},
    )
    return RunSpec(**{**base, **over})


def test_run_id_is_pinned():
    # The hash of the canonical configuration: stored results are matched by it, so a change
    # here would silently rerun every stored matrix.
    assert spec().run_id == "6079090b62aeae15"


@pytest.mark.parametrize(
    "change",
    [
        {"model": "gru"},
        {"task": "copy2"},
        {"train_size": 32},
        {"train_size": None},
        {"seed": 1},
        {"model_params": {"hidden_size": 9, "dropout": 0.1}},
        {"model_params": {"hidden_size": 8, "dropout": 0.2}},
        {"task_params": {"T": 6, "framing": "aligned"}},
        {"training": {"lr": 0.002, "max_steps": 10}},
        {"training": {"lr": 0.001, "max_steps": 11}},
    ],
)
def test_run_id_changes_with_any_config_change(change):
    assert spec(**change).run_id != spec().run_id


def test_run_id_ignores_what_does_not_change_the_result():
    assert spec(matrix_id="other", trial={"lr": 0.001}).run_id == spec().run_id
    reordered = spec(model_params={"dropout": 0.1, "hidden_size": 8})
    assert reordered.run_id == spec().run_id
    assert RunSpec.from_dict(json.loads(json.dumps(spec().to_dict()))).run_id == spec().run_id


def test_run_id_same_for_defaults_spelt_out_and_for_strings(reg):
    base = make(reg, "lstm", "copy", t=["T=5"])
    spelt = make(reg, "lstm", "copy", m=["hidden_size=128"], t=["T=5", "framing=aligned"],
                 training={"lr": 1e-3})
    typed = make(reg, "lstm", "copy", file_data={"task_params": {"copy": {"T": 5}}})
    assert base.runs[0].run_id == spelt.runs[0].run_id == typed.runs[0].run_id
    assert base.runs[0].run_id != make(reg, "lstm", "copy", t=["T=6"]).runs[0].run_id


def test_run_ids_stable_across_processes(reg, cli, tmp_path):
    """``--dry-run`` in another process (another hash seed) lists the very same run ids."""
    p = make(reg, "lstm,transformer,seq2seq-attention", "copy,classification",
             sizes="16,32", seeds="0,1", t=["copy.T=5"])
    db = tmp_path / "dry.sqlite"
    rc, out, err = cli(
        "run", "--models", "lstm,transformer,seq2seq-attention", "--tasks", "copy,classification",
        "--train-sizes", "16,32", "--seeds", "0,1", "-t", "copy.T=5", "--dry-run", "--db", db,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert rc == 0, err
    assert f"{len(p.runs)} planned runs" in out
    printed = set(re.findall(r"\b[0-9a-f]{16}\b", out))
    assert printed == {r.run_id for r in p.runs}
    assert "skipped seq2seq-attention x classification: task 'classification' is " in out
    assert "skipped seq2seq-attention x copy" in out  # copy is aligned by default
    assert not db.exists()


# --------------------------------------------------------------------------------------------
# Parameters and their scope


def test_scoped_model_param(reg):
    p = make(reg, "lstm,gru,transformer", "classification", m=["lstm.hidden_size=64"])
    by = {r.model: r.model_params for r in p.runs}
    assert by["lstm"]["hidden_size"] == 64
    assert by["gru"]["hidden_size"] == 128  # the default
    assert "hidden_size" not in by["transformer"]


def test_unscoped_model_param_goes_to_every_model_declaring_it(reg):
    p = make(reg, "lstm,gru,transformer", "classification", m=["hidden_size=64", "d_model=32"])
    by = {r.model: r.model_params for r in p.runs}
    assert by["lstm"]["hidden_size"] == by["gru"]["hidden_size"] == 64
    assert by["transformer"]["d_model"] == 32 and "hidden_size" not in by["transformer"]


def test_param_nobody_declares_is_an_error(reg):
    with pytest.raises(PluginError, match="no selected model has a parameter 'd_model'"):
        make(reg, "lstm", "copy", m=["d_model=32"])
    with pytest.raises(PluginError, match="model 'lstm' has no parameter 'd_model'"):
        make(reg, "lstm,transformer", "copy", m=["lstm.d_model=32"])
    with pytest.raises(PluginError, match="given for 'gru', which is not in this matrix"):
        make(reg, "lstm", "copy", m=["gru.hidden_size=32"])


def test_values_are_coerced_to_the_declared_type(reg):
    (r,) = make(reg, "lstm", "copy", m=["dropout=0", "hidden_size=64"], t=["T=7"]).runs
    assert r.model_params["dropout"] == 0.0 and isinstance(r.model_params["dropout"], float)
    assert r.model_params["hidden_size"] == 64 and isinstance(r.model_params["hidden_size"], int)
    assert r.task_params["T"] == 7
    with pytest.raises(PluginError, match="parameter 'hidden_size': '1.5' is not a valid int"):
        make(reg, "lstm", "copy", m=["hidden_size=1.5"])


# --------------------------------------------------------------------------------------------
# Matrix files

MATRIX = """
models = ["lstm", "transformer"]
tasks = ["copy"]
train_sizes = [16, "full"]
seeds = [0, 1]

[training]
max_steps = 5
lr = [1e-3, 3e-3]

[model_params]
dropout = 0.0
[model_params.lstm]
hidden_size = [16, 32]

[task_params.copy]
T = [5, 10]
"""


def test_matrix_file_sweeps_lists(reg, tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(MATRIX)
    data = matrixfile.read(path)
    assert data["train_sizes"] == [16, None]
    p = make(reg, None, None, sizes=None, seeds=None, file_data=data)
    # lstm: 2 hidden x 2 lr x 2 T x 2 sizes x 2 seeds; transformer: no hidden sweep
    assert sum(r.model == "lstm" for r in p.runs) == 32
    assert sum(r.model == "transformer" for r in p.runs) == 16
    lstm = [r for r in p.runs if r.model == "lstm"]
    swept = {(r.model_params["hidden_size"], r.training["lr"], r.task_params["T"]) for r in lstm}
    assert swept == {(h, lr, T) for h in (16, 32) for lr in (1e-3, 3e-3) for T in (5, 10)}
    assert all(r.model_params["dropout"] == 0.0 for r in p.runs)
    assert all(r.training["max_steps"] == 5 for r in p.runs)
    assert {r.trial["lr"] for r in p.runs} == {1e-3, 3e-3}  # the swept knob, for the analysis


def test_command_line_overrides_the_file(reg, tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(MATRIX)
    p = make(reg, "lstm", None, sizes="16", seeds="3", m=["lstm.hidden_size=8"],
             training={"lr": 0.01}, file_data=matrixfile.read(path))
    assert {r.model for r in p.runs} == {"lstm"}
    assert {(r.model_params["hidden_size"], r.training["lr"], r.seed, r.train_size)
            for r in p.runs} == {(8, 0.01, 3, 16)}
    assert len(p.runs) == 2  # T is still swept by the file


def test_matrix_file_problems(tmp_path):
    def read(text):
        path = tmp_path / "bad.toml"
        path.write_text(text)
        return matrixfile.read(path)

    with pytest.raises(PluginError, match="is not valid TOML"):
        read('models = ["lstm"')
    with pytest.raises(PluginError, match="unknown key 'modles'.*did you mean 'models'"):
        read('modles = ["lstm"]')
    with pytest.raises(PluginError, match="unknown training key 'learning_rate'"):
        read("[training]\nlearning_rate = 0.1\n")
    with pytest.raises(PluginError, match="'seeds' must be a list"):
        read("seeds = 3")
    with pytest.raises(PluginError, match=r"\[training\] must be a table"):
        read("training = 3")
    with pytest.raises(PluginError, match="training size 1.5"):
        read("train_sizes = [1.5]")
    with pytest.raises(PluginError, match="matrix file not found"):
        matrixfile.read(tmp_path / "missing.toml")


def test_seed_and_size_syntax():
    assert matrixfile.parse_seeds("0-2,7") == [0, 1, 2, 7]
    assert matrixfile.parse_seeds(" 4 ") == [4]
    assert [matrixfile.size_value(v) for v in ("16", "full", 32, 64.0)] == [16, None, 32, 64]
    for bad in ("0", "-5", "abc", True, 2.5):
        with pytest.raises(PluginError):
            matrixfile.size_value(bad)
    with pytest.raises(PluginError, match="write NAME=VALUE"):
        matrixfile.parse_assignments(("hidden_size",), "--model-param")
    assert matrixfile.parse_assignments(("lstm.hidden_size=64", "T=5", "copy.T = 6"), "x") == {
        "*": {"T": "5"}, "lstm": {"hidden_size": "64"}, "copy": {"T": "6"},
    }


# --------------------------------------------------------------------------------------------
# Bad input through the real command

BAD = [
    (["--models", "lstn"],
     "error: unknown model 'lstn' (available: gru, lstm, rnn, seq2seq-attention, transformer); "
     "did you mean 'lstm'?"),
    (["--tasks", "cpy"], "error: unknown task 'cpy' (available: classification, copy, "
     "translation); did you mean 'copy'?"),
    (["--train-sizes", "0"], "training size '0' is not a positive integer"),
    (["--train-sizes", "abc"], "training size 'abc' is not a positive integer"),
    (["--train-sizes", "-5"], "training size '-5' is not a positive integer"),
    (["--seeds", "x"], "seeds: 'x' is not a non-negative integer"),
    (["--seeds", "-1"], "is not a non-negative integer"),
    (["--seeds", "1,1"], "seeds repeat"),
    (["-m", "hidden=3"], "no selected model has a parameter 'hidden'"),
    (["-m", "lstm.hidden_size=abc"], "parameter 'hidden_size': 'abc' is not a valid int"),
    (["-m", "lstm.dropout=-1"], "below the minimum"),
    (["-t", "copy.foo=1"], "task 'copy' has no parameter 'foo'"),
    (["-t", "copy.framing=sideways"], "'sideways' is not one of aligned, seq2seq"),
    (["-t", "T"], "write NAME=VALUE"),
    (["--max-steps", "0"], "parameter 'max_steps': 0 is below the minimum 1"),
    (["--train-sizes", "20000"],
     "error: training size 20000 is larger than task 'copy''s 10000 training examples"),
    (["--executor", "nope"], "unknown executor 'nope'"),
    (["--models", "seq2seq-attention"], "no model in this matrix supports any of its tasks"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(cli, tmp_path, args, message):
    db = tmp_path / "sub" / "x.sqlite"
    rc, out, err = cli("run", "--models", "lstm", "--tasks", "copy", *FAST, "--db", db, *args)
    assert rc == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert not db.exists() and not db.parent.exists()


TOML_BAD = [
    ('models = ["lstm"', "is not valid TOML"),
    ('modles = ["lstm"]', "unknown key 'modles' (available: "),
    ("[training]\nlearning_rate = 0.1\n", "unknown training key 'learning_rate'"),
    ('seeds = ["a"]', "seed 'a' is not a non-negative integer"),
    ("[model_params]\nhidden_size = []\n", "an empty list sweeps nothing"),
    ('[training]\nlr = "fast"\n', "parameter 'lr': 'fast' is not a valid float"),
]


@pytest.mark.parametrize("text,message", TOML_BAD, ids=[m for _, m in TOML_BAD])
def test_bad_matrix_file_is_one_line_and_writes_nothing(cli, tmp_path, text, message):
    path = tmp_path / "m.toml"
    path.write_text(text)
    db = tmp_path / "x.sqlite"
    rc, out, err = cli("run", "--models", "lstm", "--tasks", "copy", "--matrix", path, "--db", db)
    assert rc == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert not db.exists()


def test_bad_option_type_is_a_usage_error(cli, tmp_path):
    db = tmp_path / "x.sqlite"
    rc, out, err = cli("run", "--models", "lstm", "--tasks", "copy", "--lr", "fast", "--db", db)
    assert rc == 2
    assert "Invalid value for '--lr': 'fast' is not a valid float" in err
    assert not db.exists()


def test_dry_run_writes_nothing(cli, tmp_path):
    db = tmp_path / "x.sqlite"
    rc, out, err = cli("run", "--models", "lstm", "--tasks", "copy,classification",
                       "--train-sizes", "16,32", "--dry-run", "--db", db)
    assert rc == 0, err
    assert "4 planned runs" in out
    assert not db.exists()


def test_param_coercion_edges():
    from seqbench.api import Param

    assert Param(3).coerce("n", "4") == 4 and Param(3).coerce("n", 4.0) == 4
    assert Param(0.1).coerce("p", "1e-2") == 0.01 and Param(0.1).coerce("p", 1) == 1.0
    assert Param(False).coerce("b", "yes") is True
    assert Param("x").coerce("s", 5) == "5"
    for param, value in [(Param(3), True), (Param(0.1), False), (Param(3), 1.5),
                         (Param(False), 1), (Param(False), "maybe")]:
        with pytest.raises(PluginError, match="is not a valid"):
            param.coerce("v", value)
    for value in ("nan", "inf", float("-inf")):  # nan would pass any minimum check
        with pytest.raises(PluginError, match="is not a finite number"):
            Param(0.1, minimum=0.0).coerce("lr", value)
    with pytest.raises(PluginError, match="above the maximum 5"):
        Param(3, maximum=5).coerce("n", "6")
