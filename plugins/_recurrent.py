"""Recurrent models (Elman RNN, LSTM, GRU) for every task kind, sharing one code path.

The public plugin files (``rnn.py``, ``lstm.py``, ``gru.py``) only declare hyperparameters,
through ``_declare.py``, and name this module's ``build_rnn`` / ``build_lstm`` / ``build_gru`` as
lazy build targets, so listing plugins never pays for importing torch.

One cell type parameter (``"rnn" | "lstm" | "gru"``) picks torch's fused ``nn.RNN`` / ``nn.LSTM``
/ ``nn.GRU``; the models never loop over time steps in ``forward`` (only greedy ``generate``
loops, one output token at a time, because each step needs the previous step's choice).

Shapes: ``B`` batch, ``S`` source length, ``T`` target length, ``E`` embedding size, ``H`` hidden
size, ``L`` layers, ``V`` target vocabulary, ``C`` classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqbench.api import BOS, EOS, PAD, PluginError, TaskShape

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # weight_hh stacks this many (H, H) blocks


@dataclass
class RecurrentConfig:
    cell: str = "lstm"  # rnn | lstm | gru
    embed_size: int = 64
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.1
    nonlinearity: str = "tanh"  # Elman RNN only: tanh | relu
    init: str = "default"  # recurrent weights: default | identity | orthogonal
    forget_bias: float = 1.0  # LSTM only: initial forget-gate bias (see init_forget_bias)
    chrono: bool = False  # LSTM only: chrono init of the forget/input biases (see init_chrono)
    update_bias: float = 1.0  # GRU only: initial update-gate bias (see init_update_bias)
    # Not a hyperparameter: the task's longest sequence, set by build_recurrent (chrono's T_max).
    horizon: int = 0

    @classmethod
    def from_hparams(cls, cell: str, hparams: dict) -> "RecurrentConfig":
        known = {
            k: hparams[k]
            for k in cls.__dataclass_fields__
            if k in hparams and k not in ("cell", "horizon")
        }
        cfg = cls(cell=cell, **known)
        check_dropout(cfg.dropout)
        return cfg


def check_dropout(p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise PluginError(f"parameter 'dropout': {p!r} must be in [0, 1)")


def check_kind(model: str, kind: str, kinds: tuple[str, ...]) -> None:
    if kind not in kinds:
        raise PluginError(f"model {model!r} does not support kind '{kind}' ({', '.join(kinds)})")


# --------------------------------------------------------------------------------------------
# Building blocks


def make_rnn(cfg: RecurrentConfig, input_size: int) -> nn.RNNBase:
    """torch's fused multi-layer RNN of type ``cfg.cell``, batch-first, ``cfg.init`` applied."""
    kwargs = dict(
        input_size=input_size,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        batch_first=True,
        # torch applies this dropout only *between* layers (and warns when there is one layer).
        dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
    )
    if cfg.cell == "rnn":
        kwargs["nonlinearity"] = cfg.nonlinearity
    rnn = CELLS[cfg.cell](**kwargs)
    init_recurrent(rnn, cfg.cell, cfg.init)
    if cfg.cell == "gru" and cfg.update_bias:
        init_update_bias(rnn, cfg.update_bias)
    if cfg.cell == "lstm":
        init_forget_bias(rnn, cfg.forget_bias)
        if cfg.chrono:
            init_chrono(rnn, cfg.horizon)
    return rnn


def init_forget_bias(rnn: nn.LSTM, value: float) -> None:
    """Start every forget gate at ``sigmoid(value)``: ``bias_ih``'s forget block = ``value``,
    ``bias_hh``'s = 0 (torch adds the two).

    torch initialises the forget bias like every other bias, around 0, so f_t starts near 0.5 and
    the cell state, with its gradient, halves at every step: over 64 steps (sequential digits) or
    120 (copy, T = 100) nothing reaches the early inputs, as in a plain RNN. A bias of 1 (Gers et
    al. 2000; Jozefowicz et al. 2015 found it closes most of the gap to the GRU) starts f_t at
    0.73, and larger values keep the memory longer still.
    """
    with torch.no_grad():
        H = rnn.hidden_size
        for layer in range(rnn.num_layers):
            # torch's gate order is i, f, g, o: the forget gate is the second (H,) block.
            getattr(rnn, f"bias_ih_l{layer}")[H : 2 * H].fill_(value)
            getattr(rnn, f"bias_hh_l{layer}")[H : 2 * H].zero_()


def init_update_bias(rnn: nn.GRU, value: float) -> None:
    """Start every update gate at ``sigmoid(value)``: ``bias_ih``'s update block = ``value``,
    ``bias_hh``'s = 0.

    torch's GRU computes h_t = (1 - z_t) * n_t + z_t * h_{t-1}: z_t is the share of the state
    carried over, the counterpart of the LSTM's forget gate, and torch starts it near 0.5 like
    every other bias. A bias of 1 starts z_t at 0.73, as the LSTM's forget bias 1 starts f_t, so
    both gated units begin by carrying their state. 0 leaves torch's initialisation untouched.
    """
    with torch.no_grad():
        H = rnn.hidden_size
        for layer in range(rnn.num_layers):
            # torch's gate order is r, z, n: the update gate is the second (H,) block.
            getattr(rnn, f"bias_ih_l{layer}")[H : 2 * H].fill_(value)
            getattr(rnn, f"bias_hh_l{layer}")[H : 2 * H].zero_()


def init_chrono(rnn: nn.LSTM, horizon: int) -> None:
    """Chrono initialisation (Tallec & Ollivier 2018): b_f = log(u), u ~ U(1, T_max - 1), and
    b_i = -b_f, in every layer (replacing ``forget_bias``).

    A forget gate σ(b_f) keeps a fraction ≈ 1 - 1/u of the cell per step, so a unit remembers
    for about u steps: the units' memory spans are spread up to T_max, the longest dependency
    the task can have (``horizon``: its longest sequence), and the gradient through the cell
    reaches that far back from the start. Draws from torch's generator (the run's seed).
    """
    t_max = max(horizon, 3)  # U(1, T_max - 1) needs T_max - 1 > 1
    with torch.no_grad():
        H = rnn.hidden_size
        for layer in range(rnn.num_layers):
            b_ih = getattr(rnn, f"bias_ih_l{layer}")  # torch's gate order: i, f, g, o
            b_f = torch.log(torch.empty(H).uniform_(1.0, t_max - 1.0))
            b_ih[H : 2 * H].copy_(b_f)
            b_ih[:H].copy_(-b_f)
            getattr(rnn, f"bias_hh_l{layer}")[: 2 * H].zero_()  # the gate's bias is exactly b_ih


def init_recurrent(rnn: nn.RNNBase, cell: str, init: str) -> None:
    """Initialise the hidden-to-hidden matrices (one ``(H, H)`` block per gate).

    ``identity`` (Le et al. 2015, "IRNN"): W_hh = I and zero biases, so at initialisation the
    state is carried forward unchanged and, with ReLU, the gradient through time neither shrinks
    nor grows. ``orthogonal``: every singular value of W_hh is 1, so repeated multiplication by it
    preserves norms (Saxe et al. 2014). ``default`` keeps torch's uniform(-1/sqrt(H), 1/sqrt(H)).
    """
    if init == "default":
        return
    if init not in ("identity", "orthogonal"):
        raise PluginError(f"parameter 'init': {init!r} is not one of default, identity, orthogonal")
    with torch.no_grad():
        for layer in range(rnn.num_layers):
            w_hh = getattr(rnn, f"weight_hh_l{layer}")  # (G*H, H)
            for block in w_hh.chunk(GATES[cell], dim=0):  # each (H, H), a view into w_hh
                if init == "identity":
                    block.copy_(torch.eye(block.size(0), device=block.device, dtype=block.dtype))
                else:
                    nn.init.orthogonal_(block)
            if init == "identity":
                getattr(rnn, f"bias_hh_l{layer}").zero_()
                getattr(rnn, f"bias_ih_l{layer}").zero_()


def last_layer(state) -> torch.Tensor:
    """The top layer's hidden state ``(B, H)`` from an RNN/GRU ``h`` or an LSTM ``(h, c)``."""
    h = state[0] if isinstance(state, tuple) else state  # (L, B, H)
    return h[-1]


class Encoder(nn.Module):
    """Embedding + RNN over a padded batch, run as a packed sequence.

    Packing makes the RNN stop at each row's true length, so the final state is the state after
    the last real token, and appending PAD tokens changes nothing.
    """

    def __init__(self, cfg: RecurrentConfig, vocab_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.embed_size, padding_idx=PAD)
        self.drop = nn.Dropout(cfg.dropout)
        self.rnn = make_rnn(cfg, cfg.embed_size)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, outputs: bool = False):
        """Returns ``(outputs (B, S, H) or None, final state (L, B, H) [or an (h, c) pair])``.

        Outputs at padded positions are zeros.
        """
        x = self.drop(self.embed(src))  # (B, S, E)
        # pack_padded_sequence wants lengths on the CPU; an empty row would be an error, so it
        # reads one PAD (whose embedding is zero) instead.
        lengths = src_len.clamp(min=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)  # state comes back in the batch's original order
        if not outputs:
            return None, state
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # (B, S, H)
        return out, state


def greedy_decode(
    step: Callable, state, batch: int, max_len: int, device: torch.device
) -> torch.Tensor:
    """Greedy decoding loop shared by every seq2seq model.

    ``step(tokens (B,), state) -> (logits (B, V), state)`` advances the decoder by one token.
    Returns ``(B, <=max_len)`` ids without the BOS; a row that has emitted EOS emits PAD after it,
    and the loop stops as soon as every row has emitted EOS.
    """
    tok = torch.full((batch,), BOS, dtype=torch.long, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    out = []
    for _ in range(max_len):
        logits, state = step(tok, state)
        tok = logits.argmax(-1).masked_fill(done, PAD)  # (B,)
        out.append(tok)
        done |= tok == EOS
        if bool(done.all()):
            break
    if not out:
        return torch.empty(batch, 0, dtype=torch.long, device=device)
    return torch.stack(out, dim=1)  # (B, L)


# --------------------------------------------------------------------------------------------
# The three kinds


class RecurrentClassifier(nn.Module):
    """Encode the sentence; its final top-layer state, after the last real token, -> classes."""

    def __init__(self, cfg: RecurrentConfig, shape: TaskShape):
        super().__init__()
        self.encoder = Encoder(cfg, shape.src_vocab_size)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_size, shape.num_classes)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> torch.Tensor:
        _, state = self.encoder(src, src_len)
        return self.head(self.drop(last_layer(state)))  # (B, C)


class RecurrentAligned(nn.Module):
    """One output per input position from a unidirectional RNN: causal by construction.

    No packing is needed: a unidirectional RNN's output at ``t`` only depends on inputs ``<= t``,
    so the PAD tokens after a row's end cannot reach its real positions.
    """

    def __init__(self, cfg: RecurrentConfig, shape: TaskShape):
        super().__init__()
        self.embed = nn.Embedding(shape.src_vocab_size, cfg.embed_size, padding_idx=PAD)
        self.drop = nn.Dropout(cfg.dropout)
        self.rnn = make_rnn(cfg, cfg.embed_size)
        self.head = nn.Linear(cfg.hidden_size, shape.tgt_vocab_size)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> torch.Tensor:
        return self.forward_window(src)[0]  # (B, S, V)

    def forward_window(self, src: torch.Tensor, state=None):
        """``src (B, K)`` from the recurrent ``state`` a previous window left (None: zeros) ->
        ``(logits (B, K, V), state)``; truncated BPTT (``seqbench.experiment.tbptt``) carries
        the state from window to window, detached."""
        x = self.drop(self.embed(src))  # (B, K, E)
        out, state = self.rnn(x, state)  # (B, K, H)
        return self.head(self.drop(out)), state

    def rtrl_updates(self, src: torch.Tensor, y: torch.Tensor, online: bool):
        """Real-time recurrent learning (one-layer Elman RNN only): see ``rtrl.py``."""
        from .rtrl import rtrl_updates

        return rtrl_updates(self, src, y, online)


class RecurrentSeq2Seq(nn.Module):
    """Encoder-decoder without attention (Sutskever et al. 2014; Cho et al. 2014).

    The encoder's final state is the decoder's initial state and the only path from source to
    target: the whole sentence must be compressed into one fixed-size state. That bottleneck is
    what attention (``seq2seq-attention``) removes, so this model is its natural baseline.
    """

    def __init__(self, cfg: RecurrentConfig, shape: TaskShape):
        super().__init__()
        self.encoder = Encoder(cfg, shape.src_vocab_size)
        self.tgt_embed = nn.Embedding(shape.tgt_vocab_size, cfg.embed_size, padding_idx=PAD)
        self.decoder = make_rnn(cfg, cfg.embed_size)  # same cell/layers/width: states fit as-is
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_size, shape.tgt_vocab_size)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor):
        _, state = self.encoder(src, src_len)  # (L, B, H) [x2 for LSTM]
        y = self.drop(self.tgt_embed(tgt_in))  # (B, T, E)
        # Teacher forcing: the whole target prefix goes through the fused RNN at once. Padding at
        # the end of tgt_in cannot affect earlier positions (the decoder is unidirectional).
        out, _ = self.decoder(y, state)  # (B, T, H)
        return self.head(self.drop(out))  # (B, T, V)

    def step(self, tok: torch.Tensor, state):
        y = self.drop(self.tgt_embed(tok[:, None]))  # (B, 1, E)
        out, state = self.decoder(y, state)  # (B, 1, H)
        return self.head(self.drop(out[:, 0])), state  # (B, V)

    @torch.no_grad()
    def generate(self, src: torch.Tensor, src_len: torch.Tensor, max_len: int) -> torch.Tensor:
        _, state = self.encoder(src, src_len)
        return greedy_decode(self.step, state, src.size(0), max_len, src.device)


MODELS = {
    "classification": RecurrentClassifier,
    "seq2seq": RecurrentSeq2Seq,
    "aligned": RecurrentAligned,
}


def build_recurrent(cell: str, kind: str, shape: TaskShape, hparams: dict) -> nn.Module:
    """The build behind the rnn / lstm / gru plugins, for ``cell``."""
    check_kind(cell, kind, tuple(MODELS))
    cfg = RecurrentConfig.from_hparams(cell, hparams)
    cfg.horizon = max(shape.max_src_len, shape.max_tgt_len + 1)
    return MODELS[kind](cfg, shape)


# The lazy build targets of the rnn, lstm and gru plugins (``_declare.recurrent_plugin``).
build_rnn = partial(build_recurrent, "rnn")
build_lstm = partial(build_recurrent, "lstm")
build_gru = partial(build_recurrent, "gru")
