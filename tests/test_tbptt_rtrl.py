"""Truncated BPTT and RTRL: K = the sequence length is BPTT, a shorter window cuts the gradient
at its boundary, accumulated RTRL is BPTT's gradient, and bad settings are refused up front."""

from __future__ import annotations

import hashlib
import json

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from seqbench.api import PAD, PluginError, TaskShape, resolve_params  # noqa: E402
from seqbench.experiment.algorithms import check_recipe, window_size  # noqa: E402
from seqbench.experiment.plan import TRAINING, RunSpec  # noqa: E402
from seqbench.experiment.tbptt import tbptt_updates  # noqa: E402
from seqbench_plugins._recurrent import build_recurrent  # noqa: E402

V = 12
SHAPE = TaskShape("aligned", V, tgt_vocab_size=V, max_src_len=24, max_tgt_len=24)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Stub:
    """What tbptt_updates needs of the LightningModule."""

    def __init__(self, model):
        self.model = model

    def manual_backward(self, loss):
        loss.backward()


def model(cell="rnn", dtype=torch.float32, **hp):
    torch.manual_seed(0)
    base = {"embed_size": 6, "hidden_size": 8, "num_layers": 1, "dropout": 0.0}
    return build_recurrent(cell, "aligned", SHAPE, {**base, **hp}).to(dtype)


def batch(S=24, B=5, pad_tail=True):
    g = torch.Generator().manual_seed(1)
    src = torch.randint(1, V, (B, S), generator=g)
    y = torch.randint(1, V, (B, S), generator=g)
    if pad_tail:  # ragged rows: the last positions of two rows have no target
        y[0, -5:] = PAD
        y[1, -2:] = PAD
    return {"src": src, "y": y, "src_len": torch.full((B,), S)}


def bptt_grads(m, b):
    logits = m(b["src"], b["src_len"])
    loss = F.cross_entropy(logits.reshape(-1, V), b["y"].reshape(-1), ignore_index=PAD)
    return float(loss), torch.autograd.grad(loss, list(m.parameters()))


def close(a, b, tol=1e-5):
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=tol, rtol=tol)


# ------------------------------------------------------------------------------ truncated BPTT


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_tbptt_with_K_the_sequence_length_is_bptt(cell):
    m, b = model(cell, num_layers=2), batch()
    loss, expected = bptt_grads(m, b)
    n, updates = tbptt_updates(Stub(m), b, 24)
    assert n == 1
    parts = list(updates)
    assert float(sum(parts)) == pytest.approx(loss, rel=1e-6)
    close([p.grad for p in m.parameters()], expected)


def test_tbptt_window_cuts_the_gradient_at_its_boundary():
    """Window 1 holds only tokens 1-2, window 2 only tokens 3-4. The update of window 2 carries
    the state from window 1, detached: no gradient reaches the embeddings of tokens 1-2 (BPTT's
    does), while its own tokens get one."""
    m = model("lstm")
    src = torch.cat([torch.randint(1, 3, (4, 6)), torch.randint(3, 5, (4, 6))], dim=1)
    b = {"src": src, "y": torch.randint(1, V, (4, 12)), "src_len": torch.full((4,), 12)}
    n, updates = tbptt_updates(Stub(m), b, 6)
    assert n == 2
    next(updates)
    m.zero_grad()
    next(updates)  # window 2's gradient
    g = m.embed.weight.grad
    assert torch.count_nonzero(g[1:3]) == 0
    assert torch.count_nonzero(g[3:5]) > 0
    _, full = bptt_grads(m, b)
    assert torch.count_nonzero(full[0][1:3]) > 0  # without truncation, it would have


def test_tbptt_window_without_targets_carries_state_but_makes_no_update():
    m, b = model("gru"), batch(S=12, pad_tail=False)
    b["y"][:, :4] = PAD  # the first window of 4 has nothing to learn
    n, updates = tbptt_updates(Stub(m), b, 4)
    assert n == 2 and len(list(updates)) == 2


def test_window_size_reads_steps_or_a_share():
    assert window_size(25, 120) == 25
    assert window_size(0.25, 120) == 30
    assert window_size(0.25, 30) == 8  # rounded up
    assert window_size(0.001, 30) == 1


# ------------------------------------------------------------------------------------------ RTRL


@pytest.mark.parametrize("hp", [{}, {"nonlinearity": "relu", "init": "identity"},
                                {"init": "orthogonal"}])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_accumulated_rtrl_is_bptts_gradient(hp, dtype):
    m, b = model(dtype=dtype, **hp), batch()
    loss, expected = bptt_grads(m, b)
    n, updates = m.rtrl_updates(b["src"], b["y"], online=False)
    assert n == 1
    (total,) = list(updates)
    assert float(total) == pytest.approx(loss, rel=1e-5)
    close([p.grad for p in m.parameters()], expected, tol=1e-5)


def test_online_rtrl_gradients_add_up_to_bptts():
    """Without updates in between, the per-step gradients of online RTRL sum to the batch
    gradient: one per time step that has a target."""
    m, b = model(), batch()
    _, expected = bptt_grads(m, b)
    n, updates = m.rtrl_updates(b["src"], b["y"], online=True)
    assert n == 24
    total = [torch.zeros_like(p) for p in m.parameters()]
    for _ in updates:
        for acc, p in zip(total, m.parameters()):
            acc += p.grad
    close(total, expected)


def test_online_rtrl_uses_the_updated_weights():
    """After an update, the next step's sensitivities and gradient come from the new weights:
    the gradient of step 2 differs from the one computed without the update."""
    m, b = model(), batch(S=6)
    _, first = m.rtrl_updates(b["src"], b["y"], online=True)
    next(first)
    with torch.no_grad():
        m.rnn.weight_hh_l0.add_(0.5)
    next(first)
    moved = m.rnn.weight_hh_l0.grad.clone()
    m2 = model()
    _, second = m2.rtrl_updates(b["src"], b["y"], online=True)
    next(second)
    next(second)
    assert not torch.allclose(moved, m2.rnn.weight_hh_l0.grad)


@pytest.mark.parametrize("cell,hp", [("lstm", {}), ("gru", {}), ("rnn", {"num_layers": 2})])
def test_rtrl_refuses_what_it_does_not_implement(cell, hp):
    m, b = model(cell, **hp), batch()
    with pytest.raises(PluginError, match="one-layer Elman RNN"):
        m.rtrl_updates(b["src"], b["y"], online=False)


def test_rtrl_refuses_sensitivities_too_large():
    shape = TaskShape("aligned", 5000, tgt_vocab_size=5, max_src_len=8, max_tgt_len=8)
    m = build_recurrent("rnn", "aligned", shape, {"embed_size": 64, "hidden_size": 64,
                                                  "num_layers": 1, "dropout": 0.0})
    src = torch.randint(1, 5000, (64, 8))
    with pytest.raises(PluginError, match="smaller hidden_size"):
        m.rtrl_updates(src, torch.randint(1, 5, (64, 8)), online=True)


# ---------------------------------------------------------------------- training, end to end


def _spec(**training):
    from seqbench.registry import registry

    reg = registry()
    return RunSpec(
        model="rnn", task="copy", kind="aligned", train_size=64, seed=3,
        model_params=resolve_params("m", reg.model("rnn").defaults,
                                    {"hidden_size": 12, "embed_size": 8, "dropout": 0.1}),
        task_params=resolve_params("t", reg.task("copy").params,
                                   {"T": 6, "val_size": 40, "test_size": 40}),
        training=resolve_params("training", TRAINING,
                                {"max_steps": 12, "val_every": 4, "grad_clip": 0.5, **training}),
    )


def _curve(record):
    assert record["status"] == "done", record.get("error")
    return [(p["step"], p["train_loss"], p["val"]["cross_entropy"]) for p in record["curve"]]


def test_training_with_tbptt_K_the_sequence_length_follows_the_bptt_curve():
    """Manual optimisation, one window of the whole sequence (26 steps), clipping, dropout, the
    schedule: the same curve as Lightning's automatic BPTT, step for step."""
    from seqbench.experiment.runner import execute

    bptt, tbptt = execute(_spec()), execute(_spec(tbptt=26))
    assert [s for s, *_ in _curve(tbptt)] == [4, 8, 12]
    for (s1, l1, v1), (s2, l2, v2) in zip(_curve(bptt), _curve(tbptt)):
        assert s1 == s2
        assert l2 == pytest.approx(l1, rel=1e-5)
        assert v2 == pytest.approx(v1, rel=1e-5)
    assert tbptt["steps"] == bptt["steps"] == 12


def test_training_with_short_windows_counts_batches_as_steps():
    from seqbench.experiment.runner import execute

    rec = execute(_spec(tbptt=0.25, probe_gradients=True))  # windows of 7: 4 updates a batch
    assert rec["status"] == "done", rec.get("error")
    assert rec["steps"] == 12 and rec["samples"] == 12 * 32
    assert [p["step"] for p in rec["curve"]] == [4, 8, 12]
    g = rec["gradients"]
    assert g["grad_norm"]["step"] == [4, 8, 12] and 0 <= g["clip_fraction"] <= 1
    assert [p["step"] for p in g["probes"]] == [0, 4, 8, 12]


# ------------------------------------------------------------------------------- bad settings


@pytest.mark.parametrize("training,kind,message", [
    ({"tbptt": 2.5}, "aligned", "whole number"),
    ({"tbptt": 8}, "classification", "aligned tasks only"),
    ({"rtrl": "online"}, "seq2seq", "aligned tasks only"),
    ({"tbptt": 8, "rtrl": "online"}, "aligned", "exclude each other"),
])
def test_impossible_settings_are_refused(training, kind, message):
    with pytest.raises(PluginError, match=message):
        check_recipe(training, kind)


def test_bad_tbptt_on_the_command_line_is_one_line_and_exit_2(cli, tmp_path):
    db = tmp_path / "r.sqlite"
    r = cli("run", "--models", "rnn", "--tasks", "classification", "--tbptt", "8",
            "--dry-run", "--db", db)
    assert r.rc == 2
    assert r.stderr.strip().splitlines() == [
        "error: task 'classification': tbptt trains on one target per input position, so it "
        "applies to aligned tasks only, not classification"]
    assert not db.exists()


# ------------------------------------------------------------------------------ run identity


def test_new_recipe_keys_keep_old_run_ids_and_probing_is_not_a_new_run():
    legacy = {"schedule": "cosine"}  # the schedule of the runs made before these keys
    spec = _spec(**legacy)
    old = dict(spec.config())
    old["training"] = {k: v for k, v in spec.training.items()
                       if k not in ("probe_gradients", "tbptt", "rtrl", "warmup_steps", "cooldown")}
    canonical = json.dumps(old, sort_keys=True, separators=(",", ":"))
    assert spec.run_id == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert _spec(probe_gradients=True, **legacy).run_id == spec.run_id
    assert _spec(tbptt=0.25, **legacy).run_id != spec.run_id
    assert _spec(rtrl="online", **legacy).run_id != spec.run_id
