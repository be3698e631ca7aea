"""The built-in model plugins honour the contract in seqbench.api, and can learn.

Plugins are collected by calling each module's ``register_models`` hook directly, so these tests
do not depend on the core registry.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from seqbench.api import BOS, EOS, PAD, PluginError, TaskShape  # noqa: E402
from seqbench.experiment.budget import count_params, fit_to_budget  # noqa: E402

MODULES = ("rnn", "lstm", "gru", "seq2seq_attention", "transformer")
RECURRENT = ("rnn", "lstm", "gru")


def _collect():
    found = []
    for module in MODULES:
        importlib.import_module(f"seqbench_plugins.{module}").register_models(found.append)
    return {p.name: p for p in found}


PLUGINS = _collect()
CASES = [(name, kind) for name, p in PLUGINS.items() for kind in p.kinds]
SEQ2SEQ = [name for name, kind in CASES if kind == "seq2seq"]
ALIGNED = [name for name, kind in CASES if kind == "aligned"]

SHAPES = {
    "classification": TaskShape("classification", src_vocab_size=30, num_classes=5, max_src_len=9),
    "seq2seq": TaskShape("seq2seq", 30, tgt_vocab_size=25, max_src_len=9, max_tgt_len=8),
    "aligned": TaskShape("aligned", 30, tgt_vocab_size=25, max_src_len=9, max_tgt_len=9),
}
# Small but not trivial: two layers so inter-layer dropout and state passing are exercised.
SMALL = {
    "embed_size": 12, "hidden_size": 16, "num_layers": 2,
    "d_model": 16, "n_heads": 2, "ff_mult": 2,
}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def hparams(name, **over):
    p = PLUGINS[name]
    hp = {k: v.default for k, v in p.defaults.items()}
    hp.update({k: v for k, v in SMALL.items() if k in hp})
    hp.update(over)
    return hp


def build(name, kind, seed=0, **over):
    torch.manual_seed(seed)
    return PLUGINS[name].build(kind, SHAPES[kind], hparams(name, **over))


def batch(lengths, vocab=30, width=None, seed=1):
    """Random ids in [4, vocab) (no specials), PAD after each row's length."""
    g = torch.Generator().manual_seed(seed)
    width = width or max(lengths)
    ids = torch.randint(4, vocab, (len(lengths), width), generator=g)
    lens = torch.tensor(lengths)
    ids[torch.arange(width)[None, :] >= lens[:, None]] = PAD
    return ids, lens


def run(model, kind, src, src_len, tgt_in=None):
    return model(src, src_len, tgt_in) if kind == "seq2seq" else model(src, src_len)


def tgt_for(src_len, seed=2, width=None):
    tgt, _ = batch([5, 3, 6, 2][: len(src_len)], vocab=25, width=width, seed=seed)
    tgt[:, 0] = 2  # BOS
    return tgt


# --------------------------------------------------------------------------------------------
# Declarations


def test_importing_plugins_does_not_import_torch():
    code = (
        "import sys\n"
        f"for m in {MODULES!r}: __import__('seqbench_plugins.' + m)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plugins_declared():
    assert set(PLUGINS) == {"rnn", "lstm", "gru", "seq2seq-attention", "transformer"}
    for name in RECURRENT:
        assert PLUGINS[name].kinds == ("classification", "seq2seq", "aligned")
        assert PLUGINS[name].width_param == "hidden_size"
    assert PLUGINS["seq2seq-attention"].kinds == ("seq2seq",)
    t = PLUGINS["transformer"]
    assert (t.width_param, t.width_multiple_of) == ("d_model", "n_heads")
    assert t.defaults["d_model"].default % t.defaults["n_heads"].default == 0
    assert set(PLUGINS["rnn"].defaults["init"].choices) == {"default", "identity", "orthogonal"}


def test_invalid_requests_are_plugin_errors():
    with pytest.raises(PluginError, match="multiple of n_heads"):
        build("transformer", "aligned", d_model=18, n_heads=4)
    with pytest.raises(PluginError, match="does not support"):
        build("seq2seq-attention", "classification")
    with pytest.raises(PluginError, match="dropout"):
        build("lstm", "aligned", dropout=1.5)


# --------------------------------------------------------------------------------------------
# Shapes and gradients


@pytest.mark.parametrize("name,kind", CASES)
def test_output_shapes_with_default_hparams(name, kind):
    torch.manual_seed(0)
    p = PLUGINS[name]
    model = p.build(kind, SHAPES[kind], {k: v.default for k, v in p.defaults.items()})
    src, src_len = batch([7, 3, 5])
    out = run(model, kind, src, src_len, tgt_for(src_len))
    expected = {"classification": (3, 5), "seq2seq": (3, 6, 25), "aligned": (3, 7, 25)}[kind]
    assert out.shape == expected
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name,kind", CASES)
def test_backward_reaches_every_parameter(name, kind):
    model = build(name, kind).train()
    src, src_len = batch([7, 3, 5, 1])
    out = run(model, kind, src, src_len, tgt_for(src_len))
    out.float().pow(2).mean().backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(param.grad).all(), pname
        assert param.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


# --------------------------------------------------------------------------------------------
# Padding and causality


def real_positions(out, kind, lengths):
    """The entries of a model's output that belong to real (non-PAD) tokens, row by row."""
    if kind == "aligned":
        return [out[i, :n] for i, n in enumerate(lengths)]
    return list(out)  # classification (C,) / seq2seq (T, V) per row


@pytest.mark.parametrize("name,kind", CASES)
def test_padding_does_not_change_outputs(name, kind):
    model = build(name, kind).eval()
    lengths = [6, 2, 4]
    src, src_len = batch(lengths)
    tgt = tgt_for(src_len)
    with torch.no_grad():
        base = run(model, kind, src, src_len, tgt)
        # The same batch with four more PAD columns.
        padded = torch.cat([src, torch.full((3, 4), PAD)], dim=1)
        wider = run(model, kind, padded, src_len, tgt)
        # Each row on its own, with no padding at all.
        alone = [
            run(model, kind, src[i : i + 1, :n], src_len[i : i + 1], tgt[i : i + 1])[0]
            for i, n in enumerate(lengths)
        ]
    if kind == "aligned":
        wider = wider[:, : src.size(1)]
    for a, b, c in zip(
        real_positions(base, kind, lengths), real_positions(wider, kind, lengths), alone
    ):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
        torch.testing.assert_close(a, c[: a.size(0)] if kind == "aligned" else c, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_target_padding_does_not_change_real_target_positions(name):
    model = build(name, "seq2seq").eval()
    src, src_len = batch([6, 2, 4])
    tgt = tgt_for(src_len)
    with torch.no_grad():
        base = model(src, src_len, tgt)
        wider = model(src, src_len, torch.cat([tgt, torch.full((3, 3), PAD)], dim=1))
    torch.testing.assert_close(base, wider[:, : tgt.size(1)], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ALIGNED)
def test_aligned_is_causal(name):
    model = build(name, "aligned").eval()
    src, src_len = batch([8, 8])
    t = 4
    changed = src.clone()
    changed[:, t] = torch.where(src[:, t] == 5, 6, 5)
    with torch.no_grad():
        a, b = model(src, src_len), model(changed, src_len)
    torch.testing.assert_close(a[:, :t], b[:, :t], atol=1e-6, rtol=0)
    assert not torch.allclose(a[:, t], b[:, t]), "output at t ignores input at t"


# --------------------------------------------------------------------------------------------
# Generation


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_generate_is_bounded_deterministic_and_matches_teacher_forcing(name):
    model = build(name, "seq2seq").eval()
    src, src_len = batch([6, 2, 4, 5])
    with torch.no_grad():
        out = model.generate(src, src_len, max_len=7)
        again = model.generate(src, src_len, max_len=7)
        assert out.dtype == torch.long and out.shape[0] == 4 and 1 <= out.shape[1] <= 7
        assert torch.equal(out, again)
        assert ((out >= 0) & (out < 25)).all()
        # Greedy decoding step by step must agree with one teacher-forced pass over its own
        # output: incremental decoding computes the same function as forward().
        tgt_in = torch.cat([torch.full((4, 1), 2), out[:, :-1]], dim=1)
        forced = model(src, src_len, tgt_in).argmax(-1)
    for row, frow in zip(out.tolist(), forced.tolist()):
        stop = row.index(EOS) + 1 if EOS in row else len(row)
        assert row[:stop] == frow[:stop]
        assert all(tok == PAD for tok in row[stop:]), "tokens after EOS must be PAD"


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_generate_stops_when_every_row_emitted_eos(name):
    model = build(name, "seq2seq").eval()
    with torch.no_grad():
        model.head.bias[EOS] = 1e4  # every step's argmax is now EOS
        src, src_len = batch([6, 2, 4])
        out = model.generate(src, src_len, max_len=10)
        assert out.tolist() == [[EOS]] * 3
        assert model.generate(src, src_len, max_len=0).shape == (3, 0)


def test_generate_respects_eval_mode():
    # Dropout is active in train mode and must be off in eval mode.
    model = build("transformer", "seq2seq", dropout=0.5).eval()
    src, src_len = batch([6, 2, 4, 5])
    with torch.no_grad():
        first = model.generate(src, src_len, max_len=6)
        torch.manual_seed(123)
        assert torch.equal(first, model.generate(src, src_len, max_len=6))


def greedy_by_rerunning(model, src, src_len, max_len):
    """Reference greedy decoding without any cache: each step runs the teacher-forced forward()
    over the whole prefix and takes the last position's argmax."""
    prefix = torch.full((src.size(0), 1), BOS)
    done = torch.zeros(src.size(0), dtype=torch.bool)
    for _ in range(max_len):
        tok = model(src, src_len, prefix)[:, -1].argmax(-1).masked_fill(done, PAD)  # (B,)
        prefix = torch.cat([prefix, tok[:, None]], dim=1)
        done |= tok == EOS
        if done.all():
            break
    return prefix[:, 1:]


@pytest.mark.parametrize("seed", range(4))
def test_transformer_incremental_generate_equals_rerunning_the_prefix(seed):
    # Untrained, with dropout that eval mode must switch off; sources of different lengths padded
    # to a common width (with extra PAD columns), so the cross-attention masks matter. Seeds 2
    # and 3 have a row that emits EOS early and must then emit PAD while the others go on.
    model = build("transformer", "seq2seq", seed=seed, dropout=0.3).eval()
    src, src_len = batch([7, 2, 5, 1, 4], width=9, seed=seed)
    with torch.no_grad():
        out = model.generate(src, src_len, max_len=12)
        expected = greedy_by_rerunning(model, src, src_len, max_len=12)
    assert out.size(1) > 1
    assert torch.equal(out, expected), (out, expected)


# --------------------------------------------------------------------------------------------
# Model-specific behaviour


def _rnns(model):
    return [m for m in model.modules() if isinstance(m, torch.nn.RNN)]


@pytest.mark.parametrize("kind", ["seq2seq", "aligned"])
def test_rnn_identity_init_is_irnn(kind):
    model = build("rnn", kind, init="identity", nonlinearity="relu")
    rnns = _rnns(model)
    assert rnns
    for rnn in rnns:
        assert rnn.nonlinearity == "relu"
        for layer in range(rnn.num_layers):
            w = getattr(rnn, f"weight_hh_l{layer}")
            assert torch.equal(w, torch.eye(w.size(0)))
            assert not getattr(rnn, f"bias_hh_l{layer}").any()
            assert not getattr(rnn, f"bias_ih_l{layer}").any()


@pytest.mark.parametrize("kind", ["classification", "seq2seq"])
def test_rnn_orthogonal_init(kind):
    model = build("rnn", kind, init="orthogonal")
    for rnn in _rnns(model):
        for layer in range(rnn.num_layers):
            w = getattr(rnn, f"weight_hh_l{layer}")
            torch.testing.assert_close(w @ w.T, torch.eye(w.size(0)), atol=1e-5, rtol=0)


def test_rnn_default_init_is_not_identity():
    (rnn,) = _rnns(build("rnn", "aligned"))
    w = rnn.weight_hh_l0
    assert not torch.allclose(w @ w.T, torch.eye(w.size(0)), atol=1e-2)


def test_attention_is_a_distribution_over_real_source_positions():
    model = build("seq2seq-attention", "seq2seq").eval()
    lengths = [6, 2, 4]
    src, src_len = batch(lengths, width=8)
    tgt = tgt_for(src_len)
    with torch.no_grad():
        logits, weights = model(src, src_len, tgt, return_attention=True)
    assert weights.shape == (3, tgt.size(1), 8)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, tgt.size(1)))
    for i, n in enumerate(lengths):
        assert (weights[i, :, n:] == 0).all(), "padded source positions got attention"
        assert (weights[i, :, :n] > 0).all()
    torch.testing.assert_close(logits, model(src, src_len, tgt))


# --------------------------------------------------------------------------------------------
# Parameter budgets


def test_count_params_counts_trainable_elements():
    layer = torch.nn.Linear(3, 2)  # 3*2 weights + 2 biases
    assert count_params(layer) == 8
    layer.bias.requires_grad_(False)
    assert count_params(layer) == 6


@pytest.mark.parametrize("name,kind", CASES)
def test_fit_to_budget_lands_within_ten_percent(name, kind):
    p = PLUGINS[name]
    hp = {k: v.default for k, v in p.defaults.items()}
    rng = torch.random.get_rng_state()
    fitted = fit_to_budget(p, kind, SHAPES[kind], hp, 50_000)
    assert torch.equal(rng, torch.random.get_rng_state()), "the search consumed random numbers"
    assert {**fitted, p.width_param: hp[p.width_param]} == hp  # only the width changed
    if p.width_multiple_of:
        assert fitted[p.width_param] % hp[p.width_multiple_of] == 0
    n = count_params(p.build(kind, SHAPES[kind], fitted))
    assert abs(n - 50_000) <= 5_000, (fitted[p.width_param], n)


def test_fit_to_budget_rejects_an_impossible_budget():
    p = PLUGINS["lstm"]
    hp = {k: v.default for k, v in p.defaults.items()}
    with pytest.raises(PluginError, match="over the budget"):
        fit_to_budget(p, "seq2seq", SHAPES["seq2seq"], hp, 500)


# --------------------------------------------------------------------------------------------
# Initialisation that the order tests and the controls depend on


def test_transformer_token_and_position_terms_start_on_one_scale():
    """The defect of the first study: N(0, 1) embeddings times sqrt(D) had norm D, sqrt(2D) times
    the sinusoidal positions' sqrt(D/2), and drowned them. Now both are about sqrt(D)."""
    from seqbench_plugins._transformer import sinusoidal_positions

    for d_model in (16, 64, 256):
        model = build("transformer", "classification", d_model=d_model, n_heads=2)
        tokens = model.embed.tok.weight[4:] * model.embed.scale  # (V-4, D), the real tokens
        positions = sinusoidal_positions(64, d_model)  # (64, D)
        ratio = float(tokens.norm(dim=1).mean() / positions.norm(dim=1).mean())
        assert 0.7 < ratio < 2.0, (d_model, ratio)
        assert not model.embed.tok.weight[PAD].any(), "the PAD embedding must stay zero"


@pytest.mark.parametrize("name,kind", [("lstm", "aligned"), ("seq2seq-attention", "seq2seq")])
def test_lstm_forget_gates_start_open(name, kind):
    model = build(name, kind, forget_bias=1.0)
    lstms = [m for m in model.modules() if isinstance(m, torch.nn.LSTM)]
    assert lstms
    for lstm in lstms:
        H = lstm.hidden_size
        for layer in range(lstm.num_layers):
            b = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
            assert torch.equal(b[H : 2 * H], torch.ones(H))  # torch's gate order: i, f, g, o
            assert b[:H].abs().max() < 1  # the other gates keep torch's init
    zero = build("lstm", "aligned", forget_bias=0.0).rnn
    assert not (zero.bias_ih_l0 + zero.bias_hh_l0)[zero.hidden_size : 2 * zero.hidden_size].any()


# --------------------------------------------------------------------------------------------
# Learning: every model x kind must use word order (seqbench.testing, also for third parties)

from seqbench.testing import TASKS, assert_learns_order, check_model, order_score  # noqa: E402


@pytest.mark.parametrize("name,kind", CASES)
def test_every_builtin_keeps_the_model_contract(name, kind):
    model = build(name, kind)
    check_model(model, kind, SHAPES[kind])
    assert model.training  # the check leaves the model in the mode it found it in


class Summing(torch.nn.Module):
    """A deliberately broken model: ``how`` says which clause of the contract it breaks."""

    def __init__(self, how):
        super().__init__()
        self.how, self.embed, self.out = how, torch.nn.Embedding(30, 8), torch.nn.Linear(8, 5)

    def forward(self, src, src_len, *tgt):
        x = self.embed(src)  # (B, S, 8); PAD embeds to a non-zero vector here
        if self.how == "sees-padding":
            return self.out(x.sum(1))  # (B, C), but PAD positions count
        if self.how == "per-position":
            return self.out(x)  # (B, S, C) where (B, C) is due
        x = x * (src != PAD).unsqueeze(-1)  # PAD ignored, so only causality is broken
        return self.out(x.flip(1).cumsum(1).flip(1))  # (B, S, V): each output sees the future


@pytest.mark.parametrize("how,kind,message", [
    ("per-position", "classification", r"forward must return logits of shape \(4, 5\)"),
    ("sees-padding", "classification", "padded positions must be ignored"),
    ("anticausal", "aligned", "aligned outputs must be causal"),
    ("per-position", "seq2seq", "must be a Seq2SeqModel"),
])
def test_the_contract_check_names_the_broken_clause(how, kind, message):
    shape = TaskShape(kind, 30, num_classes=5, tgt_vocab_size=5, max_src_len=8, max_tgt_len=4)
    with pytest.raises(AssertionError, match=message):
        check_model(Summing(how), kind, shape)


def test_order_tasks_are_what_they_say():
    g = torch.Generator().manual_seed(0)
    src, lengths, label = TASKS["classification"].sample(torch, g, 500)
    for row, n, y in zip(src.tolist(), lengths.tolist(), label.tolist()):
        real = row[:n]
        assert all(t == PAD for t in row[n:]) and PAD not in real
        assert real.count(4) == 1 and real.count(5) == 1  # one of each marker
        assert y == (0 if real.index(4) < real.index(5) else 1)
    assert 0.4 < label.float().mean() < 0.6

    src, lengths, target = TASKS["aligned"].sample(torch, g, 50)
    for row, n, want in zip(src.tolist(), lengths.tolist(), target.tolist()):
        assert want[0] == PAD and want[1:n] == row[: n - 1] and set(want[n:]) <= {PAD}

    src, lengths, target = TASKS["seq2seq"].sample(torch, g, 50)
    assert lengths.eq(4).all() and torch.equal(target, src.flip(1))


@pytest.mark.parametrize("name,kind", CASES)
def test_learns_a_task_that_needs_order(name, kind):
    """With its default hyperparameters, within 400 steps: >= 95% held out (chance: 50% for
    classification, 12.5% aligned, 0.08% seq2seq)."""
    assert_learns_order(PLUGINS[name], kind)


@pytest.fixture(scope="module")
def bag_of_embeddings():
    """The example package's order-blind model, loaded as its users get it."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "examples" / "seqbench-example"
    sys.path.insert(0, str(folder))
    try:
        example = importlib.import_module("seqbench_example")
    finally:
        sys.path.remove(str(folder))
    found = []
    example.register_models(found.append)
    return found[0]


@pytest.mark.parametrize("kind", ["classification", "aligned"])
def test_order_check_fails_an_order_blind_model(bag_of_embeddings, kind):
    with pytest.raises(AssertionError, match="a model that uses word order reaches 95%"):
        assert_learns_order(bag_of_embeddings, kind, steps=300)
    assert order_score(bag_of_embeddings, kind, steps=300) < 0.6


def drowned_positions_transformer():
    """The Transformer as the first study ran it: N(0, 1) token embeddings times sqrt(D)."""
    from dataclasses import replace

    plugin = PLUGINS["transformer"]

    def build_old(kind, shape, hp):
        model = plugin.build(kind, shape, hp)
        with torch.no_grad():
            for embed in (m for m in model.modules() if type(m).__name__ == "Embedder"):
                embed.tok.weight.normal_(0.0, 1.0)
                embed.tok.weight[PAD].zero_()
        return model

    return replace(plugin, name="transformer-drowned-positions", build=build_old)


@pytest.mark.parametrize("kind", ["classification", "aligned", "seq2seq"])
def test_order_check_catches_drowned_positions(kind):
    """The test that would have caught the first study's defect."""
    with pytest.raises(AssertionError, match="transformer-drowned-positions"):
        assert_learns_order(drowned_positions_transformer(), kind)


# --------------------------------------------------------------------------------------------
# The controls preset (README "Controls"): what each model must reproduce, on equal terms


def test_controls_preset_gives_every_model_the_same_tuning_budget():
    from collections import defaultdict

    from seqbench.experiment import matrixfile
    from seqbench.experiment.plan import plan
    from seqbench.registry import registry

    reg = registry()
    trials = defaultdict(list)  # (part, model, variant) -> the learning rates it runs with
    for path in matrixfile.matrix_files(matrixfile.preset_path("controls")):
        data = matrixfile.read(path)
        matrix = matrixfile.build_matrix(data, None, None, None, None, (), (), {}, {},
                                         list(reg.models), list(reg.tasks))
        the_plan = plan(matrix, reg)
        # one configuration each; the digits part judged by the median of three seeds
        assert the_plan.seeds == ([0, 1, 2] if path.stem == "1-digits" else [0]), path
        assert the_plan.tuning is None
        for run in the_plan.runs:
            variant = (run.task, run.model_params.get("init"), run.task_params.get("T"))
            trials[path.stem, run.model, variant].append(run.training["lr"])
    lrs = {tuple(sorted(set(v))) for v in trials.values()}  # per seed, the same one
    assert lrs == {(4e-3,)}, trials  # the same single learning rate for every model
    covered = {(model, variant) for _, model, variant in trials}
    assert covered == {
        ("lstm", ("classification", None, None)),
        ("gru", ("classification", None, None)),
        ("transformer", ("classification", None, None)),
        ("rnn", ("classification", "default", None)),  # tanh
        ("rnn", ("classification", "identity", None)),  # IRNN
        ("seq2seq-attention", ("translation", None, None)),
        ("transformer", ("translation", None, None)),
        ("lstm", ("copy", None, 100)),
    }
