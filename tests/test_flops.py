"""FLOPs per training step: counted by torch, recurrent layers by formula, the run untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from seqbench.experiment.flops import recurrent_forward_flops, train_step_flops


@pytest.mark.parametrize("cell", [nn.RNN, nn.GRU, nn.LSTM])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_recurrent_formula_matches_the_counter_on_the_decomposed_layer(cell, bidirectional):
    rnn = cell(12, 16, num_layers=2, batch_first=True, bidirectional=bidirectional)
    x = torch.randn(5, 20, 12, requires_grad=True)
    # oneDNN's fused LSTM is opaque to the counter; without it every step is matrix products.
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        out, _ = rnn(x)
        out.sum().backward()
    counted = counter.get_total_flops()
    formula = 3 * recurrent_forward_flops(rnn, 5 * 20)
    assert counted > 0
    # The counter skips the first step's product with the zero initial state: a few % less.
    assert abs(formula - counted) / counted < 0.03


def _model_and_data(model_name: str, task_name: str, kind: str):
    from seqbench.api import resolve_params
    from seqbench.registry import registry

    reg = registry()
    task = reg.task(task_name)
    params = resolve_params("task", task.params, {"T": 5} if task_name == "copy" else {})
    data = task.load(params, 64, 0)
    plugin = reg.model(model_name)
    model = plugin.build(kind, data.shape(), {k: p.default for k, p in plugin.defaults.items()})
    return model, data


@pytest.mark.parametrize("model_name, task_name, kind", [
    ("rnn", "classification", "classification"),
    ("lstm", "copy", "aligned"),
    ("gru", "translation", "seq2seq"),
    ("seq2seq-attention", "translation", "seq2seq"),
    ("transformer", "translation", "seq2seq"),
    ("transformer", "classification", "classification"),
])
def test_every_built_in_pairing_is_counted_and_left_untouched(model_name, task_name, kind):
    model, data = _model_and_data(model_name, task_name, kind)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    flops = train_step_flops(model, data.train, kind, batch_size=8)
    assert flops > 0
    assert torch.equal(rng, torch.get_rng_state())  # training's random stream is not consumed
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # deterministic: the same batch is drawn for the same seed
    assert train_step_flops(model, data.train, kind, batch_size=8) == flops


def test_a_bigger_batch_costs_proportionally_more():
    model, data = _model_and_data("lstm", "classification", "classification")
    small = train_step_flops(model, data.train, "classification", batch_size=8)
    big = train_step_flops(model, data.train, "classification", batch_size=32)
    assert 3.5 < big / small < 4.5  # digits are all 64 tokens long: 4x the examples, ~4x the work


def test_a_transformer_step_costs_about_six_flops_per_parameter_and_token():
    """The usual estimate (Kaplan et al. 2020): 2 FLOPs per weight and token forward, 4 back."""
    model, data = _model_and_data("transformer", "classification", "classification")
    flops = train_step_flops(model, data.train, "classification", batch_size=16)
    weights = sum(p.numel() for n, p in model.named_parameters()
                  if p.dim() == 2 and "tok" not in n)  # matrices, not the embedding lookup table
    tokens = 16 * 64
    assert 0.7 < flops / (6 * weights * tokens) < 2.0  # attention's own products add a little
