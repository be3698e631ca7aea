"""cnn plugin: Kim (2014)'s CNN for sentence classification, embeddings learned from scratch.

Filter widths 3, 4 and 5 with 100 maps each, ReLU, max-over-time pooling, dropout 0.5 and a
max-norm of 3 on the output weights, over 300-d embeddings: CNN-rand, the from-scratch baseline
of the sentence-classification literature. It sees word order only within a filter's window.
The width the parameter-budget search scales is ``num_maps``; the model lives in ``_cnn.py``, so
importing this module never imports torch.
"""

from seqbench import hookimpl
from seqbench.api import ModelPlugin, Param, Range
from seqbench.hookspecs import RegisterModel

from ._declare import MAX_WIDTH


@hookimpl
def register_models(register: RegisterModel) -> None:
    register(
        ModelPlugin(
            name="cnn",
            description="Kim (2014) CNN: filter widths 3/4/5, max-over-time pooling (classifier)",
            kinds=("classification",),
            defaults={
                "embed_size": Param(300, "token embedding size", minimum=1, maximum=MAX_WIDTH),
                "num_maps": Param(100, "feature maps (filters) per filter width", minimum=1,
                                  maximum=MAX_WIDTH),
                "widths": Param("3,4,5", "filter widths in tokens, comma-separated"),
                "dropout": Param(0.5, "dropout on the pooled features", minimum=0, maximum=1,
                                 max_open=True),
                "max_norm": Param(3.0, "L2 cap on each class's output weights (0 = none)",
                                  minimum=0.0),
            },
            build="seqbench_plugins._cnn:build_cnn",
            width_param="num_maps",
            # Kim tuned neither; the learning rate matters for any optimiser, and dropout is
            # what regularises this model at small n.
            search_space={
                "lr": Range(1e-4, 3e-2, log=True),
                "dropout": Range(0.0, 0.7),
            },
        )
    )
