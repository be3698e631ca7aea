"""Gradient probes (``--probe-gradients``): what they measure, that they leave training alone,
the physics they must show at step 0, and how they are stored and exported."""

from __future__ import annotations

import json
import random
import sqlite3

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from seqbench import hookimpl  # noqa: E402
from seqbench.api import PAD, ModelPlugin, Param, TaskShape, resolve_params  # noqa: E402
from seqbench.experiment.plan import TRAINING, RunSpec  # noqa: E402
from seqbench.experiment.probes import input_gradient_norms, probe_batch  # noqa: E402
from seqbench.store import Store  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def spec(model="rnn", task="copy", mp=None, tp=None, **training):
    from seqbench.registry import registry

    reg = registry()
    kind = reg.task(task).kind_for(resolve_params("t", reg.task(task).params, tp or {}))
    return RunSpec(
        model=model, task=task, kind=kind, train_size=64, seed=5,
        model_params=resolve_params("m", reg.model(model).defaults, mp or {}),
        task_params=resolve_params("t", reg.task(task).params, tp or {}),
        training=resolve_params("training", TRAINING,
                                {"max_steps": 12, "val_every": 4, **training}),
    )


COPY = {"T": 6, "val_size": 40, "test_size": 40}


# --------------------------------------------------------------------------- training unchanged


@pytest.mark.parametrize("model,mp", [
    ("rnn", {"hidden_size": 16, "embed_size": 8, "dropout": 0.2}),
    ("transformer", {"d_model": 16, "n_heads": 2, "num_layers": 1, "dropout": 0.2}),
])
def test_probing_leaves_training_unchanged(model, mp):
    """Same seed, with and without probes: the same curve, bit for bit, and the same test
    scores. Dropout is on, so a probe that drew from the training generator would show."""
    from seqbench.experiment.runner import execute

    plain = execute(spec(model, mp=mp, tp=COPY))
    probed = execute(spec(model, mp=mp, tp=COPY, probe_gradients=True))
    assert plain["status"] == probed["status"] == "done", probed.get("error")
    strip = lambda c: [{k: v for k, v in p.items() if k != "seconds"} for p in c]  # noqa: E731
    assert strip(probed["curve"]) == strip(plain["curve"])
    assert probed["test"] == plain["test"]
    assert "gradients" not in plain
    g = probed["gradients"]
    assert [p["step"] for p in g["probes"]] == [0, 4, 8, 12]
    assert all(len(p["input_grad_norm"]) == 26 for p in g["probes"])  # T + 2n positions
    assert g["grad_norm"]["step"] == [4, 8, 12]


def test_a_probe_restores_every_generator_the_model_draws_from():
    """A model that draws random numbers even in eval mode (and a frozen embedding)."""

    class Noisy(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.embed.weight.requires_grad_(False)
            self.out = nn.Linear(4, 3)

        def forward(self, src, src_len):
            random.random()
            x = self.embed(src) + 0.01 * torch.randn(src.shape + (4,))
            return self.out(x.mean(1))

    m = Noisy()
    m.train()
    m.out.weight.grad = torch.full_like(m.out.weight, 7.0)
    b = {"src": torch.randint(0, 10, (3, 5)), "src_len": torch.full((3,), 5),
         "y": torch.tensor([0, 1, 2])}
    before = torch.get_rng_state(), random.getstate()
    norms = input_gradient_norms(m, "classification", b)
    assert len(norms) == 5 and all(v > 0 for v in norms)
    assert torch.equal(torch.get_rng_state(), before[0]) and random.getstate() == before[1]
    assert m.training  # its mode is back
    assert torch.equal(m.out.weight.grad, torch.full_like(m.out.weight, 7.0))  # .grad untouched


# --------------------------------------------------------------------------- what is measured


def _manual(model, kind, b):
    """‖∂L/∂x_t‖ per position, the long way: the embedding output kept, L per example."""
    model.eval()
    x = model.encoder.embed(b["src"]) if hasattr(model, "encoder") else model.embed(b["src"])
    x.retain_grad()
    saved = model.encoder.embed.forward if hasattr(model, "encoder") else model.embed.forward
    target = model.encoder.embed if hasattr(model, "encoder") else model.embed
    target.forward = lambda ids: x  # the same tensor whatever calls it
    try:
        if kind == "seq2seq":
            logits = model(b["src"], b["src_len"], b["tgt_in"])
            rows = [F.cross_entropy(logits[i], b["y"][i], ignore_index=PAD)
                    for i in range(len(logits))]
        elif kind == "classification":
            logits = model(b["src"], b["src_len"])
            rows = [F.cross_entropy(logits[i : i + 1], b["y"][i : i + 1])
                    for i in range(len(logits))]
        else:
            logits = model(b["src"], b["src_len"])
            rows = [F.cross_entropy(logits[i, n - 1 : n], b["y"][i, n - 1 : n])
                    for i, n in enumerate(b["src_len"].tolist())]
        sum(rows).backward()
    finally:
        target.forward = saved
    norms = x.grad.norm(dim=-1)
    real = torch.arange(x.size(1))[None] < b["src_len"][:, None]
    return ((norms * real).sum(0) / real.sum(0)).tolist()


@pytest.mark.parametrize("kind", ["aligned", "classification", "seq2seq"])
def test_probe_is_the_gradient_of_the_final_positions_loss(kind):
    from seqbench_plugins._recurrent import build_recurrent

    torch.manual_seed(0)
    shape = TaskShape(kind, 9, tgt_vocab_size=9, num_classes=4, max_src_len=7, max_tgt_len=5)
    m = build_recurrent("lstm", kind, shape, {"embed_size": 5, "hidden_size": 6,
                                              "num_layers": 1, "dropout": 0.3})
    lens = torch.tensor([7, 4, 6])
    src = torch.randint(1, 9, (3, 7)).masked_fill(torch.arange(7)[None] >= lens[:, None], PAD)
    b = {"src": src, "src_len": lens}
    if kind == "classification":
        b["y"] = torch.tensor([0, 3, 1])
    elif kind == "aligned":
        b["y"] = torch.randint(1, 9, (3, 7)).masked_fill(src == PAD, PAD)
    else:
        b["tgt_in"] = torch.randint(1, 9, (3, 5))
        b["y"] = torch.randint(1, 9, (3, 5))
        b["y"][1, 3:] = PAD
    got = input_gradient_norms(m, kind, b)
    want = _manual(m, kind, b)
    assert got == pytest.approx(want, rel=1e-5, abs=1e-12)
    # ragged rows: position 6 is real in one row only, and a row's padding never counts
    assert got[6] == pytest.approx(want[6], rel=1e-5)


# --------------------------------------------------------------------------- the physics


def _ratio(name, mp, seed):
    from seqbench.registry import registry

    reg = registry()
    data = reg.task("copy").load({"T": 100}, 64, 0)
    torch.manual_seed(seed)
    p = reg.model(name)
    model = p.build("aligned", data.shape(), resolve_params("m", p.defaults, mp))
    norms = input_gradient_norms(model, "aligned", probe_batch(data.train, "aligned"))
    assert len(norms) == 120
    return norms[0] / norms[-1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_step_zero_signal_vanishes_in_a_tanh_rnn_and_survives_in_an_irnn(seed):
    """Copy, T = 100 (120 positions), default widths, before any update. A tanh RNN with
    torch's init multiplies the gradient by ~0.58 per step (spectral radius of W_hh): nothing
    measurable reaches position 0. The IRNN (ReLU, W_hh = I) carries it unchanged."""
    assert _ratio("rnn", {}, seed) < 1e-6
    assert _ratio("rnn", {"nonlinearity": "relu", "init": "identity"}, seed) > 1e-3


# --------------------------------------------------------------------------- gradient norms


def test_gradient_norms_are_recorded_before_clipping():
    from seqbench.experiment.runner import execute

    tight = execute(spec(mp={"hidden_size": 16}, tp=COPY, grad_clip=1e-4, probe_gradients=True))
    g = tight["gradients"]
    assert min(g["grad_norm"]["median"]) > 1e-3  # after clipping they would be <= 1e-4
    assert g["clip_fraction"] == 1.0
    free = execute(spec(mp={"hidden_size": 16}, tp=COPY, grad_clip=0, probe_gradients=True))
    assert free["gradients"]["clip_fraction"] is None  # no threshold, nothing to exceed
    assert all(m <= x for m, x in zip(free["gradients"]["grad_norm"]["median"],
                                      free["gradients"]["grad_norm"]["max"]))


class NoEmbedding:
    """A third-party model that one-hot encodes its tokens (no nn.Embedding)."""

    @hookimpl
    def register_models(self, register):
        def build(kind, shape, hp):
            class OneHot(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.v = shape.src_vocab_size
                    self.out = nn.Linear(self.v, shape.tgt_vocab_size)

                def forward(self, src, src_len):
                    return self.out(F.one_hot(src, self.v).float().cumsum(1))

            return OneHot()

        register(ModelPlugin("one-hot", "one-hot counts -> linear", ("aligned",),
                             {"width": Param(1, "unused")}, build, width_param="width"))


class BagOfEmbeddings:
    """A third-party model with an nn.Embedding (as in examples/seqbench-example)."""

    @hookimpl
    def register_models(self, register):
        def build(kind, shape, hp):
            class Bag(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.embed = nn.Embedding(shape.src_vocab_size, 8, padding_idx=PAD)
                    self.out = nn.Linear(8, shape.tgt_vocab_size)

                def forward(self, src, src_len):  # output t: the mean of inputs 0..t
                    steps = torch.arange(1, src.size(1) + 1).view(1, -1, 1)
                    return self.out(self.embed(src).cumsum(1) / steps)

            return Bag()

        register(ModelPlugin("prefix-mean", "mean of embeddings so far -> linear", ("aligned",),
                             {"width": Param(1, "unused")}, build, width_param="width"))


def test_third_party_models_with_an_embedding_get_probes(plugin):
    from seqbench.experiment.runner import execute

    plugin(BagOfEmbeddings())
    rec = execute(spec("prefix-mean", tp=COPY, probe_gradients=True))
    assert rec["status"] == "done", rec.get("error")
    step0 = rec["gradients"]["probes"][0]["input_grad_norm"]
    # the last output averages all 26 inputs equally: the same signal reaches every position
    assert len(step0) == 26 and max(step0) == pytest.approx(min(step0), rel=1e-5)
    assert "note" not in rec["gradients"]


def test_models_without_an_embedding_get_a_note_and_still_their_norms(plugin):
    from seqbench.experiment.runner import execute

    plugin(NoEmbedding())
    rec = execute(spec("one-hot", tp=COPY, probe_gradients=True))
    assert rec["status"] == "done", rec.get("error")
    g = rec["gradients"]
    assert g["probes"] == [] and "no nn.Embedding" in g["note"]
    assert g["grad_norm"]["step"] == [4, 8, 12]


# --------------------------------------------------------------------------- stored, exported

GRADIENTS = {
    "probes": [{"step": 0, "input_grad_norm": [1e-30, 0.5, None]}],
    "grad_norm": {"step": [4], "median": [0.25], "max": [float("nan")]},
    "clip_fraction": 0.0,
}


def _record(run_id, status="done", gradients=GRADIENTS):
    rec = {"run_id": run_id, "model": "rnn", "task": "copy", "kind": "aligned", "train_size": 64,
           "seed": 0, "status": status, "config": {}, "trial": {}, "curve": []}
    if gradients is not None:
        rec["gradients"] = gradients
    return rec


def test_probes_are_stored_apart_and_replaced_with_their_run(tmp_path):
    db = tmp_path / "r.sqlite"
    with Store(db) as store:
        store.save(_record("a", "failed", {**GRADIENTS, "clip_fraction": 1.0}))
        store.save(_record("a"))  # a retried run replaces its probes too
        store.save(_record("b", gradients=None))
        got = store.gradients()
        assert set(got) == {"a"} and got["a"]["clip_fraction"] == 0.0
        assert got["a"]["probes"][0]["input_grad_norm"] == [1e-30, 0.5, None]
        assert store.runs()[0].gradients is None  # runs() stays lean
    with Store(db, readonly=True) as store:
        assert set(store.gradients(["a", "b", "c"])) == {"a"}


def test_a_database_from_before_probes_is_read_without_them(tmp_path):
    db = tmp_path / "old.sqlite"
    with Store(db) as store:
        store.save(_record("a", gradients=None))
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE gradients")  # as an older seqbench left it
    with Store(db, readonly=True) as store:
        assert store.gradients() == {} and len(store.runs()) == 1
    with Store(db) as store:  # opened for writing, it gains the table
        store.save(_record("b"))
        assert set(store.gradients()) == {"b"}


def test_results_json_carries_the_gradients_object(cli, tmp_path):
    db = tmp_path / "r.sqlite"
    with Store(db) as store:
        store.save(_record("a"))
        store.save(_record("b", gradients=None))
    r = cli("results", "--db", db, "--json")
    assert r.rc == 0, r.stderr
    runs = {x["run_id"]: x for x in json.loads(r.stdout)}
    g = runs["a"]["gradients"]
    assert list(g) == ["probes", "grad_norm", "clip_fraction"]
    assert g["probes"] == [{"step": 0, "input_grad_norm": [1e-30, 0.5, None]}]
    assert g["grad_norm"] == {"step": [4], "median": [0.25], "max": [None]}  # NaN -> null
    assert runs["b"]["gradients"] is None
    csv = cli("results", "--db", db, "--csv")
    assert csv.rc == 0 and "gradients" not in csv.stdout.splitlines()[0]
