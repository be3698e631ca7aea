"""bag plugin: a fastText-style bag of n-grams (Joulin et al. 2017), order-blind by design.

The mean of a sentence's unigram and hashed-bigram embeddings, then one linear layer: fast and
strong on small text, it measures how much of a score needs word order at all. The width the
parameter-budget search scales is ``embed_size``; the model lives in ``_bag.py``, so importing
this module never imports torch.
"""

from seqbench import hookimpl
from seqbench.api import Choice, ModelPlugin, Param, Range
from seqbench.hookspecs import RegisterModel

from ._declare import MAX_WIDTH


@hookimpl
def register_models(register: RegisterModel) -> None:
    register(
        ModelPlugin(
            name="bag",
            description="fastText-style bag of unigrams and hashed bigrams -> linear (classifier)",
            kinds=("classification",),
            defaults={
                "embed_size": Param(64, "n-gram embedding size", minimum=1, maximum=MAX_WIDTH),
                "ngrams": Param(2, "1: unigrams only; 2: unigrams and bigrams", (1, 2)),
                "buckets": Param(32_768, "rows of the hashed bigram table", minimum=1,
                                 maximum=10_000_000),
                "dropout": Param(0.0, "dropout on the averaged embedding", minimum=0, maximum=1,
                                 max_open=True),
            },
            build="seqbench_plugins._bag:build_bag",
            width_param="embed_size",
            # A linear model on averaged embeddings wants larger steps than a deep one, and
            # whether bigrams pay depends on the data.
            search_space={
                "lr": Range(1e-4, 1e-1, log=True),
                "ngrams": Choice((1, 2)),
                "dropout": Range(0.0, 0.5),
            },
        )
    )
