"""The reference cells (plugins/cells.py) compute exactly what torch's fused kernels compute, and
the LSTM's gate initialisations do what they say."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from seqbench.api import TaskShape  # noqa: E402
from seqbench_plugins._recurrent import build_recurrent  # noqa: E402
from seqbench_plugins.cells import unroll  # noqa: E402

FUSED = {
    "rnn-tanh": lambda **kw: torch.nn.RNN(nonlinearity="tanh", **kw),
    "rnn-relu": lambda **kw: torch.nn.RNN(nonlinearity="relu", **kw),
    "lstm": lambda **kw: torch.nn.LSTM(**kw),
    "gru": lambda **kw: torch.nn.GRU(**kw),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _grads(outputs, inputs):
    return torch.autograd.grad(outputs, inputs, allow_unused=False)


@pytest.mark.parametrize("name", list(FUSED))
@pytest.mark.parametrize("batch_first", [True, False])
def test_reference_cell_equals_fused_kernel(name, batch_first):
    """Same outputs, final states and gradients (w.r.t. inputs, initial state and every weight)
    to 1e-5, two layers, from a non-zero initial state, in float32."""
    torch.manual_seed(0)
    rnn = FUSED[name](input_size=5, hidden_size=7, num_layers=2, batch_first=batch_first)
    B, S = 3, 13
    x = torch.randn((B, S, 5) if batch_first else (S, B, 5), requires_grad=True)
    h0 = torch.randn(2, B, 7, requires_grad=True)
    c0 = torch.randn(2, B, 7, requires_grad=True)
    state = (h0, c0) if name == "lstm" else h0
    leaves = [x, h0, *([c0] if name == "lstm" else []), *rnn.parameters()]
    weights = torch.randn(S, B, 7)  # a loss that weighs every output and the final state

    def loss(out, st):
        out = out if not batch_first else out.transpose(0, 1)
        h = st[0] if name == "lstm" else st
        total = (out * weights).sum() + (h**2).sum()
        return total + ((st[1] ** 3).sum() if name == "lstm" else 0)

    out_f, st_f = rnn(x, state)
    out_r, st_r = unroll(rnn, x, state)
    torch.testing.assert_close(out_r, out_f, atol=1e-5, rtol=1e-5)
    for a, b in zip(st_r if name == "lstm" else [st_r], st_f if name == "lstm" else [st_f]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    g_f = _grads(loss(out_f, st_f), leaves)
    g_r = _grads(loss(out_r, st_r), leaves)
    for a, b in zip(g_r, g_f):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_reference_cell_equals_the_models_own_kernel(cell):
    """On a built model's own recurrent layer (its init applied), not only a bare nn.RNN."""
    torch.manual_seed(1)
    shape = TaskShape("aligned", 12, tgt_vocab_size=12, max_src_len=20, max_tgt_len=20)
    hp = {"embed_size": 6, "hidden_size": 8, "num_layers": 1, "dropout": 0.0,
          "nonlinearity": "relu", "init": "identity"} if cell == "rnn" else \
         {"embed_size": 6, "hidden_size": 8, "num_layers": 1, "dropout": 0.0, "chrono": True}
    model = build_recurrent(cell, "aligned", shape, hp)
    x = model.embed(torch.randint(1, 12, (4, 20)))
    out_f, _ = model.rnn(x)
    out_r, _ = unroll(model.rnn, x)
    torch.testing.assert_close(out_r, out_f, atol=1e-5, rtol=1e-5)
    params = list(model.rnn.parameters())
    for a, b in zip(_grads(out_r.square().sum(), params), _grads(out_f.square().sum(), params)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def _lstm(**hp):
    shape = TaskShape("aligned", 12, tgt_vocab_size=12, max_src_len=120, max_tgt_len=120)
    base = {"embed_size": 6, "hidden_size": 16, "num_layers": 2, "dropout": 0.0}
    return build_recurrent("lstm", "aligned", shape, {**base, **hp}).rnn


def _gate_bias(rnn, layer, gate):  # torch's order i, f, g, o; the gate's bias is b_ih + b_hh
    H = rnn.hidden_size
    total = getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")
    return total[gate * H : (gate + 1) * H].detach()


@pytest.mark.parametrize("value", [0.0, 1.0, 3.0])
def test_forget_bias_sets_the_forget_gate_exactly(value):
    rnn = _lstm(forget_bias=value)
    for layer in range(2):
        assert torch.equal(_gate_bias(rnn, layer, 1), torch.full((16,), value))


def test_chrono_init_spreads_memory_spans_up_to_the_longest_sequence():
    """Tallec & Ollivier: b_f = log u with u in [1, T_max - 1], b_i = -b_f, T_max = 120 here."""
    torch.manual_seed(0)
    rnn = _lstm(chrono=True)
    for layer in range(2):
        b_f, b_i = _gate_bias(rnn, layer, 1), _gate_bias(rnn, layer, 0)
        u = b_f.exp()
        assert float(u.min()) >= 1.0 - 1e-6 and float(u.max()) <= 119.0 + 1e-4
        assert float(u.max()) > 30  # spread, not all at one value
        torch.testing.assert_close(b_i, -b_f)
    # and it is not the forget bias: a chrono LSTM ignores forget_bias
    assert not torch.equal(_gate_bias(rnn, 0, 1), torch.full((16,), 1.0))
