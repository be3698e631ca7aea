"""The declaration shared by the recurrent model plugins (``rnn``, ``lstm``, ``gru``).

Plain Python, like the plugin files themselves: the models live in ``_recurrent.py``, which
:func:`build` imports only when a model is built, so listing plugins never imports torch.
"""

from __future__ import annotations

from functools import partial
from typing import Mapping

from seqbench.api import KINDS, ModelPlugin, Param


def common_defaults() -> dict[str, Param]:
    """The hyperparameters every recurrent model has (``hidden_size`` is the budget's width)."""
    return {
        "embed_size": Param(64, "token embedding size", minimum=1),
        "hidden_size": Param(128, "units per layer", minimum=1),
        "num_layers": Param(1, "stacked recurrent layers", minimum=1),
        "dropout": Param(0.1, "dropout on embeddings, layers, outputs", minimum=0),
    }


def build(cell: str, kind: str, shape, hparams: dict):
    """``build_recurrent`` for ``cell`` ("rnn", "lstm" or "gru"), importing torch only now."""
    from ._recurrent import build_recurrent

    return build_recurrent(cell, kind, shape, hparams)


def recurrent_plugin(
    cell: str, description: str, extra_defaults: Mapping[str, Param] | None = None
) -> ModelPlugin:
    """The plugin named ``cell`` for every task kind: the common hyperparameters, then
    ``extra_defaults`` (the Elman RNN's nonlinearity and init)."""
    return ModelPlugin(
        name=cell,
        description=description,
        kinds=KINDS,
        defaults={**common_defaults(), **(extra_defaults or {})},
        build=partial(build, cell),
        width_param="hidden_size",
    )
