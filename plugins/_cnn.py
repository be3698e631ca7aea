"""Kim (2014)'s convolutional sentence classifier, embeddings learned from scratch (CNN-rand).

The cnn plugin's lazy build target, so listing plugins never imports torch.

Each filter width k slides ``num_maps`` filters over the word embeddings; a ReLU and the maximum
over time keep, per filter, the strongest match anywhere in the sentence, so the model sees word
order only within a window of k words. The convolution is wide (k - 1 zero vectors before and
after the sentence, as Kim's code pads), and windows lying wholly in a batch's padding are masked
out of the maximum, so a row's logits do not depend on what it was batched with.

Shapes: ``B`` batch, ``S`` source length, ``E`` embedding size, ``M`` maps per width, ``K`` filter
widths, ``C`` classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqbench.api import PAD, PluginError, TaskShape

from ._recurrent import check_dropout, check_kind


@dataclass
class CNNConfig:
    embed_size: int = 300
    num_maps: int = 100  # filters per width: the budget's width
    widths: str = "3,4,5"
    dropout: float = 0.5
    max_norm: float = 3.0  # L2 cap on each class's output weights (0: none)

    @classmethod
    def from_hparams(cls, hparams: dict) -> "CNNConfig":
        cfg = cls(**{k: hparams[k] for k in cls.__dataclass_fields__ if k in hparams})
        cfg.filter_widths()  # a malformed list fails at build time, not mid-run
        check_dropout(cfg.dropout)
        return cfg

    def filter_widths(self) -> tuple[int, ...]:
        try:
            out = tuple(int(w) for w in str(self.widths).split(","))
        except ValueError:
            out = ()
        if not out or any(not 1 <= w <= 64 for w in out):
            raise PluginError(
                f"parameter 'widths': {self.widths!r} is not a comma-separated list of filter "
                "widths from 1 to 64 (e.g. 3,4,5)"
            )
        return out


class KimCNN(nn.Module):
    def __init__(self, cfg: CNNConfig, shape: TaskShape):
        super().__init__()
        self.widths = cfg.filter_widths()
        self.max_norm = cfg.max_norm
        self.embed = nn.Embedding(shape.src_vocab_size, cfg.embed_size, padding_idx=PAD)
        self.convs = nn.ModuleList(
            nn.Conv1d(cfg.embed_size, cfg.num_maps, k, padding=k - 1) for k in self.widths
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.num_maps * len(self.widths), shape.num_classes)
        # Kim's random vectors: U(-0.25, 0.25), about the variance of word2vec's.
        with torch.no_grad():
            self.embed.weight.uniform_(-0.25, 0.25)
            self.embed.weight[PAD].zero_()

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> torch.Tensor:
        if self.training and self.max_norm:
            # Kim's constraint, applied before each update's forward pass: rescale any class's
            # weight vector whose L2 norm exceeds max_norm.
            with torch.no_grad():
                self.head.weight.copy_(torch.renorm(self.head.weight, 2, 0, self.max_norm))
        x = self.embed(src).transpose(1, 2)  # (B, E, S); PAD embeds to zero, like the conv padding
        lengths = src_len.clamp(min=1)[:, None]  # (B, 1)
        pooled = []
        for k, conv in zip(self.widths, self.convs):
            h = torch.relu(conv(x))  # (B, M, S + k - 1): window t covers tokens t-k+1 .. t
            t = torch.arange(h.size(2), device=h.device)[None, :]  # (1, S + k - 1)
            past_end = (t >= lengths + k - 1)[:, None, :]  # (B, 1, S + k - 1): padding only
            pooled.append(h.masked_fill(past_end, float("-inf")).amax(dim=2))  # (B, M)
        return self.head(self.drop(torch.cat(pooled, dim=1)))  # (B, C)


def build_cnn(kind: str, shape: TaskShape, hparams: dict) -> nn.Module:
    check_kind("cnn", kind, ("classification",))
    return KimCNN(CNNConfig.from_hparams(hparams), shape)
