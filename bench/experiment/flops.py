"""FLOPs of one optimizer step, counted by torch's ``FlopCounterMode`` on a CPU copy of the model;
recurrent layers by formula (their fused kernels are opaque to the counter).
See docs/methods.md#cost-in-flops.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from ..api import PAD, Split


def train_step_flops(model: torch.nn.Module, split: Split, kind: str, batch_size: int,
                     seed: int = 0) -> int:
    """FLOPs of one forward + backward pass on a batch drawn as training draws them."""
    from torch.utils.flop_counter import FlopCounterMode

    from .lit import Batches

    data = Batches(split, kind)
    n = min(batch_size, len(data))
    with torch.random.fork_rng(devices=[]):
        g = torch.Generator().manual_seed(seed)
        batch = data.collate(torch.randperm(len(data), generator=g)[:n].tolist())
        clone = copy.deepcopy(model).cpu().train()
        recurrent = _count_recurrent_by_formula(clone)
        with FlopCounterMode(display=False) as counter:
            if kind == "seq2seq":
                logits = clone(batch["src"], batch["src_len"], batch["tgt_in"])  # (B, T, V)
            else:
                logits = clone(batch["src"], batch["src_len"])  # (B, C) or (B, S, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch["y"].reshape(-1),
                                   # a class label 0 is a class, a token 0 is padding (as lit.py)
                                   ignore_index=-100 if kind == "classification" else PAD)
            loss.backward()
    return int(counter.get_total_flops()) + 3 * sum(recurrent)  # forward + 2x forward backward


GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


def recurrent_forward_flops(rnn: nn.RNNBase, positions: int) -> int:
    """Forward FLOPs of a fused recurrent layer stack over ``positions`` (batch x time) steps."""
    gates, hidden, dirs = GATES[rnn.mode], rnn.hidden_size, 2 if rnn.bidirectional else 1
    total, inputs = 0, rnn.input_size
    for _ in range(rnn.num_layers):
        total += dirs * positions * 2 * gates * hidden * (inputs + hidden)
        inputs = hidden * dirs
    return total


def _count_recurrent_by_formula(model: nn.Module) -> list[int]:
    """Swap every recurrent layer's forward for its formula and a stand-in output of the right
    shape (zeros that carry gradients, so the layers around it are counted forward and back)."""
    counts: list[int] = []
    for module in model.modules():
        if isinstance(module, nn.RNNBase):
            module.forward = _stand_in(module, counts)
    return counts


def _stand_in(rnn: nn.RNNBase, counts: list[int]):
    def forward(x, hx=None):
        dirs = 2 if rnn.bidirectional else 1
        width = rnn.hidden_size * dirs
        if isinstance(x, PackedSequence):
            positions, batch = x.data.size(0), int(x.batch_sizes[0])
            out = PackedSequence(x.data.new_zeros(positions, width) + 0 * x.data.sum(),
                                 x.batch_sizes, x.sorted_indices, x.unsorted_indices)
        else:
            batch, steps = (x.size(0), x.size(1)) if rnn.batch_first else (x.size(1), x.size(0))
            positions = batch * steps
            shape = (batch, steps, width) if rnn.batch_first else (steps, batch, width)
            out = x.new_zeros(shape) + 0 * x.sum()  # keeps the graph: upstream backward counted
        counts.append(recurrent_forward_flops(rnn, positions))
        h = x.data.new_zeros(rnn.num_layers * dirs, batch, rnn.hidden_size) if isinstance(
            x, PackedSequence) else x.new_zeros(rnn.num_layers * dirs, batch, rnn.hidden_size)
        return out, ((h, h.clone()) if rnn.mode == "LSTM" else h)

    return forward
