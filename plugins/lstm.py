"""LSTM plugin (Hochreiter & Schmidhuber 1997): gated memory cell, fused ``nn.LSTM``.

The additive cell update c_t = f_t * c_{t-1} + i_t * g_t lets the gradient flow through time
without repeated multiplication by a weight matrix, the LSTM's answer to vanishing gradients.
Encoder-decoder for seq2seq has no attention (see ``seq2seq-attention`` for that).

The models live in ``_recurrent.py`` (shared with the RNN and GRU); this module only declares the
plugin, so importing it never imports torch.
"""

from seqbench import hookimpl
from seqbench.api import ModelPlugin, Param

KINDS = ("classification", "seq2seq", "aligned")


def build(kind, shape, hparams):
    from ._recurrent import build_recurrent

    return build_recurrent("lstm", kind, shape, hparams)


@hookimpl
def register_models(register):
    register(
        ModelPlugin(
            name="lstm",
            description="LSTM: classifier, encoder-decoder without attention, or causal tagger",
            kinds=KINDS,
            defaults={
                "embed_size": Param(64, "token embedding size", minimum=1),
                "hidden_size": Param(128, "units per layer", minimum=1),
                "num_layers": Param(1, "stacked recurrent layers", minimum=1),
                "dropout": Param(0.1, "dropout on embeddings, layers, outputs", minimum=0),
            },
            build=build,
            width_param="hidden_size",
        )
    )
