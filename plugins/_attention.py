"""LSTM encoder-decoder with attention over the encoder states (Luong et al. 2015).

The seq2seq-attention plugin's lazy build target, so listing plugins never imports torch.

Per target step ``t``, with decoder state ``h_t`` and encoder states ``s_1..s_S``::

    q_t    = W_q h_t                            query
    k_j    = W_k s_j                            keys (computed once per source sentence)
    a_tj   = softmax_j(q_t . k_j / sqrt(H))     PAD positions get -inf before the softmax
    c_t    = sum_j a_tj s_j                     context vector
    h~_t   = tanh(W_c [c_t; h_t])               attentional state
    p(y_t) = softmax(W_o h~_t)

Attention comes *after* the decoder LSTM (Luong's design, without "input feeding"), so the
LSTM's input never depends on an earlier step's attention and teacher-forced training runs the
whole target through the fused LSTM at once, with no Python loop over time.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from seqbench.api import PAD, TaskShape

from ._recurrent import Encoder, RecurrentConfig, check_kind, greedy_decode, make_rnn


class AttentionSeq2Seq(nn.Module):
    def __init__(self, cfg: RecurrentConfig, shape: TaskShape):
        super().__init__()
        H = cfg.hidden_size
        self.encoder = Encoder(cfg, shape.src_vocab_size)
        self.tgt_embed = nn.Embedding(shape.tgt_vocab_size, cfg.embed_size, padding_idx=PAD)
        # Same width and depth as the encoder, so the encoder's final (h, c) initialises it.
        self.decoder = make_rnn(cfg, cfg.embed_size)
        self.query = nn.Linear(H, H, bias=False)
        self.key = nn.Linear(H, H, bias=False)
        self.combine = nn.Linear(2 * H, H)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(H, shape.tgt_vocab_size)

    def encode(self, src: torch.Tensor, src_len: torch.Tensor):
        enc, state = self.encoder(src, src_len, outputs=True)  # (B, S, H)
        keys = self.key(enc)  # (B, S, H)
        # True at real source positions. Row i has src_len[i] real tokens followed by PAD.
        positions = torch.arange(src.size(1), device=src.device)  # (S,)
        mask = positions[None, :] < src_len.clamp(min=1)[:, None]  # (B, S)
        return enc, keys, mask, state

    def attend(self, dec, enc, keys, mask):
        """``dec (B, T, H)`` -> attentional states ``(B, T, H)`` and weights ``(B, T, S)``."""
        q = self.query(dec)  # (B, T, H)
        scores = q @ keys.transpose(1, 2) / math.sqrt(q.size(-1))  # (B, T, S)
        # -inf before the softmax gives padded source positions exactly zero weight; every row
        # has at least one real position, so no row is all -inf.
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)  # (B, T, S), each row sums to 1
        context = weights @ enc  # (B, T, H)
        h = torch.tanh(self.combine(torch.cat([context, dec], dim=-1)))  # (B, T, H)
        return h, weights

    def forward(
        self,
        src: torch.Tensor,
        src_len: torch.Tensor,
        tgt_in: torch.Tensor,
        return_attention: bool = False,
    ):
        """Teacher-forced logits ``(B, T, V)``; with ``return_attention`` also the weights
        ``(B, T, S)`` (row ``t`` is the distribution over source positions for target step t)."""
        enc, keys, mask, state = self.encode(src, src_len)
        y = self.drop(self.tgt_embed(tgt_in))  # (B, T, E)
        dec, _ = self.decoder(y, state)  # (B, T, H)
        h, weights = self.attend(dec, enc, keys, mask)
        logits = self.head(self.drop(h))  # (B, T, V)
        return (logits, weights) if return_attention else logits

    @torch.no_grad()
    def generate(self, src: torch.Tensor, src_len: torch.Tensor, max_len: int) -> torch.Tensor:
        enc, keys, mask, state = self.encode(src, src_len)

        def step(tok, state):
            y = self.drop(self.tgt_embed(tok[:, None]))  # (B, 1, E)
            dec, state = self.decoder(y, state)  # (B, 1, H)
            h, _ = self.attend(dec, enc, keys, mask)  # (B, 1, H)
            return self.head(self.drop(h[:, 0])), state  # (B, V)

        return greedy_decode(step, state, src.size(0), max_len, src.device)


def build_attention(kind: str, shape: TaskShape, hparams: dict) -> nn.Module:
    check_kind("seq2seq-attention", kind, ("seq2seq",))
    return AttentionSeq2Seq(RecurrentConfig.from_hparams("lstm", hparams), shape)
