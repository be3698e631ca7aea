"""A fastText-style bag of n-grams (Joulin et al. 2017): averaged n-gram embeddings -> linear.

The bag plugin's lazy build target, so listing plugins never imports torch.

Every unigram and (with ``ngrams=2``) every bigram of a sentence has an embedding; the sentence is
their mean, and one linear layer maps it to the classes. Bigrams are hashed into ``buckets`` rows,
as fastText does, so the table's size does not depend on how many bigrams the data holds. The
model sees word order only through adjacent pairs: with unigrams alone any permutation of a
sentence gives the same logits.

Shapes: ``B`` batch, ``S`` source length, ``E`` embedding size, ``C`` classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqbench.api import PAD, PluginError, TaskShape

from ._recurrent import check_dropout, check_kind

# Multiplier of the bigram hash (a, b) -> (a * P + b) mod buckets; a prime larger than any
# vocabulary, so that (a, b) and (b, a) land in different rows unless buckets forces a collision.
HASH_PRIME = 1_000_003


@dataclass
class BagConfig:
    embed_size: int = 64  # the budget's width
    ngrams: int = 2  # 1: unigrams only; 2: unigrams and hashed bigrams
    buckets: int = 32_768  # rows of the bigram table
    dropout: float = 0.0  # on the averaged vector

    @classmethod
    def from_hparams(cls, hparams: dict) -> "BagConfig":
        cfg = cls(**{k: hparams[k] for k in cls.__dataclass_fields__ if k in hparams})
        if cfg.ngrams not in (1, 2):
            raise PluginError(f"parameter 'ngrams': {cfg.ngrams!r} is not one of 1, 2")
        check_dropout(cfg.dropout)
        return cfg


def bigram_ids(src: torch.Tensor, buckets: int) -> torch.Tensor:
    """``(B, S-1)`` hashed ids of each adjacent pair ``(src[:, t], src[:, t+1])``."""
    return (src[:, :-1] * HASH_PRIME + src[:, 1:]) % buckets


class BagOfNgrams(nn.Module):
    def __init__(self, cfg: BagConfig, shape: TaskShape):
        super().__init__()
        self.unigrams = nn.Embedding(shape.src_vocab_size, cfg.embed_size, padding_idx=PAD)
        self.bigrams = nn.Embedding(cfg.buckets, cfg.embed_size) if cfg.ngrams == 2 else None
        self.buckets = cfg.buckets
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.embed_size, shape.num_classes)
        # fastText's initialisation: input vectors U(-1/E, 1/E).
        with torch.no_grad():
            for table in filter(None, (self.unigrams, self.bigrams)):
                table.weight.uniform_(-1 / cfg.embed_size, 1 / cfg.embed_size)
            self.unigrams.weight[PAD].zero_()

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> torch.Tensor:
        lengths = src_len.clamp(min=1)  # (B,)
        t = torch.arange(src.size(1), device=src.device)[None, :]  # (1, S)
        real = (t < lengths[:, None]).unsqueeze(-1)  # (B, S, 1)
        total = (self.unigrams(src) * real).sum(1)  # (B, E)
        count = lengths.to(total.dtype)  # (B,)
        if self.bigrams is not None and src.size(1) > 1:
            pair_real = real[:, 1:]  # (B, S-1, 1): both tokens of the pair are real
            total = total + (self.bigrams(bigram_ids(src, self.buckets)) * pair_real).sum(1)
            count = count + (lengths - 1).to(total.dtype)
        mean = total / count[:, None]  # (B, E)
        return self.head(self.drop(mean))  # (B, C)


def build_bag(kind: str, shape: TaskShape, hparams: dict) -> nn.Module:
    check_kind("bag", kind, ("classification",))
    return BagOfNgrams(BagConfig.from_hparams(hparams), shape)
