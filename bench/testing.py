"""Competence checks for model plugins, for seqbench's tests and for your own.

A benchmark is only as honest as its weakest competitor. A model that cannot use word order can
still train, converge and score above chance on real data (a bag of words does), so shape tests
and "the loss goes down" tests pass; seqbench's Transformer once ran for a whole study with its
positions drowned by its token embeddings. The check here trains a model for a few hundred steps
on a tiny synthetic task that *cannot* be solved without order, and requires near-perfect
held-out accuracy:

``classification``
    which of two marker tokens comes first, among 2-8 distractors (lengths 4-10, so padding is
    exercised). Both classes contain the same tokens, so an order-blind model scores 50%.
``aligned``
    at every position, output the previous token (lengths 6-10). Causal, as the kind requires.
    An order-blind model (a running mean of the tokens so far) cannot tell which one came last.
``seq2seq``
    reverse 4 symbols, scored by exact match of greedy decoding (``generate``). An encoder
    that pools its input without order cannot tell ``a b c d`` from ``d c b a``.

Use it from your plugin's test suite::

    from seqbench.testing import assert_learns_order

    def test_my_model_uses_order():
        assert_learns_order(my_plugin, "classification")          # a ModelPlugin ...
        assert_learns_order("my-model", "aligned", hparams={"width": 32})  # ... or a name

It runs in seconds on one CPU thread (call ``torch.set_num_threads(1)`` on a shared machine),
trains on fresh random batches (no overfitting is possible, so the check is about the capacity to
use order, not about regularisation), and is deterministic for a given ``seed`` on one machine.
:func:`order_score` returns the score without asserting, e.g. to show that an order-blind
baseline fails. :func:`order_sensitivity` asks the converse without any training: how often does
shuffling a sentence change a classifier's output? A bag of words must answer 0, a model that
reads order close to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .api import BOS, EOS, PAD, ModelPlugin, TaskShape, resolve_params

@dataclass(frozen=True)
class OrderTask:
    """A synthetic task: a batch sampler, the shape a model is built for, and its chance level."""

    description: str
    shape: TaskShape
    # (torch, torch.Generator, n) -> (src (n, S), src_len (n,), target); ids 0-3 are specials
    sample: Callable[[Any, Any, int], tuple]
    chance: float


def _lengths(torch, g, n: int, low: int, high: int):
    return torch.randint(low, high + 1, (n,), generator=g)


def _pad_after(torch, ids, lengths):
    """PAD every position at or after each row's length."""
    positions = torch.arange(ids.size(1))[None, :]
    return ids.masked_fill(positions >= lengths[:, None], PAD)


def _which_first(torch, g, n: int):
    """Classification. Tokens: A = 4, B = 5, distractors 6..11. Label 0 if A comes before B."""
    lengths = _lengths(torch, g, n, 4, 10)
    width = int(lengths.max())
    src = torch.randint(6, 12, (n, width), generator=g)
    # Two distinct random positions within each row's length: the two smallest of random keys
    # (positions past the length get key 2, above every real one).
    keys = torch.rand(n, width, generator=g).masked_fill(
        torch.arange(width)[None, :] >= lengths[:, None], 2.0
    )
    a, b = keys.argsort(dim=1)[:, :2].T  # (n,) each
    rows = torch.arange(n)
    src[rows, a], src[rows, b] = 4, 5
    label = (b < a).long()  # 0: A comes first, 1: B comes first
    return _pad_after(torch, src, lengths), lengths, label


def _previous_token(torch, g, n: int):
    """Aligned. Symbols 4..11; target t = source t-1 (position 0 has no target: PAD)."""
    lengths = _lengths(torch, g, n, 6, 10)
    src = _pad_after(torch, torch.randint(4, 12, (n, int(lengths.max())), generator=g), lengths)
    target = torch.full_like(src, PAD)
    target[:, 1:] = src[:, :-1]
    return src, lengths, _pad_after(torch, target, lengths)


def _reverse(torch, g, n: int):
    """seq2seq. Four symbols from 4..9; the target is the source reversed."""
    src = torch.randint(4, 10, (n, 4), generator=g)
    return src, torch.full((n,), 4), src.flip(1)


TASKS: dict[str, OrderTask] = {
    "classification": OrderTask(
        "which of two marker tokens comes first (among distractors)",
        TaskShape("classification", src_vocab_size=12, num_classes=2, max_src_len=10),
        _which_first,
        chance=0.5,
    ),
    "aligned": OrderTask(
        "output the previous token",
        TaskShape("aligned", 12, tgt_vocab_size=12, max_src_len=10, max_tgt_len=10),
        _previous_token,
        chance=1 / 8,
    ),
    "seq2seq": OrderTask(
        "reverse 4 symbols (exact match)",
        TaskShape("seq2seq", 10, tgt_vocab_size=10, max_src_len=4, max_tgt_len=4),
        _reverse,
        chance=1 / 6**4,
    ),
}


def _plugin(model: ModelPlugin | str) -> ModelPlugin:
    if isinstance(model, ModelPlugin):
        return model
    from .registry import registry  # only for a name: a ModelPlugin needs no discovery

    return registry().model(model)


def _seq2seq_io(torch, target, lengths):
    """Teacher-forcing input ``[BOS, y...]`` and labels ``[y..., EOS]``, PAD after."""
    n = target.size(0)
    tgt_in = torch.cat([torch.full((n, 1), BOS), target], dim=1)
    labels = torch.cat([target, torch.full((n, 1), PAD)], dim=1)
    labels[torch.arange(n), lengths] = EOS
    return tgt_in, labels


def _accuracy(torch, net, kind: str, task: OrderTask, batch) -> float:
    """Held-out score: accuracy (classification), accuracy over scored positions (aligned),
    exact match of greedy decoding (seq2seq)."""
    src, lengths, target = batch
    net.eval()
    with torch.no_grad():
        if kind == "classification":
            right = net(src, lengths).argmax(-1) == target
        elif kind == "aligned":
            scored = target != PAD  # position 0 and padding have no target
            right = (net(src, lengths).argmax(-1) == target)[scored]
        else:
            out = net.generate(src, lengths, task.shape.max_tgt_len + 1)
            right = []
            for row, want, length in zip(out.tolist(), target.tolist(), lengths.tolist()):
                got = row[: row.index(EOS)] if EOS in row else row
                right.append(got == want[:length])
            right = torch.tensor(right)
    net.train()
    return float(right.float().mean())


def order_score(
    model: ModelPlugin | str,
    kind: str,
    *,
    hparams: dict | None = None,
    steps: int = 400,
    lr: float = 3e-3,
    batch_size: int = 32,
    seed: int = 0,
    stop_at: float | None = 0.99,
    check_every: int = 50,
) -> float:
    """Train ``model`` (a :class:`ModelPlugin` or a registered name) on the order task of
    ``kind`` and return its held-out score (0..1).

    ``hparams`` overrides the plugin's declared defaults. Training is plain AdamW (weight decay
    0.01, gradient-norm clipping at 1, as seqbench's recipe) on fresh batches for at most
    ``steps`` steps; every ``check_every`` steps a validation batch of 256 is scored and
    training stops once it reaches ``stop_at`` (``None``: never; the default 0.99 leaves a margin
    above the usual 95% threshold). The returned score is on a separate test batch of 1,024
    examples, never the one that decided when to stop.

    With their default hyperparameters, seqbench's built-in models stop after 50-400 steps
    (0.2-15 s on one CPU thread); an order-blind model stays near chance however long it trains.
    """
    import torch
    import torch.nn.functional as F

    if kind not in TASKS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(TASKS)}")
    plugin = _plugin(model)
    if kind not in plugin.kinds:
        raise ValueError(f"model {plugin.name!r} does not support kind {kind!r}")
    task = TASKS[kind]
    params = resolve_params(f"model {plugin.name!r}", plugin.defaults, hparams or {})
    torch.manual_seed(seed)
    net = plugin.build(kind, task.shape, params)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    val, test = task.sample(torch, g, 256), task.sample(torch, g, 1024)
    for step in range(1, steps + 1):
        src, lengths, target = task.sample(torch, g, batch_size)
        if kind == "seq2seq":
            tgt_in, labels = _seq2seq_io(torch, target, lengths)
            logits = net(src, lengths, tgt_in)
        else:
            logits, labels = net(src, lengths), target
        # Class 0 is a real class; PAD (also 0) is skipped only among token targets.
        ignore = -100 if kind == "classification" else PAD
        loss = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=ignore
        )
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if stop_at is not None and step % check_every == 0:
            if _accuracy(torch, net, kind, task, val) >= stop_at:
                break
    return _accuracy(torch, net, kind, task, test)


def assert_learns_order(
    model: ModelPlugin | str, kind: str, *, threshold: float = 0.95, **kwargs
) -> float:
    """Fail unless ``model`` reaches ``threshold`` (default 95%) on the order task of ``kind``.

    Keyword arguments go to :func:`order_score` (``hparams``, ``steps``, ``lr``, ...). Returns
    the score. The failure message names the task, the score, the chance level and the budget.
    """
    score = order_score(model, kind, **kwargs)
    name = model.name if isinstance(model, ModelPlugin) else model
    if score < threshold:
        task = TASKS[kind]
        raise AssertionError(
            f"model {name!r} ({kind}) scored {score:.1%} on '{task.description}' within "
            f"{kwargs.get('steps', 400)} steps; a model that uses word order reaches "
            f"{threshold:.0%} (chance: {task.chance:.1%})"
        )
    return score


def order_sensitivity(
    model: ModelPlugin | str, *, hparams: dict | None = None, n: int = 256, seed: int = 0,
    atol: float = 1e-5,
) -> float:
    """The share of ``n`` inputs of the classification order task whose logits change (beyond
    ``atol``) when each row's real tokens are shuffled, for ``model`` as built (untrained, in
    eval mode). 0.0 means order-blind on these inputs; rows a shuffle leaves as they were count
    as unchanged, so a model that reads order scores a little below 1.
    """
    import torch

    plugin = _plugin(model)
    if "classification" not in plugin.kinds:
        raise ValueError(f"model {plugin.name!r} does not support kind 'classification'")
    task = TASKS["classification"]
    params = resolve_params(f"model {plugin.name!r}", plugin.defaults, hparams or {})
    torch.manual_seed(seed)
    net = plugin.build("classification", task.shape, params).eval()
    g = torch.Generator().manual_seed(seed)
    src, lengths, _ = task.sample(torch, g, n)
    shuffled = src.clone()
    for row, length in enumerate(lengths.tolist()):
        shuffled[row, :length] = src[row, torch.randperm(length, generator=g)]
    with torch.no_grad():
        changed = ~torch.isclose(net(src, lengths), net(shuffled, lengths), atol=atol, rtol=0)
    return float(changed.any(dim=1).float().mean())
