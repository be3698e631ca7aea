"""A small pre-LN Transformer (Vaswani et al. 2017; Xiong et al. 2020) for every task kind.

The transformer plugin's lazy build target, so listing plugins never imports torch.

Pre-LN puts LayerNorm before each sub-layer, x + f(LN(x)), leaving a clean residual path; it
trains far more stably than post-LN, which cannot do without a learning-rate warm-up. That matters
for a benchmark that uses one training recipe for every model; the recipe's short warm-up (applied
to every model alike, see ``seqbench.experiment.lit``) still helps it. A stack of layers therefore
ends with one more LayerNorm. Positions are sinusoidal, computed for whatever length arrives, so no
task length is baked into the parameters.

The layers are our own (``Attention``, ``Layer``, ``Stack``) rather than ``nn.Transformer*``, so
that seq2seq generation can be incremental: a per-layer key/value cache for the decoder's
self-attention, and cross-attention keys/values projected from the encoder states once per
``generate`` call. Each step then costs one position's work instead of a re-run over the prefix.

Shapes: ``B`` batch, ``S`` source length, ``T`` target length, ``D`` d_model, ``H`` heads,
``V`` target vocabulary, ``C`` classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
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


def sinusoidal_positions(length: int, dim: int, device=None, start: int = 0) -> torch.Tensor:
    """``(length, dim)`` table for positions p = start .. start+length-1:
    PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(...)."""
    pos = torch.arange(start, start + length, dtype=torch.float32, device=device)  # (L,)
    pos = pos[:, None]  # (L, 1)
    freq = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim)
    )  # (ceil(dim/2),)
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]  # odd dim: one fewer cosine column
    return pe


class Embedder(nn.Module):
    """Token embedding times sqrt(D), plus sinusoidal positions, then dropout.

    The two terms must start on the same scale, or the smaller is noise to the first layer.
    A sinusoidal position vector has norm sqrt(D/2) (each sin/cos pair contributes 1). Vaswani
    et al.'s sqrt(D) factor assumes embeddings initialised with std D^-1/2 (their embedding is
    tied to the output layer); ``nn.Embedding``'s N(0, 1) init times sqrt(D) gave token vectors
    of norm D instead, sqrt(2D) times the positions', drowning word order. So the embedding starts
    at std D^-1/2 and the token term has norm about sqrt(D), like the positions.

    Keeping the factor (rather than dropping it with an N(0, 1) init, which starts identically)
    makes Adam's per-coordinate steps move a token vector sqrt(D) times further.
    """

    def __init__(self, vocab_size: int, cfg: TransformerConfig):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, cfg.d_model, padding_idx=PAD)
        nn.init.normal_(self.tok.weight, std=cfg.d_model**-0.5)
        with torch.no_grad():
            self.tok.weight[PAD].zero_()  # the init above overwrote padding_idx's zero row
        self.drop = nn.Dropout(cfg.dropout)
        self.scale = math.sqrt(cfg.d_model)

    def forward(self, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        """``ids (B, L)`` at positions ``start .. start+L-1`` (``start`` > 0 when generating)."""
        x = self.tok(ids) * self.scale  # (B, L, D)
        pe = sinusoidal_positions(ids.size(1), x.size(-1), ids.device, start)  # (L, D)
        return self.drop(x + pe.to(x.dtype))


def causal_mask(length: int, device=None) -> torch.Tensor:
    """``(L, L)`` bool, True on and below the diagonal = position i may attend to j <= i.

    (``scaled_dot_product_attention``'s convention: True = take part in attention.)
    """
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def key_mask(ids: torch.Tensor) -> torch.Tensor:
    """``(B, 1, 1, L)`` bool, True at real (non-PAD) tokens: which keys every query may see."""
    return (ids != PAD)[:, None, None, :]


class KVCache:
    """One layer's self-attention keys and values of the positions decoded so far.

    Buffers sized for ``max_len`` positions are filled in place, one step at a time; growing a
    tensor with ``torch.cat`` instead would copy the whole prefix at every step.
    """

    def __init__(self, max_len: int):
        self.max_len = max_len
        self.len = 0
        self.k = self.v = None  # (B, H, max_len, D/H) once the first step arrives

    def append(self, k: torch.Tensor, v: torch.Tensor):
        """Store ``k, v (B, H, T, D/H)``; return those of every position so far, (B, H, t, D/H)."""
        if self.k is None:
            self.k = k.new_empty(*k.shape[:2], self.max_len, k.size(-1))
            self.v = torch.empty_like(self.k)
        t = self.len + k.size(2)
        self.k[:, :, self.len : t] = k
        self.v[:, :, self.len : t] = v
        self.len = t
        return self.k[:, :, :t], self.v[:, :, :t]


class Attention(nn.Module):
    """Multi-head scaled dot-product attention, for self- and cross-attention.

    One ``(3D, D)`` input projection stacks the query, key and value projections (the layout, and
    the initialisation, of ``nn.MultiheadAttention``). Cross-attention projects the encoder
    states into keys/values once (``project_kv``) and reuses them for every target position and,
    when generating, for every step.
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.dropout = cfg.dropout  # on the attention weights
        self.in_proj = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out_proj = nn.Linear(cfg.d_model, cfg.d_model)
        nn.init.xavier_uniform_(self.in_proj.weight)
        nn.init.zeros_(self.in_proj.bias)
        nn.init.zeros_(self.out_proj.bias)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        return x.view(B, L, self.n_heads, D // self.n_heads).transpose(1, 2)  # (B, H, L, D/H)

    def project_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states ``(B, S, D)`` -> cross-attention keys and values, each (B, H, S, D/H)."""
        D = memory.size(-1)
        kv = F.linear(memory, self.in_proj.weight[D:], self.in_proj.bias[D:])  # (B, S, 2D)
        k, v = kv.chunk(2, dim=-1)  # (B, S, D) each
        return self.split_heads(k), self.split_heads(v)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """``x (B, T, D)`` -> ``(B, T, D)``. ``mask`` broadcasts to (B, H, T, keys), True = attend.

        Cross-attention: ``kv`` from ``project_kv``. Self-attention (``kv`` None): keys and values
        come from ``x``; with a ``cache`` (incremental decoding) they are appended to those of the
        earlier positions, stored there for the next step.
        """
        B, T, D = x.shape
        if kv is None:
            q, k, v = map(self.split_heads, self.in_proj(x).chunk(3, dim=-1))  # (B, H, T, D/H)
            if cache is not None:  # attend to the earlier steps' keys/values too
                k, v = cache.append(k, v)  # (B, H, t, D/H)
        else:
            q = self.split_heads(F.linear(x, self.in_proj.weight[:D], self.in_proj.bias[:D]))
            k, v = kv  # (B, H, S, D/H)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, T, D/H)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, D))  # (B, T, D)


class Layer(nn.Module):
    """Pre-LN Transformer layer: ``x += Drop(f(LN(x)))`` for each sub-layer f.

    Sub-layers: self-attention; cross-attention to the encoder (decoder layers only);
    feed-forward ``Linear(D, ff_mult*D) -> GELU -> Dropout -> Linear(ff_mult*D, D)``.
    """

    def __init__(self, cfg: TransformerConfig, cross: bool = False):
        super().__init__()
        D = cfg.d_model
        self.self_norm = nn.LayerNorm(D)
        self.self_attn = Attention(cfg)
        self.cross_norm = nn.LayerNorm(D) if cross else None
        self.cross_attn = Attention(cfg) if cross else None
        self.ff_norm = nn.LayerNorm(D)
        self.ff = nn.Sequential(
            nn.Linear(D, cfg.ff_mult * D), nn.GELU(), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.ff_mult * D, D),
        )  # fmt: skip
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, mask, memory_kv=None, memory_mask=None, cache=None):
        x = x + self.drop(self.self_attn(self.self_norm(x), mask, cache=cache))  # (B, T, D)
        if self.cross_attn is not None:
            h = self.cross_attn(self.cross_norm(x), memory_mask, kv=memory_kv)  # (B, T, D)
            x = x + self.drop(h)
        return x + self.drop(self.ff(self.ff_norm(x)))  # (B, T, D)


class Stack(nn.Module):
    """``num_layers`` layers and, pre-LN leaving the residual stream unnormalised, a final LN.

    The encoder is a stack without cross-attention; the decoder's layers also attend to the
    encoder states, given as the per-layer keys/values of ``project_memory``.
    """

    def __init__(self, cfg: TransformerConfig, cross: bool = False):
        super().__init__()
        self.layers = nn.ModuleList(Layer(cfg, cross) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.d_model)

    def project_memory(self, memory: torch.Tensor) -> list:
        """Encoder states ``(B, S, D)`` -> each layer's cross-attention (keys, values)."""
        return [layer.cross_attn.project_kv(memory) for layer in self.layers]

    def forward(self, x, mask, memory_kv=None, memory_mask=None, caches=None):
        for i, layer in enumerate(self.layers):
            kv = memory_kv[i] if memory_kv is not None else None
            x = layer(x, mask, kv, memory_mask, caches[i] if caches is not None else None)
        return self.norm(x)  # (B, T, D)


class TransformerClassifier(nn.Module):
    """Bidirectional encoder; mean of the non-PAD positions' final states -> classes."""

    def __init__(self, cfg: TransformerConfig, shape: TaskShape):
        super().__init__()
        self.embed = Embedder(shape.src_vocab_size, cfg)
        self.encoder = Stack(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.d_model, shape.num_classes)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(src), key_mask(src))  # (B, S, D)
        real = (src != PAD)[..., None]  # (B, S, 1)
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
        self.encoder = Stack(cfg)
        self.head = nn.Linear(cfg.d_model, shape.tgt_vocab_size)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(src), causal_mask(src.size(1), src.device))  # (B, S, D)
        return self.head(h)  # (B, S, V)


class TransformerSeq2Seq(nn.Module):
    """Encoder-decoder: self-attention over the source, causal self-attention over the target
    prefix, and cross-attention from every target position to the (non-PAD) source states.

    ``generate`` decodes incrementally: each step embeds one token, its self-attention reads the
    keys/values that earlier steps left in a per-layer cache, and its cross-attention reads keys
    and values projected from the encoder states once per call. A step therefore costs one
    position's work, not a re-run over the whole prefix.
    """

    def __init__(self, cfg: TransformerConfig, shape: TaskShape):
        super().__init__()
        self.src_embed = Embedder(shape.src_vocab_size, cfg)
        self.tgt_embed = Embedder(shape.tgt_vocab_size, cfg)
        self.encoder = Stack(cfg)
        self.decoder = Stack(cfg, cross=True)
        self.head = nn.Linear(cfg.d_model, shape.tgt_vocab_size)

    def encode(self, src: torch.Tensor):
        """-> each decoder layer's cross-attention (keys, values) and the source mask."""
        src_mask = key_mask(src)  # (B, 1, 1, S)
        memory = self.encoder(self.src_embed(src), src_mask)  # (B, S, D)
        return self.decoder.project_memory(memory), src_mask

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor):
        memory_kv, src_mask = self.encode(src)
        # Target PAD tokens sit after the real ones, so the causal mask already hides them from
        # every real position: no target padding mask is needed.
        mask = causal_mask(tgt_in.size(1), tgt_in.device)  # (T, T)
        h = self.decoder(self.tgt_embed(tgt_in), mask, memory_kv, src_mask)  # (B, T, D)
        return self.head(h)  # (B, T, V)

    @torch.no_grad()
    def generate(self, src: torch.Tensor, src_len: torch.Tensor, max_len: int) -> torch.Tensor:
        memory_kv, src_mask = self.encode(src)
        caches = [KVCache(max_len) for _ in self.decoder.layers]

        def step(tok, t):
            y = self.tgt_embed(tok[:, None], start=t)  # (B, 1, D), the token at position t
            # One query over all cached positions <= t: nothing to mask causally.
            h = self.decoder(y, None, memory_kv, src_mask, caches)  # (B, 1, D)
            return self.head(h[:, 0]), t + 1  # (B, V)

        return greedy_decode(step, 0, src.size(0), max_len, src.device)


MODELS = {
    "classification": TransformerClassifier,
    "seq2seq": TransformerSeq2Seq,
    "aligned": TransformerAligned,
}


def build_transformer(kind: str, shape: TaskShape, hparams: dict) -> nn.Module:
    check_kind("transformer", kind, tuple(MODELS))
    return MODELS[kind](TransformerConfig.from_hparams(hparams), shape)
