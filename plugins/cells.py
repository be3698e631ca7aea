"""The recurrent cells, written out one equation at a time: the reference for the fused kernels.

The models in ``_recurrent.py`` run torch's fused ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` for
speed. A fused kernel is a black box; this file is what it computes, step by step, in torch's
own conventions (gate order, two bias vectors per gate), so that a reader can follow the
tutorial's equations from top to bottom and check them against the fast path:
``tests/test_cells.py`` runs both on the same weights and requires the same outputs and the same
gradients (to 1e-5).

Notation (torch's): ``x_t`` the input at step ``t`` (``E`` features), ``h_t`` the hidden state
(``H`` units), ``W_i*`` input-to-hidden weights ``(H, E)``, ``W_h*`` hidden-to-hidden weights
``(H, H)``, ``b_i*`` / ``b_h*`` their biases, ``σ`` the logistic sigmoid, ``⊙`` the elementwise
product. torch stacks a cell's gates into one matrix: ``weight_ih_l0`` is ``(G·H, E)`` with the
``G`` gates' blocks in the order given below, ``weight_hh_l0`` is ``(G·H, H)``.

:func:`unroll` runs a fused module's own parameters (not copies) through these cells, every
layer and time step, so gradients land on the very tensors the fused module trains. The RTRL
trainer (``rtrl.py``) derives its forward sensitivities from :class:`ElmanCell`'s equation.

Why the gradient vanishes (the tutorial's "梯度困区"): back-propagating through one Elman step
multiplies the gradient by ``W_hhᵀ diag(φ'(z_t))``; over ``k`` steps by ``k`` such factors. With
torch's default init (uniform ±1/√H) the spectral radius of ``W_hh`` is about 0.58, and
``tanh' <= 1``, so the gradient that reaches 100 steps back shrinks like ``0.58^100 ≈ 1e-24``.
The LSTM's cell state is updated additively, ``c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t``: through the
cell the gradient is multiplied only by the forget gate ``f_t`` — near 1 if the forget gates
are open (a large forget bias), but ``σ(0) = 0.5`` per step with torch's default bias of about
0, which vanishes as fast as the RNN.
"""

from __future__ import annotations

import torch
from torch import nn


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


class ElmanCell(nn.Module):
    """Elman RNN (``nn.RNN``), one gate::

        z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
        h_t = φ(z_t)            φ = tanh (default) or ReLU (the IRNN of Le et al. 2015)
    """

    gates = 1

    def __init__(self, nonlinearity: str = "tanh"):
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity {nonlinearity!r} is neither tanh nor relu")
        self.nonlinearity = nonlinearity

    def phi(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z) if self.nonlinearity == "tanh" else torch.relu(z)

    def forward(self, x_t, h_prev, w_ih, w_hh, b_ih, b_hh):
        """``x_t (B, E)``, ``h_prev (B, H)`` -> ``h_t (B, H)``."""
        # z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
        z = x_t @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh
        return self.phi(z)  # h_t = φ(z_t)


class LSTMCell(nn.Module):
    """LSTM (``nn.LSTM``; Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al.
    2000). Gates stacked in torch's order ``i, f, g, o``::

        i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)      input gate: how much to write
        f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)      forget gate: how much to keep
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)   candidate cell content
        o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)      output gate: how much to show
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                     the cell: an additive update
        h_t = o_t ⊙ tanh(c_t)
    """

    gates = 4

    def forward(self, x_t, state, w_ih, w_hh, b_ih, b_hh):
        """``x_t (B, E)``, ``state = (h_prev, c_prev)`` each ``(B, H)`` -> ``(h_t, c_t)``."""
        h_prev, c_prev = state
        pre = x_t @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh  # (B, 4H): all four gates at once
        pre_i, pre_f, pre_g, pre_o = pre.chunk(4, dim=1)  # torch's order: i, f, g, o
        i = sigmoid(pre_i)  # i_t
        f = sigmoid(pre_f)  # f_t
        g = torch.tanh(pre_g)  # g_t
        o = sigmoid(pre_o)  # o_t
        c = f * c_prev + i * g  # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        h = o * torch.tanh(c)  # h_t = o_t ⊙ tanh(c_t)
        return h, c


class GRUCell(nn.Module):
    """GRU (``nn.GRU``; Cho et al. 2014), in torch's convention. Gates stacked ``r, z, n``::

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)              reset gate
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)              update gate
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))   candidate state
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    (torch applies the reset gate after the recurrent product, inside the bracket, as in Cho et
    al.'s code; some papers put it before: ``W_hn (r_t ⊙ h_{t-1})``.) ``z_t`` near 1 carries the
    state, and its gradient, through unchanged.
    """

    gates = 3

    def forward(self, x_t, h_prev, w_ih, w_hh, b_ih, b_hh):
        """``x_t (B, E)``, ``h_prev (B, H)`` -> ``h_t (B, H)``."""
        gi = x_t @ w_ih.T + b_ih  # (B, 3H): W_i* x_t + b_i* for r, z, n
        gh = h_prev @ w_hh.T + b_hh  # (B, 3H): W_h* h_{t-1} + b_h* for r, z, n
        gi_r, gi_z, gi_n = gi.chunk(3, dim=1)
        gh_r, gh_z, gh_n = gh.chunk(3, dim=1)
        r = sigmoid(gi_r + gh_r)  # r_t
        z = sigmoid(gi_z + gh_z)  # z_t
        n = torch.tanh(gi_n + r * gh_n)  # n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))
        return (1 - z) * n + z * h_prev  # h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}


def cell_for(rnn: nn.RNNBase) -> nn.Module:
    """The reference cell computing what the fused ``rnn`` (``nn.RNN``/``LSTM``/``GRU``) does."""
    if isinstance(rnn, nn.LSTM):
        return LSTMCell()
    if isinstance(rnn, nn.GRU):
        return GRUCell()
    if isinstance(rnn, nn.RNN):
        return ElmanCell(rnn.nonlinearity)
    raise TypeError(f"no reference cell for {type(rnn).__name__}")


def _check_supported(rnn: nn.RNNBase) -> None:
    # What the built-in models use; the other options only change the bookkeeping.
    if rnn.bidirectional or getattr(rnn, "proj_size", 0) or not rnn.bias:
        raise ValueError("unroll supports unidirectional layers with biases and no projection")


def unroll(rnn: nn.RNNBase, x: torch.Tensor, state=None):
    """What ``rnn(x, state)`` computes, one layer and one time step at a time.

    ``rnn`` is a fused module; its own parameters are used (not copies), so gradients reach
    them. ``x`` is ``(B, S, E)`` if ``rnn.batch_first`` else ``(S, B, E)``; ``state`` and the
    return value are in the fused module's layout: ``(outputs, h_n)``, or ``(outputs, (h_n,
    c_n))`` for an LSTM, with ``h_n`` of shape ``(L, B, H)``. Between layers, in training mode,
    dropout with the module's ``dropout`` probability, as the fused kernel does.
    """
    _check_supported(rnn)
    cell = cell_for(rnn)
    if not rnn.batch_first:
        x = x.transpose(0, 1)  # work batch-first: (B, S, E)
    B, S, _ = x.shape
    L, H = rnn.num_layers, rnn.hidden_size
    lstm = isinstance(rnn, nn.LSTM)
    if state is None:
        zeros = x.new_zeros(L, B, H)
        state = (zeros, zeros) if lstm else zeros
    h0, c0 = state if lstm else (state, None)
    layer_in = x
    h_n, c_n = [], []
    for layer in range(L):
        w_ih = getattr(rnn, f"weight_ih_l{layer}")
        w_hh = getattr(rnn, f"weight_hh_l{layer}")
        b_ih = getattr(rnn, f"bias_ih_l{layer}")
        b_hh = getattr(rnn, f"bias_hh_l{layer}")
        h = h0[layer]
        c = c0[layer] if lstm else None
        outs = []
        for t in range(S):  # the recurrence: step t needs step t-1
            if lstm:
                h, c = cell(layer_in[:, t], (h, c), w_ih, w_hh, b_ih, b_hh)
            else:
                h = cell(layer_in[:, t], h, w_ih, w_hh, b_ih, b_hh)
            outs.append(h)
        h_n.append(h)
        if lstm:
            c_n.append(c)
        layer_in = torch.stack(outs, dim=1)  # (B, S, H)
        if layer < L - 1 and rnn.dropout and rnn.training:
            layer_in = nn.functional.dropout(layer_in, rnn.dropout, training=True)
    out = layer_in if rnn.batch_first else layer_in.transpose(0, 1)
    h_n = torch.stack(h_n)
    return out, ((h_n, torch.stack(c_n)) if lstm else h_n)
