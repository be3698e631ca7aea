"""The mechanisms study preset (a folder of matrix files, run in turn) plans what issue 10 asks
for, and a matrix folder behaves like a matrix file at the command line."""

from __future__ import annotations

import dataclasses

import pytest

from seqbench.api import PluginError
from seqbench.experiment import matrixfile
from seqbench.experiment.plan import plan
from seqbench.registry import registry


def parts():
    reg = registry()
    out = {}
    for f in matrixfile.matrix_files(matrixfile.preset_path("mechanisms")):
        m = matrixfile.build_matrix(matrixfile.read(f), None, None, None, None, (), (), {}, {},
                                    list(reg.models), list(reg.tasks))
        out[f.stem] = plan(m, reg)
    return out


def arm(spec) -> str:
    mp, tr = spec.model_params, spec.training
    if spec.model == "rnn":
        name = "irnn" if mp["init"] == "identity" else f"rnn-{mp['init']}"
    elif spec.model == "lstm":
        name = "lstm-chrono" if mp["chrono"] else f"lstm-fb{mp['forget_bias']:g}"
    else:
        name = spec.model
    if tr["tbptt"]:
        name += "-tbptt"
    if tr["rtrl"] != "off":
        name += "-rtrl-" + tr["rtrl"]
    return name


def test_the_study_covers_every_arm_of_the_issue_with_five_seeds_and_probes():
    plans = parts()
    runs = [r for p in plans.values() for r in p.runs]
    assert len(runs) == len({r.run_id for r in runs})  # no run planned twice
    assert all(r.training["probe_gradients"] for r in runs)
    copy = [r for r in runs if r.task == "copy"]
    seen: dict[tuple, set] = {}
    for r in copy:
        seen.setdefault((arm(r), r.task_params["T"], r.training["grad_clip"]), set()).add(r.seed)
    assert all(s == {0, 1, 2, 3, 4} for s in seen.values())
    for name in ("rnn-default", "irnn", "rnn-orthogonal", "lstm-fb0", "lstm-fb1", "lstm-chrono",
                 "gru", "transformer"):
        for T in (10, 50, 100):
            for clip in (0.0, 1.0, 5.0):
                assert (name, T, clip) in seen, (name, T, clip)
    # truncated BPTT, K = a quarter of the sequence, with its K = T arm (full BPTT) present
    for name in ("rnn-default", "lstm-fb1", "gru"):
        for T in (10, 50, 100):
            assert (name + "-tbptt", T, 1.0) in seen and (name, T, 1.0) in seen
    assert {r.training["tbptt"] for r in copy} == {0.0, 0.25}
    assert not [r for r in copy if r.training["tbptt"] and r.model == "transformer"]
    # RTRL against BPTT on the same small RNN
    rtrl = plans["7-rtrl"].runs
    assert {arm(r) for r in rtrl} == {"rnn-default", "rnn-default-rtrl-online"}
    assert {r.model_params["hidden_size"] for r in rtrl} == {16}
    # and another task
    assert {arm(r) for r in runs if r.task == "classification"} == {
        "rnn-default", "irnn", "lstm-fb0", "lstm-fb1", "transformer"}


def test_every_part_is_a_plain_matrix_file():
    plans = parts()
    assert list(plans) == sorted(plans)  # run in name order
    assert all(p.runs and not p.tuning for p in plans.values())


def test_a_matrix_folder_runs_its_files_in_turn(cli, tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "b.toml").write_text('models = ["lstm"]\ntasks = ["copy"]\nseeds = [0, 1]\n')
    (folder / "a.toml").write_text('models = ["rnn"]\ntasks = ["copy"]\nseeds = [0]\n')
    (folder / "notes.md").write_text("not a matrix")
    r = cli("run", "--matrix", folder, "--dry-run", "--db", tmp_path / "r.sqlite")
    assert r.rc == 0, r.stderr
    assert r.stdout.index("part a") < r.stdout.index("part b")
    assert "3 planned runs in 2 parts" in r.stdout
    assert not (tmp_path / "r.sqlite").exists()


def test_an_empty_matrix_folder_is_one_line_and_exit_2(cli, tmp_path):
    r = cli("run", "--matrix", tmp_path, "--dry-run")
    assert r.rc == 2
    assert r.stderr.strip() == f"error: matrix folder {tmp_path} holds no .toml matrix files"


def test_the_preset_is_listed():
    assert "mechanisms" in matrixfile.presets()
    with pytest.raises(PluginError, match="unknown preset"):
        matrixfile.preset_path("mechanism")


def test_runs_of_a_study_part_keep_their_identity_across_parts():
    """Part 6's K = T arm is the full-BPTT run of parts 1, 3 and 5: the same configuration gives
    the same run id, so the database holds it once."""
    plans = parts()
    ids = {r.run_id for name, p in plans.items() if name != "6-tbptt" for r in p.runs}
    for r in plans["6-tbptt"].runs:
        full = dataclasses.replace(r, training={**r.training, "tbptt": 0.0},
                                   matrix_id="", trial={})
        assert full.run_id in ids
