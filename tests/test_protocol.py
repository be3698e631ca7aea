"""The training protocol: warmup-stable-decay (a run is scored only after its rate has come
down), warm-up equal in steps for every model, the GRU's matched initialisation, and the earlier
protocol's matrix files still naming the runs stored with it."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from seqbench.api import PluginError
from seqbench.experiment import matrixfile
from seqbench.experiment.plan import RunSpec, plan
from seqbench.experiment.schedule import Kind, Schedule
from seqbench.registry import registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reg():
    return registry()


def recipe(**over) -> dict:
    from seqbench.api import resolve_params
    from seqbench.experiment.plan import TRAINING

    return resolve_params("training", TRAINING, over)


# --------------------------------------------------------------------------------------------
# The schedule


def test_wsd_warms_up_holds_then_cools_down_to_near_zero_from_a_plateau():
    s = Schedule.from_recipe(recipe(max_steps=1000, val_every=10, warmup_steps=50, cooldown=0.2))
    assert s.kind is Kind.WSD and s.warmup == 50
    assert [s.factor(k) for k in (0, 24, 49)] == [1 / 50, 25 / 50, 1.0]
    assert s.factor(50) == s.factor(300) == 1.0 and not s.in_cooldown
    s.start_cooldown(300)
    assert (s.cooldown_start, s.cooldown_steps, s.end, s.cause) == (300, 60, 360, "plateau")
    rates = [s.factor(k) for k in range(300, 360)]
    assert rates[0] == 1.0 and all(a > b for a, b in zip(rates, rates[1:]))  # 1 - sqrt
    assert rates[-1] <= 0.1 and s.factor(360) == 0.0
    s.start_cooldown(400)  # the first start stands
    assert s.cooldown_start == 300


def test_wsd_cools_down_before_the_step_cap_and_for_at_least_two_validations():
    s = Schedule.from_recipe(recipe(max_steps=1200, val_every=50, warmup_steps=100))
    # a share of 0.2 of the steps before it, in whole validations: 1000 + 200 = the cap
    assert s.cap_start == 1000
    assert s.factor(999) == 1.0 and not s.in_cooldown
    assert s.factor(1000) == 1.0 and (s.cooldown_start, s.end, s.cause) == (1000, 1200, "step cap")
    assert s.factor(1199) <= 0.1
    early = Schedule.from_recipe(recipe(max_steps=1200, val_every=50, warmup_steps=100))
    early.start_cooldown(150)  # 0.2 x 150 = 30 steps: two validations instead
    assert early.cooldown_steps == 100
    # warm-up never runs into the cap's cooldown
    short = Schedule.from_recipe(recipe(max_steps=60, val_every=10, warmup_steps=100))
    assert short.warmup == short.cap_start == 40


def test_the_earlier_schedules_are_unchanged():
    cos = Schedule.from_recipe(recipe(schedule="cosine", max_steps=1000, warmup=0.05))
    assert cos.warmup == 50 and cos.factor(0) == 1 / 50
    assert cos.factor(525) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert cos.factor(1000) == 0.0 and not cos.in_cooldown
    const = Schedule.from_recipe(recipe(schedule="constant", max_steps=1000, warmup=0.0))
    assert const.factor(0) == const.factor(999) == 1.0


def _validate(cb, sched, step, value, weights):
    """One validation, as Lightning calls the callback (the scheduler has stepped first)."""
    sched.factor(step)
    model = SimpleNamespace(state_dict=lambda: {"w": weights})
    module = SimpleNamespace(schedule=sched, scores={"val": {"acc": value}}, model=model,
                             data=SimpleNamespace(primary_metric="acc"))
    trainer = SimpleNamespace(global_step=step, should_stop=False)
    cb.on_validation_end(trainer, module)
    return trainer.should_stop


def test_patience_counts_only_after_warm_up_and_the_score_comes_from_the_cooldown():
    from seqbench.experiment.lit import WarmupStableDecay

    sched = Schedule.from_recipe(recipe(max_steps=10_000, val_every=10, warmup_steps=50))
    cb = WarmupStableDecay(patience=2, higher_is_better=True)
    # flat during warm-up: no cooldown however long it stays flat
    for step in (10, 20, 30, 40):
        assert not _validate(cb, sched, step, 0.5, step)
    assert not sched.in_cooldown
    # after warm-up: the best at full rate (0.9, step 60), then two validations without it
    for step, value in ((50, 0.6), (60, 0.9), (70, 0.8), (80, 0.8)):
        assert not _validate(cb, sched, step, value, step)
    assert (sched.cooldown_start, sched.end, sched.cause) == (80, 100, "plateau")
    assert not _validate(cb, sched, 90, 0.7, 90)
    assert _validate(cb, sched, 100, 0.85, 100)  # the cooldown's end stops the run
    # scored inside the cooldown, never on the higher full-rate checkpoint of step 60
    assert cb.best_val == 0.85 and cb.best_state == {"w": 100}


def test_patience_zero_cools_down_at_the_cap():
    from seqbench.experiment.lit import WarmupStableDecay

    sched = Schedule.from_recipe(recipe(max_steps=120, val_every=10, warmup_steps=20))
    cb = WarmupStableDecay(patience=0, higher_is_better=False)
    stops = [_validate(cb, sched, step, 1.0, step) for step in range(10, 130, 10)]
    assert stops == [False] * 11 + [True]
    assert (sched.cooldown_start, sched.cause) == (100, "step cap")
    assert cb.best_state == {"w": 110}  # the first cooldown point; ties keep it


# --------------------------------------------------------------------------------------------
# Runs through the CLI: the stored learning rate, the cooldown and the stop reason


MATRIX = """
models = ["lstm"]
tasks = ["copy"]
seeds = [0]
train_sizes = [32]

[training]
max_steps = 80
val_every = 5
warmup_steps = 20
patience = [0, 1]
batch_size = 16
lr = 1e-9          # predictions never change, so the validation score is flat: a plateau
val_limit = 40

[task_params.copy]
T = 3
n_symbols = 3
val_size = 40
test_size = 40

[model_params.lstm]
hidden_size = 8
embed_size = 8
"""


@pytest.fixture(scope="module")
def wsd_db(tmp_path_factory):
    from conftest import bench_here  # in this process: the schedule, not the executor, is tested

    folder = tmp_path_factory.mktemp("wsd")
    (folder / "m.toml").write_text(MATRIX)
    db = folder / "wsd.sqlite"
    r = bench_here("run", "--matrix", folder / "m.toml", "--db", db, "--executor", "sequential")
    assert r.rc == 0, r.stderr
    return db


def test_every_run_ends_annealed_and_says_why_it_stopped(wsd_db):
    conn = sqlite3.connect(f"file:{wsd_db}?mode=ro", uri=True)
    runs = conn.execute("SELECT run_id, model, steps, config, extras FROM runs").fetchall()
    assert len(runs) == 2
    for run_id, model, steps, config, extras in runs:
        training, extras = json.loads(config)["training"], json.loads(extras)
        curve = [(s, json.loads(v)["lr"]) for s, v in conn.execute(
            "SELECT step, val FROM curves WHERE run_id = ? ORDER BY step", (run_id,))]
        peak = max(lr for _, lr in curve)
        assert peak == pytest.approx(1e-9)
        assert curve[-1][1] <= 0.1 * peak, (model, curve)
        assert curve[0] == (5, pytest.approx(5 / 20 * 1e-9))  # warming up
        assert extras["warmup_steps"] == 20 and "warmup" not in training
        if training["patience"]:  # flat from the start: the cooldown starts as warm-up ends
            assert (extras["stop_reason"], extras["cooldown_start"], steps) == ("plateau", 20, 30)
        else:  # the cap's cooldown: 80 / 1.2 steps before it, rounded to validations
            assert (extras["stop_reason"], extras["cooldown_start"], steps) == ("step cap", 65, 80)


def test_the_analysis_reads_the_recorded_stop_reason(wsd_db):
    from seqbench.analysis.stopping import StopReason, stop_reason
    from seqbench.store import Store

    with Store(wsd_db, readonly=True) as store:
        reasons = {(r.model, r.training["patience"]): stop_reason(r)
                   for r in store.runs()}
    assert reasons == {("lstm", 0): StopReason.STEP_CAP, ("lstm", 1): StopReason.PLATEAU}


# --------------------------------------------------------------------------------------------
# The plan: equal warm-up, keys of another schedule refused, protocols never pooled


def make(reg, data: dict, models="lstm,gru,transformer"):
    matrix = matrixfile.build_matrix(data, models, "copy", "64,128", "0,1", (), (), {}, {},
                                     list(reg.models), list(reg.tasks))
    return plan(matrix, reg)


def test_warm_up_is_equal_in_steps_for_every_model_of_a_comparison(reg):
    p = make(reg, {"training": {"warmup_steps": 150},
                   "tuning": {"trials": 4, "seeds": 1}})
    assert {r.model for r in p.runs} == {"lstm", "gru", "transformer"}
    assert {(r.training["schedule"], r.training["warmup_steps"]) for r in p.runs} == {
        ("wsd", 150)}
    assert not [r for r in p.runs if "warmup" in r.trial or "warmup_steps" in r.trial]
    assert all("warmup" not in r.config()["training"] for r in p.runs)  # it decides nothing


def test_a_key_of_another_schedule_is_one_clear_error(reg, cli, tmp_path):
    with pytest.raises(PluginError, match='set schedule = "cosine" to reproduce'):
        make(reg, {"training": {"warmup": 0.1}})
    with pytest.raises(PluginError, match="'warmup_steps' is not read by schedule 'cosine'"):
        make(reg, {"training": {"schedule": "cosine", "warmup_steps": 10}})
    with pytest.raises(PluginError, match="'warmup' is not read by schedule 'wsd'"):
        make(reg, {"tuning": {"trials": 2, "space": {"transformer": {"warmup": {
            "low": 0.0, "high": 0.2}}}}}, "transformer")
    with pytest.raises(PluginError, match="warmup_steps = 250 does not fit max_steps = 300: "
                       "the cooldown before the step cap starts at step 200"):
        make(reg, {"training": {"warmup_steps": 250, "max_steps": 300, "val_every": 50}})
    path = tmp_path / "old.toml"
    path.write_text('models = ["lstm"]\ntasks = ["copy"]\n[training]\nwarmup = 0.05\n')
    r = cli("run", "--matrix", path, "--db", tmp_path / "x.sqlite", "--schedule", "wsd")
    assert r.rc == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x.sqlite").exists()


def test_runs_of_different_protocols_are_never_one_cell():
    from seqbench.analysis.cells import variant_keys
    from seqbench.records import RunRecord

    def run(run_id, **training):
        return RunRecord(run_id=run_id, model="lstm", task="copy", kind="seq2seq", seed=0,
                         status="done",
                         config={"task_params": {"T": 5}, "training": training})

    same = [run("a", schedule="cosine", warmup=0.05), run("b", schedule="cosine", warmup=0.1)]
    assert {k for _, k in variant_keys(same).values()} == {"default"}  # a tuned share
    mixed = [run("a", schedule="cosine"), run("b", schedule="wsd", warmup_steps=100,
                                              cooldown=0.2),
             run("c", schedule="wsd", warmup_steps=250, cooldown=0.2)]
    keys = variant_keys(mixed)
    assert len({k for _, k in keys.values()}) == 3
    assert keys["c"][1] == "protocol=wsd warmup_steps=250 cooldown=0.2"


def test_a_run_id_ignores_the_keys_its_schedule_does_not_read():
    base = dict(model="gru", task="copy", kind="aligned", train_size=64, seed=0,
                model_params={"hidden_size": 8}, task_params={"T": 5})
    cos = recipe(schedule="cosine")
    a = RunSpec(**base, training={**cos, "warmup_steps": 1, "cooldown": 0.5})
    assert a.run_id == RunSpec(**base, training=cos).run_id
    wsd = recipe()
    assert RunSpec(**base, training={**wsd, "warmup": 0.3}).run_id == RunSpec(
        **base, training=wsd).run_id
    assert RunSpec(**base, training={**wsd, "warmup_steps": 101}).run_id != RunSpec(
        **base, training=wsd).run_id
    # the GRU's update bias at 0 is the initialisation runs had before it existed
    zero = RunSpec(**{**base, "model_params": {"hidden_size": 8, "update_bias": 0.0}},
                   training=cos)
    assert zero.run_id == a.run_id
    one = RunSpec(**{**base, "model_params": {"hidden_size": 8, "update_bias": 1.0}},
                  training=cos)
    assert one.run_id != a.run_id


STUDIES = [("results/claim-study", "results/claim.sqlite"),
           ("bench/experiment/presets/controls", "results/controls.sqlite"),
           ("bench/experiment/presets/mechanisms", "results/mechanisms.sqlite")]


@pytest.mark.parametrize("folder, db", STUDIES)
def test_the_earlier_protocols_matrix_files_name_the_stored_runs(reg, folder, db):
    """Relaunching a committed study trains nothing: every planned run (for a tuned study, its
    first round of trials) is one its database already holds."""
    conn = sqlite3.connect(f"file:{ROOT / db}?mode=ro", uri=True)
    stored = {row[0] for row in conn.execute("SELECT run_id FROM runs")}
    planned = 0
    for path in matrixfile.matrix_files(ROOT / folder):
        data = matrixfile.read(path)
        local = [p["data"] for p in data.get("task_params", {}).values() if "data" in p]
        if any(not (ROOT / d).exists() for d in local):
            continue  # a real data set this checkout does not have
        matrix = matrixfile.build_matrix(data, None, None, None, None, (), (), {}, {},
                                         list(reg.models), list(reg.tasks))
        runs = plan(matrix, reg).runs
        assert runs and not {r.run_id for r in runs} - stored, path.name
        assert {r.training["schedule"] for r in runs} <= {"cosine", "constant"}
        planned += len(runs)
    assert planned


# --------------------------------------------------------------------------------------------
# The GRU's matched initialisation


def _gru(reg, seed=0, **over):
    import torch

    from seqbench.api import TaskShape

    plugin = reg.model("gru")
    hp = {**{k: p.default for k, p in plugin.defaults.items()}, "embed_size": 8,
          "hidden_size": 6, "num_layers": 2, **over}
    torch.manual_seed(seed)
    model = plugin.build("classification", TaskShape("classification", 20, num_classes=3,
                                                     max_src_len=9), hp)
    (rnn,) = [m for m in model.modules() if isinstance(m, torch.nn.GRU)]
    return rnn


def test_the_gru_update_gate_starts_carrying_its_state_and_the_switch_turns_it_off(reg):
    import torch

    assert reg.model("gru").defaults["update_bias"].default == 1.0
    on, off = _gru(reg), _gru(reg, update_bias=0.0)
    H = on.hidden_size
    for layer in range(on.num_layers):
        b_ih, b_hh = getattr(on, f"bias_ih_l{layer}"), getattr(on, f"bias_hh_l{layer}")
        # torch's gate order r, z, n: z = sigmoid(1) = 0.73 of the state carried at the start
        assert torch.equal(b_ih[H:2 * H], torch.ones(H)) and not b_hh[H:2 * H].any()
        for name in (f"bias_ih_l{layer}", f"bias_hh_l{layer}"):
            a, b = getattr(on, name), getattr(off, name)
            assert torch.equal(torch.cat([a[:H], a[2 * H:]]), torch.cat([b[:H], b[2 * H:]]))
        z = getattr(off, f"bias_ih_l{layer}")[H:2 * H]  # off: torch's own uniform draw
        assert z.abs().max() < 1 and z.abs().min() > 0
    assert all(torch.equal(p, q) for (n, p), (_, q) in zip(on.named_parameters(),
                                                            off.named_parameters())
               if n.startswith("weight"))
    assert torch.equal(_gru(reg, update_bias=2.5).bias_ih_l0[H:2 * H], torch.full((H,), 2.5))
