"""Truncated BPTT over windows of K steps, and RTRL: several updates per batch, driven by
:func:`manual_step` under manual optimisation. See docs/methods.md#truncated-bptt-and-rtrl.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

from ..api import PAD, PluginError
from .algorithms import algorithm, window_size

def detach(state):
    """A recurrent state (a tensor, or a tuple of tensors such as an LSTM's ``(h, c)``) cut
    from the graph that produced it."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(detach(s) for s in state)
    return state.detach()


def tbptt_updates(module, batch: dict, setting: float) -> tuple[int, Iterator[torch.Tensor]]:
    """``(updates, iterator)`` for one batch: each step runs one window forward and backward
    (``module.manual_backward``) and yields the window's share of the batch loss."""
    model = module.model
    if not hasattr(model, "forward_window"):
        raise PluginError(
            f"truncated BPTT needs a model with a recurrent state to carry between windows "
            f"(a forward_window method); {type(model).__name__} has none"
        )
    src, y = batch["src"], batch["y"]  # (B, S) each
    S = src.size(1)
    K = window_size(setting, S)
    n_targets = int((y != PAD).sum())
    windows = [(a, int((y[:, a : a + K] != PAD).sum())) for a in range(0, S, K)]

    def run():
        state = None
        for a, count in windows:
            w_src, w_y = src[:, a : a + K], y[:, a : a + K]
            if count == 0:  # nothing to learn here: only carry the state on
                with torch.no_grad():
                    _, state = model.forward_window(w_src, state)
                state = detach(state)
                continue
            logits, state = model.forward_window(w_src, state)  # (B, k, V)
            total = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)), w_y.reshape(-1), ignore_index=PAD,
                reduction="sum",
            )
            module.manual_backward(total / count)  # this window's mean loss
            state = detach(state)  # the truncation: no gradient flows into earlier windows
            yield total.detach() / n_targets

    return sum(1 for _, c in windows if c), run()


def rtrl_updates(module, batch: dict, mode: str) -> tuple[int, Iterator[torch.Tensor]]:
    model = module.model
    if not hasattr(model, "rtrl_updates"):
        raise PluginError(
            f"RTRL needs a model that computes forward sensitivities (an rtrl_updates method); "
            f"{type(model).__name__} has none"
        )
    return model.rtrl_updates(batch["src"], batch["y"], online=(mode == "online"))


def total_norm(params) -> torch.Tensor:
    """The global 2-norm of the gradients of ``params`` (those that have one)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def manual_step(module, batch: dict) -> torch.Tensor:
    """One batch under manual optimisation: every update's gradient norm recorded (before
    clipping) in ``module.update_norms``, clipped by ``grad_clip``, applied; the learning rate
    schedule advanced once. Returns the batch's loss (the sum of its updates' shares)."""
    cfg = module.training_cfg
    if algorithm(cfg) == "rtrl":
        n, updates = rtrl_updates(module, batch, cfg["rtrl"])
    else:
        n, updates = tbptt_updates(module, batch, cfg["tbptt"])
    opt = module.optimizers()  # Lightning's wrapper: its step() counts a trainer step
    params = [p for p in module.parameters() if p.requires_grad]
    clip = cfg.get("grad_clip") or 0.0
    loss = torch.zeros((), device=batch["src"].device)
    for i, part in enumerate(updates):
        norm = total_norm(params)
        module.update_norms.append(norm.detach())
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        if i == n - 1:
            opt.step()  # the batch's last update: Lightning counts one step per batch
        else:
            opt.optimizer.step()  # the raw optimizer: an update that is not a new batch
        opt.zero_grad()
        loss = loss + part
    sched = module.lr_schedulers()
    if sched is not None:
        sched.step()
    return loss
