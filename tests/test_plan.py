"""From a request to runs: compatibility, run ids, parameter scoping, matrix files, bad input.

Bad input is checked through the real command: exit code 2, one ``error:`` line on stderr, and
no database file created.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

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


def test_repeated_names_are_an_error_and_equal_sweeps_plan_once(reg):
    # A repeat on an axis is a typo, never a request (as repeated seeds always were): issue 11.
    for models, tasks, sizes, seeds in (("lstm,lstm", "copy", "16", "0"),
                                        ("lstm", "copy,copy", "16", "0"),
                                        ("lstm", "copy", "16,16", "0"),
                                        ("lstm", "copy", "full,all", "0"),
                                        ("lstm", "copy", "16", "0,0")):
        with pytest.raises(PluginError, match="repeat"):
            make(reg, models, tasks, sizes=sizes, seeds=seeds)
    p = make(reg, "lstm", "copy", training={"lr": [0.001, 1e-3]})  # one value, twice
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
     "error: unknown model 'lstn' (available: bag, cnn, gru, lstm, rnn, seq2seq-attention, "
     "transformer); did you mean 'lstm'?"),
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
    ('seeds = ["a"]', "'seeds' must be a list of integer seeds, not 'a'"),
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


# --------------------------------------------------------------------------------------------
# The tuning protocol: equal trials in each model's own space, tuning seeds apart, edges


def tuned(reg, models="lstm,transformer", tasks="copy", sizes="64", seeds="0-2", tuning=None,
          m=(), training=None, t=()):
    matrix = matrixfile.build_matrix(
        file_data={}, models=models, tasks=tasks, train_sizes=sizes, seeds=seeds,
        model_params=tuple(m), task_params=tuple(t), training=training or {},
        tuning={"trials": 8, **(tuning or {})}, all_models=list(reg.models),
        all_tasks=list(reg.tasks),
    )
    return plan(matrix, reg)


def by_model(runs) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in runs:
        out.setdefault(r.model, []).append(r)
    return out


def test_every_model_gets_the_same_number_of_trials_on_tuning_seeds_only(reg):
    p = tuned(reg, "lstm,gru,rnn,transformer", sizes="64,128", tuning={"seeds": 2})
    assert p.tuning.seeds == (10_000, 10_001)
    counts = {}
    for r in p.runs:
        counts[(r.model, r.train_size)] = counts.get((r.model, r.train_size), 0) + 1
        assert r.trial["stage"] == "tune" and r.trial["round"] == 0
    assert set(counts.values()) == {8 * 2}, counts  # 8 trials x 2 tuning seeds, every model
    assert len(counts) == 4 * 2
    assert {r.seed for r in p.runs} == {10_000, 10_001}
    assert not {r.seed for r in p.runs} & set(p.seeds)


def test_explicit_tuning_seeds_must_not_be_evaluation_seeds(reg):
    p = tuned(reg, "lstm", tuning={"seeds": [7, 8]})
    assert {r.seed for r in p.runs} == {7, 8}
    with pytest.raises(PluginError, match=r"\[tuning\] seed 2 is also an evaluation seed"):
        tuned(reg, "lstm", tuning={"seeds": [2, 9]})
    with pytest.raises(PluginError, match=r"\[tuning\] seed 10000 is also an evaluation seed"):
        tuned(reg, "lstm", seeds="0,10000", tuning={"seeds": 1})
    with pytest.raises(PluginError, match="is not a list of integers from 0"):
        tuned(reg, "lstm", tuning={"seeds": [-1]})


def test_sobol_trials_are_deterministic_and_an_extension_continues_the_sequence(reg):
    a = tuned(reg, sizes="64")
    b = tuned(reg, sizes="64")
    assert [r.run_id for r in a.runs] == [r.run_id for r in b.runs]
    fewer = tuned(reg, sizes="64", tuning={"trials": 4})
    assert {r.run_id for r in fewer.runs} < {r.run_id for r in a.runs}  # a prefix of the draw
    # Every model tries the same learning rates (the lr is the shared first column).
    lrs = {m: sorted(r.training["lr"] for r in rs) for m, rs in by_model(a.runs).items()}
    assert lrs["lstm"] == lrs["transformer"] and len(set(lrs["lstm"])) == 8
    # A model's trials do not depend on which other models are in the matrix.
    alone = tuned(reg, "lstm", sizes="64")
    assert {r.run_id for r in alone.runs} == {r.run_id for r in a.runs if r.model == "lstm"}


def test_each_model_draws_in_its_own_space_and_values_land_where_they_belong(reg):
    p = tuned(reg, "lstm,transformer", tuning={"trials": 16})
    runs = by_model(p.runs)
    t = runs["transformer"]
    for key in ("num_layers", "n_heads", "dropout"):
        assert len({r.model_params[key] for r in t}) > 1, key
    assert {r.model_params["n_heads"] for r in t} <= {1, 2, 4}
    assert {r.model_params["num_layers"] for r in t} == {1, 2, 3, 4}
    assert all(0.0 <= r.model_params["dropout"] <= 0.3 for r in t)
    # warm-up is the recipe's, in steps, the same for every model: never tuned for one
    assert {r.training["warmup_steps"] for r in p.runs} == {100}
    assert all("warmup" not in r.trial and "warmup" not in r.model_params for r in p.runs)
    lstm = runs["lstm"]
    assert {r.model_params["num_layers"] for r in lstm} == {1, 2, 3}
    assert len({r.model_params["dropout"] for r in lstm}) > 1
    assert set(lstm[0].trial) == {"lr", "num_layers", "dropout", "stage", "round"}
    for r in p.runs:
        assert 1e-4 <= r.training["lr"] <= 3e-2
        assert r.trial["lr"] == r.training["lr"]
    # Log-uniform: as many trials in each decade-sized band, not bunched at the top.
    lrs = sorted(r.training["lr"] for r in lstm)
    assert sum(lr < 1e-3 for lr in lrs) >= 4 and sum(lr > 3e-3 for lr in lrs) >= 4


def test_keys_the_matrix_sets_are_pinned_and_heads_divide_the_width(reg):
    p = tuned(reg, "lstm,transformer", m=["transformer.n_heads=2", "dropout=0.0"])
    for r in p.runs:
        assert r.model_params["dropout"] == 0.0 and "dropout" not in r.trial
    t = by_model(p.runs)["transformer"]
    assert {r.model_params["n_heads"] for r in t} == {2}
    assert p.searches[-1].pinned == ("n_heads", "dropout")
    # Without a parameter budget the width is the given one: only heads dividing it are drawn.
    p = tuned(reg, "transformer", m=["d_model=6"], tuning={"trials": 16})
    assert {r.model_params["n_heads"] for r in p.runs} == {1, 2}
    # With one, the width is fitted in multiples of the heads, so every choice stays.
    p = tuned(reg, "transformer", m=["d_model=6"], tuning={"trials": 16},
              training={"param_budget": 20000})
    assert {r.model_params["n_heads"] for r in p.runs} == {1, 2, 4}
    with pytest.raises(PluginError, match="the learning rate is tuned"):
        tuned(reg, "lstm", training={"lr": 1e-3})


def test_the_old_lr_grid_still_plans_a_fixed_grid_on_a_tuning_seed(reg, tmp_path):
    path = tmp_path / "old.toml"
    path.write_text('models = ["lstm", "transformer"]\ntasks = ["copy"]\nseeds = [0, 1, 2]\n'
                    "train_sizes = [64]\n[tuning]\nlr = [1e-3, 3e-3, 1e-2]\nseeds = 1\n"
                    'per = "size"\n')
    p = make(reg, None, None, sizes=None, seeds=None, file_data=matrixfile.read(path))
    assert p.tuning.grid == (1e-3, 3e-3, 1e-2) and p.tuning.extend == 0
    for model, runs in by_model(p.runs).items():
        assert sorted(r.training["lr"] for r in runs) == [1e-3, 3e-3, 1e-2], model
        assert {r.seed for r in runs} == {10_000}
        assert all(set(r.trial) == {"lr", "stage", "round"} for r in runs)
    t = by_model(p.runs)["transformer"][0]
    assert t.model_params["num_layers"] == 2 and t.training["warmup_steps"] == 100  # defaults


TUNING_BAD = [
    ({"seeds": 1}, "[tuning] needs trials = N"),
    ({"trials": 1}, "parameter 'trials': 1 is below the minimum 2"),
    ({"trails": 8}, "[tuning] has no parameter 'trails'"),
    ({"trials": 8, "lr": [1e-3, 1e-2]}, "[tuning] trials goes with each model's own search space"),
    ({"lr": [1e-3]}, "lr must be a list of at least two"),
    ({"trials": 8, "per": "cell"}, "'cell' is not one of size, task"),
    ({"trials": 8, "seeds": 0}, "at least one tuning seed"),
]


@pytest.mark.parametrize("table,message", TUNING_BAD, ids=[m for _, m in TUNING_BAD])
def test_bad_tuning_tables(reg, table, message):
    matrix = matrixfile.build_matrix({"tuning": table}, "lstm", "copy", "64", "0", (), (), {}, {},
                                     list(reg.models), list(reg.tasks))
    with pytest.raises(PluginError) as exc:
        plan(matrix, reg)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_flags_replace_the_files_tuning_form(reg):
    grid = {"tuning": {"lr": [1e-3, 1e-2], "seeds": 1}}
    m = matrixfile.build_matrix(grid, "lstm", "copy", "64", "0", (), (), {}, {"trials": 4},
                                list(reg.models), list(reg.tasks))
    assert m.tuning == {"seeds": 1, "trials": 4}
    drawn = {"tuning": {"trials": 8, "extend": 1}}
    m = matrixfile.build_matrix(drawn, "lstm", "copy", "64", "0", (), (), {},
                                {"lr": ["1e-3", "1e-2"]}, list(reg.models), list(reg.tasks))
    assert m.tuning == {"lr": ["1e-3", "1e-2"]}


def test_search_space_declarations_are_checked():
    from seqbench.api import Choice, ModelPlugin, Param, Range

    def model(space):
        return ModelPlugin("m", "a model", ("classification",),
                           {"hidden_size": Param(8), "dropout": Param(0.1, minimum=0.0)},
                           build=lambda *a: None, search_space=space)

    assert model(None).space == {"lr": Range(1e-4, 3e-2, log=True)}  # third-party default
    assert model({"lr": Range(1e-3, 1e-1, log=True), "hidden_size": Choice((8, 16))}).space
    for space, message in [
        ({"depth": Range(1, 3, integer=True)}, "neither a declared default nor a tunable"),
        ({"hidden_size": Range(8, 64)}, "is an int; use Range(..., integer=True)"),
        ({"dropout": Range(-0.5, 0.5)}, "below the minimum"),
        ({"hidden_size": Choice(("big",))}, "'big' is not a valid int"),
        ({"lr": [1e-3, 1e-2]}, "must be a Range or a Choice"),
        ({}, "non-empty dict"),
    ]:
        with pytest.raises(PluginError, match=re.escape(message)):
            model(space)
    for args, message in [((1e-2, 1e-3), "low must be below high"),
                          ((0.0, 1.0, True), "low must be positive"),
                          ((1.5, 3, False, True), "bounds must be whole")]:
        with pytest.raises(PluginError, match=message):
            Range(*args)
    with pytest.raises(PluginError, match="non-empty"):
        Choice(())
    assert Range(1e-4, 1e-2, log=True).at(0.5) == 1e-3
    assert [Range(1, 3, integer=True).at(u) for u in (0.0, 0.34, 0.99)] == [1, 2, 3]


def test_builtin_spaces_cover_what_each_model_needs(reg):
    for name in ("rnn", "lstm", "gru", "seq2seq-attention"):
        assert set(reg.model(name).space) == {"lr", "num_layers", "dropout"}, name
    assert set(reg.model("transformer").space) == {"lr", "num_layers", "n_heads", "dropout"}
    for m in reg.models.values():
        lr = m.space["lr"]
        assert lr.log and lr.low <= 1e-4 and lr.high >= 3e-2, m.name  # wide enough to bracket


# ---- edge extension, decided on synthetic records


def _records(specs, score):
    """Stored records for ``specs``, each scoring ``score(spec)`` on validation."""
    from seqbench.records import RunRecord

    return {s.run_id: RunRecord(run_id=s.run_id, model=s.model, task=s.task, kind=s.kind,
                                seed=s.seed, train_size=s.train_size, status="done",
                                best_val=score(s), higher_is_better=True, config=s.config(),
                                trial=s.trial)
            for s in specs}


def test_lr_edge_rule():
    from seqbench.experiment.rounds import lr_edge

    tried = [2e-4, 1e-3, 5e-3, 2.8e-2]
    assert lr_edge(2.8e-2, tried, 1e-4, 3e-2) == "high"
    assert lr_edge(2e-4, tried, 1e-4, 3e-2) == "low"
    assert lr_edge(1e-3, tried, 1e-4, 3e-2) is None
    # The highest tried but far from the top: the range is not what limited it.
    assert lr_edge(1e-3, [2e-4, 1e-3], 1e-4, 3e-2) is None
    # Near the top but a higher trial did worse: the optimum is bracketed.
    assert lr_edge(2.5e-2, [2.5e-2, 2.9e-2], 1e-4, 3e-2) is None


def test_an_edge_extends_that_models_range_and_every_model_of_the_cell_gets_equal_trials(reg):
    p = tuned(reg, "lstm,transformer", sizes="64,128", tuning={"trials": 8, "extend": 2})
    tuner = p.tuner()
    # lstm at n=64 prefers ever larger learning rates; everything else peaks at 3e-3.
    def score(s):
        if s.model == "lstm" and s.train_size == 64:
            return s.training["lr"]
        return -abs(math.log(s.training["lr"] / 3e-3))

    records = _records(tuner.first, score)
    ext = tuner.extension(records)
    assert tuner.round == 1 and ext.runs
    assert len(ext.notes) == 1 and "lstm on copy n=64: selected lr" in ext.notes[0]
    assert "high edge of 0.0001 .. 0.03" in ext.notes[0] and "0.03 .. 0.3" in ext.notes[0]
    assert {r.train_size for r in ext.runs} == {64}  # only the cell that hit an edge
    per_model = by_model(ext.runs)
    assert len(per_model["lstm"]) == len(per_model["transformer"]) == p.tuning.extend_trials
    assert all(3e-2 <= r.training["lr"] <= 0.3 for r in per_model["lstm"])
    assert all(r.trial["round"] == 1 and r.trial["lr_range"] == [0.03, 0.3]
               for r in per_model["lstm"])
    # The transformer was not at an edge: its extra trials continue its own range.
    assert all(1e-4 <= r.training["lr"] <= 3e-2 for r in per_model["transformer"])
    assert all(r.trial["lr_range"] == [1e-4, 3e-2] for r in per_model["transformer"])
    assert {r.seed for r in ext.runs} == {10_000}

    # Still at the edge: one more round, then the bound stops it.
    records |= _records(ext.runs, score)
    ext2 = tuner.extension(records)
    assert tuner.round == 2 and all(3e-1 <= r.training["lr"] <= 3.0
                                    for r in by_model(ext2.runs)["lstm"])
    records |= _records(ext2.runs, score)
    assert tuner.extension(records).runs == [] and tuner.round == 2

    final = tuner.evaluation(records)
    assert any("still at the high edge" in n for n in final.notes)
    eval_seeds = set(p.seeds)
    assert {r.seed for r in final.runs} == eval_seeds  # every evaluation seed, no tuning seed
    trials = {(r.model, r.train_size): r.trial for r in final.runs}
    lstm64 = trials[("lstm", 64)]
    assert lstm64["stage"] == "eval" and lstm64["extended"] == ["high", "high"]
    assert lstm64["lr_range"] == [1e-4, 3.0] and lstm64["lr_edge"] == "high"
    assert lstm64["lr"] > 0.3
    # Equal budgets in the extended cell, recorded with the selection.
    assert lstm64["trials"] == trials[("transformer", 64)]["trials"] == 8 + 2 * 4
    assert trials[("lstm", 128)]["trials"] == 8 and "extended" not in trials[("lstm", 128)]
    assert abs(math.log(trials[("lstm", 128)]["lr"] / 3e-3)) < 1.0
    tune_ids = {s.run_id for s in tuner.first} | {r.run_id for r in ext.runs + ext2.runs}
    assert not tune_ids & {r.run_id for r in final.runs}


def test_selection_uses_tuning_runs_only(reg):
    from seqbench.experiment.tuning import chosen_trials, evaluated, select_trial, spec_key

    p = tuned(reg, "lstm", tuning={"trials": 2, "extend": 0})
    tuner = p.tuner()
    good, bad = sorted(tuner.first, key=lambda s: s.training["lr"])
    records = _records(tuner.first, lambda s: 0.9 if s is good else 0.5)
    final = tuner.evaluation(records)
    assert {r.training["lr"] for r in final.runs} == {good.training["lr"]}
    # Evaluation runs of the other trial scoring higher never change the choice.
    rivals = [replace(bad, seed=seed, trial={**bad.trial, "stage": "eval"}) for seed in p.seeds]
    every = list(records.values()) + list(_records(final.runs, lambda s: 0.1).values()) \
        + list(_records(rivals, lambda s: 1.0).values())
    assert select_trial(every, True) == spec_key(good)
    assert chosen_trials(every) == {64: spec_key(good)}
    assert {r.seed for r in evaluated(every)} == set(p.seeds)


def test_a_matrix_can_override_one_models_space_and_the_override_is_checked(reg, tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('[tuning]\ntrials = 8\n[tuning.space.transformer]\nn_heads = [1, 2]\n'
                    "lr = {low = 1e-3, high = 1e-1, log = true}\n")
    p = make(reg, "lstm,transformer", "copy", seeds="0", file_data=matrixfile.read(path))
    t = by_model(p.runs)["transformer"]
    assert {r.model_params["n_heads"] for r in t} == {1, 2}
    assert all(1e-3 <= r.training["lr"] <= 1e-1 for r in t)
    assert all(r.training["lr"] <= 3e-2 for r in by_model(p.runs)["lstm"])  # untouched
    for table, message in [
        ({"space": {"transformr": {"n_heads": [1]}}}, "names a model not in this matrix"),
        ({"space": {"transformer": {"n_heads": [3.5]}}}, "3.5 is not a valid int"),
        ({"space": {"transformer": {"heads": [1]}}}, "neither a declared default"),
        ({"space": {"transformer": {"lr": {"low": 1e-3}}}}, "a range is {low = .., high"),
        ({"space": {"transformer": {"lr": {"low": 1e-1, "high": 1e-3}}}}, "low must be below"),
        ({"space": {"transformer": {"warmup": {"low": 0.0, "high": 0.9}}}}, "above the maximum"),
        ({"space": {"n_heads": [1]}}, "one table per model"),
        ({"lr": [1e-3, 1e-2], "space": {"transformer": {"n_heads": [1]}}}, "give one or the other"),
    ]:
        matrix = matrixfile.build_matrix({"tuning": {"trials": 4, **table}}, "transformer",
                                         "copy", "64", "0", (), (), {}, {}, list(reg.models),
                                         list(reg.tasks))
        if "lr" in table:
            matrix.tuning.pop("trials")
        with pytest.raises(PluginError, match=re.escape(message)):
            plan(matrix, reg)


def test_legacy_records_without_a_stage_select_on_the_seeds_every_trial_ran():
    from seqbench.experiment.tuning import select_trial
    from seqbench.records import RunRecord

    def rec(run_id, lr, seed, best_val, status="done"):
        return RunRecord(run_id=run_id, model="lstm", task="copy", kind="aligned",
                         train_size=64, seed=seed, status=status, best_val=best_val,
                         trial={"lr": lr})

    # lr 1e-2 won on the shared seed 0; its later seeds scoring worse do not switch the choice.
    more = [rec("a", 1e-2, 0, 0.9), rec("b", 1e-2, 1, 0.1), rec("c", 1e-2, 2, 0.1),
            rec("d", 1e-3, 0, 0.5)]
    assert json.loads(select_trial(more, True)) == {"lr": 1e-2}
    diverged = [rec("e", 1e-2, 0, None, "diverged"), rec("f", 1e-3, 0, 0.1)]
    assert json.loads(select_trial(diverged, True)) == {"lr": 1e-3}


def test_selecting_once_per_task_extends_and_evaluates_every_size_alike(reg):
    p = tuned(reg, "lstm", sizes="64,128", tuning={"trials": 4, "per": "task", "extend": 1})
    assert {r.trial["per"] for r in p.runs} == {"task"} and len(p.runs) == 4 * 2
    tuner = p.tuner()
    records = _records(tuner.first, lambda s: s.training["lr"])  # the largest lr always wins
    ext = tuner.extension(records)
    assert "lstm on copy (every size)" in ext.notes[0]
    assert len(ext.runs) == p.tuning.extend_trials * 2  # both sizes, the same new trials
    records |= _records(ext.runs, lambda s: s.training["lr"])
    final = tuner.evaluation(records)
    assert {(r.train_size, r.seed) for r in final.runs} == {(n, s) for n in (64, 128)
                                                            for s in (0, 1, 2)}
    assert len({r.training["lr"] for r in final.runs}) == 1 and final.runs[0].trial["per"] == "task"


def test_a_third_party_model_without_a_space_is_tuned_on_the_learning_rate(fresh_registry, plugin):
    from seqbench import hookimpl
    from seqbench.api import Kind, ModelPlugin, Param

    class Registers:
        @hookimpl
        def register_models(self, register):
            register(ModelPlugin("plain", "declares no search space", tuple(Kind),
                                 {"hidden_size": Param(8)}, build=lambda *a: None))

    plugin(Registers(), "plain")
    reg = fresh_registry.registry()
    p = tuned(reg, "plain,lstm", tuning={"trials": 4})
    plain = by_model(p.runs)["plain"]
    assert len(plain) == len(by_model(p.runs)["lstm"]) == 4  # the same budget
    assert all(set(r.trial) == {"lr", "stage", "round"} for r in plain)
    assert all(1e-4 <= r.training["lr"] <= 3e-2 for r in plain)


def test_an_extension_stops_at_the_largest_learning_rate_the_recipe_accepts(reg):
    from seqbench.experiment.tuning import LR

    p = tuned(reg, "lstm", tuning={"trials": 4, "extend": 5, "extend_trials": 2})
    tuner = p.tuner()
    records = _records(tuner.first, lambda s: s.training["lr"])
    rounds = 0
    while (ext := tuner.extension(records)).runs:
        rounds += 1
        records |= _records(ext.runs, lambda s: s.training["lr"])
    assert rounds == 3  # 0.03 -> 0.3 -> 3 -> the cap
    assert max(r.training["lr"] for r in records.values()) <= LR.maximum
    final = tuner.evaluation(records)
    assert final.runs[0].trial["lr_range"][1] == LR.maximum
    assert final.runs[0].trial["lr_edge"] == "high"


# --------------------------------------------------------------------------------------------
# Task labels and the run limit


def test_a_label_changes_no_run_id_and_no_matrix_id(reg):
    for tune in (False, True):
        given = dict(sizes="16,32", seeds="0,1", t=["copy.T=5"])
        bare = tuned(reg, "lstm,gru", tasks="copy", **given) if tune else make(
            reg, "lstm,gru", "copy", **given)
        given["t"] = [*given["t"], "copy.label=Copy T5"]
        named = tuned(reg, "lstm,gru", tasks="copy", **given) if tune else make(
            reg, "lstm,gru", "copy", **given)
        assert [r.run_id for r in named.runs] == [r.run_id for r in bare.runs]
        assert named.matrix_id == bare.matrix_id
        assert not bare.labels
        (label,) = named.labels
        assert (label.task, label.label, label.task_params) == (
            "copy", "Copy T5", named.runs[0].task_params)
        assert "label" not in named.runs[0].task_params


def test_a_label_is_trimmed_and_its_scope_left_as_if_unwritten(reg):
    bare = make(reg, "lstm", "copy")
    named = make(reg, "lstm", "copy", t=["copy.label=  TREC-6 "])
    assert named.labels[0].label == "TREC-6" and named.matrix_id == bare.matrix_id


@pytest.mark.parametrize("t, message", [
    (["copy.label="], r"task 'copy': label '' is empty"),
    (["copy.label=" + "x" * 41], r"has 41 characters; a label has at most 40"),
    (["label=X"], r"names one task variant: set it for one task"),
    (["copy.label=a\tb"], r"holds a control character"),
])
def test_bad_labels(reg, t, message):
    with pytest.raises(PluginError, match=message):
        make(reg, "lstm", "copy", t=t)


def test_a_label_on_a_swept_variant_is_refused(reg):
    with pytest.raises(PluginError, match=r"label 'Copy' names one task variant, but the matrix "
                                          r"sweeps T"):
        make(reg, "lstm", "copy", file_data={"task_params": {"copy": {"T": [5, 6],
                                                                      "label": "Copy"}}})


def test_the_run_limit_is_one_rule(reg, monkeypatch):
    from seqbench.experiment import plan as planning

    monkeypatch.setattr(planning, "MAX_RUNS", 3)
    with pytest.raises(PluginError, match=r"^this matrix has more than 3 runs; a matrix plans "
                                          r"at most that many \(fewer seeds"):
        make(reg, "lstm", "copy", seeds="0-3")
    with pytest.raises(PluginError, match=r"^this matrix has more than 3 combinations of "
                                          r"parameters 'T'; a matrix plans at most that many runs"):
        make(reg, "lstm", "copy", file_data={"task_params": {"copy": {"T": [2, 3, 4, 5]}}})
    with pytest.raises(PluginError, match=r"^this matrix has more than 3 tuning trials"):
        tuned(reg, "lstm", tasks="copy")


def test_a_run_shows_its_own_matrixs_label_else_one_every_matrix_agrees_on(tmp_path):
    from types import SimpleNamespace

    from seqbench.experiment import labels
    from seqbench.experiment.labels import TaskLabel
    from seqbench.store import Store

    params = {"data": "trec"}
    trec = [TaskLabel("classification", params, "TREC-6")]
    with Store(tmp_path / "l.sqlite") as store:
        labels.save(store, "big", trec, "2026-01-01T00:00:00+00:00")
        labels.save(store, "big", trec, "2026-01-01T00:00:01+00:00")  # unchanged: no new row
        assert len(store.matrices(labels.PREFIX)) == 1
        run = SimpleNamespace(task="classification", task_params=params, matrix_id="old")
        assert labels.stored(store).of(run) == "TREC-6"  # every labelling matrix agrees
        labels.save(store, "small", [replace(trec[0], label="TREC-6 (200k)")],
                    "2026-01-01T00:00:02+00:00")
        found = labels.stored(store)
        assert found.of(replace_ns(run, matrix_id="big")) == "TREC-6"
        assert found.of(replace_ns(run, matrix_id="small")) == "TREC-6 (200k)"
        assert found.of(run) is None  # they disagree: the run's own matrix gave none
        labels.save(store, "big", [replace(trec[0], label="TREC")], "2026-01-01T00:00:03+00:00")
        assert labels.stored(store).of(replace_ns(run, matrix_id="big")) == "TREC"  # relabelled
        assert labels.stored(store).of(
            SimpleNamespace(task="classification", task_params={"data": "mr"}, matrix_id="big")
        ) is None


def replace_ns(ns, **changes):
    from types import SimpleNamespace

    return SimpleNamespace(**{**vars(ns), **changes})
