"""LSTM plugin (Hochreiter & Schmidhuber 1997): gated memory cell, fused ``nn.LSTM``.

The additive cell update c_t = f_t * c_{t-1} + i_t * g_t lets the gradient flow through time
without repeated multiplication by a weight matrix, the LSTM's answer to vanishing gradients.
Encoder-decoder for seq2seq has no attention (see ``seq2seq-attention`` for that).

The models live in ``_recurrent.py`` and the common declaration in ``_declare.py`` (both shared
with the RNN and GRU); importing this module never imports torch.
"""

from seqbench import hookimpl
from seqbench.api import Param
from seqbench.hookspecs import RegisterModel

from ._declare import forget_bias_param, recurrent_plugin


@hookimpl
def register_models(register: RegisterModel) -> None:
    register(
        recurrent_plugin(
            "lstm",
            "LSTM: classifier, encoder-decoder without attention, or causal tagger",
            {
                "forget_bias": forget_bias_param(),
                "chrono": Param(
                    False,
                    "chrono init (Tallec & Ollivier 2018): forget bias log U(1, T_max-1), input "
                    "bias its negative; replaces forget_bias",
                ),
            },
        )
    )
