"""Plugin discovery: built-ins through entry points, runtime plugins, and every way a plugin breaks.

In-process tests use the ``plugin`` / ``fresh_registry`` fixtures; what a user sees is checked
through the real ``bench plugins`` command against fake installed distributions.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pluggy
import pytest

from seqbench import hookimpl
from seqbench.api import ModelPlugin, Param, PluginError

BUILTIN_MODELS = {"rnn", "lstm", "gru", "seq2seq-attention", "transformer", "cnn", "bag"}
BUILTIN_TASKS = {"classification", "translation", "copy"}


def tiny_model(name: str, kinds=("classification",)) -> ModelPlugin:
    return ModelPlugin(
        name=name,
        description=f"test model {name}",
        kinds=kinds,
        defaults={"hidden_size": Param(4)},
        build=lambda kind, shape, hparams: None,
    )


class Registers:
    """A plugin object whose register_models hook registers the given models."""

    def __init__(self, *models):
        self.models = models

    @hookimpl
    def register_models(self, register):
        for m in self.models:
            register(m)


# --------------------------------------------------------------------------------------------
# Built-ins


def test_builtins_come_from_entry_points(fresh_registry):
    reg = fresh_registry.registry()
    assert set(reg.models) == BUILTIN_MODELS
    assert set(reg.tasks) == BUILTIN_TASKS
    assert "sequential" in reg.executors
    every = [*reg.models.values(), *reg.tasks.values(), *reg.executors.values()]
    assert {p.source for p in every} == {"built-in"}
    assert reg.broken == []
    assert reg.models["seq2seq-attention"].kinds == ("seq2seq",)
    assert reg.tasks["copy"].kinds == ("aligned", "seq2seq")
    # the plugin manager holds one plugin per entry point, named after it
    names = {n for n, _ in fresh_registry.plugin_manager().list_name_plugin()}
    assert {"lstm", "copy", "executors"} <= names


def test_bench_plugins_json_shape(cli):
    rc, out, err = cli("plugins", "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert {m["name"] for m in data["models"]} == BUILTIN_MODELS
    assert {t["name"] for t in data["tasks"]} == BUILTIN_TASKS
    for m in data["models"]:
        assert {"name", "kinds", "source", "description"} <= set(m)
        assert m["source"] == "built-in" and m["description"] and m["kinds"]
    for t in data["tasks"]:
        assert {"name", "kind", "source", "description"} <= set(t)
        assert t["source"] == "built-in" and t["kind"] in ("classification", "seq2seq", "aligned")
    by_name = {m["name"]: m for m in data["models"]}
    assert by_name["seq2seq-attention"]["kinds"] == ["seq2seq"]
    assert by_name["lstm"]["kinds"] == ["classification", "seq2seq", "aligned"]
    assert {t["name"]: t["kind"] for t in data["tasks"]}["translation"] == "seq2seq"
    assert data["broken"] == []
    assert err == ""


def test_bench_plugins_table(cli):
    rc, out, err = cli("plugins")
    assert rc == 0, err
    for name in (*BUILTIN_MODELS, *BUILTIN_TASKS):
        assert name in out
    assert "built-in" in out
    assert "warning" not in err


# --------------------------------------------------------------------------------------------
# Plugins registered at runtime (the fixture)


def test_plugin_fixture_registers_and_removes(fresh_registry, plugin):
    plugin(Registers(tiny_model("tiny-a"), tiny_model("tiny-b")), "tiny")
    reg = fresh_registry.registry()
    assert {"tiny-a", "tiny-b"} <= set(reg.models)
    assert reg.models["tiny-a"].source == "registered at runtime (tiny)"
    assert BUILTIN_MODELS <= set(reg.models)  # the built-ins are still there
    plugin.remove_all()
    reg = fresh_registry.registry()
    assert set(reg.models) == BUILTIN_MODELS
    assert not fresh_registry.plugin_manager().has_plugin("tiny")


def test_misspelt_hook_is_rejected_at_runtime(fresh_registry, plugin):
    class Typo:
        @hookimpl
        def register_model(self, register):  # no such hook: register_models
            register(tiny_model("never"))

    with pytest.raises(pluggy.PluginValidationError, match="register_model"):
        plugin(Typo(), "typo")
    assert not fresh_registry.plugin_manager().has_plugin("typo")
    assert "never" not in fresh_registry.registry().models


def test_hook_that_raises_is_reported_with_its_name(fresh_registry, plugin):
    class Kaput:
        @hookimpl
        def register_models(self, register):
            register(tiny_model("half-registered"))
            raise RuntimeError("kaput")

    plugin(Kaput(), "kaput")
    reg = fresh_registry.registry()
    (broken,) = reg.broken
    assert broken.plugin == "kaput"
    assert broken.source == "registered at runtime (kaput)"
    assert broken.error.startswith("RuntimeError: kaput (")
    assert "test_registry.py:" in broken.error  # where it raised
    # all or nothing: what the hook registered before raising is dropped; the rest still work
    assert "half-registered" not in reg.models
    assert BUILTIN_MODELS <= set(reg.models)


def test_hook_that_raises_fails_fast_when_strict(fresh_registry, plugin, monkeypatch):
    class Kaput:
        @hookimpl
        def register_models(self, register):
            raise RuntimeError("kaput")

    monkeypatch.setenv("SEQBENCH_STRICT_PLUGINS", "1")
    plugin(Kaput(), "kaput")
    with pytest.raises(RuntimeError, match="kaput"):
        fresh_registry.registry()


def test_bad_registrations_are_reported(fresh_registry, plugin):
    class WrongType:
        @hookimpl
        def register_models(self, register):
            register("lstm2")

    class BadName:
        @hookimpl
        def register_models(self, register):
            register(tiny_model("has space"))

    plugin(WrongType(), "wrong-type")
    plugin(BadName(), "bad-name")
    broken = {b.plugin: b.error for b in fresh_registry.registry().broken}
    assert "takes a ModelPlugin" in broken["wrong-type"]
    assert "'has space'" in broken["bad-name"]


def test_duplicate_model_name_names_both_origins(fresh_registry, plugin):
    plugin(Registers(tiny_model("lstm")), "dup")
    with pytest.raises(PluginError) as info:
        fresh_registry.registry()
    assert str(info.value) == (
        "model name 'lstm' is registered twice: by built-in and by registered at runtime (dup)"
    )


def test_duplicate_within_one_plugin(fresh_registry, plugin):
    plugin(Registers(tiny_model("twin"), tiny_model("twin")), "twins")
    with pytest.raises(PluginError, match="'twin' is registered twice"):
        fresh_registry.registry()


def test_unknown_names_suggest_the_closest(fresh_registry):
    reg = fresh_registry.registry()
    with pytest.raises(PluginError, match=r"unknown model 'lstn' \(available: .*lstm.*\); "
                       r"did you mean 'lstm'\?"):
        reg.model("lstn")
    with pytest.raises(PluginError, match="did you mean 'copy'"):
        reg.task("cpoy")
    with pytest.raises(PluginError, match="unknown executor 'nope'"):
        reg.executor("nope")


# --------------------------------------------------------------------------------------------
# Environment variables


def test_load_plugins_allow_list(cli):
    rc, out, err = cli("plugins", "--json", env={"SEQBENCH_LOAD_PLUGINS": "lstm, copy"})
    assert rc == 0, err
    data = json.loads(out)
    assert [m["name"] for m in data["models"]] == ["lstm"]
    assert [t["name"] for t in data["tasks"]] == ["copy"]


def test_load_plugins_empty_loads_no_plugins(cli):
    rc, out, err = cli("plugins", "--json", env={"SEQBENCH_LOAD_PLUGINS": ""})
    assert rc == 0, err
    data = json.loads(out)
    assert data["models"] == [] and data["tasks"] == []


def test_allow_list_can_still_run(cli, tmp_path):
    # The core's executors are not plugins to allow: a matrix of the allowed plugins must plan.
    rc, out, err = cli(
        "run", "--models", "lstm", "--tasks", "copy", "--train-sizes", "16", "--dry-run",
        "--db", tmp_path / "x.sqlite", env={"SEQBENCH_LOAD_PLUGINS": "lstm,copy"},
    )
    assert rc == 0, err
    assert "1 planned runs" in out


def test_trace_plugins_prints_hook_calls(cli):
    rc, out, err = cli("plugins", "--json", env={"SEQBENCH_TRACE_PLUGINS": "1"})
    assert rc == 0
    json.loads(out)  # stdout stays clean
    assert "seqbench: register_models of 'lstm' (built-in): lstm\n" in err
    assert "seqbench: register_tasks of 'copy' (built-in): copy\n" in err


# --------------------------------------------------------------------------------------------
# Broken third-party distributions, through the real command

BROKEN_IMPORT = """
raise ImportError("needs the package 'frobnicate', which is not installed")
"""

MISSPELT_HOOK = """
from seqbench import hookimpl

@hookimpl
def register_model(register):
    pass
"""

DUPLICATE_LSTM = """
from seqbench import hookimpl
from seqbench.api import ModelPlugin, Param

@hookimpl
def register_models(register):
    register(ModelPlugin(name="lstm", description="another lstm", kinds=("classification",),
                         defaults={"hidden_size": Param(8)}, build=lambda *a: None))
"""

SHADOW = """
from seqbench import hookimpl
from seqbench.api import ModelPlugin, Param

@hookimpl
def register_models(register):
    register(ModelPlugin(name="my-lstm", description="mine", kinds=("classification",),
                         defaults={"hidden_size": Param(8)}, build=lambda *a: None))
"""


@pytest.fixture(scope="module")
def broken_import_dist(make_dist):
    return make_dist("seqbench-frob", {"seqbench_frob": BROKEN_IMPORT}, {"frob": "seqbench_frob"})


def test_plugin_that_fails_to_import_is_reported(cli, broken_import_dist):
    rc, out, err = cli("plugins", pythonpath=[broken_import_dist])
    assert rc == 0, err
    assert "lstm" in out and "copy" in out  # the others keep working
    assert (
        "warning: plugin 'frob' (seqbench-frob 0.0.1) was not loaded: ImportError: needs the "
        "package 'frobnicate', which is not installed"
    ) in err

    rc, out, err = cli("plugins", "--json", pythonpath=[broken_import_dist])
    assert rc == 0, err
    data = json.loads(out)
    assert data["broken"] == [
        {
            "plugin": "frob",
            "source": "seqbench-frob 0.0.1",
            "error": "ImportError: needs the package 'frobnicate', which is not installed",
        }
    ]
    assert {m["name"] for m in data["models"]} == BUILTIN_MODELS


def test_broken_plugin_does_not_stop_a_run(cli, broken_import_dist, tmp_path):
    rc, out, err = cli(
        "run", "--models", "lstm", "--tasks", "copy", "--train-sizes", "16", "--dry-run",
        "--db", tmp_path / "x.sqlite", pythonpath=[broken_import_dist],
    )
    assert rc == 0, err
    assert "warning: plugin 'frob'" in err
    assert "1 planned runs" in out


def test_strict_plugins_fail_fast(cli, broken_import_dist):
    rc, out, err = cli(
        "plugins", "--json", pythonpath=[broken_import_dist],
        env={"SEQBENCH_STRICT_PLUGINS": "1"},
    )
    assert rc != 0
    assert "needs the package 'frobnicate'" in err
    assert out == ""


def test_allow_list_skips_a_broken_plugin(cli, broken_import_dist):
    rc, out, err = cli(
        "plugins", "--json", pythonpath=[broken_import_dist],
        env={"SEQBENCH_LOAD_PLUGINS": "lstm"},
    )
    assert rc == 0, err
    assert json.loads(out)["broken"] == []


def test_misspelt_hook_in_a_distribution(cli, make_dist):
    dist = make_dist("seqbench-typo", {"seqbench_typo": MISSPELT_HOOK}, {"typo": "seqbench_typo"})
    rc, out, err = cli("plugins", "--json", pythonpath=[dist])
    assert rc == 0, err
    (broken,) = json.loads(out)["broken"]
    assert broken["plugin"] == "typo" and broken["source"] == "seqbench-typo 0.0.1"
    assert "register_model" in broken["error"]
    assert {m["name"] for m in json.loads(out)["models"]} == BUILTIN_MODELS

    rc, out, err = cli("plugins", "--json", pythonpath=[dist], env={"SEQBENCH_STRICT_PLUGINS": "1"})
    assert rc != 0
    assert "register_model" in err


def test_duplicate_model_from_a_distribution(cli, make_dist, tmp_path):
    dist = make_dist("seqbench-dup", {"seqbench_dup": DUPLICATE_LSTM}, {"dup": "seqbench_dup"})
    for args in (["plugins"], ["run", "--models", "lstm", "--tasks", "copy", "--dry-run",
                               "--db", tmp_path / "x.sqlite"]):
        rc, out, err = cli(*args, pythonpath=[dist])
        assert rc == 2
        assert err.count("\n") == 1
        assert err.startswith("error: model name 'lstm' is registered twice: by ")
        assert "built-in" in err and "seqbench-dup 0.0.1" in err


def test_entry_point_name_clash_never_shadows_a_builtin(cli, make_dist):
    # A third party naming its entry point "lstm" must neither replace the built-in lstm
    # nor vanish silently.
    dist = make_dist("seqbench-shadow", {"seqbench_shadow": SHADOW}, {"lstm": "seqbench_shadow"})
    rc, out, err = cli("plugins", "--json", pythonpath=[dist])
    assert rc == 0, err
    data = json.loads(out)
    models = {m["name"]: m["source"] for m in data["models"]}
    assert models["lstm"] == "built-in"
    assert "my-lstm" not in models
    (broken,) = data["broken"]
    assert broken["plugin"] == "lstm" and broken["source"] == "seqbench-shadow 0.0.1"
    assert "already used by built-in" in broken["error"]


# --------------------------------------------------------------------------------------------
# Typed contracts: executors, lazy build targets


def test_every_executor_is_an_executor(fresh_registry):
    import inspect

    from seqbench.api import Executor

    executors = fresh_registry.registry().executors
    assert {"sequential", "local", "ray", "slurm"} <= set(executors)
    for e in executors.values():
        assert isinstance(e.factory, type) and issubclass(e.factory, Executor), e.name
        params = list(inspect.signature(e.factory.run).parameters)
        assert params == ["self", "specs", "on_start", "on_record"], e.name
    assert not issubclass(type("NoRun", (), {}), Executor)


def test_a_build_target_is_imported_on_the_first_build(tmp_path, monkeypatch):
    (tmp_path / "seqbench_lazy_target.py").write_text(
        "def build(kind, shape, hparams):\n    return ('built', kind, hparams['hidden_size'])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugin = ModelPlugin(name="lazy", description="built from a target", kinds=("aligned",),
                         defaults={"hidden_size": Param(8)}, build="seqbench_lazy_target:build")
    assert "seqbench_lazy_target" not in sys.modules
    assert plugin.build("aligned", None, {"hidden_size": 8}) == ("built", "aligned", 8)
    assert "seqbench_lazy_target" in sys.modules
    monkeypatch.delitem(sys.modules, "seqbench_lazy_target")


@pytest.mark.parametrize("target", ["no colon", "pkg.mod:", ":attr", "pkg mod:attr", 3])
def test_a_target_that_is_not_one_is_refused_when_declared(target):
    with pytest.raises(PluginError) as err:
        ModelPlugin(name="lazy", description="d", kinds=("aligned",),
                    defaults={"hidden_size": Param(8)}, build=target)
    assert str(err.value).startswith("model 'lazy': build ")
    assert "a callable or 'package.module:attr'" in str(err.value)


def test_bench_plugins_imports_no_torch():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom seqbench.cli import main\n"
            "r = CliRunner().invoke(main, ['plugins', '--json'])\n"
            "assert r.exit_code == 0, r.output\n"
            "assert 'lstm' in r.output and 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


MISSING_TARGET = """
from seqbench import hookimpl
from seqbench.api import ModelPlugin, Param

@hookimpl
def register_models(register):
    register(ModelPlugin(name="lazy-missing", description="its target's module is not installed",
                         kinds=("aligned",), defaults={"hidden_size": Param(8)},
                         build="seqbench_no_such_module:build"))
"""


def test_a_target_that_cannot_be_imported_is_one_line_naming_plugin_and_target(
        cli, make_dist, tmp_path):
    dist = make_dist("seqbench-lazy", {"seqbench_lazy": MISSING_TARGET}, {"lazy": "seqbench_lazy"})
    rc, out, err = cli("plugins", "--json", pythonpath=[dist])
    assert rc == 0 and "lazy-missing" in out and json.loads(out)["broken"] == [], err
    rc, out, err = cli("run", "--models", "lazy-missing", "--tasks", "copy", "--train-sizes",
                       "16", "--db", tmp_path / "x.sqlite", pythonpath=[dist])
    assert rc == 2 and err.count("\n") == 1, err
    assert err.startswith("error: model 'lazy-missing': build target "
                          "'seqbench_no_such_module:build' cannot be imported (ModuleNotFoundError")
    assert "give 'package.module:attr'" in err
    assert not (tmp_path / "x.sqlite").exists()


def test_a_kind_is_its_string_everywhere_a_user_sees_it():
    from seqbench.api import Kind, TaskShape

    assert json.dumps({Kind.SEQ2SEQ: [Kind.ALIGNED]}) == '{"seq2seq": ["aligned"]}'
    assert f"{Kind.CLASSIFICATION}" == str(Kind.CLASSIFICATION) == "classification"
    assert {"aligned": 1}[Kind.ALIGNED] == 1 and Kind.ALIGNED == "aligned"
    assert tiny_model("m", kinds=("aligned", "seq2seq")).kinds == (Kind.ALIGNED, Kind.SEQ2SEQ)
    with pytest.raises(PluginError, match="^TaskShape: 'tagging' is not a task kind"):
        TaskShape("tagging", 3)
