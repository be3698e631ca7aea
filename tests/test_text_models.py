"""The text baselines ``cnn`` (Kim 2014) and ``bag`` (fastText-style): the plugin contract, the
parameter budget, and what each can and cannot see of word order (seqbench.testing)."""

from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from seqbench.api import PAD, PluginError, TaskShape, resolve_params  # noqa: E402
from seqbench.experiment.budget import count_params, fit_to_budget  # noqa: E402
from seqbench.testing import (  # noqa: E402
    assert_learns_order, check_model, order_score, order_sensitivity,
)
from seqbench_plugins import bag, cnn  # noqa: E402

torch.set_num_threads(1)


def _collect():
    found = []
    for module in (cnn, bag):
        module.register_models(found.append)
    return {p.name: p for p in found}


PLUGINS = _collect()
SHAPE = TaskShape("classification", src_vocab_size=40, num_classes=3, max_src_len=12)
# Small enough for a CPU test; the defaults (Kim's 300-d x 100 maps) are exercised by budget fits.
SMALL = {"cnn": {"embed_size": 16, "num_maps": 8}, "bag": {"embed_size": 16, "buckets": 64}}


def build(name: str, shape: TaskShape = SHAPE, **hparams):
    p = PLUGINS[name]
    torch.manual_seed(0)
    return p.build("classification", shape, resolve_params(name, p.defaults, {**SMALL[name],
                                                                             **hparams}))


def batch(lengths, vocab=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, vocab, (len(lengths), max(lengths)), generator=g)
    positions = torch.arange(src.size(1))[None, :]
    src_len = torch.tensor(lengths)
    return src.masked_fill(positions >= src_len[:, None], PAD), src_len


# --------------------------------------------------------------------------------------------
# The plugin contract


@pytest.mark.parametrize("name", ["cnn", "bag"])
def test_keeps_the_model_contract(name):
    check_model(build(name), "classification", SHAPE)


def test_importing_the_plugins_does_not_import_torch():
    code = ("import sys, seqbench_plugins.cnn, seqbench_plugins.bag\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_found_through_the_entry_points():
    from seqbench.registry import registry

    models = registry().models
    assert models["cnn"].source == models["bag"].source == "built-in"
    assert models["cnn"].kinds == models["bag"].kinds == ("classification",)


def test_cnn_defaults_are_kims():
    d = {k: v.default for k, v in PLUGINS["cnn"].defaults.items()}
    assert d == {"embed_size": 300, "num_maps": 100, "widths": "3,4,5", "dropout": 0.5,
                 "max_norm": 3.0}
    model = PLUGINS["cnn"].build("classification", SHAPE, d)
    assert [c.kernel_size[0] for c in model.convs] == [3, 4, 5]
    assert model.head.in_features == 300 and model.embed.weight.shape == (40, 300)


def test_invalid_requests_are_plugin_errors():
    with pytest.raises(PluginError, match="does not support"):
        PLUGINS["cnn"].build("seq2seq", SHAPE, {})
    with pytest.raises(PluginError, match="does not support"):
        PLUGINS["bag"].build("aligned", SHAPE, {})
    for widths in ("3,x", "", "0,3", "3,,5"):
        with pytest.raises(PluginError, match="filter widths"):
            build("cnn", widths=widths)
    with pytest.raises(PluginError, match="ngrams"):
        resolve_params("bag", PLUGINS["bag"].defaults, {"ngrams": 3})


@pytest.mark.parametrize("name", PLUGINS)
def test_backward_reaches_every_parameter(name):
    model = build(name).train()
    src, src_len = batch([7, 3, 5, 1, 12, 12, 9])
    out = model(src, src_len)
    assert out.shape == (7, 3) and torch.isfinite(out).all()
    out.pow(2).mean().backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", PLUGINS)
def test_padding_does_not_change_outputs(name):
    model = build(name).eval()
    lengths = [6, 1, 4, 2]
    src, src_len = batch(lengths)
    with torch.no_grad():
        base = model(src, src_len)
        wider = model(torch.cat([src, torch.full((4, 5), PAD)], dim=1), src_len)
        alone = [model(src[i : i + 1, :n], src_len[i : i + 1])[0] for i, n in enumerate(lengths)]
    torch.testing.assert_close(base, wider, atol=1e-5, rtol=0)
    torch.testing.assert_close(base, torch.stack(alone), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name,budget", [("cnn", 200_000), ("cnn", 1_000_000), ("bag", 500_000)])
def test_fit_to_budget_lands_within_ten_percent(name, budget):
    p = PLUGINS[name]
    hp = {k: v.default for k, v in p.defaults.items()}
    shape = TaskShape("classification", src_vocab_size=2_000, num_classes=2, max_src_len=50)
    if name == "cnn":
        hp["embed_size"] = 64  # 300-d embeddings of 2,000 words alone are 600k
    fitted = fit_to_budget(p, "classification", shape, hp, budget)
    assert {**fitted, p.width_param: hp[p.width_param]} == hp  # only the width changed
    n = count_params(p.build("classification", shape, fitted))
    assert abs(n - budget) <= budget / 10, (fitted[p.width_param], n)


def test_fit_to_budget_rejects_a_budget_the_embeddings_exceed():
    p = PLUGINS["cnn"]
    hp = {k: v.default for k, v in p.defaults.items()}
    shape = TaskShape("classification", src_vocab_size=2_000, num_classes=2, max_src_len=50)
    with pytest.raises(PluginError, match="over the budget"):
        fit_to_budget(p, "classification", shape, hp, 300_000)


def test_cnn_caps_the_output_weights_while_training():
    model = build("cnn", max_norm=0.5).train()
    with torch.no_grad():
        model.head.weight.mul_(100)
    model(*batch([5, 3]))
    assert torch.all(model.head.weight.norm(dim=1) <= 0.5 + 1e-5)
    unbounded = build("cnn", max_norm=0.0).train()
    with torch.no_grad():
        unbounded.head.weight.mul_(100)
    before = unbounded.head.weight.clone()
    unbounded(*batch([5, 3]))
    assert torch.equal(before, unbounded.head.weight)


# --------------------------------------------------------------------------------------------
# Word order: the CNN reads it within its windows; the bag is order-blind by design


def test_cnn_learns_the_order_task():
    assert_learns_order(PLUGINS["cnn"], "classification", hparams=SMALL["cnn"])
    assert order_sensitivity(PLUGINS["cnn"], hparams=SMALL["cnn"]) > 0.9


def test_unigram_bag_is_blind_to_any_permutation():
    hp = {**SMALL["bag"], "ngrams": 1}
    assert order_sensitivity(PLUGINS["bag"], hparams=hp) == 0.0
    model = build("bag", ngrams=1).eval()
    src, src_len = batch([9])
    with torch.no_grad():
        for seed in range(5):
            perm = torch.randperm(9, generator=torch.Generator().manual_seed(seed))
            torch.testing.assert_close(model(src[:, perm], src_len), model(src, src_len))
    # ... so it fails the order check, near chance.
    with pytest.raises(AssertionError, match="a model that uses word order reaches 95%"):
        assert_learns_order(PLUGINS["bag"], "classification", hparams=hp, steps=200)
    assert order_score(PLUGINS["bag"], "classification", hparams=hp, steps=200) < 0.6


def test_bigram_bag_sees_adjacent_pairs_only():
    model = build("bag", ngrams=2, buckets=4_096).eval()
    a, b, c, d = 4, 5, 6, 7
    # a b a c a d and a c a b a d hold the same words and the same bigrams (ab ba ac ca ad).
    same = torch.tensor([[a, b, a, c, a, d], [a, c, a, b, a, d]])
    other = torch.tensor([[a, b, a, c, a, d], [d, a, c, a, b, a]])  # reversed: other bigrams
    lengths = torch.tensor([6, 6])
    with torch.no_grad():
        x, y = model(same, lengths)
        torch.testing.assert_close(x, y)
        x, y = model(other, lengths)
        assert not torch.allclose(x, y)
    hp = {**SMALL["bag"], "buckets": 4_096}
    assert order_sensitivity(PLUGINS["bag"], hparams=hp) > 0.9
    # Which of two markers comes first is beyond it when they are not adjacent.
    assert order_score(PLUGINS["bag"], "classification", hparams=hp, steps=200) < 0.95
