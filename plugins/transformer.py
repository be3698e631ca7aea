"""transformer plugin: a small pre-LN Transformer for classification, seq2seq and aligned tasks.

Classification: encoder + mean over the non-PAD positions. seq2seq: encoder-decoder with a
causal target mask and source padding masks, greedy generation. aligned: the encoder under a
causal mask, one output per position. The width ``d_model`` is what the parameter-budget search
scales (in steps of ``n_heads``); the feed-forward width follows it as ``ff_mult * d_model``.
The model lives in ``_transformer.py``; this module only declares the plugin, so importing it
never imports torch.
"""

from seqbench import hookimpl
from seqbench.api import Choice, ModelPlugin, Param, Range
from seqbench.hookspecs import RegisterModel

from ._declare import MAX_WIDTH


@hookimpl
def register_models(register: RegisterModel) -> None:
    register(
        ModelPlugin(
            name="transformer",
            description="Small pre-LN Transformer with sinusoidal positions",
            kinds=("classification", "seq2seq", "aligned"),
            defaults={
                "d_model": Param(64, "model width (a multiple of n_heads)", minimum=1,
                                 maximum=MAX_WIDTH),
                "n_heads": Param(4, "attention heads", minimum=1, maximum=256),
                "num_layers": Param(2, "layers (encoder and, for seq2seq, decoder)", minimum=1,
                                    maximum=64),
                "ff_mult": Param(4, "feed-forward width as a multiple of d_model", minimum=1,
                                 maximum=64),
                "dropout": Param(0.1, "dropout on embeddings, attention, feed-forward", minimum=0,
                                 maximum=1, max_open=True),
            },
            build="seqbench_plugins._transformer:build_transformer",
            width_param="d_model",
            width_multiple_of="n_heads",
            # Tuned: the learning rate, depth, heads and dropout. Warm-up is not: it is the
            # recipe's, in steps, the same for every model of a comparison. n_heads must divide
            # d_model: with a parameter budget the width is fitted in multiples of n_heads;
            # without one, heads that do not divide the given d_model are left out of the draw.
            search_space={
                "lr": Range(1e-4, 3e-2, log=True),
                "num_layers": Range(1, 4, integer=True),
                "n_heads": Choice((1, 2, 4)),
                "dropout": Range(0.0, 0.3),
            },
        )
    )
