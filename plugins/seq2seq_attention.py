"""seq2seq-attention plugin: LSTM encoder-decoder whose decoder attends over the encoder states.

Without attention (the ``lstm`` plugin's seq2seq), the source reaches the decoder only through
the encoder's final state. Here every target step looks back at every source position through a
dot-product attention, so long sentences no longer squeeze through one fixed-size vector
(Bahdanau et al. 2015; Luong et al. 2015). The model lives in ``_attention.py``; this module only
declares the plugin, so importing it never imports torch.
"""

from seqbench import hookimpl
from seqbench.api import ModelPlugin, Param
from seqbench.hookspecs import RegisterModel

from ._declare import MAX_WIDTH, forget_bias_param, recurrent_search_space


@hookimpl
def register_models(register: RegisterModel) -> None:
    register(
        ModelPlugin(
            name="seq2seq-attention",
            description="LSTM encoder-decoder with dot-product (Luong) attention over the source",
            kinds=("seq2seq",),
            defaults={
                "embed_size": Param(64, "token embedding size", minimum=1, maximum=MAX_WIDTH),
                "hidden_size": Param(128, "units per layer", minimum=1, maximum=MAX_WIDTH),
                "num_layers": Param(1, "stacked LSTM layers (encoder and decoder)", minimum=1,
                                    maximum=64),
                "dropout": Param(0.1, "dropout on embeddings, layers, outputs", minimum=0,
                                 maximum=1, max_open=True),
                "forget_bias": forget_bias_param(),
            },
            build="seqbench_plugins._attention:build_attention",
            width_param="hidden_size",
            search_space=recurrent_search_space(),  # the same knobs as the plain LSTM's
        )
    )
