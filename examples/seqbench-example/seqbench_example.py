"""A third-party seqbench plugin: one model (``bag-of-embeddings``) and one task (``parity``).

Installing this package is all it takes: its ``pyproject.toml`` names this module in the
``seqbench`` entry-point group, and seqbench finds it there exactly as it finds its built-ins.
"""

from __future__ import annotations

import functools
import random

from seqbench import hookimpl
from seqbench.api import (
    PAD,
    ModelPlugin,
    Param,
    PluginError,
    Split,
    TaskData,
    TaskPlugin,
    Vocab,
    resolve_params,
)
from seqbench.datautil import train_subset

# --------------------------------------------------------------------------------------------
# The model: average the token embeddings, then one linear layer. It ignores word order.


def build_bag_of_embeddings(kind, shape, hparams):
    import torch  # imported here, not at the top: `bench plugins` must stay fast
    from torch import nn

    class BagOfEmbeddings(nn.Module):
        def __init__(self):
            super().__init__()
            out = shape.num_classes if kind == "classification" else shape.tgt_vocab_size
            self.embed = nn.Embedding(shape.src_vocab_size, hparams["embed_size"], padding_idx=PAD)
            self.out = nn.Linear(hparams["embed_size"], out)

        def forward(self, src, src_len):  # src (B, S), src_len (B,)
            x = self.embed(src) * (src != PAD).unsqueeze(-1)  # padding contributes nothing
            if kind == "classification":
                return self.out(x.sum(1) / src_len.unsqueeze(-1))  # (B, C)
            # aligned: output t is the mean of inputs 1..t, so it never sees the future
            steps = torch.arange(1, src.size(1) + 1, device=src.device).view(1, -1, 1)
            return self.out(x.cumsum(1) / steps)  # (B, S, V)

    return BagOfEmbeddings()


@hookimpl
def register_models(register):
    register(
        ModelPlugin(
            name="bag-of-embeddings",
            description="Mean of the token embeddings -> linear (an order-blind baseline)",
            kinds=("classification", "aligned"),
            defaults={"embed_size": Param(32, "token embedding size", minimum=1)},
            build=build_bag_of_embeddings,
            width_param="embed_size",  # what `--param-budget` scales
        )
    )


# --------------------------------------------------------------------------------------------
# The task: is the number of 1s in a random bit string odd?

PARITY_PARAMS = {
    "length": Param(16, "bits per string", minimum=1, maximum=1000),
    "pool_size": Param(2000, "strings in the full training set", minimum=1),
    "val_size": Param(200, "validation strings", minimum=1),
    "test_size": Param(500, "test strings", minimum=1),
}
LABELS = ["even", "odd"]
BITS = Vocab(["0", "1"])


@functools.lru_cache(maxsize=4)
def distinct_strings(length: int, count: int) -> tuple[str, ...]:
    """``count`` different bit strings from a fixed generator: the same on every machine."""
    if count > 2**length:
        raise PluginError(f"parity: there are only {2**length} bit strings of length {length}")
    rng = random.Random(f"seqbench-example-parity-{length}")
    seen: dict[str, None] = {}
    while len(seen) < count:
        seen[format(rng.getrandbits(length), f"0{length}b")] = None
    return tuple(seen)


def to_split(strings) -> Split:
    return Split(
        sources=[BITS.encode(list(s)) for s in strings],
        targets=[s.count("1") % 2 for s in strings],  # class 1 = "odd"
    )


def load_parity(params: dict, train_size: int | None, seed: int) -> TaskData:
    p = resolve_params("task 'parity'", PARITY_PARAMS, params)
    n_test, n_val = p["test_size"], p["val_size"]
    strings = distinct_strings(p["length"], n_test + n_val + p["pool_size"])
    # Test and validation come first, so they never change with the seed or the training size,
    # and no test string is ever trained on.
    test = to_split(strings[:n_test])
    val = to_split(strings[n_test : n_test + n_val])
    pool = to_split(strings[n_test + n_val :])

    def score(split: Split, predictions: list, loss: float) -> dict:
        right = sum(p == t for p, t in zip(predictions, split.targets))
        return {"accuracy": right / len(split), "loss": loss}

    return TaskData(
        kind="classification",
        train=train_subset(pool, train_size, seed),  # nested subsets, fixed per seed
        val=val,
        test=test,
        src_vocab=BITS,
        labels=LABELS,
        score=score,
        primary_metric="accuracy",
    )


@hookimpl
def register_tasks(register):
    register(
        TaskPlugin(
            name="parity",
            description="Parity: is the number of 1s in a random bit string odd?",
            kinds=("classification",),
            params=PARITY_PARAMS,
            load=load_parity,
            metrics=("accuracy",),
            primary_metric="accuracy",
        )
    )
