"""GRU plugin (Cho et al. 2014): gated recurrent unit, fused ``nn.GRU``.

An update gate interpolates h_t = (1 - z_t) * h_{t-1} + z_t * candidate, so like the LSTM the
state can be carried through time nearly unchanged, with fewer parameters (3 gates, no cell).

The models live in ``_recurrent.py`` (shared with the RNN and LSTM); this module only declares the
plugin, so importing it never imports torch.
"""

from seqbench import hookimpl
from seqbench.api import ModelPlugin, Param

KINDS = ("classification", "seq2seq", "aligned")


def build(kind, shape, hparams):
    from ._recurrent import build_recurrent

    return build_recurrent("gru", kind, shape, hparams)


@hookimpl
def register_models(register):
    register(
        ModelPlugin(
            name="gru",
            description="GRU: classifier, encoder-decoder without attention, or causal tagger",
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
