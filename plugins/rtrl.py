"""Real-time recurrent learning (Williams & Zipser 1989) for the Elman RNN tagger.

BPTT runs the whole sequence forward, then back: the gradient exists only at the end, and the
memory grows with the length. RTRL instead carries forward, with the state, its *sensitivity*
to every recurrent parameter, ``S_t = ∂h_t/∂θ`` (``H x P`` numbers per example), so the
gradient of the loss at step t is available at step t:

    z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh,     h_t = φ(z_t)          (cells.ElmanCell)
    S_t = diag(φ'(z_t)) (W_hh S_{t-1} + ∂z_t/∂θ|_{h_{t-1} fixed})
    ∂L_t/∂θ = (∂L_t/∂h_t) S_t

The immediate Jacobian ``∂z_t/∂θ`` is, per block: ``δ_ij x_t[k]`` for ``W_ih[j, k]``,
``δ_ij h_{t-1}[k]`` for ``W_hh[j, k]``, ``δ_ij`` for each bias, and ``W_ih[i, k] [token_t = v]``
for the embedding row ``E[v, k]`` (times the dropout mask). The output layer is not recurrent:
its gradient at step t is the ordinary one.

Cost: ``W_hh S_{t-1}`` is ``H x H x P`` multiply-adds per example and step, with ``P ≈ H(H + E)
+ V E``, i.e. O(H^4) for ``E ~ H``, against BPTT's O(H^2); memory ``H x P`` per example,
independent of the sequence length (BPTT's grows with it). Hence small models only.

Two schedules:

* ``accumulated``: sum ``∂L_t/∂θ`` over the sequence, one update per batch. This *is* BPTT's
  gradient (the same derivative, computed forwards), tested to 1e-5.
* ``online``: update after every step with ``∂L_t/∂θ``; the sensitivities then mix parameter
  values from different steps (the classic approximation, exact as the learning rate -> 0),
  and no sequence needs to end before learning starts.

The loss of step t is its share of the batch's loss (mean cross-entropy over every non-PAD
target), so the per-step gradients add up to the batch gradient.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from seqbench.api import PAD, PluginError

MAX_SENSITIVITY = 50_000_000  # floats of B x H x P: ~200 MB in float32


def _check(model: nn.Module, batch: int) -> tuple[nn.RNN, int]:
    rnn = getattr(model, "rnn", None)
    if not isinstance(rnn, nn.RNN) or rnn.num_layers != 1 or rnn.bidirectional:
        raise PluginError("RTRL is implemented for the one-layer Elman RNN only (model rnn, "
                          "num_layers=1)")
    H, E = rnn.hidden_size, rnn.input_size
    V = model.embed.num_embeddings
    P = H * E + H * H + 2 * H + V * E
    if batch * H * P > MAX_SENSITIVITY:
        raise PluginError(
            f"RTRL's sensitivities would hold {batch * H * P:,} numbers (batch {batch} x hidden "
            f"{H} x {P:,} recurrent parameters): use a smaller hidden_size, embed_size or batch"
        )
    return rnn, P


def rtrl_updates(model: nn.Module, src: torch.Tensor, y: torch.Tensor, online: bool
                 ) -> tuple[int, Iterator[torch.Tensor]]:
    """``(number of updates, iterator)``: each step of the iterator leaves the gradient of one
    update in every parameter's ``.grad`` and yields that update's loss (detached); the caller
    steps the optimizer (and zeroes the gradients) before asking for the next one.

    ``model`` is a ``RecurrentAligned`` with a one-layer ``nn.RNN``: ``embed``, ``drop``,
    ``rnn``, ``head``. ``src``, ``y``: ``(B, S)`` token ids and per-position targets (PAD =
    no target).
    """
    rnn, _ = _check(model, src.size(0))
    scored = (y != PAD).any(dim=0)  # (S,): steps with at least one target
    n_targets = int((y != PAD).sum())
    if n_targets == 0:
        return 0, iter(())
    n = int(scored.sum()) if online else 1
    return n, _updates(model, rnn, src, y, online, scored, n_targets)


def _updates(model, rnn, src, y, online, scored, n_targets):
    embed, head = model.embed, model.head
    # The sensitivity's columns, in this order: W_ih, W_hh, b_ih, b_hh, then the embedding E.
    params = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0, embed.weight]
    mine = {id(p) for p in params} | {id(head.weight), id(head.bias)}
    if any(id(p) not in mine for p in model.parameters()):
        raise PluginError("RTRL: the model has parameters besides embed, rnn and head")
    B, S = src.shape
    H, E = rnn.hidden_size, rnn.input_size
    V = embed.num_embeddings
    relu = rnn.nonlinearity == "relu"
    dtype, device = rnn.weight_hh_l0.dtype, src.device
    P = H * E + H * H + 2 * H + V * E

    with torch.no_grad():
        emb = embed.weight[src]  # (B, S, E): the rows the tokens select
        mask = model.drop(torch.ones_like(emb))  # dropout's mask (0 or 1/(1-p); 1 in eval)
        x = emb * mask  # what model.drop(model.embed(src)) computes
        # nn.Embedding never updates its padding row: no sensitivity to it
        keep = (src != embed.padding_idx if embed.padding_idx is not None
                else torch.ones_like(src, dtype=torch.bool)).to(dtype)  # (B, S)
    h = torch.zeros(B, H, dtype=dtype, device=device)
    # S_t laid out (H, B, P): unit i of h_t, example b, parameter p. With the units first,
    # W_hh S_{t-1} is a single (H, H) x (H, B·P) matrix product.
    sens = torch.zeros(H, B, P, dtype=dtype, device=device)
    acc = None  # accumulated gradients: [recurrent (P,), head weight, head bias]
    loss_acc = torch.zeros((), dtype=dtype, device=device)

    for t in range(S):
        with torch.no_grad():
            w_ih, w_hh = rnn.weight_ih_l0, rnn.weight_hh_l0  # current values (online: updated)
            x_t = x[:, t]  # (B, E)
            z = x_t @ w_ih.T + rnn.bias_ih_l0 + h @ w_hh.T + rnn.bias_hh_l0  # z_t
            h_new = torch.relu(z) if relu else torch.tanh(z)  # h_t = φ(z_t)
            d = (z > 0).to(dtype) if relu else 1 - h_new * h_new  # φ'(z_t), (B, H)
            sens = _next_sensitivity(sens, w_ih, w_hh, x_t, h, d, src[:, t],
                                     mask[:, t] * keep[:, t, None], V)
            h = h_new
        if not scored[t]:
            continue
        # ∂L_t/∂h_t and the output layer's gradient: an ordinary backward through one step.
        h_leaf = h.detach().requires_grad_()
        with torch.enable_grad():
            logits = head(model.drop(h_leaf))  # (B, V)
            loss_t = F.cross_entropy(logits, y[:, t], ignore_index=PAD, reduction="sum") / n_targets
            g_h, g_w, g_b = torch.autograd.grad(loss_t, [h_leaf, head.weight, head.bias])
        g_rec = torch.tensordot(g_h.T, sens, dims=([0, 1], [0, 1]))  # Σ_b ∂L_t/∂h_t · S_t
        if online:
            _set_grads(params, g_rec, head, g_w, g_b)
            yield loss_t.detach()
        elif acc is None:
            acc = [g_rec, g_w, g_b]
        else:
            acc[0] += g_rec
            acc[1] += g_w
            acc[2] += g_b
        loss_acc += loss_t.detach()
    if not online and acc is not None:
        _set_grads(params, acc[0], head, acc[1], acc[2])
        yield loss_acc


def _next_sensitivity(sens, w_ih, w_hh, x_t, h_prev, d, tokens, emb_mask, V: int):
    """S_t = diag(φ'(z_t)) (W_hh S_{t-1} + ∂z_t/∂θ), the second term with h_{t-1} held fixed; it
    is sparse, so it is added in place, block by block, on the diagonal. ``sens`` (H, B, P);
    ``x_t``, ``emb_mask`` (B, E); ``h_prev``, ``d`` = φ'(z_t) (B, H); ``tokens`` (B,)."""
    H, B, P = sens.shape
    E = x_t.size(1)
    units, batch_rows = torch.arange(H, device=sens.device), torch.arange(B, device=sens.device)
    sens = (w_hh @ sens.reshape(H, -1)).reshape(H, B, P)  # W_hh S_{t-1}
    o = 0
    # W_ih[i, k]: x_t[k]
    sens[:, :, o : o + H * E].view(H, B, H, E)[units, :, units, :] += x_t
    o += H * E
    # W_hh[i, k]: h_{t-1}[k]
    sens[:, :, o : o + H * H].view(H, B, H, H)[units, :, units, :] += h_prev
    o += H * H
    # b_ih[i], b_hh[i]: 1
    sens[:, :, o : o + 2 * H].view(H, B, 2, H)[units, :, :, units] += 1
    o += 2 * H
    # E[v, k]: W_ih[i, k] mask[k], in the row v of this step's token only (none for PAD)
    rows = sens[:, :, o:].view(H, B, V, E)
    rows[:, batch_rows, tokens, :] += w_ih[:, None, :] * emb_mask
    sens *= d.T[:, :, None]  # diag(φ'(z_t))
    return sens


def _set_grads(params, g_rec, head, g_w, g_b) -> None:
    """Scatter the flat recurrent gradient (layout: ``params`` in order, each row-major, as the
    sensitivity's columns are built) into ``.grad``, and set the output layer's."""
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = g_rec[offset : offset + n].view_as(p).clone()
        offset += n
    head.weight.grad = g_w.clone()
    head.bias.grad = g_b.clone()
