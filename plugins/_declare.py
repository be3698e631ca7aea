"""Declarations shared by the built-in model plugins: the recurrent ones' (``rnn``, ``lstm``,
``gru``) and the widest width any of them declares.

Plain Python, like the plugin files themselves: the models live in ``_recurrent.py``, named as
lazy build targets, so listing plugins never imports torch.
"""

from __future__ import annotations

from typing import Mapping

from seqbench.api import Kind, ModelPlugin, Param, Range


# The largest width any built-in declares: a typo (hidden_size=10**9) is a one-line error, not an
# exhausted machine.
MAX_WIDTH = 16_384


def common_defaults() -> dict[str, Param]:
    """The hyperparameters every recurrent model has (``hidden_size`` is the budget's width)."""
    return {
        "embed_size": Param(64, "token embedding size", minimum=1, maximum=MAX_WIDTH),
        "hidden_size": Param(128, "units per layer", minimum=1, maximum=MAX_WIDTH),
        "num_layers": Param(1, "stacked recurrent layers", minimum=1, maximum=64),
        "dropout": Param(0.1, "dropout on embeddings, layers, outputs", minimum=0, maximum=1,
                         max_open=True),
    }


def forget_bias_param() -> Param:
    """The LSTM's initial forget-gate bias (``lstm`` and ``seq2seq-attention``); see
    ``_recurrent.init_forget_bias`` for why it is 1 and not torch's 0."""
    return Param(1.0, "initial forget-gate bias (1 keeps the cell's memory at the start)")


def recurrent_search_space() -> dict[str, Range]:
    """What tuning varies for a recurrent model: the learning rate (AdamW's optimum for these
    small models has been seen anywhere from 3e-4 to 1e-2, so the range spans more than two
    decades), depth and dropout. Shared with ``seq2seq-attention``."""
    return {
        "lr": Range(1e-4, 3e-2, log=True),
        "num_layers": Range(1, 3, integer=True),
        "dropout": Range(0.0, 0.3),
    }


def recurrent_plugin(
    cell: str, description: str, extra_defaults: Mapping[str, Param] | None = None
) -> ModelPlugin:
    """The plugin named ``cell`` for every task kind: the common hyperparameters, then
    ``extra_defaults`` (the Elman RNN's nonlinearity and init)."""
    return ModelPlugin(
        name=cell,
        description=description,
        kinds=tuple(Kind),
        defaults={**common_defaults(), **(extra_defaults or {})},
        build=f"seqbench_plugins._recurrent:build_{cell}",
        width_param="hidden_size",
        search_space=recurrent_search_space(),
    )
