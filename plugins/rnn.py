"""Elman RNN plugin: h_t = f(W_ih x_t + W_hh h_{t-1} + b), with f = tanh or ReLU.

A plain RNN multiplies its gradient by W_hh (and f') once per time step, so over long sequences
the gradient vanishes or explodes (Bengio et al. 1994; Pascanu et al. 2013). Two classic
remedies are offered as hyperparameters:

* ``init=identity`` with ``nonlinearity=relu``: the IRNN of Le et al. (2015). W_hh starts as the
  identity and biases at zero, so the state (and the gradient) is copied unchanged through time.
* ``init=orthogonal``: W_hh starts orthogonal (W W^T = I), all singular values 1, so repeated
  multiplication neither shrinks nor grows vectors (Saxe et al. 2014).

The models live in ``_recurrent.py`` and the common declaration in ``_declare.py`` (both shared
with the LSTM and GRU); importing this module never imports torch.
"""

from seqbench import hookimpl
from seqbench.api import Param
from seqbench.hookspecs import RegisterModel

from ._declare import recurrent_plugin


@hookimpl
def register_models(register: RegisterModel) -> None:
    register(
        recurrent_plugin(
            "rnn",
            "Elman RNN (tanh or ReLU), with identity (IRNN) or orthogonal init",
            {
                "nonlinearity": Param(
                    "tanh", "activation of the recurrence", choices=("tanh", "relu")
                ),
                "init": Param(
                    "default",
                    "recurrent weight init (identity = IRNN, pair with relu)",
                    choices=("default", "identity", "orthogonal"),
                ),
            },
        )
    )
