"""LSTM plugin (Hochreiter & Schmidhuber 1997): gated memory cell, fused ``nn.LSTM``.

The additive cell update c_t = f_t * c_{t-1} + i_t * g_t lets the gradient flow through time
without repeated multiplication by a weight matrix, the LSTM's answer to vanishing gradients.
Encoder-decoder for seq2seq has no attention (see ``seq2seq-attention`` for that).

The models live in ``_recurrent.py`` and the common declaration in ``_declare.py`` (both shared
with the RNN and GRU); importing this module never imports torch.
"""

from seqbench import hookimpl

from ._declare import recurrent_plugin


@hookimpl
def register_models(register):
    register(
        recurrent_plugin(
            "lstm", "LSTM: classifier, encoder-decoder without attention, or causal tagger"
        )
    )
