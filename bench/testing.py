"""Contract and competence checks for model plugins, for seqbench's tests and for your own.

:func:`check_model` checks a built model against :class:`seqbench.api.SequenceModel` on a tiny
batch: its output shapes, padding ignored, causality (aligned), greedy decoding (seq2seq).

A model that keeps the contract may still be unable to use word order and yet train, converge
and score above chance on real data (a bag of words does). :func:`assert_learns_order` trains a
model for a few hundred steps on a tiny synthetic task that *cannot* be solved without order, and
requires near-perfect held-out accuracy:

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

It checks the contract first, then trains on fresh random batches (no overfitting is possible,
so the check is about the capacity to use order, not about regularisation); it is deterministic
for a given ``seed`` on one machine.
:func:`order_score` returns the score without asserting, e.g. to show that an order-blind
baseline fails. :func:`order_sensitivity` asks the converse without any training: how often does
shuffling a sentence change a classifier's output? A bag of words must answer 0, a model that
reads order close to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .api import (
    BOS, EOS, PAD, Kind, ModelPlugin, Seq2SeqModel, SequenceModel, TaskShape, resolve_params,
)


@dataclass(frozen=True)
class OrderTask:
    """A synthetic task: a batch sampler, the shape a model is built for, and its chance level."""

    description: str
    shape: TaskShape
    # (torch, torch.Generator, n) -> (src (n, S), src_len (n,), target); ids 0-3 are specials
    sample: Callable[[Any, Any, int], tuple[Any, Any, Any]]
    chance: float


def _lengths(torch: Any, g: Any, n: int, low: int, high: int) -> Any:
    return torch.randint(low, high + 1, (n,), generator=g)


def _pad_after(torch: Any, ids: Any, lengths: Any) -> Any:
    """PAD every position at or after each row's length."""
    positions = torch.arange(ids.size(1))[None, :]
    return ids.masked_fill(positions >= lengths[:, None], PAD)


def _which_first(torch: Any, g: Any, n: int) -> tuple[Any, Any, Any]:
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


def _previous_token(torch: Any, g: Any, n: int) -> tuple[Any, Any, Any]:
    """Aligned. Symbols 4..11; target t = source t-1 (position 0 has no target: PAD)."""
    lengths = _lengths(torch, g, n, 6, 10)
    src = _pad_after(torch, torch.randint(4, 12, (n, int(lengths.max())), generator=g), lengths)
    target = torch.full_like(src, PAD)
    target[:, 1:] = src[:, :-1]
    return src, lengths, _pad_after(torch, target, lengths)


def _reverse(torch: Any, g: Any, n: int) -> tuple[Any, Any, Any]:
    """seq2seq. Four symbols from 4..9; the target is the source reversed."""
    src = torch.randint(4, 10, (n, 4), generator=g)
    return src, torch.full((n,), 4), src.flip(1)


TASKS: dict[str, OrderTask] = {
    "classification": OrderTask(
        "which of two marker tokens comes first (among distractors)",
        TaskShape(Kind.CLASSIFICATION, src_vocab_size=12, num_classes=2, max_src_len=10),
        _which_first,
        chance=0.5,
    ),
    "aligned": OrderTask(
        "output the previous token",
        TaskShape(Kind.ALIGNED, 12, tgt_vocab_size=12, max_src_len=10, max_tgt_len=10),
        _previous_token,
        chance=1 / 8,
    ),
    "seq2seq": OrderTask(
        "reverse 4 symbols (exact match)",
        TaskShape(Kind.SEQ2SEQ, 10, tgt_vocab_size=10, max_src_len=4, max_tgt_len=4),
        _reverse,
        chance=1 / 6**4,
    ),
}


def _plugin(model: ModelPlugin | str) -> ModelPlugin:
    if isinstance(model, ModelPlugin):
        return model
    from .registry import registry  # only for a name: a ModelPlugin needs no discovery

    return registry().model(model)


def _seq2seq_io(torch: Any, target: Any, lengths: Any) -> tuple[Any, Any]:
    """Teacher-forcing input ``[BOS, y...]`` and labels ``[y..., EOS]``, PAD after."""
    n = target.size(0)
    tgt_in = torch.cat([torch.full((n, 1), BOS), target], dim=1)
    labels = torch.cat([target, torch.full((n, 1), PAD)], dim=1)
    labels[torch.arange(n), lengths] = EOS
    return tgt_in, labels


def _accuracy(torch: Any, net: Any, kind: Kind, task: OrderTask,
              batch: tuple[Any, Any, Any]) -> float:
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


def check_model(net: Any, kind: Kind | str, shape: TaskShape, seed: int = 0) -> None:
    """AssertionError unless ``net``, built for ``kind`` and ``shape``, keeps the
    :class:`~seqbench.api.SequenceModel` contract on a random batch of 4: the output shape,
    padded positions ignored, aligned outputs causal, seq2seq ``generate`` bounded with PAD
    after EOS. The model is left in the mode it was in."""
    import torch

    kind = Kind.of(kind)
    want = Seq2SeqModel if kind is Kind.SEQ2SEQ else SequenceModel
    _require(isinstance(net, want), f"a {kind} model must be a {want.__name__} (a torch "
             f"module{' with generate(src, src_len, max_len)' if want is Seq2SeqModel else ''})"
             f", not {type(net).__name__}")
    g = torch.Generator().manual_seed(seed)
    src, src_len = _random_batch(torch, g, shape)
    mode = net.training
    net.eval()
    with torch.no_grad():
        _check_outputs(torch, net, kind, shape, src, src_len, g)
    net.train(mode)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise AssertionError(f"model contract: {message}")


def _random_batch(torch: Any, g: Any, shape: TaskShape) -> tuple[Any, Any]:
    """src (4, S) of ids >= 4, PAD after each row's length; src_len (4,) with one full row."""
    width = max(2, min(shape.max_src_len or 8, 8))
    src_len = torch.randint(1, width + 1, (4,), generator=g)
    src_len[0] = width
    src = torch.randint(4, max(5, shape.src_vocab_size), (4, width), generator=g)
    return _pad_after(torch, src, src_len), src_len


def _check_outputs(torch: Any, net: Any, kind: Kind, shape: TaskShape, src: Any, src_len: Any,
                   g: Any) -> None:
    B, S = src.shape
    padded = torch.cat([src, torch.full((B, 3), PAD)], dim=1)  # (B, S + 3): padding only
    if kind is Kind.SEQ2SEQ:
        T = max(2, min(shape.max_tgt_len or 4, 6))
        tgt_in = torch.randint(4, max(5, shape.tgt_vocab_size), (B, T), generator=g)
        tgt_in[:, 0] = BOS
        args: tuple[Any, ...] = (tgt_in,)
        want: tuple[int, ...] = (B, T, shape.tgt_vocab_size)
    else:
        args = ()
        C = shape.num_classes if kind is Kind.CLASSIFICATION else shape.tgt_vocab_size
        want = (B, C) if kind is Kind.CLASSIFICATION else (B, S, C)
    out = net(src, src_len, *args)
    _require(tuple(out.shape) == want, f"{kind} forward must return logits of shape {want} "
             f"for src {tuple(src.shape)}, not {tuple(out.shape)}")
    again = net(padded, src_len, *args)
    again = again[:, :S] if kind is Kind.ALIGNED else again  # (B, S + 3, V) -> (B, S, V)
    _require(torch.allclose(out, again, atol=1e-5), f"{kind} outputs changed when PAD columns "
             "were appended: padded positions must be ignored")
    if kind is Kind.ALIGNED:
        changed = src.clone()
        changed[:, -1] = 4 + (changed[:, -1] - 3) % max(1, shape.src_vocab_size - 4)
        changed = _pad_after(torch, changed, src_len)
        early = net(changed, src_len)[:, : S - 1]
        _require(torch.allclose(out[:, : S - 1], early, atol=1e-5),
                 "aligned outputs must be causal: changing the last input changed earlier outputs")
    if kind is Kind.SEQ2SEQ:
        _check_generate(torch, net, src, src_len, max_len=5)


def _check_generate(torch: Any, net: Any, src: Any, src_len: Any, max_len: int) -> None:
    ids = net.generate(src, src_len, max_len)
    _require(ids.dim() == 2 and ids.size(0) == src.size(0) and ids.size(1) <= max_len,
             f"generate(src, src_len, {max_len}) must return ids of shape (B, <= {max_len}), "
             f"not {tuple(ids.shape)}")
    for row in ids.tolist():
        after = row[row.index(EOS) + 1:] if EOS in row else []
        _require(all(i == PAD for i in after), f"generate: a row must be PAD after its EOS: {row}")


def _built(plugin: ModelPlugin, kind: Kind, shape: TaskShape, hparams: dict[str, Any] | None,
           seed: int) -> Any:
    """The plugin's model for ``kind``, seeded, its contract checked, in training mode."""
    import torch

    params = resolve_params(f"model {plugin.name!r}", plugin.defaults, hparams or {})
    torch.manual_seed(seed)
    build: Any = plugin.build  # typed Builder | str; a str is a LazyTarget since __post_init__
    net = build(kind, shape, params)
    check_model(net, kind, shape, seed)
    return net.train()


def _loss(torch: Any, net: Any, kind: Kind, batch: tuple[Any, Any, Any]) -> Any:
    import torch.nn.functional as F

    src, lengths, target = batch
    if kind is Kind.SEQ2SEQ:
        tgt_in, labels = _seq2seq_io(torch, target, lengths)
        logits = net(src, lengths, tgt_in)
    else:
        logits, labels = net(src, lengths), target
    # Class 0 is a real class; PAD (also 0) is skipped only among token targets.
    ignore = -100 if kind is Kind.CLASSIFICATION else PAD
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                           ignore_index=ignore)


def order_score(
    model: ModelPlugin | str,
    kind: Kind | str,
    *,
    hparams: dict[str, Any] | None = None,
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
    training stops once it reaches ``stop_at`` (``None``: never). The returned score is on a
    separate test batch of 1,024 examples, never the one that decided when to stop.
    """
    import torch

    if kind not in TASKS:
        raise ValueError(f"kind '{kind}' is not one of {', '.join(TASKS)}")
    kind, plugin = Kind(kind), _plugin(model)
    if kind not in plugin.kinds:
        raise ValueError(f"model {plugin.name!r} does not support kind '{kind}'")
    task = TASKS[kind]
    net = _built(plugin, kind, task.shape, hparams, seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    val, test = task.sample(torch, g, 256), task.sample(torch, g, 1024)
    for step in range(1, steps + 1):
        loss = _loss(torch, net, kind, task.sample(torch, g, batch_size))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if stop_at is not None and step % check_every == 0:
            if _accuracy(torch, net, kind, task, val) >= stop_at:
                break
    return _accuracy(torch, net, kind, task, test)


def assert_learns_order(
    model: ModelPlugin | str, kind: Kind | str, *, threshold: float = 0.95, **kwargs: Any
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
    model: ModelPlugin | str, *, hparams: dict[str, Any] | None = None, n: int = 256, seed: int = 0,
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
    net = _built(plugin, Kind.CLASSIFICATION, task.shape, hparams, seed).eval()
    g = torch.Generator().manual_seed(seed)
    src, lengths, _ = task.sample(torch, g, n)
    shuffled = src.clone()
    for row, length in enumerate(lengths.tolist()):
        shuffled[row, :length] = src[row, torch.randperm(length, generator=g)]
    with torch.no_grad():
        changed = ~torch.isclose(net(src, lengths), net(shuffled, lengths), atol=atol, rtol=0)
    return float(changed.any(dim=1).float().mean())
