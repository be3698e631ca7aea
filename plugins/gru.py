"""GRU plugin (Cho et al. 2014): gated recurrent unit, fused ``nn.GRU``.

An update gate interpolates h_t = (1 - z_t) * h_{t-1} + z_t * candidate, so like the LSTM the
state can be carried through time nearly unchanged, with fewer parameters (3 gates, no cell).

The models live in ``_recurrent.py`` and the common declaration in ``_declare.py`` (both shared
with the RNN and LSTM); importing this module never imports torch.
"""

from seqbench import hookimpl
from seqbench.api import Param
from seqbench.hookspecs import RegisterModel

from ._declare import recurrent_plugin


@hookimpl
def register_models(register: RegisterModel) -> None:
    register(
        recurrent_plugin(
            "gru",
            "GRU: classifier, encoder-decoder without attention, or causal tagger",
            {
                "update_bias": Param(
                    1.0, "initial update-gate bias (1 starts the unit carrying its state, the "
                    "LSTM's forget bias 1; 0 = torch's initialisation)",
                ),
            },
        )
    )
