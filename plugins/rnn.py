"""Elman RNN plugin: h_t = f(W_ih x_t + W_hh h_{t-1} + b), with f = tanh or ReLU.

A plain RNN multiplies its gradient by W_hh (and f') once per time step, so over long sequences
the gradient vanishes or explodes (Bengio et al. 1994; Pascanu et al. 2013). Two classic
remedies are offered as hyperparameters:

* ``init=identity`` with ``nonlinearity=relu``: the IRNN of Le et al. (2015). W_hh starts as the
  identity and biases at zero, so the state (and the gradient) is copied unchanged through time.
* ``init=orthogonal``: W_hh starts orthogonal (W W^T = I), all singular values 1, so repeated
  multiplication neither shrinks nor grows vectors (Saxe et al. 2014).

The models themselves live in ``_recurrent.py`` (shared with the LSTM and GRU); this module only
declares the plugin, so importing it never imports torch.
"""

from seqbench import hookimpl
from seqbench.api import ModelPlugin, Param

KINDS = ("classification", "seq2seq", "aligned")


def build(kind, shape, hparams):
    from ._recurrent import build_recurrent

    return build_recurrent("rnn", kind, shape, hparams)


@hookimpl
def register_models(register):
    register(
        ModelPlugin(
            name="rnn",
            description="Elman RNN (tanh or ReLU), with identity (IRNN) or orthogonal init",
            kinds=KINDS,
            defaults={
                "embed_size": Param(64, "token embedding size", minimum=1),
                "hidden_size": Param(128, "units per layer", minimum=1),
                "num_layers": Param(1, "stacked recurrent layers", minimum=1),
                "dropout": Param(0.1, "dropout on embeddings, layers, outputs", minimum=0),
                "nonlinearity": Param(
                    "tanh", "activation of the recurrence", choices=("tanh", "relu")
                ),
                "init": Param(
                    "default",
                    "recurrent weight init (identity = IRNN, pair with relu)",
                    choices=("default", "identity", "orthogonal"),
                ),
            },
            build=build,
            width_param="hidden_size",
        )
    )
