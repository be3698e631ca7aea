"""A small pre-LN Transformer (Vaswani et al. 2017; Xiong et al. 2020) for every task kind.

Imported only from ``transformer.build`` so that listing plugins never imports torch.

Pre-LN (``norm_first=True``) puts LayerNorm before each sub-layer, x + f(LN(x)), leaving a clean
residual path; it trains stably without the learning-rate warm-up post-LN needs, which matters
for a benchmark that uses one training recipe for every model. The stack therefore ends with one
more LayerNorm. Positions are sinusoidal, computed for whatever length arrives, so no task length
is baked into the parameters.

Shapes: ``B`` batch, ``S`` source length, ``T`` target length, ``D`` d_model, ``V`` target
vocabulary, ``C`` classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from seqbench.api import PAD, PluginError, TaskShape

from ._recurrent import check_dropout, check_kind, greedy_decode


@dataclass
class TransformerConfig:
    d_model: int = 64
    n_heads: int = 4
    num_layers: int = 2
    ff_mult: int = 4  # feed-forward width = ff_mult * d_model, so scaling d_model scales it all
    dropout: float = 0.1

    @classmethod
    def from_hparams(cls, hparams: dict) -> "TransformerConfig":
        cfg = cls(**{k: hparams[k] for k in cls.__dataclass_fields__ if k in hparams})
        if cfg.d_model % cfg.n_heads:
            raise PluginError(
                f"parameter 'd_model': {cfg.d_model} is not a multiple of n_heads={cfg.n_heads}"
            )
        check_dropout(cfg.dropout)
        return cfg


def sinusoidal_positions(length: int, dim: int, device=None) -> torch.Tensor:
    """``(length, dim)`` table: PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(...)."""
    pos = torch.arange(length, dtype=torch.float32, device=device)[:, None]  # (L, 1)
    freq = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim)
    )  # (ceil(dim/2),)
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]  # odd dim: one fewer cosine column
    return pe


def causal_mask(length: int, device=None) -> torch.Tensor:
    """``(L, L)`` bool, True above the diagonal = position i may not attend to j > i."""
    return torch.ones(length, length, dtype=torch.bool, device=device).triu(1)


class Embedder(nn.Module):
    """Token embedding scaled by sqrt(D) (so it is not drowned by the +-1 positions) + positions."""

    def __init__(self, vocab_size: int, cfg: TransformerConfig):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, cfg.d_model, padding_idx=PAD)
        self.drop = nn.Dropout(cfg.dropout)
        self.scale = math.sqrt(cfg.d_model)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) * self.scale  # (B, L, D)
        pe = sinusoidal_positions(ids.size(1), x.size(-1), ids.device).to(x.dtype)  # (L, D)
        return self.drop(x + pe)


def make_encoder(cfg: TransformerConfig) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        cfg.d_model, cfg.n_heads, cfg.ff_mult * cfg.d_model, cfg.dropout,
        activation="gelu", batch_first=True, norm_first=True,
    )  # fmt: skip
    # enable_nested_tensor only applies to post-LN; turning it off silences torch's warning.
    return nn.TransformerEncoder(
        layer, cfg.num_layers, norm=nn.LayerNorm(cfg.d_model), enable_nested_tensor=False
    )


def make_decoder(cfg: TransformerConfig) -> nn.TransformerDecoder:
    layer = nn.TransformerDecoderLayer(
        cfg.d_model, cfg.n_heads, cfg.ff_mult * cfg.d_model, cfg.dropout,
        activation="gelu", batch_first=True, norm_first=True,
    )  # fmt: skip
    return nn.TransformerDecoder(layer, cfg.num_layers, norm=nn.LayerNorm(cfg.d_model))


class TransformerClassifier(nn.Module):
    """Bidirectional encoder; mean of the non-PAD positions' final states -> classes."""

    def __init__(self, cfg: TransformerConfig, shape: TaskShape):
        super().__init__()
        self.embed = Embedder(shape.src_vocab_size, cfg)
        self.encoder = make_encoder(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.d_model, shape.num_classes)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> torch.Tensor:
        pad = src == PAD  # (B, S), True = ignore this key
        h = self.encoder(self.embed(src), src_key_padding_mask=pad)  # (B, S, D)
        real = ~pad[..., None]  # (B, S, 1)
        # where(), not multiply: a PAD position's state is never read, whatever its value.
        pooled = torch.where(real, h, 0.0).sum(1) / real.sum(1).clamp(min=1)  # (B, D)
        return self.head(self.drop(pooled))  # (B, C)


class TransformerAligned(nn.Module):
    """Decoder-only style: the encoder stack under a causal mask, one output per position.

    The causal mask alone keeps real positions away from the trailing PAD tokens (they all come
    later), so no padding mask is needed.
    """

    def __init__(self, cfg: TransformerConfig, shape: TaskShape):
        super().__init__()
        self.embed = Embedder(shape.src_vocab_size, cfg)
        self.encoder = make_encoder(cfg)
        self.head = nn.Linear(cfg.d_model, shape.tgt_vocab_size)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> torch.Tensor:
        mask = causal_mask(src.size(1), src.device)  # (S, S)
        h = self.encoder(self.embed(src), mask=mask, is_causal=True)  # (B, S, D)
        return self.head(h)  # (B, S, V)


class TransformerSeq2Seq(nn.Module):
    """Encoder-decoder: self-attention over the source, causal self-attention over the target
    prefix, and cross-attention from every target position to the (non-PAD) source states."""

    def __init__(self, cfg: TransformerConfig, shape: TaskShape):
        super().__init__()
        self.src_embed = Embedder(shape.src_vocab_size, cfg)
        self.tgt_embed = Embedder(shape.tgt_vocab_size, cfg)
        self.encoder = make_encoder(cfg)
        self.decoder = make_decoder(cfg)
        self.head = nn.Linear(cfg.d_model, shape.tgt_vocab_size)

    def encode(self, src: torch.Tensor):
        pad = src == PAD  # (B, S)
        memory = self.encoder(self.src_embed(src), src_key_padding_mask=pad)  # (B, S, D)
        return memory, pad

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_pad: torch.Tensor):
        # Target PAD tokens sit after the real ones, so the causal mask already hides them from
        # every real position: no target padding mask is needed.
        mask = causal_mask(tgt_in.size(1), tgt_in.device)  # (T, T)
        y = self.tgt_embed(tgt_in)  # (B, T, D)
        h = self.decoder(
            y, memory, tgt_mask=mask, tgt_is_causal=True, memory_key_padding_mask=src_pad
        )  # (B, T, D)
        return self.head(h)  # (B, T, V)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor):
        memory, src_pad = self.encode(src)
        return self.decode(tgt_in, memory, src_pad)

    @torch.no_grad()
    def generate(self, src: torch.Tensor, src_len: torch.Tensor, max_len: int) -> torch.Tensor:
        memory, src_pad = self.encode(src)

        # No key/value cache: each step re-runs the decoder over the whole prefix. For the short
        # targets of small data sets this costs little and keeps the code obviously correct.
        def step(tok, prefix):
            prefix = torch.cat([prefix, tok[:, None]], dim=1)  # (B, t)
            return self.decode(prefix, memory, src_pad)[:, -1], prefix  # (B, V)

        empty = torch.empty(src.size(0), 0, dtype=torch.long, device=src.device)
        return greedy_decode(step, empty, src.size(0), max_len, src.device)


MODELS = {
    "classification": TransformerClassifier,
    "seq2seq": TransformerSeq2Seq,
    "aligned": TransformerAligned,
}


def build_transformer(kind: str, shape: TaskShape, hparams: dict) -> nn.Module:
    check_kind("transformer", kind, tuple(MODELS))
    return MODELS[kind](TransformerConfig.from_hparams(hparams), shape)
